//! The operations that put messages in inboxes: request, ask_question, alert, handoff,
//! reply and record_decision, and the two refusals that ask someone anyway (work for an
//! exhausted budget asks for scope; a conflicting handoff escalates).

use guild_domain::message::{
    Command, Conflict, DecisionInput, Draft, Message, MessageType, PostOffice, Recipient,
    RulingKind,
};
use guild_domain::{AgentId, FollowedRule, MessageId, MissionId, Principal, Rejection, Timestamp};
use guild_telemetry::trace::{self, SpanExt};
use guild_wire::api::bus::{self as api, DecisionOutcome, Receipt};
use guild_wire::{ErrorBody, subject};
use tracing::{Instrument, Span};

use crate::Bus;
use crate::handler::{Declined, Told, message_id};

fn receipt(message: &Message, recipients: &[Recipient]) -> Receipt {
    Receipt {
        message_id: message.id.clone(),
        kind: message.kind,
        priority: message.priority,
        to: message.to.clone(),
        delivered_to: recipients.to_vec(),
        created_at: message.created_at,
        duplicate: false,
        decision: None,
    }
}

/// The answer to a send: the message it stored, or, when it stored none (a retry of an
/// earlier send with the same id by the same sender), the first one's receipt.
fn sent(office: &PostOffice, id: &MessageId, told: &Told) -> Result<Receipt, ErrorBody> {
    if let Some((m, recipients)) = told.posted.first() {
        return Ok(receipt(m, recipients));
    }
    let p = office
        .message(id)
        .ok_or_else(|| ErrorBody::internal(format!("send {id} stored nothing")))?;
    Ok(Receipt {
        // Copies are only ever made for inbox holders (agents and the operator).
        delivered_to: p
            .copies
            .iter()
            .filter_map(|c| Recipient::try_from(c.owner.clone()).ok())
            .collect(),
        duplicate: true,
        ..receipt(&p.message, &[])
    })
}

// The subject template of inbox entries names message-creation spans.
use guild_wire::subject::INBOX_TEMPLATE;

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
        let command = Command::Send {
            draft,
            id: id.clone(),
            traceparent: span.traceparent(),
        };
        let committed = self
            .execute(by, &command, now, |office, told| sent(office, &id, &told))
            .instrument(span.clone())
            .await;
        match &committed {
            Ok(c) => created(&span, &c.result),
            Err(f) => span.attr("error.type", f.error.rule.as_str()),
        }
        drop(span);
        match committed {
            Ok(c) => Ok(c.result),
            Err(refusal) => Err(self.follow_up(by, &command, refusal, now).await),
        }
    }

    /// A refusal the domain follows up, answered with what that did: work refused for an
    /// agent whose budget is exhausted asks that agent's orchestrator (or the operator) for a
    /// scope decision, once while the question is open. The refusal says where the question
    /// went.
    async fn follow_up(
        &self,
        by: &Principal,
        command: &Command,
        refusal: Declined,
        now: Timestamp,
    ) -> ErrorBody {
        let Some((agent, refused)) = refusal
            .rejection
            .as_ref()
            .and_then(|r| command.asks_for_scope(r))
        else {
            return refusal.error;
        };
        let ask = Command::AskForScope {
            agent: agent.clone(),
            refused,
            id: message_id(None),
            traceparent: trace::current_traceparent(),
        };
        let asked = self
            .execute(by, &ask, now, |office, told| {
                let (m, _) = match told.posted.first() {
                    Some(posted) => posted,
                    None => {
                        let open = office.open_scope_question(&agent).ok_or_else(|| {
                            ErrorBody::internal("no scope question asked, none open")
                        })?;
                        return Ok((open.question.id.clone(), open.question.to.clone()));
                    }
                };
                Ok((m.id.clone(), m.to.clone()))
            })
            .await;
        let refusal = refusal.error;
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
                tracing::warn!(agent = %agent, error = %e.error, "could not ask for a scope decision");
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
        // Check routing and authority before anything moves: the send decided, not
        // committed.
        let dry_run = Command::Send {
            draft: draft.clone(),
            id: id.clone(),
            traceparent: None,
        };
        let checked = self.state().read_local(|office| {
            self.registry()
                .read(|reg| office.decide(reg, by, &dry_run, now))
        });
        match checked {
            // Sent before with this id: the move was made; finish as the first did.
            Ok(effects) if effects.is_empty() => return self.send(by, draft, Some(id)).await,
            Ok(_) => {}
            Err(rejection) => {
                let refusal = Declined {
                    error: ErrorBody::from(&rejection),
                    rejection: Some(rejection),
                };
                return Err(self.follow_up(by, &dry_run, refusal, now).await);
            }
        }
        let moved = self
            .guild(by)
            .missions()
            .reassign_mission(&r.task_id, from, &r.to)
            .await;
        if let Err(e) = moved {
            let body = e.into_body();
            if FollowedRule::of(&body.rule) != Some(FollowedRule::NotTaskHolder) {
                return Err(body);
            }
            let holder = self
                .guild(&Principal::Service(guild_domain::Service::Bus))
                .missions()
                .get_mission(&r.task_id)
                .await
                .map(|m| m.assigned_agent_id)
                .unwrap_or_else(|e| {
                    // The conflict is escalated all the same, naming no holder.
                    tracing::warn!(task = %r.task_id, error = %e, "could not read who holds a handed-off task");
                    guild_telemetry::metrics::count_error("handoff_holder_unread");
                    None
                });
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
        task: &MissionId,
        holder: Option<&AgentId>,
        to: &AgentId,
        refusal: ErrorBody,
    ) -> ErrorBody {
        let qid = message_id(None);
        let escalate = Command::EscalateHandoff {
            from: from.clone(),
            task: task.clone(),
            holder: holder.cloned(),
            to: to.clone(),
            id: qid.clone(),
            traceparent: trace::current_traceparent(),
        };
        let by = Principal::Agent(from.clone());
        let asked = self
            .execute(&by, &escalate, guild_service::now(), |office, told| {
                match told.posted.first() {
                    Some((m, _)) => Ok(m.to.clone()),
                    // Asked already and still open: a repeated refusal asks no more.
                    None => office
                        .open_conflict_question(
                            from,
                            task,
                            Conflict::HandoffOfATaskNotHeld.as_str(),
                        )
                        .map(|q| q.question.to.clone())
                        .ok_or_else(|| {
                            ErrorBody::internal("no conflict question asked, none open")
                        }),
                }
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
                tracing::warn!(task = %task, error = %e.error, "could not escalate a handoff conflict");
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
        let command = Command::Decide {
            question: question.clone(),
            input: input.clone(),
            reply,
            id: id.clone(),
            traceparent: span.traceparent(),
        };
        let committed = self
            .execute(by, &command, now, |_, told| {
                let (ruling, state) = told
                    .ruled
                    .ok_or_else(|| ErrorBody::internal("a decision call without a ruling"))?;
                let record = state
                    .decision
                    .clone()
                    .ok_or_else(|| ErrorBody::internal("a ruling without a decision"))?;
                let receipt = match told.posted.first() {
                    Some((m, recipients)) => receipt(m, recipients),
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
                Ok((receipt, ruling, record, state.question.created_at))
            })
            .instrument(span.clone())
            .await
            .inspect_err(|e| span.attr("error.type", e.error.rule.as_str()))?;
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
