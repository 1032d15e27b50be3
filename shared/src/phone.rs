//! Phone numbers in E.164, and the masked form shown in responses and logs.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A phone number in E.164: `+`, a country calling code, at most 15 digits in all.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

/// A phone number that is not E.164.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("phone must be in E.164 form, e.g. +8613800000000")]
pub struct InvalidPhone;

/// Country calling codes are 1 to 3 digits; these are the ones of 1 and 2 digits, so the
/// mask can keep exactly the code. Anything else is taken to have 3 digits.
const ONE_DIGIT_CODES: &[&str] = &["1", "7"];
const TWO_DIGIT_CODES: &[&str] = &[
    "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47", "48", "49", "51",
    "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63", "64", "65", "66", "81", "82", "84", "86", "90",
    "91", "92", "93", "94", "95", "98",
];

impl PhoneNumber {
    pub fn parse(text: &str) -> Result<PhoneNumber, InvalidPhone> {
        let digits = text.strip_prefix('+').ok_or(InvalidPhone)?;
        let valid =
            (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
        if valid {
            Ok(PhoneNumber(text.to_owned()))
        } else {
            Err(InvalidPhone)
        }
    }

    /// The full number, for the SMS sender only.
    pub fn e164(&self) -> &str {
        &self.0
    }

    fn country_code_len(&self) -> usize {
        let digits = &self.0[1..];
        if ONE_DIGIT_CODES.iter().any(|c| digits.starts_with(c)) {
            1
        } else if TWO_DIGIT_CODES.iter().any(|c| digits.starts_with(c)) {
            2
        } else {
            3
        }
    }

    /// `+86*******1234`: the country calling code and the last four digits.
    pub fn masked(&self) -> String {
        let digits = &self.0[1..];
        let code_len = self.country_code_len();
        let hidden = digits.len() - code_len - 4;
        format!(
            "+{}{}{}",
            &digits[..code_len],
            "*".repeat(hidden),
            &digits[digits.len() - 4..]
        )
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = InvalidPhone;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        PhoneNumber::parse(&value)
    }
}

impl From<PhoneNumber> for String {
    fn from(value: PhoneNumber) -> String {
        value.0
    }
}

/// Debug shows the mask only, so a phone number cannot reach a log by accident.
impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_the_country_code_and_last_four_digits() {
        assert_eq!(PhoneNumber::parse("+8613800001234").unwrap().masked(), "+86*******1234");
        assert_eq!(PhoneNumber::parse("+12025550104").unwrap().masked(), "+1******0104");
        assert_eq!(PhoneNumber::parse("+85291234567").unwrap().masked(), "+852****4567");
    }

    #[test]
    fn non_e164_numbers_are_refused() {
        for text in [
            "8613800001234",
            "+86 138",
            "+0123456789",
            "+1234567",
            "+1234567890123456",
            "+86abc00001234",
        ] {
            assert_eq!(PhoneNumber::parse(text), Err(InvalidPhone), "{text}");
        }
    }

    #[test]
    fn debug_never_shows_the_number() {
        let phone = PhoneNumber::parse("+8613800001234").unwrap();
        assert!(!format!("{phone:?}").contains("13800001234"));
    }
}
