//! The bus's state: messages in durable per-agent inboxes, deliveries awaiting their
//! acknowledgement, consumers waiting for a message, questions and their decisions, and
//! the figures.
//!
//! Every operation is decided against the office and returns the records to save; applying
//! records is the only way the office changes, on every instance alike. A message is
//! posted once with one *copy* per recipient inbox; later records change one copy's state
//! (delivered, acknowledged, given back), so a large payload is written to the journal once.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{
    Message, MessageType, Priority, QuestionState, Recipient, Routed, Ruling, StarvationPolicy,
    next_priority,
};
use crate::id::{MessageId, Principal};
use crate::time::Timestamp;

/// How many question-to-decision times the figures keep (the most recent).
pub const DECISION_TIME_SAMPLES: usize = 10_000;

/// Longest a consumer may give a delivery back for.
pub const MAX_NAK_DELAY_MS: u64 = 3_600_000;

/// The bus's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OfficeConfig {
    /// A delivery not acknowledged within this long is delivered again.
    pub ack_wait_ms: u64,
    /// When a long-waiting lower priority is served first.
    pub starvation: StarvationPolicy,
    /// An undecided QUESTION that needs a decision escalates after this long (the seed's
    /// decision-time target is under two minutes).
    pub decision_deadline_ms: u64,
    /// Acknowledged messages and settled questions older than this leave the working set.
    pub retention_ms: u64,
}

impl Default for OfficeConfig {
    fn default() -> Self {
        Self {
            ack_wait_ms: 30_000,
            starvation: StarvationPolicy::default(),
            decision_deadline_ms: 120_000,
            retention_ms: 24 * 3_600_000,
        }
    }
}

/// Where one recipient's copy of a message is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CopyState {
    /// Waiting to be consumed; after a `nak` with a delay, not before `not_before`.
    Queued {
        /// Not deliverable before this.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        not_before: Option<Timestamp>,
    },
    /// Handed to a consumer; delivered again unless acknowledged by `until`.
    InFlight {
        /// The acknowledgement deadline.
        until: Timestamp,
        /// The waiting consume call it went to, if it went to one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        waiter: Option<String>,
    },
    /// Acknowledged: done.
    Acked {
        /// When.
        at: Timestamp,
    },
}

/// One recipient's copy of a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Copy {
    /// The inbox: an agent, or the operator.
    pub owner: Principal,
    /// Its place in the owner's inbox: first in, first out within a priority.
    pub pos: u64,
    /// Deliveries so far.
    pub attempts: u32,
    /// Where it is.
    #[serde(flatten)]
    pub state: CopyState,
}

/// A message as the bus keeps it: the envelope and one copy per recipient, sorted by owner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Posted {
    /// The envelope.
    pub message: Message,
    /// The copies, sorted by owner.
    pub copies: Vec<Copy>,
}

impl Copy {
    /// This copy's current delivery of `message`.
    pub fn delivery(&self, message: &Message) -> Delivery {
        Delivery {
            delivery_id: delivery_id(&message.id, &self.owner, self.attempts),
            attempt: self.attempts,
            message: message.clone(),
        }
    }
}

impl Posted {
    /// `owner`'s copy.
    pub fn copy_for(&self, owner: &Principal) -> Option<&Copy> {
        self.copies
            .binary_search_by(|c| c.owner.cmp(owner))
            .ok()
            .map(|i| &self.copies[i])
    }

    fn copy_mut(&mut self, owner: &Principal) -> Option<&mut Copy> {
        self.copies
            .binary_search_by(|c| c.owner.cmp(owner))
            .ok()
            .map(|i| &mut self.copies[i])
    }

    /// Whether every copy was acknowledged.
    pub fn settled(&self) -> bool {
        self.copies
            .iter()
            .all(|c| matches!(c.state, CopyState::Acked { .. }))
    }
}

