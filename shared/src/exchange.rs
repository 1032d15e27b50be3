//! Money across currencies: the treasury's reference rates, locked quotes, conversions
//! between a member's own balances, withdrawal previews, and the platform's accounts.
//!
//! Each write path is one read, a pure decision and one commit, like the withdrawal's:
//! a quote is locked by one commit that adds it to the member's quote book (versioned, so
//! the limit of 10 holds under any burst); a conversion is one commit that claims the
//! Idempotency-Key, marks the quote used (conditioned on its version, so a quote serves
//! once however many conversions race for it) and books a ledger transaction that sums to
//! zero in both currencies.

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::clock::Timestamp;
use crate::error::ApiError;
use crate::fx::{
    Conversion, FxSettings, MemberRate, Mid, Pair, Quote, QuoteBook, QuotePurpose, ReferenceRate, QUOTE_TTL_SECONDS,
};
use crate::ids::{ConversionId, QuoteId};
use crate::ledger::{Bucket, EntryType, PlatformAccount, Posting, Transaction};
use crate::member::{MemberId, MemberStatus};
use crate::money::{Amount, Currency};
use crate::records::{Created, IdempotencyKey, IdempotencyRecord, IDEMPOTENCY_TTL_SECONDS};
use crate::retry::{commit, retrying, Attempt};
use crate::store::{Doc, DocKey, Expect, Page, PageRequest, StoreError, Write};

/// Where each FX record lives (see `docs/data-model.md`).
pub mod keys {
    use super::*;

    /// A pair's current reference rate.
    pub fn rate(pair: Pair) -> DocKey {
        DocKey::new(format!("FXRATE#{}", pair.name()), "CURRENT")
    }

    /// One rate of a pair's history, sorted by `as_of`.
    pub fn rate_history(pair: Pair, as_of: Timestamp) -> DocKey {
        DocKey::new(
            format!("FXRATE#{}#HISTORY", pair.name()),
            format!("{:015}", as_of.unix_millis().max(0)),
        )
    }

    fn quotes(member_id: &MemberId) -> String {
        format!("QUOTES#{member_id}")
    }

    pub fn quote(member_id: &MemberId, id: &QuoteId) -> DocKey {
        DocKey::new(quotes(member_id), id.as_str())
    }

    /// The member's book of live quotes.
    pub fn quote_book(member_id: &MemberId) -> DocKey {
        DocKey::new(quotes(member_id), "BOOK")
    }

    pub fn conversions(member_id: &MemberId) -> String {
        format!("CONVERSIONS#{member_id}")
    }

    pub fn conversion(member_id: &MemberId, id: &ConversionId) -> DocKey {
        DocKey::new(conversions(member_id), id.as_str())
    }
}

/// How long quotes are kept after they expire (for `quote_used` / `quote_expired`
/// answers and audit), before DynamoDB's TTL may delete them.
const QUOTE_RETENTION_SECONDS: i64 = 30 * 24 * 60 * 60;

/// A reference rate as the treasury sends it.
#[derive(Debug, Clone)]
pub struct RateUpdate {
    pub pair: Pair,
    pub mid: Mid,
    pub as_of: Timestamp,
    pub confirm_jump: bool,
}

