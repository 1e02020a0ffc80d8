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
    DecisionInput, Escalation, Message, MessageType, Priority, QuestionState, Recipient, Routed,
    Ruling, StarvationPolicy, next_priority,
};
use crate::Rejection;
use crate::agent::{Action, Registry};
use crate::id::{AgentId, MessageId, Principal};
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
#[derive(Debug, Default)]
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

    // ---- delivery ---------------------------------------------------------------------

    /// The first deliverable copy of each priority in `owner`'s inbox (of `kinds`, when
    /// given), with its age.
    fn firsts(
        &self,
        owner: &Principal,
        now: Timestamp,
        kinds: &[MessageType],
    ) -> [Option<(&MessageId, Timestamp)>; 4] {
        let mut out = [None; 4];
        let Some(inbox) = self.inboxes.get(owner) else {
            return out;
        };
        for (rank, level) in inbox.levels.iter().enumerate() {
            out[rank] = level.values().find_map(|id| {
                let p = self.messages.get(id)?;
                let c = p.copy_for(owner)?;
                let wanted = kinds.is_empty() || kinds.contains(&p.message.kind);
                (wanted && deliverable(c, now)).then_some((id, p.message.created_at))
            });
        }
        out
    }

    /// What `owner` should be handed next: highest priority first, first in first out
    /// within a priority, except where the anti-starvation rule serves a lower priority
    /// that waited too long. `extra` is a message being posted in the same decision.
    fn pick<'a>(
        &'a self,
        owner: &Principal,
        now: Timestamp,
        kinds: &[MessageType],
        extra: Option<&'a Message>,
    ) -> Option<&'a MessageId> {
        let mut firsts = self.firsts(owner, now, kinds);
        if let Some(m) = extra.filter(|m| kinds.is_empty() || kinds.contains(&m.kind)) {
            let slot = &mut firsts[m.priority.rank()];
            if slot.is_none() {
                *slot = Some((&m.id, m.created_at));
            }
        }
        let oldest = firsts.map(|f| f.map(|(_, t)| t));
        let p = next_priority(&oldest, now, &self.config.starvation)?;
        firsts[p.rank()].map(|(id, _)| id)
    }

    fn deliver(
        &self,
        message: &Message,
        copy: &Copy,
        waiter: Option<&str>,
        now: Timestamp,
    ) -> (Copy, Delivery) {
        let next = Copy {
            owner: copy.owner.clone(),
            pos: copy.pos,
            attempts: copy.attempts + 1,
            state: CopyState::InFlight {
                until: now.plus_millis(self.config.ack_wait_ms),
                waiter: waiter.map(str::to_owned),
            },
        };
        let delivery = next.delivery(message);
        (next, delivery)
    }

    /// The seed's `consume`: hands `owner` its next message (of `kinds`, when given; the
    /// others stay queued for other consumers), or `None` when nothing is deliverable now.
    pub fn consume(
        &self,
        owner: &Principal,
        now: Timestamp,
        kinds: &[MessageType],
    ) -> Option<(OfficeRecord, Delivery)> {
        let id = self.pick(owner, now, kinds, None)?;
        let p = self.messages.get(id)?;
        let (copy, delivery) = self.deliver(&p.message, p.copy_for(owner)?, None, now);
        Some((
            OfficeRecord::Copy {
                message_id: id.clone(),
                copy,
            },
            delivery,
        ))
    }

    /// Registers a consume call that found nothing and will wait until `until` for a
    /// message (of `kinds`, when given).
    pub fn wait(
        &self,
        owner: &Principal,
        waiter: String,
        until: Timestamp,
        kinds: Vec<MessageType>,
    ) -> OfficeRecord {
        OfficeRecord::Waiting(Waiter {
            id: waiter,
            owner: owner.clone(),
            pos: self.totals.next_pos,
            until,
            kinds,
        })
    }

    /// Serves waiter `id` if a message became deliverable for it (a delivery's ack window
    /// ran out, or a delay passed), or ends it when its time is up. `None`: keep waiting.
    pub fn revisit(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Option<(Vec<OfficeRecord>, Option<Delivery>)> {
        let w = self.waiters.get(id)?;
        let left = OfficeRecord::Left {
            waiter: id.to_owned(),
        };
        if let Some(mid) = self.pick(&w.owner, now, &w.kinds, None)
            && let Some(p) = self.messages.get(mid)
            && let Some(c) = p.copy_for(&w.owner)
        {
            let (copy, delivery) = self.deliver(&p.message, c, Some(id), now);
            let record = OfficeRecord::Copy {
                message_id: mid.clone(),
                copy,
            };
            return Some((vec![record, left], Some(delivery)));
        }
        (w.until <= now).then(|| (vec![left], None))
    }

    /// Stores a routed message. Waiting consumers of its recipients are served in the
    /// same step: each gets what it would have consumed next, which is this message unless
    /// something ahead of it in that inbox became deliverable meanwhile.
    pub fn post(&self, routed: Routed, now: Timestamp) -> Post {
        let Routed {
            message,
            recipients,
        } = routed;
        let mut owners: Vec<Principal> =
            recipients.iter().filter_map(Recipient::principal).collect();
        owners.sort();
        owners.dedup();
        let mut next_pos = self.totals.next_pos;
        let mut copies: Vec<Copy> = owners
            .into_iter()
            .map(|owner| {
                next_pos += 1;
                Copy {
                    owner,
                    pos: next_pos - 1,
                    attempts: 0,
                    state: CopyState::Queued { not_before: None },
                }
            })
            .collect();
        let mut records = Vec::new();
        let mut served = Vec::new();
        for copy in &mut copies {
            // The longest-waiting consumer with something to take: this message, or one
            // ahead of it in the inbox.
            let Some((waiter, pick)) = self.inboxes.get(&copy.owner).and_then(|i| {
                i.waiters.values().find_map(|id| {
                    let w = self.waiters.get(id).filter(|w| w.until > now)?;
                    Some((id, self.pick(&copy.owner, now, &w.kinds, Some(&message))?))
                })
            }) else {
                continue;
            };
            if *pick == message.id {
                let (next, d) = self.deliver(&message, copy, Some(waiter), now);
                *copy = next;
                served.push((waiter.clone(), d));
            } else {
                let Some((p, c)) = self
                    .messages
                    .get(pick)
                    .and_then(|p| Some((p, p.copy_for(&copy.owner)?)))
                else {
                    continue;
                };
                let (next, d) = self.deliver(&p.message, c, Some(waiter), now);
                records.push(OfficeRecord::Copy {
                    message_id: pick.clone(),
                    copy: next,
                });
                served.push((waiter.clone(), d));
            }
            records.push(OfficeRecord::Left {
                waiter: waiter.clone(),
            });
        }
        let mut all = vec![OfficeRecord::Posted(Posted {
            message: message.clone(),
            copies,
        })];
        if message.kind == MessageType::Question {
            all.push(OfficeRecord::Question(Box::new(QuestionState::asked(
                message.clone(),
            ))));
        }
        all.extend(records);
        Post {
            records: all,
            message,
            recipients,
            served,
        }
    }

    /// Looks up a delivery of `owner`'s: the message and its copy.
    fn delivery(&self, owner: &Principal, id: &str) -> Result<(&Posted, &Copy, u32), Rejection> {
        let unknown = || Rejection::UnknownDelivery { id: id.to_owned() };
        let (mid, token, attempt) = parse_delivery(id).ok_or_else(unknown)?;
        if token != owner.token() {
            return Err(Rejection::Forbidden {
                actor: owner.to_string(),
                action: "ack".into(),
                reason: format!("delivery {id} went to {token}, not to you"),
            });
        }
        let p = self.messages.get(&mid).ok_or_else(unknown)?;
        let c = p.copy_for(owner).ok_or_else(unknown)?;
        if attempt == 0 || attempt > c.attempts {
            return Err(unknown());
        }
        Ok((p, c, attempt))
    }

    /// Acknowledges a delivery: done, never delivered again. Acknowledging twice, or an
    /// earlier attempt of a redelivered message, is not an error.
    pub fn ack(
        &self,
        owner: &Principal,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<OfficeRecord>, Rejection> {
        let (p, c, _) = self.delivery(owner, id)?;
        if matches!(c.state, CopyState::Acked { .. }) {
            return Ok(None);
        }
        Ok(Some(OfficeRecord::Copy {
            message_id: p.message.id.clone(),
            copy: Copy {
                state: CopyState::Acked { at: now },
                ..c.clone()
            },
        }))
    }

    /// Gives a delivery back: it is delivered again after `delay_ms`.
    pub fn nak(
        &self,
        owner: &Principal,
        id: &str,
        delay_ms: u64,
        now: Timestamp,
    ) -> Result<Option<OfficeRecord>, Rejection> {
        if delay_ms > MAX_NAK_DELAY_MS {
            return Err(Rejection::invalid(
                "delay_ms",
                format!("at most {MAX_NAK_DELAY_MS} ms (an hour)"),
            ));
        }
        let (p, c, attempt) = self.delivery(owner, id)?;
        match c.state {
            CopyState::Acked { .. } => Err(Rejection::invalid(
                "delivery_id",
                format!("delivery {id} was acknowledged; it cannot be given back"),
            )),
            // A stale attempt, or given back already: nothing to do.
            _ if attempt < c.attempts => Ok(None),
            CopyState::Queued { .. } => Ok(None),
            CopyState::InFlight { .. } => Ok(Some(OfficeRecord::Copy {
                message_id: p.message.id.clone(),
                copy: Copy {
                    state: CopyState::Queued {
                        not_before: (delay_ms > 0).then(|| now.plus_millis(delay_ms)),
                    },
                    ..c.clone()
                },
            })),
        }
    }

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
            return Err(Rejection::Forbidden {
                actor: replier.to_string(),
                action: "reply".into(),
                reason: format!("message {id} was not addressed to you"),
            });
        }
        Ok((&p.message.kind, &p.message.from))
    }

    /// A decision on question `id` (or on an escalation of it) by `approver`; `message` is
    /// the DECISION message delivered when the call decides.
    pub fn decide(
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
                    .authorize(a, Action::RecordDecision.as_str(), None)
                    .map_err(|e| rename_action(e, a, Action::RecordDecision))?;
                registry
                    .agent(a)
                    .is_some_and(|p| p.authority.can_override_decisions)
                    && registry
                        .authorize(a, Action::OverrideDecision.as_str(), None)
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
                    .take(super::MAX_SUBJECT_CHARS)
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

    /// An open question `agent` asked about its exhausted budget, if there is one.
    pub fn open_scope_question(&self, agent: &AgentId) -> Option<&QuestionState> {
        self.questions.values().find(|q| {
            q.decision.is_none()
                && q.question.from.agent() == Some(agent)
                && q.question.payload.get("reason").and_then(|r| r.as_str()) == Some(SCOPE_REASON)
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

/// The `reason` of the question an agent asks its orchestrator when work was refused for
/// its exhausted budget (the seed's scope-reduction example).
pub const SCOPE_REASON: &str = "token_budget_exceeded";

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
    decision: Option<&super::DecisionRecord>,
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
                .take(super::MAX_SUBJECT_CHARS)
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

/// Work refused for an agent's budget, which its scope question describes.
#[derive(Clone, Copy, Debug)]
pub enum RefusedWork<'a> {
    /// A message for the agent (bus-svc refused it: the budget is used up).
    Message {
        /// Its sender.
        from: &'a Principal,
        /// The message.
        draft: &'a super::Draft,
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
    let to = registry
        .orchestrator_of(agent)
        .map_or(Recipient::Operator, |o| Recipient::Agent(o.clone()));
    let message = Message {
        id,
        kind: MessageType::Question,
        from: Principal::Agent(agent.clone()),
        to: to.clone(),
        subject: "Scope reduction needed?".into(),
        payload: serde_json::json!({
            "reason": SCOPE_REASON,
            "current_spend": profile.budget.used,
            "budget": profile.budget.allocated,
            "refused": what,
            "options": ["reallocate_budget", "reduce_scope", "pause"],
        }),
        priority: Priority::High,
        task_id: task,
        in_reply_to: None,
        requires_decision: true,
        is_critical: false,
        decision_deadline_ms: None,
        created_at: now,
        traceparent: None,
    };
    Some(Routed {
        message,
        recipients: vec![to],
    })
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
            subject: subject.chars().take(super::MAX_SUBJECT_CHARS).collect(),
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
                .take(super::MAX_SUBJECT_CHARS)
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
            subject: subject.chars().take(super::MAX_SUBJECT_CHARS).collect(),
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
            subject: subject.chars().take(super::MAX_SUBJECT_CHARS).collect(),
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
