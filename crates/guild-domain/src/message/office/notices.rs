//! The messages Guild composes itself: scope questions, conflict questions, notices of
//! missions left waiting, and alerts.

use crate::agent::Registry;
use crate::id::{AgentId, MessageId, Principal};
use crate::message::{Message, MessageType, Priority, Recipient, Routed};
use crate::time::Timestamp;

/// The `reason` of the question an agent asks its orchestrator when work was refused for
/// its exhausted budget (the seed's scope-reduction example).
pub const SCOPE_REASON: &str = "token_budget_exceeded";

/// Work refused for an agent's budget, which its scope question describes.
#[derive(Clone, Copy, Debug)]
pub enum RefusedWork<'a> {
    /// A message for the agent (bus-svc refused it: the budget is used up).
    Message {
        /// Its sender.
        from: &'a Principal,
        /// The message.
        draft: &'a crate::message::Draft,
    },
    /// A reservation for the agent (spawner-svc refused it: too few tokens left).
    Reservation {
        /// Who asked for it.
        by: &'a Principal,
        /// Its id.
        reservation: &'a crate::id::ReservationId,
        /// Tokens asked for.
        requested: u64,
        /// Tokens left where it fell short.
        remaining: u64,
        /// The mission whose budget fell short, when it was the mission's.
        mission: Option<&'a crate::id::MissionId>,
    },
}

/// A spawn refused by a spawn cap, which the would-be parent's question describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpawnRefused {
    /// The child that was not spawned.
    pub child: AgentId,
    /// The agent whose cap it is (the parent or an ancestor).
    pub holder: AgentId,
    /// Which cap.
    pub cap: crate::agent::SpawnCap,
    /// The cap.
    pub limit: u32,
    /// Where the tree stood.
    pub current: u32,
    /// Who asked for the spawn.
    pub by: Principal,
}

/// The question an agent under which a spawn was refused by a spawn cap asks its
/// orchestrator (or the operator): the cap, where the tree stands, and what can be done.
/// Its `reason` is the cap's rule, so one such question per agent and cap is open at a
/// time. `None` for an agent Guild does not know.
pub fn spawn_cap_question(
    registry: &Registry,
    agent: &AgentId,
    refused: &SpawnRefused,
    id: MessageId,
    now: Timestamp,
) -> Option<Routed> {
    registry.agent(agent)?;
    let payload = serde_json::json!({
        "reason": refused.cap.rule(),
        "cap": refused.cap,
        "holder": refused.holder,
        "limit": refused.limit,
        "current": refused.current,
        "refused": {"operation": "spawn_agent", "child": refused.child, "by": refused.by},
        "options": ["reduce_scope", "reuse_agents", "terminate_idle_agents", "pause"],
    });
    let subject = format!("Spawn cap reached: {}", refused.cap);
    Some(asked_for(registry, agent, subject, payload, None, id, now))
}

/// The `question` field of the question an agent asks when its scaling policy could not
/// add the agents the load called for (its `reason` is the rule that held it: one such
/// question per agent and rule is open at a time).
pub const SCALING_QUESTION: &str = "scaling_blocked";

/// A scale-up held short by a rule, which the policy owner's question describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalingHeld {
    /// The members' role.
    pub role: crate::agent::Role,
    /// The READY missions the policy saw.
    pub ready: u32,
    /// Members it has.
    pub members: u32,
    /// Members it wanted.
    pub wanted: u32,
    /// The rule that refused the next spawn.
    pub rule: String,
    /// The refusal, in words.
    pub reason: String,
}

/// The question the owner of a scaling policy asks its orchestrator (or the operator)
/// when a rule held a scale-up short: which rule, the load, and what can be done. `None`
/// for an agent Guild does not know.
pub fn scaling_question(
    registry: &Registry,
    agent: &AgentId,
    held: &ScalingHeld,
    id: MessageId,
    now: Timestamp,
) -> Option<Routed> {
    registry.agent(agent)?;
    let payload = serde_json::json!({
        "question": SCALING_QUESTION,
        "reason": held.rule,
        "detail": held.reason,
        "role": held.role,
        "ready": held.ready,
        "members": held.members,
        "wanted": held.wanted,
        "options": ["raise_budget", "raise_limits", "lower_max_agents", "accept"],
    });
    let subject = format!(
        "Scaling held: {} at {} of {} agents ({})",
        held.role, held.members, held.wanted, held.rule
    );
    Some(asked_for(registry, agent, subject, payload, None, id, now))
}

/// A HIGH question needing a decision, asked on `agent`'s behalf of its nearest
/// orchestrator (or the operator): the shape of every question a refusal raises.
fn asked_for(
    registry: &Registry,
    agent: &AgentId,
    subject: String,
    payload: serde_json::Value,
    task_id: Option<crate::id::MissionId>,
    id: MessageId,
    now: Timestamp,
) -> Routed {
    let to = registry
        .orchestrator_of(agent)
        .map_or(Recipient::Operator, |o| Recipient::Agent(o.clone()));
    let message = Message {
        id,
        kind: MessageType::Question,
        from: Principal::Agent(agent.clone()),
        to: to.clone(),
        subject,
        payload,
        priority: Priority::High,
        task_id,
        in_reply_to: None,
        requires_decision: true,
        is_critical: false,
        decision_deadline_ms: None,
        created_at: now,
        traceparent: None,
    };
    Routed {
        message,
        recipients: vec![to],
    }
}

