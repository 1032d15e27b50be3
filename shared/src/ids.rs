//! Identifiers that sort by creation time.

use crate::clock::Timestamp;

/// A ULID for the given instant: its text sorts by time, so "newest first" is a reverse
/// key order in every store.
pub fn ulid_at(now: Timestamp) -> String {
    let millis = u64::try_from(now.unix_millis()).unwrap_or(0);
    ulid::Ulid::from_parts(millis, rand::random::<u128>()).to_string()
}
