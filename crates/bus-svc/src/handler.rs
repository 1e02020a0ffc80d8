//! Requests in, decisions made, entries appended, replies out.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use bytes::Bytes;
use guild_domain::agent::{self, Registry};
use guild_domain::message::{OfficeRecord, Post, PostOffice};
use guild_domain::{AgentId, MessageId, Principal, Rejection};
use guild_sdk::Guild;
use guild_service::{Handler, Outgoing, Request, State, decode, encode};
use guild_store::{AuditLog, Journal};
use guild_wire::api::Operation;
use guild_wire::api::bus::{self as api, op};
use guild_wire::audit::{self, AuditKind, AuditRecord, LoggedDecision};
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

/// A post's entries in the inbox log, one per recipient, under its priority's subject,
/// carrying the message's creation context (`traceparent`) when it has one.
pub(crate) fn deliveries(post: &Post, out: &mut Outgoing) {
    let m = &post.message;
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
    for r in &post.recipients {
        if let Some(owner) = r.principal() {
            out.event_with_headers(subject::inbox(&owner, m.priority), m, headers());
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

    async fn ack(&self, by: &Principal, r: api::Ack) -> Result<(), ErrorBody> {
        self.settle_delivery(|office, now| office.ack(by, &r.delivery_id, now))
            .await
    }

    async fn nak(&self, by: &Principal, r: api::Nak) -> Result<(), ErrorBody> {
        self.settle_delivery(|office, now| office.nak(by, &r.delivery_id, r.delay_ms, now))
            .await
    }

    /// Commits an ack or nak.
    async fn settle_delivery(
        &self,
        decide: impl Fn(&PostOffice, guild_domain::Timestamp) -> Result<Option<OfficeRecord>, Rejection>,
    ) -> Result<(), ErrorBody> {
        let now = guild_service::now();
        self.state()
            .commit(|office| {
                let record = decide(office, now)?;
                Ok(guild_service::Planned {
                    records: record.into_iter().collect(),
                    outgoing: Outgoing::new(now),
                    result: (),
                })
            })
            .await
            .map(|_| ())
    }

    /// Decisions from the audit log matching `q`, oldest first.
    async fn decisions(&self, q: &api::DecisionQuery) -> Result<Vec<LoggedDecision>, ErrorBody> {
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
        let limit = q.limit.unwrap_or(1000) as usize;
        let mut out: Vec<LoggedDecision> = stored
            .iter()
            .filter_map(|(seq, bytes)| {
                let r: AuditRecord = serde_json::from_slice(bytes).ok()?;
                let record = r.decision()?;
                Some(LoggedDecision {
                    audit_seq: *seq,
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
        let skip = out.len().saturating_sub(limit);
        out.drain(..skip);
        Ok(out)
    }

    async fn dispatch(&self, req: Request) -> Result<Bytes, ErrorBody> {
        let by = req.by.clone();
        match req.op {
            op::Request::NAME => {
                let r: api::SendRequest = decode(&req.body)?;
                encode(&self.request(&by, r).await?)
            }
            op::AskQuestion::NAME => {
                let r: api::AskQuestion = decode(&req.body)?;
                encode(&self.ask(&by, r).await?)
            }
            op::Alert::NAME => {
                let r: api::RaiseAlert = decode(&req.body)?;
                encode(&self.alert(&by, r).await?)
            }
            op::Handoff::NAME => {
                let r: api::Handoff = decode(&req.body)?;
                encode(&self.handoff(&by, r).await?)
            }
            op::Reply::NAME => {
                let r: api::Reply = decode(&req.body)?;
                encode(&self.reply(&by, r).await?)
            }
            op::RecordDecision::NAME => {
                let r: api::RecordDecision = decode(&req.body)?;
                encode(&self.record_decision(&by, r).await?)
            }
            op::Consume::NAME => {
                let r: api::Consume = decode(&req.body)?;
                encode(&self.consume(by, r.timeout_ms, r.types).await?)
            }
            op::Ack::NAME => {
                let r: api::Ack = decode(&req.body)?;
                self.ack(&by, r).await?;
                encode(&guild_wire::api::Empty {})
            }
            op::Nak::NAME => {
                let r: api::Nak = decode(&req.body)?;
                self.nak(&by, r).await?;
                encode(&guild_wire::api::Empty {})
            }
            op::GetMessageStats::NAME => {
                let _: guild_wire::api::Empty = decode(&req.body)?;
                encode(&self.state().read(PostOffice::stats).await?)
            }
            op::DecisionHistory::NAME => {
                let q: api::DecisionQuery = decode(&req.body)?;
                encode(&api::DecisionList {
                    decisions: self.decisions(&q).await?,
                })
            }
            op::VerifyAudit::NAME => {
                let _: guild_wire::api::Empty = decode(&req.body)?;
                encode(
                    &self
                        .inner
                        .audit
                        .verify()
                        .await
                        .map_err(|e| ErrorBody::from(&e))?,
                )
            }
            op::ExportDecisions::NAME => {
                let q: api::DecisionQuery = decode(&req.body)?;
                let decisions = self.decisions(&q).await?;
                encode(&api::MarkdownExport {
                    markdown: audit::decisions_markdown(&decisions),
                    decisions: decisions.len() as u32,
                })
            }
            other => Err(ErrorBody::internal(format!("no handler for {other}"))),
        }
    }
}

/// A message id: the caller's, or a fresh one.
pub(crate) fn message_id(given: Option<MessageId>) -> MessageId {
    given.unwrap_or_else(|| {
        MessageId::new(format!("msg-{}", uuid::Uuid::new_v4().simple()))
            .unwrap_or_else(|_| unreachable!("msg-<hex> is a valid id"))
    })
}

impl Handler for Bus {
    async fn handle(&self, request: Request) -> Result<Bytes, ErrorBody> {
        self.dispatch(request).await
    }
}
