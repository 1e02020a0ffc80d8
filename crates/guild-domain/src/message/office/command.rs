//! The post office decides like the registry and the board: each [`Command`] is checked
//! against the office (and the spawner's registry, for routing and authority) and answered
//! with the [`BusEffect`]s to carry out, or a [`Rejection`] that changes nothing.
//! [`Batch`](super::Batch) decides several commands in one pass, each against the effects
//! of those before it, none committed yet.

use super::*;
use crate::Effect;
use crate::Rejection;
use crate::agent::Registry;
use crate::audit::{Audit, AuditData, AuditKind};
use crate::id::{AgentId, MessageId, MissionId, Principal, ReservationId};
use crate::message::{
    DecisionInput, Draft, Message, MessageType, QuestionState, Recipient, Routed, RulingKind,
    address,
};
use crate::mission::Event as MissionEvent;
use crate::time::Timestamp;

/// What a bus decision asks the service to do.
pub type BusEffect = Effect<OfficeRecord, Event>;

/// What a bus decision tells, besides its records.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A message stored: its entries in the inbox log, one per recipient.
    Posted {
        /// The message as stored (boxed: the other variants are small).
        message: Box<Message>,
        /// Its inboxes.
        recipients: Vec<Recipient>,
    },
    /// A message handed to the consume call that asked for it (or to the wait revisited).
    Delivered(Box<Delivery>),
    /// The ruling of a decision call (the call's answer): what it did, and the question
    /// after it.
    Ruled {
        /// What the call did.
        kind: RulingKind,
        /// The question after it.
        question: Box<QuestionState>,
    },
}

/// The kinds of conflict the bus escalates instead of letting the last writer win. Its
/// name is the conflict question's `conflict`: while one is open, the same conflict asks no
/// more.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Conflict {
    /// A handoff of a task the sender does not hold (handed off already, or never its own).
    HandoffOfATaskNotHeld,
    /// A claim on a mission another agent runs.
    TwoClaimsOnOneTask,
}

impl Conflict {
    /// The name, as the question's payload gives it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Conflict::HandoffOfATaskNotHeld => "handoff_of_a_task_not_held",
            Conflict::TwoClaimsOnOneTask => "two_claims_on_one_task",
        }
    }
}

/// Work refused for an agent's budget, owned (a [`Command`] carries it).
#[derive(Clone, Debug, PartialEq)]
pub enum ScopeRequest {
    /// A message for the agent from `by` (the command's principal), refused by the bus.
    Message(Draft),
    /// A reservation for the agent, refused by spawner-svc (its `budget_exceeded` event).
    Reservation {
        /// Who asked for it.
        by: Principal,
        /// Its id.
        reservation: ReservationId,
        /// Tokens asked for.
        requested: u64,
        /// Tokens left where it fell short.
        remaining: u64,
        /// The mission whose budget fell short, when it was the mission's.
        mission: Option<MissionId>,
    },
    /// A spawn under the agent, refused by a spawn cap (spawner-svc's
    /// `spawn_cap_reached` event).
    Spawn(crate::message::SpawnRefused),
    /// A scale-up of the agent's scaling policy, held short by a rule (spawner-svc's
    /// `scaling_blocked` event).
    Scaling(crate::message::ScalingHeld),
}

impl ScopeRequest {
    /// The `reason` its question gives, one open question per agent and reason: a
    /// spawn cap's or a held scale-up's rule, so each rule is asked about on its own.
    pub fn reason(&self) -> &str {
        match self {
            ScopeRequest::Message(_) | ScopeRequest::Reservation { .. } => SCOPE_REASON,
            ScopeRequest::Spawn(s) => s.cap.rule(),
            ScopeRequest::Scaling(held) => &held.rule,
        }
    }
}

/// A wait a consume call that finds nothing registers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wait {
    /// Its id, chosen by the instance holding the call.
    pub id: String,
    /// When it gives up.
    pub until: Timestamp,
}

