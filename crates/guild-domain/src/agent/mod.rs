//! The seed's Agent Spawner, as pure rules: roles, statuses, the authority matrix, spawn
//! admission, token accounting and liveness. [`Registry`] holds the state;
//! [`Registry::decide`] answers a [`Command`] with the [`Effect`](crate::Effect)s to carry
//! out; [`Registry::apply`] folds saved records back in.

mod authority;
mod autoscale;
mod budget;
mod command;
mod credential;
mod decide;
mod event;
mod limits;
mod registry;
mod role;
mod scaling;
mod stats;
mod status;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use authority::{Action, ActionName, Authority, SpawnCap};
pub use budget::{Budget, BudgetHolder, ContextWindow, MissionLedger, Pool, Reservation, Usage};
pub use command::{AgentQuery, Command, SpawnRequest};
pub use credential::{PublicKey, RevokedKey};
pub use decide::SpawnerEffect;
pub use event::Event;
pub use limits::{Limits, Mode};
pub use registry::{Efficiency, Record, Registry};
pub use role::{Capability, Role};
pub use scaling::{MIN_SCALING_MS, Scaling, ScalingPolicy, Step};
pub use stats::{EfficiencyStats, SpawnerStats, TokenStats};
pub use status::AgentStatus;

use crate::id::{AgentId, MissionId, Principal, ReservationId};
use crate::time::Timestamp;

/// An agent as the registry knows it (the seed's `AgentProfile`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AgentProfile {
    /// Unique id.
    pub id: AgentId,
    /// Its role.
    pub role: Role,
    /// Where it is in its life.
    pub status: AgentStatus,
    /// Why it is BLOCKED or FAILED, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// The agent that spawned it; `None` for a root agent spawned by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<AgentId>,
    /// What it can do.
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    /// What it is allowed to do.
    pub authority: Authority,
    /// Its tokens.
    pub budget: Budget,
    /// Open token reservations, by id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reservations: BTreeMap<ReservationId, Reservation>,
    /// The last reservations committed or released ([`SETTLED_KEPT`], oldest first): a
    /// reserve delivered again after its reservation settled is recognised, not made
    /// twice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settled_reservations: Vec<Reservation>,
    /// The task (mission) it is working on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_task_id: Option<MissionId>,
    /// When it was given that task: an allocation is judged by its own age
    /// ([`crate::allocation`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_at: Option<Timestamp>,
    /// Its live sub-agents, checked against `max_parallel_agents`.
    pub live_children: u32,
    /// Spawned by another agent: the orchestrator terminates it when its work is done.
    pub temporary: bool,
    /// Who spawned it.
    pub spawned_by: Principal,
    /// When it was spawned.
    pub spawned_at: Timestamp,
    /// When its record last changed.
    pub updated_at: Timestamp,
    /// Its last heartbeat; `None` until the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat_at: Option<Timestamp>,
    /// What it last reported about its context window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<ContextWindow>,
    /// When it was terminated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// The public key of the credentials Guild minted for it: the broker knows it by
    /// this key. `None` where Guild runs without authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_key: Option<PublicKey>,
    /// Keys of credentials it held before a re-issue; they are revoked, as its current key
    /// is once it is no longer live.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revoked_keys: Vec<RevokedKey>,
    /// Agents spawned below it so far, every generation, terminated ones included: what
    /// `authority.max_descendants` caps (counted while it holds that cap).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub descendants_spawned: u32,
    /// When the spawns below it within the last minute were made, oldest first: what
    /// `authority.max_spawns_per_minute` caps (kept while it holds that cap, at most that
    /// many).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_spawns: Vec<Timestamp>,
    /// Spawned by its parent's scaling policy for its role: the policy may scale it down.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub autoscaled: bool,
    /// Since when it has held no task (its spawn, its last task's release, or its return
    /// from BLOCKED); `None` while it holds one. Scaling down waits for a policy's idle
    /// time from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_since: Option<Timestamp>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// How many settled reservations an agent's profile remembers.
pub const SETTLED_KEPT: usize = 32;

impl AgentProfile {
    /// A reservation of this agent by id: open, or among the last settled.
    pub fn reservation(&self, id: &ReservationId) -> Option<&Reservation> {
        self.reservations
            .get(id)
            .or_else(|| self.settled_reservations.iter().find(|r| &r.id == id))
    }

    /// Moves an open reservation to the settled ones.
    pub(crate) fn settle(&mut self, id: &ReservationId) {
        if let Some(r) = self.reservations.remove(id) {
            self.settled_reservations.push(r);
            let over = self.settled_reservations.len().saturating_sub(SETTLED_KEPT);
            self.settled_reservations.drain(..over);
        }
    }

    /// Whether it is alive.
    pub fn is_live(&self) -> bool {
        self.status.is_live()
    }

    /// Whether it may be given new work now: ACTIVE or IDLE and holding no task.
    pub fn is_available(&self) -> bool {
        self.status.takes_work() && self.assigned_task_id.is_none()
    }

    /// The last sign of life: its last heartbeat, or its spawn.
    pub fn last_seen(&self) -> Timestamp {
        self.last_heartbeat_at.unwrap_or(self.spawned_at)
    }

    /// Whether it holds a capability of this name.
    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities.iter().any(|c| c.name == name)
    }
}
#[cfg(test)]
pub(crate) mod tests;
