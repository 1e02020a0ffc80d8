//! The seed's Consultation Bus, as pure rules: message types and priorities, the envelope,
//! routing, delivery order, and decisions on questions.

mod decision;
mod office;
mod order;
mod route;
mod stats;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use decision::{DecisionInput, DecisionRecord, Escalation, QuestionState, Ruling, RulingKind};
pub use office::{
    Batch, BusEffect, Command, Conflict, Copy, CopyState, DECISION_TIME_SAMPLES, Decided,
    DecisionMessage, Delivery, Escalated, Event, MAX_NAK_DELAY_MS, OfficeConfig, OfficeRecord,
    Post, PostOffice, Posted, RefusedWork, SCALING_QUESTION, SCOPE_REASON, ScalingHeld,
    ScopeRequest, SpawnRefused, Totals, Wait, Waiter, conflict_question, escalation_id,
    operator_alert, reaction_id, ruling_audit_kind, scaling_question, scope_question,
    spawn_cap_question, system_alert, waiting_notice,
};
pub use order::{StarvationPolicy, next_priority};
pub use route::{
    Draft, MAX_DECISION_DEADLINE_MS, MAX_SUBJECT_CHARS, MIN_DECISION_DEADLINE_MS, Routed, address,
};
pub use stats::{MessageStats, Percentiles};

use crate::Rejection;
use crate::id::{AgentId, MessageId, MissionId, OPERATOR_TOKEN, Principal};
use crate::time::Timestamp;

/// The seed's five message types, plus plain replies.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum MessageType {
    /// Agent to agent: a specific task.
    Request,
    /// To a decider (the addressee, the asker's orchestrator, or the operator).
    Question,
    /// To every live agent: an escalation.
    Alert,
    /// Agent to agent: a task transfer.
    Handoff,
    /// The answer to a QUESTION, recorded in the audit log.
    Decision,
    /// A plain answer to any message.
    Reply,
}

impl MessageType {
    /// Every type.
    pub const ALL: [MessageType; 6] = [
        MessageType::Request,
        MessageType::Question,
        MessageType::Alert,
        MessageType::Handoff,
        MessageType::Decision,
        MessageType::Reply,
    ];

    /// The lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            MessageType::Request => "request",
            MessageType::Question => "question",
            MessageType::Alert => "alert",
            MessageType::Handoff => "handoff",
            MessageType::Decision => "decision",
            MessageType::Reply => "reply",
        }
    }

    /// Parses a name in any case.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(text.trim()))
    }

    /// The priority a message of this type gets unless the sender sets one: HIGH for
    /// decisions and handoffs (the seed's "HIGH: decisions, handoffs") and questions,
    /// HIGH for alerts (CRITICAL when critical), NORMAL otherwise.
    pub const fn default_priority(self, critical: bool) -> Priority {
        match self {
            MessageType::Alert if critical => Priority::Critical,
            MessageType::Question
            | MessageType::Handoff
            | MessageType::Decision
            | MessageType::Alert => Priority::High,
            MessageType::Request | MessageType::Reply => Priority::Normal,
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The seed's four priority levels. `Ord` puts CRITICAL highest.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Priority {
    /// Requires immediate action (security, failures).
    Critical,
    /// Important (decisions, handoffs).
    High,
    /// Regular communication.
    Normal,
    /// Informational (updates).
    Low,
}

impl Priority {
    /// Highest first: the order a consumer drains in.
    pub const DESCENDING: [Priority; 4] = [
        Priority::Critical,
        Priority::High,
        Priority::Normal,
        Priority::Low,
    ];

    /// 0 for CRITICAL up to 3 for LOW.
    pub const fn rank(self) -> usize {
        match self {
            Priority::Critical => 0,
            Priority::High => 1,
            Priority::Normal => 2,
            Priority::Low => 3,
        }
    }

    /// The lowercase name: the priority's subject token.
    pub const fn as_str(self) -> &'static str {
        match self {
            Priority::Critical => "critical",
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }

    /// Parses a name in any case.
    pub fn parse(text: &str) -> Option<Self> {
        Self::DESCENDING
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

impl Ord for Priority {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.rank().cmp(&self.rank())
    }
}

impl PartialOrd for Priority {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Priority::Critical => "CRITICAL",
            Priority::High => "HIGH",
            Priority::Normal => "NORMAL",
            Priority::Low => "LOW",
        })
    }
}

/// Where a message goes: one agent, the operator, or every live agent (`"*"`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Recipient {
    /// One agent.
    Agent(AgentId),
    /// The human operator (through the CLI).
    Operator,
    /// Every live agent but the sender.
    All,
}

