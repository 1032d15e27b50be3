//! One conformance suite for every store adapter: the embedded SQLite store and DynamoDB
//! (moto's server, through the real SDK). Each test runs once per adapter.

use std::sync::Arc;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use fund_account::ledger::{Bucket, EntryType, Posting};
use fund_account::member::{MemberId, MEMBER_SHARDS};
use fund_account::money::Currency;
use fund_account::reconciliation::AUDIT_PAGE;
use fund_account::records::{Collection, CollectionStatus};
use fund_account::store::{Expect, PageRequest, Store, StoreError, Write, MAX_WRITES_PER_COMMIT};
use fund_account_tests::fixtures::*;
use fund_account_tests::{aws_config, dynamodb_store, for_each_adapter, store_of, Adapter};
use rust_decimal::Decimal;

fn page(limit: usize, before: Option<&str>) -> PageRequest {
    PageRequest {
        limit,
        before: before.map(str::to_owned),
    }
}

async fn members_are_created_once_and_updated_by_version(adapter: Adapter) {
    let store = store_of(adapter).await;
    let m1 = member("seller-1", 1);
    store
        .commit(vec![Write::PutMember {
            member: m1.clone(),
            expect: Expect::Absent,
        }])
        .await
        .unwrap();
    let again = store
        .commit(vec![Write::PutMember {
            member: m1.clone(),
            expect: Expect::Absent,
        }])
        .await;
    assert_eq!(again, Err(StoreError::ConditionFailed { write_index: 0 }));

    let mut m2 = m1.next_version(at(5));
    m2.failed_password_attempts = 3;
    store
        .commit(vec![Write::PutMember {
            member: m2.clone(),
            expect: Expect::Version(1),
        }])
        .await
        .unwrap();
    let stale = store
        .commit(vec![Write::PutMember {
            member: m2.clone(),
            expect: Expect::Version(1),
        }])
        .await;
    assert_eq!(stale, Err(StoreError::ConditionFailed { write_index: 0 }));

    let state = store.member_state(&m1.member_id).await.unwrap().unwrap();
    assert_eq!(state.member, m2);
    assert_eq!(state.code, None);
    assert!(store.member_state(&member_id("nobody")).await.unwrap().is_none());
}

async fn a_failed_condition_rolls_back_the_whole_commit(adapter: Adapter) {
    let store = store_of(adapter).await;
    store
        .commit(vec![Write::PutMember {
            member: member("a", 1),
            expect: Expect::Absent,
        }])
        .await
        .unwrap();
    let result = store
        .commit(vec![
            Write::PutMember {
                member: member("b", 1),
                expect: Expect::Absent,
            },
            Write::AdjustBalance {
                member_id: member_id("b"),
                currency: Currency::Usd,
                part: fund_account::ledger::BalancePart::Main,
                deltas: deltas_of(&[(Bucket::Available, "10")]),
            },
            Write::PutMember {
                member: member("a", 1),
                expect: Expect::Absent,
            },
        ])
        .await;
    assert_eq!(result, Err(StoreError::ConditionFailed { write_index: 2 }));
    assert!(
        store.member_state(&member_id("b")).await.unwrap().is_none(),
        "first write rolled back"
    );
}

fn deltas_of(moves: &[(Bucket, &str)]) -> fund_account::ledger::BucketDeltas {
    let mut posting = Posting::new(&member_id("x"), Currency::Usd, EntryType::Collection, "r");
    for (bucket, value) in moves {
        posting = posting.change(*bucket, amount(value));
    }
    posting.deltas()
}

async fn balances_start_at_zero_and_never_go_negative(adapter: Adapter) {
    let store = store_of(adapter).await;
    let m = member("seller-1", 1);
    store
        .commit(vec![Write::PutMember {
            member: m.clone(),
            expect: Expect::Absent,
        }])
        .await
        .unwrap();
    let adjust = |moves: &[(Bucket, &str)]| Write::AdjustBalance {
        member_id: m.member_id.clone(),
        currency: Currency::Usd,
        part: fund_account::ledger::BalancePart::Main,
        deltas: deltas_of(moves),
    };
    assert_eq!(
        store.commit(vec![adjust(&[(Bucket::Available, "-0.01")])]).await,
        Err(StoreError::ConditionFailed { write_index: 0 }),
        "an absent balance is zero"
    );
    store
        .commit(vec![adjust(&[(Bucket::Pending, "100.50")])])
        .await
        .unwrap();
    store
        .commit(vec![adjust(&[
            (Bucket::Pending, "-100.50"),
            (Bucket::Available, "100.50"),
        ])])
        .await
        .unwrap();
    store
        .commit(vec![adjust(&[
            (Bucket::Available, "-40.25"),
            (Bucket::InTransit, "40.25"),
        ])])
        .await
        .unwrap();
    assert_eq!(
        store
            .commit(vec![adjust(&[
                (Bucket::Available, "-60.26"),
                (Bucket::InTransit, "60.26")
            ])])
            .await,
        Err(StoreError::ConditionFailed { write_index: 0 })
    );
    let balances = store.member_state(&m.member_id).await.unwrap().unwrap().balances;
    assert_eq!(balances.usd.available, amount("60.25"));
    assert_eq!(balances.usd.pending, amount("0"));
    assert_eq!(balances.usd.in_transit, amount("40.25"));
    assert_eq!(balances.cny.available, amount("0"));
}

