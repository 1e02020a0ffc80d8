//! `guild-spawner`: agent lifecycle, the authority matrix, token budgets.

use guild_domain::agent::{
    AgentProfile, AgentQuery, AgentStatus, Budget, ContextWindow, PublicKey, Reservation, Role,
    Scaling, ScalingPolicy, SpawnRequest, SpawnerStats,
};
use guild_domain::{AgentId, MissionId, Phase, ReservationId, Timestamp};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Empty;

/// Names one agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentRef {
    /// The agent.
    pub agent_id: AgentId,
}

/// The credentials Guild minted for an agent: handed to whoever spawned it (or asked for
/// new ones), never logged, journaled or published. Save `creds` as the agent's `.creds`
/// file (mode 0600), or, when you sent a public key, put `jwt` beside the seed you kept.
#[derive(Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AgentCredentials {
    /// The user JWT, bound to the agent id: with it the broker lets the agent use its own
    /// subjects only.
    pub jwt: String,
    /// The whole `.creds` text (JWT and seed), when Guild made the key pair; absent when
    /// the request carried the public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creds: Option<String>,
    /// The key the credentials are for.
    pub public_key: PublicKey,
}

impl std::fmt::Debug for AgentCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentCredentials")
            .field("public_key", &self.public_key)
            .field("creds", &self.creds.as_ref().map(|_| "<secret>"))
            .finish_non_exhaustive()
    }
}

/// A spawned agent: its profile, and its credentials when Guild runs with authentication.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Spawned {
    /// The new agent.
    #[serde(flatten)]
    pub agent: AgentProfile,
    /// Its credentials (absent on an insecure Guild).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<AgentCredentials>,
}

impl std::ops::Deref for Spawned {
    type Target = AgentProfile;
    fn deref(&self) -> &AgentProfile {
        &self.agent
    }
}

/// New credentials for a live agent; the ones before stop working at once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueCredentials {
    /// The agent (your child, or any agent for the operator).
    pub agent_id: AgentId,
    /// The public nkey to mint for; without one Guild makes the key pair and the reply
    /// carries the seed.
    #[serde(default)]
    pub public_key: Option<PublicKey>,
}

/// Agents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AgentList {
    /// The agents, by id.
    pub agents: Vec<AgentProfile>,
}

/// Gives an available agent a task (the seed's `allocate_task(agent_id, task_id)`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AllocateTask {
    /// The agent.
    pub agent_id: AgentId,
    /// The task (a mission id).
    pub task_id: MissionId,
    /// The task's phase, checked against the agent's `scoped_to_phases`.
    #[serde(default)]
    pub phase: Option<Phase>,
}

/// Takes an agent's task back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseTask {
    /// The agent.
    pub agent_id: AgentId,
    /// Only if it holds this task.
    #[serde(default)]
    pub task_id: Option<MissionId>,
    /// Only the allocation made at this time (the agent's `assigned_at` when it was
    /// given the task): undoing an allocation of one's own never releases a later one.
    #[serde(default)]
    pub allocated_at: Option<Timestamp>,
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
}

impl ReleaseTask {
    /// Takes back whatever task `agent_id` holds.
    pub fn new(agent_id: &AgentId) -> Self {
        Self {
            agent_id: agent_id.clone(),
            task_id: None,
            allocated_at: None,
            reason: None,
        }
    }
}

/// Moves an agent along its lifecycle: ACTIVE, IDLE, or BLOCKED with a reason.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetStatus {
    /// The agent.
    pub agent_id: AgentId,
    /// ACTIVE, IDLE or BLOCKED.
    pub status: AgentStatus,
    /// Why (required for BLOCKED).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Pauses an agent, or its subtree (BLOCKED with a reason; no new work).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pause {
    /// The agent.
    pub agent_id: AgentId,
    /// Why.
    pub reason: String,
    /// Its descendants too.
    #[serde(default)]
    pub subtree: bool,
}