impl Recipient {
    /// The principal this recipient is, when it is one.
    pub fn principal(&self) -> Option<Principal> {
        match self {
            Recipient::Agent(id) => Some(Principal::Agent(id.clone())),
            Recipient::Operator => Some(Principal::Operator),
            Recipient::All => None,
        }
    }
}

impl TryFrom<Principal> for Recipient {
    type Error = Rejection;

    /// Agents and the operator have inboxes; the observer and services do not.
    fn try_from(p: Principal) -> Result<Self, Rejection> {
        match p {
            Principal::Operator => Ok(Recipient::Operator),
            Principal::Agent(id) => Ok(Recipient::Agent(id)),
            Principal::Observer | Principal::Service(_) => Err(Rejection::invalid(
                "to",
                format!("{p} has no inbox: messages go to agents or the operator"),
            )),
        }
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recipient::Agent(id) => f.write_str(id.as_str()),
            Recipient::Operator => f.write_str(OPERATOR_TOKEN),
            Recipient::All => f.write_str("*"),
        }
    }
}

impl Serialize for Recipient {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Recipient {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        if raw == "*" {
            return Ok(Recipient::All);
        }
        Principal::from_token(&raw)
            .and_then(Recipient::try_from)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for Recipient {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Recipient".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An agent id, \"operator\", or \"*\" for every live agent.",
            "type": "string",
            "pattern": "^([A-Za-z0-9_-]{1,64}|\\*)$"
        })
    }
}

/// A message on the bus: the envelope every delivery carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Message {
    /// Unique id (also the de-duplication id).
    pub id: MessageId,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: MessageType,
    /// The sender.
    pub from: Principal,
    /// The addressee as routed (`"*"` for an alert).
    pub to: Recipient,
    /// A one-line subject.
    pub subject: String,
    /// Free-form JSON.
    pub payload: serde_json::Value,
    /// Its priority.
    pub priority: Priority,
    /// The task (mission) it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<MissionId>,
    /// The message it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<MessageId>,
    /// A QUESTION that needs a DECISION.
    #[serde(default)]
    pub requires_decision: bool,
    /// Raised as critical: an ALERT raised so, or an escalation (both go at CRITICAL).
    #[serde(default)]
    pub is_critical: bool,
    /// For a QUESTION that needs a DECISION: how long its decider has before it escalates
    /// one level up (the bus's `--decision-deadline`, 120 s by default, when unset). An
    /// escalation carries its question's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_deadline_ms: Option<u64>,
    /// When the bus accepted it.
    pub created_at: Timestamp,
    /// Its creation context, a W3C `traceparent` (set by the bus when traces are
    /// exported): a consumer's processing span takes it as parent, so handling the message
    /// joins the sender's trace. An escalation carries its question's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn critical_outranks_everything() {
        let mut ps = vec![
            Priority::Low,
            Priority::Critical,
            Priority::Normal,
            Priority::High,
        ];
        ps.sort_by(|a, b| b.cmp(a));
        assert_eq!(ps, Priority::DESCENDING.to_vec());
        assert!(Priority::Critical > Priority::High && Priority::Normal > Priority::Low);
    }

    #[test]
    fn default_priorities_follow_the_seed() {
        use MessageType::*;
        assert_eq!(Request.default_priority(false), Priority::Normal);
        assert_eq!(Reply.default_priority(false), Priority::Normal);
        assert_eq!(Question.default_priority(false), Priority::High);
        assert_eq!(Handoff.default_priority(false), Priority::High);
        assert_eq!(Decision.default_priority(false), Priority::High);
        assert_eq!(Alert.default_priority(false), Priority::High);
        assert_eq!(Alert.default_priority(true), Priority::Critical);
    }

    #[test]
    fn recipients_serialize_as_tokens() {
        let all: Recipient = serde_json::from_str("\"*\"").unwrap();
        assert_eq!(all, Recipient::All);
        let op: Recipient = serde_json::from_str("\"operator\"").unwrap();
        assert_eq!(op, Recipient::Operator);
        assert_eq!(
            serde_json::to_string(&Recipient::Agent(AgentId::new("qa-2").unwrap())).unwrap(),
            "\"qa-2\""
        );
        assert!(serde_json::from_str::<Recipient>("\"a.b\"").is_err());
    }

    #[test]
    fn names_parse_in_any_case() {
        assert_eq!(Priority::parse("critical"), Some(Priority::Critical));
        assert_eq!(Priority::parse("LOW"), Some(Priority::Low));
        assert_eq!(MessageType::parse("Handoff"), Some(MessageType::Handoff));
        assert_eq!(serde_json::to_string(&Priority::High).unwrap(), "\"HIGH\"");
    }
}
#[cfg(test)]
mod command_scenarios;
#[cfg(test)]
mod office_scenarios;
#[cfg(test)]
mod scenarios;