/// `PUT /internal/fx-rates/{pair}`: stores the rate and its history entry together. An
/// older `as_of`, or the same one with another mid, is stale; a jump of more than 10 %
/// needs `confirm_jump`.
pub async fn put_rate(app: &App, update: RateUpdate) -> Result<ReferenceRate, ApiError> {
    let now = app.now();
    if update.as_of > now.plus_seconds(crate::fx::MAX_AS_OF_AHEAD_SECONDS) {
        return Err(ApiError::InvalidAsOf(
            "as_of is more than 5 minutes in the future".to_owned(),
        ));
    }
    retrying(|| {
        let update = update.clone();
        async move {
            let key = keys::rate(update.pair);
            let stored = app.store.docs(std::slice::from_ref(&key)).await?.pop().flatten();
            let current: Option<(ReferenceRate, u64)> = match &stored {
                Some(doc) => Some((doc.parse()?, doc.version)),
                None => None,
            };
            if let Some((rate, _)) = &current {
                if update.as_of < rate.as_of {
                    return Err(ApiError::StaleRate(format!(
                        "a rate as of {} is already stored",
                        rate.as_of.to_rfc3339()
                    )));
                }
                if update.as_of == rate.as_of {
                    return if update.mid == rate.mid {
                        Ok(Attempt::Done(rate.clone()))
                    } else {
                        Err(ApiError::StaleRate(
                            "a different mid is already stored for this as_of".to_owned(),
                        ))
                    };
                }
                if rate.mid.jumps_to(update.mid) && !update.confirm_jump {
                    return Err(ApiError::RateOutOfBand(format!(
                        "mid moves more than 10% from {}; send confirm_jump: true if it is right",
                        rate.mid.as_decimal()
                    )));
                }
            }
            let rate = ReferenceRate {
                pair: update.pair.name(),
                mid: update.mid,
                as_of: update.as_of,
                received_at: now,
            };
            let (version, expect) = match &current {
                Some((_, version)) => (version + 1, Expect::Version(*version)),
                None => (1, Expect::Absent),
            };
            let writes = vec![
                Write::PutDoc {
                    doc: Doc::new(key, version, &rate)?,
                    expect,
                },
                Write::PutDoc {
                    doc: Doc::new(keys::rate_history(update.pair, update.as_of), 1, &rate)?,
                    expect: Expect::Absent,
                },
            ];
            Ok(commit(&*app.store, writes).await?.done_or_reread(rate))
        }
    })
    .await
}

/// The member's rate for selling `sell` for `buy`, from the newer (by `as_of`) of the
/// pair's rate and its reverse's; `fx_rate_unavailable` when none is fresh enough.
fn member_rate(
    settings: &FxSettings,
    sell: Currency,
    buy: Currency,
    direct: Option<&ReferenceRate>,
    reverse: Option<&ReferenceRate>,
    now: Timestamp,
) -> Result<MemberRate, ApiError> {
    let newest = match (direct, reverse) {
        (Some(d), Some(r)) if r.as_of > d.as_of => Some((r, false)),
        (Some(d), _) => Some((d, true)),
        (None, Some(r)) => Some((r, false)),
        (None, None) => None,
    };
    let (rate, is_direct) = newest.ok_or(ApiError::FxRateUnavailable)?;
    if rate.as_of.plus_seconds(settings.max_rate_age_seconds) < now {
        return Err(ApiError::FxRateUnavailable);
    }
    // A rate that rounds to 0 at 6 places converts every amount to 0.00: the contract's
    // answer for a result of 0.00.
    MemberRate::new(rate.mid, is_direct, settings.markup(sell, buy))
        .ok_or_else(|| ApiError::InvalidAmount("at this rate every amount converts to 0.00".to_owned()))
}

/// Which side of a quote the member fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fixed {
    Sell(Amount),
    Buy(Amount),
}

/// A quote request, parsed.
#[derive(Debug, Clone)]
pub struct QuoteRequest {
    pub sell: Currency,
    pub buy: Currency,
    pub fixed: Fixed,
}

/// What one read for a quote finds: the member, the quote book and both directions'
/// rates.
struct QuoteContext {
    active: bool,
    exists: bool,
    book: Option<(QuoteBook, u64)>,
    direct: Option<ReferenceRate>,
    reverse: Option<ReferenceRate>,
}

/// With `MemberCheck::AlreadyActive` the member is not read a second time: an active
/// account never becomes inactive again.
async fn quote_context(
    app: &App,
    member_id: &MemberId,
    pair: Pair,
    member: MemberCheck,
) -> Result<QuoteContext, ApiError> {
    let (exists, active) = if member == MemberCheck::AlreadyActive {
        (true, true)
    } else {
        let state = app.store.member_state(member_id).await?;
        (
            state.is_some(),
            state.as_ref().is_some_and(|s| s.member.status == MemberStatus::Active),
        )
    };
    let docs = app
        .store
        .docs(&[
            keys::quote_book(member_id),
            keys::rate(pair),
            keys::rate(pair.reverse()),
        ])
        .await?;
    let parse_rate =
        |doc: &Option<Doc>| -> Result<Option<ReferenceRate>, StoreError> { doc.as_ref().map(Doc::parse).transpose() };
    Ok(QuoteContext {
        exists,
        active,
        book: match &docs[0] {
            Some(doc) => Some((doc.parse()?, doc.version)),
            None => None,
        },
        direct: parse_rate(&docs[1])?,
        reverse: parse_rate(&docs[2])?,
    })
}