/// Resumes a paused agent, or its subtree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resume {
    /// The agent.
    pub agent_id: AgentId,
    /// Its descendants too.
    #[serde(default)]
    pub subtree: bool,
}

/// Ends an agent (COMPLETED, or FAILED with `failed`); unused tokens go up the lineage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Terminate {
    /// The agent.
    pub agent_id: AgentId,
    /// Its live descendants too.
    #[serde(default)]
    pub subtree: bool,
    /// End as FAILED.
    #[serde(default)]
    pub failed: bool,
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
}

impl Terminate {
    /// Ends `agent_id` (and its subtree when `subtree`), as done rather than failed.
    pub fn new(agent_id: &AgentId, subtree: bool) -> Self {
        Self {
            agent_id: agent_id.clone(),
            subtree,
            failed: false,
            reason: None,
        }
    }
}

/// The agents an operation changed, as they are now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Changed {
    /// Changed agents.
    pub agents: Vec<AgentProfile>,
}

/// A heartbeat from the agent named in the subject.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// The agent's context-window figures, when it has them.
    #[serde(default)]
    pub context_window: Option<ContextWindow>,
}

/// What the spawner knows of the agent after its heartbeat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HeartbeatAck {
    /// Its status now (BLOCKED means paused: take no new work).
    pub status: AgentStatus,
    /// Why it is BLOCKED, when it is.
    #[serde(default)]
    pub status_reason: Option<String>,
    /// Send the next heartbeat within this many milliseconds.
    pub heartbeat_window_ms: u64,
}

/// May `agent_id` take `action` (in `phase`)?
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Authorize {
    /// The agent.
    pub agent_id: AgentId,
    /// A Guild action (`spawn_agent`, ...) or a tool's own (`deploy_production`).
    pub action: String,
    /// The phase the action is in.
    #[serde(default)]
    pub phase: Option<Phase>,
}

/// The answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Authorization {
    /// Allowed or not.
    pub allowed: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Sets tokens aside before work, charged to the agent and, when named, a mission.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReserveTokens {
    /// The agent.
    pub agent_id: AgentId,
    /// The caller's id for the reservation. A retry with the same id, amount and
    /// mission (its reply lost) is answered as the first time and reserves nothing more;
    /// the same id with another amount or mission is refused (409
    /// `reservation_conflict`, field `amount`).
    pub reservation_id: ReservationId,
    /// Tokens.
    pub amount: u64,
    /// The mission also charged.
    #[serde(default)]
    pub mission_id: Option<MissionId>,
}

/// A reservation made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Reserved {
    /// The reservation.
    pub reservation: Reservation,
    /// The agent's budget after it.
    pub budget: Budget,
}

/// Records what the work used; the rest of the reservation is released.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommitTokens {
    /// The agent.
    pub agent_id: AgentId,
    /// The reservation.
    pub reservation_id: ReservationId,
    /// Tokens used in all. Give it, or `input_tokens` and `output_tokens`, or all three
    /// when `used` is their sum.
    #[serde(default)]
    pub used: Option<u64>,
    /// Input (prompt) tokens, OpenTelemetry's `gen_ai.usage.input_tokens`.
    #[serde(default)]
    pub input_tokens: Option<u64>,
    /// Output (completion) tokens, `gen_ai.usage.output_tokens`.
    #[serde(default)]
    pub output_tokens: Option<u64>,
}

/// Drops a reservation unused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseTokens {
    /// The agent.
    pub agent_id: AgentId,
    /// The reservation.
    pub reservation_id: ReservationId,
}

/// An agent's budget.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BudgetOf {
    /// The agent.
    pub agent_id: AgentId,
    /// Its budget.
    pub budget: Budget,
}

/// Moves tokens between two agents of the caller's subtree (orchestrators only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReallocateBudget {
    /// Giver.
    pub from: AgentId,
    /// Receiver.
    pub to: AgentId,
    /// Tokens.
    pub amount: u64,
}

/// Both budgets after a reallocation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Reallocated {
    /// The giver.
    pub from: BudgetOf,
    /// The receiver.
    pub to: BudgetOf,
}

