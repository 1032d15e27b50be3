//! Foreign exchange as values: currency pairs, the treasury's reference rates, the
//! member's rate after the markup, quotes and conversions, and the rounding rules.
//!
//! Every rate computation is integer arithmetic on exact scaled values (a mid has 8
//! fraction digits, a markup 4, a member's rate 6, money 2), so rounding happens exactly
//! once, where the contract says, and always against the member's gain: the member never
//! receives more than `sell_amount × rate`, nor pays less than `buy_amount ÷ rate`.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::ApiError;
use crate::ids::{ConversionId, QuoteId};
use crate::member::MemberId;
use crate::money::{Amount, Currency};

/// How long a quote is locked.
pub const QUOTE_TTL_SECONDS: i64 = 30 * 60;
/// Most unexpired, unused quotes a member may hold.
pub const MAX_LIVE_QUOTES: usize = 10;
/// How far from the pair's last mid a new one may be without `confirm_jump`: 10 %.
pub const MAX_UNCONFIRMED_JUMP_PERCENT: i64 = 10;
/// How far ahead of now an `as_of` may be (clock skew between treasury and us).
pub const MAX_AS_OF_AHEAD_SECONDS: i64 = 5 * 60;
/// The default staleness limit of a reference rate.
pub const DEFAULT_MAX_RATE_AGE_SECONDS: i64 = 5 * 60;

const MID_SCALE: u32 = 8;
const RATE_SCALE: u32 = 6;
const MARKUP_SCALE: u32 = 4;
const TEN_8: i128 = 100_000_000;
const TEN_6: i128 = 1_000_000;

/// An ordered pair of different currencies, written `BASE-QUOTE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pair {
    pub base: Currency,
    pub quote: Currency,
}

impl Pair {
    /// A pair of two different currencies.
    pub fn new(base: Currency, quote: Currency) -> Result<Pair, ApiError> {
        if base == quote {
            return Err(ApiError::InvalidCurrencyPair);
        }
        Ok(Pair { base, quote })
    }

    /// Parses `USD-CNY`: an unknown code is `unsupported_currency`, a code twice
    /// `invalid_currency_pair`, anything else not a pair at all (`route`-level 404).
    pub fn parse(text: &str) -> Result<Pair, ApiError> {
        let (base, quote) = text.split_once('-').ok_or(ApiError::InvalidCurrencyPair)?;
        let base = Currency::parse(base).map_err(|_| ApiError::UnsupportedCurrency)?;
        let quote = Currency::parse(quote).map_err(|_| ApiError::UnsupportedCurrency)?;
        Pair::new(base, quote)
    }

    pub fn reverse(self) -> Pair {
        Pair {
            base: self.quote,
            quote: self.base,
        }
    }

    pub fn name(self) -> String {
        format!("{}-{}", self.base, self.quote)
    }
}

/// A mid-market rate: positive, at most 8 fraction digits, held as its value × 10^8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mid(i128);

impl Mid {
    /// Parses the treasury's `mid`: digits, optionally a point and 1 to 8 digits; above
    /// zero; at most 12 integer digits.
    pub fn parse(text: &str) -> Result<Mid, ApiError> {
        let (integer, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        let well_formed = !integer.is_empty()
            && integer.len() <= 12
            && digits(integer)
            && digits(fraction)
            && fraction.len() <= MID_SCALE as usize
            && (text.contains('.') != fraction.is_empty());
        if !well_formed {
            return Err(ApiError::InvalidRate);
        }
        let padded = format!("{integer}{fraction:0<8}");
        let scaled: i128 = padded.parse().map_err(|_| ApiError::InvalidRate)?;
        if scaled == 0 {
            return Err(ApiError::InvalidRate);
        }
        Ok(Mid(scaled))
    }

    pub fn as_decimal(self) -> Decimal {
        Decimal::from_i128_with_scale(self.0, MID_SCALE)
    }

    /// `1 / self`, rounded half-even to 8 places: how the reverse pair's mid is shown.
    pub fn inverse_shown(self) -> Decimal {
        let numerator = TEN_8 * TEN_8;
        let (quotient, remainder) = (numerator / self.0, numerator % self.0);
        let twice = remainder * 2;
        let rounded = if twice > self.0 || (twice == self.0 && quotient % 2 == 1) {
            quotient + 1
        } else {
            quotient
        };
        Decimal::from_i128_with_scale(rounded, MID_SCALE)
    }

    /// Whether `next` is more than 10 % away from this one.
    pub fn jumps_to(self, next: Mid) -> bool {
        (next.0 - self.0).abs() * 100 > self.0 * i128::from(MAX_UNCONFIRMED_JUMP_PERCENT)
    }
}

impl Serialize for Mid {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.as_decimal())
    }
}

