//! The bus handle: the seed's `ConsultationBus` methods, for the principal of the
//! [`Guild`] it came from (the seed's `from_agent`).
//!
//! ```no_run
//! # async fn demo(guild: guild_sdk::Guild) -> Result<(), guild_sdk::Error> {
//! use std::time::Duration;
//! use guild_sdk::{AskQuestion, MessageType};
//!
//! // `guild` was connected with dev-lead-1's credentials.
//! let me = guild.clone();
//! let q = me
//!     .bus()
//!     .ask_question(&AskQuestion::new(
//!         "Do we have token budget for extra tests?",
//!         serde_json::json!({"requested": 3000}),
//!         true,
//!     ))
//!     .await?;
//! // Wait for the decision only; other messages stay queued for the main loop.
//! if let Some(d) = me.bus().consume(Duration::from_secs(30), &[MessageType::Decision]).await? {
//!     println!("{} decided {}", d.message.from, d.message.payload["decision"]);
//!     me.bus().ack(&d.delivery_id).await?;
//! }
//! # let _ = q; Ok(()) }
//! ```

use std::future::Future;
use std::time::Duration;

use guild_wire::api::Empty;
use guild_wire::api::bus::{self as api, op};
use guild_wire::audit::{AuditRecord, LoggedDecision, VerifyReport};
use guild_wire::domain::message::{Delivery, MessageStats, MessageType, QuestionState};
use guild_wire::domain::{AgentId, MessageId, MissionId, Principal};

use guild_telemetry::trace::SpanExt;
use tracing::Instrument;

use crate::{Error, Guild};

/// How long past a consume's own wait its reply may take.
const CONSUME_MARGIN: Duration = Duration::from_secs(5);

/// The consultation bus, for the principal of the [`Guild`] it came from.
#[derive(Clone, Copy, Debug)]
pub struct Bus<'a> {
    guild: &'a Guild,
}

impl<'a> Bus<'a> {
    pub(crate) fn new(guild: &'a Guild) -> Self {
        Self { guild }
    }

    /// A REQUEST (the seed's `request(from_agent, to_agent, subject, payload)`):
    /// `SendRequest::new(to, subject, payload)` at NORMAL priority, or with a priority, a
    /// task, your own message id (a retry with the same id is delivered once).
    pub async fn request(&self, r: &api::SendRequest) -> Result<api::Receipt, Error> {
        self.guild.call::<op::Request>(r).await
    }

    /// A QUESTION (the seed's `ask_question`): `AskQuestion::new(subject, payload,
    /// requires_decision)` goes to the caller's nearest orchestrator, or the operator, and
    /// with `requires_decision` escalates if nobody decides in time; set an addressee,
    /// priority, task, decision deadline or message id as needed.
    pub async fn ask_question(&self, q: &api::AskQuestion) -> Result<api::Receipt, Error> {
        self.guild.call::<op::AskQuestion>(q).await
    }

    /// An ALERT to every live agent (the seed's `alert`): CRITICAL when `is_critical`,
    /// else HIGH.
    pub async fn alert(
        &self,
        subject: &str,
        payload: serde_json::Value,
        is_critical: bool,
    ) -> Result<api::Receipt, Error> {
        self.guild
            .call::<op::Alert>(&api::RaiseAlert {
                subject: subject.into(),
                payload,
                is_critical,
                message_id: None,
            })
            .await
    }

    /// Hands task `task_id`, which the caller runs, to agent `to` (the seed's `handoff`):
    /// the mission moves to `to` and `to` receives a HANDOFF message carrying `context`.
    pub async fn handoff(
        &self,
        to: &AgentId,
        task_id: &MissionId,
        context: serde_json::Value,
    ) -> Result<api::Receipt, Error> {
        self.guild
            .call::<op::Handoff>(&api::Handoff {
                to: to.clone(),
                task_id: task_id.clone(),
                context,
                subject: None,
                message_id: None,
            })
            .await
    }

