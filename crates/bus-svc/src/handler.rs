//! Requests in, decisions made, entries appended, replies out.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use guild_domain::agent::{self, Registry};
use guild_domain::message::{
    BusEffect, Command, Delivery, Event, Message, OfficeRecord, PostOffice, QuestionState,
    Recipient, RulingKind,
};
use guild_domain::{AgentId, Effect, MessageId, Principal, Rejection, Timestamp};
use guild_sdk::Guild;
use guild_service::{Committed, Outgoing, Planned, Refused, State};
use guild_store::{AuditLog, Journal};
use guild_wire::api::bus as api;
use guild_wire::api::{Empty, Failure};
use guild_wire::audit::{self, AuditKind, AuditRecord, LoggedDecision, VerifyReport};
use guild_wire::{ErrorBody, header, subject};
use tokio::sync::watch;

use crate::Config;
use crate::consume::Wakers;

/// The bus's request handler (and the background loops' way in).
#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

struct Inner {
    /// For calls to mission-svc (HANDOFF).
    client: async_nats::Client,
    js: jetstream::Context,
    state: State<PostOffice, OfficeRecord>,
    /// The spawner's registry, followed read-only: routing and authority.
    registry: Journal<Registry, agent::Record>,
    audit: AuditLog,
    wakers: Wakers,
    config: Config,
    stop: watch::Sender<bool>,
}

/// A message's entries in the inbox log, one per recipient, under its priority's subject,
/// carrying the message's creation context (`traceparent`) when it has one.
fn deliveries(m: &Message, recipients: &[Recipient], out: &mut Outgoing) {
    let headers = || {
        let mut h = vec![
            (header::PRIORITY.into(), m.priority.as_str().into()),
            (header::MESSAGE_TYPE.into(), m.kind.as_str().into()),
            (header::MESSAGE_ID.into(), m.id.to_string()),
            (header::FROM.into(), m.from.token().into()),
        ];
        if let Some(tp) = &m.traceparent {
            h.push((header::TRACEPARENT.into(), tp.clone()));
        }
        h
    };
    for r in recipients {
        if let Some(owner) = r.principal() {
            out.event_with_headers(subject::inbox(&owner, m.priority), m, headers());
        }
    }
}

/// What a bus decision tells its caller, besides what it saves and publishes.
#[derive(Debug, Default)]
pub(crate) struct Told {
    /// How many records it saves.
    pub(crate) saved: usize,
    /// The messages it stored, with their inboxes.
    pub(crate) posted: Vec<(Message, Vec<Recipient>)>,
    /// The delivery handed to the caller (consume, a wait revisited).
    pub(crate) delivered: Option<Delivery>,
    /// A decision call's ruling: what it did, and the question after it.
    pub(crate) ruled: Option<(RulingKind, QuestionState)>,
}

/// A decision's effects, translated: the records to save, the inbox-log entries and audit
/// entries to publish, and what the caller is told.
fn translate(effects: Vec<BusEffect>, now: Timestamp) -> (Vec<OfficeRecord>, Outgoing, Told) {
    let mut records = Vec::new();
    let mut out = Outgoing::new(now);
    let mut told = Told::default();
    for effect in effects {
        match effect {
            Effect::Save(r) => records.push(r),
            Effect::Emit(Event::Posted {
                message,
                recipients,
            }) => {
                deliveries(&message, &recipients, &mut out);
                told.posted.push((*message, recipients));
            }
            Effect::Emit(Event::Delivered(d)) => told.delivered = Some(*d),
            Effect::Emit(Event::Ruled { kind, question }) => told.ruled = Some((kind, *question)),
            Effect::Audit(a) => out.audit(a.kind, &a.actor, &a.about, a.mission_id, &a.data),
        }
    }
    told.saved = records.len();
    (records, out, told)
}

/// A failed bus operation: the error to answer, and the domain's refusal when it was one
/// (typed, so a caller can follow a refusal up without reading its rule's name).
#[derive(Debug)]
pub(crate) struct Declined {
    pub(crate) error: ErrorBody,
    pub(crate) rejection: Option<Rejection>,
}

impl From<Declined> for ErrorBody {
    fn from(d: Declined) -> Self {
        d.error
    }
}

/// The domain's refusal stays typed to the router (its denial record already made).
impl From<Declined> for Failure {
    fn from(d: Declined) -> Self {
        match d.rejection {
            Some(rejection) => Failure::Rejected(rejection),
            None => Failure::Body(d.error),
        }
    }
}

