//! What can be asked of the spawner.

use serde::{Deserialize, Serialize};

use super::{AgentStatus, Authority, Capability, ContextWindow, Role};
use crate::id::{AgentId, MissionId, ReservationId};
use crate::phase::Phase;
use crate::time::Timestamp;

/// A request to spawn an agent (the seed's `spawner.spawn(...)`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SpawnRequest {
    /// The new agent's id.
    pub id: AgentId,
    /// Its role.
    pub role: Role,
    /// What it can do.
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    /// The spawning agent; `None` spawns a root agent (operator only).
    #[serde(default)]
    pub parent_id: Option<AgentId>,
    /// Tokens carved from the parent (or the global pool for a root).
    pub token_budget: u64,
    /// Its authority; by default its role's default, clamped to the parent's.
    #[serde(default)]
    pub authority: Option<Authority>,
    /// The public nkey its credentials are to be minted for (`U...`). Generate the key
    /// pair yourself and send only the public key, and no secret crosses the wire: the
    /// reply carries the JWT alone. Without one, Guild makes the key pair and the reply
    /// carries a whole `.creds` bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<super::PublicKey>,
}

impl SpawnRequest {
    /// A root agent of `role` with `token_budget` tokens, its role's default authority and
    /// no capabilities; refine with the builder methods.
    pub fn new(id: AgentId, role: Role, token_budget: u64) -> Self {
        Self {
            id,
            role,
            capabilities: Vec::new(),
            parent_id: None,
            token_budget,
            authority: None,
            public_key: None,
        }
    }

    /// Spawned under `parent`.
    pub fn parent(mut self, parent: AgentId) -> Self {
        self.parent_id = Some(parent);
        self
    }

    /// With a capability.
    pub fn capability(mut self, capability: Capability) -> Self {
        self.capabilities.push(capability);
        self
    }

    /// With an explicit authority (checked against the parent's).
    pub fn authority(mut self, authority: Authority) -> Self {
        self.authority = Some(authority);
        self
    }

    /// Credentials minted for this public key (see [`SpawnRequest::public_key`]).
    pub fn public_key(mut self, key: super::PublicKey) -> Self {
        self.public_key = Some(key);
        self
    }
}

