//! `guild-bus`: the consultation bus, durable inboxes, decisions and the audit log.

use guild_domain::message::{
    DecisionRecord, MessageType, Priority, QuestionState, Recipient, RulingKind,
};
pub use guild_domain::message::{Delivery, MessageStats, Percentiles};
use guild_domain::{AgentId, MessageId, MissionId, Principal, Timestamp};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Empty;
use crate::audit::{AuditKind, AuditRecord, LoggedDecision, VerifyReport};

/// Agent A to agent B, a specific task (the seed's `bus.request`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// The addressee.
    pub to: AgentId,
    /// A one-line subject.
    pub subject: String,
    /// Free-form JSON.
    #[serde(default)]
    pub payload: serde_json::Value,
    /// Default NORMAL.
    #[serde(default)]
    pub priority: Option<Priority>,
    /// The task (mission) concerned.
    #[serde(default)]
    pub task_id: Option<MissionId>,
    /// Your id for the message; a retry with the same id is delivered once.
    #[serde(default)]
    pub message_id: Option<MessageId>,
}

impl SendRequest {
    /// A REQUEST to `to` at NORMAL priority, with no task or id of the caller's (the seed's
    /// `request(from_agent, to_agent, subject, payload)`); set the other fields as needed.
    pub fn new(to: &AgentId, subject: impl Into<String>, payload: serde_json::Value) -> Self {
        Self {
            to: to.clone(),
            subject: subject.into(),
            payload,
            priority: None,
            task_id: None,
            message_id: None,
        }
    }
}

/// A question for a decider (the seed's `bus.ask_question`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AskQuestion {
    /// Who should answer; by default the asker's nearest orchestrator, else the operator.
    #[serde(default)]
    pub to: Option<Principal>,
    /// A one-line subject.
    pub subject: String,
    /// Free-form JSON (the seed's reason, figures, options).
    #[serde(default)]
    pub payload: serde_json::Value,
    /// It needs a DECISION; undecided, it escalates one level up (the asker's
    /// orchestrator's orchestrator, then the operator) after `decision_deadline_ms`.
    #[serde(default)]
    pub requires_decision: bool,
    /// With `requires_decision`: how long each decider has before the question escalates,
    /// 1,000 (1 s) to 604,800,000 (7 days). Default: bus-svc's `--decision-deadline`
    /// (`GUILD_DECISION_DEADLINE`), 120 s.
    #[serde(default)]
    pub decision_deadline_ms: Option<u64>,
    /// Default HIGH.
    #[serde(default)]
    pub priority: Option<Priority>,
    /// The task (mission) concerned.
    #[serde(default)]
    pub task_id: Option<MissionId>,
    /// Your id for the message.
    #[serde(default)]
    pub message_id: Option<MessageId>,
}

impl AskQuestion {
    /// A QUESTION to the caller's nearest orchestrator (or the operator) at the default
    /// deadline (the seed's `ask_question(from_agent, subject, payload, requires_decision)`);
    /// set the other fields as needed.
    pub fn new(
        subject: impl Into<String>,
        payload: serde_json::Value,
        requires_decision: bool,
    ) -> Self {
        Self {
            to: None,
            subject: subject.into(),
            payload,
            requires_decision,
            decision_deadline_ms: None,
            priority: None,
            task_id: None,
            message_id: None,
        }
    }
}

/// To every live agent (the seed's `bus.alert`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RaiseAlert {
    /// A one-line subject.
    pub subject: String,
    /// Free-form JSON.
    #[serde(default)]
    pub payload: serde_json::Value,
    /// CRITICAL when set, else HIGH.
    #[serde(default)]
    pub is_critical: bool,
    /// Your id for the message.
    #[serde(default)]
    pub message_id: Option<MessageId>,
}

/// A task transfer (the seed's `bus.handoff`): the mission's assignment moves to `to`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Handoff {
    /// The receiver.
    pub to: AgentId,
    /// The task (mission) handed over; the sender must hold it.
    pub task_id: MissionId,
    /// What the receiver needs to know.
    #[serde(default)]
    pub context: serde_json::Value,
    /// A one-line subject; default `Handoff of <task>`.
    #[serde(default)]
    pub subject: Option<String>,
    /// Your id for the message.
    #[serde(default)]
    pub message_id: Option<MessageId>,
}

