//! Why the domain refused something. Every refusal names its rule (`rule()`), the input
//! field when one was wrong (`field()`), and a category (`kind()`) the wire maps to an
//! error code. A refusal never changes state: decisions are pure.

use std::fmt;

use crate::agent::{AgentStatus, Role};
use crate::id::{AgentId, MessageId, MissionId, ReservationId};
use crate::mission::MissionStatus;

/// The category of a refusal.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum RejectionKind {
    /// The input is malformed or breaks a rule about its own shape.
    Invalid,
    /// Something it names does not exist.
    NotFound,
    /// The current state does not allow it.
    Conflict,
    /// The authority matrix does not allow it.
    Forbidden,
    /// A token budget is short.
    BudgetExceeded,
}

/// A refused command.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// An id is not 1-64 of `A-Z a-z 0-9 - _`.
    #[error("{field}: {value:?} is not a valid id (1-64 of A-Z a-z 0-9 - _)")]
    InvalidId {
        /// The input field.
        field: String,
        /// What was given.
        value: String,
    },
    /// An id is reserved.
    #[error("agent_id: {value:?} is reserved for the operator")]
    ReservedId {
        /// What was given.
        value: String,
    },
    /// An input field breaks a rule.
    #[error("{field}: {reason}")]
    InvalidField {
        /// The input field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A quality score or gate outside [0, 1].
    #[error("{field}: {value} is outside [0, 1]")]
    QualityOutOfRange {
        /// The input field.
        field: String,
        /// What was given.
        value: String,
    },
    /// No such agent.
    #[error("agent {id} not found")]
    UnknownAgent {
        /// The id.
        id: AgentId,
    },
    /// No scaling policy for this owner and role.
    #[error("agent {owner} has no scaling policy for role {role}")]
    UnknownScalingPolicy {
        /// The owner.
        owner: AgentId,
        /// The role.
        role: Role,
    },
    /// No such mission.
    #[error("mission {id} not found")]
    UnknownMission {
        /// The id.
        id: MissionId,
    },
    /// No such message.
    #[error("message {id} not found (unknown, or archived)")]
    UnknownMessage {
        /// The id.
        id: MessageId,
    },
    /// No such reservation.
    #[error("reservation {id} not found")]
    UnknownReservation {
        /// The id.
        id: ReservationId,
    },
    /// No such dependency.
    #[error("mission {id} does not depend on {on}")]
    UnknownDependency {
        /// The dependent.
        id: MissionId,
        /// The missing dependency.
        on: MissionId,
    },
    /// The agent id is taken.
    #[error("agent {id} already exists")]
    AgentExists {
        /// The id.
        id: AgentId,
    },
    /// The mission id is taken.
    #[error("mission {id} already exists")]
    MissionExists {
        /// The id.
        id: MissionId,
    },
    /// The reservation id is taken by a reservation of another amount or mission (a
    /// retry of the same reserve is answered as the first time).
    #[error(
        "reservation {id} already holds {held} tokens; {requested} under the same id is another reservation: use a new id"
    )]
    ReservationConflict {
        /// The id.
        id: ReservationId,
        /// What it holds.
        held: u64,
        /// What this request asked for.
        requested: u64,
    },
    /// The dependency is already there.
    #[error("mission {id} already depends on {on}")]
    DependencyExists {
        /// The dependent.
        id: MissionId,
        /// The dependency.
        on: MissionId,
    },
    /// The agent has ended.
    #[error("agent {id} is {status}, not live")]
    AgentNotLive {
        /// The agent.
        id: AgentId,
        /// Its status.
        status: AgentStatus,
    },
    /// The agent is paused and gets no new work.
    #[error("agent {id} is paused ({reason}) and gets no new work")]
    AgentPaused {
        /// The agent.
        id: AgentId,
        /// Why it is paused.
        reason: String,
    },
    /// The agent holds a task already.
    #[error("agent {id} is working on {task}; release it first")]
    AgentBusy {
        /// The agent.
        id: AgentId,
        /// Its task.
        task: MissionId,
    },
    /// The agent is not in a status that takes work.
    #[error(
        "agent {id} is {status}; only ACTIVE or IDLE agents take work (an agent becomes ACTIVE with its first heartbeat; a paused one with resume)"
    )]
    AgentNotAvailable {
        /// The agent.
        id: AgentId,
        /// Its status.
        status: AgentStatus,
    },
    /// The agent holds no task.
    #[error("agent {id} holds no task")]
    NoTask {
        /// The agent.
        id: AgentId,
    },
    /// The agent holds another task.
    #[error("agent {id} holds task {held}, not the one named")]
    TaskMismatch {
        /// The agent.
        id: AgentId,
        /// The task it holds.
        held: MissionId,
    },
    /// The agent status change is not in the transition table.
    #[error("agent {id}: {from} -> {to} is not an allowed status change")]
    IllegalAgentTransition {
        /// The agent.
        id: AgentId,
        /// Its status.
        from: AgentStatus,
        /// The status asked for.
        to: AgentStatus,
    },
    /// The mission status change is not in the transition table.
    #[error("mission {id}: {from} -> {to} is not an allowed status change")]
    IllegalMissionTransition {
        /// The mission.
        id: MissionId,
        /// Its status.
        from: MissionStatus,
        /// The status asked for.
        to: MissionStatus,
    },
    /// Dependencies change only before a mission starts.
    #[error("mission {id} is {status}; dependencies change only while PENDING or READY")]
    MissionStarted {
        /// The mission.
        id: MissionId,
        /// Its status.
        status: MissionStatus,
    },
    /// The global agent limit is reached.
    #[error("the house is full: {live} of max_agents = {max} agents are live")]
    AgentLimitReached {
        /// Live agents.
        live: u32,
        /// The limit.
        max: u32,
    },
    /// The parent manages as many sub-agents as it may.
    #[error("agent {parent} already manages {children} of max_parallel_agents = {max} sub-agents")]
    ParentAtCapacity {
        /// The parent.
        parent: AgentId,
        /// Its live children.
        children: u32,
        /// Its limit.
        max: u32,
    },
    /// The parent may not spawn.
    #[error("agent {parent} may not spawn agents (can_spawn_agents = false)")]
    SpawnNotAllowed {
        /// The parent.
        parent: AgentId,
    },
    /// A spawn would take a spawn tree past a cap of an agent's authority (it or one of
    /// its ancestors): too deep below it, more descendants than it may ever have, or too
    /// many spawns below it within a minute.
    #[error(
        "{cap} of agent {holder} is reached: {current} of {limit}{}",
        if matches!(cap, crate::agent::SpawnCap::MaxSpawnsPerMinute) {
            " in the last minute (try again later)"
        } else {
            ""
        }
    )]
    SpawnCapReached {
        /// The agent whose cap it is (the parent, or an ancestor of it).
        holder: AgentId,
        /// Which cap.
        cap: crate::agent::SpawnCap,
        /// The cap.
        limit: u32,
        /// Where the tree stands: the depth the child would be at below `holder`, the
        /// descendants `holder` already had, or its spawns in the last minute.
        current: u32,
    },
    /// A child asked for more authority than its parent holds.
    #[error("child authority exceeds parent's on {field}: {detail}")]
    AuthorityExceedsParent {
        /// The authority field.
        field: String,
        /// How.
        detail: String,
    },
    /// Only the operator spawns root agents.
    #[error("only the operator may spawn a root agent (one without parent_id)")]
    RootSpawnRequiresOperator,
    /// The observer called an operation that changes something.
    #[error(
        "the observer only reads, and {operation} changes state; call it with the operator's or an agent's credentials"
    )]
    ObserverReadOnly {
        /// The operation called.
        operation: String,
    },
    /// An operation only an agent may call, for itself, was called by the operator, the
    /// observer or a service (`claim_next`: the caller claims work for itself).
    #[error(
        "only an agent may call {operation}: it takes work for the calling agent itself (the operator and services start missions with assign_mission)"
    )]
    AgentOnly {
        /// The operation called.
        operation: &'static str,
    },
    /// The authority matrix forbids it.
    #[error("{actor} may not {action}: {reason}")]
    Forbidden {
        /// Who tried.
        actor: String,
        /// What.
        action: String,
        /// Why not.
        reason: String,
    },
    /// A message or delivery belongs to someone else: answering a message not addressed to
    /// the caller, settling another inbox's delivery. Spelled on the wire as an authority
    /// refusal, but not one of the authority matrix, so no denial is recorded for it.
    #[error("{actor} may not {action}: {reason}")]
    NotYours {
        /// Who tried.
        actor: String,
        /// What (`reply`, `ack`).
        action: &'static str,
        /// Why not.
        reason: String,
    },
    /// A message id is taken by another sender's message.
    #[error("message id {id} is taken; leave message_id empty or choose another")]
    MessageExists {
        /// The id.
        id: MessageId,
    },
    /// A reservation, spawn or transfer is larger than what is left.
    #[error("token budget exceeded: {scope} has {remaining} tokens left, {requested} requested")]
    BudgetExceeded {
        /// The input that asked for too much: `token_budget` (a spawn), `amount` (a
        /// reservation or a reallocation), `used` (a commit).
        field: &'static str,
        /// Whose budget: `agent X`, `mission M` or `the global pool`.
        scope: String,
        /// Tokens left.
        remaining: u64,
        /// Tokens asked for.
        requested: u64,
    },
    /// The agent has no tokens left to start work.
    #[error("token budget exceeded: agent {id} has no tokens left to start work")]
    BudgetExhausted {
        /// The agent.
        id: AgentId,
    },
    /// A mission cannot depend on itself.
    #[error("mission {id} cannot depend on itself")]
    SelfDependency {
        /// The mission.
        id: MissionId,
    },
    /// A hard dependency on a mission that already failed or was cancelled.
    #[error("mission {id} is {status}; a hard dependency on it could never be met")]
    DependencyFailed {
        /// The dependency.
        id: MissionId,
        /// Its status.
        status: MissionStatus,
    },
    /// The dependency would close a cycle.
    #[error("dependency cycle: {}", CyclePath(path))]
    DependencyCycle {
        /// The cycle, each mission depending on the next: `[D, X, ..., D]`.
        path: Vec<MissionId>,
    },
    /// The mode's limit on concurrently active groups is reached.
    #[error(
        "mission group {group} cannot start: {active} groups are active, max_parallel_groups = {max}"
    )]
    GroupLimitReached {
        /// The mission's group.
        group: u32,
        /// Groups with ACTIVE missions.
        active: u32,
        /// The limit.
        max: u32,
    },
    /// No such delivery (or not of this inbox's).
    #[error("no delivery {id:?}; take the delivery_id from a consumed message")]
    UnknownDelivery {
        /// The id given.
        id: String,
    },
    /// The task is not held by the agent handing it over.
    #[error("mission {mission} is not held by {agent}{}", holder.as_ref().map(|h| format!(" (it is with {h})")).unwrap_or_default())]
    NotTaskHolder {
        /// The mission.
        mission: MissionId,
        /// Who tried to hand it over.
        agent: AgentId,
        /// Who holds it, if anyone.
        holder: Option<AgentId>,
    },
    /// A decision answers only a question.
    #[error("message {id} is not a QUESTION; only questions take decisions")]
    NotAQuestion {
        /// The message.
        id: MessageId,
    },
    /// The question was decided and the caller may not override.
    #[error(
        "question {id} was already decided by {by} ({choice:?}); only an agent with can_override_decisions may decide again"
    )]
    AlreadyDecided {
        /// The question.
        id: MessageId,
        /// Who decided.
        by: String,
        /// What.
        choice: String,
    },
}

