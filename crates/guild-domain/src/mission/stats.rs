//! The mission manager's figures (the seed's `get_statistics()`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Board, MissionStatus};
use crate::time::Timestamp;

/// Counts, success rate, retries, quality, budgets and throughput.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MissionStats {
    /// Every mission, archived ones included.
    pub total: u32,
    /// Missions per status.
    pub by_status: BTreeMap<MissionStatus, u32>,
    /// Completed over completed plus failed (archived ones by their outcome); `None` before
    /// any outcome.
    pub success_rate: Option<f64>,
    /// Attempts beyond the first, over all missions.
    pub retries: u32,
    /// Failed attempts, over all missions.
    pub failed_attempts: u32,
    /// Mean quality score of completed missions that have one.
    pub mean_quality: Option<f64>,
    /// Token budgets of all missions, summed (at most `u64::MAX`).
    pub token_budget_total: u64,
    /// Missions completed in the hour before `at`.
    pub completed_last_hour: u32,
    /// Completions per hour since the first mission was created.
    pub throughput_per_hour: f64,
    /// Mean time from the last start to completion, in milliseconds.
    pub mean_duration_ms: Option<f64>,
    /// When the figures were taken.
    pub at: Timestamp,
}

impl Board {
    /// The figures at `now`.
    pub fn stats(&self, now: Timestamp) -> MissionStats {
        let mut s = MissionStats {
            total: 0,
            by_status: MissionStatus::ALL.into_iter().map(|s| (s, 0)).collect(),
            success_rate: None,
            retries: 0,
            failed_attempts: 0,
            mean_quality: None,
            token_budget_total: 0,
            completed_last_hour: 0,
            throughput_per_hour: 0.0,
            mean_duration_ms: None,
            at: now,
        };
        let (mut completed, mut failed) = (0u32, 0u32);
        let (mut q_sum, mut q_n, mut d_sum, mut d_n) = (0.0, 0u32, 0.0, 0u32);
        let mut first_created: Option<Timestamp> = None;
        for m in self.missions() {
            s.total += 1;
            *s.by_status.entry(m.status).or_default() += 1;
            s.retries += m.attempts.saturating_sub(1);
            s.failed_attempts += m.failures.len() as u32;
            // A mission's budget is the caller's number, up to u64::MAX: the total stops
            // there rather than overflow (found by the wire fuzzer, docs/FUZZING.md).
            s.token_budget_total = s.token_budget_total.saturating_add(m.token_budget);
            first_created = Some(first_created.map_or(m.created_at, |f| f.min(m.created_at)));
            match m.outcome() {
                Some(MissionStatus::Completed) => {
                    completed += 1;
                    if let Some(q) = m.quality_score {
                        q_sum += q;
                        q_n += 1;
                    }
                    if let (Some(start), Some(end)) = (m.started_at, m.finished_at) {
                        d_sum += end.millis_since(start) as f64;
                        d_n += 1;
                        if now.millis_since(end) <= 3_600_000 {
                            s.completed_last_hour += 1;
                        }
                    }
                }
                Some(MissionStatus::Failed) => failed += 1,
                _ => {}
            }
        }
        if completed + failed > 0 {
            s.success_rate = Some(f64::from(completed) / f64::from(completed + failed));
        }
        s.mean_quality = (q_n > 0).then(|| q_sum / f64::from(q_n));
        s.mean_duration_ms = (d_n > 0).then(|| d_sum / f64::from(d_n));
        if let Some(first) = first_created {
            let hours = now.millis_since(first) as f64 / 3_600_000.0;
            if hours > 0.0 {
                s.throughput_per_hour = f64::from(completed) / hours;
            }
        }
        s
    }
}