async fn concurrent_debits_never_overdraw(adapter: Adapter) {
    let store = store_of(adapter).await;
    let m = member_id("seller-1");
    let credit = Write::AdjustBalance {
        member_id: m.clone(),
        currency: Currency::Cny,
        part: fund_account::ledger::BalancePart::Main,
        deltas: deltas_of(&[(Bucket::Available, "100")]),
    };
    store.commit(vec![credit]).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..25 {
        let store = Arc::clone(&store);
        let m = m.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let debit = Write::AdjustBalance {
                    member_id: m.clone(),
                    currency: Currency::Cny,
                    part: fund_account::ledger::BalancePart::Main,
                    deltas: deltas_of(&[(Bucket::Available, "-10")]),
                };
                match store.commit(vec![debit]).await {
                    Err(StoreError::Contention) => continue,
                    other => return other,
                }
            }
        }));
    }
    let mut succeeded = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => succeeded += 1,
            Err(StoreError::ConditionFailed { write_index: 0 }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(succeeded, 10);
    store
        .commit(vec![Write::PutMember {
            member: member("seller-1", 1),
            expect: Expect::Absent,
        }])
        .await
        .unwrap();
    let balances = store.member_state(&m).await.unwrap().unwrap().balances;
    assert_eq!(balances.cny.available, amount("0"));
}

async fn codes_are_replaced_by_version_and_deleted(adapter: Adapter) {
    let store = store_of(adapter).await;
    store
        .commit(vec![Write::PutMember {
            member: member("s", 1),
            expect: Expect::Absent,
        }])
        .await
        .unwrap();
    store
        .commit(vec![Write::PutCode {
            code: code("s", 1, at(1800)),
            expect: Expect::Any,
        }])
        .await
        .unwrap();
    let mut spent = code("s", 2, at(1800));
    spent.failed_attempts = 1;
    store
        .commit(vec![Write::PutCode {
            code: spent.clone(),
            expect: Expect::Version(1),
        }])
        .await
        .unwrap();
    assert_eq!(
        store
            .commit(vec![Write::PutCode {
                code: spent.clone(),
                expect: Expect::Version(1)
            }])
            .await,
        Err(StoreError::ConditionFailed { write_index: 0 })
    );
    let state = store.member_state(&member_id("s")).await.unwrap().unwrap();
    assert_eq!(state.code, Some(spent.clone()));
    // A delete on the version read fails once a try has landed since.
    assert_eq!(
        store
            .commit(vec![Write::DeleteCode {
                member_id: member_id("s"),
                expect: Expect::Version(1),
            }])
            .await,
        Err(StoreError::ConditionFailed { write_index: 0 })
    );
    assert_eq!(
        store.member_state(&member_id("s")).await.unwrap().unwrap().code,
        Some(spent)
    );
    store
        .commit(vec![Write::DeleteCode {
            member_id: member_id("s"),
            expect: Expect::Version(2),
        }])
        .await
        .unwrap();
    assert_eq!(store.member_state(&member_id("s")).await.unwrap().unwrap().code, None);
    // Deleting what is not there is not an error (the code may have expired away).
    store
        .commit(vec![Write::DeleteCode {
            member_id: member_id("s"),
            expect: Expect::Any,
        }])
        .await
        .unwrap();
}

async fn expired_codes_are_still_returned_for_the_domain_to_judge(adapter: Adapter) {
    let store = store_of(adapter).await;
    store
        .commit(vec![Write::PutMember {
            member: member("s", 1),
            expect: Expect::Absent,
        }])
        .await
        .unwrap();
    // Expired long ago: DynamoDB's TTL may not have deleted it yet, and moto never does.
    store
        .commit(vec![Write::PutCode {
            code: code("s", 1, at(-7200)),
            expect: Expect::Any,
        }])
        .await
        .unwrap();
    let state = store.member_state(&member_id("s")).await.unwrap().unwrap();
    assert!(state.code.unwrap().is_expired(at(0)));
}

