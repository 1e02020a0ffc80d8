//! Who a message goes to, and whether the sender may send it.

use serde::{Deserialize, Serialize};

use super::{Message, MessageType, Priority, Recipient};
use crate::Rejection;
use crate::agent::{Action, Registry};
use crate::id::{AgentId, MessageId, MissionId, Principal};
use crate::time::Timestamp;

/// Longest subject line accepted, in characters.
pub const MAX_SUBJECT_CHARS: usize = 256;

/// What a sender asks the bus to send.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Draft {
    /// The type.
    #[serde(rename = "type")]
    pub kind: MessageType,
    /// The addressee. Required for REQUEST and HANDOFF; optional for QUESTION (default: the
    /// sender's orchestrator, else the operator); not allowed for ALERT; ignored for replies.
    #[serde(default)]
    pub to: Option<Principal>,
    /// A one-line subject.
    pub subject: String,
    /// Free-form JSON.
    #[serde(default)]
    pub payload: serde_json::Value,
    /// Overrides the type's default priority.
    #[serde(default)]
    pub priority: Option<Priority>,
    /// The task (mission) concerned; required for HANDOFF.
    #[serde(default)]
    pub task_id: Option<MissionId>,
    /// The message answered; required for REPLY and DECISION.
    #[serde(default)]
    pub in_reply_to: Option<MessageId>,
    /// A QUESTION that needs a DECISION.
    #[serde(default)]
    pub requires_decision: bool,
    /// An ALERT raised as critical (sent at CRITICAL).
    #[serde(default)]
    pub is_critical: bool,
    /// For a QUESTION that requires a DECISION: how long its decider has before it
    /// escalates, [`MIN_DECISION_DEADLINE_MS`] to [`MAX_DECISION_DEADLINE_MS`] (default:
    /// the bus's `--decision-deadline`, 120 s).
    #[serde(default)]
    pub decision_deadline_ms: Option<u64>,
}

/// The shortest decision deadline a question may ask for: 1 s (the bus sweeps every
/// second).
pub const MIN_DECISION_DEADLINE_MS: u64 = 1_000;

/// The longest: 7 days.
pub const MAX_DECISION_DEADLINE_MS: u64 = 7 * 24 * 3_600_000;

impl Draft {
    /// A draft of `kind` with a subject and nothing else.
    pub fn new(kind: MessageType, subject: impl Into<String>) -> Self {
        Self {
            kind,
            to: None,
            subject: subject.into(),
            payload: serde_json::Value::Null,
            priority: None,
            task_id: None,
            in_reply_to: None,
            requires_decision: false,
            is_critical: false,
            decision_deadline_ms: None,
        }
    }
}

/// A message ready to deliver, and the concrete inboxes it goes to.
#[derive(Clone, Debug, PartialEq)]
pub struct Routed {
    /// The envelope.
    pub message: Message,
    /// One entry per inbox: agents, or the operator.
    pub recipients: Vec<Recipient>,
}

/// The action a sender must not have forbidden to send a message of this type.
fn action_for(kind: MessageType) -> Option<Action> {
    match kind {
        MessageType::Request => Some(Action::SendRequest),
        MessageType::Question => Some(Action::AskQuestion),
        MessageType::Alert => Some(Action::RaiseAlert),
        MessageType::Handoff => Some(Action::HandoffTask),
        MessageType::Decision => Some(Action::RecordDecision),
        MessageType::Reply => None,
    }
}

