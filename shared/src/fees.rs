//! The withdrawal fee schedule: one row per (balance currency, payout currency) the
//! platform pays out, published at `GET /v1/fees` and charged by the withdrawal and its
//! preview alike, so the fee shown is the fee charged.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::money::{Amount, Currency};

/// One row: `fixed + percent% × amount`, rounded half-up to the cent, then raised to `min`
/// and lowered to `max`. Amounts are in the balance currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeRow {
    pub currency: Currency,
    pub payout_currency: Currency,
    pub fixed: Amount,
    /// A percentage: `0.30` is 0.30 %.
    pub percent: Decimal,
    pub min: Amount,
    pub max: Option<Amount>,
}

impl FeeRow {
    /// The fee of withdrawing `amount`.
    pub fn fee(&self, amount: Amount) -> Amount {
        let proportional = amount.as_decimal() * self.percent / Decimal::ONE_HUNDRED;
        let raw =
            (self.fixed.as_decimal() + proportional).round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
        let mut fee = Amount::from_rounded(raw);
        if fee < self.min {
            fee = self.min;
        }
        if let Some(max) = self.max {
            if fee > max {
                fee = max;
            }
        }
        fee
    }

    fn view(&self) -> Value {
        json!({
            "currency": self.currency.code(),
            "payout_currency": self.payout_currency.code(),
            "fixed": self.fixed.to_string(),
            "percent": percent_text(self.percent),
            "min": self.min.to_string(),
            "max": self.max.map(|m| m.to_string()),
        })
    }
}

/// A percentage with at least two decimals: `0.3` → `"0.30"`, `0` → `"0.00"`.
pub fn percent_text(percent: Decimal) -> String {
    let mut shown = percent.normalize();
    if shown.scale() < 2 {
        shown.rescale(2);
    }
    shown.to_string()
}

/// The contract's default schedule as operators write it (`FEE_SCHEDULE`; the
/// template's default).
pub const DEFAULT_SCHEDULE_JSON: &str = r#"[{"currency":"USD","payout_currency":"USD","fixed":"15.00","percent":"0","min":"0","max":null},{"currency":"USD","payout_currency":"CNY","fixed":"0","percent":"0.30","min":"8.00","max":null},{"currency":"CNY","payout_currency":"CNY","fixed":"0","percent":"0","min":"0","max":null}]"#;

/// A schedule refused at start-up, naming the row and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The schedule in force: validated once, at cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeSchedule {
    rows: Vec<FeeRow>,
}

/// Most percent a row may charge: above this a typo is far likelier than a price.
const MAX_PERCENT: Decimal = Decimal::from_parts(20, 0, 0, false, 0);

impl Default for FeeSchedule {
    /// The contract's defaults: USD→USD 15.00 fixed, USD→CNY 0.30 % at least 8.00 USD,
    /// CNY→CNY free.
    fn default() -> FeeSchedule {
        let amount = |text: &str| Amount::parse_stored(text).unwrap_or(Amount::ZERO);
        let row = |currency, payout_currency, fixed: &str, percent: Decimal, min: &str| FeeRow {
            currency,
            payout_currency,
            fixed: amount(fixed),
            percent,
            min: amount(min),
            max: None,
        };
        FeeSchedule {
            rows: vec![
                row(Currency::Usd, Currency::Usd, "15.00", Decimal::ZERO, "0"),
                row(Currency::Usd, Currency::Cny, "0", Decimal::new(30, 2), "8.00"),
                row(Currency::Cny, Currency::Cny, "0", Decimal::ZERO, "0"),
            ],
        }
    }
}

/// A row as operators write it (`FEE_SCHEDULE`): the response's shape, strings for money.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RowText {
    currency: String,
    payout_currency: String,
    fixed: String,
    percent: String,
    min: String,
    max: Option<String>,
}

impl FeeSchedule {
    /// A schedule from its rows: refuses negative values, `max` below `min`, a percent
    /// above 20 and a pair given twice, naming the row and field.
    pub fn new(rows: Vec<FeeRow>) -> Result<FeeSchedule, ConfigError> {
        for (index, row) in rows.iter().enumerate() {
            let at = |field: &str| format!("FEE_SCHEDULE[{index}].{field}");
            if row.fixed.is_negative() {
                return Err(ConfigError(format!("{} must not be negative", at("fixed"))));
            }
            if row.min.is_negative() {
                return Err(ConfigError(format!("{} must not be negative", at("min"))));
            }
            if row.percent.is_sign_negative() || row.percent > MAX_PERCENT {
                return Err(ConfigError(format!(
                    "{} must be between 0 and {MAX_PERCENT}",
                    at("percent")
                )));
            }
            if let Some(max) = row.max {
                if max < row.min {
                    return Err(ConfigError(format!("{} must not be below min", at("max"))));
                }
            }
            let twice = rows[..index]
                .iter()
                .any(|r| r.currency == row.currency && r.payout_currency == row.payout_currency);
            if twice {
                return Err(ConfigError(format!(
                    "{} repeats the pair {}→{}",
                    at("payout_currency"),
                    row.currency,
                    row.payout_currency
                )));
            }
        }
        Ok(FeeSchedule { rows })
    }

