//! The operations that put messages in inboxes: request, ask_question, alert, handoff,
//! reply and record_decision, and the two refusals that ask someone anyway (work for an
//! exhausted budget asks for scope; a conflicting handoff escalates).

use guild_domain::message::{
    DecisionInput, DecisionMessage, Draft, MessageType, Post, PostOffice, Recipient, RefusedWork,
    RulingKind, address, conflict_question, scope_question,
};
use guild_domain::{AgentId, MessageId, MissionId, Principal, Rejection, Timestamp};
use guild_service::{Outgoing, Planned, Refused};
use guild_telemetry::trace::{self, SpanExt};
use guild_wire::api::bus::{self as api, DecisionOutcome, Receipt};
use guild_wire::audit::AuditKind;
use guild_wire::{ErrorBody, ErrorCode, subject};
use tracing::{Instrument, Span};

use crate::Bus;
use crate::handler::{deliveries, message_id};

fn receipt(post: &Post, duplicate: bool) -> Receipt {
    Receipt {
        message_id: post.message.id.clone(),
        kind: post.message.kind,
        priority: post.message.priority,
        to: post.message.to.clone(),
        delivered_to: post.recipients.clone(),
        created_at: post.message.created_at,
        duplicate,
        decision: None,
    }
}

/// A message id used before: the same sender's retry gets the first receipt; anyone
/// else's reuse is refused.
fn duplicate(
    office: &PostOffice,
    by: &Principal,
    id: &MessageId,
) -> Result<Option<Receipt>, Refused> {
    let Some(p) = office.message(id) else {
        return Ok(None);
    };
    if &p.message.from != by {
        return Err(ErrorBody::new(
            ErrorCode::Conflict,
            "message_exists",
            format!("message id {id} is taken; leave message_id empty or choose another"),
        )
        .with_field("message_id")
        .into());
    }
    Ok(Some(Receipt {
        message_id: id.clone(),
        kind: p.message.kind,
        priority: p.message.priority,
        to: p.message.to.clone(),
        // Copies are only ever made for inbox holders (agents and the operator).
        delivered_to: p
            .copies
            .iter()
            .filter_map(|c| Recipient::try_from(c.owner.clone()).ok())
            .collect(),
        created_at: p.message.created_at,
        duplicate: true,
        decision: None,
    }))
}

/// The subject template of inbox entries, which names message-creation spans.
const INBOX_TEMPLATE: &str = "guild.inbox.{owner}.{priority}";

/// The PRODUCER span in which a message is created (`create guild.inbox.{owner}.{priority}`),
/// a child of the request's span. The commit that stores the message runs in it, and its
/// context is the message's creation context: stored with the message
/// (`Message::traceparent`, returned by `consume`) and carried by its inbox log entries.
fn create_span(kind: MessageType, task: Option<&MissionId>) -> Span {
    let span = trace::producer("create", None, INBOX_TEMPLATE);
    span.attr("guild.message.type", kind.as_str());
    if let Some(t) = task {
        span.attr("guild.mission.id", t.as_str());
    }
    span
}

/// What routing decided, on the create span.
fn created(span: &Span, r: &Receipt) {
    if span.is_disabled() {
        return;
    }
    span.attr("messaging.message.id", r.message_id.as_str());
    span.attr("guild.message.priority", r.priority.as_str());
    span.attr("guild.recipients", r.delivered_to.len() as u64);
    if let [one] = r.delivered_to.as_slice()
        && let Some(owner) = one.principal()
    {
        span.attr(
            "messaging.destination.name",
            subject::inbox(&owner, r.priority),
        );
    }
    if r.duplicate {
        span.attr("guild.duplicate", true);
    }
}

fn planned<T>(
    records: Vec<guild_domain::message::OfficeRecord>,
    out: Outgoing,
    result: T,
) -> Planned<guild_domain::message::OfficeRecord, T> {
    Planned {
        records,
        outgoing: out,
        result,
    }
}

