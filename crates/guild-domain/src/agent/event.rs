//! What the spawner tells the world. Governance events also go to the audit log.

use serde::{Deserialize, Serialize};

use super::{AgentStatus, BudgetHolder, Role};
use crate::audit::{Audit, AuditData, AuditKind};
use crate::id::{AgentId, MissionId, Principal, ReservationId};
use crate::time::Timestamp;

/// A spawner event. `name()` is its subject token; `agent()` the agent it is about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "SpawnerEvent"))]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// An agent was spawned.
    Spawned {
        /// The new agent.
        agent_id: AgentId,
        /// Its role.
        role: Role,
        /// Its parent.
        parent_id: Option<AgentId>,
        /// Tokens it was given.
        token_budget: u64,
        /// Who spawned it.
        by: Principal,
        /// When.
        at: Timestamp,
    },
    /// An agent's status changed.
    StatusChanged {
        /// The agent.
        agent_id: AgentId,
        /// Before.
        from: AgentStatus,
        /// After.
        to: AgentStatus,
        /// Why, when known.
        reason: Option<String>,
        /// When.
        at: Timestamp,
    },
    /// An agent was paused.
    Paused {
        /// The agent.
        agent_id: AgentId,
        /// Why.
        reason: String,
        /// Who paused it.
        by: Principal,
        /// When.
        at: Timestamp,
    },
    /// A paused agent was resumed.
    Resumed {
        /// The agent.
        agent_id: AgentId,
        /// Who resumed it.
        by: Principal,
        /// When.
        at: Timestamp,
    },
    /// An agent ended (COMPLETED or FAILED).
    Terminated {
        /// The agent.
        agent_id: AgentId,
        /// COMPLETED or FAILED.
        status: AgentStatus,
        /// Unused tokens handed back.
        unused_returned: u64,
        /// Where they went.
        returned_to: BudgetHolder,
        /// Its live children at the time, which keep running (see ARCHITECTURE.md).
        orphans: Vec<AgentId>,
        /// Why.
        reason: Option<String>,
        /// Who ended it (the operator for a missed heartbeat).
        by: Principal,
        /// When.
        at: Timestamp,
    },
    /// An agent took a task.
    TaskAllocated {
        /// The agent.
        agent_id: AgentId,
        /// The task.
        task_id: MissionId,
        /// When.
        at: Timestamp,
    },
    /// An agent's task was taken back (done, reassigned, or the agent ended).
    TaskReleased {
        /// The agent.
        agent_id: AgentId,
        /// The task.
        task_id: MissionId,
        /// Why.
        reason: String,
        /// Whether the agent was lost (FAILED) rather than done: a mission should be retried.
        agent_lost: bool,
        /// When.
        at: Timestamp,
    },
    /// Something was refused for lack of tokens.
    BudgetExceeded {
        /// The agent whose budget (or whose mission's) was short.
        agent_id: Option<AgentId>,
        /// The mission, when its budget was short.
        mission_id: Option<MissionId>,
        /// The reservation refused, when a reserve was (the agent's orchestrator is then
        /// asked for a scope decision).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reservation_id: Option<ReservationId>,
        /// Tokens asked for.
        requested: u64,
        /// Tokens left.
        remaining: u64,
        /// Who asked.
        by: Principal,
        /// When.
        at: Timestamp,
    },
    /// A spawn was refused by a spawn cap (`max_depth`, `max_descendants`,
    /// `max_spawns_per_minute`): the agent that would have been the parent asks its
    /// orchestrator what to do, once per cap while the question is open.
    SpawnCapReached {
        /// The parent the spawn was under.
        agent_id: AgentId,
        /// The child that was not spawned.
        child: AgentId,
        /// The agent whose cap it is (the parent or an ancestor).
        holder: AgentId,
        /// Which cap.
        cap: super::SpawnCap,
        /// The cap.
        limit: u32,
        /// Where the tree stood (see the rejection).
        current: u32,
        /// Who asked for the spawn.
        by: Principal,
        /// When.
        at: Timestamp,
    },
    /// Something was refused by the authority matrix.
    AuthorityDenied {
        /// Who tried.
        by: Principal,
        /// What.
        action: String,
        /// On which agent, when one.
        target: Option<AgentId>,
        /// Why not.
        reason: String,
        /// When.
        at: Timestamp,
    },
    /// Tokens were moved between agents.
    BudgetReallocated {
        /// Who moved them.
        by: Principal,
        /// Giver.
        from: AgentId,
        /// Receiver.
        to: AgentId,
        /// How many.
        amount: u64,
        /// When.
        at: Timestamp,
    },
    /// An agent was given new credentials; the ones before stopped working.
    CredentialsIssued {
        /// The agent.
        agent_id: AgentId,
        /// Who asked (its parent or the operator).
        by: Principal,
        /// When.
        at: Timestamp,
    },
    /// A scaling policy was set or replaced.
    ScalingPolicySet {
        /// The owner.
        agent_id: AgentId,
        /// The policy.
        policy: super::ScalingPolicy,
        /// Who set it.
        by: Principal,
        /// When.
        at: Timestamp,
    },
    /// A scaling policy was dropped.
    ScalingPolicyRemoved {
        /// The owner.
        agent_id: AgentId,
        /// The policy's role.
        role: Role,
        /// Who dropped it.
        by: Principal,
        /// When.
        at: Timestamp,
    },
    /// A policy changed its members: the load it saw and what it did.
    Scaled {
        /// The owner.
        agent_id: AgentId,
        /// The members' role.
        role: Role,
        /// The READY missions it saw.
        ready: u32,
        /// Members before.
        from: u32,
        /// Members after.
        to: u32,
        /// Members spawned.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        spawned: Vec<AgentId>,
        /// Idle members terminated.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        terminated: Vec<AgentId>,
        /// When.
        at: Timestamp,
    },
    /// A policy wanted more members than a rule let it spawn (the owner's authority,
    /// caps or budget, or the mode's limit). Told once per rule until a scale-up goes
    /// through: the owner asks its orchestrator (or the operator) what to do.
    ScalingBlocked {
        /// The owner.
        agent_id: AgentId,
        /// The members' role.
        role: Role,
        /// The READY missions it saw.
        ready: u32,
        /// Members it has.
        members: u32,
        /// Members it wanted.
        wanted: u32,
        /// The rule that refused the next spawn.
        rule: String,
        /// The refusal, in words.
        reason: String,
        /// When.
        at: Timestamp,
    },
    /// Tokens were spent.
    TokensCommitted {
        /// The agent.
        agent_id: AgentId,
        /// The mission charged, when one.
        mission_id: Option<MissionId>,
        /// How many.
        tokens: u64,
        /// Of them, reported as input tokens (0 when the commit gave one number).
        #[serde(default)]
        input_tokens: u64,
        /// Of them, reported as output tokens.
        #[serde(default)]
        output_tokens: u64,
        /// When.
        at: Timestamp,
    },
}

