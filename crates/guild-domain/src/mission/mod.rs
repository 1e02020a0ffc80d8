//! The seed's Mission Manager, as pure rules: the mission lifecycle, dependencies with
//! cycle detection, readiness, parallel groups, retries and quality gates. [`Board`] holds
//! the state; [`Board::decide`] answers a [`Command`] with [`Effect`](crate::Effect)s.

mod authority;
mod board;
mod command;
mod event;
mod graph;
mod stats;
mod status;

use serde::{Deserialize, Serialize};

pub use authority::Denied;
pub use board::{Board, BoardConfig, MAX_NAME_CHARS, MissionEffect, ParallelGroup};
pub use command::{Command, DEFAULT_MAX_RETRIES, NewMission};
pub use event::Event;
pub use stats::MissionStats;
pub use status::MissionStatus;

use crate::agent::Role;
use crate::id::{AgentId, MissionId, Principal};
use crate::phase::Phase;
use crate::set::SmallSet;
use crate::time::Timestamp;

/// How a dependency binds (the seed's `severity`).
///
/// * `hard`: the dependent may start only after the dependency COMPLETED; if the dependency
///   fails for good or is cancelled, the dependent FAILS too (and so on down the graph),
///   each with an event.
/// * `soft`: the dependent waits until the dependency has finished in any way (COMPLETED,
///   FAILED or CANCELLED), then proceeds; a soft dependency's failure is reported but
///   does not fail the dependent.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Must complete.
    #[default]
    Hard,
    /// Must finish, any way.
    Soft,
}

impl Severity {
    /// Whether a dependency in `status` no longer holds the dependent back.
    pub const fn satisfied_by(self, status: MissionStatus) -> bool {
        match self {
            Severity::Hard => matches!(status, MissionStatus::Completed),
            Severity::Soft => status.is_final() || matches!(status, MissionStatus::Archived),
        }
    }
}

/// One `blocks_on` dependency: this mission waits for `mission_id`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Dependency {
    /// The mission waited for.
    pub mission_id: MissionId,
    /// Hard or soft.
    pub severity: Severity,
}

/// A failed attempt, kept for the record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Attempt {
    /// 1 for the first attempt.
    pub number: u32,
    /// The agent that ran it.
    pub agent_id: Option<AgentId>,
    /// Why it failed.
    pub reason: String,
    /// When.
    pub at: Timestamp,
}

/// A mission (the seed's `manager.create_mission(...)`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Mission {
    /// Unique id.
    pub id: MissionId,
    /// What it is.
    pub name: String,
    /// Its phase.
    pub phase: Phase,
    /// Where it is in its life.
    pub status: MissionStatus,
    /// The outcome an ARCHIVED mission had.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_status: Option<MissionStatus>,
    /// The agent it is (to be) run by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_agent_id: Option<AgentId>,
    /// The role that runs it: auto-scaling counts READY missions by it, and `claim_next`
    /// hands it only to an agent of that role. `None`: any agent, and no policy counts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Tokens it may use.
    pub token_budget: u64,
    /// 1 (lowest) to 10 (highest).
    pub priority: u8,
    /// Input, free-form.
    #[serde(default)]
    pub input_data: serde_json::Value,
    /// Output: the seed's "shared intelligence", readable by any agent.
    #[serde(default)]
    pub output_data: serde_json::Value,
    /// The last quality score, 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality_score: Option<f64>,
    /// A completion scoring below this counts as a failed attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality_gate: Option<f64>,
    /// Retries after the first attempt (3 by default: up to 4 attempts).
    pub max_retries: u32,
    /// Attempts started so far.
    pub attempts: u32,
    /// Failed attempts, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<Attempt>,
    /// Why it ended FAILED or CANCELLED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<String>,
    /// Its dependencies.
    #[serde(default)]
    pub depends_on: Vec<Dependency>,
    /// Missions that depend on it (kept so completing it conflicts with a concurrent
    /// `add_dependency` on it).
    #[serde(default)]
    pub dependents: SmallSet<MissionId>,
    /// Dependencies not yet satisfied; READY when empty.
    #[serde(default)]
    pub waiting_on: SmallSet<MissionId>,
    /// Who created it.
    pub created_by: Principal,
    /// When.
    pub created_at: Timestamp,
    /// When its record last changed.
    pub updated_at: Timestamp,
    /// When its current (or last) attempt started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// When it reached its outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
}

impl Mission {
    /// The outcome, for a final or archived mission.
    pub fn outcome(&self) -> Option<MissionStatus> {
        match self.status {
            MissionStatus::Archived => self.final_status,
            s if s.is_final() => Some(s),
            _ => None,
        }
    }

    /// The dependency on `id`, if any.
    pub fn dependency_on(&self, id: &MissionId) -> Option<&Dependency> {
        self.depends_on.iter().find(|d| &d.mission_id == id)
    }
}
#[cfg(test)]
mod scenarios;
