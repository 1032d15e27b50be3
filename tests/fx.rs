//! Money across currencies, on every store adapter: the fee schedule, reference rates,
//! locked quotes, conversions, withdrawals to a bank in another currency, and the
//! double-entry books with the platform's own accounts — every refusal of the contract,
//! the rounding at its boundaries, and the books summing to zero after each movement.

use std::sync::Arc;

use fund_account::error::ApiError;
use fund_account::exchange::{self, Fixed, QuoteRequest, RateUpdate};
use fund_account::fx::{Mid, Pair, Quote, QUOTE_TTL_SECONDS};
use fund_account::ledger::{Bucket, PlatformAccount};
use fund_account::member::MemberId;
use fund_account::money::{Amount, Currency};
use fund_account::reconciliation::{self, RunOptions, BOOKS_SETTLE_SECONDS};
use fund_account::records::WithdrawalStatus;
use fund_account::withdrawal::{self, IdempotencyKey, Payout, WithdrawalRequest};
use fund_account_tests::fixtures::amount;
use fund_account_tests::{for_each_adapter, test_app, Adapter, TestApp, PAYMENT_PASSWORD};

const USD: Currency = Currency::Usd;
const CNY: Currency = Currency::Cny;

fn usd_cny() -> Pair {
    Pair::new(USD, CNY).unwrap()
}

/// Stores the treasury's USD-CNY mid as of now.
async fn rate(t: &TestApp, mid: &str) {
    exchange::put_rate(
        &t.app,
        RateUpdate {
            pair: usd_cny(),
            mid: Mid::parse(mid).unwrap(),
            as_of: t.app.now(),
            confirm_jump: true,
        },
    )
    .await
    .expect("rate stored");
}

fn sell(from: Currency, to: Currency, value: &str) -> QuoteRequest {
    QuoteRequest {
        sell: from,
        buy: to,
        fixed: Fixed::Sell(amount(value)),
    }
}

async fn quote(t: &TestApp, member: &MemberId, request: QuoteRequest) -> Result<Quote, ApiError> {
    exchange::create_quote(&t.app, member, request).await
}

fn key(text: &str) -> IdempotencyKey {
    IdempotencyKey::parse(text).unwrap()
}

async fn convert(
    t: &TestApp,
    member: &MemberId,
    key_text: &str,
    quote: &Quote,
) -> Result<exchange::ConversionCreated, ApiError> {
    exchange::convert(&t.app, member, &key(key_text), &quote.id).await
}

fn cross_request(key_text: &str, value: &str, quote: Option<&Quote>) -> WithdrawalRequest {
    let mut request = fund_account_tests::fixtures::withdrawal_request(key_text, USD, value, PAYMENT_PASSWORD);
    request.payout_currency = CNY;
    request.quote_id = quote.map(|q| q.id.clone());
    request
}

/// A funded, active member and a fresh USD-CNY rate of 7.2.
async fn seller(adapter: Adapter) -> (TestApp, MemberId) {
    let t = test_app(adapter).await;
    let m = t.active_member("seller-fx").await;
    t.fund(&m, USD, "1000").await;
    t.fund(&m, CNY, "500").await;
    rate(&t, "7.2").await;
    (t, m)
}

/// The platform's account `account` in `currency`.
async fn platform(t: &TestApp, account: PlatformAccount, currency: Currency) -> Amount {
    exchange::platform_balances(&t.app)
        .await
        .unwrap()
        .into_iter()
        .find(|b| b.account == account && b.currency == currency)
        .unwrap()
        .balance
}

/// Every account in `currency`, the members' and the platform's, sums to zero.
async fn assert_books_sum_to_zero(t: &TestApp, members: &[&MemberId]) {
    for currency in Currency::ALL {
        let mut total = Amount::ZERO;
        for m in members {
            let b = *t.balances(m).await.get(currency);
            for bucket in Bucket::ALL {
                total = total.checked_add(b.get(bucket)).unwrap();
            }
        }
        for b in exchange::platform_balances(&t.app).await.unwrap() {
            if b.currency == currency {
                total = total.checked_add(b.balance).unwrap();
            }
        }
        assert_eq!(total, Amount::ZERO, "{currency}: members and platform sum to zero");
    }
    for m in members {
        t.assert_books_balance(m).await;
    }
}

