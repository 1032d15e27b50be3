//! The store port over DynamoDB: one table, composite keys, two sparse GSIs.
//!
//! | item | PK | SK | notes |
//! |---|---|---|---|
//! | member | `MEMBER#<id>` | `PROFILE` | optimistic `version` |
//! | member index | `MEMBERS#<shard>` | `<id>` | keys only: the reconciliation's walk |
//! | SMS code | `MEMBER#<id>` | `CODE` | TTL attribute `expires_at_ttl` |
//! | balance | `MEMBER#<id>` | `BALANCE#<CUR>` | numbers; `>= 0` conditions |
//! | pending shard | `MEMBER#<id>` | `BALANCE#<CUR>#P<k>` | `pending` only; `>= 0` conditions (see `ledger::PENDING_SHARDS`) |
//! | ledger entry | `LEDGER#<id>#<CUR>` | `<entry id>` | append-only |
//! | withdrawal | `WITHDRAWAL#<wid>` | `WITHDRAWAL` | GSI1: `MEMBER#<id>#WITHDRAWALS` / `<wid>` |
//! | collection | `COLLECTION#<cid>` | `COLLECTION` | GSI1: `MEMBER#<id>#COLLECTIONS` / `<cid>`; GSI2 while unsettled: `DUE#<shard>` / `<due ms>#<cid>` |
//! | reconciliation run | `RECONCILIATION` | `<run id>` | |
//! | refund | `REFUND#<rid>` | `REFUND` | |
//! | idempotency key | `IDEMPOTENCY#<id>` | `<key>` | TTL attribute `expires_at_ttl` |
//! | document | the domain's key (`QUOTES#<id>`, `CONVERSIONS#<id>`, `FXRATE#<pair>`, …) | | `version`, `body` (JSON); TTL when it expires |
//! | platform shard | `PLATFORM#<account>#<CUR>#<nn>` | `BALANCE` | number `balance`, unconditional `ADD` |
//! | platform entry | `PLATFORM#<account>#<CUR>#<nn>#LEDGER` | `<entry id>` | append-only |
//! | outbox event, notification, event sequence | documents (`OUTBOX#<id>`, `NOTIFY#<nn>`, `EVENTSEQ#<id>`; see `events`) | | new outbox items leave through the table's stream |
//!
//! A member's partition holds only its profile, code and balances (with their pending
//! shards, at most 36 small items), so one consistent
//! `Query` reads everything activation and `GET /v1/account` need. `docs/data-model.md`
//! lists the calls each operation makes.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_get_items::TransactGetItemsError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, CancellationReason, ConditionCheck, Delete, Get,
    GlobalSecondaryIndex, KeySchemaElement, KeyType, KeysAndAttributes, Projection, ProjectionType, Put,
    ScalarAttributeType, Select, StreamSpecification, StreamViewType, TimeToLiveSpecification, TransactGetItem,
    TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::clock::Timestamp;
use crate::ids::{ExternalId, WithdrawalId};
use crate::ledger::{
    Balance, BalancePart, Balances, Bucket, LedgerEntry, PlatformEntry, PlatformShard, PENDING_SHARDS,
};
use crate::member::{Member, MemberId, VerificationCode};
use crate::money::{Amount, Currency};
use crate::phone::PhoneNumber;
use crate::records::{Collection, CollectionStatus, IdempotencyRecord, Refund, RunRecord, Withdrawal};
use crate::store::{
    validate_commit, Doc, DocKey, EntryRange, Expect, MemberState, Page, PageRequest, Store, StoreError,
    WithdrawalContext, Write,
};

type Item = HashMap<String, AttributeValue>;

/// The TTL attribute (epoch seconds) on codes and idempotency keys.
pub const TTL_ATTRIBUTE: &str = "expires_at_ttl";
/// The overloaded "by member" index: a member's withdrawals and its collections.
pub const GSI_BY_MEMBER: &str = "GSI1";
pub const GSI_DUE_COLLECTIONS: &str = "GSI2";
/// Unsettled collections spread over this many GSI2 partitions, so no single key is hot.
pub const DUE_SHARDS: u32 = 8;

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn member_pk(member_id: &MemberId) -> String {
    format!("MEMBER#{member_id}")
}

fn ledger_pk(member_id: &MemberId, currency: Currency) -> String {
    format!("LEDGER#{member_id}#{currency}")
}

fn key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([("PK".to_owned(), s(pk)), ("SK".to_owned(), s(sk))])
}

fn due_shard(collection_id: &str) -> u32 {
    // FNV-1a: stable across processes and releases, unlike `DefaultHasher`.
    let hash = collection_id
        .bytes()
        .fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    hash % DUE_SHARDS
}

/// Due-time sort key: zero-padded so string order is time order.
fn due_sort_key(at: Timestamp, collection_id: &str) -> String {
    format!("{:015}#{collection_id}", at.unix_millis().max(0))
}

fn unavailable<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Unavailable(DisplayErrorContext(&e).to_string())
}

fn platform_pk(shard: &PlatformShard) -> String {
    format!("PLATFORM#{}", shard.name())
}

fn platform_ledger_pk(shard: &PlatformShard) -> String {
    format!("PLATFORM#{}#LEDGER", shard.name())
}

/// A document's item: its key, `version`, `body` and, when it expires, the TTL.
fn doc_item(doc: &Doc) -> Item {
    let mut item = key(doc.key.partition.clone(), doc.key.sort.clone());
    item.insert("version".to_owned(), n(doc.version));
    item.insert("body".to_owned(), s(doc.body.clone()));
    if let Some(at) = doc.expires_at {
        item.insert(TTL_ATTRIBUTE.to_owned(), n(at.unix_seconds()));
        item.insert("expires_at".to_owned(), n(at.unix_millis()));
    }
    item
}