/// Everything the bus can be asked to change. Ids and trace contexts come in (no
/// randomness in the domain); `traceparent` is the creation context a new message carries.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Routes a draft from `by` and stores it (request, question, alert, handoff, reply).
    /// A retry with the same id by the same sender changes nothing (its first receipt is
    /// the answer); another sender's message with that id refuses it.
    Send {
        /// The message.
        draft: Draft,
        /// Its id.
        id: MessageId,
        /// Its creation context.
        traceparent: Option<String>,
    },
    /// A decision call on `question` by `by`: a reply with `is_decision` (its draft), or
    /// `record_decision` (the office writes the DECISION message, with `id`).
    Decide {
        /// The question (or an escalation of it).
        question: MessageId,
        /// The choice, rationale and impact.
        input: DecisionInput,
        /// The reply's draft, for a reply with `is_decision`.
        reply: Option<Draft>,
        /// The DECISION message's id.
        id: MessageId,
        /// Its creation context.
        traceparent: Option<String>,
    },
    /// Work for `agent` was refused for its budget: it asks its orchestrator (or the
    /// operator) for a scope decision, unless such a question of its is open already.
    AskForScope {
        /// Whose budget fell short.
        agent: AgentId,
        /// What was refused.
        refused: ScopeRequest,
        /// The question's id.
        id: MessageId,
        /// Its creation context.
        traceparent: Option<String>,
    },
    /// `from` tried to hand off `task`, which it does not hold (`holder` does): a CRITICAL
    /// question to its orchestrator, audited as a conflict, unless the same is open.
    EscalateHandoff {
        /// The sender of the refused handoff.
        from: AgentId,
        /// The task.
        task: MissionId,
        /// Who holds it, as mission-svc said.
        holder: Option<AgentId>,
        /// The intended receiver.
        to: AgentId,
        /// The question's id.
        id: MessageId,
        /// Its creation context.
        traceparent: Option<String>,
    },
    /// A mission event the bus reacts to: a mission failed for good (an ALERT to every
    /// live agent), a claim conflict (a question to the claimant's orchestrator), a mission
    /// waiting for an agent after a loss (a notice to the lost agent's orchestrator). Ids
    /// derive from the event, so a redelivered event changes nothing.
    React(Box<MissionEvent>),
    /// A message from Guild itself, posted once: nothing when its id is in the working set.
    Notify(Box<Routed>),
    /// Hands `by` its next message (of `kinds`, when given), or registers `wait` when
    /// nothing is deliverable now.
    Consume {
        /// Only these types (every type when empty).
        kinds: Vec<MessageType>,
        /// The wait to register when nothing is deliverable, if the call waits.
        wait: Option<Wait>,
    },
    /// Looks at a wait again: serves it if something became deliverable, ends it when its
    /// time is up, or at once when `stopping`.
    Revisit {
        /// The wait.
        waiter: String,
        /// The service is stopping: the wait ends now.
        stopping: bool,
    },
    /// Acknowledges one of `by`'s deliveries.
    Ack {
        /// The delivery.
        delivery_id: String,
    },
    /// Gives one of `by`'s deliveries back, to be delivered again after `delay_ms`.
    Nak {
        /// The delivery.
        delivery_id: String,
        /// How long before it is delivered again.
        delay_ms: u64,
    },
    /// Escalates every question whose decision is overdue, one level up, each audited.
    EscalateOverdue,
    /// Ends waits whose time is more than `grace_ms` past (their instance died).
    EndAbandonedWaits {
        /// How long past its time a wait may stay.
        grace_ms: u64,
    },
    /// Moves at most `limit` settled messages and questions past the retention window out.
    Archive {
        /// How many of each, at most.
        limit: usize,
    },
}

impl Command {
    /// The scope question a refusal of this command asks: work for an agent whose budget
    /// is exhausted (a message to it, refused by routing) asks that agent's orchestrator
    /// (or the operator) for a scope decision ([`Command::AskForScope`]). `None` for every
    /// other refusal.
    pub fn asks_for_scope(&self, rejection: &Rejection) -> Option<(AgentId, ScopeRequest)> {
        match (self, rejection) {
            (Command::Send { draft, .. }, Rejection::BudgetExhausted { .. }) => {
                let agent = draft.to.as_ref().and_then(Principal::agent)?;
                Some((agent.clone(), ScopeRequest::Message(draft.clone())))
            }
            _ => None,
        }
    }
}

/// The id of the `level`th escalation of question `q`: derived, so two instances sweeping
/// at once cannot escalate twice.
pub fn escalation_id(q: &MessageId, level: usize) -> MessageId {
    MessageId::new(format!("{q}-esc-{level}")).unwrap_or_else(|_| q.clone())
}

/// Effects that post `post`: its records, then its inbox-log entries.
pub(super) fn posting(post: Post) -> Vec<BusEffect> {
    let Post {
        records,
        message,
        recipients,
        served: _,
    } = post;
    let mut out: Vec<BusEffect> = records.into_iter().map(Effect::Save).collect();
    out.push(Effect::Emit(Event::Posted {
        message: Box::new(message),
        recipients,
    }));
    out
}

