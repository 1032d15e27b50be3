//! Time: the `Clock` port and the `Timestamp` every record carries.
//!
//! Expiry, cooldowns and lockouts read time only through [`Clock`], so tests move time
//! forward instead of sleeping.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A UTC instant with millisecond precision.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn from_unix_millis(millis: i64) -> Timestamp {
        Timestamp(millis)
    }

    pub fn unix_millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch (rounded down): the unit of DynamoDB's TTL attribute.
    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }

    pub fn plus_seconds(self, seconds: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(seconds.saturating_mul(1000)))
    }

    pub fn plus_millis(self, millis: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(millis))
    }

    /// Seconds from `self` until `later`, rounded up, never below zero: what a
    /// `Retry-After` header says.
    pub fn seconds_until(self, later: Timestamp) -> i64 {
        let millis = later.0.saturating_sub(self.0).max(0);
        (millis + 999) / 1000
    }

    /// Parses an RFC 3339 time with any offset.
    pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        let parsed = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        let millis = parsed.unix_timestamp_nanos() / 1_000_000;
        i64::try_from(millis).ok().map(Timestamp)
    }

    /// Parses an RFC 3339 time, rounding a fraction of a millisecond up: the first
    /// millisecond at or after the instant, so a half-open range `[from, to)` of
    /// millisecond stamps holds exactly the stamps within the instants given.
    pub fn parse_rfc3339_rounding_up(text: &str) -> Option<Timestamp> {
        let parsed = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        let nanos = parsed.unix_timestamp_nanos();
        let millis = nanos.div_euclid(1_000_000) + i128::from(nanos.rem_euclid(1_000_000) != 0);
        i64::try_from(millis).ok().map(Timestamp)
    }

    /// RFC 3339 in UTC with milliseconds, e.g. `2026-11-25T18:21:00.000Z`.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(t) => format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.millisecond()
            ),
            Err(_) => "invalid-time".to_owned(),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.to_rfc3339())
    }
}

/// Where the domain reads the current time.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The system clock (so the local gateway can be run under `faketime`).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp(millis)
    }
}

/// A clock that only moves when told to: for tests of expiry and lockout.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn starting_at(start: Timestamp) -> ManualClock {
        ManualClock(AtomicI64::new(start.0))
    }

    pub fn advance_seconds(&self, seconds: i64) {
        self.0.fetch_add(seconds * 1000, Ordering::SeqCst);
    }

    pub fn advance_millis(&self, millis: i64) {
        self.0.fetch_add(millis, Ordering::SeqCst);
    }

    pub fn set(&self, to: Timestamp) {
        self.0.store(to.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_in_utc() {
        let t = Timestamp::parse_rfc3339("2026-11-25T18:21:00.123+08:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-25T10:21:00.123Z");
        assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Some(t));
    }

    #[test]
    fn seconds_until_rounds_up_and_never_goes_negative() {
        let t = Timestamp::from_unix_millis(1_000);
        assert_eq!(t.seconds_until(Timestamp::from_unix_millis(1_001)), 1);
        assert_eq!(t.seconds_until(Timestamp::from_unix_millis(61_000)), 60);
        assert_eq!(t.seconds_until(Timestamp::from_unix_millis(0)), 0);
    }
}