/// An answer to any message (the seed's `bus.reply`); with `is_decision`, a DECISION on a
/// question whose payload carries `decision` (or `choice`) and `reason`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    /// The message answered.
    pub to_message_id: MessageId,
    /// Free-form JSON.
    #[serde(default)]
    pub payload: serde_json::Value,
    /// This reply decides a question: its addressee, anyone it was escalated to, or the
    /// operator (or an agent with `can_override_decisions`) may decide it, and the last two
    /// may also override a decision already made (recorded as `decision_override`).
    #[serde(default)]
    pub is_decision: bool,
    /// A one-line subject; default `Re: <original subject>`.
    #[serde(default)]
    pub subject: Option<String>,
    /// Default NORMAL (HIGH for decisions).
    #[serde(default)]
    pub priority: Option<Priority>,
    /// Your id for the message.
    #[serde(default)]
    pub message_id: Option<MessageId>,
}

/// Records a decision on a question (the seed's `bus.record_decision`); the approver is the
/// principal in the subject.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordDecision {
    /// The question.
    pub message_id: MessageId,
    /// The choice.
    pub choice: String,
    /// Why.
    #[serde(default)]
    pub rationale: Option<String>,
    /// Expected impact.
    #[serde(default)]
    pub impact: serde_json::Value,
}

/// What a decision call did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DecisionOutcome {
    /// Decided, completed, unchanged, or overridden.
    pub ruling: RulingKind,
    /// The decision in force.
    pub decision: DecisionRecord,
    /// The audit record written for this call (none when unchanged).
    #[serde(default)]
    pub audit_seq: Option<u64>,
}

/// The bus accepted a message: it is stored and will be delivered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Receipt {
    /// The message id.
    pub message_id: MessageId,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: MessageType,
    /// Its priority.
    pub priority: Priority,
    /// Its addressee as routed.
    pub to: Recipient,
    /// The inboxes it went to.
    pub delivered_to: Vec<Recipient>,
    /// When the bus accepted it.
    pub created_at: Timestamp,
    /// The same message id was sent before: nothing new was stored.
    #[serde(default)]
    pub duplicate: bool,
    /// For a reply with `is_decision`: the decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionOutcome>,
}

/// Takes the next message from the caller's inbox, waiting up to `timeout_ms`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Consume {
    /// How long to wait for a message (at most 30,000; default 0: do not wait).
    #[serde(default)]
    pub timeout_ms: u64,
    /// Only messages of these types (every type when empty); the others stay queued.
    #[serde(default)]
    pub types: Vec<MessageType>,
}

/// The next message, or none when the timeout passed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Consumed {
    /// The message, if one came.
    pub delivery: Option<Delivery>,
}

/// Acknowledges a delivery: it is done and will not come again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    /// From the delivery.
    pub delivery_id: String,
}

/// Gives a delivery back: it comes again after `delay_ms`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Nak {
    /// From the delivery.
    pub delivery_id: String,
    /// Wait this long before delivering it again (default 0).
    #[serde(default)]
    pub delay_ms: u64,
}

/// Which decisions: by agent (asker or approver), mission, and time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionQuery {
    /// Asked or decided by this agent (or the operator).
    #[serde(default)]
    pub agent: Option<Principal>,
    /// About this mission.
    #[serde(default)]
    pub mission_id: Option<MissionId>,
    /// Decided at or after.
    #[serde(default)]
    pub since: Option<Timestamp>,
    /// Decided before.
    #[serde(default)]
    pub until: Option<Timestamp>,
    /// At most this many, newest last (default 1000).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Decisions from the audit log, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DecisionList {
    /// The decisions.
    pub decisions: Vec<LoggedDecision>,
}

/// The decision log as Markdown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MarkdownExport {
    /// The document (a `decisions.md`).
    pub markdown: String,
    /// Decisions in it.
    pub decisions: u32,
}

