//! Background work every instance runs: escalating overdue questions, turning mission
//! failures into ALERTs and claim conflicts into escalations, archiving settled messages,
//! ending waits whose instance died, and publishing what dead writers left.

use std::time::Duration;

use guild_domain::agent::Event as SpawnerEvent;
use guild_domain::message::{
    OfficeRecord, RefusedWork, conflict_question, operator_alert, scope_question, system_alert,
    waiting_notice,
};
use guild_domain::mission::Event as MissionEvent;
use guild_domain::{MessageId, Principal};
use guild_service::{Outgoing, Planned};
use guild_telemetry::trace;
use guild_wire::audit::AuditKind;
use guild_wire::subject::{self, Service};

use crate::Bus;
use crate::handler::{deliveries, message_id};

/// The durable consumers that hand each mission event bus-svc reacts to to one instance:
/// failures and claim conflicts, and (a consumer of its own, as a consumer's filter is
/// fixed when it is made) missions left waiting by a lost agent.
const MISSION_EVENTS: [(&str, &[&str]); 2] = [
    ("bus-svc-mission-events", &["failed", "claim_conflict"]),
    ("bus-svc-mission-waiting", &["waiting"]),
];

/// The durable consumer that hands each refused reservation to one instance.
const BUDGET_REFUSALS_CONSUMER: &str = "bus-svc-budget-refusals";

/// How many settled messages one archiving step removes.
const ARCHIVE_BATCH: usize = 10_000;

/// Runs the loops until the bus stops.
pub(crate) fn background(bus: Bus) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut stop = bus.stopping();
        let config = bus.config().clone();
        let reactions: Vec<_> = MISSION_EVENTS
            .into_iter()
            .map(|(consumer, events)| tokio::spawn(follow_missions(bus.clone(), consumer, events)))
            .collect();
        let losses = tokio::spawn(follow_losses(bus.clone()));
        let refusals = tokio::spawn(follow_budget_refusals(bus.clone()));
        let mut settle = tokio::time::interval(
            (config.outbox_grace / 4).clamp(Duration::from_millis(50), Duration::from_secs(1)),
        );
        let mut escalate = tokio::time::interval(Duration::from_secs(1));
        let mut tidy = tokio::time::interval(Duration::from_secs(5));
        let mut archive = tokio::time::interval(config.archive_every);
        for t in [&mut settle, &mut escalate, &mut tidy, &mut archive] {
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = settle.tick() => {
                    if let Err(e) = bus.state().settle(config.outbox_grace).await {
                        tracing::warn!(error = %e, "publishing sweep failed");
                    }
                }
                _ = escalate.tick() => {
                    if let Err(e) = escalate_overdue(&bus).await {
                        tracing::warn!(error = %e, "escalation sweep failed");
                    }
                }
                _ = tidy.tick() => {
                    if let Err(e) = end_abandoned_waits(&bus).await {
                        tracing::warn!(error = %e, "wait sweep failed");
                    }
                }
                _ = archive.tick() => {
                    if let Err(e) = archive_settled(&bus).await {
                        tracing::warn!(error = %e, "archiving failed");
                    }
                }
            }
        }
        reactions.iter().for_each(|r| r.abort());
        losses.abort();
        refusals.abort();
    })
}

/// The durable consumer that hands each service's `state_lost` event to one instance.
const STATE_LOST_CONSUMER: &str = "bus-svc-state-lost";

/// Turns every service's `state_lost` event into one CRITICAL ALERT for the operator (the
/// event's id is the loss, so each loss is one message however many instances saw it).
async fn follow_losses(bus: Bus) {
    let filters = vec![subject::event_everywhere("state_lost")];
    let js = bus.js().clone();
    let stop = bus.stopping();
    guild_service::react(js, STATE_LOST_CONSUMER, filters, stop, |msg| {
        let bus = bus.clone();
        async move {
            let Ok(event) = serde_json::from_slice::<serde_json::Value>(&msg.payload) else {
                tracing::warn!(subject = %msg.subject, "unreadable state_lost event");
                return Ok(());
            };
            alert_loss(&bus, event).await.map_err(|e| e.to_string())
        }
    })
    .await;
}