impl Bus {
    /// Routes, checks and stores one draft from `by`.
    pub(crate) async fn send(
        &self,
        by: &Principal,
        draft: Draft,
        given: Option<MessageId>,
    ) -> Result<Receipt, ErrorBody> {
        let named: Vec<&AgentId> = by
            .agent()
            .into_iter()
            .chain(draft.to.as_ref().and_then(Principal::agent))
            .collect();
        self.know(&named).await?;
        let id = message_id(given);
        let now = guild_service::now();
        let span = create_span(draft.kind, draft.task_id.as_ref());
        let traceparent = span.traceparent();
        let sent = self
            .state()
            .commit(|office| {
                if let Some(r) = duplicate(office, by, &id)? {
                    return Ok(planned(Vec::new(), Outgoing::new(now), r));
                }
                let original = match &draft.in_reply_to {
                    Some(r) => Some(office.original(by, r)?),
                    None => None,
                };
                let mut routed = self
                    .registry()
                    .read(|reg| address(reg, by, &draft, original, id.clone(), now))
                    .map_err(|e| Refused::denied(by, &e, None))?;
                routed.message.traceparent.clone_from(&traceparent);
                let post = office.post(routed, now);
                let mut out = Outgoing::new(now);
                deliveries(&post, &mut out);
                Ok(planned(post.records.clone(), out, receipt(&post, false)))
            })
            .instrument(span.clone())
            .await;
        match &sent {
            Ok(c) => created(&span, &c.result),
            Err(e) => span.attr("error.type", e.rule.as_str()),
        }
        drop(span);
        match sent {
            Err(e) if e.rule == "budget_exhausted" => {
                Err(self.ask_for_scope(by, &draft, e, now).await)
            }
            other => other.map(|c| c.result),
        }
    }

    /// Work was refused for an agent whose budget is exhausted: that agent asks its
    /// orchestrator (or the operator) for a scope decision, once while the question is
    /// open. The refusal says where the question went.
    async fn ask_for_scope(
        &self,
        by: &Principal,
        draft: &Draft,
        refusal: ErrorBody,
        now: Timestamp,
    ) -> ErrorBody {
        let Some(agent) = draft.to.as_ref().and_then(Principal::agent) else {
            return refusal;
        };
        let qid = message_id(None);
        let asked = self
            .state()
            .commit(|office| {
                if let Some(q) = office.open_scope_question(agent) {
                    return Ok(planned(
                        Vec::new(),
                        Outgoing::new(now),
                        (q.question.id.clone(), q.question.to.clone()),
                    ));
                }
                let mut routed = self
                    .registry()
                    .read(|reg| {
                        let refused = RefusedWork::Message { from: by, draft };
                        scope_question(reg, agent, refused, qid.clone(), now)
                    })
                    .ok_or_else(|| Refused::from(Rejection::UnknownAgent { id: agent.clone() }))?;
                routed.message.traceparent = trace::current_traceparent();
                let post = office.post(routed, now);
                let mut out = Outgoing::new(now);
                deliveries(&post, &mut out);
                Ok(planned(
                    post.records.clone(),
                    out,
                    (post.message.id.clone(), post.message.to.clone()),
                ))
            })
            .await;
        match asked {
            Ok(c) => {
                let (q, to) = c.result;
                ErrorBody {
                    message: format!(
                        "{}; {agent} asked {to} for a scope decision (question {q})",
                        refusal.message
                    ),
                    ..refusal
                }
            }
            Err(e) => {
                tracing::warn!(agent = %agent, error = %e, "could not ask for a scope decision");
                refusal
            }
        }
    }

    pub(crate) async fn request(
        &self,
        by: &Principal,
        r: api::SendRequest,
    ) -> Result<Receipt, ErrorBody> {
        let draft = Draft {
            to: Some(Principal::Agent(r.to)),
            payload: r.payload,
            priority: r.priority,
            task_id: r.task_id,
            ..Draft::new(MessageType::Request, r.subject)
        };
        self.send(by, draft, r.message_id).await
    }

