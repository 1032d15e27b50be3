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