/// A full reconciliation once every entry is old enough for the zero-sum check.
async fn reconcile_later(t: &TestApp) -> reconciliation::Report {
    t.clock.advance_seconds(BOOKS_SETTLE_SECONDS + 1);
    reconciliation::run(&t.app, RunOptions::full()).await.unwrap()
}

async fn rates_are_kept_with_their_history_and_refuse_stale_or_jumping_mids(adapter: Adapter) {
    let t = test_app(adapter).await;
    let put = |mid: &str, as_of_offset: i64, confirm_jump: bool| {
        let app = Arc::clone(&t.app);
        let now = t.app.now();
        let mid = Mid::parse(mid).unwrap();
        async move {
            exchange::put_rate(
                &app,
                RateUpdate {
                    pair: usd_cny(),
                    mid,
                    as_of: now.plus_seconds(as_of_offset),
                    confirm_jump,
                },
            )
            .await
        }
    };
    let first = put("7.2", -10, false).await.unwrap();
    assert_eq!(first.mid, Mid::parse("7.20000000").unwrap());
    // The same as_of and mid again: 200, no change.
    assert_eq!(put("7.2", -10, false).await.unwrap(), first);
    // The same as_of with another mid, or an older as_of: stale, nothing changed.
    assert!(matches!(put("7.3", -10, false).await, Err(ApiError::StaleRate(_))));
    assert!(matches!(put("7.25", -20, false).await, Err(ApiError::StaleRate(_))));
    // More than 5 minutes ahead: invalid.
    assert!(matches!(put("7.2", 301, false).await, Err(ApiError::InvalidAsOf(_))));
    assert!(put("7.2", 300, false).await.is_ok(), "5 minutes ahead is clock skew");
    // A jump of more than 10 % needs confirming; exactly 10 % does not.
    t.clock.advance_seconds(400);
    assert!(matches!(
        put("7.92000001", 0, false).await,
        Err(ApiError::RateOutOfBand(_))
    ));
    assert_eq!(put("7.92", 0, false).await.unwrap().mid, Mid::parse("7.92").unwrap());
    t.clock.advance_seconds(1);
    assert!(put("1", 0, true).await.is_ok(), "confirmed");
    // Every accepted rate is in the history.
    let history = t
        .app
        .store
        .doc_page(
            &exchange::keys::rate_history(usd_cny(), t.app.now()).partition,
            &fund_account::store::PageRequest {
                limit: 10,
                before: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(history.items.len(), 4, "7.2, 7.2 at +300 s, 7.92, 1");
}

async fn quotes_round_against_the_member_and_need_a_fresh_rate(adapter: Adapter) {
    let (t, m) = seller(adapter).await;
    // Sell-exact: 7.2 × (1 − 0.5 %) = 7.164; 100.00 × 7.164 = 716.40.
    let q = quote(&t, &m, sell(USD, CNY, "100")).await.unwrap();
    assert_eq!(
        (q.sell_amount, q.buy_amount, q.rate.to_string(), q.mid_rate.to_string()),
        (
            amount("100"),
            amount("716.40"),
            "7.164000".to_owned(),
            "7.20000000".to_owned()
        )
    );
    assert_eq!(q.expires_at, q.created_at.plus_seconds(QUOTE_TTL_SECONDS));
    // Buy-exact in the reverse direction: rate (1/7.2) × 0.995 = 0.138194 (down);
    // 13.81 USD costs 13.81 ÷ 0.138194 = 99.9319… → 99.94 CNY (up).
    let buy = QuoteRequest {
        sell: CNY,
        buy: USD,
        fixed: Fixed::Buy(amount("13.81")),
    };
    let q = quote(&t, &m, buy).await.unwrap();
    assert_eq!((q.sell_amount, q.buy_amount), (amount("99.94"), amount("13.81")));
    assert_eq!(q.mid_rate.to_string(), "0.13888889");
    // A result of 0.00 is refused: 0.01 CNY buys 0.001 USD.
    assert!(matches!(
        quote(&t, &m, sell(CNY, USD, "0.01")).await,
        Err(ApiError::InvalidAmount(_))
    ));
    // 300 s old is fresh; 301 s is stale.
    t.clock.advance_seconds(300);
    assert!(quote(&t, &m, sell(USD, CNY, "1")).await.is_ok());
    t.clock.advance_seconds(1);
    assert_eq!(
        quote(&t, &m, sell(USD, CNY, "1")).await.unwrap_err(),
        ApiError::FxRateUnavailable
    );
    assert_eq!(ApiError::FxRateUnavailable.retry_after_seconds(), Some(60));
}

async fn a_member_holds_at_most_ten_live_quotes(adapter: Adapter) {
    let (t, m) = seller(adapter).await;
    let mut quotes = Vec::new();
    for _ in 0..10 {
        quotes.push(quote(&t, &m, sell(USD, CNY, "10")).await.unwrap());
        t.clock.advance_seconds(1);
    }
    let eleventh = quote(&t, &m, sell(USD, CNY, "10")).await.unwrap_err();
    // The first expires 30 min after it was made, 10 s ago.
    assert_eq!(
        eleventh,
        ApiError::QuoteLimit {
            retry_after_seconds: QUOTE_TTL_SECONDS - 10
        }
    );
    // A used quote frees its place.
    convert(&t, &m, "k-1", &quotes[0]).await.unwrap();
    rate(&t, "7.2").await;
    assert!(quote(&t, &m, sell(USD, CNY, "10")).await.is_ok());
    assert!(matches!(
        quote(&t, &m, sell(USD, CNY, "10")).await,
        Err(ApiError::QuoteLimit { .. })
    ));
    // So does an expired one.
    t.clock.advance_seconds(QUOTE_TTL_SECONDS);
    rate(&t, "7.2").await;
    assert!(quote(&t, &m, sell(USD, CNY, "10")).await.is_ok());
}

async fn a_conversion_moves_both_balances_once_and_replays_its_key(adapter: Adapter) {
    let (t, m) = seller(adapter).await;
    let q = quote(&t, &m, sell(USD, CNY, "100")).await.unwrap();
    let first = convert(&t, &m, "k-1", &q).await.unwrap();
    assert!(!first.replayed);
    let c = &first.conversion;
    assert_eq!((c.sell_amount, c.buy_amount), (amount("100"), amount("716.40")));
    let balances = t.balances(&m).await;
    assert_eq!(
        (balances.usd.available, balances.cny.available),
        (amount("900"), amount("1216.40"))
    );
    // The same key again: the first conversion, and no money moves.
    let again = convert(&t, &m, "k-1", &q).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.conversion, first.conversion);
    assert_eq!(t.balances(&m).await, balances);
    // The same key for another quote: reused.
    let other = quote(&t, &m, sell(USD, CNY, "1")).await.unwrap();
    assert_eq!(
        convert(&t, &m, "k-1", &other).await.unwrap_err(),
        ApiError::IdempotencyKeyReused
    );
    // Another key for the used quote: used.
    assert_eq!(convert(&t, &m, "k-2", &q).await.unwrap_err(), ApiError::QuoteUsed);
    // The platform's FX position holds the other side of both legs.
    assert_eq!(platform(&t, PlatformAccount::FxPosition, USD).await, amount("100"));
    assert_eq!(platform(&t, PlatformAccount::FxPosition, CNY).await, amount("-716.40"));
    let listed = exchange::conversions(
        &t.app,
        &m,
        &fund_account::store::PageRequest {
            limit: 10,
            before: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(listed.items, vec![first.conversion.clone()]);
    assert_books_sum_to_zero(&t, &[&m]).await;
    let report = reconcile_later(&t).await;
    assert!(report.discrepancies.is_empty(), "{:?}", report.discrepancies);
}

async fn conversions_refuse_in_the_contract_order(adapter: Adapter) {
    let (t, m) = seller(adapter).await;
    let other = t.active_member("other-fx").await;
    let mine = quote(&t, &m, sell(USD, CNY, "100")).await.unwrap();
    // Another member's quote is not found.
    assert_eq!(
        convert(&t, &other, "k-1", &mine).await.unwrap_err(),
        ApiError::QuoteNotFound
    );
    // More than available.
    let big = quote(&t, &m, sell(USD, CNY, "1000.01")).await.unwrap();
    assert_eq!(
        convert(&t, &m, "k-2", &big).await.unwrap_err(),
        ApiError::InsufficientFunds {
            available: amount("1000")
        }
    );
    // A preview's quote serves only its withdrawal.
    let preview = exchange::preview(&t.app, &m, USD, amount("100"), CNY).await.unwrap();
    let preview_quote = preview.quote.unwrap();
    assert_eq!(
        convert(&t, &m, "k-3", &preview_quote).await.unwrap_err(),
        ApiError::QuoteMismatch
    );
    // Expired at its expires_at.
    t.clock.advance_seconds(QUOTE_TTL_SECONDS);
    assert_eq!(convert(&t, &m, "k-4", &mine).await.unwrap_err(), ApiError::QuoteExpired);
    // Nothing moved, and no key was kept by a refusal.
    let balances = t.balances(&m).await;
    assert_eq!(
        (balances.usd.available, balances.cny.available),
        (amount("1000"), amount("500"))
    );
    assert!(t.app.store.idempotency_record(&m, "k-2").await.unwrap().is_none());
}

async fn a_quote_is_used_once_under_a_burst_of_twenty_conversions(adapter: Adapter) {
    let (t, m) = seller(adapter).await;
    let q = quote(&t, &m, sell(USD, CNY, "100")).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (app, m, id) = (Arc::clone(&t.app), m.clone(), q.id.clone());
            tokio::spawn(async move { exchange::convert(&app, &m, &key(&format!("burst-{i}")), &id).await })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => created += 1,
            Err(error) => assert_eq!(error, ApiError::QuoteUsed),
        }
    }
    assert_eq!(created, 1, "one conversion per quote");
    let balances = t.balances(&m).await;
    assert_eq!(
        (balances.usd.available, balances.cny.available),
        (amount("900"), amount("1216.40"))
    );
    assert_books_sum_to_zero(&t, &[&m]).await;
}

async fn a_withdrawal_to_a_yuan_bank_is_charged_the_previewed_fee_and_books_its_fx_when_paid(adapter: Adapter) {
    let (t, m) = seller(adapter).await;
    // USD→CNY: 0.30 % of 1000 = 3.00, raised to the 8.00 minimum.
    let preview = exchange::preview(&t.app, &m, USD, amount("1000"), CNY).await.unwrap();
    assert_eq!((preview.fee, preview.net_amount), (amount("8"), amount("992")));
    let q = preview.quote.clone().unwrap();
    // 992 × 7.164 = 7106.688 → 7106.68.
    assert_eq!(
        (q.sell_amount, preview.payout_amount),
        (amount("992"), amount("7106.68"))
    );
    let created = withdrawal::withdraw(&t.app, &m, cross_request("w-1", "1000", Some(&q)))
        .await
        .unwrap();
    let w = created.withdrawal;
    let payout = w.payout.clone().unwrap();
    assert_eq!(
        (w.fee, w.net_amount, payout.currency, payout.amount),
        (amount("8"), amount("992"), CNY, amount("7106.68"))
    );
    // The quote is spent: the same quote again is used.
    assert_eq!(
        withdrawal::withdraw(&t.app, &m, cross_request("w-2", "1000", Some(&q)))
            .await
            .unwrap_err(),
        ApiError::QuoteUsed
    );
    // Paid: fee earned in USD, the FX position bought 992 USD and sold 7106.68 CNY,
    // which left through clearing.
    withdrawal::report_payout(&t.app, &w.id, Payout::Paid).await.unwrap();
    assert_eq!(platform(&t, PlatformAccount::FeeRevenue, USD).await, amount("8"));
    assert_eq!(platform(&t, PlatformAccount::FxPosition, USD).await, amount("992"));
    assert_eq!(platform(&t, PlatformAccount::FxPosition, CNY).await, amount("-7106.68"));
    // Clearing in CNY: −500 collected, +7106.68 paid out.
    assert_eq!(platform(&t, PlatformAccount::Clearing, CNY).await, amount("6606.68"));
    assert_books_sum_to_zero(&t, &[&m]).await;
    let report = reconcile_later(&t).await;
    assert!(report.discrepancies.is_empty(), "{:?}", report.discrepancies);
}

async fn a_returned_cross_currency_payout_gives_back_the_whole_amount_and_books_no_fx(adapter: Adapter) {
    let (t, m) = seller(adapter).await;
    let q = exchange::preview(&t.app, &m, USD, amount("100"), CNY)
        .await
        .unwrap()
        .quote
        .unwrap();
    let w = withdrawal::withdraw(&t.app, &m, cross_request("w-1", "100", Some(&q)))
        .await
        .unwrap()
        .withdrawal;
    let returned = withdrawal::report_payout(
        &t.app,
        &w.id,
        Payout::Returned {
            reason: "account closed".to_owned(),
        },
    )
    .await
    .unwrap();
    assert_eq!(returned.status, WithdrawalStatus::Returned);
    assert_eq!(t.balances(&m).await.usd.available, amount("1000"));
    for currency in Currency::ALL {
        assert_eq!(platform(&t, PlatformAccount::FxPosition, currency).await, Amount::ZERO);
        assert_eq!(platform(&t, PlatformAccount::FeeRevenue, currency).await, Amount::ZERO);
    }
    assert_books_sum_to_zero(&t, &[&m]).await;
}

async fn cross_currency_withdrawals_refuse_in_the_contract_order(adapter: Adapter) {
    let (t, m) = seller(adapter).await;
    let err = |request| {
        let app = Arc::clone(&t.app);
        let m = m.clone();
        async move { withdrawal::withdraw(&app, &m, request).await.unwrap_err() }
    };
    // Value checks first.
    assert_eq!(err(cross_request("w", "100", None)).await, ApiError::QuoteRequired);
    let conversion_quote = quote(&t, &m, sell(USD, CNY, "100")).await.unwrap();
    let mut same_currency = fund_account_tests::fixtures::withdrawal_request("w", USD, "100", PAYMENT_PASSWORD);
    same_currency.quote_id = Some(conversion_quote.id.clone());
    assert_eq!(err(same_currency).await, ApiError::QuoteMismatch);
    let mut cny_to_usd = fund_account_tests::fixtures::withdrawal_request("w", CNY, "100", PAYMENT_PASSWORD);
    cny_to_usd.payout_currency = USD;
    cny_to_usd.quote_id = Some(conversion_quote.id.clone());
    assert_eq!(err(cny_to_usd).await, ApiError::UnsupportedPayout);
    // Then the quote: unknown, made for other values, of the other kind, expired.
    let other = t.active_member("other-fx").await;
    t.fund(&other, USD, "100").await;
    let others = exchange::preview(&t.app, &other, USD, amount("100"), CNY)
        .await
        .unwrap()
        .quote
        .unwrap();
    assert_eq!(
        err(cross_request("w", "100", Some(&others))).await,
        ApiError::QuoteNotFound
    );
    let q = exchange::preview(&t.app, &m, USD, amount("100"), CNY)
        .await
        .unwrap()
        .quote
        .unwrap();
    assert_eq!(
        err(cross_request("w", "100.01", Some(&q))).await,
        ApiError::QuoteMismatch
    );
    assert_eq!(
        err(cross_request("w", "100", Some(&conversion_quote))).await,
        ApiError::QuoteMismatch
    );
    // Quote checks come before the password.
    let mut wrong_password = cross_request("w", "100", Some(&q));
    wrong_password.password = fund_account::password::PaymentPassword::new("wrong-password-1".to_owned());
    t.clock.advance_seconds(QUOTE_TTL_SECONDS);
    assert_eq!(err(wrong_password).await, ApiError::QuoteExpired);
    // Nothing moved.
    assert_eq!(t.balances(&m).await.usd.available, amount("1000"));
    assert_eq!(t.balances(&m).await.usd.in_transit, Amount::ZERO);
}

async fn previews_refuse_as_withdrawals_do(adapter: Adapter) {
    let (t, m) = seller(adapter).await;
    let preview = |currency, value: &str, payout| {
        let app = Arc::clone(&t.app);
        let m = m.clone();
        let value = amount(value);
        async move { exchange::preview(&app, &m, currency, value, payout).await }
    };
    let same = preview(USD, "100", USD).await.unwrap();
    assert_eq!(
        (same.fee, same.net_amount, same.payout_amount, same.quote.is_none()),
        (amount("15"), amount("85"), amount("85"), true)
    );
    assert_eq!(
        preview(USD, "15", USD).await.unwrap_err(),
        ApiError::AmountBelowFee { fee: amount("15") }
    );
    assert_eq!(
        preview(USD, "1000.01", CNY).await.unwrap_err(),
        ApiError::InsufficientFunds {
            available: amount("1000")
        }
    );
    assert_eq!(preview(CNY, "1", USD).await.unwrap_err(), ApiError::UnsupportedPayout);
    let inactive = t.member("not-active", "login-Pass-2026", None).await;
    assert_eq!(
        exchange::preview(&t.app, &inactive, USD, amount("100"), CNY)
            .await
            .unwrap_err(),
        ApiError::AccountNotActive
    );
    t.clock.advance_seconds(301);
    assert_eq!(preview(USD, "100", CNY).await.unwrap_err(), ApiError::FxRateUnavailable);
    assert!(preview(USD, "100", USD).await.is_ok(), "no rate needed in one currency");
}

async fn every_movement_keeps_the_books_at_zero_and_the_reconciliation_checks_the_platform(adapter: Adapter) {
    let (t, m) = seller(adapter).await;
    // A same-currency withdrawal, paid: fee revenue 15, clearing +85.
    let w = withdrawal::withdraw(
        &t.app,
        &m,
        fund_account_tests::fixtures::withdrawal_request("w-usd", USD, "100", PAYMENT_PASSWORD),
    )
    .await
    .unwrap()
    .withdrawal;
    withdrawal::report_payout(&t.app, &w.id, Payout::Paid).await.unwrap();
    assert_eq!(platform(&t, PlatformAccount::FeeRevenue, USD).await, amount("15"));
    assert_eq!(platform(&t, PlatformAccount::Clearing, USD).await, amount("-915"));
    assert_books_sum_to_zero(&t, &[&m]).await;
    let report = reconcile_later(&t).await;
    assert!(report.discrepancies.is_empty(), "{:?}", report.discrepancies);

    // A platform shard changed without an entry is found, with no member named.
    let shard = fund_account::ledger::PlatformShard {
        account: PlatformAccount::FeeRevenue,
        currency: USD,
        shard: 3,
    };
    t.app
        .store
        .commit(vec![fund_account::store::Write::AdjustPlatform {
            shard,
            delta: amount("1"),
        }])
        .await
        .unwrap();
    let report = reconcile_later(&t).await;
    let kinds: Vec<(Option<&str>, &str)> = report
        .discrepancies
        .iter()
        .map(|d| (d.member_id.as_deref(), d.kind))
        .collect();
    assert_eq!(
        kinds,
        [(None, "platform_balance_mismatch")],
        "the shard is off; its entries still sum to zero with the members'"
    );
}

async fn the_migration_books_the_platform_side_of_old_entries_once(adapter: Adapter) {
    let t = test_app(adapter).await;
    let m = t.active_member("legacy").await;
    // Entries as the code before double-entry wrote them: one-sided, no transaction.
    let old = fund_account::ledger::Posting::new(&m, CNY, fund_account::ledger::EntryType::Collection, "col-old")
        .change(Bucket::Available, amount("250"));
    t.app
        .store
        .commit(fund_account::store::Write::posting(old, t.app.now()))
        .await
        .unwrap();
    let report = reconcile_later(&t).await;
    let kinds: Vec<&str> = report.discrepancies.iter().map(|d| d.kind).collect();
    assert_eq!(kinds, ["books_unbalanced"], "the old entries have no other side yet");

    let migration = reconciliation::run(&t.app, RunOptions::book_openings()).await.unwrap();
    assert_eq!(migration.openings_booked, 1);
    assert!(migration.discrepancies.is_empty(), "{:?}", migration.discrepancies);
    assert_eq!(platform(&t, PlatformAccount::Clearing, CNY).await, amount("-250"));
    // Again: nothing more to book.
    let again = reconciliation::run(&t.app, RunOptions::book_openings()).await.unwrap();
    assert_eq!(again.openings_booked, 0);
    // An entry a function on the old code wrote after the migration is booked by the next.
    let late = fund_account::ledger::Posting::new(&m, CNY, fund_account::ledger::EntryType::Collection, "col-late")
        .change(Bucket::Available, amount("5"));
    t.app
        .store
        .commit(fund_account::store::Write::posting(late, t.app.now()))
        .await
        .unwrap();
    t.clock.advance_seconds(BOOKS_SETTLE_SECONDS + 1);
    let late_run = reconciliation::run(&t.app, RunOptions::book_openings()).await.unwrap();
    assert_eq!(late_run.openings_booked, 1);
    assert_eq!(platform(&t, PlatformAccount::Clearing, CNY).await, amount("-255"));
    let report = reconcile_later(&t).await;
    assert!(report.discrepancies.is_empty(), "{:?}", report.discrepancies);
}

for_each_adapter!(
    rates_are_kept_with_their_history_and_refuse_stale_or_jumping_mids,
    quotes_round_against_the_member_and_need_a_fresh_rate,
    a_member_holds_at_most_ten_live_quotes,
    a_conversion_moves_both_balances_once_and_replays_its_key,
    conversions_refuse_in_the_contract_order,
    a_quote_is_used_once_under_a_burst_of_twenty_conversions,
    a_withdrawal_to_a_yuan_bank_is_charged_the_previewed_fee_and_books_its_fx_when_paid,
    a_returned_cross_currency_payout_gives_back_the_whole_amount_and_books_no_fx,
    cross_currency_withdrawals_refuse_in_the_contract_order,
    previews_refuse_as_withdrawals_do,
    every_movement_keeps_the_books_at_zero_and_the_reconciliation_checks_the_platform,
    the_migration_books_the_platform_side_of_old_entries_once,
);

mod properties {
    use fund_account::fx::{Markup, MemberRate, Mid};
    use fund_account::money::Amount;
    use proptest::prelude::*;
    use rust_decimal::Decimal;

    fn mid() -> impl Strategy<Value = Mid> {
        // 0.00000100 to 99999.99999999: both pairs' plausible range and far beyond.
        (100i64..=9_999_999_999_999i64)
            .prop_map(|scaled| Mid::parse(&Decimal::new(scaled, 8).to_string()).expect("a positive mid"))
    }

    fn markup() -> impl Strategy<Value = Markup> {
        (0i64..=500_000i64).prop_map(|scaled| Markup::parse(&Decimal::new(scaled, 4).to_string()).unwrap())
    }

    fn amount() -> impl Strategy<Value = Amount> {
        (1i64..=99_999_999_999_999i64).prop_map(|cents| Amount::from_cents(i128::from(cents)).unwrap())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Selling `amount` never yields more than `amount × rate`, and by less than a cent.
        #[test]
        fn a_sell_exact_quote_never_pays_more_than_the_rate(mid in mid(), markup in markup(), sell in amount(), direct: bool) {
            let Some(rate) = MemberRate::new(mid, direct, markup) else { return Ok(()); };
            let buy = rate.buy_for(sell).unwrap();
            let exact = sell.as_decimal() * rate.as_decimal();
            prop_assert!(buy.as_decimal() <= exact);
            prop_assert!(exact - buy.as_decimal() < Decimal::new(1, 2));
        }

        /// Buying `amount` always costs at least `amount ÷ rate`, and less than a cent more.
        #[test]
        fn a_buy_exact_quote_never_charges_less_than_the_rate(mid in mid(), markup in markup(), buy in amount(), direct: bool) {
            let Some(rate) = MemberRate::new(mid, direct, markup) else { return Ok(()); };
            let Some(sell) = rate.sell_for(buy) else { return Ok(()); };
            // sell × rate ≥ buy: the member never receives more than what they pay at the rate.
            prop_assert!(sell.as_decimal() * rate.as_decimal() >= buy.as_decimal());
            let less = sell.as_decimal() - Decimal::new(1, 2);
            prop_assert!(less * rate.as_decimal() < buy.as_decimal(), "a cent less would not pay for it");
        }

        /// The member's rate is the mid less the markup, rounded down to 6 places.
        #[test]
        fn the_rate_is_never_better_than_mid_less_markup(mid in mid(), markup in markup(), direct: bool) {
            let Some(rate) = MemberRate::new(mid, direct, markup) else { return Ok(()); };
            let keep = Decimal::ONE - markup.as_decimal() / Decimal::ONE_HUNDRED;
            let exact = if direct { mid.as_decimal() * keep } else { keep / mid.as_decimal() };
            prop_assert!(rate.as_decimal() <= exact);
            prop_assert!(exact - rate.as_decimal() < Decimal::new(1, 6) + Decimal::new(1, 20));
        }
    }
}

mod books {
    use fund_account::clock::Timestamp;
    use fund_account::exchange::conversion_transaction;
    use fund_account::fx::Conversion;
    use fund_account::ids::{ConversionId, QuoteId, WithdrawalId};
    use fund_account::member::MemberId;
    use fund_account::money::{Amount, Currency};
    use fund_account::store::Write;
    use fund_account::withdrawal::{payout_transaction, Payout};
    use fund_account_tests::fixtures;
    use proptest::prelude::*;

    fn cents() -> impl Strategy<Value = Amount> {
        (1i64..=99_999_999_999_999i64).prop_map(|c| Amount::from_cents(i128::from(c)).unwrap())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Every conversion and every payout report, whatever its amounts, is a ledger
        /// transaction that sums to zero in each currency (and the store refuses one that
        /// does not).
        #[test]
        fn movements_sum_to_zero_per_currency(sell in cents(), buy in cents(), amount in cents(), fee_cents in 0i64..10_000, payout in cents(), cross: bool, paid: bool) {
            let now = Timestamp::from_unix_millis(0);
            let m = MemberId::parse("m").unwrap();
            let conversion = Conversion {
                id: ConversionId::new_at(now),
                member_id: m.clone(),
                quote_id: QuoteId::new_at(now),
                sell_currency: Currency::Usd,
                sell_amount: sell,
                buy_currency: Currency::Cny,
                buy_amount: buy,
                rate: "7.164".parse().unwrap(),
                created_at: now,
            };
            prop_assert!(Write::transaction(conversion_transaction(&conversion, now), now).is_ok());
            let fee = Amount::from_cents(i128::from(fee_cents)).unwrap().min(amount);
            let mut w = fixtures::withdrawal("wd_1", "m", 1);
            w.id = WithdrawalId::new_at(now);
            w.amount = amount;
            w.fee = fee;
            w.net_amount = amount.checked_sub(fee).unwrap();
            if cross {
                w.payout = Some(fund_account::fx::Payout { currency: Currency::Cny, amount: payout, rate: "7".parse().unwrap(), quote_id: QuoteId::new_at(now) });
            }
            let report = if paid { Payout::Paid } else { Payout::Returned { reason: "r".to_owned() } };
            let transaction = payout_transaction(&w, &report, now);
            prop_assert!(transaction.check_balanced().is_ok());
        }
    }
}