struct CyclePath<'a>(&'a [MissionId]);

impl fmt::Display for CyclePath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, id) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" -> ")?;
            }
            write!(f, "{id}")?;
        }
        f.write_str(" (each depends on the next)")
    }
}

/// A refusal one service follows up when another service's reply carries it, read back
/// from the reply's rule name: spelled here, beside [`Rejection::rule`], so no service
/// compares a rule's spelling itself.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FollowedRule {
    /// [`Rejection::NotTaskHolder`]: a handoff of a mission the sender does not hold (the
    /// bus escalates it as a claim conflict).
    NotTaskHolder,
}

impl FollowedRule {
    /// The followed refusal a reply's `rule` names, if it is one.
    pub fn of(rule: &str) -> Option<Self> {
        match rule {
            "not_task_holder" => Some(Self::NotTaskHolder),
            _ => None,
        }
    }
}

impl Rejection {
    /// The record an authority refusal leaves in the audit log, the same from every
    /// service (`denial` records): who tried what on whom, why not, when. `None` for a
    /// refusal that is not about authority.
    pub fn denial(
        &self,
        by: &crate::Principal,
        target: Option<crate::AgentId>,
        at: crate::Timestamp,
    ) -> Option<crate::agent::Event> {
        use crate::agent::{Action, Event};
        let (action, reason) = match self {
            Rejection::Forbidden { action, reason, .. } => (action.clone(), reason.clone()),
            Rejection::SpawnNotAllowed { parent } => (
                Action::SpawnAgent.as_str().into(),
                format!("{parent} has can_spawn_agents = false"),
            ),
            Rejection::AuthorityExceedsParent { field, detail } => (
                Action::SpawnAgent.as_str().into(),
                format!("child authority exceeds parent on {field}: {detail}"),
            ),
            Rejection::SpawnCapReached { .. } => {
                (Action::SpawnAgent.as_str().into(), self.to_string())
            }
            _ => return None,
        };
        Some(Event::AuthorityDenied {
            by: by.clone(),
            action,
            target,
            reason,
            at,
        })
    }