/// One question, by its id (or one of its escalations' ids).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuestionRef {
    /// The QUESTION's message id (from `ask_question`'s receipt).
    pub question_id: MessageId,
}

/// Which questions: the caller's own and its subtree's (every one for the operator and the
/// observer), in the bus's working set (settled ones leave it after `--retention`; their
/// decisions stay in the audit log).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuestionQuery {
    /// Only questions that need a decision and have none yet.
    #[serde(default)]
    pub open_only: bool,
    /// At most this many, newest last (default 1000).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Questions, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct QuestionList {
    /// Each with its decision, overrides and escalations.
    pub questions: Vec<QuestionState>,
}

/// Which audit records: by kind, subject and time. An agent gets those about itself and
/// its subtree (the agent it names, acts or asks); the operator and the observer every one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only these kinds (every kind when empty).
    #[serde(default)]
    pub kinds: Vec<AuditKind>,
    /// Only records about this agent, mission or question (the record's `about`).
    #[serde(default)]
    pub about: Option<String>,
    /// At or after.
    #[serde(default)]
    pub since: Option<Timestamp>,
    /// Before.
    #[serde(default)]
    pub until: Option<Timestamp>,
    /// At most this many, newest last (default 1000).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Audit records as stored (hash-chained, signed), oldest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AuditRecords {
    /// The records.
    pub records: Vec<AuditRecord>,
}

/// The operations, one marker type each (`op::Spawn` and so on).
pub mod op {
    use crate::api::operations;

    operations!(Bus {
        /// Sends a REQUEST to an agent (the seed's `request`).
        Request = request: super::SendRequest => super::Receipt;
        /// Asks a QUESTION of its addressee or the asker's orchestrator (the seed's `ask_question`).
        AskQuestion = ask_question: super::AskQuestion => super::Receipt;
        /// Raises an ALERT to every live agent (the seed's `alert`).
        Alert = alert: super::RaiseAlert => super::Receipt;
        /// Hands a task to another agent; the mission's assignment moves with it (the seed's `handoff`).
        Handoff = handoff: super::Handoff => super::Receipt;
        /// Answers a message; with `is_decision`, decides a question (the seed's `reply`).
        Reply = reply: super::Reply => super::Receipt;
        /// Records a decision on a question (the seed's `record_decision`).
        RecordDecision = record_decision: super::RecordDecision => super::DecisionOutcome;
        /// The next message from the caller's inbox, highest priority first (the seed's `consume`).
        Consume = consume: super::Consume => super::Consumed;
        /// Acknowledges a delivery.
        Ack = ack: super::Ack => super::Empty;
        /// Gives a delivery back for redelivery.
        Nak = nak: super::Nak => super::Empty;
        /// Message counts, queue sizes, decisions, decision time (the seed's `get_message_stats`).
        GetMessageStats = get_message_stats, read: super::Empty => super::MessageStats;
        /// Decisions by agent, mission and time, from the audit log: for an agent, those concerning itself or its subtree (the operator and the observer read all).
        DecisionHistory = decision_history, read: super::DecisionQuery => super::DecisionList;
        /// Re-reads the audit log and checks its hash chain for gaps and altered records.
        VerifyAudit = verify_audit, read: super::Empty => super::VerifyReport;
        /// The decision log as Markdown (the seed's `decisions.md`), of the decisions the caller may read.
        ExportDecisions = export_decisions, read: super::DecisionQuery => super::MarkdownExport;
        /// A question's state: the question, its decision, overrides and escalations (for its asker, its deciders, their orchestrators, the operator and the observer).
        GetQuestion = get_question, read: super::QuestionRef => super::QuestionState;
        /// The questions the caller may read, with their decisions and escalations.
        ListQuestions = list_questions, read: super::QuestionQuery => super::QuestionList;
        /// Audit records of every kind (spawns, terminations, denials, decisions, ...) the caller may read, from the audit log.
        AuditRecords = audit_records, read: super::AuditQuery => super::AuditRecords;
    });
}

pub use op::{Handler, OPS, Routes};