async fn alert_loss(bus: &Bus, event: serde_json::Value) -> Result<(), guild_wire::ErrorBody> {
    let now = guild_service::now();
    let service = event["service"].as_str().unwrap_or("a service").to_owned();
    let lost = event["lost"].clone();
    let what = serde_json::from_value::<guild_store::Lost>(lost.clone())
        .map_or_else(|_| lost.to_string(), |l| l.to_string());
    let id = MessageId::new(format!(
        "state-lost-{}",
        guild_wire::audit::hash_hex(format!("{service}{what}").as_bytes())
            .get(..16)
            .unwrap_or_default()
    ))
    .map_err(guild_wire::ErrorBody::from)?;
    let routed = operator_alert(
        format!(
            "CRITICAL: {service}-svc lost state ({what}); it refuses writes until you run \
             `guild admin recover --service {service}`"
        ),
        serde_json::json!({ "service": service, "lost": lost }),
        id.clone(),
        now,
    );
    bus.state()
        .commit(|office| {
            let mut out = Outgoing::new(now);
            if office.message(&id).is_some() {
                return Ok(Planned {
                    records: Vec::new(),
                    outgoing: out,
                    result: (),
                });
            }
            let post = office.post(routed.clone(), now);
            deliveries(&post, &mut out);
            Ok(Planned {
                records: post.records,
                outgoing: out,
                result: (),
            })
        })
        .await
        .map(|_| ())
}

/// Escalates every question whose decision is overdue, one level up, at CRITICAL, each
/// escalation recorded in the audit log. The escalation message's id is derived from the
/// question and the level, so two instances sweeping at once cannot escalate twice.
pub(crate) async fn escalate_overdue(bus: &Bus) -> Result<usize, guild_wire::ErrorBody> {
    let now = guild_service::now();
    let committed = bus
        .state()
        .commit(|office| {
            let due = bus.registry().read(|reg| {
                office.escalations_due(reg, now, |q| {
                    let level = office.question(q).map_or(0, |s| s.escalations.len()) + 1;
                    MessageId::new(format!("{q}-esc-{level}")).unwrap_or_else(|_| q.clone())
                })
            });
            let mut records = Vec::new();
            let mut out = Outgoing::new(now);
            for e in &due {
                deliveries(&e.post, &mut out);
                let q = &e.question.question;
                out.audit(
                    AuditKind::Escalation,
                    &q.from,
                    q.id.as_str(),
                    q.task_id.clone(),
                    &serde_json::json!({
                        "question": q.id,
                        "subject": q.subject,
                        "to": e.post.message.to,
                        "message_id": e.post.message.id,
                        "level": e.question.escalations.len(),
                    }),
                );
                records.extend(e.records.iter().cloned());
            }
            Ok(Planned {
                records,
                outgoing: out,
                result: due.len(),
            })
        })
        .await?;
    if committed.result > 0 {
        tracing::info!(questions = committed.result, "escalated overdue questions");
    }
    Ok(committed.result)
}

/// Ends waits whose time is well past: their instance died before ending them, and a
/// wait left open would take messages nobody answers.
async fn end_abandoned_waits(bus: &Bus) -> Result<(), guild_wire::ErrorBody> {
    let now = guild_service::now();
    let grace = bus.config().sweep_every.as_millis() as u64 * 20;
    bus.state()
        .commit(|office| {
            let records = office
                .expired_waiters(now, grace)
                .into_iter()
                .map(|waiter| OfficeRecord::Left { waiter })
                .collect();
            Ok(Planned {
                records,
                outgoing: Outgoing::new(now),
                result: (),
            })
        })
        .await
        .map(|_| ())
}

