//! Questions whose decision is overdue, escalated one level up.

use super::*;
use crate::agent::Registry;
use crate::id::MessageId;
use crate::message::{Escalation, Message, MessageType, Priority, QuestionState, Routed};
use crate::time::Timestamp;

impl PostOffice {
    /// Questions whose decision is overdue, escalated one level: a CRITICAL QUESTION to
    /// the next orchestrator up, or the operator. `next_id` names each escalation message.
    pub fn escalations_due(
        &self,
        registry: &Registry,
        now: Timestamp,
        mut next_id: impl FnMut(&MessageId) -> MessageId,
    ) -> Vec<Escalated> {
        let mut out = Vec::new();
        let mut due: Vec<&QuestionState> = self.questions.values().collect();
        due.sort_by(|a, b| a.question.id.cmp(&b.question.id));
        for q in due {
            let Some(to) = q.escalation(registry, now, self.config.decision_deadline_ms) else {
                continue;
            };
            let original = &q.question;
            let id = next_id(&original.id);
            let message = Message {
                id: id.clone(),
                kind: MessageType::Question,
                from: original.from.clone(),
                to: to.clone(),
                subject: format!("Escalated: {}", original.subject)
                    .chars()
                    .take(crate::message::MAX_SUBJECT_CHARS)
                    .collect(),
                payload: serde_json::json!({
                    "escalated_question": original.id,
                    "waited_ms": now.millis_since(q.escalations.last().map_or(original.created_at, |e| e.at)),
                    "previous_decider": q.current_decider(),
                    "question": original.payload,
                }),
                priority: Priority::Critical,
                task_id: original.task_id.clone(),
                in_reply_to: Some(original.id.clone()),
                requires_decision: true,
                is_critical: true,
                decision_deadline_ms: original.decision_deadline_ms,
                created_at: now,
                traceparent: original.traceparent.clone(),
            };
            let mut question = q.clone();
            question.escalations.push(Escalation {
                to: to.clone(),
                at: now,
                message_id: id,
            });
            let post = self.post(
                Routed {
                    message,
                    recipients: vec![to],
                },
                now,
            );
            // The escalation is a message, not a new question: drop the record `post`
            // made for it and save the original question with the escalation instead.
            let mut records: Vec<OfficeRecord> = post
                .records
                .iter()
                .filter(|r| !matches!(r, OfficeRecord::Question(_)))
                .cloned()
                .collect();
            records.push(OfficeRecord::Question(Box::new(question.clone())));
            out.push(Escalated {
                question,
                post,
                records,
            });
        }
        out
    }
}