fn doc_from_item(item: &Item) -> Result<Doc, StoreError> {
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value.clone()),
        _ => Err(StoreError::Corrupt(format!("a document has no string {name}"))),
    };
    let number = |name: &str| match item.get(name) {
        Some(AttributeValue::N(value)) => value
            .parse::<i64>()
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("document {name}: {e}"))),
        None => Ok(None),
        Some(_) => Err(StoreError::Corrupt(format!("document {name} is not a number"))),
    };
    Ok(Doc {
        key: DocKey::new(text("PK")?, text("SK")?),
        version: number("version")?.and_then(|v| u64::try_from(v).ok()).unwrap_or(0),
        expires_at: number("expires_at")?.map(Timestamp::from_unix_millis),
        body: text("body")?,
    })
}

fn record_item<T: Serialize>(record: &T, keys: Item) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    item.extend(keys);
    Ok(item)
}

fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The most items a member's partition holds: the profile, the code, and per currency
/// the balance item and its pending shards.
const MEMBER_PARTITION_ITEMS: usize = 2 + Currency::ALL.len() * (1 + PENDING_SHARDS as usize);

/// The sort key of a balance item (`BALANCE#USD`) or of one of its pending shards
/// (`BALANCE#USD#P3`, see `ledger::PENDING_SHARDS`): all in the member's partition, so
/// the one `Query` that reads the account reads them all.
fn balance_sort_key(currency: Currency, part: BalancePart) -> String {
    match part {
        BalancePart::Main => format!("BALANCE#{currency}"),
        BalancePart::Pending(shard) => format!("BALANCE#{currency}#P{shard}"),
    }
}

/// Adds a balance item or pending shard (by its sort key) to the member's balances.
fn add_balance_item(balances: &mut Balances, sk: &str, item: &Item) -> Result<(), StoreError> {
    let currency = sk
        .strip_prefix("BALANCE#")
        .map(|rest| rest.split_once("#P").map_or(rest, |(code, _)| code))
        .and_then(|code| Currency::ALL.into_iter().find(|c| c.code() == code))
        .ok_or_else(|| StoreError::Corrupt(format!("unexpected balance item {sk}")))?;
    let slot = balances.get_mut(currency);
    *slot = slot
        .plus(&balance_from_item(item)?)
        .ok_or_else(|| StoreError::Corrupt(format!("balance overflow at {sk}")))?;
    Ok(())
}

fn balance_from_item(item: &Item) -> Result<Balance, StoreError> {
    let bucket = |name: &str| -> Result<Amount, StoreError> {
        match item.get(name) {
            Some(AttributeValue::N(text)) => Amount::parse_stored(text).map_err(|e| StoreError::Corrupt(e.to_string())),
            None => Ok(Amount::ZERO),
            Some(_) => Err(StoreError::Corrupt(format!("balance attribute {name} is not a number"))),
        }
    };
    Ok(Balance {
        available: bucket(Bucket::Available.as_str())?,
        pending: bucket(Bucket::Pending.as_str())?,
        in_transit: bucket(Bucket::InTransit.as_str())?,
    })
}

/// The condition of an [`Expect`] with its placeholders, in the `Option`s the SDK's
/// `set_*` builder methods take (all `None` for `Expect::Any`).
struct VersionCondition {
    expression: Option<String>,
    names: Option<HashMap<String, String>>,
    values: Option<HashMap<String, AttributeValue>>,
}

fn version_condition(expect: Expect) -> VersionCondition {
    let (expression, placeholders) = match expect {
        Expect::Any => (None, None),
        Expect::Absent => (Some("attribute_not_exists(PK)"), None),
        Expect::Version(v) => (Some("#version = :expected_version"), Some(n(v))),
    };
    VersionCondition {
        expression: expression.map(str::to_owned),
        names: placeholders
            .as_ref()
            .map(|_| HashMap::from([("#version".to_owned(), "version".to_owned())])),
        values: placeholders.map(|v| HashMap::from([(":expected_version".to_owned(), v)])),
    }
}