async fn ledger_entries_are_unique_and_paged_newest_first(adapter: Adapter) {
    let store = store_of(adapter).await;
    let mut writes = Vec::new();
    for (i, currency) in [
        (1, Currency::Usd),
        (2, Currency::Cny),
        (3, Currency::Usd),
        (4, Currency::Cny),
        (5, Currency::Usd),
    ] {
        writes.push(Write::AppendLedger(ledger_entry(
            "s",
            currency,
            &format!("le_{i:02}"),
            &format!("{i}"),
        )));
    }
    store.commit(writes).await.unwrap();
    let duplicate = Write::AppendLedger(ledger_entry("s", Currency::Usd, "le_03", "9"));
    assert_eq!(
        store.commit(vec![duplicate]).await,
        Err(StoreError::ConditionFailed { write_index: 0 })
    );

    let ids = |p: &fund_account::store::Page<fund_account::ledger::LedgerEntry>| -> Vec<String> {
        p.items.iter().map(|e| e.id.clone()).collect()
    };
    let m = member_id("s");
    let first = store.ledger(&m, None, &page(2, None)).await.unwrap();
    assert_eq!(ids(&first), ["le_05", "le_04"]);
    assert!(first.more);
    let second = store.ledger(&m, None, &page(2, Some("le_04"))).await.unwrap();
    assert_eq!(ids(&second), ["le_03", "le_02"]);
    let last = store.ledger(&m, None, &page(2, Some("le_02"))).await.unwrap();
    assert_eq!(ids(&last), ["le_01"]);
    assert!(!last.more);
    let usd = store.ledger(&m, Some(Currency::Usd), &page(10, None)).await.unwrap();
    assert_eq!(ids(&usd), ["le_05", "le_03", "le_01"]);
    assert!(!usd.more);
    assert_eq!(usd.items[0].amount, amount("5"));
    let exact = store.ledger(&m, Some(Currency::Cny), &page(2, None)).await.unwrap();
    assert_eq!(ids(&exact), ["le_04", "le_02"]);
    assert!(!exact.more, "exactly `limit` items left means no more");
    assert!(store
        .ledger(&member_id("other"), None, &page(5, None))
        .await
        .unwrap()
        .items
        .is_empty());
}

async fn withdrawals_are_versioned_and_listed_per_member(adapter: Adapter) {
    let store = store_of(adapter).await;
    for (id, owner) in [("wd_01", "a"), ("wd_02", "b"), ("wd_03", "a"), ("wd_04", "a")] {
        store
            .commit(vec![Write::PutWithdrawal {
                withdrawal: withdrawal(id, owner, 1),
                expect: Expect::Absent,
            }])
            .await
            .unwrap();
    }
    assert_eq!(
        store
            .commit(vec![Write::PutWithdrawal {
                withdrawal: withdrawal("wd_01", "a", 1),
                expect: Expect::Absent
            }])
            .await,
        Err(StoreError::ConditionFailed { write_index: 0 })
    );
    let mut paid = withdrawal("wd_01", "a", 2);
    paid.status = fund_account::records::WithdrawalStatus::Paid;
    store
        .commit(vec![Write::PutWithdrawal {
            withdrawal: paid.clone(),
            expect: Expect::Version(1),
        }])
        .await
        .unwrap();
    assert_eq!(store.withdrawal(&withdrawal_id("wd_01")).await.unwrap(), Some(paid));
    assert_eq!(store.withdrawal(&withdrawal_id("wd_99")).await.unwrap(), None);

    let listed = store.withdrawals(&member_id("a"), &page(2, None)).await.unwrap();
    assert_eq!(
        listed.items.iter().map(|w| w.id.clone()).collect::<Vec<_>>(),
        [withdrawal_id("wd_04"), withdrawal_id("wd_03")]
    );
    assert!(listed.more);
    let rest = store
        .withdrawals(&member_id("a"), &page(2, Some(withdrawal_id("wd_03").as_str())))
        .await
        .unwrap();
    assert_eq!(
        rest.items.iter().map(|w| w.id.clone()).collect::<Vec<_>>(),
        [withdrawal_id("wd_01")]
    );
    assert!(!rest.more);
    // The full account number is kept for the payout processor.
    assert_eq!(rest.items[0].bank_account.account_number, "6222020200112233");
}

async fn due_collections_are_the_unsettled_ones_at_or_before_now(adapter: Adapter) {
    let store = store_of(adapter).await;
    for (id, due, status) in [
        ("col_a", at(-10), CollectionStatus::Pending),
        ("col_b", at(0), CollectionStatus::Pending),
        ("col_c", at(1), CollectionStatus::Pending),
        ("col_d", at(-20), CollectionStatus::Settled),
        ("col_e", at(-30), CollectionStatus::Pending),
    ] {
        store
            .commit(vec![Write::PutCollection {
                collection: collection(id, "s", due, status),
                expect: Expect::Absent,
            }])
            .await
            .unwrap();
    }
    let due = store.due_collections(at(0), 10).await.unwrap();
    assert_eq!(
        due.iter().map(|c| c.collection_id.as_str()).collect::<Vec<_>>(),
        ["col_e", "col_a", "col_b"]
    );
    assert_eq!(store.due_collections(at(0), 2).await.unwrap().len(), 2);

    let mut settled = collection("col_a", "s", at(-10), CollectionStatus::Settled);
    settled.version = 2;
    settled.settled_at = Some(at(0));
    store
        .commit(vec![Write::PutCollection {
            collection: settled.clone(),
            expect: Expect::Version(1),
        }])
        .await
        .unwrap();
    let due = store.due_collections(at(0), 10).await.unwrap();
    assert_eq!(
        due.iter().map(|c| c.collection_id.as_str()).collect::<Vec<_>>(),
        ["col_e", "col_b"]
    );
    assert_eq!(store.collection(&external_id("col_a")).await.unwrap(), Some(settled));
    assert_eq!(store.collection(&external_id("col_zz")).await.unwrap(), None);
}