/// The question an agent whose budget ran short asks its orchestrator (or the operator)
/// when work for it was refused: the seed's "Scope reduction needed?", with its `reason`,
/// `current_spend`, `budget` and `options`. `None` for an agent Guild does not know.
pub fn scope_question(
    registry: &Registry,
    agent: &AgentId,
    refused: RefusedWork<'_>,
    id: MessageId,
    now: Timestamp,
) -> Option<Routed> {
    let profile = registry.agent(agent)?;
    let (what, task) = match refused {
        RefusedWork::Message { from, draft } => (
            serde_json::json!({
                "type": draft.kind,
                "from": from,
                "subject": draft.subject,
                "task_id": draft.task_id,
            }),
            draft.task_id.clone(),
        ),
        RefusedWork::Reservation {
            by,
            reservation,
            requested,
            remaining,
            mission,
        } => (
            serde_json::json!({
                "operation": "reserve_tokens",
                "by": by,
                "reservation_id": reservation,
                "requested": requested,
                "remaining": remaining,
                "mission_id": mission,
            }),
            mission.cloned(),
        ),
    };
    let payload = serde_json::json!({
        "reason": SCOPE_REASON,
        "current_spend": profile.budget.used,
        "budget": profile.budget.allocated,
        "refused": what,
        "options": ["reallocate_budget", "reduce_scope", "pause"],
    });
    let subject = "Scope reduction needed?".to_owned();
    Some(asked_for(registry, agent, subject, payload, task, id, now))
}

/// A conflict escalated instead of the last writer winning (two claims on one task, a
/// handoff of a task already handed off): a CRITICAL QUESTION, needing a decision, to the
/// nearest orchestrator of `agent` (or the operator), asked on `agent`'s behalf.
pub fn conflict_question(
    registry: &Registry,
    agent: &AgentId,
    subject: String,
    payload: serde_json::Value,
    task: Option<crate::id::MissionId>,
    id: MessageId,
    now: Timestamp,
) -> Routed {
    let to = registry
        .orchestrator_of(agent)
        .map_or(Recipient::Operator, |o| Recipient::Agent(o.clone()));
    Routed {
        message: Message {
            id,
            kind: MessageType::Question,
            from: Principal::Agent(agent.clone()),
            to: to.clone(),
            subject: subject
                .chars()
                .take(crate::message::MAX_SUBJECT_CHARS)
                .collect(),
            payload,
            priority: Priority::Critical,
            task_id: task,
            in_reply_to: None,
            requires_decision: true,
            is_critical: true,
            decision_deadline_ms: None,
            created_at: now,
            traceparent: None,
        },
        recipients: vec![to],
    }
}

/// A mission whose agent was lost waits READY, no agent of that agent's team free to take
/// it over (`allocation::fallback`): the lost agent's nearest orchestrator (or the
/// operator) is asked what to do, a HIGH QUESTION from mission-svc.
pub fn waiting_notice(
    registry: &Registry,
    lost: &AgentId,
    mission: &crate::id::MissionId,
    reason: &str,
    id: MessageId,
    now: Timestamp,
) -> Routed {
    let to = registry
        .orchestrator_of(lost)
        .map_or(Recipient::Operator, |o| Recipient::Agent(o.clone()));
    Routed {
        message: Message {
            id,
            kind: MessageType::Question,
            from: Principal::Service(crate::Service::Mission),
            to: to.clone(),
            subject: format!("Mission {mission} waits for an agent")
                .chars()
                .take(crate::message::MAX_SUBJECT_CHARS)
                .collect(),
            payload: serde_json::json!({
                "reason": reason,
                "mission_id": mission,
                "lost_agent": lost,
                "options": ["assign_mission", "spawn_agent", "cancel_mission"],
            }),
            priority: Priority::High,
            task_id: Some(mission.clone()),
            in_reply_to: None,
            requires_decision: false,
            is_critical: false,
            decision_deadline_ms: None,
            created_at: now,
            traceparent: None,
        },
        recipients: vec![to],
    }
}

/// An ALERT from Guild itself (a mission failed for good) to every live agent.
pub fn system_alert(
    registry: &Registry,
    subject: String,
    payload: serde_json::Value,
    task: Option<crate::id::MissionId>,
    id: MessageId,
    now: Timestamp,
) -> Routed {
    let recipients = registry
        .agents()
        .filter(|a| a.is_live())
        .map(|a| Recipient::Agent(a.id.clone()))
        .collect();
    Routed {
        message: Message {
            id,
            kind: MessageType::Alert,
            from: Principal::Operator,
            to: Recipient::All,
            subject: subject
                .chars()
                .take(crate::message::MAX_SUBJECT_CHARS)
                .collect(),
            payload,
            priority: Priority::Critical,
            task_id: task,
            in_reply_to: None,
            requires_decision: false,
            is_critical: true,
            decision_deadline_ms: None,
            created_at: now,
            traceparent: None,
        },
        recipients,
    }
}

/// A CRITICAL ALERT for the operator alone, from Guild itself (a service that lost
/// state): the operator is who must act.
pub fn operator_alert(
    subject: String,
    payload: serde_json::Value,
    id: MessageId,
    now: Timestamp,
) -> Routed {
    Routed {
        message: Message {
            id,
            kind: MessageType::Alert,
            from: Principal::Operator,
            to: Recipient::Operator,
            subject: subject
                .chars()
                .take(crate::message::MAX_SUBJECT_CHARS)
                .collect(),
            payload,
            priority: Priority::Critical,
            task_id: None,
            in_reply_to: None,
            requires_decision: false,
            is_critical: true,
            decision_deadline_ms: None,
            created_at: now,
            traceparent: None,
        },
        recipients: vec![Recipient::Operator],
    }
}
