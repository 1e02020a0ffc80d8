//! What can be asked of the mission manager.

use serde::{Deserialize, Serialize};

use super::{Dependency, Severity};
use crate::agent::Role;
use crate::id::{AgentId, MissionId};
use crate::phase::Phase;

/// Default retries after the first attempt (the seed's "gave up after 3 retries").
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// A new mission (the seed's `create_mission(name, phase, assigned_agent_id, token_budget,
/// priority, input_data)`, plus retries, a quality gate and dependencies).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewMission {
    /// Its id.
    pub id: MissionId,
    /// What it is (1 to 200 characters).
    pub name: String,
    /// Its phase.
    pub phase: Phase,
    /// The agent meant to run it.
    #[serde(default)]
    pub assigned_agent_id: Option<AgentId>,
    /// The role that runs it: auto-scaling counts READY missions by it, and `claim_next`
    /// hands it only to an agent of that role. `None`: any agent, and no policy counts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Tokens it may use.
    #[serde(default)]
    pub token_budget: u64,
    /// 1 (lowest) to 10 (highest); 5 by default.
    #[serde(default = "default_priority")]
    pub priority: u8,
    /// Input, free-form.
    #[serde(default)]
    pub input_data: serde_json::Value,
    /// Retries after the first attempt; 3 by default.
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    /// A completion scoring below this (0 to 1) counts as a failed attempt.
    #[serde(default)]
    pub quality_gate: Option<f64>,
    /// Dependencies to add at once.
    #[serde(default)]
    pub depends_on: Vec<Dependency>,
}

fn default_priority() -> u8 {
    5
}

fn default_retries() -> u32 {
    DEFAULT_MAX_RETRIES
}

impl NewMission {
    /// A mission with defaults for everything but its id, name and phase.
    pub fn new(id: MissionId, name: impl Into<String>, phase: Phase) -> Self {
        Self {
            id,
            name: name.into(),
            phase,
            assigned_agent_id: None,
            role: None,
            token_budget: 0,
            priority: default_priority(),
            input_data: serde_json::Value::Null,
            max_retries: DEFAULT_MAX_RETRIES,
            quality_gate: None,
            depends_on: Vec::new(),
        }
    }
}

/// Everything the mission manager can be asked to change.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Create a mission.
    Create(NewMission),
    /// `mission` blocks on `on` (the seed's `add_dependency(mission, on, "blocks_on", severity)`).
    AddDependency {
        /// The dependent.
        mission: MissionId,
        /// The dependency.
        on: MissionId,
        /// Hard or soft.
        severity: Severity,
    },
    /// Removes a dependency.
    RemoveDependency {
        /// The dependent.
        mission: MissionId,
        /// The dependency.
        on: MissionId,
    },
    /// Start a READY mission on `agent` (ACTIVE; one more attempt). The caller has already
    /// recorded the allocation with the spawner.
    Start {
        /// The mission.
        mission: MissionId,
        /// The agent.
        agent: AgentId,
    },
    /// Mark an ACTIVE mission complete; below its quality gate this is a failed attempt.
    Complete {
        /// The mission.
        mission: MissionId,
        /// Its output.
        output: serde_json::Value,
        /// Its quality score, 0 to 1.
        quality_score: Option<f64>,
    },
    /// Mark an ACTIVE mission's attempt failed: back to READY while retries remain (and
    /// `retry` is set), else FAILED for good.
    Fail {
        /// The mission.
        mission: MissionId,
        /// Why.
        reason: String,
        /// Whether to retry.
        retry: bool,
        /// The agent was lost: the retry needs another agent.
        agent_lost: bool,
    },
    /// Cancel an open mission.
    Cancel {
        /// The mission.
        mission: MissionId,
        /// Why.
        reason: String,
    },
    /// Archive one final mission.
    Archive {
        /// The mission.
        mission: MissionId,
    },
    /// Archive every final mission that finished more than `older_than_ms` ago.
    ArchiveOlderThan {
        /// The window.
        older_than_ms: u64,
    },
    /// Hand an ACTIVE mission from the agent running it to another (the bus's HANDOFF).
    /// The caller has already allocated it to `to` with the spawner.
    Reassign {
        /// The mission.
        mission: MissionId,
        /// The agent handing it over; must be the one running it.
        from: AgentId,
        /// The agent taking it.
        to: AgentId,
    },
}