impl Bus {
    pub(crate) fn new(
        client: async_nats::Client,
        js: jetstream::Context,
        state: State<PostOffice, OfficeRecord>,
        registry: Journal<Registry, agent::Record>,
        audit: AuditLog,
        wakers: Wakers,
        config: Config,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                js,
                state,
                registry,
                audit,
                wakers,
                config,
                stop: watch::channel(false).0,
            }),
        }
    }

    pub(crate) fn config(&self) -> &Config {
        &self.inner.config
    }

    pub(crate) fn state(&self) -> &State<PostOffice, OfficeRecord> {
        &self.inner.state
    }

    pub(crate) fn registry(&self) -> &Journal<Registry, agent::Record> {
        &self.inner.registry
    }

    pub(crate) fn js(&self) -> &jetstream::Context {
        &self.inner.js
    }

    pub(crate) fn wakers(&self) -> &Wakers {
        &self.inner.wakers
    }

    /// Ends waiting consumes and background loops.
    pub(crate) fn stop(&self) {
        self.inner.stop.send_replace(true);
    }

    /// Changes when the service begins to stop.
    pub(crate) fn stopping(&self) -> watch::Receiver<bool> {
        self.inner.stop.subscribe()
    }

    /// A client of the other services, acting as `by`.
    pub(crate) fn guild(&self, by: &Principal) -> Guild {
        Guild::new(self.inner.client.clone())
            .acting_as(by.clone())
            .with_timeout(Duration::from_secs(5))
    }

    /// Catches the followed registry up when a request names an agent it has not seen
    /// yet (spawned a moment ago): one round trip, only then.
    pub(crate) async fn know(&self, agents: &[&AgentId]) -> Result<(), ErrorBody> {
        let unknown = self
            .registry()
            .read(|r| agents.iter().any(|a| r.agent(a).is_none()));
        if unknown {
            self.registry()
                .sync()
                .await
                .map_err(|e| ErrorBody::from(&e))?;
        }
        Ok(())
    }

    /// Only a known agent, or the operator, has an inbox.
    pub(crate) async fn check_inbox_owner(&self, owner: &Principal) -> Result<(), ErrorBody> {
        let Principal::Agent(id) = owner else {
            return Ok(());
        };
        self.know(&[id]).await?;
        if self.registry().read(|r| r.agent(id).is_none()) {
            return Err(ErrorBody::from(Rejection::UnknownAgent { id: id.clone() }));
        }
        Ok(())
    }

    /// Decides `command` for `by` and commits its effects, the way every bus operation
    /// changes the office; `answer` reads what the caller is told from the office the
    /// command was decided on and what the decision told. An authority refusal is recorded
    /// as a denial, like every service's.
    pub(crate) async fn execute<T>(
        &self,
        by: &Principal,
        command: &Command,
        now: Timestamp,
        answer: impl Fn(&PostOffice, Told) -> Result<T, ErrorBody>,
    ) -> Result<Committed<T>, Declined> {
        let mut refused = None;
        let committed = self
            .state()
            .commit(|office| {
                let decided = self
                    .registry()
                    .read(|reg| office.decide(reg, by, command, now));
                match decided {
                    Ok(effects) => {
                        refused = None;
                        let (records, outgoing, told) = translate(effects, now);
                        Ok(Planned {
                            records,
                            outgoing,
                            result: answer(office, told)?,
                        })
                    }
                    Err(rejection) => {
                        let denied = Refused::denied(by, &rejection, None);
                        refused = Some(rejection);
                        Err(denied)
                    }
                }
            })
            .await;
        committed.map_err(|error| Declined {
            error: error.into(),
            rejection: refused,
        })
    }

    async fn ack(&self, by: &Principal, r: api::Ack) -> Result<(), ErrorBody> {
        let ack = Command::Ack {
            delivery_id: r.delivery_id,
        };
        self.execute(by, &ack, guild_service::now(), |_, _| Ok(()))
            .await?;
        Ok(())
    }

    async fn nak(&self, by: &Principal, r: api::Nak) -> Result<(), ErrorBody> {
        let nak = Command::Nak {
            delivery_id: r.delivery_id,
            delay_ms: r.delay_ms,
        };
        self.execute(by, &nak, guild_service::now(), |_, _| Ok(()))
            .await?;
        Ok(())
    }

    /// Decisions from the audit log matching `q` that `by` may read (an agent: those
    /// concerning itself or its subtree, like every audit record), oldest first.
    async fn decisions(
        &self,
        by: &Principal,
        q: &api::DecisionQuery,
    ) -> Result<Vec<LoggedDecision>, ErrorBody> {
        let kinds = [
            AuditKind::Decision,
            AuditKind::DecisionCompleted,
            AuditKind::DecisionOverride,
        ];
        let stored = self
            .inner
            .audit
            .read(&kinds)
            .await
            .map_err(|e| ErrorBody::from(&e))?;
        let readable: Vec<(u64, AuditRecord)> = stored
            .iter()
            .filter_map(|(seq, bytes)| match serde_json::from_slice(bytes) {
                Ok(r) => Some((*seq, r)),
                Err(e) => {
                    // The chain check (`verify_audit`) reports it; the history goes on.
                    tracing::warn!(audit_seq = seq, error = %e, "unreadable audit record left out of the decision history");
                    guild_telemetry::metrics::count_error("audit_record_unreadable");
                    None
                }
            })
            .collect();
        let readable: Vec<(u64, AuditRecord)> = self.inner.registry.read(|reg| {
            readable
                .into_iter()
                .filter(|(_, r)| reg.may_read_about(by, &concerned(r)))
                .collect()
        });
        let out: Vec<LoggedDecision> = readable
            .into_iter()
            .filter_map(|(audit_seq, r)| {
                let record = r.decision()?;
                Some(LoggedDecision {
                    audit_seq,
                    kind: r.entry.kind,
                    record,
                })
            })
            .filter(|d| {
                q.agent
                    .as_ref()
                    .is_none_or(|a| &d.record.asker == a || &d.record.approver == a)
            })
            .filter(|d| {
                q.mission_id
                    .as_ref()
                    .is_none_or(|m| d.record.mission_id.as_ref() == Some(m))
            })
            .filter(|d| q.since.is_none_or(|t| d.record.decided_at >= t))
            .filter(|d| q.until.is_none_or(|t| d.record.decided_at < t))
            .collect();
        Ok(newest(out, q.limit))
    }
}

