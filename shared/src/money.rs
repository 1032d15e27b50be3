//! Money: currencies, amounts and their wire format.
//!
//! Amounts are `rust_decimal::Decimal` held at exactly two minor digits. They are parsed
//! from the contract's string format and never pass through a float.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The currencies a fund account holds. Both have two minor digits (ISO 4217).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Currency {
    #[serde(rename = "USD")]
    Usd,
    #[serde(rename = "CNY")]
    Cny,
}

impl Currency {
    /// Every supported currency, in the order balances are shown.
    pub const ALL: [Currency; 2] = [Currency::Usd, Currency::Cny];

    /// The ISO 4217 code.
    pub fn code(self) -> &'static str {
        match self {
            Currency::Usd => "USD",
            Currency::Cny => "CNY",
        }
    }

    /// Parses an ISO code as the contract spells it (upper case only).
    pub fn parse(code: &str) -> Result<Currency, UnsupportedCurrency> {
        match code {
            "USD" => Ok(Currency::Usd),
            "CNY" => Ok(Currency::Cny),
            _ => Err(UnsupportedCurrency),
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A currency code outside [`Currency::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unsupported currency")]
pub struct UnsupportedCurrency;

/// Why an amount string was refused; every variant answers `422 invalid_amount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAmount {
    #[error("amount must be a decimal string such as \"10.50\"")]
    Malformed,
    #[error("amount has more than 2 decimal places")]
    TooManyDecimals,
    #[error("amount has more than 12 integer digits")]
    TooLarge,
    #[error("amount must be greater than zero")]
    NotPositive,
}

/// Most integer digits a request amount may have (below a trillion).
pub const MAX_INTEGER_DIGITS: usize = 12;
const MINOR_DIGITS: u32 = 2;

/// A non-negative or signed amount, always held at exactly two decimals.
///
/// Arithmetic is checked so that overflow is an error, never a wrap.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(Decimal);

impl Amount {
    /// Zero, at two decimals.
    pub const ZERO: Amount = Amount(Decimal::from_parts(0, 0, 0, false, MINOR_DIGITS));

    /// Parses a request amount: 1 to 12 integer digits, optionally a point and 1 or 2
    /// decimals. Signs, exponents, spaces and empty parts are refused.
    pub fn parse_request(text: &str) -> Result<Amount, InvalidAmount> {
        let (integer, fraction) = match text.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (text, None),
        };
        if integer.is_empty() || !integer.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidAmount::Malformed);
        }
        if let Some(f) = fraction {
            if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
                return Err(InvalidAmount::Malformed);
            }
            if f.len() > MINOR_DIGITS as usize {
                return Err(InvalidAmount::TooManyDecimals);
            }
        }
        if integer.trim_start_matches('0').len() > MAX_INTEGER_DIGITS {
            return Err(InvalidAmount::TooLarge);
        }
        let value = Decimal::from_str(text).map_err(|_| InvalidAmount::Malformed)?;
        Ok(Amount::from_decimal(value))
    }

    /// Parses a request amount that must be above zero.
    pub fn parse_positive(text: &str) -> Result<Amount, InvalidAmount> {
        let amount = Amount::parse_request(text)?;
        if amount.is_zero() {
            return Err(InvalidAmount::NotPositive);
        }
        Ok(amount)
    }

    /// Parses an amount the system wrote itself (storage): any sign, rescaled to two
    /// decimals. Refuses values that would lose precision.
    pub fn parse_stored(text: &str) -> Result<Amount, InvalidAmount> {
        let value = Decimal::from_str(text)
            .or_else(|_| Decimal::from_scientific(text))
            .map_err(|_| InvalidAmount::Malformed)?;
        let normalized = value.normalize();
        if normalized.scale() > MINOR_DIGITS {
            return Err(InvalidAmount::TooManyDecimals);
        }
        Ok(Amount::from_decimal(value))
    }

    fn from_decimal(mut value: Decimal) -> Amount {
        value.rescale(MINOR_DIGITS);
        Amount(value)
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// The value, for arithmetic that leaves the cent grid (fees, FX) and rounds back.
    pub fn as_decimal(self) -> Decimal {
        self.0
    }

    /// An amount from a value the caller has already rounded to the cent.
    pub(crate) fn from_rounded(value: Decimal) -> Amount {
        Amount::from_decimal(value)
    }

    /// The amount in cents (exact: amounts hold two decimals).
    pub fn to_cents(self) -> i128 {
        self.0.mantissa()
    }

    /// An amount of `cents`, or `None` beyond a 96-bit decimal.
    pub fn from_cents(cents: i128) -> Option<Amount> {
        Decimal::try_from_i128_with_scale(cents, MINOR_DIGITS).ok().map(Amount)
    }

    pub fn is_negative(self) -> bool {
        self.0.is_sign_negative() && !self.0.is_zero()
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount::from_decimal)
    }

    /// `self - other`, or `None` on overflow.
    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount::from_decimal)
    }

    /// The amount with its sign flipped.
    pub fn negated(self) -> Amount {
        Amount::from_decimal(-self.0)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `-0.00` can arise from negating zero; money has no negative zero.
        if self.0.is_zero() {
            return f.write_str("0.00");
        }
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Amount({self})")
    }
}