/// Moves settled messages past the retention window out of the working set.
async fn archive_settled(bus: &Bus) -> Result<(), guild_wire::ErrorBody> {
    let now = guild_service::now();
    bus.state()
        .commit(|office| {
            Ok(Planned {
                records: office.archive_due(now, ARCHIVE_BATCH).into_iter().collect(),
                outgoing: Outgoing::new(now),
                result: (),
            })
        })
        .await
        .map(|_| ())
}

/// mission-svc's `failed` events become CRITICAL ALERTs to every live agent; its
/// `claim_conflict` events become CRITICAL questions to the claimant's orchestrator. Both
/// are recorded in the audit log. Ids derive from the event, so a redelivered event adds
/// nothing.
async fn follow_missions(bus: Bus, consumer: &'static str, events: &'static [&'static str]) {
    let filters = events
        .iter()
        .map(|e| subject::event(Service::Mission, e, "*"))
        .collect();
    let js = bus.js().clone();
    let stop = bus.stopping();
    guild_service::react(js, consumer, filters, stop, |msg| {
        let bus = bus.clone();
        async move {
            let event = match serde_json::from_slice::<MissionEvent>(&msg.payload) {
                Ok(event) => event,
                Err(e) => {
                    // Not one of the events this reacts to in a form it knows (a newer
                    // writer's): said, then left, rather than redelivered for ever.
                    tracing::warn!(subject = %msg.subject, error = %e, "unreadable mission event skipped");
                    return Ok(());
                }
            };
            react_to(&bus, event).await.map_err(|e| e.to_string())
        }
    })
    .await;
}

/// A reservation spawner-svc refused for want of tokens: the agent asks its orchestrator
/// (or the operator) for a scope decision, the seed's "the agent rejects the work and the
/// orchestrator reallocates or pauses". One open scope question per agent: while it is
/// undecided, further refusals ask no more (the refusal rule, ARCHITECTURE.md
/// "Refusals"), whichever service refused.
async fn follow_budget_refusals(bus: Bus) {
    let filters = vec![subject::event(Service::Spawner, "budget_exceeded", "*")];
    let js = bus.js().clone();
    let stop = bus.stopping();
    guild_service::react(js, BUDGET_REFUSALS_CONSUMER, filters, stop, |msg| {
        let bus = bus.clone();
        async move {
            let event = match serde_json::from_slice::<SpawnerEvent>(&msg.payload) {
                Ok(event) => event,
                Err(e) => {
                    tracing::warn!(subject = %msg.subject, error = %e, "unreadable budget_exceeded event skipped");
                    return Ok(());
                }
            };
            ask_for_scope(&bus, event).await.map_err(|e| e.to_string())
        }
    })
    .await;
}

async fn ask_for_scope(bus: &Bus, event: SpawnerEvent) -> Result<(), guild_wire::ErrorBody> {
    let SpawnerEvent::BudgetExceeded {
        agent_id: Some(agent),
        mission_id,
        reservation_id: Some(reservation),
        requested,
        remaining,
        by,
        ..
    } = event
    else {
        return Ok(());
    };
    bus.registry()
        .sync()
        .await
        .map_err(|e| guild_wire::ErrorBody::from(&e))?;
    let now = guild_service::now();
    let routed = bus.registry().read(|reg| {
        let refused = RefusedWork::Reservation {
            by: &by,
            reservation: &reservation,
            requested,
            remaining,
            mission: mission_id.as_ref(),
        };
        scope_question(reg, &agent, refused, message_id(None), now)
    });
    // An agent gone since (terminated, never known here) asks nothing.
    let Some(mut routed) = routed else {
        return Ok(());
    };
    routed.message.traceparent = trace::current_traceparent();
    bus.state()
        .commit(|office| {
            let mut out = Outgoing::new(now);
            if office.open_scope_question(&agent).is_some() {
                return Ok(Planned {
                    records: Vec::new(),
                    outgoing: out,
                    result: (),
                });
            }
            let post = office.post(routed.clone(), now);
            deliveries(&post, &mut out);
            Ok(Planned {
                records: post.records,
                outgoing: out,
                result: (),
            })
        })
        .await
        .map(|_| ())
}

async fn react_to(bus: &Bus, event: MissionEvent) -> Result<(), guild_wire::ErrorBody> {
    bus.registry()
        .sync()
        .await
        .map_err(|e| guild_wire::ErrorBody::from(&e))?;
    let now = guild_service::now();
    let (id, kind, actor, routed) = match &event {
        MissionEvent::Failed {
            mission_id,
            reason,
            caused_by,
            dependents,
            ..
        } => {
            let id = MessageId::new(format!("failed-{mission_id}"))
                .map_err(guild_wire::ErrorBody::from)?;
            let routed = bus.registry().read(|reg| {
                system_alert(
                    reg,
                    format!("CRITICAL: mission {mission_id} failed for good"),
                    serde_json::json!({
                        "mission_id": mission_id,
                        "reason": reason,
                        "caused_by": caused_by,
                        "dependents": dependents,
                    }),
                    Some(mission_id.clone()),
                    id.clone(),
                    now,
                )
            });
            (
                id,
                AuditKind::Escalation,
                Principal::Service(guild_domain::Service::Bus),
                routed,
            )
        }
        MissionEvent::ClaimConflict {
            mission_id,
            holder,
            claimant,
            at,
            ..
        } => {
            let id = MessageId::new(format!("claim-{mission_id}-{}", at.as_millis()))
                .map_err(guild_wire::ErrorBody::from)?;
            let routed = bus.registry().read(|reg| {
                conflict_question(
                    reg,
                    claimant,
                    format!("Conflict: {claimant} claimed {mission_id}, which {holder} runs"),
                    serde_json::json!({
                        "conflict": "two_claims_on_one_task",
                        "task_id": mission_id,
                        "holder": holder,
                        "claimant": claimant,
                    }),
                    Some(mission_id.clone()),
                    id.clone(),
                    now,
                )
            });
            (
                id,
                AuditKind::Conflict,
                Principal::Agent(claimant.clone()),
                routed,
            )
        }
        MissionEvent::Waiting {
            mission_id,
            reason,
            lost_agent: Some(lost),
            at,
        } => {
            let id = MessageId::new(format!("waiting-{mission_id}-{}", at.as_millis()))
                .map_err(guild_wire::ErrorBody::from)?;
            let routed = bus
                .registry()
                .read(|reg| waiting_notice(reg, lost, mission_id, reason, id.clone(), now));
            (
                id,
                AuditKind::Escalation,
                Principal::Service(guild_domain::Service::Bus),
                routed,
            )
        }
        _ => return Ok(()),
    };
    let open_conflict = match &event {
        MissionEvent::ClaimConflict {
            mission_id,
            claimant,
            ..
        } => Some((claimant.clone(), mission_id.clone())),
        _ => None,
    };
    bus.state()
        .commit(|office| {
            // The same claim conflict, still open, asks no more (a repeated refusal).
            let asked = open_conflict.as_ref().is_some_and(|(claimant, mission)| {
                office
                    .open_conflict_question(claimant, mission, "two_claims_on_one_task")
                    .is_some()
            });
            if asked || office.message(&id).is_some() {
                return Ok(Planned {
                    records: Vec::new(),
                    outgoing: Outgoing::new(now),
                    result: (),
                });
            }
            let post = office.post(routed.clone(), now);
            let mut out = Outgoing::new(now);
            deliveries(&post, &mut out);
            let m = &post.message;
            out.audit(
                kind,
                &actor,
                m.task_id.as_ref().map_or(m.id.as_str(), |t| t.as_str()),
                m.task_id.clone(),
                &serde_json::json!({
                    "message_id": m.id,
                    "subject": m.subject,
                    "to": m.to,
                    "event": event,
                }),
            );
            Ok(Planned {
                records: post.records,
                outgoing: out,
                result: (),
            })
        })
        .await
        .map(|_| ())
}