    pub(crate) async fn ask(
        &self,
        by: &Principal,
        r: api::AskQuestion,
    ) -> Result<Receipt, ErrorBody> {
        let draft = Draft {
            to: r.to,
            payload: r.payload,
            priority: r.priority,
            task_id: r.task_id,
            requires_decision: r.requires_decision,
            decision_deadline_ms: r.decision_deadline_ms,
            ..Draft::new(MessageType::Question, r.subject)
        };
        self.send(by, draft, r.message_id).await
    }

    pub(crate) async fn alert(
        &self,
        by: &Principal,
        r: api::RaiseAlert,
    ) -> Result<Receipt, ErrorBody> {
        let draft = Draft {
            payload: r.payload,
            is_critical: r.is_critical,
            ..Draft::new(MessageType::Alert, r.subject)
        };
        // Every live agent receives it: the registry must include the latest spawns.
        self.registry()
            .sync()
            .await
            .map_err(|e| ErrorBody::from(&e))?;
        self.send(by, draft, r.message_id).await
    }

    /// The seed's `handoff`: the mission moves from the sender to the receiver (through
    /// mission-svc, which has the spawner allocate the receiver), then the HANDOFF message
    /// is delivered. A retry with the same message id finds the move made and completes.
    /// Handing over a task the sender does not hold is refused and escalated.
    pub(crate) async fn handoff(
        &self,
        by: &Principal,
        r: api::Handoff,
    ) -> Result<Receipt, ErrorBody> {
        let Principal::Agent(from) = by else {
            return Err(ErrorBody::from(Rejection::invalid(
                "subject",
                "a HANDOFF is sent by the agent holding the task, not the operator",
            )));
        };
        let draft = Draft {
            to: Some(Principal::Agent(r.to.clone())),
            payload: r.context,
            task_id: Some(r.task_id.clone()),
            ..Draft::new(
                MessageType::Handoff,
                r.subject
                    .unwrap_or_else(|| format!("Handoff of {}", r.task_id)),
            )
        };
        self.know(&[from, &r.to]).await?;
        let id = message_id(r.message_id);
        let now = guild_service::now();
        // Check routing and authority before anything moves.
        let checked = self
            .state()
            .journal
            .read(|office| -> Result<bool, ErrorBody> {
                if duplicate(office, by, &id).map_err(|e| e.error)?.is_some() {
                    return Ok(true);
                }
                self.registry()
                    .read(|reg| address(reg, by, &draft, None, id.clone(), now))
                    .map(|_| false)
                    .map_err(ErrorBody::from)
            });
        match checked {
            Ok(true) => return self.send(by, draft, Some(id)).await,
            Ok(false) => {}
            Err(e) if e.rule == "budget_exhausted" => {
                return Err(self.ask_for_scope(by, &draft, e, now).await);
            }
            Err(e) => return Err(e),
        }
        let moved = self
            .guild(by)
            .missions()
            .reassign_mission(&r.task_id, from, &r.to)
            .await;
        if let Err(e) = moved {
            let body = e.into_body();
            if body.rule != "not_task_holder" {
                return Err(body);
            }
            let holder = self
                .guild(&Principal::Service(guild_domain::Service::Bus))
                .missions()
                .get_mission(&r.task_id)
                .await
                .ok()
                .and_then(|m| m.assigned_agent_id);
            // Our own earlier attempt moved it: finish by delivering the message.
            if holder.as_ref() != Some(&r.to) {
                return Err(self
                    .escalate_conflict(from, &r.task_id, holder.as_ref(), &r.to, body)
                    .await);
            }
        }
        self.send(by, draft, Some(id)).await
    }

