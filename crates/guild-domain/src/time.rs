//! Time as the domain sees it: milliseconds since the Unix epoch, passed in by the caller.
//! The domain never reads a clock, so every rule is repeatable in tests.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A point in time: milliseconds since 1970-01-01T00:00:00Z.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Wraps milliseconds since the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// This time plus `ms` milliseconds (saturating).
    pub const fn plus_millis(self, ms: u64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to `self`, or 0 when `earlier` is later.
    pub const fn millis_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with milliseconds, for example `2026-02-25T10:00:00.000Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0 / 1000;
        let millis = self.0 % 1000;
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
            rem / 3600,
            (rem % 3600) / 60,
            rem % 60
        )
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day); Howard Hinnant's
/// `civil_from_days`, which is exact for every day a u64 of milliseconds can reach.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_rfc3339_utc() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000Z");
        // 2026-02-25T10:30:15.250Z, the seed's date.
        assert_eq!(
            Timestamp(1_772_015_415_250).to_string(),
            "2026-02-25T10:30:15.250Z"
        );
        // A leap day.
        assert_eq!(
            Timestamp(951_782_400_000).to_string(),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn calendar_edges_are_right() {
        let day = 86_400_000u64;
        // 1970-03-01: the first day after the first February (the algorithm's year start).
        assert_eq!(Timestamp(59 * day).to_string(), "1970-03-01T00:00:00.000Z");
        assert_eq!(Timestamp(58 * day).to_string(), "1970-02-28T00:00:00.000Z");
        assert_eq!(
            Timestamp(946_684_799_999).to_string(),
            "1999-12-31T23:59:59.999Z"
        );
        assert_eq!(
            Timestamp(4_107_542_400_000).to_string(),
            "2100-03-01T00:00:00.000Z"
        );
        assert_eq!(
            Timestamp(4_107_456_000_000).to_string(),
            "2100-02-28T00:00:00.000Z",
            "2100 is not a leap year"
        );
        assert_eq!(Timestamp(7).as_millis(), 7);
    }

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Timestamp(5).millis_since(Timestamp(9)), 0);
        assert_eq!(Timestamp(9).millis_since(Timestamp(5)), 4);
        assert_eq!(Timestamp(u64::MAX).plus_millis(1), Timestamp(u64::MAX));
    }
}