async fn refunds_are_written_once(adapter: Adapter) {
    let store = store_of(adapter).await;
    let refund = fund_account::records::Refund {
        refund_id: external_id("ref_1"),
        collection_id: external_id("col_1"),
        member_id: member_id("s"),
        currency: Currency::Usd,
        amount: amount("5"),
        taken_from: Bucket::Pending,
        created_at: at(0),
    };
    store.commit(vec![Write::PutRefund(refund.clone())]).await.unwrap();
    assert_eq!(
        store.commit(vec![Write::PutRefund(refund.clone())]).await,
        Err(StoreError::ConditionFailed { write_index: 0 })
    );
    assert_eq!(store.refund(&external_id("ref_1")).await.unwrap(), Some(refund));
    assert_eq!(store.refund(&external_id("ref_2")).await.unwrap(), None);
}

async fn idempotency_keys_are_held_until_they_expire(adapter: Adapter) {
    let store = store_of(adapter).await;
    store
        .commit(vec![Write::PutMember {
            member: member("s", 1),
            expect: Expect::Absent,
        }])
        .await
        .unwrap();
    let record = idempotency("s", "key #1/ä", at(86_400));
    store
        .commit(vec![Write::PutIdempotency {
            record: record.clone(),
            now: at(0),
        }])
        .await
        .unwrap();
    assert_eq!(
        store
            .commit(vec![Write::PutIdempotency {
                record: record.clone(),
                now: at(86_399)
            }])
            .await,
        Err(StoreError::ConditionFailed { write_index: 0 })
    );
    // Another member's key of the same text is a different key.
    store
        .commit(vec![Write::PutIdempotency {
            record: idempotency("t", "key #1/ä", at(86_400)),
            now: at(0),
        }])
        .await
        .unwrap();

    let context = store
        .withdrawal_context(&member_id("s"), Currency::Usd, "key #1/ä", &[])
        .await
        .unwrap();
    assert_eq!(context.idempotency, Some(record.clone()));
    assert_eq!(context.member.map(|m| m.version), Some(1));
    assert_eq!(context.balance, fund_account::ledger::Balance::default());
    assert_eq!(
        store.idempotency_record(&member_id("s"), "key #1/ä").await.unwrap(),
        Some(record)
    );

    // Once expired the key is free again, even if not yet deleted.
    let renewed = idempotency("s", "key #1/ä", at(200_000));
    store
        .commit(vec![Write::PutIdempotency {
            record: renewed.clone(),
            now: at(86_400),
        }])
        .await
        .unwrap();
    assert_eq!(
        store.idempotency_record(&member_id("s"), "key #1/ä").await.unwrap(),
        Some(renewed)
    );
    let none = store
        .withdrawal_context(&member_id("nobody"), Currency::Cny, "k", &[])
        .await
        .unwrap();
    assert!(none.member.is_none() && none.idempotency.is_none());
}

async fn malformed_commits_are_refused_before_anything_is_written(adapter: Adapter) {
    let store = store_of(adapter).await;
    assert!(matches!(store.commit(vec![]).await, Err(StoreError::InvalidCommit(_))));
    let twice = vec![
        Write::PutMember {
            member: member("s", 1),
            expect: Expect::Absent,
        },
        Write::PutMember {
            member: member("s", 1),
            expect: Expect::Any,
        },
    ];
    assert!(matches!(store.commit(twice).await, Err(StoreError::InvalidCommit(_))));
    assert!(store.member_state(&member_id("s")).await.unwrap().is_none());
}

/// `count` member ids of shard `shard`, 64 characters each (the longest there are, so
/// that few of them fill a DynamoDB response), in id order.
fn ids_in_shard(shard: u32, count: usize) -> Vec<MemberId> {
    (0u64..)
        .map(|i| member_id(&format!("m{i:063}")))
        .filter(|m| m.shard() == shard)
        .take(count)
        .collect()
}

/// Lists `ids` in the member index, a full commit at a time.
async fn index_members(store: &dyn Store, ids: &[MemberId]) {
    for chunk in ids.chunks(MAX_WRITES_PER_COMMIT) {
        let writes = chunk
            .iter()
            .map(|m| Write::IndexMember { member_id: m.clone() })
            .collect();
        store.commit(writes).await.unwrap();
    }
}