/// Whether locking a quote reads the member to check it is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MemberCheck {
    Read,
    /// The caller has just read it and found it active (a preview).
    AlreadyActive,
}

/// Locks a quote: decides its amounts from a fresh rate and adds it to the member's book
/// in one commit. Shared by `POST /v1/fx/quotes` and the cross-currency preview.
async fn lock_quote(
    app: &App,
    member_id: &MemberId,
    request: &QuoteRequest,
    purpose: QuotePurpose,
    member: MemberCheck,
) -> Result<Quote, ApiError> {
    let pair = Pair::new(request.sell, request.buy)?;
    retrying(|| {
        let purpose = purpose.clone();
        async move {
            let now = app.now();
            let context = quote_context(app, member_id, pair, member).await?;
            if !context.exists {
                return Err(ApiError::MemberNotFound);
            }
            if !context.active {
                return Err(ApiError::AccountNotActive);
            }
            let id = QuoteId::new_at(now);
            let expires_at = now.plus_seconds(QUOTE_TTL_SECONDS);
            let (book, book_version) = context.book.clone().unwrap_or_default();
            let next_book = book
                .with(id.clone(), expires_at, now)
                .map_err(|retry_after_seconds| ApiError::QuoteLimit { retry_after_seconds })?;
            let rate = member_rate(
                &app.fx,
                request.sell,
                request.buy,
                context.direct.as_ref(),
                context.reverse.as_ref(),
                now,
            )?;
            let overflow = || ApiError::InvalidAmount("the amount is too large to convert".to_owned());
            let (sell_amount, buy_amount) = match request.fixed {
                Fixed::Sell(sell) => (sell, rate.buy_for(sell).ok_or_else(overflow)?),
                Fixed::Buy(buy) => (rate.sell_for(buy).ok_or_else(overflow)?, buy),
            };
            if sell_amount.is_zero() || buy_amount.is_zero() {
                return Err(ApiError::InvalidAmount(
                    "at this rate the amount converts to 0.00".to_owned(),
                ));
            }
            if sell_amount.to_cents() >= 100_000_000_000_000 {
                return Err(overflow());
            }
            let quote = Quote {
                id: id.clone(),
                member_id: member_id.clone(),
                purpose,
                sell_currency: request.sell,
                buy_currency: request.buy,
                sell_amount,
                buy_amount,
                rate: rate.as_decimal(),
                mid_rate: rate.mid_shown,
                markup_percent: rate.markup.as_decimal(),
                created_at: now,
                expires_at,
                used_by: None,
            };
            let book_expect = match context.book {
                Some(_) => Expect::Version(book_version),
                None => Expect::Absent,
            };
            let writes = vec![
                Write::PutDoc {
                    doc: Doc::new(keys::quote(member_id, &id), 1, &quote)?
                        .expiring(expires_at.plus_seconds(QUOTE_RETENTION_SECONDS)),
                    expect: Expect::Absent,
                },
                Write::PutDoc {
                    doc: Doc::new(keys::quote_book(member_id), book_version + 1, &next_book)?,
                    expect: book_expect,
                },
            ];
            Ok(commit(&*app.store, writes).await?.done_or_reread(quote))
        }
    })
    .await
}

/// `POST /v1/fx/quotes`.
pub async fn create_quote(app: &App, member_id: &MemberId, request: QuoteRequest) -> Result<Quote, ApiError> {
    lock_quote(app, member_id, &request, QuotePurpose::Conversion, MemberCheck::Read).await
}

/// What `POST /v1/withdrawals/preview` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub currency: Currency,
    pub amount: Amount,
    pub fee: Amount,
    pub net_amount: Amount,
    pub payout_currency: Currency,
    pub payout_amount: Amount,
    /// The locked quote, across currencies.
    pub quote: Option<Quote>,
}