    /// Parses `FEE_SCHEDULE`: a JSON array of rows shaped like `GET /v1/fees`'s.
    pub fn parse(text: &str) -> Result<FeeSchedule, ConfigError> {
        let rows: Vec<RowText> = serde_json::from_str(text)
            .map_err(|e| ConfigError(format!("FEE_SCHEDULE must be a JSON array of fee rows: {e}")))?;
        let mut parsed = Vec::with_capacity(rows.len());
        for (index, row) in rows.into_iter().enumerate() {
            let at = |field: &str| format!("FEE_SCHEDULE[{index}].{field}");
            let currency = |field: &str, code: &str| {
                Currency::parse(code).map_err(|_| ConfigError(format!("{} is not USD or CNY: {code:?}", at(field))))
            };
            let money = |field: &str, text: &str| {
                Amount::parse_stored(text)
                    .map_err(|_| ConfigError(format!("{} must be an amount such as 15.00: {text:?}", at(field))))
            };
            parsed.push(FeeRow {
                currency: currency("currency", &row.currency)?,
                payout_currency: currency("payout_currency", &row.payout_currency)?,
                fixed: money("fixed", &row.fixed)?,
                percent: row.percent.parse::<Decimal>().map_err(|_| {
                    ConfigError(format!(
                        "{} must be a decimal such as 0.30: {:?}",
                        at("percent"),
                        row.percent
                    ))
                })?,
                min: money("min", &row.min)?,
                max: row.max.as_deref().map(|m| money("max", m)).transpose()?,
            });
        }
        FeeSchedule::new(parsed)
    }

    /// The row for a pair, if the platform pays it out.
    pub fn row(&self, currency: Currency, payout_currency: Currency) -> Option<&FeeRow> {
        self.rows
            .iter()
            .find(|r| r.currency == currency && r.payout_currency == payout_currency)
    }

    pub fn rows(&self) -> &[FeeRow] {
        &self.rows
    }

    /// `GET /v1/fees`'s body.
    pub fn view(&self) -> Value {
        json!({ "withdrawal": self.rows.iter().map(FeeRow::view).collect::<Vec<_>>() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amount(text: &str) -> Amount {
        Amount::parse_stored(text).unwrap()
    }

    #[test]
    fn the_defaults_are_the_contracts() {
        let schedule = FeeSchedule::default();
        let fee = |from, to, a: &str| schedule.row(from, to).map(|r| r.fee(amount(a)).to_string());
        assert_eq!(fee(Currency::Usd, Currency::Usd, "100"), Some("15.00".into()));
        assert_eq!(
            fee(Currency::Usd, Currency::Cny, "100"),
            Some("8.00".into()),
            "raised to min"
        );
        assert_eq!(fee(Currency::Usd, Currency::Cny, "10000"), Some("30.00".into()));
        assert_eq!(fee(Currency::Cny, Currency::Cny, "100"), Some("0.00".into()));
        assert_eq!(fee(Currency::Cny, Currency::Usd, "100"), None, "not paid out");
    }

    #[test]
    fn the_default_json_is_the_default_schedule() {
        assert_eq!(FeeSchedule::parse(DEFAULT_SCHEDULE_JSON), Ok(FeeSchedule::default()));
    }

    #[test]
    fn a_fee_rounds_half_up_to_the_cent_then_is_clamped() {
        let row = FeeRow {
            currency: Currency::Usd,
            payout_currency: Currency::Cny,
            fixed: amount("0.10"),
            percent: Decimal::new(25, 2),
            min: amount("0.20"),
            max: Some(amount("5.00")),
        };
        // 0.10 + 0.25 % × 2.00 = 0.105 → 0.11 (half up), but min 0.20.
        assert_eq!(row.fee(amount("2.00")).to_string(), "0.20");
        // 0.10 + 0.25 % × 102.00 = 0.355 → 0.36.
        assert_eq!(row.fee(amount("102.00")).to_string(), "0.36");
        // 0.10 + 0.25 % × 101.80 = 0.3545 → 0.35.
        assert_eq!(row.fee(amount("101.80")).to_string(), "0.35");
        assert_eq!(row.fee(amount("1000000")).to_string(), "5.00", "lowered to max");
    }

    #[test]
    fn a_bad_schedule_names_the_field() {
        let refused = |text: &str| FeeSchedule::parse(text).unwrap_err().0;
        let row = |fields: &str| {
            format!(
                r#"[{{"currency":"USD","payout_currency":"USD","fixed":"1","percent":"0","min":"0","max":null{fields}}}]"#
            )
        };
        assert!(FeeSchedule::parse(&row("")).is_ok());
        assert!(refused(&row(r#","extra":1"#)).contains("FEE_SCHEDULE"));
        let negative =
            r#"[{"currency":"USD","payout_currency":"USD","fixed":"-1","percent":"0","min":"0","max":null}]"#;
        assert!(
            refused(negative).contains("FEE_SCHEDULE[0].fixed"),
            "{}",
            refused(negative)
        );
        let inverted = r#"[{"currency":"USD","payout_currency":"CNY","fixed":"0","percent":"1","min":"9","max":"8"}]"#;
        assert!(refused(inverted).contains("FEE_SCHEDULE[0].max"));
        let percent = r#"[{"currency":"USD","payout_currency":"CNY","fixed":"0","percent":"-1","min":"0","max":null}]"#;
        assert!(refused(percent).contains("FEE_SCHEDULE[0].percent"));
        let currency = r#"[{"currency":"EUR","payout_currency":"CNY","fixed":"0","percent":"1","min":"0","max":null}]"#;
        assert!(refused(currency).contains("FEE_SCHEDULE[0].currency"));
        let twice = format!("[{0},{0}]", &row("")[1..row("").len() - 1]);
        assert!(refused(&twice).contains("FEE_SCHEDULE[1]"), "{}", refused(&twice));
    }

    #[test]
    fn the_view_is_the_contracts_shape() {
        let view = FeeSchedule::default().view();
        assert_eq!(
            view["withdrawal"][1],
            json!({"currency": "USD", "payout_currency": "CNY", "fixed": "0.00", "percent": "0.30", "min": "8.00", "max": null})
        );
    }
}
