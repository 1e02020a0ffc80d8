//! Decisions on questions: who may decide, the one-decision rule, completion, overrides,
//! and escalation when a question waits too long.
//!
//! The seed's orchestrator answers with `reply(..., is_decision=True)` and then
//! `record_decision(message_id, approver, choice, rationale, impact)`. Both calls carry the
//! same decision: whichever comes first makes it (delivered to the asker, recorded); the
//! other, by the same approver with the same choice, completes the record (rationale,
//! impact) and is otherwise a no-op. A different choice, or another approver, is a second
//! decision: refused unless the approver may override, and then recorded as an override
//! that names the first.

use serde::{Deserialize, Serialize};

use super::{Message, Recipient};
use crate::Rejection;
use crate::agent::Registry;
use crate::id::{MessageId, MissionId, Principal};
use crate::time::Timestamp;

/// A recorded decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DecisionRecord {
    /// The question decided (the seed's `message_id`).
    pub question_id: MessageId,
    /// Who asked.
    pub asker: Principal,
    /// Who decided (the seed's `approver_agent`).
    pub approver: Principal,
    /// The choice.
    pub choice: String,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rationale: Option<String>,
    /// Expected impact, free-form.
    #[serde(default)]
    pub impact: serde_json::Value,
    /// The mission the question concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mission_id: Option<MissionId>,
    /// When it was decided.
    pub decided_at: Timestamp,
    /// When the second call completed the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    /// The decision it replaced, when it is an override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<Overridden>,
}

/// The decision an override replaced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Overridden {
    /// Its approver.
    pub approver: Principal,
    /// Its choice.
    pub choice: String,
    /// When it was made.
    pub decided_at: Timestamp,
}

/// What an approver submits: from `record_decision`, or from a reply with `is_decision`
/// (whose payload carries `decision` or `choice`, and `reason` or `rationale`, and `impact`).
#[derive(Clone, Debug, PartialEq)]
pub struct DecisionInput {
    /// The choice.
    pub choice: String,
    /// Why.
    pub rationale: Option<String>,
    /// Expected impact.
    pub impact: serde_json::Value,
}

impl DecisionInput {
    /// Reads a decision out of a reply's payload (the seed's
    /// `{"decision": "cut_feature_X", "reason": "token_overbudget"}`).
    pub fn from_reply_payload(payload: &serde_json::Value) -> Result<Self, Rejection> {
        let text = |keys: [&str; 2]| {
            keys.iter()
                .find_map(|k| payload.get(*k)?.as_str().map(str::to_owned))
        };
        let choice = text(["decision", "choice"]).ok_or_else(|| {
            Rejection::invalid(
                "payload.decision",
                "a reply with is_decision must carry a \"decision\" (or \"choice\") string",
            )
        })?;
        Self::new(
            choice,
            text(["rationale", "reason"]),
            payload.get("impact").cloned().unwrap_or_default(),
        )
    }

    /// Checks and builds an input.
    pub fn new(
        choice: String,
        rationale: Option<String>,
        impact: serde_json::Value,
    ) -> Result<Self, Rejection> {
        if choice.trim().is_empty() {
            return Err(Rejection::invalid("choice", "must not be empty"));
        }
        let rationale = rationale.filter(|r| !r.trim().is_empty());
        Ok(Self {
            choice: choice.trim().to_owned(),
            rationale,
            impact,
        })
    }
}

/// A question that is being, or was, decided: the bus keeps one per QUESTION.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct QuestionState {
    /// The question as routed.
    pub question: Message,
    /// The decision in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionRecord>,
    /// Decisions replaced by overrides, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub superseded: Vec<DecisionRecord>,
    /// Where it was escalated, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escalations: Vec<Escalation>,
}

/// One escalation of an undecided question.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Escalation {
    /// Who it went to.
    pub to: Recipient,
    /// When.
    pub at: Timestamp,
    /// The CRITICAL message that carried it.
    pub message_id: MessageId,
}

/// What a decision call did.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum RulingKind {
    /// The first decision on the question.
    Decided,
    /// The same approver's second call added rationale or impact.
    Completed,
    /// The same approver's second call added nothing.
    Unchanged,
    /// A decision by someone who may override replaced the one before.
    Overridden,
}

/// The outcome of a decision call: the question's new state and what to do about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Ruling {
    /// The question after the call.
    pub state: QuestionState,
    /// What happened.
    pub kind: RulingKind,
}

impl Ruling {
    /// Whether a DECISION message goes to the asker (a new decision, or an override).
    pub fn delivers(&self) -> bool {
        matches!(self.kind, RulingKind::Decided | RulingKind::Overridden)
    }

    /// Whether the audit log gets a record.
    pub fn records(&self) -> bool {
        self.kind != RulingKind::Unchanged
    }
}