/// The agents an audit record concerns: who acted, the agent it is about (its `about` is
/// an agent's id, or a mission's or question's, which name no agent), and a decision's
/// asker and approver.
fn concerned(record: &AuditRecord) -> Vec<AgentId> {
    let entry = &record.entry;
    let mut agents: Vec<AgentId> = entry.actor.agent().cloned().into_iter().collect();
    agents.extend(AgentId::new(&entry.about).ok());
    if let Some(d) = record.decision() {
        agents.extend(
            [d.asker, d.approver]
                .iter()
                .filter_map(|p| p.agent().cloned()),
        );
    }
    agents
}

/// The last `limit` of `items` (default 1000): lists are oldest first, so the newest stay.
fn newest<T>(mut items: Vec<T>, limit: Option<u32>) -> Vec<T> {
    let skip = items.len().saturating_sub(limit.unwrap_or(1000) as usize);
    items.drain(..skip);
    items
}

impl Bus {
    /// The audit records matching `q` that `by` may read, oldest first. A stored record
    /// that does not parse is an error naming its sequence, never skipped.
    async fn audit_records_for(
        &self,
        by: &Principal,
        q: &api::AuditQuery,
    ) -> Result<Vec<AuditRecord>, ErrorBody> {
        let stored = self
            .inner
            .audit
            .read(&q.kinds)
            .await
            .map_err(|e| ErrorBody::from(&e))?;
        let mut records = Vec::new();
        for (seq, bytes) in stored {
            let record: AuditRecord = serde_json::from_slice(&bytes).map_err(|e| {
                ErrorBody::internal(format!("audit record {seq} does not parse: {e}"))
            })?;
            let e = &record.entry;
            if q.about.as_ref().is_some_and(|a| a != &e.about)
                || q.since.is_some_and(|t| e.at < t)
                || q.until.is_some_and(|t| e.at >= t)
            {
                continue;
            }
            records.push(record);
        }
        let readable = self.inner.registry.read(|reg| {
            records
                .into_iter()
                .filter(|r| reg.may_read_about(by, &concerned(r)))
                .collect()
        });
        Ok(newest(readable, q.limit))
    }
}

/// The sending operations' bodies are `Bus`'s methods of the same names in `send.rs` and
/// `consume.rs` (taking `by` by reference): `Bus::request(self, ..)` below is that
/// method, not this one (an inherent method comes before a trait's).
impl api::Handler for Bus {
    async fn request(&self, by: Principal, r: api::SendRequest) -> Result<api::Receipt, Failure> {
        Ok(Bus::request(self, &by, r).await?)
    }