    /// An [`InvalidField`](Rejection::InvalidField) refusal.
    pub fn invalid(field: &str, reason: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    /// The category.
    pub fn kind(&self) -> RejectionKind {
        use Rejection::*;
        match self {
            InvalidId { .. }
            | ReservedId { .. }
            | InvalidField { .. }
            | QualityOutOfRange { .. }
            | SelfDependency { .. }
            | DependencyCycle { .. }
            | NotAQuestion { .. } => RejectionKind::Invalid,
            UnknownAgent { .. }
            | UnknownMission { .. }
            | UnknownMessage { .. }
            | UnknownReservation { .. }
            | UnknownDependency { .. }
            | UnknownDelivery { .. }
            | UnknownScalingPolicy { .. } => RejectionKind::NotFound,
            Forbidden { .. }
            | NotYours { .. }
            | SpawnNotAllowed { .. }
            | SpawnCapReached { .. }
            | AuthorityExceedsParent { .. }
            | RootSpawnRequiresOperator
            | ObserverReadOnly { .. }
            | AgentOnly { .. } => RejectionKind::Forbidden,
            BudgetExceeded { .. } | BudgetExhausted { .. } => RejectionKind::BudgetExceeded,
            AgentExists { .. }
            | MissionExists { .. }
            | ReservationConflict { .. }
            | DependencyExists { .. }
            | AgentNotLive { .. }
            | AgentPaused { .. }
            | AgentBusy { .. }
            | AgentNotAvailable { .. }
            | NoTask { .. }
            | TaskMismatch { .. }
            | IllegalAgentTransition { .. }
            | IllegalMissionTransition { .. }
            | MissionStarted { .. }
            | AgentLimitReached { .. }
            | ParentAtCapacity { .. }
            | DependencyFailed { .. }
            | GroupLimitReached { .. }
            | AlreadyDecided { .. }
            | MessageExists { .. }
            | NotTaskHolder { .. } => RejectionKind::Conflict,
        }
    }

    /// The rule broken, as a stable snake_case name callers can match on.
    pub fn rule(&self) -> &'static str {
        use Rejection::*;
        match self {
            InvalidId { .. } => "invalid_id",
            ReservedId { .. } => "reserved_id",
            InvalidField { .. } => "invalid_field",
            QualityOutOfRange { .. } => "quality_out_of_range",
            UnknownAgent { .. } => "unknown_agent",
            UnknownMission { .. } => "unknown_mission",
            UnknownMessage { .. } => "unknown_message",
            UnknownReservation { .. } => "unknown_reservation",
            UnknownDependency { .. } => "unknown_dependency",
            AgentExists { .. } => "agent_exists",
            MissionExists { .. } => "mission_exists",
            ReservationConflict { .. } => "reservation_conflict",
            DependencyExists { .. } => "dependency_exists",
            AgentNotLive { .. } => "agent_not_live",
            AgentPaused { .. } => "agent_paused",
            AgentBusy { .. } => "agent_busy",
            AgentNotAvailable { .. } => "agent_not_available",
            NoTask { .. } => "no_task",
            TaskMismatch { .. } => "task_mismatch",
            IllegalAgentTransition { .. } => "illegal_agent_transition",
            IllegalMissionTransition { .. } => "illegal_mission_transition",
            MissionStarted { .. } => "mission_started",
            AgentLimitReached { .. } => "agent_limit_reached",
            ParentAtCapacity { .. } => "parent_at_capacity",
            SpawnNotAllowed { .. } => "spawn_not_allowed",
            SpawnCapReached { cap, .. } => cap.rule(),
            AuthorityExceedsParent { .. } => "authority_exceeds_parent",
            RootSpawnRequiresOperator => "root_spawn_requires_operator",
            ObserverReadOnly { .. } => "observer_read_only",
            AgentOnly { .. } => "agent_only",
            Forbidden { .. } | NotYours { .. } => "forbidden_action",
            MessageExists { .. } => "message_exists",
            BudgetExceeded { .. } => "budget_exceeded",
            BudgetExhausted { .. } => "budget_exhausted",
            SelfDependency { .. } => "self_dependency",
            DependencyFailed { .. } => "dependency_failed",
            DependencyCycle { .. } => "dependency_cycle",
            GroupLimitReached { .. } => "group_limit_reached",
            NotAQuestion { .. } => "not_a_question",
            AlreadyDecided { .. } => "already_decided",
            UnknownDelivery { .. } => "unknown_delivery",
            UnknownScalingPolicy { .. } => "unknown_scaling_policy",
            NotTaskHolder { .. } => "not_task_holder",
        }
    }