/// Walks one shard as the reconciliation does, `limit` ids a page: every page full but
/// the last, `more` exactly when ids are left.
async fn walk_shard(store: &dyn Store, shard: u32, limit: usize, expected: usize) -> Vec<MemberId> {
    let (mut seen, mut after) = (Vec::new(), None::<MemberId>);
    for _ in 0..=expected / limit + 1 {
        let page = store.member_ids(shard, after.as_ref(), limit).await.unwrap();
        seen.extend(page.items.iter().cloned());
        assert_eq!(
            page.more,
            seen.len() < expected,
            "shard {shard}: `more` after {} ids",
            seen.len()
        );
        if !page.more {
            return seen;
        }
        assert_eq!(page.items.len(), limit, "a page with more after it is full");
        after = page.items.last().cloned();
    }
    panic!("shard {shard}: the walk did not end after {} ids", seen.len())
}

async fn member_ids_list_each_shard_in_id_order_a_page_at_a_time(adapter: Adapter) {
    let store = store_of(adapter).await;
    // Shard 3 holds more than a reconciliation page; the others a few each.
    let crowded = ids_in_shard(3, AUDIT_PAGE + 7);
    index_members(store.as_ref(), &crowded).await;
    let others: Vec<MemberId> = ["a", "b", "seller-1", "seller-2", "x.y@z", "Z_9"]
        .iter()
        .map(|id| member_id(id))
        .collect();
    index_members(store.as_ref(), &others).await;
    // Listing again (as every member sync does) adds no second entry.
    index_members(store.as_ref(), &others[..2]).await;

    for shard in 0..MEMBER_SHARDS {
        let mut expected: Vec<MemberId> = crowded
            .iter()
            .chain(&others)
            .filter(|m| m.shard() == shard)
            .cloned()
            .collect();
        expected.sort();
        for limit in [2, AUDIT_PAGE] {
            let walked = walk_shard(store.as_ref(), shard, limit, expected.len()).await;
            assert_eq!(walked, expected, "shard {shard} by {limit}");
        }
    }
    // `after` need not be listed itself: the page starts at the next id.
    let between = member_id("m0");
    let page = store.member_ids(3, Some(&between), 2).await.unwrap();
    assert_eq!(page.items, crowded[..2]);
    let last = crowded.last().unwrap();
    let past_the_end = store.member_ids(3, Some(last), 5).await.unwrap();
    assert!(past_the_end.items.is_empty() && !past_the_end.more);
}

/// A member index shard larger than one DynamoDB response (1 MB): the adapter must go on
/// from `LastEvaluatedKey` to return all it was asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn member_ids_continue_past_a_full_dynamodb_response() {
    let dynamo = dynamodb_store().await;
    let client = aws_sdk_dynamodb::Client::new(&aws_config().await);
    let table = dynamo.table().to_owned();
    let store: Arc<dyn Store> = Arc::new(dynamo);
    // An index item is about 150 bytes: 7,500 are over 1 MB.
    let count = 7_500;
    let ids = ids_in_shard(0, count);
    index_members(store.as_ref(), &ids[..1]).await;
    // The rest are copies of the item the adapter wrote, under the other ids, written in
    // batches (the emulator copies the whole table for each item of a transaction, so
    // 7,500 transactional writes would take it many minutes).
    let written = client.scan().table_name(&table).send().await.unwrap();
    let [template] = written.items() else {
        panic!("one index item: {:?}", written.items())
    };
    let first = AttributeValue::S(ids[0].as_str().to_owned());
    for chunk in ids[1..].chunks(25) {
        let puts = chunk.iter().map(|id| {
            let item = template
                .iter()
                .map(|(name, value)| {
                    let value = if *value == first {
                        AttributeValue::S(id.as_str().to_owned())
                    } else {
                        value.clone()
                    };
                    (name.clone(), value)
                })
                .collect();
            let put = PutRequest::builder().set_item(Some(item)).build().unwrap();
            WriteRequest::builder().put_request(put).build()
        });
        let output = client
            .batch_write_item()
            .request_items(&table, puts.collect())
            .send()
            .await
            .unwrap();
        assert!(output.unprocessed_items().is_none_or(|u| u.is_empty()));
    }

    // DynamoDB itself stops short of what was asked, at 1 MB.
    let raw = client
        .query()
        .table_name(&table)
        .key_condition_expression("PK = :pk")
        .expression_attribute_values(":pk", template["PK"].clone())
        .limit(i32::try_from(count + 1).unwrap())
        .send()
        .await
        .unwrap();
    let first_response = raw.items().len();
    assert!(
        raw.last_evaluated_key().is_some() && first_response < count,
        "one response holds {first_response} of {count}: the test needs more"
    );

    let mut expected = ids;
    expected.sort();
    let all = store.member_ids(0, None, count).await.unwrap();
    assert_eq!(all.items.len(), count, "past the first {first_response}");
    assert_eq!(all.items, expected);
    assert!(!all.more);
    let most = store.member_ids(0, None, count - 1).await.unwrap();
    assert_eq!((most.items.len(), most.more), (count - 1, true));
    assert_eq!(most.items, expected[..count - 1]);
}