/// Names one scaling policy: its owner and role.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScalingRef {
    /// The owner.
    pub owner: AgentId,
    /// The role.
    pub role: Role,
}

/// Which scaling policies to list.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScalingQuery {
    /// Only this owner's.
    #[serde(default)]
    pub owner: Option<AgentId>,
}

/// A scaling policy in force and its live members.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScalingState {
    /// The policy and what it has done.
    pub scaling: Scaling,
    /// Its live members.
    pub members: Vec<AgentId>,
}

/// Scaling policies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScalingList {
    /// By owner and role.
    pub policies: Vec<ScalingState>,
}

/// The operations, one marker type each (`op::Spawn` and so on).
pub mod op {
    use crate::api::operations;

    operations!(Spawner {
        /// Spawns an agent: role, capabilities, parent, token budget, authority (the seed's `spawn`).
        Spawn = spawn: super::SpawnRequest => super::Spawned;
        /// One agent's profile.
        Get = get, read: super::AgentRef => super::AgentProfile;
        /// Agents matching a filter (live ones unless `include_terminated`).
        List = list, read: super::AgentQuery => super::AgentList;
        /// Agents that may take work now: ACTIVE or IDLE, holding no task (the seed's `find_available_agents`).
        FindAvailableAgents = find_available_agents, read: super::AgentQuery => super::AgentList;
        /// Gives an available agent a task; it becomes WORKING (the seed's `allocate_task`).
        AllocateTask = allocate_task: super::AllocateTask => super::AgentProfile;
        /// Takes a task back; WORKING becomes ACTIVE.
        ReleaseTask = release_task: super::ReleaseTask => super::AgentProfile;
        /// Moves an agent to ACTIVE, IDLE or BLOCKED.
        SetStatus = set_status: super::SetStatus => super::AgentProfile;
        /// Pauses an agent or its subtree.
        Pause = pause: super::Pause => super::Changed;
        /// Resumes a paused agent or its subtree.
        Resume = resume: super::Resume => super::Changed;
        /// Ends an agent, optionally with its subtree; unused tokens return up the lineage.
        Terminate = terminate: super::Terminate => super::Changed;
        /// A sign of life from the agent in the subject, with its context-window figures.
        Heartbeat = heartbeat: super::Heartbeat => super::HeartbeatAck;
        /// May an agent take an action (forbidden actions, phase scope)?
        Authorize = authorize: super::Authorize => super::Authorization;
        /// Sets tokens aside before work.
        ReserveTokens = reserve_tokens: super::ReserveTokens => super::Reserved;
        /// Records the tokens a unit of work used.
        CommitTokens = commit_tokens: super::CommitTokens => super::BudgetOf;
        /// Drops a reservation unused.
        ReleaseTokens = release_tokens: super::ReleaseTokens => super::BudgetOf;
        /// Moves budget between agents of an orchestrator's subtree.
        ReallocateBudget = reallocate_budget: super::ReallocateBudget => super::Reallocated;
        /// New credentials for an agent (its parent or the operator asks); its old ones are revoked.
        IssueCredentials = issue_credentials: super::IssueCredentials => super::Spawned;
        /// Sets (or replaces) how many agents of a role an owner keeps by load: minimum, maximum, READY missions per agent, cool-down, each new agent's budget, idle time (the seed's auto-scaling).
        SetScalingPolicy = set_scaling_policy: super::ScalingPolicy => super::ScalingState;
        /// Drops a scaling policy; its agents stay until terminated.
        RemoveScalingPolicy = remove_scaling_policy: super::ScalingRef => super::Empty;
        /// Scaling policies in force, with their live agents.
        ListScalingPolicies = list_scaling_policies, read: super::ScalingQuery => super::ScalingList;
        /// Agent counts, capacity, tokens, cost, context use, parallelization efficiency (the seed's `get_stats`).
        GetStats = get_stats, read: super::Empty => super::SpawnerStats;
    });
}

pub use op::{Handler, OPS, Routes};