/// Everything the spawner can be asked to change. Reads (get, list, find, authorize, stats)
/// are methods on [`Registry`](super::Registry) instead.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Spawn an agent.
    Spawn(SpawnRequest),
    /// Give an available agent a task (it becomes WORKING). `phase` is checked against the
    /// agent's `scoped_to_phases` when given.
    AllocateTask {
        /// The agent.
        agent: AgentId,
        /// The task (mission).
        task: MissionId,
        /// The task's phase.
        phase: Option<Phase>,
    },
    /// Take the task back (WORKING becomes ACTIVE). With `task`, only if it is that one.
    ReleaseTask {
        /// The agent.
        agent: AgentId,
        /// The task expected.
        task: Option<MissionId>,
        /// Only the allocation made then (its `assigned_at`): whoever undoes an allocation
        /// of its own must not release a later one of the same agent and task.
        allocated_at: Option<Timestamp>,
        /// Why.
        reason: String,
    },
    /// Move along the lifecycle: ACTIVE, IDLE or BLOCKED (with a reason).
    SetStatus {
        /// The agent.
        agent: AgentId,
        /// The new status.
        status: AgentStatus,
        /// Why (required for BLOCKED).
        reason: Option<String>,
    },
    /// Pause an agent (BLOCKED with a reason), or its whole subtree.
    Pause {
        /// The agent.
        agent: AgentId,
        /// Why.
        reason: String,
        /// Its descendants too.
        subtree: bool,
    },
    /// Resume a paused agent, or its whole subtree.
    Resume {
        /// The agent.
        agent: AgentId,
        /// Its descendants too.
        subtree: bool,
    },
    /// End an agent (COMPLETED, or FAILED when `failed`); unused tokens go up.
    Terminate {
        /// The agent.
        agent: AgentId,
        /// Its live descendants too (deepest first).
        subtree: bool,
        /// End as FAILED instead of COMPLETED.
        failed: bool,
        /// Why.
        reason: Option<String>,
    },
    /// A sign of life, with the context-window figures when the agent has them.
    Heartbeat {
        /// The agent.
        agent: AgentId,
        /// Its context window.
        context: Option<ContextWindow>,
    },
    /// Set tokens aside before work.
    Reserve {
        /// The agent.
        agent: AgentId,
        /// The caller's id for the reservation.
        reservation: ReservationId,
        /// Tokens.
        amount: u64,
        /// The mission also charged.
        mission: Option<MissionId>,
        /// The mission's budget, needed the first time a mission is charged.
        mission_budget: Option<u64>,
    },
    /// Record what the work used; the rest of the reservation is released.
    Commit {
        /// The agent.
        agent: AgentId,
        /// The reservation.
        reservation: ReservationId,
        /// Tokens actually used (may exceed the reservation while the budget covers it),
        /// in all or split into input and output.
        used: super::Usage,
    },
    /// Drop a reservation unused.
    Release {
        /// The agent.
        agent: AgentId,
        /// The reservation.
        reservation: ReservationId,
    },
    /// Move tokens between two agents of the caller's subtree (orchestrators only).
    Reallocate {
        /// Giver.
        from: AgentId,
        /// Receiver.
        to: AgentId,
        /// Tokens.
        amount: u64,
    },
    /// Fail every live agent not heard from within `window_ms`, or, before its first
    /// heartbeat, within `first_within_ms` of its spawn (the liveness sweep).
    ExpireHeartbeats {
        /// The heartbeat window.
        window_ms: u64,
        /// How long a new agent has for its first heartbeat: its process is started only
        /// once the spawn is answered, which a slow journal (a cluster electing a leader)
        /// may delay past a short window. Never shorter than `window_ms`.
        first_within_ms: u64,
    },
    /// Record a sample of how many agents are working (parallelization efficiency).
    SampleEfficiency,
    /// New credentials for a live agent, for `public_key`: the previous ones are revoked
    /// (a lost spawn reply or a leaked credential is repaired). Only its parent or the
    /// operator may ask.
    IssueCredentials {
        /// The agent.
        agent: AgentId,
        /// The new key.
        public_key: super::PublicKey,
    },
    /// Set (or replace) the scaling policy of an owner for a role: the operator, or an
    /// orchestrator that is the owner or above it. Replacing keeps the members and the
    /// cool-down running.
    SetScalingPolicy(super::ScalingPolicy),
    /// Drop an owner's scaling policy for a role; its members stay until terminated.
    RemoveScalingPolicy {
        /// The owner.
        owner: AgentId,
        /// The role.
        role: Role,
    },
    /// Apply an owner's policy for a role to the load seen: `ready` READY missions of its
    /// role (and phase) that no agent was named for ([`Step`](super::Step)). Guild's own
    /// (a service, or the operator): spawner-svc sends it as it follows the missions.
    Autoscale {
        /// The owner.
        owner: AgentId,
        /// The role.
        role: Role,
        /// The load.
        ready: u32,
        /// Agents a READY mission is meant for (`Board::awaited`): a member among them has
        /// work waiting and is not scaled down, whatever its task.
        awaited: Vec<AgentId>,
    },
}

/// A filter over agents: `list` uses it as given; `find_available_agents` adds "available".
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AgentQuery {
    /// Only this role.
    #[serde(default)]
    pub role: Option<Role>,
    /// Only agents holding every one of these capability names.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Only this status.
    #[serde(default)]
    pub status: Option<AgentStatus>,
    /// Only children of this agent.
    #[serde(default)]
    pub parent_id: Option<AgentId>,
    /// Include COMPLETED and FAILED agents (list only; off by default).
    #[serde(default)]
    pub include_terminated: bool,
}