    /// Answers a message (the seed's `reply`). With `is_decision` it decides a question:
    /// `payload` carries `decision` (or `choice`) and `reason`.
    pub async fn reply(
        &self,
        to_message_id: &MessageId,
        payload: serde_json::Value,
        is_decision: bool,
    ) -> Result<api::Receipt, Error> {
        self.guild
            .call::<op::Reply>(&api::Reply {
                to_message_id: to_message_id.clone(),
                payload,
                is_decision,
                subject: None,
                priority: None,
                message_id: None,
            })
            .await
    }

    /// Records a decision on a question (the seed's `record_decision`); after a reply with
    /// `is_decision` by the same approver it completes that decision's record.
    pub async fn record_decision(
        &self,
        message_id: &MessageId,
        choice: &str,
        rationale: Option<&str>,
        impact: serde_json::Value,
    ) -> Result<api::DecisionOutcome, Error> {
        self.guild
            .call::<op::RecordDecision>(&api::RecordDecision {
                message_id: message_id.clone(),
                choice: choice.into(),
                rationale: rationale.map(str::to_owned),
                impact,
            })
            .await
    }

    /// The caller's next message of one of `types` (every type when empty), waiting up to
    /// `timeout` (at most 30 s); `None` when none came (the seed's `consume(agent_id,
    /// timeout)`); messages of other types stay queued. Ack it within the ack window.
    pub async fn consume(
        &self,
        timeout: Duration,
        types: &[MessageType],
    ) -> Result<Option<Delivery>, Error> {
        let request = api::Consume {
            timeout_ms: timeout.as_millis() as u64,
            types: types.to_vec(),
        };
        let consumed = self
            .guild
            .call_with_timeout::<op::Consume>(&request, timeout + CONSUME_MARGIN)
            .await?;
        Ok(consumed.delivery)
    }

    /// Acknowledges a delivery: done, never delivered again.
    pub async fn ack(&self, delivery_id: &str) -> Result<(), Error> {
        self.guild
            .call::<op::Ack>(&api::Ack {
                delivery_id: delivery_id.into(),
            })
            .await
            .map(|_: Empty| ())
    }

    /// Gives a delivery back, to come again after `delay`.
    pub async fn nak(&self, delivery_id: &str, delay: Duration) -> Result<(), Error> {
        self.guild
            .call::<op::Nak>(&api::Nak {
                delivery_id: delivery_id.into(),
                delay_ms: delay.as_millis() as u64,
            })
            .await
            .map(|_: Empty| ())
    }

    /// The seed's `get_message_stats`: totals, queue sizes, decisions, decision time.
    pub async fn get_message_stats(&self) -> Result<MessageStats, Error> {
        self.guild.call::<op::GetMessageStats>(&Empty {}).await
    }

    /// Decisions from the audit log, by agent, mission and time.
    pub async fn decision_history(
        &self,
        query: &api::DecisionQuery,
    ) -> Result<Vec<LoggedDecision>, Error> {
        Ok(self
            .guild
            .call::<op::DecisionHistory>(query)
            .await?
            .decisions)
    }

    /// A question's state: the question, its decision, the decisions it overrode and
    /// where it was escalated. For its asker, its deciders, their orchestrators, the
    /// operator and the observer; anyone else is refused `forbidden_action`.
    pub async fn get_question(&self, question_id: &MessageId) -> Result<QuestionState, Error> {
        self.guild
            .call::<op::GetQuestion>(&api::QuestionRef {
                question_id: question_id.clone(),
            })
            .await
    }

    /// The questions this principal may read (its own and its subtree's; every one for
    /// the operator and the observer), oldest first.
    pub async fn list_questions(
        &self,
        query: &api::QuestionQuery,
    ) -> Result<Vec<QuestionState>, Error> {
        Ok(self.guild.call::<op::ListQuestions>(query).await?.questions)
    }