fn conditional_put(item: Item, table: &str, expect: Expect) -> Result<TransactWriteItem, StoreError> {
    let condition = version_condition(expect);
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .set_condition_expression(condition.expression)
        .set_expression_attribute_names(condition.names)
        .set_expression_attribute_values(condition.values);
    let put = put.build().map_err(|e| StoreError::InvalidCommit(e.to_string()))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> DynamoStore {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table as `template.yaml` declares it (for tests and local runs).
    pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
        let string_attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| StoreError::InvalidCommit(e.to_string()))
        };
        let key_element = |name: &str, key_type: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
                .map_err(|e| StoreError::InvalidCommit(e.to_string()))
        };
        let gsi = |name: &str, pk: &str, sk: &str| -> Result<GlobalSecondaryIndex, StoreError> {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key_element(pk, KeyType::Hash)?)
                .key_schema(key_element(sk, KeyType::Range)?)
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .map_err(|e| StoreError::InvalidCommit(e.to_string()))
        };
        client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(string_attr("PK")?)
            .attribute_definitions(string_attr("SK")?)
            .attribute_definitions(string_attr("GSI1PK")?)
            .attribute_definitions(string_attr("GSI1SK")?)
            .attribute_definitions(string_attr("GSI2PK")?)
            .attribute_definitions(string_attr("GSI2SK")?)
            .key_schema(key_element("PK", KeyType::Hash)?)
            .key_schema(key_element("SK", KeyType::Range)?)
            .global_secondary_indexes(gsi(GSI_BY_MEMBER, "GSI1PK", "GSI1SK")?)
            .global_secondary_indexes(gsi(GSI_DUE_COLLECTIONS, "GSI2PK", "GSI2SK")?)
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewImage)
                    .build()
                    .map_err(|e| StoreError::InvalidCommit(e.to_string()))?,
            )
            .send()
            .await
            .map_err(unavailable)?;
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(TTL_ATTRIBUTE)
                    .build()
                    .map_err(|e| StoreError::InvalidCommit(e.to_string()))?,
            )
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    fn transact_item(&self, write: &Write) -> Result<TransactWriteItem, StoreError> {
        let table = self.table.as_str();
        match write {
            Write::PutMember { member, expect } => {
                let item = record_item(member, key(member_pk(&member.member_id), "PROFILE"))?;
                conditional_put(item, table, *expect)
            }
            Write::PutCode { code, expect } => {
                let mut item = record_item(code, key(member_pk(&code.member_id), "CODE"))?;
                item.insert(TTL_ATTRIBUTE.to_owned(), n(code.expires_at.unix_seconds()));
                conditional_put(item, table, *expect)
            }
            Write::IndexMember { member_id } => {
                let mut item = key(format!("MEMBERS#{}", member_id.shard()), member_id.as_str());
                item.insert("member_id".to_owned(), s(member_id.as_str()));
                conditional_put(item, table, Expect::Any)
            }
            Write::CheckMember { member_id, version } => {
                let mut check = ConditionCheck::builder()
                    .table_name(table)
                    .set_key(Some(key(member_pk(member_id), "PROFILE")));
                check = match version {
                    None => check.condition_expression("attribute_exists(PK)"),
                    Some(v) => check
                        .condition_expression("#version = :expected_version")
                        .expression_attribute_names("#version", "version")
                        .expression_attribute_values(":expected_version", n(v)),
                };
                let check = check.build().map_err(|e| StoreError::InvalidCommit(e.to_string()))?;
                Ok(TransactWriteItem::builder().condition_check(check).build())
            }
            Write::DeleteCode { member_id, expect } => {
                let condition = version_condition(*expect);
                let delete = Delete::builder()
                    .table_name(table)
                    .set_key(Some(key(member_pk(member_id), "CODE")))
                    .set_condition_expression(condition.expression)
                    .set_expression_attribute_names(condition.names)
                    .set_expression_attribute_values(condition.values)
                    .build()
                    .map_err(|e| StoreError::InvalidCommit(e.to_string()))?;
                Ok(TransactWriteItem::builder().delete(delete).build())
            }
            Write::AdjustBalance {
                member_id,
                currency,
                part,
                deltas,
            } => {
                let mut sets = vec!["member_id = :member_id".to_owned(), "currency = :currency".to_owned()];
                let mut conditions = Vec::new();
                let mut update = Update::builder()
                    .table_name(table)
                    .set_key(Some(key(member_pk(member_id), balance_sort_key(*currency, *part))))
                    .expression_attribute_values(":member_id", s(member_id.as_str()))
                    .expression_attribute_values(":currency", s(currency.code()))
                    .expression_attribute_values(":zero", n("0"));
                for bucket in Bucket::ALL {
                    let name = bucket.as_str();
                    let delta = deltas.get(bucket);
                    sets.push(format!("#{name} = if_not_exists(#{name}, :zero) + :delta_{name}"));
                    update = update
                        .expression_attribute_names(format!("#{name}"), name)
                        .expression_attribute_values(format!(":delta_{name}"), n(delta));
                    if delta.is_negative() {
                        // `>=` on a missing attribute is false: an absent balance is zero.
                        conditions.push(format!("#{name} >= :need_{name}"));
                        update = update.expression_attribute_values(format!(":need_{name}"), n(delta.negated()));
                    }
                }
                update = update.update_expression(format!("SET {}", sets.join(", ")));
                if !conditions.is_empty() {
                    update = update.condition_expression(conditions.join(" AND "));
                }
                let update = update.build().map_err(|e| StoreError::InvalidCommit(e.to_string()))?;
                Ok(TransactWriteItem::builder().update(update).build())
            }
            Write::AppendLedger(entry) => {
                let item = record_item(
                    entry,
                    key(ledger_pk(&entry.member_id, entry.currency), entry.id.clone()),
                )?;
                conditional_put(item, table, Expect::Absent)
            }
            Write::PutWithdrawal { withdrawal, expect } => {
                let mut keys = key(format!("WITHDRAWAL#{}", withdrawal.id), "WITHDRAWAL");
                keys.insert(
                    "GSI1PK".to_owned(),
                    s(format!("{}#WITHDRAWALS", member_pk(&withdrawal.member_id))),
                );
                keys.insert("GSI1SK".to_owned(), s(withdrawal.id.to_string()));
                conditional_put(record_item(withdrawal, keys)?, table, *expect)
            }
            Write::PutCollection { collection, expect } => {
                let mut keys = key(format!("COLLECTION#{}", collection.collection_id), "COLLECTION");
                keys.insert(
                    "GSI1PK".to_owned(),
                    s(format!("{}#COLLECTIONS", member_pk(&collection.member_id))),
                );
                keys.insert("GSI1SK".to_owned(), s(collection.collection_id.to_string()));
                if collection.status == CollectionStatus::Pending {
                    let shard = due_shard(collection.collection_id.as_str());
                    keys.insert("GSI2PK".to_owned(), s(format!("DUE#{shard}")));
                    keys.insert(
                        "GSI2SK".to_owned(),
                        s(due_sort_key(collection.available_at, collection.collection_id.as_str())),
                    );
                }
                conditional_put(record_item(collection, keys)?, table, *expect)
            }
            Write::PutRefund(refund) => {
                let item = record_item(refund, key(format!("REFUND#{}", refund.refund_id), "REFUND"))?;
                conditional_put(item, table, Expect::Absent)
            }
            Write::PutRun(run) => conditional_put(
                record_item(run, key("RECONCILIATION".to_owned(), run.run_id.clone()))?,
                table,
                Expect::Absent,
            ),
            Write::PutIdempotency { record, now } => {
                let mut item = record_item(
                    record,
                    key(format!("IDEMPOTENCY#{}", record.member_id), record.key.clone()),
                )?;
                item.insert(TTL_ATTRIBUTE.to_owned(), n(record.expires_at.unix_seconds()));
                let put = Put::builder()
                    .table_name(table)
                    .set_item(Some(item))
                    // An expired key is free even before TTL deletes it.
                    .condition_expression("attribute_not_exists(PK) OR #expires_at <= :now")
                    .expression_attribute_names("#expires_at", "expires_at")
                    .expression_attribute_values(":now", n(now.unix_millis()))
                    .build()
                    .map_err(|e| StoreError::InvalidCommit(e.to_string()))?;
                Ok(TransactWriteItem::builder().put(put).build())
            }
            Write::PutDoc { doc, expect } => conditional_put(doc_item(doc), table, *expect),
            Write::DeleteDoc { key: doc_key, expect } => {
                let condition = version_condition(*expect);
                let delete = Delete::builder()
                    .table_name(table)
                    .set_key(Some(key(doc_key.partition.clone(), doc_key.sort.clone())))
                    .set_condition_expression(condition.expression)
                    .set_expression_attribute_names(condition.names)
                    .set_expression_attribute_values(condition.values)
                    .build()
                    .map_err(|e| StoreError::InvalidCommit(e.to_string()))?;
                Ok(TransactWriteItem::builder().delete(delete).build())
            }
            Write::AdjustPlatform { shard, delta } => {
                let update = Update::builder()
                    .table_name(table)
                    .set_key(Some(key(platform_pk(shard), "BALANCE")))
                    // ADD creates the number at zero: no read, no condition, so members'
                    // movements never conflict over a shard (only DynamoDB's own
                    // serialization of writes to one item).
                    .update_expression("ADD #balance :delta SET #account = :account, #currency = :currency")
                    .expression_attribute_names("#balance", "balance")
                    .expression_attribute_names("#account", "account")
                    .expression_attribute_names("#currency", "currency")
                    .expression_attribute_values(":delta", n(delta))
                    .expression_attribute_values(":account", s(shard.account.as_str()))
                    .expression_attribute_values(":currency", s(shard.currency.code()))
                    .build()
                    .map_err(|e| StoreError::InvalidCommit(e.to_string()))?;
                Ok(TransactWriteItem::builder().update(update).build())
            }
            Write::AppendPlatformEntry(entry) => {
                let item = record_item(entry, key(platform_ledger_pk(&entry.shard()), entry.id.clone()))?;
                conditional_put(item, table, Expect::Absent)
            }
        }
    }

    /// Sends one transaction item as the plain `PutItem` or `DeleteItem` it describes:
    /// the same item or key, the same condition, the same placeholders.
    async fn plain_write(&self, item: TransactWriteItem) -> Result<(), StoreError> {
        match item {
            TransactWriteItem { put: Some(put), .. } => self
                .client
                .put_item()
                .table_name(put.table_name)
                .set_item(Some(put.item))
                .set_condition_expression(put.condition_expression)
                .set_expression_attribute_names(put.expression_attribute_names)
                .set_expression_attribute_values(put.expression_attribute_values)
                .send()
                .await
                .map(drop)
                .map_err(plain_write_error),
            TransactWriteItem {
                delete: Some(delete), ..
            } => self
                .client
                .delete_item()
                .table_name(delete.table_name)
                .set_key(Some(delete.key))
                .set_condition_expression(delete.condition_expression)
                .set_expression_attribute_names(delete.expression_attribute_names)
                .set_expression_attribute_values(delete.expression_attribute_values)
                .send()
                .await
                .map(drop)
                .map_err(plain_write_error),
            other => Err(StoreError::InvalidCommit(format!(
                "not a plain put or delete: {other:?}"
            ))),
        }
    }

    /// Runs a Query page by page until `limit` items or the end: `Limit` caps items read,
    /// and a page can also end at 1 MB.
    /// The profile's keys and `attributes`, nothing else (`None` without a member): one
    /// consistent `Query` of the one item with `Select: SPECIFIC_ATTRIBUTES`, the shape the
    /// roles that must never see password hashes are limited to (`dynamodb:Attributes`).
    /// Consistent, so a member created a moment ago is found.
    async fn profile_attributes(&self, member_id: &MemberId, attributes: &[&str]) -> Result<Option<Item>, StoreError> {
        let mut projection = vec!["#PK".to_owned(), "#SK".to_owned()];
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("#PK = :pk AND #SK = :profile")
            .expression_attribute_values(":pk", s(member_pk(member_id)))
            .expression_attribute_values(":profile", s("PROFILE"))
            .select(Select::SpecificAttributes)
            .expression_attribute_names("#PK", "PK")
            .expression_attribute_names("#SK", "SK");
        for attribute in attributes {
            projection.push(format!("#{attribute}"));
            query = query.expression_attribute_names(format!("#{attribute}"), *attribute);
        }
        let output = query
            .projection_expression(projection.join(", "))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(output.items.unwrap_or_default().into_iter().next())
    }

    async fn query_items(
        &self,
        index: Option<&str>,
        key_condition: &str,
        values: Vec<(&str, AttributeValue)>,
        forward: bool,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let remaining = i32::try_from(limit - items.len()).unwrap_or(i32::MAX);
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_owned))
                .key_condition_expression(key_condition)
                .scan_index_forward(forward)
                .limit(remaining)
                .set_exclusive_start_key(start.take());
            if index.is_none() {
                query = query.consistent_read(true);
            }
            for (name, value) in &values {
                query = query.expression_attribute_values(*name, value.clone());
            }
            let output = query.send().await.map_err(unavailable)?;
            items.extend(output.items.unwrap_or_default());
            match output.last_evaluated_key {
                Some(last) if items.len() < limit => start = Some(last),
                _ => return Ok(items),
            }
        }
    }

    /// One record by its key, read consistently.
    async fn get_record<T: DeserializeOwned>(&self, pk: String, sk: &str) -> Result<Option<T>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        output.item.map(from_item).transpose()
    }

    /// A page of one partition's records, newest (highest sort key) first, strictly
    /// below `page.before`: the table's own keys, or GSI1's.
    async fn newest_first<T: DeserializeOwned>(
        &self,
        index: Option<&str>,
        partition: String,
        page: &PageRequest,
    ) -> Result<Page<T>, StoreError> {
        let (pk, sk) = if index.is_some() {
            ("GSI1PK", "GSI1SK")
        } else {
            ("PK", "SK")
        };
        let mut values = vec![(":pk", s(partition))];
        let condition = match &page.before {
            Some(before) => {
                values.push((":before", s(before.clone())));
                format!("{pk} = :pk AND {sk} < :before")
            }
            None => format!("{pk} = :pk"),
        };
        let items = self
            .query_items(index, &condition, values, false, page.limit + 1)
            .await?;
        let records = items.into_iter().map(from_item).collect::<Result<Vec<T>, _>>()?;
        Ok(page_of(records, page.limit))
    }

    async fn ledger_partition(
        &self,
        member_id: &MemberId,
        currency: Currency,
        page: &PageRequest,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        // limit + 1 items each, so the merged page still knows whether more exist.
        let wider = PageRequest {
            limit: page.limit + 1,
            before: page.before.clone(),
        };
        Ok(self
            .newest_first(None, ledger_pk(member_id, currency), &wider)
            .await?
            .items)
    }
}