    /// A handoff of a task the sender does not hold (handed off already, or never its own)
    /// goes to the sender's orchestrator as a CRITICAL question, audited as a conflict.
    async fn escalate_conflict(
        &self,
        from: &AgentId,
        task: &guild_domain::MissionId,
        holder: Option<&AgentId>,
        to: &AgentId,
        refusal: ErrorBody,
    ) -> ErrorBody {
        let now = guild_service::now();
        let qid = message_id(None);
        let payload = serde_json::json!({
            "conflict": "handoff_of_a_task_not_held",
            "task_id": task,
            "holder": holder,
            "attempted_by": from,
            "attempted_to": to,
        });
        let asked = self
            .state()
            .commit(|office| {
                // Asked already and still open: a repeated refusal asks no more.
                if let Some(q) =
                    office.open_conflict_question(from, task, "handoff_of_a_task_not_held")
                {
                    return Ok(planned(
                        Vec::new(),
                        Outgoing::new(now),
                        q.question.to.clone(),
                    ));
                }
                let mut routed = self.registry().read(|reg| {
                    conflict_question(
                        reg,
                        from,
                        format!(
                            "Conflict: {from} tried to hand off {task}, which it does not hold"
                        ),
                        payload.clone(),
                        Some(task.clone()),
                        qid.clone(),
                        now,
                    )
                });
                routed.message.traceparent = trace::current_traceparent();
                let post = office.post(routed, now);
                let mut out = Outgoing::new(now);
                deliveries(&post, &mut out);
                out.audit(
                    AuditKind::Conflict,
                    &Principal::Agent(from.clone()),
                    task.as_str(),
                    Some(task.clone()),
                    &payload,
                );
                Ok(planned(post.records.clone(), out, post.message.to.clone()))
            })
            .await;
        match asked {
            Ok(c) => ErrorBody {
                message: format!(
                    "{}; escalated to {} (question {qid})",
                    refusal.message, c.result
                ),
                ..refusal
            },
            Err(e) => {
                tracing::warn!(task = %task, error = %e, "could not escalate a handoff conflict");
                refusal
            }
        }
    }

    /// The seed's `reply`: a plain answer to any message, or with `is_decision` a DECISION
    /// on a question (delivered once, recorded in the audit log).
    pub(crate) async fn reply(&self, by: &Principal, r: api::Reply) -> Result<Receipt, ErrorBody> {
        if !r.is_decision {
            let subject = match r.subject {
                Some(s) => s,
                None => self.reply_subject(&r.to_message_id).await?,
            };
            let draft = Draft {
                payload: r.payload,
                priority: r.priority,
                in_reply_to: Some(r.to_message_id),
                ..Draft::new(MessageType::Reply, subject)
            };
            return self.send(by, draft, r.message_id).await;
        }
        let input = DecisionInput::from_reply_payload(&r.payload)?;
        let subject = match r.subject {
            Some(s) => s,
            None => self.reply_subject(&r.to_message_id).await?,
        };
        let draft = Draft {
            payload: r.payload,
            priority: r.priority,
            in_reply_to: Some(r.to_message_id.clone()),
            ..Draft::new(MessageType::Decision, subject)
        };
        let id = message_id(r.message_id);
        let (receipt, outcome) = self
            .decide(by, &r.to_message_id, &input, Some(draft), id)
            .await?;
        Ok(Receipt {
            decision: Some(outcome),
            ..receipt
        })
    }

    /// `Re: <subject>` of the message answered.
    async fn reply_subject(&self, id: &MessageId) -> Result<String, ErrorBody> {
        let subject = self
            .state()
            .read(|o| o.message(id).map(|p| p.message.subject.clone()))
            .await?
            .ok_or_else(|| Rejection::UnknownMessage { id: id.clone() })?;
        Ok(format!("Re: {subject}")
            .chars()
            .take(guild_domain::message::MAX_SUBJECT_CHARS)
            .collect())
    }

