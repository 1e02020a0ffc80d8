//! Delivery order: strict priority, FIFO within a priority, and one anti-starvation rule.
//!
//! The rule: a HIGH, NORMAL or LOW message that has waited longer than its priority's
//! `max_wait` is served before younger messages of higher non-critical priorities; among
//! several such starved messages the oldest goes first. CRITICAL is never delayed by it: a
//! waiting CRITICAL message is always served first. The rule needs only the enqueue time of
//! the oldest waiting message of each priority, so it holds the same however many bus
//! instances serve an inbox.

use serde::{Deserialize, Serialize};

use super::Priority;
use crate::time::Timestamp;

/// How long a non-critical message may wait before it is served ahead of higher priorities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StarvationPolicy {
    /// For HIGH messages, in milliseconds.
    pub high_max_wait_ms: u64,
    /// For NORMAL messages.
    pub normal_max_wait_ms: u64,
    /// For LOW messages.
    pub low_max_wait_ms: u64,
}

impl Default for StarvationPolicy {
    /// HIGH 10 s, NORMAL 30 s, LOW 60 s.
    fn default() -> Self {
        Self {
            high_max_wait_ms: 10_000,
            normal_max_wait_ms: 30_000,
            low_max_wait_ms: 60_000,
        }
    }
}

impl StarvationPolicy {
    fn max_wait(&self, p: Priority) -> Option<u64> {
        match p {
            Priority::Critical => None,
            Priority::High => Some(self.high_max_wait_ms),
            Priority::Normal => Some(self.normal_max_wait_ms),
            Priority::Low => Some(self.low_max_wait_ms),
        }
    }
}

/// The priority to serve next, given the enqueue time of the oldest waiting message of
/// each priority (indexed by [`Priority::rank`]); `None` when nothing waits.
pub fn next_priority(
    oldest: &[Option<Timestamp>; 4],
    now: Timestamp,
    policy: &StarvationPolicy,
) -> Option<Priority> {
    if oldest[Priority::Critical.rank()].is_some() {
        return Some(Priority::Critical);
    }
    let waiting = || {
        Priority::DESCENDING[1..]
            .iter()
            .filter_map(|&p| oldest[p.rank()].map(|t| (p, t)))
    };
    let starved = waiting()
        .filter(|&(p, t)| {
            policy
                .max_wait(p)
                .is_some_and(|max| now.millis_since(t) > max)
        })
        // Oldest first; for equal ages the higher priority (earlier in DESCENDING).
        .min_by_key(|&(p, t)| (t, p.rank()));
    starved.or_else(|| waiting().next()).map(|(p, _)| p)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_000_000);

    fn ago(ms: u64) -> Option<Timestamp> {
        Some(Timestamp(NOW.0 - ms))
    }

    #[test]
    fn strict_priority_when_nothing_starves() {
        let p = StarvationPolicy::default();
        assert_eq!(
            next_priority(&[None, ago(5), ago(9), ago(20)], NOW, &p),
            Some(Priority::High)
        );
        assert_eq!(
            next_priority(&[None, None, ago(9), ago(20)], NOW, &p),
            Some(Priority::Normal)
        );
        assert_eq!(
            next_priority(&[None, None, None, ago(1)], NOW, &p),
            Some(Priority::Low)
        );
        assert_eq!(next_priority(&[None; 4], NOW, &p), None);
    }

    #[test]
    fn a_starved_low_message_goes_before_high() {
        let p = StarvationPolicy::default();
        let oldest = [None, ago(1), ago(1), ago(p.low_max_wait_ms + 1)];
        assert_eq!(next_priority(&oldest, NOW, &p), Some(Priority::Low));
    }

    #[test]
    fn critical_is_never_delayed_by_starvation() {
        let p = StarvationPolicy::default();
        let oldest = [ago(0), ago(999_999), ago(999_999), ago(999_999)];
        assert_eq!(next_priority(&oldest, NOW, &p), Some(Priority::Critical));
    }

    #[test]
    fn among_starved_the_oldest_wins() {
        let p = StarvationPolicy::default();
        let oldest = [None, None, ago(90_000), ago(70_000)];
        assert_eq!(next_priority(&oldest, NOW, &p), Some(Priority::Normal));
    }
}