/// A consume call waiting for a message (a long poll).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Waiter {
    /// Its id, chosen by the instance holding the call.
    pub id: String,
    /// Whose inbox it waits on.
    pub owner: Principal,
    /// Its place among the owner's waiters: the longest waiting is served first.
    pub pos: u64,
    /// When it gives up.
    pub until: Timestamp,
    /// Only messages of these types (every type when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<MessageType>,
}

/// A message handed to a consumer. Acknowledge it with `delivery_id` within the ack
/// window, or it is delivered again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Delivery {
    /// What `ack` and `nak` take: `<message>.<owner>.<attempt>`.
    pub delivery_id: String,
    /// 1 on first delivery, more on redelivery.
    pub attempt: u32,
    /// The message.
    pub message: Message,
}

/// Figures that outlive the messages they count (archiving removes messages, not counts).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Totals {
    /// Messages accepted (an alert counts once).
    pub messages: u64,
    /// Per type.
    pub by_type: BTreeMap<MessageType, u64>,
    /// Per priority.
    pub by_priority: BTreeMap<Priority, u64>,
    /// Questions decided (completions and overrides do not count again).
    pub decisions: u64,
    /// Escalations made.
    pub escalations: u64,
    /// Messages archived.
    pub archived: u64,
    /// The latest question-to-decision times, in milliseconds.
    pub decision_times_ms: VecDeque<u64>,
    /// The next inbox position to hand out.
    pub next_pos: u64,
}

/// What the bus saves: each record is one change, folded in order by every instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "BusRecord"))]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum OfficeRecord {
    /// A new message and its copies.
    Posted(Posted),
    /// One copy's new state.
    Copy {
        /// The message.
        message_id: MessageId,
        /// The copy.
        copy: Copy,
    },
    /// A question's state (asked, decided, escalated).
    Question(Box<QuestionState>),
    /// A consumer started waiting.
    Waiting(Waiter),
    /// A waiting consumer was served or gave up.
    Left {
        /// Its id.
        waiter: String,
    },
    /// Messages and questions that left the working set.
    Archived {
        /// Settled messages.
        messages: Vec<MessageId>,
        /// Settled questions.
        questions: Vec<MessageId>,
    },
    /// The figures (written by snapshots, after everything else).
    Totals(Totals),
}

/// A decided post: what to save and who was served at once.
#[derive(Clone, Debug, PartialEq)]
pub struct Post {
    /// Records to save.
    pub records: Vec<OfficeRecord>,
    /// The message as stored.
    pub message: Message,
    /// Its inboxes.
    pub recipients: Vec<Recipient>,
    /// Consumers that were waiting and get a message now.
    pub served: Vec<(String, Delivery)>,
}

/// The DECISION message a decision call delivers when it decides.
#[derive(Clone, Debug, PartialEq)]
pub enum DecisionMessage {
    /// The caller's reply with `is_decision`, routed.
    Reply(Routed),
    /// `record_decision`: the office writes the message, with this id and creation
    /// context (`traceparent`, see [`Message::traceparent`]).
    Written(MessageId, Option<String>),
}

/// A decided decision call.
#[derive(Clone, Debug, PartialEq)]
pub struct Decided {
    /// What the call did, and the question after it.
    pub ruling: Ruling,
    /// Records to save.
    pub records: Vec<OfficeRecord>,
    /// The DECISION message delivered to the asker, when one is.
    pub post: Option<Post>,
}

/// A question escalated because it waited too long.
#[derive(Clone, Debug, PartialEq)]
pub struct Escalated {
    /// The question after escalation.
    pub question: QuestionState,
    /// The CRITICAL message that carries it to its new decider.
    pub post: Post,
    /// Records to save (the question, and the post's).
    pub records: Vec<OfficeRecord>,
}

#[derive(Clone, Debug, Default)]
struct Inbox {
    /// Unacknowledged copies per priority (indexed by rank), by position.
    levels: [BTreeMap<u64, MessageId>; 4],
    /// Waiting consumers by position.
    waiters: BTreeMap<u64, String>,
}

impl Inbox {
    fn len(&self) -> usize {
        self.levels.iter().map(BTreeMap::len).sum()
    }
}