    async fn ask_question(
        &self,
        by: Principal,
        r: api::AskQuestion,
    ) -> Result<api::Receipt, Failure> {
        Ok(self.ask(&by, r).await?)
    }

    async fn alert(&self, by: Principal, r: api::RaiseAlert) -> Result<api::Receipt, Failure> {
        Ok(Bus::alert(self, &by, r).await?)
    }

    async fn handoff(&self, by: Principal, r: api::Handoff) -> Result<api::Receipt, Failure> {
        Ok(Bus::handoff(self, &by, r).await?)
    }

    async fn reply(&self, by: Principal, r: api::Reply) -> Result<api::Receipt, Failure> {
        Ok(Bus::reply(self, &by, r).await?)
    }

    async fn record_decision(
        &self,
        by: Principal,
        r: api::RecordDecision,
    ) -> Result<api::DecisionOutcome, Failure> {
        Ok(Bus::record_decision(self, &by, r).await?)
    }

    async fn consume(&self, by: Principal, r: api::Consume) -> Result<api::Consumed, Failure> {
        Ok(Bus::consume(self, by, r.timeout_ms, r.types).await?)
    }

    async fn ack(&self, by: Principal, r: api::Ack) -> Result<Empty, Failure> {
        Bus::ack(self, &by, r).await?;
        Ok(Empty {})
    }

    async fn nak(&self, by: Principal, r: api::Nak) -> Result<Empty, Failure> {
        Bus::nak(self, &by, r).await?;
        Ok(Empty {})
    }

    async fn get_message_stats(
        &self,
        _by: Principal,
        _: Empty,
    ) -> Result<api::MessageStats, Failure> {
        Ok(self.state().read(PostOffice::stats).await?)
    }

    async fn decision_history(
        &self,
        by: Principal,
        q: api::DecisionQuery,
    ) -> Result<api::DecisionList, Failure> {
        Ok(api::DecisionList {
            decisions: self.decisions(&by, &q).await?,
        })
    }

    async fn verify_audit(&self, _by: Principal, _: Empty) -> Result<VerifyReport, Failure> {
        Ok(self
            .inner
            .audit
            .verify()
            .await
            .map_err(|e| ErrorBody::from(&e))?)
    }

    async fn get_question(
        &self,
        by: Principal,
        r: api::QuestionRef,
    ) -> Result<guild_domain::message::QuestionState, Failure> {
        let question = self
            .state()
            .read(|office| office.question(&r.question_id).cloned())
            .await?
            .ok_or_else(|| Rejection::UnknownMessage {
                id: r.question_id.clone(),
            })?;
        self.inner
            .registry
            .read(|reg| reg.check_read_question(&by, &question))?;
        Ok(question)
    }

    async fn list_questions(
        &self,
        by: Principal,
        q: api::QuestionQuery,
    ) -> Result<api::QuestionList, Failure> {
        let mut questions: Vec<_> = self
            .state()
            .read(|office| {
                office
                    .questions()
                    .filter(|s| {
                        !q.open_only || (s.question.requires_decision && s.decision.is_none())
                    })
                    .cloned()
                    .collect()
            })
            .await?;
        questions.retain(|s| {
            self.inner
                .registry
                .read(|reg| reg.may_read_question(&by, s))
        });
        questions.sort_by(|a, b| {
            (a.question.created_at, &a.question.id).cmp(&(b.question.created_at, &b.question.id))
        });
        Ok(api::QuestionList {
            questions: newest(questions, q.limit),
        })
    }

    async fn audit_records(
        &self,
        by: Principal,
        q: api::AuditQuery,
    ) -> Result<api::AuditRecords, Failure> {
        Ok(api::AuditRecords {
            records: self.audit_records_for(&by, &q).await?,
        })
    }

    async fn export_decisions(
        &self,
        by: Principal,
        q: api::DecisionQuery,
    ) -> Result<api::MarkdownExport, Failure> {
        let decisions = self.decisions(&by, &q).await?;
        Ok(api::MarkdownExport {
            markdown: audit::decisions_markdown(&decisions),
            decisions: decisions.len() as u32,
        })
    }
}

/// A message id: the caller's, or a fresh one.
pub(crate) fn message_id(given: Option<MessageId>) -> MessageId {
    given.unwrap_or_else(|| {
        MessageId::new(format!("msg-{}", uuid::Uuid::new_v4().simple()))
            .unwrap_or_else(|_| unreachable!("msg-<hex> is a valid id"))
    })
}