/// Routes and checks a draft from `from`. `original` is the message a REPLY or DECISION
/// answers (its type and sender), looked up by the caller.
pub fn address(
    registry: &Registry,
    from: &Principal,
    draft: &Draft,
    original: Option<(&MessageType, &Principal)>,
    id: MessageId,
    now: Timestamp,
) -> Result<Routed, Rejection> {
    let subject = draft.subject.trim();
    if subject.is_empty() {
        return Err(Rejection::invalid("subject", "must not be empty"));
    }
    if subject.chars().count() > MAX_SUBJECT_CHARS {
        return Err(Rejection::invalid(
            "subject",
            format!("longer than {MAX_SUBJECT_CHARS} characters"),
        ));
    }
    if let Some(ms) = draft.decision_deadline_ms {
        if !(draft.kind == MessageType::Question && draft.requires_decision) {
            return Err(Rejection::invalid(
                "decision_deadline_ms",
                "only a question that requires a decision has a deadline",
            ));
        }
        if !(MIN_DECISION_DEADLINE_MS..=MAX_DECISION_DEADLINE_MS).contains(&ms) {
            return Err(Rejection::invalid(
                "decision_deadline_ms",
                format!(
                    "must be from {MIN_DECISION_DEADLINE_MS} (1 s) to \
                     {MAX_DECISION_DEADLINE_MS} (7 days), not {ms}"
                ),
            ));
        }
    }
    let critical = draft.kind == MessageType::Alert && draft.is_critical;
    let priority = if critical {
        Priority::Critical
    } else {
        draft.priority.unwrap_or(draft.kind.default_priority(false))
    };
    if matches!(from, Principal::Observer | Principal::Service(_)) {
        return Err(Rejection::Forbidden {
            actor: from.to_string(),
            action: "send".into(),
            reason: "messages come from agents or the operator".into(),
        });
    }
    if let Principal::Agent(sender) = from {
        // Every sender must be a live agent, replies included (they need no action).
        let a = registry
            .agent(sender)
            .ok_or_else(|| Rejection::UnknownAgent { id: sender.clone() })?;
        if !a.is_live() {
            return Err(Rejection::AgentNotLive {
                id: sender.clone(),
                status: a.status,
            });
        }
        let actions = action_for(draft.kind)
            .into_iter()
            .chain((priority == Priority::Critical).then_some(Action::SendCritical));
        for action in actions {
            registry
                .authorize(sender, action, None)
                .map_err(|e| match e {
                    Rejection::Forbidden { reason, .. } => Rejection::Forbidden {
                        actor: sender.to_string(),
                        action: action.as_str().into(),
                        reason,
                    },
                    other => other,
                })?;
        }
    }
    let live_agent = |id: &AgentId| -> Result<Recipient, Rejection> {
        let a = registry
            .agent(id)
            .ok_or_else(|| Rejection::UnknownAgent { id: id.clone() })?;
        if !a.is_live() {
            return Err(Rejection::AgentNotLive {
                id: id.clone(),
                status: a.status,
            });
        }
        Ok(Recipient::Agent(id.clone()))
    };
    let addressee = |to: &Principal| match to {
        Principal::Operator => Ok(Recipient::Operator),
        Principal::Agent(id) => live_agent(id),
        Principal::Observer | Principal::Service(_) => Err(Rejection::invalid(
            "to",
            "messages go to agents or the operator, who have inboxes",
        )),
    };
    // Work may only be started for an agent with tokens left (the seed's "agent rejects
    // work if budget exceeded").
    let can_work = |to: &Recipient| match to {
        Recipient::Agent(id) => match registry.agent(id) {
            Some(a) if a.budget.remaining() == 0 => {
                Err(Rejection::BudgetExhausted { id: id.clone() })
            }
            _ => Ok(()),
        },
        _ => Ok(()),
    };
    let required_to = || {
        draft.to.as_ref().ok_or_else(|| {
            Rejection::invalid(
                "to",
                format!(
                    "a {} needs an addressee",
                    draft.kind.as_str().to_uppercase()
                ),
            )
        })
    };
    let answered = || -> Result<(&MessageType, &Principal), Rejection> {
        let reply_to = draft.in_reply_to.as_ref().ok_or_else(|| {
            Rejection::invalid(
                "in_reply_to",
                format!("a {} must name the message it answers", draft.kind),
            )
        })?;
        original.ok_or_else(|| Rejection::UnknownMessage {
            id: reply_to.clone(),
        })
    };

    let (to, recipients) = match draft.kind {
        MessageType::Request | MessageType::Handoff => {
            let to = addressee(required_to()?)?;
            if draft.kind == MessageType::Handoff && draft.task_id.is_none() {
                return Err(Rejection::invalid(
                    "task_id",
                    "a HANDOFF must name the task it transfers",
                ));
            }
            can_work(&to)?;
            (to.clone(), vec![to])
        }
        MessageType::Question => {
            let to = match (&draft.to, from) {
                (Some(to), _) => addressee(to)?,
                (None, Principal::Agent(asker)) => match registry.orchestrator_of(asker) {
                    Some(orchestrator) => Recipient::Agent(orchestrator.clone()),
                    None => Recipient::Operator,
                },
                (None, _) => {
                    return Err(Rejection::invalid(
                        "to",
                        "the operator's questions need an addressee",
                    ));
                }
            };
            (to.clone(), vec![to])
        }
        MessageType::Alert => {
            if draft.to.is_some() {
                return Err(Rejection::invalid(
                    "to",
                    "an ALERT goes to every live agent; leave `to` empty",
                ));
            }
            let everyone = registry
                .agents()
                .filter(|a| a.is_live() && from.agent() != Some(&a.id))
                .map(|a| Recipient::Agent(a.id.clone()))
                .collect();
            (Recipient::All, everyone)
        }
        MessageType::Decision | MessageType::Reply => {
            let (kind, sender) = answered()?;
            if draft.kind == MessageType::Decision && *kind != MessageType::Question {
                return Err(Rejection::NotAQuestion {
                    id: draft
                        .in_reply_to
                        .clone()
                        .ok_or_else(|| Rejection::invalid("in_reply_to", "missing"))?,
                });
            }
            let to = addressee(sender)?;
            (to.clone(), vec![to])
        }
    };
    Ok(Routed {
        message: Message {
            id,
            kind: draft.kind,
            from: from.clone(),
            to,
            subject: subject.to_owned(),
            payload: draft.payload.clone(),
            priority,
            task_id: draft.task_id.clone(),
            in_reply_to: draft.in_reply_to.clone(),
            requires_decision: draft.kind == MessageType::Question && draft.requires_decision,
            is_critical: critical,
            decision_deadline_ms: draft.decision_deadline_ms,
            created_at: now,
            traceparent: None,
        },
        recipients,
    })
}