impl QuestionState {
    /// A question just asked.
    pub fn asked(question: Message) -> Self {
        Self {
            question,
            decision: None,
            superseded: Vec::new(),
            escalations: Vec::new(),
        }
    }

    /// Who the question currently waits on: its last escalation, or its addressee.
    pub fn current_decider(&self) -> &Recipient {
        self.escalations.last().map_or(&self.question.to, |e| &e.to)
    }

    /// Whether `who` may decide: the operator, the addressee, anyone it was escalated to,
    /// or an agent that may override decisions.
    pub fn may_decide(&self, who: &Principal, can_override: bool) -> bool {
        let addressed = |r: &Recipient| r.principal().as_ref() == Some(who);
        matches!(who, Principal::Operator)
            || can_override
            || addressed(&self.question.to)
            || self.escalations.iter().any(|e| addressed(&e.to))
    }

    /// Applies a decision call by `approver` (`can_override`: whether it may override).
    pub fn rule(
        &self,
        approver: &Principal,
        can_override: bool,
        input: &DecisionInput,
        now: Timestamp,
    ) -> Result<Ruling, Rejection> {
        let question_id = self.question.id.clone();
        if !self.may_decide(approver, can_override) {
            return Err(Rejection::Forbidden {
                actor: approver.to_string(),
                action: "record_decision".into(),
                reason: format!(
                    "question {question_id} is addressed to {}; only it, an agent that may \
                     override decisions, or the operator may decide",
                    self.current_decider()
                ),
            });
        }
        let fresh = |overrides: Option<Overridden>| DecisionRecord {
            question_id: question_id.clone(),
            asker: self.question.from.clone(),
            approver: approver.clone(),
            choice: input.choice.clone(),
            rationale: input.rationale.clone(),
            impact: input.impact.clone(),
            mission_id: self.question.task_id.clone(),
            decided_at: now,
            completed_at: None,
            overrides,
        };
        let mut state = self.clone();
        let Some(current) = &self.decision else {
            state.decision = Some(fresh(None));
            return Ok(Ruling {
                state,
                kind: RulingKind::Decided,
            });
        };
        if &current.approver == approver && current.choice == input.choice {
            let mut record = current.clone();
            let mut changed = false;
            if input.rationale.is_some() && input.rationale != record.rationale {
                record.rationale = input.rationale.clone();
                changed = true;
            }
            if !input.impact.is_null() && input.impact != record.impact {
                record.impact = input.impact.clone();
                changed = true;
            }
            if !changed {
                return Ok(Ruling {
                    state,
                    kind: RulingKind::Unchanged,
                });
            }
            record.completed_at = Some(now);
            state.decision = Some(record);
            return Ok(Ruling {
                state,
                kind: RulingKind::Completed,
            });
        }
        // The person running Guild outranks every agent: no override authority reaches
        // above the operator's own decision.
        if current.approver == Principal::Operator && approver != &Principal::Operator {
            return Err(Rejection::Forbidden {
                actor: approver.to_string(),
                action: "override_decision".into(),
                reason: format!(
                    "the operator decided question {question_id} ({:?}); only the operator may \
                     change that",
                    current.choice
                ),
            });
        }
        if !(can_override || matches!(approver, Principal::Operator)) {
            return Err(Rejection::AlreadyDecided {
                id: question_id,
                by: current.approver.to_string(),
                choice: current.choice.clone(),
            });
        }
        let replaced = Overridden {
            approver: current.approver.clone(),
            choice: current.choice.clone(),
            decided_at: current.decided_at,
        };
        state.superseded.push(current.clone());
        state.decision = Some(fresh(Some(replaced)));
        Ok(Ruling {
            state,
            kind: RulingKind::Overridden,
        })
    }

    /// When an undecided question needing a decision has waited `deadline_ms` since it was
    /// asked or last escalated, where it goes next: the nearest live orchestrator above its
    /// current decider, or the operator. `None` when it is not due, or already with the
    /// operator.
    pub fn escalation(
        &self,
        registry: &Registry,
        now: Timestamp,
        deadline_ms: u64,
    ) -> Option<Recipient> {
        if !self.question.requires_decision || self.decision.is_some() {
            return None;
        }
        let since = self
            .escalations
            .last()
            .map_or(self.question.created_at, |e| e.at);
        let deadline_ms = self.question.decision_deadline_ms.unwrap_or(deadline_ms);
        if now.millis_since(since) <= deadline_ms {
            return None;
        }
        match self.current_decider() {
            Recipient::Agent(id) => Some(
                registry
                    .orchestrator_of(id)
                    .map_or(Recipient::Operator, |o| Recipient::Agent(o.clone())),
            ),
            Recipient::Operator | Recipient::All => None,
        }
    }
}