/// `POST /v1/withdrawals/preview`: the fee of the schedule in force, and across
/// currencies a quote locked for the net amount (which records the fee, so the
/// withdrawal made with it is charged exactly what was shown).
pub async fn preview(
    app: &App,
    member_id: &MemberId,
    currency: Currency,
    amount: Amount,
    payout_currency: Currency,
) -> Result<Preview, ApiError> {
    let row = app
        .fees
        .row(currency, payout_currency)
        .ok_or(ApiError::UnsupportedPayout)?;
    let state = app
        .store
        .member_state(member_id)
        .await?
        .ok_or(ApiError::MemberNotFound)?;
    if state.member.status != MemberStatus::Active {
        return Err(ApiError::AccountNotActive);
    }
    let fee = row.fee(amount);
    if amount <= fee {
        return Err(ApiError::AmountBelowFee { fee });
    }
    state.balances.get(currency).require_available(amount)?;
    let net_amount = amount.checked_sub(fee).ok_or(ApiError::Internal)?;
    if payout_currency == currency {
        return Ok(Preview {
            currency,
            amount,
            fee,
            net_amount,
            payout_currency,
            payout_amount: net_amount,
            quote: None,
        });
    }
    let request = QuoteRequest {
        sell: currency,
        buy: payout_currency,
        fixed: Fixed::Sell(net_amount),
    };
    let purpose = QuotePurpose::Withdrawal { amount, fee };
    let quote = lock_quote(app, member_id, &request, purpose, MemberCheck::AlreadyActive).await?;
    Ok(Preview {
        currency,
        amount,
        fee,
        net_amount,
        payout_currency,
        payout_amount: quote.buy_amount,
        quote: Some(quote),
    })
}

/// A quote and its book as one read found them.
#[derive(Debug, Clone)]
pub struct QuoteState {
    pub quote: Quote,
    pub version: u64,
    pub book: QuoteBook,
    pub book_version: Option<u64>,
}

impl QuoteState {
    /// The quote and book read for `quote_id` (`docs` as asked by [`quote_docs`]).
    pub fn from_docs(docs: &[Option<Doc>]) -> Result<Option<QuoteState>, StoreError> {
        let Some(Some(quote_doc)) = docs.first() else {
            return Ok(None);
        };
        let book_doc = docs.get(1).and_then(Option::as_ref);
        Ok(Some(QuoteState {
            quote: quote_doc.parse()?,
            version: quote_doc.version,
            book: book_doc.map(Doc::parse).transpose()?.unwrap_or_default(),
            book_version: book_doc.map(|d| d.version),
        }))
    }

    /// The refusal, if any, of using this quote for `purpose`'s kind at `now`, in the
    /// contract's order: mismatch, used, expired.
    pub fn check_usable(&self, for_withdrawal: bool, now: Timestamp) -> Result<(), ApiError> {
        let is_withdrawal_quote = matches!(self.quote.purpose, QuotePurpose::Withdrawal { .. });
        if is_withdrawal_quote != for_withdrawal {
            return Err(ApiError::QuoteMismatch);
        }
        if self.quote.used_by.is_some() {
            return Err(ApiError::QuoteUsed);
        }
        if self.quote.is_expired(now) {
            return Err(ApiError::QuoteExpired);
        }
        Ok(())
    }

    /// The writes that spend the quote on `used_by`: the quote marked used if it is still
    /// as read (so that it serves once), and taken out of the book.
    pub fn spend(&self, used_by: &str, now: Timestamp) -> Result<Vec<Write>, StoreError> {
        let mut used = self.quote.clone();
        used.used_by = Some(used_by.to_owned());
        let member_id = &self.quote.member_id;
        let mut writes = vec![Write::PutDoc {
            doc: Doc::new(keys::quote(member_id, &self.quote.id), self.version + 1, &used)?
                .expiring(self.quote.expires_at.plus_seconds(QUOTE_RETENTION_SECONDS)),
            expect: Expect::Version(self.version),
        }];
        if let Some(book_version) = self.book_version {
            writes.push(Write::PutDoc {
                doc: Doc::new(
                    keys::quote_book(member_id),
                    book_version + 1,
                    &self.book.without(&self.quote.id, now),
                )?,
                expect: Expect::Version(book_version),
            });
        }
        Ok(writes)
    }
}

/// The documents a quote's use reads: the quote and the member's book.
pub fn quote_docs(member_id: &MemberId, quote_id: &QuoteId) -> Vec<DocKey> {
    vec![keys::quote(member_id, quote_id), keys::quote_book(member_id)]
}

/// A conversion as its Idempotency-Key first answered, or again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversionCreated {
    pub conversion: Conversion,
    pub replayed: bool,
}