impl<'de> Deserialize<'de> for Mid {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Mid::parse(&text).map_err(|_| serde::de::Error::custom("a stored mid rate is malformed"))
    }
}

/// A markup in percent, at most 4 fraction digits (`0.50` is half a percent), below 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Markup(i128);

impl Markup {
    /// The contract's default: 0.50 %.
    pub const DEFAULT: Markup = Markup(5_000);

    pub fn parse(text: &str) -> Option<Markup> {
        let value: Decimal = text.parse().ok()?;
        if value.is_sign_negative() || value >= Decimal::ONE_HUNDRED || value.normalize().scale() > MARKUP_SCALE {
            return None;
        }
        let mut scaled = value;
        scaled.rescale(MARKUP_SCALE);
        Some(Markup(scaled.mantissa()))
    }

    /// As the contract shows it: `"0.50"`.
    pub fn as_decimal(self) -> Decimal {
        Decimal::from_i128_with_scale(self.0, MARKUP_SCALE)
    }

    /// `1 − markup` as a fraction × 10^6 (a percent with 4 decimals is a fraction with 6).
    fn keep_micro(self) -> i128 {
        TEN_6 - self.0
    }
}

/// A reference rate as the treasury sent it, and when we stored it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceRate {
    pub pair: String,
    pub mid: Mid,
    pub as_of: Timestamp,
    pub received_at: Timestamp,
}

/// The member's rate for selling one currency for another: buy units per sell unit,
/// `mid × (1 − markup)` rounded down to 6 decimals, held × 10^6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberRate {
    micro: i128,
    /// The mid in the sell→buy direction, as shown (8 places).
    pub mid_shown: Decimal,
    pub markup: Markup,
}

impl MemberRate {
    /// The rate for selling `pair.base` from a mid quoted for `pair` (`direct`) or for
    /// its reverse (then the mid is inverted exactly before rounding). `None` when the
    /// result rounds to zero.
    pub fn new(mid: Mid, direct: bool, markup: Markup) -> Option<MemberRate> {
        let (micro, mid_shown) = if direct {
            // mid/10^8 × keep/10^6, in units of 10^-6.
            (mid.0 * markup.keep_micro() / TEN_8, mid.as_decimal())
        } else {
            // (10^8/mid) × keep/10^6, in units of 10^-6.
            (TEN_8 * markup.keep_micro() / mid.0, mid.inverse_shown())
        };
        (micro > 0).then_some(MemberRate {
            micro,
            mid_shown,
            markup,
        })
    }

    pub fn as_decimal(self) -> Decimal {
        Decimal::from_i128_with_scale(self.micro, RATE_SCALE)
    }

    /// What selling `sell` buys: `sell × rate`, rounded down to the cent.
    pub fn buy_for(self, sell: Amount) -> Option<Amount> {
        let cents = sell.to_cents().checked_mul(self.micro)? / TEN_6;
        Amount::from_cents(cents)
    }

    /// What buying `buy` costs: `buy ÷ rate`, rounded up to the cent.
    pub fn sell_for(self, buy: Amount) -> Option<Amount> {
        let numerator = buy.to_cents().checked_mul(TEN_6)?;
        let cents = (numerator + self.micro - 1) / self.micro;
        Amount::from_cents(cents)
    }
}

/// What a quote may be used for: a preview's serves only its withdrawal, a
/// `/v1/fx/quotes` quote only a conversion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "use", rename_all = "snake_case")]
pub enum QuotePurpose {
    Conversion,
    /// The withdrawal of `amount` in the sell currency whose preview locked this quote
    /// for its `net_amount`, with the fee the preview showed.
    Withdrawal {
        amount: Amount,
        fee: Amount,
    },
}

/// A locked FX quote: the member may sell `sell_amount` for `buy_amount` until
/// `expires_at`, once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub id: QuoteId,
    pub member_id: MemberId,
    pub purpose: QuotePurpose,
    pub sell_currency: Currency,
    pub buy_currency: Currency,
    pub sell_amount: Amount,
    pub buy_amount: Amount,
    pub rate: Decimal,
    pub mid_rate: Decimal,
    pub markup_percent: Decimal,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// The conversion or withdrawal that used it.
    pub used_by: Option<String>,
}