/// The attributes a balance read projects (as `#name` placeholders): exactly the
/// `dynamodb:Attributes` the reconcile function's role may read.
pub const BALANCE_PROJECTION: [&str; 5] = ["#PK", "#SK", "#available", "#pending", "#in_transit"];

/// What a cancelled `TransactWriteItems` or `TransactGetItems` means, from its
/// per-item reasons: a failed condition (which write), a conflict with another
/// transaction (retry the same call), or anything else (throttling, capacity).
fn cancellation(reasons: &[CancellationReason]) -> StoreError {
    if let Some(write_index) = reasons.iter().position(|r| r.code() == Some("ConditionalCheckFailed")) {
        StoreError::ConditionFailed { write_index }
    } else if reasons.iter().any(|r| r.code() == Some("TransactionConflict")) {
        StoreError::Contention
    } else {
        let codes: Vec<&str> = reasons.iter().filter_map(|r| r.code()).collect();
        StoreError::Unavailable(format!("transaction cancelled: {codes:?}"))
    }
}

/// Whether the adapter makes `writes` a plain conditional `PutItem` or `DeleteItem`
/// rather than a `TransactWriteItems`: exactly one write that puts or deletes one item.
/// Half the write units (1 per KB instead of 2), and the same all-or-nothing with the
/// same condition, since one item is written whole or not at all.
///
/// The writes that stay in a transaction when alone: `CheckMember` (writes nothing: a
/// condition check exists only inside a transaction), and `AdjustBalance` /
/// `AdjustPlatform` (an `UpdateItem` that adds: the SDK retries a call whose answer was
/// lost, and only the transaction's `ClientRequestToken`, which the SDK fills in, makes
/// that retry a no-op instead of a second addition). Neither happens alone today (a
/// posting always carries its ledger entries). A put or delete retried after it landed
/// fails its condition (or rewrites the same item), which the domain already takes as
/// "read again" — the simulator's `fresh_retry` fault has always played exactly that.
pub fn commits_as_plain_write(writes: &[Write]) -> bool {
    match writes {
        [write] => !matches!(
            write,
            Write::CheckMember { .. } | Write::AdjustBalance { .. } | Write::AdjustPlatform { .. }
        ),
        _ => false,
    }
}

