//! Token budgets. Every token of the global pool is always in exactly one place: the pool's
//! free tokens, or some agent's `allocated`. A spawn moves tokens from the parent (or the
//! pool) to the child; a termination moves the unused rest to the nearest live ancestor (or
//! the pool); a reallocation moves them between two agents. Spending never creates or
//! destroys tokens: `used` and `reserved` are parts of `allocated`.

use serde::{Deserialize, Serialize};

use crate::id::{AgentId, MissionId, ReservationId};
use crate::time::Timestamp;

/// An agent's share of the pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Budget {
    /// Tokens held (the seed's `token_budget`, less what was carved out for children).
    pub allocated: u64,
    /// Tokens spent (committed).
    pub used: u64,
    /// Tokens set aside by open reservations.
    pub reserved: u64,
    /// Of `used`, what commits reported as input (prompt) tokens, OpenTelemetry's
    /// `gen_ai.usage.input_tokens`; a commit of one number counts in neither split.
    #[serde(default)]
    pub input_tokens: u64,
    /// Of `used`, what commits reported as output (completion) tokens,
    /// `gen_ai.usage.output_tokens`.
    #[serde(default)]
    pub output_tokens: u64,
}

impl Budget {
    /// A fresh budget of `allocated` tokens.
    pub const fn new(allocated: u64) -> Self {
        Self {
            allocated,
            used: 0,
            reserved: 0,
            input_tokens: 0,
            output_tokens: 0,
        }
    }

    /// Tokens free to reserve, carve out or move: `allocated - used - reserved`.
    pub const fn remaining(&self) -> u64 {
        self.allocated
            .saturating_sub(self.used)
            .saturating_sub(self.reserved)
    }
}

/// What a unit of work used, as a commit reports it: one number (`used`), or the input
/// and output tokens apart as agent platforms count them, or all three when they agree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Tokens used in all.
    pub used: Option<u64>,
    /// Input (prompt) tokens.
    pub input_tokens: Option<u64>,
    /// Output (completion) tokens.
    pub output_tokens: Option<u64>,
}

impl Usage {
    /// `used` tokens, with no split.
    pub const fn total(used: u64) -> Self {
        Self {
            used: Some(used),
            input_tokens: None,
            output_tokens: None,
        }
    }

    /// `input` and `output` tokens apart.
    pub const fn split(input: u64, output: u64) -> Self {
        Self {
            used: None,
            input_tokens: Some(input),
            output_tokens: Some(output),
        }
    }

    /// The total, and the split (zero where not reported): the total is `used` when
    /// given, else input + output; given both, they must agree.
    pub fn resolve(&self) -> Result<(u64, u64, u64), crate::Rejection> {
        let split = self.input_tokens.is_some() || self.output_tokens.is_some();
        let (input, output) = (
            self.input_tokens.unwrap_or(0),
            self.output_tokens.unwrap_or(0),
        );
        let sum = input.checked_add(output).ok_or_else(|| {
            crate::Rejection::invalid("output_tokens", "input_tokens + output_tokens overflows")
        })?;
        match self.used {
            None if !split => Err(crate::Rejection::invalid(
                "used",
                "give used, or input_tokens and output_tokens",
            )),
            None => Ok((sum, input, output)),
            Some(used) if split && used != sum => Err(crate::Rejection::invalid(
                "used",
                format!("{used} is not input_tokens + output_tokens ({input} + {output})"),
            )),
            Some(used) => Ok((used, input, output)),
        }
    }
}

impl From<u64> for Usage {
    fn from(used: u64) -> Self {
        Self::total(used)
    }
}

/// Tokens set aside before a unit of work; committed or released afterwards.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Reservation {
    /// The caller's id for it.
    pub id: ReservationId,
    /// Tokens set aside.
    pub amount: u64,
    /// The mission also charged, when named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mission_id: Option<MissionId>,
    /// When it was made.
    pub created_at: Timestamp,
}

/// A mission's token account, charged alongside the agent's when a reservation names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MissionLedger {
    /// The mission.
    pub mission_id: MissionId,
    /// Its token budget.
    pub budget: u64,
    /// Tokens spent on it.
    pub used: u64,
    /// Tokens reserved for it.
    pub reserved: u64,
}

impl MissionLedger {
    /// Tokens of the mission's budget neither used nor reserved.
    pub const fn remaining(&self) -> u64 {
        self.budget
            .saturating_sub(self.used)
            .saturating_sub(self.reserved)
    }
}

/// The global pool: the mode's token total, what of it is not held by any agent, and how
/// many agents are live (the global agent limit is checked against it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Pool {
    /// The pool's size.
    pub total: u64,
    /// Tokens not held by any agent.
    pub free: u64,
    /// Agents alive now.
    pub live_agents: u32,
}

impl Pool {
    /// A pool with every token free and no agents.
    pub const fn new(total: u64) -> Self {
        Self {
            total,
            free: total,
            live_agents: 0,
        }
    }

    /// The pool after its total changes (a restart with another mode): free tokens move by
    /// the difference; it cannot shrink below what agents hold.
    pub fn resized(&self, total: u64) -> Result<Self, crate::Rejection> {
        let held = self.total - self.free;
        if total < held {
            return Err(crate::Rejection::invalid(
                "token_pool",
                format!("{total} is below the {held} tokens agents hold now"),
            ));
        }
        Ok(Self {
            total,
            free: total - held,
            live_agents: self.live_agents,
        })
    }
}

/// Where a terminated agent's unused tokens went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum BudgetHolder {
    /// The global pool.
    Pool,
    /// An agent (the nearest live ancestor).
    Agent(AgentId),
}

/// What an agent last said about its context window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ContextWindow {
    /// The model's context window, in tokens.
    pub window_tokens: u64,
    /// Tokens in the context now.
    pub tokens_in_context: u64,
}

impl ContextWindow {
    /// `tokens_in_context / window_tokens` (the seed targets 0.8 to 0.9).
    pub fn utilization(&self) -> f64 {
        if self.window_tokens == 0 {
            0.0
        } else {
            self.tokens_in_context as f64 / self.window_tokens as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_subtracts_used_and_reserved() {
        let b = Budget {
            used: 30,
            reserved: 20,
            ..Budget::new(100)
        };
        assert_eq!(b.remaining(), 50);
        let l = MissionLedger {
            mission_id: MissionId::new("m").unwrap(),
            budget: 10,
            used: 4,
            reserved: 6,
        };
        assert_eq!(l.remaining(), 0);
    }

    #[test]
    fn utilization_handles_an_empty_window() {
        assert_eq!(
            ContextWindow {
                window_tokens: 0,
                tokens_in_context: 5
            }
            .utilization(),
            0.0
        );
        let w = ContextWindow {
            window_tokens: 200_000,
            tokens_in_context: 170_000,
        };
        assert!((w.utilization() - 0.85).abs() < 1e-9);
    }
}