async fn member_collections_are_listed_per_member_newest_id_first(adapter: Adapter) {
    let store = store_of(adapter).await;
    let put = |collection, expect| Write::PutCollection { collection, expect };
    let new = [
        ("col_01", "a", CollectionStatus::Pending),
        ("col_02", "b", CollectionStatus::Pending),
        ("col_03", "a", CollectionStatus::Settled),
        ("col_04", "a", CollectionStatus::Pending),
        ("col_05", "a", CollectionStatus::Pending),
    ];
    let writes = new.map(|(id, owner, status)| put(collection(id, owner, at(60), status), Expect::Absent));
    store.commit(writes.into()).await.unwrap();
    // A collection updated (refunded, settled) is listed once, as it now is.
    let mut settled = collection("col_04", "a", at(60), CollectionStatus::Settled);
    settled.refunded = amount("20");
    settled.settled_at = Some(at(60));
    settled.version = 2;
    store
        .commit(vec![put(settled.clone(), Expect::Version(1))])
        .await
        .unwrap();

    let ids = |p: &fund_account::store::Page<Collection>| -> Vec<String> {
        p.items.iter().map(|c| c.collection_id.to_string()).collect()
    };
    let a = member_id("a");
    let first = store.member_collections(&a, &page(2, None)).await.unwrap();
    assert_eq!(ids(&first), ["col_05", "col_04"]);
    assert!(first.more);
    assert_eq!(first.items[1], settled);
    let rest = store.member_collections(&a, &page(2, Some("col_04"))).await.unwrap();
    assert_eq!(ids(&rest), ["col_03", "col_01"]);
    assert!(!rest.more, "exactly `limit` left means no more");
    let all = store.member_collections(&a, &page(10, None)).await.unwrap();
    assert_eq!(ids(&all), ["col_05", "col_04", "col_03", "col_01"]);
    assert!(!all.more);
    let b = store
        .member_collections(&member_id("b"), &page(10, None))
        .await
        .unwrap();
    assert_eq!(ids(&b), ["col_02"]);
    assert!(store
        .member_collections(&member_id("nobody"), &page(10, None))
        .await
        .unwrap()
        .items
        .is_empty());
}

