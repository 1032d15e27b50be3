//! Identifiers that sort by creation time.

use crate::clock::Timestamp;

/// A ULID for the given instant: its text sorts by time, so "newest first" is a reverse
/// key order in every store.
pub fn ulid_at(now: Timestamp) -> String {
    let millis = u64::try_from(now.unix_millis()).unwrap_or(0);
    ulid::Ulid::from_parts(millis, rand::random::<u128>()).to_string()
}

/// FNV-1a: a hash that is the same in every process and release (unlike `DefaultHasher`),
/// for spreading keys over shards.
pub fn stable_hash(text: &str) -> u32 {
    text.bytes()
        .fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// Declares an id that is a prefix and a ULID. A path segment or body field becomes one
/// only through `parse`, at the HTTP edge, so anything else is "not found" without a store
/// call — and never reaches DynamoDB's key-size limits.
macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            const PREFIX: &'static str = $prefix;

            /// A new id, sorting by `now`.
            pub fn new_at(now: Timestamp) -> Self {
                Self(format!("{}{}", Self::PREFIX, ulid_at(now)))
            }

            /// `Some` if `text` has the shape of this id.
            pub fn parse(text: &str) -> Option<Self> {
                let ulid = text.strip_prefix(Self::PREFIX)?;
                (ulid.len() == 26 && ulid.bytes().all(|b| b.is_ascii_alphanumeric())).then(|| Self(text.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// A withdrawal's id: `wd_` and a ULID.
    WithdrawalId,
    "wd_"
);
prefixed_id!(
    /// An FX quote's id: `fxq_` and a ULID.
    QuoteId,
    "fxq_"
);
prefixed_id!(
    /// A conversion's id: `cv_` and a ULID.
    ConversionId,
    "cv_"
);

prefixed_id!(
    /// A statement export's id: `ex_` and a ULID.
    ExportId,
    "ex_"
);

/// An id the marketplace chooses for a collection or a refund: 1 to 128 characters of
/// `[A-Za-z0-9._:-]`, parsed once at the HTTP edge.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ExternalId(String);

impl ExternalId {
    /// `Some` if `text` is a valid external id.
    pub fn parse(text: &str) -> Option<Self> {
        let valid =
            (1..=128).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
        valid.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ExternalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn withdrawal_ids_are_wd_and_a_ulid() {
        let id = WithdrawalId::new_at(Timestamp::from_unix_millis(1_700_000_000_000));
        assert_eq!(WithdrawalId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(id.as_str().len(), 29);
        for bad in [
            "",
            "wd_",
            "01HZZZZZZZZZZZZZZZZZZZZZZZ",
            "xx_01HZZZZZZZZZZZZZZZZZZZZZZZ",
            "wd_01HZZZZZZZZZZZZZZZZZZZZZZ",
            "wd_01HZZZZZZZZZZZZZZZZZZZZZZZZ",
            "wd_01HZZZZZZZZZZZZZZZZZZZZZZ-",
            "wd_01HZZZZZZZZZZZZZZZZZZZZZZé",
        ] {
            assert_eq!(WithdrawalId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn external_ids_are_1_to_128_safe_characters() {
        for good in ["a", "ORD-2026.01:7_x", &"x".repeat(128)] {
            assert_eq!(
                ExternalId::parse(good).map(|id| id.as_str().to_owned()),
                Some(good.to_owned())
            );
        }
        for bad in ["", &"x".repeat(129), "a b", "a/b", "a#b", "订单", "a\0", "a\n"] {
            assert_eq!(ExternalId::parse(bad), None, "{bad:?}");
        }
    }
}