/// What a failed plain write means, from its error code: the same [`StoreError`]s as a
/// cancelled transaction of that one write.
fn plain_write_error<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err.as_service_error().and_then(|e| e.code()) {
        Some("ConditionalCheckFailedException") => StoreError::ConditionFailed { write_index: 0 },
        // The item is in a transaction in flight (or, in a global table, being written
        // in another Region): nothing was written, the same call may be retried.
        Some("TransactionConflictException" | "ReplicatedWriteConflictException") => StoreError::Contention,
        _ => unavailable(err),
    }
}

/// A failed `TransactGetItems`: cancelled because a transaction was writing one of its
/// items (a conflict, retried), or unavailable.
fn transact_get_error<R: std::fmt::Debug + Send + Sync + 'static>(
    err: SdkError<TransactGetItemsError, R>,
) -> StoreError {
    match err.into_service_error() {
        TransactGetItemsError::TransactionCanceledException(cancelled) => {
            cancellation(cancelled.cancellation_reasons())
        }
        other => StoreError::Unavailable(DisplayErrorContext(&other).to_string()),
    }
}

fn page_of<T>(mut items: Vec<T>, limit: usize) -> Page<T> {
    let more = items.len() > limit;
    items.truncate(limit);
    Page { items, more }
}

#[async_trait]
impl Store for DynamoStore {
    async fn member_state(&self, member_id: &MemberId) -> Result<Option<MemberState>, StoreError> {
        let items = self
            .query_items(
                None,
                "PK = :pk",
                vec![(":pk", s(member_pk(member_id)))],
                true,
                MEMBER_PARTITION_ITEMS,
            )
            .await?;
        let mut member = None;
        let mut code = None;
        let mut balances = Balances::default();
        for item in items {
            let sk = match item.get("SK") {
                Some(AttributeValue::S(sk)) => sk.clone(),
                _ => return Err(StoreError::Corrupt("item without SK".to_owned())),
            };
            match sk.as_str() {
                "PROFILE" => member = Some(from_item::<Member>(item)?),
                "CODE" => code = Some(from_item::<VerificationCode>(item)?),
                balance if balance.starts_with("BALANCE#") => add_balance_item(&mut balances, balance, &item)?,
                other => {
                    return Err(StoreError::Corrupt(format!(
                        "unexpected item {other} in a member partition"
                    )))
                }
            }
        }
        Ok(member.map(|member| MemberState { member, code, balances }))
    }