impl Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Amount::parse_stored(&text).map_err(serde::de::Error::custom)
    }
}

impl std::iter::Sum for Amount {
    fn sum<I: Iterator<Item = Amount>>(iter: I) -> Amount {
        Amount::from_decimal(iter.map(|a| a.0).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_amounts_accept_zero_to_two_decimals() {
        for (text, shown) in [("10", "10.00"), ("10.5", "10.50"), ("10.50", "10.50"), ("0.01", "0.01")] {
            assert_eq!(Amount::parse_request(text).unwrap().to_string(), shown);
        }
        assert_eq!(
            Amount::parse_request("999999999999.99").unwrap().to_string(),
            "999999999999.99"
        );
    }

    #[test]
    fn request_amounts_refuse_every_other_form() {
        for text in [
            "", "-1", "+1", "1e3", "1E3", "1.", ".5", " 1", "1 ", "1,00", "0x10", "NaN", "1.2.3", "١٠",
        ] {
            assert_eq!(Amount::parse_request(text), Err(InvalidAmount::Malformed), "{text:?}");
        }
        assert_eq!(Amount::parse_request("1.001"), Err(InvalidAmount::TooManyDecimals));
        assert_eq!(Amount::parse_request("1000000000000"), Err(InvalidAmount::TooLarge));
        assert_eq!(Amount::parse_positive("0.00"), Err(InvalidAmount::NotPositive));
    }

    #[test]
    fn equal_values_compare_equal_whatever_their_spelling() {
        assert_eq!(
            Amount::parse_request("100").unwrap(),
            Amount::parse_request("100.00").unwrap()
        );
    }

    #[test]
    fn negated_zero_prints_as_zero() {
        assert_eq!(Amount::ZERO.negated().to_string(), "0.00");
        assert_eq!(Amount::parse_stored("-100").unwrap().to_string(), "-100.00");
    }

    fn amount(text: &str) -> Amount {
        Amount::parse_stored(text).unwrap()
    }

    #[test]
    fn currencies_round_trip_through_their_iso_codes() {
        for (currency, code) in [(Currency::Usd, "USD"), (Currency::Cny, "CNY")] {
            assert_eq!(currency.code(), code);
            assert_eq!(currency.to_string(), code);
            assert_eq!(Currency::parse(code), Ok(currency));
        }
        for code in ["usd", "EUR", "", "USD "] {
            assert_eq!(Currency::parse(code), Err(UnsupportedCurrency), "{code:?}");
        }
    }

    #[test]
    fn stored_amounts_keep_their_sign_and_refuse_lost_cents() {
        assert_eq!(amount("12.5").to_string(), "12.50");
        assert_eq!(amount("-12.34").to_string(), "-12.34");
        assert_eq!(amount("1.2E+1").to_string(), "12.00");
        // Trailing zeros past the cents lose nothing; a third significant decimal would.
        assert_eq!(amount("1.2500").to_string(), "1.25");
        assert_eq!(Amount::parse_stored("1.255"), Err(InvalidAmount::TooManyDecimals));
        assert_eq!(Amount::parse_stored("0.001"), Err(InvalidAmount::TooManyDecimals));
        assert_eq!(Amount::parse_stored("ten"), Err(InvalidAmount::Malformed));
    }

    #[test]
    fn positive_amounts_are_above_zero() {
        assert_eq!(Amount::parse_positive("0.01").unwrap().to_string(), "0.01");
        assert_eq!(Amount::parse_positive("0"), Err(InvalidAmount::NotPositive));
        assert_eq!(Amount::parse_positive("x"), Err(InvalidAmount::Malformed));
    }

    #[test]
    fn zero_and_sign_are_told_apart() {
        assert!(Amount::ZERO.is_zero());
        assert!(!amount("0.01").is_zero());
        assert!(!Amount::ZERO.is_negative());
        assert!(!Amount::ZERO.negated().is_negative(), "no negative zero");
        assert!(!amount("5").is_negative());
        assert!(amount("-0.01").is_negative());
    }

    #[test]
    fn arithmetic_is_exact_and_overflow_is_none() {
        assert_eq!(amount("0.10").checked_add(amount("0.20")), Some(amount("0.30")));
        assert_eq!(amount("0.10").checked_sub(amount("0.30")), Some(amount("-0.20")));
        assert_eq!(amount("5").negated(), amount("-5"));
        assert_eq!(amount("-5").negated(), amount("5"));
        let max = Amount(Decimal::MAX);
        assert_eq!(max.checked_add(amount("1")), None);
        assert_eq!(max.negated().checked_sub(amount("1")), None);
        let total: Amount = ["1.10", "2.20", "-0.30"].into_iter().map(amount).sum();
        assert_eq!(total.to_string(), "3.00");
    }

    #[test]
    fn amounts_serialize_as_their_contract_strings() {
        let json = serde_json::to_string(&amount("1234.5")).unwrap();
        assert_eq!(json, "\"1234.50\"");
        assert_eq!(serde_json::from_str::<Amount>("\"-7.1\"").unwrap(), amount("-7.10"));
        assert!(serde_json::from_str::<Amount>("\"1.001\"").is_err());
        assert_eq!(format!("{:?}", amount("3")), "Amount(3.00)");
    }
}
