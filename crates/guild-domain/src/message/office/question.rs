//! Replies and decisions on questions, and the open questions a refusal raised.

use super::*;
use crate::Rejection;
use crate::agent::{Action, Registry};
use crate::id::{AgentId, MessageId, Principal};
use crate::message::{DecisionInput, Message, MessageType, QuestionState, Recipient, Routed};
use crate::time::Timestamp;

impl PostOffice {
    // ---- replies and decisions --------------------------------------------------------

    /// The message a REPLY or DECISION answers, as routing needs it (its type and sender),
    /// after checking `replier` may answer it: a recipient of it, or the operator.
    pub fn original(
        &self,
        replier: &Principal,
        id: &MessageId,
    ) -> Result<(&MessageType, &Principal), Rejection> {
        let p = self
            .messages
            .get(id)
            .ok_or_else(|| Rejection::UnknownMessage { id: id.clone() })?;
        if !matches!(replier, Principal::Operator) && p.copy_for(replier).is_none() {
            return Err(Rejection::NotYours {
                actor: replier.to_string(),
                action: "reply",
                reason: format!("message {id} was not addressed to you"),
            });
        }
        Ok((&p.message.kind, &p.message.from))
    }

    /// A decision on question `id` (or on an escalation of it) by `approver`; `message` is
    /// the DECISION message delivered when the call decides. The building block of
    /// [`Command::Decide`](super::Command::Decide).
    pub fn decide_question(
        &self,
        registry: &Registry,
        approver: &Principal,
        id: &MessageId,
        input: &DecisionInput,
        message: DecisionMessage,
        now: Timestamp,
    ) -> Result<Decided, Rejection> {
        let q = match self.question(id) {
            Some(q) => q,
            None if self.messages.contains_key(id) => {
                return Err(Rejection::NotAQuestion { id: id.clone() });
            }
            None => return Err(Rejection::UnknownMessage { id: id.clone() }),
        };
        let can_override = match approver {
            Principal::Operator => true,
            // Services raise questions, they do not decide them; the observer only reads.
            Principal::Service(_) | Principal::Observer => false,
            Principal::Agent(a) => {
                registry
                    .authorize(a, Action::RecordDecision, None)
                    .map_err(|e| rename_action(e, a, Action::RecordDecision))?;
                registry
                    .agent(a)
                    .is_some_and(|p| p.authority.can_override_decisions)
                    && registry
                        .authorize(a, Action::OverrideDecision, None)
                        .is_ok()
            }
        };
        let ruling = q.rule(approver, can_override, input, now)?;
        let mut records = vec![OfficeRecord::Question(Box::new(ruling.state.clone()))];
        let post = if ruling.delivers() {
            let routed = match message {
                DecisionMessage::Reply(routed) => routed,
                DecisionMessage::Written(id, traceparent) => {
                    let d = ruling.state.decision.as_ref();
                    let mut routed = decision_message(&ruling.state, approver, d, id, now)?;
                    routed.message.traceparent = traceparent;
                    routed
                }
            };
            let post = self.post(routed, now);
            records.extend(post.records.iter().cloned());
            Some(post)
        } else {
            None
        };
        Ok(Decided {
            ruling,
            records,
            post,
        })
    }

    /// An open question `agent` asked about its exhausted budget, if there is one.
    pub fn open_scope_question(&self, agent: &AgentId) -> Option<&QuestionState> {
        self.open_question_for(agent, SCOPE_REASON)
    }

    /// An open question Guild asked on `agent`'s behalf for `reason` (its payload's
    /// `reason`: a budget's [`SCOPE_REASON`], a spawn cap's rule), if there is one.
    pub fn open_question_for(&self, agent: &AgentId, reason: &str) -> Option<&QuestionState> {
        self.questions.values().find(|q| {
            q.decision.is_none()
                && q.question.from.agent() == Some(agent)
                && q.question.payload.get("reason").and_then(|r| r.as_str()) == Some(reason)
        })
    }

    /// An open conflict question `agent` raised about `task` (`conflict` names the kind:
    /// the payload's `conflict`), if there is one: the same conflict again asks no more
    /// while it is open, so a client repeating a refused call cannot flood its
    /// orchestrator (the rule for refusals' side effects, ARCHITECTURE.md "Refusals").
    pub fn open_conflict_question(
        &self,
        agent: &AgentId,
        task: &crate::id::MissionId,
        conflict: &str,
    ) -> Option<&QuestionState> {
        self.questions.values().find(|q| {
            q.decision.is_none()
                && q.question.from.agent() == Some(agent)
                && q.question.task_id.as_ref() == Some(task)
                && q.question.payload.get("conflict").and_then(|c| c.as_str()) == Some(conflict)
        })
    }
}

fn rename_action(e: Rejection, a: &AgentId, action: Action) -> Rejection {
    match e {
        Rejection::Forbidden { reason, .. } => Rejection::Forbidden {
            actor: a.to_string(),
            action: action.as_str().into(),
            reason,
        },
        other => other,
    }
}

/// The DECISION message `record_decision` delivers when it is the call that decides.
fn decision_message(
    q: &QuestionState,
    approver: &Principal,
    decision: Option<&crate::message::DecisionRecord>,
    id: MessageId,
    now: Timestamp,
) -> Result<Routed, Rejection> {
    // Questions come from agents or the operator (routing refuses anyone else), so the
    // asker always has an inbox.
    let asker = Recipient::try_from(q.question.from.clone())?;
    let payload = decision.map_or(serde_json::Value::Null, |d| {
        serde_json::json!({
            "decision": d.choice,
            "choice": d.choice,
            "rationale": d.rationale,
            "impact": d.impact,
        })
    });
    Ok(Routed {
        message: Message {
            id,
            kind: MessageType::Decision,
            from: approver.clone(),
            to: asker.clone(),
            subject: format!("Decision: {}", q.question.subject)
                .chars()
                .take(crate::message::MAX_SUBJECT_CHARS)
                .collect(),
            payload,
            priority: MessageType::Decision.default_priority(false),
            task_id: q.question.task_id.clone(),
            in_reply_to: Some(q.question.id.clone()),
            requires_decision: false,
            is_critical: false,
            decision_deadline_ms: None,
            created_at: now,
            traceparent: None,
        },
        recipients: vec![asker],
    })
}