impl Quote {
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }
}

/// The quotes a member holds that are neither used nor expired: one small item per
/// member, versioned, so that the limit of 10 holds exactly under any burst.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct QuoteBook {
    pub live: Vec<(QuoteId, Timestamp)>,
}

impl QuoteBook {
    /// The book without quotes expired at `now`.
    pub fn pruned(&self, now: Timestamp) -> QuoteBook {
        QuoteBook {
            live: self.live.iter().filter(|(_, at)| *at > now).cloned().collect(),
        }
    }

    /// The book with `id` added, or the seconds until a place frees up when it is full.
    pub fn with(&self, id: QuoteId, expires_at: Timestamp, now: Timestamp) -> Result<QuoteBook, i64> {
        let mut next = self.pruned(now);
        if next.live.len() >= MAX_LIVE_QUOTES {
            let soonest = next.live.iter().map(|(_, at)| *at).min().unwrap_or(now);
            return Err(now.seconds_until(soonest));
        }
        next.live.push((id, expires_at));
        Ok(next)
    }

    /// The book without `id` (used).
    pub fn without(&self, id: &QuoteId, now: Timestamp) -> QuoteBook {
        let mut next = self.pruned(now);
        next.live.retain(|(live, _)| live != id);
        next
    }
}

/// An exchange between a member's own balances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversion {
    pub id: ConversionId,
    pub member_id: MemberId,
    pub quote_id: QuoteId,
    pub sell_currency: Currency,
    pub sell_amount: Amount,
    pub buy_currency: Currency,
    pub buy_amount: Amount,
    pub rate: Decimal,
    pub created_at: Timestamp,
}

/// A cross-currency payout's terms, kept on the withdrawal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payout {
    pub currency: Currency,
    pub amount: Amount,
    pub rate: Decimal,
    pub quote_id: QuoteId,
}

/// The operators' FX settings: a markup per (sell, buy) direction and how old a
/// reference rate may be before quotes stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FxSettings {
    pub markups: Vec<(Currency, Currency, Markup)>,
    pub max_rate_age_seconds: i64,
}

impl Default for FxSettings {
    fn default() -> FxSettings {
        FxSettings {
            markups: Vec::new(),
            max_rate_age_seconds: DEFAULT_MAX_RATE_AGE_SECONDS,
        }
    }
}

impl FxSettings {
    /// The markup for selling `sell` for `buy` (0.50 % unless configured).
    pub fn markup(&self, sell: Currency, buy: Currency) -> Markup {
        self.markups
            .iter()
            .find(|(s, b, _)| *s == sell && *b == buy)
            .map_or(Markup::DEFAULT, |(_, _, m)| *m)
    }

    /// Parses `FX_MARKUP_PERCENT`: a JSON object from pair to percent,
    /// `{"USD-CNY": "0.50"}`. The message names the bad entry.
    pub fn parse_markups(text: &str) -> Result<Vec<(Currency, Currency, Markup)>, String> {
        let entries: std::collections::BTreeMap<String, String> = serde_json::from_str(text)
            .map_err(|e| format!("FX_MARKUP_PERCENT must be a JSON object such as {{\"USD-CNY\": \"0.50\"}}: {e}"))?;
        entries
            .into_iter()
            .map(|(pair, percent)| {
                let parsed = Pair::parse(&pair).map_err(|_| format!("FX_MARKUP_PERCENT.{pair} is not a pair such as USD-CNY"))?;
                let markup = Markup::parse(&percent)
                    .ok_or_else(|| format!("FX_MARKUP_PERCENT.{pair} must be a percent from 0 to below 100 with at most 4 places, not {percent:?}"))?;
                Ok((parsed.base, parsed.quote, markup))
            })
            .collect()
    }
}