    /// The seed's `record_decision`.
    pub(crate) async fn record_decision(
        &self,
        by: &Principal,
        r: api::RecordDecision,
    ) -> Result<DecisionOutcome, ErrorBody> {
        let input = DecisionInput::new(r.choice, r.rationale, r.impact)?;
        let (_, outcome) = self
            .decide(by, &r.message_id, &input, None, message_id(None))
            .await?;
        Ok(outcome)
    }

    /// One decision call, from a reply (`reply` is its draft) or `record_decision`.
    async fn decide(
        &self,
        by: &Principal,
        question: &MessageId,
        input: &DecisionInput,
        reply: Option<Draft>,
        id: MessageId,
    ) -> Result<(Receipt, DecisionOutcome), ErrorBody> {
        self.know(&by.agent().into_iter().collect::<Vec<_>>())
            .await?;
        let now = guild_service::now();
        // The decision's commit (question, DECISION message, audit entry) runs in the
        // DECISION's create span.
        let span = create_span(MessageType::Decision, None);
        let traceparent = span.traceparent();
        let committed = self
            .state()
            .commit(|office| {
                let message = match &reply {
                    Some(draft) => {
                        let original = office.original(by, question)?;
                        let mut routed = self
                            .registry()
                            .read(|reg| address(reg, by, draft, Some(original), id.clone(), now))
                            .map_err(|e| Refused::denied(by, &e, None))?;
                        routed.message.traceparent.clone_from(&traceparent);
                        DecisionMessage::Reply(routed)
                    }
                    None => DecisionMessage::Written(id.clone(), traceparent.clone()),
                };
                let decided = self
                    .registry()
                    .read(|reg| office.decide(reg, by, question, input, message, now))
                    .map_err(|e| Refused::denied(by, &e, None))?;
                let mut out = Outgoing::new(now);
                if let Some(post) = &decided.post {
                    deliveries(post, &mut out);
                }
                let kind = match decided.ruling.kind {
                    RulingKind::Decided => Some(AuditKind::Decision),
                    RulingKind::Completed => Some(AuditKind::DecisionCompleted),
                    RulingKind::Overridden => Some(AuditKind::DecisionOverride),
                    RulingKind::Unchanged => None,
                };
                let state = &decided.ruling.state;
                let record = state
                    .decision
                    .clone()
                    .ok_or_else(|| ErrorBody::internal("a ruling without a decision"))?;
                if let Some(kind) = kind {
                    out.audit(
                        kind,
                        by,
                        record.question_id.as_str(),
                        record.mission_id.clone(),
                        &record,
                    );
                }
                let receipt = match &decided.post {
                    Some(post) => receipt(post, false),
                    None => Receipt {
                        message_id: id.clone(),
                        kind: MessageType::Decision,
                        priority: MessageType::Decision.default_priority(false),
                        to: Recipient::try_from(state.question.from.clone())?,
                        delivered_to: Vec::new(),
                        created_at: now,
                        duplicate: false,
                        decision: None,
                    },
                };
                let asked_at = state.question.created_at;
                Ok(planned(
                    decided.records,
                    out,
                    (receipt, decided.ruling.kind, record, asked_at),
                ))
            })
            .instrument(span.clone())
            .await
            .inspect_err(|e| span.attr("error.type", e.rule.as_str()))?;
        let (receipt, ruling, decision, asked_at) = committed.result;
        span.attr("guild.question.id", question.as_str());
        span.attr_with("guild.decision.ruling", || {
            format!("{ruling:?}").to_lowercase()
        });
        if ruling == RulingKind::Decided {
            created(&span, &receipt);
            let took = decision.decided_at.millis_since(asked_at) as f64 / 1000.0;
            guild_telemetry::metrics::instruments()
                .decision_time
                .record(took, &[]);
        }
        let outcome = DecisionOutcome {
            ruling,
            decision,
            audit_seq: committed.audit_seqs.first().copied(),
        };
        Ok((receipt, outcome))
    }
}
