//! The bus's figures (the seed's `get_message_stats`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{MessageType, PostOffice, Priority};

/// p50 and p99 of a duration, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Percentiles {
    /// How many samples.
    pub count: u64,
    /// Median.
    pub p50_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
}

impl Percentiles {
    /// Nearest-rank percentiles of `samples` (milliseconds).
    pub fn of(samples: impl IntoIterator<Item = u64>) -> Self {
        let mut v: Vec<u64> = samples.into_iter().collect();
        v.sort_unstable();
        let rank = |q: f64| -> Option<f64> {
            if v.is_empty() {
                return None;
            }
            let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
            Some(v[i] as f64)
        };
        Self {
            count: v.len() as u64,
            p50_ms: rank(0.50),
            p99_ms: rank(0.99),
        }
    }
}

/// The seed's `{"total_messages": 342, "queue_size": 12, "decisions_recorded": 28}`, and more.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MessageStats {
    /// Messages accepted (an alert counts once).
    pub total_messages: u64,
    /// Copies waiting in inboxes, unacknowledged deliveries included.
    pub queue_size: u64,
    /// Questions decided (completions and overrides do not count again).
    pub decisions_recorded: u64,
    /// Messages per type.
    pub by_type: BTreeMap<MessageType, u64>,
    /// Messages per priority.
    pub by_priority: BTreeMap<Priority, u64>,
    /// Waiting copies per inbox owner (agent id or `operator`).
    pub queue_by_agent: BTreeMap<String, u64>,
    /// Question to decision time, over the latest decisions.
    pub decision_time: Percentiles,
    /// Escalations made.
    pub escalations: u64,
    /// Messages moved out of the working set by the retention window.
    pub archived_messages: u64,
}

impl PostOffice {
    /// The figures now.
    pub fn stats(&self) -> MessageStats {
        let t = self.totals();
        MessageStats {
            total_messages: t.messages,
            queue_size: self.queue_size(),
            decisions_recorded: t.decisions,
            by_type: t.by_type.clone(),
            by_priority: t.by_priority.clone(),
            queue_by_agent: self
                .queues()
                .map(|(o, n)| (o.token().to_owned(), n as u64))
                .collect(),
            decision_time: Percentiles::of(t.decision_times_ms.iter().copied()),
            escalations: t.escalations,
            archived_messages: t.archived,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let p = Percentiles::of(1..=100);
        assert_eq!((p.count, p.p50_ms, p.p99_ms), (100, Some(50.0), Some(99.0)));
        let one = Percentiles::of([7]);
        assert_eq!((one.p50_ms, one.p99_ms), (Some(7.0), Some(7.0)));
        assert_eq!(Percentiles::of([]).p50_ms, None);
    }
}
