//! The spawner's figures (the seed's `get_stats()`, and more).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{AgentStatus, Registry};
use crate::id::MissionId;
use crate::time::Timestamp;

/// The seed's `{"total_agents": 8, "active_agents": 3, "capacity": 0.4}`, plus the rest of
/// what an operator watches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SpawnerStats {
    /// Live agents (they count toward `max_agents`).
    pub total_agents: u32,
    /// Agents ACTIVE or WORKING.
    pub active_agents: u32,
    /// `total_agents / max_agents`.
    pub capacity: f64,
    /// The global agent limit.
    pub max_agents: u32,
    /// Agents that ended (COMPLETED or FAILED), kept for lineage.
    pub terminated_agents: u32,
    /// Live agents per role.
    pub by_role: BTreeMap<String, u32>,
    /// Agents per status, terminated ones included.
    pub by_status: BTreeMap<AgentStatus, u32>,
    /// Token figures.
    pub tokens: TokenStats,
    /// Cost of the tokens used, at the configured price.
    pub cost_usd: f64,
    /// The configured price per 1,000 tokens.
    pub price_per_1k_tokens: f64,
    /// Mean context-window utilization over live agents that reported one (the seed's
    /// target is 0.8 to 0.9); `None` when none reported.
    pub context_window_utilization: Option<f64>,
    /// Working agents over max agents.
    pub parallelization_efficiency: EfficiencyStats,
}

/// Token figures: where the pool's tokens are and what was spent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TokenStats {
    /// The pool's size.
    pub pool_total: u64,
    /// Tokens no agent holds.
    pub pool_free: u64,
    /// Tokens held by live agents.
    pub allocated: u64,
    /// Tokens spent, by every agent ever.
    pub used: u64,
    /// Of `used`, reported as input tokens (`gen_ai.usage.input_tokens`).
    #[serde(default)]
    pub input_tokens: u64,
    /// Of `used`, reported as output tokens (`gen_ai.usage.output_tokens`).
    #[serde(default)]
    pub output_tokens: u64,
    /// Tokens reserved now.
    pub reserved: u64,
    /// Tokens live agents may still reserve.
    pub remaining: u64,
    /// Tokens spent per role.
    pub used_by_role: BTreeMap<String, u64>,
    /// Tokens spent per mission.
    pub used_by_mission: BTreeMap<MissionId, u64>,
}

/// Parallelization efficiency now and averaged over time (the seed's target is 70%+).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EfficiencyStats {
    /// Working agents over max agents, now.
    pub current: f64,
    /// The time-weighted average since `since`.
    pub average: f64,
    /// When sampling began.
    pub since: Timestamp,
}

impl Registry {
    /// The figures at `now`, costing tokens at `price_per_1k_tokens`.
    pub fn stats(&self, now: Timestamp, price_per_1k_tokens: f64) -> SpawnerStats {
        let max = self.limits.max_agents;
        let mut s = SpawnerStats {
            total_agents: 0,
            active_agents: 0,
            capacity: 0.0,
            max_agents: max,
            terminated_agents: 0,
            by_role: BTreeMap::new(),
            by_status: AgentStatus::ALL.into_iter().map(|s| (s, 0)).collect(),
            tokens: TokenStats {
                pool_total: self.pool.total,
                pool_free: self.pool.free,
                allocated: 0,
                used: 0,
                input_tokens: 0,
                output_tokens: 0,
                reserved: 0,
                remaining: 0,
                used_by_role: BTreeMap::new(),
                used_by_mission: self
                    .ledgers
                    .values()
                    .map(|l| (l.mission_id.clone(), l.used))
                    .collect(),
            },
            cost_usd: 0.0,
            price_per_1k_tokens,
            context_window_utilization: None,
            parallelization_efficiency: EfficiencyStats {
                current: 0.0,
                average: self.efficiency.average(now),
                since: self.efficiency.started_at,
            },
        };
        let (mut util_sum, mut util_n, mut working) = (0.0, 0u32, 0u32);
        for a in self.agents.values() {
            *s.by_status.entry(a.status).or_default() += 1;
            *s.tokens.used_by_role.entry(a.role.to_string()).or_default() += a.budget.used;
            s.tokens.used += a.budget.used;
            s.tokens.input_tokens += a.budget.input_tokens;
            s.tokens.output_tokens += a.budget.output_tokens;
            if !a.is_live() {
                s.terminated_agents += 1;
                continue;
            }
            s.total_agents += 1;
            *s.by_role.entry(a.role.to_string()).or_default() += 1;
            if matches!(a.status, AgentStatus::Active | AgentStatus::Working) {
                s.active_agents += 1;
            }
            if a.status == AgentStatus::Working {
                working += 1;
            }
            s.tokens.allocated += a.budget.allocated;
            s.tokens.reserved += a.budget.reserved;
            s.tokens.remaining += a.budget.remaining();
            if let Some(w) = a.context_window {
                util_sum += w.utilization();
                util_n += 1;
            }
        }
        s.capacity = f64::from(s.total_agents) / f64::from(max.max(1));
        s.cost_usd = s.tokens.used as f64 / 1000.0 * price_per_1k_tokens;
        s.context_window_utilization = (util_n > 0).then(|| util_sum / f64::from(util_n));
        s.parallelization_efficiency.current = f64::from(working) / f64::from(max.max(1));
        s
    }
}