/// The bus's whole state.
#[derive(Clone, Debug, Default)]
pub struct PostOffice {
    config: OfficeConfig,
    messages: HashMap<MessageId, Posted>,
    questions: HashMap<MessageId, QuestionState>,
    /// Escalation messages, to the question they escalate: a decision on either decides it.
    escalated: HashMap<MessageId, MessageId>,
    waiters: HashMap<String, Waiter>,
    inboxes: HashMap<Principal, Inbox>,
    totals: Totals,
}

/// Builds a delivery id; ids and owner tokens never contain a dot.
fn delivery_id(message: &MessageId, owner: &Principal, attempt: u32) -> String {
    format!("{message}.{}.{attempt}", owner.token())
}

/// Splits a delivery id into message, owner token and attempt.
fn parse_delivery(id: &str) -> Option<(MessageId, &str, u32)> {
    let mut parts = id.split('.');
    let (m, o, a) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    Some((MessageId::new(m).ok()?, o, a.parse().ok()?))
}

fn deliverable(copy: &Copy, now: Timestamp) -> bool {
    match &copy.state {
        CopyState::Queued { not_before } => not_before.is_none_or(|t| t <= now),
        CopyState::InFlight { until, .. } => *until <= now,
        CopyState::Acked { .. } => false,
    }
}