impl Event {
    /// The event's name, used as its subject token.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Spawned { .. } => "spawned",
            Event::StatusChanged { .. } => "status_changed",
            Event::Paused { .. } => "paused",
            Event::Resumed { .. } => "resumed",
            Event::Terminated { .. } => "terminated",
            Event::TaskAllocated { .. } => "task_allocated",
            Event::TaskReleased { .. } => "task_released",
            Event::BudgetExceeded { .. } => "budget_exceeded",
            Event::SpawnCapReached { .. } => "spawn_cap_reached",
            Event::AuthorityDenied { .. } => "authority_denied",
            Event::BudgetReallocated { .. } => "budget_reallocated",
            Event::TokensCommitted { .. } => "tokens_committed",
            Event::CredentialsIssued { .. } => "credentials_issued",
            Event::ScalingPolicySet { .. } => "scaling_policy_set",
            Event::ScalingPolicyRemoved { .. } => "scaling_policy_removed",
            Event::Scaled { .. } => "scaled",
            Event::ScalingBlocked { .. } => "scaling_blocked",
        }
    }

    /// Every event name, for the subject catalogue.
    pub const NAMES: [&'static str; 17] = [
        "spawned",
        "status_changed",
        "paused",
        "resumed",
        "terminated",
        "task_allocated",
        "task_released",
        "budget_exceeded",
        "spawn_cap_reached",
        "authority_denied",
        "budget_reallocated",
        "tokens_committed",
        "credentials_issued",
        "scaling_policy_set",
        "scaling_policy_removed",
        "scaled",
        "scaling_blocked",
    ];

    /// The subject token naming what the event is about: an agent id, or the operator.
    pub fn about(&self) -> &str {
        match self {
            Event::Spawned { agent_id, .. }
            | Event::StatusChanged { agent_id, .. }
            | Event::Paused { agent_id, .. }
            | Event::Resumed { agent_id, .. }
            | Event::Terminated { agent_id, .. }
            | Event::TaskAllocated { agent_id, .. }
            | Event::TaskReleased { agent_id, .. }
            | Event::TokensCommitted { agent_id, .. }
            | Event::CredentialsIssued { agent_id, .. }
            | Event::ScalingPolicySet { agent_id, .. }
            | Event::ScalingPolicyRemoved { agent_id, .. }
            | Event::Scaled { agent_id, .. }
            | Event::ScalingBlocked { agent_id, .. } => agent_id.as_str(),
            Event::BudgetReallocated { from, .. } => from.as_str(),
            Event::BudgetExceeded { agent_id, by, .. } => {
                agent_id.as_ref().map_or(by.token(), AgentId::as_str)
            }
            Event::SpawnCapReached { agent_id, .. } => agent_id.as_str(),
            Event::AuthorityDenied { by, .. } => by.token(),
        }
    }

    /// The kind the audit log keeps the event as, for a governance fact: spawns,
    /// terminations, denials, reallocations, new credentials and scaling.
    pub fn audit_kind(&self) -> Option<AuditKind> {
        match self {
            Event::Spawned { .. } => Some(AuditKind::Spawn),
            Event::Terminated { .. } => Some(AuditKind::Terminate),
            Event::AuthorityDenied { .. } => Some(AuditKind::Denial),
            Event::BudgetReallocated { .. } => Some(AuditKind::Reallocation),
            Event::CredentialsIssued { .. } => Some(AuditKind::Credentials),
            Event::ScalingPolicySet { .. }
            | Event::ScalingPolicyRemoved { .. }
            | Event::Scaled { .. }
            | Event::ScalingBlocked { .. } => Some(AuditKind::Scaling),
            Event::StatusChanged { .. }
            | Event::Paused { .. }
            | Event::Resumed { .. }
            | Event::TaskAllocated { .. }
            | Event::TaskReleased { .. }
            | Event::BudgetExceeded { .. }
            | Event::SpawnCapReached { .. }
            | Event::TokensCommitted { .. } => None,
        }
    }

    /// Whether the event is a governance fact that the audit log keeps.
    pub fn is_governance(&self) -> bool {
        self.audit_kind().is_some()
    }

    /// The audit record of a governance event, `by` having acted: the event itself.
    pub fn audit(&self, by: &Principal) -> Option<Audit> {
        Some(Audit {
            kind: self.audit_kind()?,
            actor: by.clone(),
            about: self.about().to_owned(),
            mission_id: None,
            data: AuditData::Spawner(self.clone()),
        })
    }
}

impl crate::audit::Audited for Event {
    fn audit_by(&self, by: &Principal) -> Option<Audit> {
        self.audit(by)
    }
}