async fn documents_are_written_by_version_read_together_and_paged_newest_first(adapter: Adapter) {
    use fund_account::store::{Doc, DocKey};
    let store = store_of(adapter).await;
    let doc = |sort: &str, version: u64, body: &str| Doc {
        key: DocKey::new("QUOTES#s", sort),
        version,
        expires_at: None,
        body: format!("{{\"v\":\"{body}\"}}"),
    };
    let put = |d: Doc, expect: Expect| Write::PutDoc { doc: d, expect };
    store
        .commit(vec![put(doc("BOOK", 1, "a"), Expect::Absent)])
        .await
        .unwrap();
    assert_eq!(
        store.commit(vec![put(doc("BOOK", 1, "b"), Expect::Absent)]).await,
        Err(StoreError::ConditionFailed { write_index: 0 })
    );
    assert_eq!(
        store.commit(vec![put(doc("BOOK", 3, "b"), Expect::Version(2))]).await,
        Err(StoreError::ConditionFailed { write_index: 0 })
    );
    store
        .commit(vec![put(doc("BOOK", 2, "b"), Expect::Version(1))])
        .await
        .unwrap();
    let expiring = doc("fxq_1", 1, "q").expiring(at(60));
    store.commit(vec![put(expiring.clone(), Expect::Absent)]).await.unwrap();
    store
        .commit(vec![put(doc("fxq_2", 1, "r"), Expect::Absent)])
        .await
        .unwrap();
    // Read together, in the order asked, absent ones as None.
    let read = store
        .docs(&[
            DocKey::new("QUOTES#s", "fxq_1"),
            DocKey::new("QUOTES#s", "none"),
            DocKey::new("QUOTES#s", "BOOK"),
        ])
        .await
        .unwrap();
    assert_eq!(
        read[0].as_ref(),
        Some(&expiring),
        "version, expiry and body kept as written"
    );
    assert_eq!(read[1], None);
    assert_eq!(
        read[2].as_ref().map(|d| (d.version, d.body.as_str())),
        Some((2, r#"{"v":"b"}"#))
    );
    // The withdrawal read carries documents too.
    let context = store
        .withdrawal_context(&member_id("s"), Currency::Usd, "k", &[DocKey::new("QUOTES#s", "fxq_2")])
        .await
        .unwrap();
    assert_eq!(context.docs.len(), 1);
    assert_eq!(context.docs[0].as_ref().map(|d| d.body.as_str()), Some(r#"{"v":"r"}"#));
    // A partition, highest sort key first, a page at a time.
    let first = store.doc_page("QUOTES#s", &page(2, None)).await.unwrap();
    let sorts: Vec<&str> = first.items.iter().map(|d| d.key.sort.as_str()).collect();
    assert_eq!((sorts, first.more), (vec!["fxq_2", "fxq_1"], true));
    let rest = store.doc_page("QUOTES#s", &page(2, Some("fxq_1"))).await.unwrap();
    let sorts: Vec<&str> = rest.items.iter().map(|d| d.key.sort.as_str()).collect();
    assert_eq!((sorts, rest.more), (vec!["BOOK"], false));
    assert!(store
        .doc_page("QUOTES#other", &page(5, None))
        .await
        .unwrap()
        .items
        .is_empty());
}

async fn platform_shards_add_up_any_sign_and_keep_their_entries(adapter: Adapter) {
    use fund_account::ledger::{PlatformAccount, PlatformEntry, PlatformShard};
    let store = store_of(adapter).await;
    let shard = |account, shard| PlatformShard {
        account,
        currency: Currency::Cny,
        shard,
    };
    let clearing = shard(PlatformAccount::Clearing, 3);
    let entry = |id: &str, value: &str| PlatformEntry {
        id: id.to_owned(),
        account: clearing.account,
        currency: clearing.currency,
        shard: clearing.shard,
        amount: amount(value),
        entry_type: EntryType::Collection,
        reference: "col-1".to_owned(),
        member_id: member_id("s"),
        transaction: "lt_1".to_owned(),
        created_at: at(0),
    };
    assert!(
        store.platform_balances().await.unwrap().is_empty(),
        "absent shards are zero"
    );
    store
        .commit(vec![
            Write::AdjustPlatform {
                shard: clearing,
                delta: amount("-10.50"),
            },
            Write::AppendPlatformEntry(entry("le_01", "-10.50")),
        ])
        .await
        .unwrap();
    store
        .commit(vec![
            Write::AdjustPlatform {
                shard: clearing,
                delta: amount("4"),
            },
            Write::AppendPlatformEntry(entry("le_02", "4")),
            Write::AdjustPlatform {
                shard: shard(PlatformAccount::FeeRevenue, 15),
                delta: amount("1"),
            },
        ])
        .await
        .unwrap();
    // An entry id is written once, and a failed commit adds nothing.
    let twice = store
        .commit(vec![
            Write::AdjustPlatform {
                shard: clearing,
                delta: amount("99"),
            },
            Write::AppendPlatformEntry(entry("le_01", "99")),
        ])
        .await;
    assert_eq!(twice, Err(StoreError::ConditionFailed { write_index: 1 }));
    let balances = store.platform_balances().await.unwrap();
    assert_eq!(
        balances,
        vec![
            (clearing, amount("-6.50")),
            (shard(PlatformAccount::FeeRevenue, 15), amount("1")),
        ]
    );
    let entries = store.platform_entries(clearing, &page(1, None)).await.unwrap();
    assert_eq!((entries.items[0].id.as_str(), entries.more), ("le_02", true));
    let older = store.platform_entries(clearing, &page(5, Some("le_02"))).await.unwrap();
    assert_eq!(older.items, vec![entry("le_01", "-10.50")]);
    assert!(store
        .platform_entries(shard(PlatformAccount::Clearing, 4), &page(5, None))
        .await
        .unwrap()
        .items
        .is_empty());
}

async fn documents_are_deleted_only_as_expected(adapter: Adapter) {
    use fund_account::store::{Doc, DocKey};
    let store = store_of(adapter).await;
    let key = DocKey::new("NOTIFY#07", "lt_1");
    let doc = |version: u64| Doc {
        key: key.clone(),
        version,
        expires_at: None,
        body: "{}".to_owned(),
    };
    let delete = |expect: Expect| Write::DeleteDoc {
        key: key.clone(),
        expect,
    };
    assert_eq!(
        store.commit(vec![delete(Expect::Version(1))]).await,
        Err(StoreError::ConditionFailed { write_index: 0 }),
        "nothing there to delete at a version"
    );
    store
        .commit(vec![Write::PutDoc {
            doc: doc(2),
            expect: Expect::Absent,
        }])
        .await
        .unwrap();
    assert_eq!(
        store.commit(vec![delete(Expect::Version(1))]).await,
        Err(StoreError::ConditionFailed { write_index: 0 }),
        "another version stays"
    );
    assert_eq!(store.docs(std::slice::from_ref(&key)).await.unwrap()[0], Some(doc(2)));
    store.commit(vec![delete(Expect::Version(2))]).await.unwrap();
    assert_eq!(store.docs(std::slice::from_ref(&key)).await.unwrap()[0], None);
    // Deleting what is not there, unconditionally, is no failure; a deleted key may be
    // written again as new.
    store.commit(vec![delete(Expect::Any)]).await.unwrap();
    store
        .commit(vec![Write::PutDoc {
            doc: doc(1),
            expect: Expect::Absent,
        }])
        .await
        .unwrap();
}

async fn a_members_phone_is_read_alone(adapter: Adapter) {
    let store = store_of(adapter).await;
    assert_eq!(store.member_phone(&member_id("nobody")).await, Ok(None));
    let with_phone = member("phoned", 1);
    let mut without = member("unphoned", 1);
    without.phone = None;
    for m in [&with_phone, &without] {
        store
            .commit(vec![Write::PutMember {
                member: m.clone(),
                expect: Expect::Absent,
            }])
            .await
            .unwrap();
    }
    assert_eq!(
        store.member_phone(&with_phone.member_id).await,
        Ok(with_phone.phone.clone())
    );
    assert_eq!(store.member_phone(&without.member_id).await, Ok(None));
}

/// A member's pending money spread over shards reads as one balance: every read of the
/// account sums the balance item and its shards, a shard refuses going below zero on its
/// own, and the withdrawal's read sees the balance item alone (all it spends from).
async fn pending_shards_sum_into_the_balance_and_hold_their_own_floor(adapter: Adapter) {
    use fund_account::ledger::{BalancePart, PENDING_SHARDS};
    let store = store_of(adapter).await;
    let m = member("sharded", 1);
    assert_eq!(store.member_exists(&m.member_id).await, Ok(false));
    store
        .commit(vec![Write::PutMember {
            member: m.clone(),
            expect: Expect::Absent,
        }])
        .await
        .unwrap();
    assert_eq!(store.member_exists(&m.member_id).await, Ok(true));
    let adjust = |part: BalancePart, moves: &[(Bucket, &str)]| Write::AdjustBalance {
        member_id: m.member_id.clone(),
        currency: Currency::Usd,
        part,
        deltas: deltas_of(moves),
    };
    // One commit: every shard and the balance item, as a settlement batch writes them.
    let mut writes = vec![adjust(BalancePart::Main, &[(Bucket::Available, "5")])];
    for shard in 0..PENDING_SHARDS {
        writes.push(adjust(BalancePart::Pending(shard), &[(Bucket::Pending, "1.25")]));
    }
    store.commit(writes).await.unwrap();
    let expected_pending = amount(&(Decimal::new(125, 2) * Decimal::from(PENDING_SHARDS)).to_string());
    let state = store.member_state(&m.member_id).await.unwrap().unwrap();
    assert_eq!(state.balances.usd.pending, expected_pending);
    assert_eq!(state.balances.usd.available, amount("5"));
    assert_eq!(store.balances(&m.member_id).await.unwrap(), state.balances);
    let context = store
        .withdrawal_context(&m.member_id, Currency::Usd, "key", &[])
        .await
        .unwrap();
    assert_eq!(context.balance.available, amount("5"));
    assert_eq!(context.balance.pending, amount("0"), "the balance item alone");
    // A shard's floor is its own: 1.25 is there, 1.26 is not, whatever the others hold.
    assert_eq!(
        store
            .commit(vec![adjust(BalancePart::Pending(3), &[(Bucket::Pending, "-1.26")])])
            .await,
        Err(StoreError::ConditionFailed { write_index: 0 })
    );
    store
        .commit(vec![
            adjust(BalancePart::Pending(3), &[(Bucket::Pending, "-1.25")]),
            adjust(BalancePart::Main, &[(Bucket::Available, "1.25")]),
        ])
        .await
        .unwrap();
    let balances = store.balances(&m.member_id).await.unwrap();
    assert_eq!(
        balances.usd.pending,
        expected_pending.checked_sub(amount("1.25")).unwrap()
    );
    assert_eq!(balances.usd.available, amount("6.25"));
    assert_eq!(balances.cny, Default::default());
}

for_each_adapter!(
    pending_shards_sum_into_the_balance_and_hold_their_own_floor,
    a_members_phone_is_read_alone,
    documents_are_deleted_only_as_expected,
    documents_are_written_by_version_read_together_and_paged_newest_first,
    platform_shards_add_up_any_sign_and_keep_their_entries,
    members_are_created_once_and_updated_by_version,
    a_failed_condition_rolls_back_the_whole_commit,
    balances_start_at_zero_and_never_go_negative,
    concurrent_debits_never_overdraw,
    codes_are_replaced_by_version_and_deleted,
    expired_codes_are_still_returned_for_the_domain_to_judge,
    ledger_entries_are_unique_and_paged_newest_first,
    withdrawals_are_versioned_and_listed_per_member,
    due_collections_are_the_unsettled_ones_at_or_before_now,
    refunds_are_written_once,
    idempotency_keys_are_held_until_they_expire,
    malformed_commits_are_refused_before_anything_is_written,
    member_ids_list_each_shard_in_id_order_a_page_at_a_time,
    member_collections_are_listed_per_member_newest_id_first,
);