/// A rate with exactly `scale` places, for responses.
pub fn shown(value: Decimal, scale: u32) -> String {
    let mut value = value;
    value.rescale(scale);
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amount(text: &str) -> Amount {
        Amount::parse_stored(text).unwrap()
    }

    #[test]
    fn mids_are_positive_with_at_most_eight_places() {
        assert_eq!(Mid::parse("7.2").unwrap().as_decimal().to_string(), "7.20000000");
        assert_eq!(Mid::parse("0.13888889").unwrap().0, 13_888_889);
        for bad in [
            "0",
            "0.00000000",
            "-7.2",
            "7.123456789",
            "7.",
            ".5",
            "1e2",
            "",
            " 7",
            "7,2",
            "1234567890123",
        ] {
            assert_eq!(Mid::parse(bad), Err(ApiError::InvalidRate), "{bad:?}");
        }
    }

    #[test]
    fn the_member_rate_is_the_mid_less_the_markup_rounded_down() {
        let mid = Mid::parse("7.2").unwrap();
        let rate = MemberRate::new(mid, true, Markup::DEFAULT).unwrap();
        // 7.2 × 0.995 = 7.164 exactly.
        assert_eq!(shown(rate.as_decimal(), 6), "7.164000");
        // Reverse: (1 / 7.2) × 0.995 = 0.138194444… → 0.138194.
        let reverse = MemberRate::new(mid, false, Markup::DEFAULT).unwrap();
        assert_eq!(shown(reverse.as_decimal(), 6), "0.138194");
        assert_eq!(reverse.mid_shown.to_string(), "0.13888889");
    }

    #[test]
    fn amounts_round_against_the_member() {
        let rate = MemberRate::new(Mid::parse("7.2").unwrap(), false, Markup::DEFAULT).unwrap();
        // 100.00 CNY × 0.138194 = 13.8194 → 13.81 USD.
        assert_eq!(rate.buy_for(amount("100")).unwrap(), amount("13.81"));
        // 13.81 USD ÷ 0.138194 = 99.93198… → 99.94 CNY.
        assert_eq!(rate.sell_for(amount("13.81")).unwrap(), amount("99.94"));
        // An exact division needs no rounding.
        let direct = MemberRate::new(Mid::parse("7.2").unwrap(), true, Markup::DEFAULT).unwrap();
        assert_eq!(direct.sell_for(amount("71.64")).unwrap(), amount("10.00"));
        assert_eq!(direct.buy_for(amount("0.01")).unwrap(), amount("0.07"));
    }

    #[test]
    fn the_inverse_mid_is_shown_half_even() {
        // 1 / 1.6 = 0.625 exactly; 1 / 3 = 0.333333333… → 0.33333333.
        assert_eq!(Mid::parse("1.6").unwrap().inverse_shown().to_string(), "0.62500000");
        assert_eq!(Mid::parse("3").unwrap().inverse_shown().to_string(), "0.33333333");
        // 1 / 0.00000016 = 6250000 exactly.
        assert_eq!(
            Mid::parse("0.00000016").unwrap().inverse_shown().to_string(),
            "6250000.00000000"
        );
        // 10^16 / 32 = 312500000000000 → exact; 10^16 / 3 rounds down; 10^16/6 = …666.67 → up.
        assert_eq!(
            Mid::parse("0.00000006").unwrap().inverse_shown().to_string(),
            "16666666.66666667"
        );
    }

    #[test]
    fn a_jump_is_more_than_ten_percent() {
        let last = Mid::parse("7.00").unwrap();
        assert!(!last.jumps_to(Mid::parse("7.70").unwrap()));
        assert!(last.jumps_to(Mid::parse("7.70000001").unwrap()));
        assert!(!last.jumps_to(Mid::parse("6.30").unwrap()));
        assert!(last.jumps_to(Mid::parse("6.29999999").unwrap()));
    }

    #[test]
    fn markups_parse_to_four_places_below_a_hundred() {
        assert_eq!(Markup::parse("0.50"), Some(Markup::DEFAULT));
        assert_eq!(Markup::parse("0"), Some(Markup(0)));
        for bad in ["-0.1", "100", "0.12345", "x"] {
            assert_eq!(Markup::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_quote_book_holds_ten_and_says_when_one_frees_up() {
        let now = Timestamp::from_unix_millis(0);
        let mut book = QuoteBook::default();
        for i in 0..MAX_LIVE_QUOTES {
            let id = QuoteId::new_at(now);
            book = book.with(id, now.plus_seconds(100 + i as i64), now).unwrap();
        }
        assert_eq!(book.with(QuoteId::new_at(now), now.plus_seconds(1800), now), Err(100));
        // Expired quotes leave the book.
        let later = now.plus_seconds(100);
        assert!(book
            .with(QuoteId::new_at(later), later.plus_seconds(1800), later)
            .is_ok());
        let first = book.live[0].0.clone();
        assert_eq!(book.without(&first, now).live.len(), MAX_LIVE_QUOTES - 1);
    }
}