/// What makes two conversion requests "the same" for their key: the route and the quote.
fn conversion_fingerprint(quote_id: &QuoteId) -> String {
    let canonical = json!(["POST /v1/conversions", quote_id.as_str()]);
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// `POST /v1/conversions`: one commit claims the key, spends the quote and moves the
/// money, with the platform's FX position on the other side of both legs.
pub async fn convert(
    app: &App,
    member_id: &MemberId,
    key: &IdempotencyKey,
    quote_id: &QuoteId,
) -> Result<ConversionCreated, ApiError> {
    let fingerprint = conversion_fingerprint(quote_id);
    retrying(|| {
        let fingerprint = fingerprint.clone();
        async move {
            let now = app.now();
            // The sell currency is only known from the quote; the balance is read with
            // the quote below, consistently, once the quote says which.
            let docs = app.store.docs(&quote_docs(member_id, quote_id)).await?;
            let sell = match QuoteState::from_docs(&docs)? {
                Some(state) => state.quote.sell_currency,
                None => Currency::Usd,
            };
            let context = app
                .store
                .withdrawal_context(member_id, sell, key.as_str(), &quote_docs(member_id, quote_id))
                .await?;
            let member = context.member.as_ref().ok_or(ApiError::MemberNotFound)?;
            if member.status != MemberStatus::Active {
                return Err(ApiError::AccountNotActive);
            }
            if let Some(record) = context.idempotency.as_ref().filter(|r| r.expires_at > now) {
                return match (&record.created, record.fingerprint == fingerprint) {
                    (Created::Conversion(conversion), true) => Ok(Attempt::Done(ConversionCreated {
                        conversion: conversion.clone(),
                        replayed: true,
                    })),
                    _ => Err(ApiError::IdempotencyKeyReused),
                };
            }
            let state = QuoteState::from_docs(&context.docs)?.ok_or(ApiError::QuoteNotFound)?;
            if state.quote.sell_currency != sell {
                // The quote changed between the two reads (it cannot: quotes are
                // immutable but for `used_by`); read again.
                return Ok(Attempt::Retry);
            }
            state.check_usable(false, now)?;
            let quote = &state.quote;
            context.balance.require_available(quote.sell_amount)?;
            let conversion = Conversion {
                id: ConversionId::new_at(now),
                member_id: member_id.clone(),
                quote_id: quote.id.clone(),
                sell_currency: quote.sell_currency,
                sell_amount: quote.sell_amount,
                buy_currency: quote.buy_currency,
                buy_amount: quote.buy_amount,
                rate: quote.rate,
                created_at: now,
            };
            let record = IdempotencyRecord {
                member_id: member_id.clone(),
                key: key.as_str().to_owned(),
                fingerprint,
                created: Created::Conversion(conversion.clone()),
                created_at: now,
                expires_at: now.plus_seconds(IDEMPOTENCY_TTL_SECONDS),
            };
            let mut writes = vec![
                Write::PutIdempotency { record, now },
                Write::PutDoc {
                    doc: Doc::new(keys::conversion(member_id, &conversion.id), 1, &conversion)?,
                    expect: Expect::Absent,
                },
            ];
            writes.extend(state.spend(conversion.id.as_str(), now)?);
            writes.extend(Write::transaction(conversion_transaction(&conversion, now), now)?);
            Ok(commit(&*app.store, writes).await?.done_or_reread(ConversionCreated {
                conversion,
                replayed: false,
            }))
        }
    })
    .await
}

/// A conversion's ledger transaction: the member sells from one `available` and buys into
/// the other; the platform's FX position takes the other side of each.
pub fn conversion_transaction(conversion: &Conversion, now: Timestamp) -> Transaction {
    let member_id = &conversion.member_id;
    let reference = conversion.id.as_str();
    Transaction::new(member_id, reference, now)
        .member(
            Posting::new(member_id, conversion.sell_currency, EntryType::ConversionOut, reference)
                .change(Bucket::Available, conversion.sell_amount.negated()),
        )
        .member(
            Posting::new(member_id, conversion.buy_currency, EntryType::ConversionIn, reference)
                .change(Bucket::Available, conversion.buy_amount),
        )
        .platform(
            PlatformAccount::FxPosition,
            conversion.sell_currency,
            conversion.sell_amount,
            EntryType::ConversionOut,
        )
        .platform(
            PlatformAccount::FxPosition,
            conversion.buy_currency,
            conversion.buy_amount.negated(),
            EntryType::ConversionIn,
        )
        .event(
            crate::events::EventType::ConversionCreated,
            serde_json::json!({
                "conversion_id": conversion.id.as_str(),
                "sell_currency": conversion.sell_currency,
                "sell_amount": conversion.sell_amount,
                "buy_currency": conversion.buy_currency,
                "buy_amount": conversion.buy_amount,
                "rate": conversion.rate.to_string(),
                "status": "completed",
            }),
        )
}

/// `GET /v1/conversions`: newest first.
pub async fn conversions(app: &App, member_id: &MemberId, page: &PageRequest) -> Result<Page<Conversion>, ApiError> {
    let docs = app.store.doc_page(&keys::conversions(member_id), page).await?;
    let items = docs
        .items
        .iter()
        .map(Doc::parse)
        .collect::<Result<Vec<Conversion>, _>>()?;
    Ok(Page { items, more: docs.more })
}

/// One platform account's balance: the sum of its shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformBalance {
    pub account: PlatformAccount,
    pub currency: Currency,
    pub balance: Amount,
}