    async fn member_exists(&self, member_id: &MemberId) -> Result<bool, StoreError> {
        // The profile's keys and nothing else: the collection role allows exactly these
        // attributes, so it never reads password hashes.
        Ok(self.profile_attributes(member_id, &[]).await?.is_some())
    }

    async fn member_phone(&self, member_id: &MemberId) -> Result<Option<PhoneNumber>, StoreError> {
        // The profile's `phone` and nothing else: the publisher's role allows exactly
        // these attributes, so it never reads password hashes.
        let item = self.profile_attributes(member_id, &["phone"]).await?;
        match item.as_ref().and_then(|item| item.get("phone")) {
            Some(AttributeValue::S(text)) => PhoneNumber::parse(text)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("a profile's phone: {e}"))),
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(_) => Err(StoreError::Corrupt("a profile's phone is not a string".to_owned())),
        }
    }

    async fn balances(&self, member_id: &MemberId) -> Result<Balances, StoreError> {
        // Only the balance items, and of them only the keys and amounts: the reconcile
        // function's role allows exactly these attributes (`dynamodb:Attributes`), so
        // it can never read a profile's password hashes.
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("PK = :pk AND begins_with(SK, :balance)")
            .expression_attribute_values(":pk", s(member_pk(member_id)))
            .expression_attribute_values(":balance", s("BALANCE#"))
            .select(Select::SpecificAttributes)
            .projection_expression(BALANCE_PROJECTION.join(", "));
        for name in BALANCE_PROJECTION {
            query = query.expression_attribute_names(name, &name[1..]);
        }
        let output = query.send().await.map_err(unavailable)?;
        let mut balances = Balances::default();
        for item in output.items.unwrap_or_default() {
            match item.get("SK") {
                Some(AttributeValue::S(sk)) => add_balance_item(&mut balances, sk, &item)?,
                other => return Err(StoreError::Corrupt(format!("unexpected balance item {other:?}"))),
            }
        }
        Ok(balances)
    }

    async fn withdrawal_context(
        &self,
        member_id: &MemberId,
        currency: Currency,
        idempotency_key: &str,
        docs: &[DocKey],
    ) -> Result<WithdrawalContext, StoreError> {
        let get = |pk: String, sk: String| -> Result<TransactGetItem, StoreError> {
            let get = Get::builder()
                .table_name(&self.table)
                .set_key(Some(key(pk, sk)))
                .build()
                .map_err(|e| StoreError::InvalidCommit(e.to_string()))?;
            Ok(TransactGetItem::builder().get(get).build())
        };
        let mut request = self
            .client
            .transact_get_items()
            .transact_items(get(member_pk(member_id), "PROFILE".to_owned())?)
            .transact_items(get(member_pk(member_id), format!("BALANCE#{currency}"))?)
            .transact_items(get(format!("IDEMPOTENCY#{member_id}"), idempotency_key.to_owned())?);
        for doc in docs {
            request = request.transact_items(get(doc.partition.clone(), doc.sort.clone())?);
        }
        let output = request.send().await.map_err(transact_get_error)?;
        let mut responses = output.responses.unwrap_or_default().into_iter().map(|r| r.item);
        let member = responses.next().flatten().map(from_item::<Member>).transpose()?;
        let balance = match responses.next().flatten() {
            Some(item) => balance_from_item(&item)?,
            None => Balance::default(),
        };
        let idempotency = responses
            .next()
            .flatten()
            .map(from_item::<IdempotencyRecord>)
            .transpose()?;
        let docs = responses
            .map(|item| item.as_ref().map(doc_from_item).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(WithdrawalContext {
            member,
            balance,
            idempotency,
            docs,
        })
    }

    async fn docs(&self, keys: &[DocKey]) -> Result<Vec<Option<Doc>>, StoreError> {
        let mut request = self.client.transact_get_items();
        for doc in keys {
            let get = Get::builder()
                .table_name(&self.table)
                .set_key(Some(key(doc.partition.clone(), doc.sort.clone())))
                .build()
                .map_err(|e| StoreError::InvalidCommit(e.to_string()))?;
            request = request.transact_items(TransactGetItem::builder().get(get).build());
        }
        let output = request.send().await.map_err(transact_get_error)?;
        output
            .responses
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.item.as_ref().map(doc_from_item).transpose())
            .collect()
    }

    async fn doc_page(&self, partition: &str, page: &PageRequest) -> Result<Page<Doc>, StoreError> {
        let mut values = vec![(":pk", s(partition))];
        let condition = match &page.before {
            Some(before) => {
                values.push((":before", s(before.clone())));
                "PK = :pk AND SK < :before"
            }
            None => "PK = :pk",
        };
        let items = self.query_items(None, condition, values, false, page.limit + 1).await?;
        let docs = items.iter().map(doc_from_item).collect::<Result<Vec<_>, _>>()?;
        Ok(page_of(docs, page.limit))
    }

    async fn platform_balances(&self) -> Result<Vec<(PlatformShard, Amount)>, StoreError> {
        let shards: Vec<PlatformShard> = PlatformShard::all().collect();
        // Each answer names its item by key only: which shard a key is, looked up once.
        let by_key: HashMap<String, PlatformShard> = shards.iter().map(|s| (platform_pk(s), *s)).collect();
        let mut found = Vec::new();
        // BatchGetItem takes 100 keys a call; the shards are fewer (3 × 2 × 16).
        for chunk in shards.chunks(100) {
            let mut pending: Option<KeysAndAttributes> = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.iter().map(|s| key(platform_pk(s), "BALANCE")).collect()))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::InvalidCommit(e.to_string()))?,
            );
            while let Some(keys) = pending.take() {
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, keys)
                    .send()
                    .await
                    .map_err(unavailable)?;
                for item in output
                    .responses
                    .unwrap_or_default()
                    .remove(&self.table)
                    .unwrap_or_default()
                {
                    let Some(AttributeValue::S(pk)) = item.get("PK") else {
                        return Err(StoreError::Corrupt("a platform shard has no PK".to_owned()));
                    };
                    let shard = by_key
                        .get(pk)
                        .ok_or_else(|| StoreError::Corrupt(format!("unknown platform shard {pk}")))?;
                    let balance = match item.get("balance") {
                        Some(AttributeValue::N(text)) => {
                            Amount::parse_stored(text).map_err(|e| StoreError::Corrupt(e.to_string()))?
                        }
                        _ => Amount::ZERO,
                    };
                    found.push((*shard, balance));
                }
                // Keys DynamoDB did not get to (throttling, size) are asked again.
                pending = output
                    .unprocessed_keys
                    .and_then(|mut unprocessed| unprocessed.remove(&self.table))
                    .filter(|keys| !keys.keys().is_empty());
            }
        }
        found.sort_by_key(|(shard, _)| *shard);
        Ok(found)
    }

    async fn platform_entries(
        &self,
        shard: PlatformShard,
        page: &PageRequest,
    ) -> Result<Page<PlatformEntry>, StoreError> {
        self.newest_first(None, platform_ledger_pk(&shard), page).await
    }

    async fn idempotency_record(
        &self,
        member_id: &MemberId,
        key_text: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.get_record(format!("IDEMPOTENCY#{member_id}"), key_text).await
    }

    async fn withdrawal(&self, id: &WithdrawalId) -> Result<Option<Withdrawal>, StoreError> {
        self.get_record(format!("WITHDRAWAL#{id}"), "WITHDRAWAL").await
    }

    async fn withdrawals(&self, member_id: &MemberId, page: &PageRequest) -> Result<Page<Withdrawal>, StoreError> {
        let partition = format!("{}#WITHDRAWALS", member_pk(member_id));
        self.newest_first(Some(GSI_BY_MEMBER), partition, page).await
    }

    async fn ledger(
        &self,
        member_id: &MemberId,
        currency: Option<Currency>,
        page: &PageRequest,
    ) -> Result<Page<LedgerEntry>, StoreError> {
        let mut entries = Vec::new();
        let currencies: &[Currency] = match &currency {
            Some(c) => std::slice::from_ref(c),
            None => &Currency::ALL,
        };
        // Each currency is its own partition; a page over both merges the two newest-first runs.
        for currency in currencies {
            entries.extend(self.ledger_partition(member_id, *currency, page).await?);
        }
        entries.sort_by(|a: &LedgerEntry, b| b.id.cmp(&a.id));
        Ok(page_of(entries, page.limit))
    }

    async fn ledger_range(
        &self,
        member_id: &MemberId,
        currency: Currency,
        range: &EntryRange,
    ) -> Result<Page<LedgerEntry>, StoreError> {
        if range.is_empty() {
            return Ok(Page {
                items: Vec::new(),
                more: false,
            });
        }
        // One condition on the sort key only: BETWEEN the range's lowest and highest ids.
        let (lowest, highest) = range.id_bounds();
        let items = self
            .query_items(
                None,
                "PK = :pk AND SK BETWEEN :lowest AND :highest",
                vec![
                    (":pk", s(ledger_pk(member_id, currency))),
                    (":lowest", s(lowest)),
                    (":highest", s(highest)),
                ],
                true,
                range.limit + 1,
            )
            .await?;
        let entries = items
            .into_iter()
            .map(from_item)
            .collect::<Result<Vec<LedgerEntry>, _>>()?;
        Ok(page_of(entries, range.limit))
    }

    async fn collection(&self, collection_id: &ExternalId) -> Result<Option<Collection>, StoreError> {
        self.get_record(format!("COLLECTION#{collection_id}"), "COLLECTION")
            .await
    }

    async fn refund(&self, refund_id: &ExternalId) -> Result<Option<Refund>, StoreError> {
        self.get_record(format!("REFUND#{refund_id}"), "REFUND").await
    }

    async fn due_collections(&self, now: Timestamp, limit: usize) -> Result<Vec<Collection>, StoreError> {
        // Every key of a due collection sorts below "<now>#\u{10FFFF}".
        let upper = format!("{:015}#\u{10FFFF}", now.unix_millis().max(0));
        let mut due = Vec::new();
        for shard in 0..DUE_SHARDS {
            let items = self
                .query_items(
                    Some(GSI_DUE_COLLECTIONS),
                    "GSI2PK = :pk AND GSI2SK <= :upper",
                    vec![(":pk", s(format!("DUE#{shard}"))), (":upper", s(upper.clone()))],
                    true,
                    limit,
                )
                .await?;
            for item in items {
                due.push(from_item::<Collection>(item)?);
            }
        }
        due.sort_by(|a, b| (a.available_at, &a.collection_id).cmp(&(b.available_at, &b.collection_id)));
        due.truncate(limit);
        Ok(due)
    }

    async fn member_ids(
        &self,
        shard: u32,
        after: Option<&MemberId>,
        limit: usize,
    ) -> Result<Page<MemberId>, StoreError> {
        let mut values = vec![(":pk", s(format!("MEMBERS#{shard}")))];
        let condition = match after {
            Some(after) => {
                values.push((":after", s(after.as_str())));
                "PK = :pk AND SK > :after"
            }
            None => "PK = :pk",
        };
        let items = self.query_items(None, condition, values, true, limit + 1).await?;
        let mut ids = Vec::with_capacity(items.len());
        for item in items {
            match item.get("SK") {
                Some(AttributeValue::S(id)) => {
                    ids.push(MemberId::parse(id).map_err(|e| StoreError::Corrupt(e.to_string()))?)
                }
                _ => return Err(StoreError::Corrupt("member index item without SK".to_owned())),
            }
        }
        Ok(page_of(ids, limit))
    }

    async fn member_collections(
        &self,
        member_id: &MemberId,
        page: &PageRequest,
    ) -> Result<Page<Collection>, StoreError> {
        let partition = format!("{}#COLLECTIONS", member_pk(member_id));
        self.newest_first(Some(GSI_BY_MEMBER), partition, page).await
    }

    async fn run_record(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.get_record("RECONCILIATION".to_owned(), run_id).await
    }

    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        validate_commit(&writes)?;
        if commits_as_plain_write(&writes) {
            let item = self.transact_item(&writes[0])?;
            return self.plain_write(item).await;
        }
        let items = writes
            .iter()
            .map(|w| self.transact_item(w))
            .collect::<Result<Vec<_>, _>>()?;
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => match err.into_service_error() {
                TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                    Err(cancellation(cancelled.cancellation_reasons()))
                }
                TransactWriteItemsError::TransactionInProgressException(_) => Err(StoreError::Contention),
                other => Err(StoreError::Unavailable(DisplayErrorContext(&other).to_string())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(codes: &[&str]) -> Vec<CancellationReason> {
        codes
            .iter()
            .map(|code| CancellationReason::builder().code(*code).build())
            .collect()
    }

    /// One put or delete alone is a plain write; a condition check, an addition, or
    /// anything with company stays a transaction.
    #[test]
    fn only_a_lone_put_or_delete_is_a_plain_write() {
        let member = |id: &str| MemberId::parse(id).unwrap();
        let index = |id: &str| Write::IndexMember { member_id: member(id) };
        assert!(commits_as_plain_write(&[index("m-1")]));
        assert!(commits_as_plain_write(&[Write::DeleteCode {
            member_id: member("m-1"),
            expect: Expect::Version(3),
        }]));
        assert!(!commits_as_plain_write(&[index("m-1"), index("m-2")]));
        assert!(!commits_as_plain_write(&[Write::CheckMember {
            member_id: member("m-1"),
            version: None,
        }]));
        assert!(!commits_as_plain_write(&[Write::AdjustBalance {
            member_id: member("m-1"),
            currency: Currency::Usd,
            part: crate::ledger::BalancePart::Main,
            deltas: crate::ledger::BucketDeltas::default(),
        }]));
        assert!(!commits_as_plain_write(&[]));
    }

    /// DynamoDB's reasons, one per item: "None" for the items that were fine.
    #[test]
    fn cancellations_are_read_item_by_item() {
        assert_eq!(
            cancellation(&reasons(&["None", "ConditionalCheckFailed", "None"])),
            StoreError::ConditionFailed { write_index: 1 }
        );
        assert_eq!(
            cancellation(&reasons(&["None", "TransactionConflict", "None"])),
            StoreError::Contention,
            "a read or write that overlapped another transaction is retried"
        );
        assert!(matches!(
            cancellation(&reasons(&["ThrottlingError", "None"])),
            StoreError::Unavailable(_)
        ));
    }
}