    /// The input field at fault, when one is.
    pub fn field(&self) -> Option<&str> {
        use Rejection::*;
        match self {
            InvalidId { field, .. }
            | InvalidField { field, .. }
            | QualityOutOfRange { field, .. } => Some(field),
            AuthorityExceedsParent { field, .. } => Some(field),
            SpawnCapReached { cap, .. } => Some(cap.field()),
            ReservedId { .. } => Some("agent_id"),
            SelfDependency { .. }
            | DependencyCycle { .. }
            | DependencyExists { .. }
            | DependencyFailed { .. }
            | UnknownDependency { .. } => Some("depends_on"),
            BudgetExceeded { field, .. } => Some(field),
            ReservationConflict { .. } => Some("amount"),
            NotAQuestion { .. } => Some("in_reply_to"),
            UnknownDelivery { .. } => Some("delivery_id"),
            NotTaskHolder { .. } => Some("task_id"),
            MessageExists { .. } => Some("message_id"),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{AgentId, MessageId, MissionId};

    #[test]
    fn a_followed_rule_is_read_back_from_its_rejections_name() {
        let not_holder = Rejection::NotTaskHolder {
            mission: MissionId::new("m").unwrap(),
            agent: AgentId::new("a").unwrap(),
            holder: None,
        };
        assert_eq!(
            FollowedRule::of(not_holder.rule()),
            Some(FollowedRule::NotTaskHolder)
        );
        let other = Rejection::UnknownAgent {
            id: AgentId::new("a").unwrap(),
        };
        assert_eq!(FollowedRule::of(other.rule()), None);
    }

    #[test]
    fn a_cycle_reads_as_a_chain() {
        let path = ["a", "b", "a"].map(|s| MissionId::new(s).unwrap()).to_vec();
        let e = Rejection::DependencyCycle { path };
        assert_eq!(
            e.to_string(),
            "dependency cycle: a -> b -> a (each depends on the next)"
        );
    }

    #[test]
    fn refusals_name_the_field_at_fault() {
        let m = || MissionId::new("m").unwrap();
        let cases: Vec<(Rejection, Option<&str>)> = vec![
            (
                Rejection::ReservedId {
                    value: "operator".into(),
                },
                Some("agent_id"),
            ),
            (Rejection::SelfDependency { id: m() }, Some("depends_on")),
            (
                Rejection::ReservationConflict {
                    id: crate::ReservationId::new("r").unwrap(),
                    held: 1,
                    requested: 2,
                },
                Some("amount"),
            ),
            (
                Rejection::DependencyCycle { path: vec![m()] },
                Some("depends_on"),
            ),
            (
                Rejection::BudgetExceeded {
                    field: "token_budget",
                    scope: "x".into(),
                    remaining: 0,
                    requested: 1,
                },
                Some("token_budget"),
            ),
            (
                Rejection::NotAQuestion {
                    id: MessageId::new("q").unwrap(),
                },
                Some("in_reply_to"),
            ),
            (
                Rejection::NotTaskHolder {
                    mission: m(),
                    agent: AgentId::new("a").unwrap(),
                    holder: None,
                },
                Some("task_id"),
            ),
            (
                Rejection::UnknownAgent {
                    id: AgentId::new("a").unwrap(),
                },
                None,
            ),
        ];
        for (r, field) in cases {
            assert_eq!(r.field(), field, "{r}");
        }
    }
}
