//! Archiving settled messages and questions, ending abandoned waits, queue figures.

use super::*;
use crate::id::MessageId;
use crate::time::Timestamp;

impl PostOffice {
    // ---- housekeeping -----------------------------------------------------------------

    /// Settled messages and questions older than the retention window, at most `limit` of
    /// each: they leave the working set (the inbox log and the audit log keep them).
    pub fn archive_due(&self, now: Timestamp, limit: usize) -> Option<OfficeRecord> {
        let old = |t: Timestamp| now.millis_since(t) > self.config.retention_ms;
        let open_question = |id: &MessageId| {
            self.questions
                .get(id)
                .is_some_and(|q| q.question.requires_decision && q.decision.is_none())
        };
        let messages: Vec<MessageId> = self
            .messages
            .values()
            .filter(|p| old(p.message.created_at) && p.settled() && !open_question(&p.message.id))
            .map(|p| p.message.id.clone())
            .take(limit)
            .collect();
        let questions: Vec<MessageId> = self
            .questions
            .values()
            .filter(|q| old(q.question.created_at) && !open_question(&q.question.id))
            .filter(|q| {
                self.messages
                    .get(&q.question.id)
                    .is_none_or(Posted::settled)
            })
            .map(|q| q.question.id.clone())
            .take(limit)
            .collect();
        (!messages.is_empty() || !questions.is_empty()).then_some(OfficeRecord::Archived {
            messages,
            questions,
        })
    }

    /// Waiters whose time is up (their instance died before ending them).
    pub fn expired_waiters(&self, now: Timestamp, grace_ms: u64) -> Vec<String> {
        self.waiters
            .values()
            .filter(|w| now.millis_since(w.until) > grace_ms && w.until <= now)
            .map(|w| w.id.clone())
            .collect()
    }

    /// Unacknowledged copies in every inbox.
    pub fn queue_size(&self) -> u64 {
        self.inboxes.values().map(|i| i.len() as u64).sum()
    }
}