/// `GET /internal/platform/balances`: every platform account in every currency (zero
/// where nothing was booked), summed over its shards.
pub async fn platform_balances(app: &App) -> Result<Vec<PlatformBalance>, ApiError> {
    let shards = app.store.platform_balances().await?;
    let mut balances = Vec::new();
    for account in PlatformAccount::ALL {
        for currency in Currency::ALL {
            let balance = shards
                .iter()
                .filter(|(s, _)| s.account == account && s.currency == currency)
                .try_fold(Amount::ZERO, |total, (_, amount)| total.checked_add(*amount))
                .ok_or(ApiError::Internal)?;
            balances.push(PlatformBalance {
                account,
                currency,
                balance,
            });
        }
    }
    Ok(balances)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_millis(seconds * 1_000)
    }

    fn rate(pair: &str, mid: &str, as_of: i64) -> ReferenceRate {
        ReferenceRate {
            pair: pair.to_owned(),
            mid: Mid::parse(mid).unwrap(),
            as_of: at(as_of),
            received_at: at(as_of),
        }
    }

    #[test]
    fn a_quote_uses_the_newer_direction_and_refuses_a_stale_rate() {
        let settings = FxSettings::default();
        let usd_cny = rate("USD-CNY", "7.2", 1_000);
        let cny_usd = rate("CNY-USD", "0.125", 1_100);
        let sell_usd = |d, r, now| member_rate(&settings, Currency::Usd, Currency::Cny, d, r, at(now));
        // Selling USD: the direct pair is USD-CNY; its reverse is newer → 1/0.125 = 8.
        let got = sell_usd(Some(&usd_cny), Some(&cny_usd), 1_200).unwrap();
        assert_eq!(got.as_decimal().to_string(), "7.960000");
        let got = sell_usd(Some(&usd_cny), None, 1_200).unwrap();
        assert_eq!(got.as_decimal().to_string(), "7.164000");
        // 5 minutes is the limit: 300 s old is fresh, 301 s stale.
        assert!(sell_usd(Some(&usd_cny), None, 1_300).is_ok());
        assert_eq!(sell_usd(Some(&usd_cny), None, 1_301), Err(ApiError::FxRateUnavailable));
        assert_eq!(sell_usd(None, None, 0), Err(ApiError::FxRateUnavailable));
        // A mid so small that the rate rounds to 0 converts everything to 0.00.
        let dust = rate("USD-CNY", "0.00000001", 1_000);
        assert!(matches!(
            sell_usd(Some(&dust), None, 1_000),
            Err(ApiError::InvalidAmount(_))
        ));
    }

    #[test]
    fn a_conversion_balances_in_both_currencies() {
        let member_id = MemberId::parse("m").unwrap();
        let conversion = Conversion {
            id: ConversionId::new_at(at(0)),
            member_id: member_id.clone(),
            quote_id: QuoteId::new_at(at(0)),
            sell_currency: Currency::Usd,
            sell_amount: Amount::parse_stored("100").unwrap(),
            buy_currency: Currency::Cny,
            buy_amount: Amount::parse_stored("716.40").unwrap(),
            rate: "7.164".parse().unwrap(),
            created_at: at(0),
        };
        let transaction = conversion_transaction(&conversion, at(0));
        assert_eq!(transaction.check_balanced(), Ok(()));
        let writes = Write::transaction(transaction, at(0)).unwrap();
        // Two balances, two member entries, two platform shards' adds and two entries,
        // and the outbox event.
        assert_eq!(writes.len(), 9);
    }
}