impl PostOffice {
    /// An empty office.
    pub fn new(config: OfficeConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// The settings.
    pub fn config(&self) -> &OfficeConfig {
        &self.config
    }

    /// A message in the working set.
    pub fn message(&self, id: &MessageId) -> Option<&Posted> {
        self.messages.get(id)
    }

    /// A question in the working set (by its id or an escalation's).
    pub fn question(&self, id: &MessageId) -> Option<&QuestionState> {
        let id = self.escalated.get(id).unwrap_or(id);
        self.questions.get(id)
    }

    /// Every question in the working set, in no order.
    pub fn questions(&self) -> impl Iterator<Item = &QuestionState> {
        self.questions.values()
    }

    /// The figures that outlive messages.
    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    /// Unacknowledged copies in `owner`'s inbox.
    pub fn queue_len(&self, owner: &Principal) -> usize {
        self.inboxes.get(owner).map_or(0, Inbox::len)
    }

    /// Every inbox with unacknowledged copies, and how many.
    pub fn queues(&self) -> impl Iterator<Item = (&Principal, usize)> {
        self.inboxes
            .iter()
            .map(|(o, i)| (o, i.len()))
            .filter(|(_, n)| *n > 0)
    }

    /// Open waiters.
    pub fn waiter(&self, id: &str) -> Option<&Waiter> {
        self.waiters.get(id)
    }

    // ---- folding ----------------------------------------------------------------------

    /// Folds a saved record in.
    pub fn apply(&mut self, record: OfficeRecord) {
        match record {
            OfficeRecord::Posted(p) => {
                if !self.messages.contains_key(&p.message.id) {
                    let t = &mut self.totals;
                    t.messages += 1;
                    *t.by_type.entry(p.message.kind).or_default() += 1;
                    *t.by_priority.entry(p.message.priority).or_default() += 1;
                }
                for c in &p.copies {
                    self.index_copy(&p.message.id, p.message.priority, c);
                }
                self.messages.insert(p.message.id.clone(), p);
            }
            OfficeRecord::Copy { message_id, copy } => {
                let Some(p) = self.messages.get_mut(&message_id) else {
                    return;
                };
                let priority = p.message.priority;
                match p.copy_mut(&copy.owner) {
                    Some(c) => *c = copy.clone(),
                    None => return,
                }
                self.index_copy(&message_id, priority, &copy);
            }
            OfficeRecord::Question(q) => {
                let before = self.questions.get(&q.question.id);
                let was_decided = before.is_some_and(|b| b.decision.is_some());
                let escalations_before = before.map_or(0, |b| b.escalations.len());
                if !was_decided && let Some(d) = &q.decision {
                    self.totals.decisions += 1;
                    let times = &mut self.totals.decision_times_ms;
                    times.push_back(d.decided_at.millis_since(q.question.created_at));
                    while times.len() > DECISION_TIME_SAMPLES {
                        times.pop_front();
                    }
                }
                self.totals.escalations +=
                    q.escalations.len().saturating_sub(escalations_before) as u64;
                for e in &q.escalations {
                    self.escalated
                        .insert(e.message_id.clone(), q.question.id.clone());
                }
                self.questions.insert(q.question.id.clone(), *q);
            }
            OfficeRecord::Waiting(w) => {
                self.totals.next_pos = self.totals.next_pos.max(w.pos + 1);
                self.inboxes
                    .entry(w.owner.clone())
                    .or_default()
                    .waiters
                    .insert(w.pos, w.id.clone());
                self.waiters.insert(w.id.clone(), w);
            }
            OfficeRecord::Left { waiter } => {
                if let Some(w) = self.waiters.remove(&waiter)
                    && let Some(i) = self.inboxes.get_mut(&w.owner)
                {
                    i.waiters.remove(&w.pos);
                }
            }
            OfficeRecord::Archived {
                messages,
                questions,
            } => {
                for id in messages {
                    if let Some(p) = self.messages.remove(&id) {
                        self.totals.archived += 1;
                        for c in &p.copies {
                            self.unindex_copy(&p.message, c);
                        }
                    }
                }
                for id in questions {
                    if let Some(q) = self.questions.remove(&id) {
                        for e in q.escalations {
                            self.escalated.remove(&e.message_id);
                        }
                    }
                }
            }
            OfficeRecord::Totals(t) => {
                let next = self.totals.next_pos.max(t.next_pos);
                self.totals = t;
                self.totals.next_pos = next;
            }
        }
    }

    fn index_copy(&mut self, id: &MessageId, priority: Priority, c: &Copy) {
        self.totals.next_pos = self.totals.next_pos.max(c.pos + 1);
        let level = &mut self.inboxes.entry(c.owner.clone()).or_default().levels[priority.rank()];
        if matches!(c.state, CopyState::Acked { .. }) {
            level.remove(&c.pos);
        } else {
            level.insert(c.pos, id.clone());
        }
    }

    fn unindex_copy(&mut self, m: &Message, c: &Copy) {
        if let Some(i) = self.inboxes.get_mut(&c.owner) {
            i.levels[m.priority.rank()].remove(&c.pos);
            if i.len() == 0 && i.waiters.is_empty() {
                self.inboxes.remove(&c.owner);
            }
        }
    }

    /// The records that rebuild this office from empty (a snapshot), copied: questions,
    /// messages, waiters, and the figures last (they replace the counts the messages made
    /// on the way).
    pub fn records(&self) -> Vec<Arc<OfficeRecord>> {
        let questions = self
            .questions
            .values()
            .map(|q| OfficeRecord::Question(Box::new(q.clone())));
        let posted = self
            .messages
            .values()
            .map(|p| OfficeRecord::Posted(p.clone()));
        let waiting = self
            .waiters
            .values()
            .map(|w| OfficeRecord::Waiting(w.clone()));
        questions
            .chain(posted)
            .chain(waiting)
            .chain([OfficeRecord::Totals(self.totals.clone())])
            .map(Arc::new)
            .collect()
    }
}

mod batch;
mod command;
mod deliver;
mod escalate;
mod housekeeping;
mod notices;
mod question;
mod react;

pub use batch::Batch;
pub use command::{
    BusEffect, Command, Conflict, Event, ScopeRequest, Wait, escalation_id, ruling_audit_kind,
};
pub use notices::{
    RefusedWork, SCALING_QUESTION, SCOPE_REASON, ScalingHeld, SpawnRefused, conflict_question,
    operator_alert, scaling_question, scope_question, spawn_cap_question, system_alert,
    waiting_notice,
};
pub use react::reaction_id;