    /// Audit records of every kind (spawns, terminations, denials, decisions, missions)
    /// this principal may read: an agent those about itself and its subtree, the operator
    /// and the observer every one. No JetStream rights needed.
    pub async fn audit_records(&self, query: &api::AuditQuery) -> Result<Vec<AuditRecord>, Error> {
        Ok(self.guild.call::<op::AuditRecords>(query).await?.records)
    }

    /// Re-reads the audit log and checks its hash chain.
    pub async fn verify_audit(&self) -> Result<VerifyReport, Error> {
        self.guild.call::<op::VerifyAudit>(&Empty {}).await
    }

    /// The decision log as Markdown (the seed's `decisions.md`).
    pub async fn export_decisions(
        &self,
        query: &api::DecisionQuery,
    ) -> Result<api::MarkdownExport, Error> {
        self.guild.call::<op::ExportDecisions>(query).await
    }

    /// Runs `handler` on every message of `types` (every type when empty) that reaches
    /// the caller's inbox, until the returned [`Subscription`] is stopped or dropped. A
    /// message the handler accepts is acknowledged; one it fails is given back and comes
    /// again after a second.
    pub fn subscribe<F, Fut>(&self, types: &[MessageType], mut handler: F) -> Subscription
    where
        F: FnMut(Delivery) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), String>> + Send,
    {
        let guild = self.guild.clone();
        let types = types.to_vec();
        let task = tokio::spawn(async move {
            let bus = guild.bus();
            let mut backoff = Duration::from_millis(100);
            loop {
                let delivery = match bus.consume(Duration::from_secs(20), &types).await {
                    Ok(Some(d)) => d,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "consume failed; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                };
                backoff = Duration::from_millis(100);
                let id = delivery.delivery_id.clone();
                let span = bus.processing_span(&delivery);
                let done = match handler(delivery).instrument(span).await {
                    Ok(()) => bus.ack(&id).await,
                    Err(e) => {
                        tracing::warn!(delivery = %id, error = %e, "handler failed; giving the message back");
                        bus.nak(&id, Duration::from_secs(1)).await
                    }
                };
                if let Err(e) = done {
                    tracing::warn!(delivery = %id, error = %e, "could not settle a delivery");
                }
            }
        });
        Subscription { task }
    }

    /// Who the calls are made for.
    pub fn principal(&self) -> &Principal {
        self.guild.principal()
    }

    /// The span to handle a delivered message in (when telemetry is exported): CONSUMER
    /// `process guild.inbox.{owner}.{priority}`, a child of the message's creation context
    /// (so a reply or a decision made while handling it joins the sender's trace), linked
    /// to the span current now (the consume). [`subscribe`](Self::subscribe) handles every
    /// message in one; a loop of its own does
    /// `handle(d).instrument(bus.processing_span(&d)).await`.
    pub fn processing_span(&self, delivery: &Delivery) -> tracing::Span {
        if !guild_telemetry::trace::enabled() {
            return tracing::Span::none();
        }
        let m = &delivery.message;
        let span = guild_telemetry::trace::consumer(
            &guild_wire::subject::inbox(self.principal(), m.priority),
            guild_wire::subject::INBOX_TEMPLATE,
            None,
            m.traceparent.as_deref(),
        );
        span.attr("messaging.message.id", m.id.as_str());
        span.attr("guild.message.type", m.kind.as_str());
        span.attr("guild.message.priority", m.priority.as_str());
        span.attr("guild.principal", self.principal().token());
        span.attr("guild.delivery.attempt", delivery.attempt);
        if let Some(t) = &m.task_id {
            span.attr("guild.mission.id", t.as_str());
        }
        span
    }
}

/// A running [`Bus::subscribe`] loop; dropping it stops the loop.
#[derive(Debug)]
pub struct Subscription {
    task: tokio::task::JoinHandle<()>,
}

impl Subscription {
    /// Stops the loop (a message being handled is abandoned and comes again after the
    /// ack window).
    pub fn stop(self) {}
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}