pub(super) fn audit(
    kind: AuditKind,
    actor: &Principal,
    about: &str,
    mission_id: Option<MissionId>,
    data: AuditData,
) -> BusEffect {
    Effect::Audit(Box::new(Audit {
        kind,
        actor: actor.clone(),
        about: about.to_owned(),
        mission_id,
        data,
    }))
}

/// The audit kind of a ruling: every call that changes a decision is kept.
pub fn ruling_audit_kind(kind: RulingKind) -> Option<AuditKind> {
    match kind {
        RulingKind::Decided => Some(AuditKind::Decision),
        RulingKind::Completed => Some(AuditKind::DecisionCompleted),
        RulingKind::Overridden => Some(AuditKind::DecisionOverride),
        RulingKind::Unchanged => None,
    }
}

impl PostOffice {
    /// Decides `command`, made by `by` at `now`, reading `registry` for routing and
    /// authority. Pure: the office is not changed; the caller saves the records (all or
    /// nothing) and then [`apply`](Self::apply)s them.
    pub fn decide(
        &self,
        registry: &Registry,
        by: &Principal,
        command: &Command,
        now: Timestamp,
    ) -> Result<Vec<BusEffect>, Rejection> {
        match command {
            Command::Send {
                draft,
                id,
                traceparent,
            } => {
                if let Some(p) = self.message(id) {
                    return if &p.message.from == by {
                        Ok(Vec::new())
                    } else {
                        Err(Rejection::MessageExists { id: id.clone() })
                    };
                }
                let original = match &draft.in_reply_to {
                    Some(r) => Some(self.original(by, r)?),
                    None => None,
                };
                let mut routed = address(registry, by, draft, original, id.clone(), now)?;
                routed.message.traceparent.clone_from(traceparent);
                Ok(posting(self.post(routed, now)))
            }
            Command::Decide {
                question,
                input,
                reply,
                id,
                traceparent,
            } => {
                let message = match reply {
                    Some(draft) => {
                        let original = self.original(by, question)?;
                        let mut routed =
                            address(registry, by, draft, Some(original), id.clone(), now)?;
                        routed.message.traceparent.clone_from(traceparent);
                        DecisionMessage::Reply(routed)
                    }
                    None => DecisionMessage::Written(id.clone(), traceparent.clone()),
                };
                let decided = self.decide_question(registry, by, question, input, message, now)?;
                let Decided {
                    ruling,
                    records,
                    post,
                } = decided;
                let mut out: Vec<BusEffect> = records.into_iter().map(Effect::Save).collect();
                if let Some(post) = post {
                    out.push(Effect::Emit(Event::Posted {
                        message: Box::new(post.message),
                        recipients: post.recipients,
                    }));
                }
                if let (Some(kind), Some(record)) =
                    (ruling_audit_kind(ruling.kind), &ruling.state.decision)
                {
                    out.push(audit(
                        kind,
                        by,
                        record.question_id.as_str(),
                        record.mission_id.clone(),
                        AuditData::Decision(record.clone()),
                    ));
                }
                out.push(Effect::Emit(Event::Ruled {
                    kind: ruling.kind,
                    question: Box::new(ruling.state),
                }));
                Ok(out)
            }
            Command::AskForScope {
                agent,
                refused,
                id,
                traceparent,
            } => {
                if self.open_question_for(agent, refused.reason()).is_some() {
                    return Ok(Vec::new());
                }
                let question = match refused {
                    ScopeRequest::Spawn(spawn) => {
                        spawn_cap_question(registry, agent, spawn, id.clone(), now)
                    }
                    ScopeRequest::Scaling(held) => {
                        scaling_question(registry, agent, held, id.clone(), now)
                    }
                    ScopeRequest::Message(draft) => scope_question(
                        registry,
                        agent,
                        RefusedWork::Message { from: by, draft },
                        id.clone(),
                        now,
                    ),
                    ScopeRequest::Reservation {
                        by,
                        reservation,
                        requested,
                        remaining,
                        mission,
                    } => {
                        let work = RefusedWork::Reservation {
                            by,
                            reservation,
                            requested: *requested,
                            remaining: *remaining,
                            mission: mission.as_ref(),
                        };
                        scope_question(registry, agent, work, id.clone(), now)
                    }
                };
                let mut routed =
                    question.ok_or_else(|| Rejection::UnknownAgent { id: agent.clone() })?;
                routed.message.traceparent.clone_from(traceparent);
                Ok(posting(self.post(routed, now)))
            }
            Command::EscalateHandoff {
                from,
                task,
                holder,
                to,
                id,
                traceparent,
            } => {
                let conflict = Conflict::HandoffOfATaskNotHeld;
                if self
                    .open_conflict_question(from, task, conflict.as_str())
                    .is_some()
                {
                    return Ok(Vec::new());
                }
                let payload = serde_json::json!({
                    "conflict": conflict.as_str(),
                    "task_id": task,
                    "holder": holder,
                    "attempted_by": from,
                    "attempted_to": to,
                });
                let mut routed = conflict_question(
                    registry,
                    from,
                    format!("Conflict: {from} tried to hand off {task}, which it does not hold"),
                    payload.clone(),
                    Some(task.clone()),
                    id.clone(),
                    now,
                );
                routed.message.traceparent.clone_from(traceparent);
                let mut out = posting(self.post(routed, now));
                out.push(audit(
                    AuditKind::Conflict,
                    &Principal::Agent(from.clone()),
                    task.as_str(),
                    Some(task.clone()),
                    AuditData::Facts(payload),
                ));
                Ok(out)
            }
            Command::React(event) => self.react(registry, event, now),
            Command::Notify(routed) => {
                if self.message(&routed.message.id).is_some() {
                    return Ok(Vec::new());
                }
                Ok(posting(self.post((**routed).clone(), now)))
            }
            Command::Consume { kinds, wait } => Ok(match self.consume(by, now, kinds) {
                Some((record, delivery)) => vec![
                    Effect::Save(record),
                    Effect::Emit(Event::Delivered(Box::new(delivery))),
                ],
                None => wait
                    .iter()
                    .map(|w| Effect::Save(self.wait(by, w.id.clone(), w.until, kinds.clone())))
                    .collect(),
            }),
            Command::Revisit { waiter, stopping } => {
                let Some(w) = self.waiter(waiter) else {
                    return Ok(Vec::new());
                };
                let until = if *stopping { now } else { w.until };
                let left = || OfficeRecord::Left {
                    waiter: waiter.clone(),
                };
                Ok(match self.revisit(waiter, now) {
                    Some((records, delivery)) => {
                        let mut out: Vec<BusEffect> =
                            records.into_iter().map(Effect::Save).collect();
                        out.extend(delivery.map(|d| Effect::Emit(Event::Delivered(Box::new(d)))));
                        out
                    }
                    None if until <= now => vec![Effect::Save(left())],
                    None => Vec::new(),
                })
            }
            Command::Ack { delivery_id } => Ok(self
                .ack(by, delivery_id, now)?
                .into_iter()
                .map(Effect::Save)
                .collect()),
            Command::Nak {
                delivery_id,
                delay_ms,
            } => Ok(self
                .nak(by, delivery_id, *delay_ms, now)?
                .into_iter()
                .map(Effect::Save)
                .collect()),
            Command::EscalateOverdue => {
                let due = self.escalations_due(registry, now, |q| {
                    escalation_id(q, self.question(q).map_or(0, |s| s.escalations.len()) + 1)
                });
                let mut out = Vec::new();
                for e in due {
                    let q = &e.question.question;
                    let facts = serde_json::json!({
                        "question": q.id,
                        "subject": q.subject,
                        "to": e.post.message.to,
                        "message_id": e.post.message.id,
                        "level": e.question.escalations.len(),
                    });
                    let entry = audit(
                        AuditKind::Escalation,
                        &q.from,
                        q.id.as_str(),
                        q.task_id.clone(),
                        AuditData::Facts(facts),
                    );
                    out.push(Effect::Emit(Event::Posted {
                        message: Box::new(e.post.message),
                        recipients: e.post.recipients,
                    }));
                    out.push(entry);
                    out.extend(e.records.into_iter().map(Effect::Save));
                }
                Ok(out)
            }
            Command::EndAbandonedWaits { grace_ms } => Ok(self
                .expired_waiters(now, *grace_ms)
                .into_iter()
                .map(|waiter| Effect::Save(OfficeRecord::Left { waiter }))
                .collect()),
            Command::Archive { limit } => Ok(self
                .archive_due(now, *limit)
                .into_iter()
                .map(Effect::Save)
                .collect()),
        }
    }
}
