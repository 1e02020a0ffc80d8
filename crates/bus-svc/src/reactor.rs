//! Background work every instance runs: escalating overdue questions, turning mission
//! failures into ALERTs and claim conflicts into escalations, archiving settled messages,
//! ending waits whose instance died, and publishing what dead writers left.

use std::time::Duration;

use guild_domain::agent::Event as SpawnerEvent;
use guild_domain::message::{Command, ScalingHeld, ScopeRequest, SpawnRefused, operator_alert};
use guild_domain::mission::Event as MissionEvent;
use guild_domain::{MessageId, Principal, Rejection};
use guild_telemetry::trace;
use guild_wire::subject::{self, Service};

use crate::Bus;
use crate::handler::{Declined, message_id};

/// The durable consumers that hand each mission event bus-svc reacts to to one instance:
/// failures and claim conflicts, and (a consumer of its own, as a consumer's filter is
/// fixed when it is made) missions left waiting by a lost agent.
const MISSION_EVENTS: [(&str, &[&str]); 2] = [
    ("bus-svc-mission-events", &["failed", "claim_conflict"]),
    ("bus-svc-mission-waiting", &["waiting"]),
];

/// The durable consumers that hand each refusal spawner-svc asks a question about to one
/// instance: a reservation refused for want of tokens, a spawn refused by a spawn cap, a
/// scale-up held short (a consumer each, as a consumer's filter is fixed when it is made).
const REFUSAL_CONSUMERS: [(&str, &str); 3] = [
    ("bus-svc-budget-refusals", "budget_exceeded"),
    ("bus-svc-spawn-cap-refusals", "spawn_cap_reached"),
    ("bus-svc-scaling-refusals", "scaling_blocked"),
];

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
        let refusals: Vec<_> = REFUSAL_CONSUMERS
            .into_iter()
            .map(|(consumer, event)| tokio::spawn(follow_refusals(bus.clone(), consumer, event)))
            .collect();
        let mut escalate = tokio::time::interval(Duration::from_secs(1));
        let mut tidy = tokio::time::interval(Duration::from_secs(5));
        let mut archive = tokio::time::interval(config.archive_every);
        for t in [&mut escalate, &mut tidy, &mut archive] {
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        loop {
            tokio::select! {
                _ = stop.changed() => break,
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
        refusals.iter().for_each(|r| r.abort());
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
            let event = match serde_json::from_slice::<serde_json::Value>(&msg.payload) {
                Ok(event) => event,
                Err(e) => {
                    guild_service::skip_unreadable(STATE_LOST_CONSUMER, &msg, &e);
                    return Ok(());
                }
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
    bus.execute(
        &Principal::Service(guild_domain::Service::Bus),
        &Command::Notify(Box::new(routed)),
        now,
        |_, _| Ok(()),
    )
    .await?;
    Ok(())
}

/// Escalates every question whose decision is overdue, one level up, at CRITICAL, each
/// escalation recorded in the audit log. The escalation message's id is derived from the
/// question and the level, so two instances sweeping at once cannot escalate twice.
pub(crate) async fn escalate_overdue(bus: &Bus) -> Result<usize, guild_wire::ErrorBody> {
    let committed = bus
        .execute(
            &Principal::Service(guild_domain::Service::Bus),
            &Command::EscalateOverdue,
            guild_service::now(),
            |_, told| Ok(told.posted.len()),
        )
        .await?;
    if committed.result > 0 {
        tracing::info!(questions = committed.result, "escalated overdue questions");
    }
    Ok(committed.result)
}

/// Ends waits whose time is well past: their instance died before ending them, and a
/// wait left open would take messages nobody answers.
async fn end_abandoned_waits(bus: &Bus) -> Result<(), guild_wire::ErrorBody> {
    let grace_ms = bus.config().sweep_every.as_millis() as u64 * 20;
    bus.execute(
        &Principal::Service(guild_domain::Service::Bus),
        &Command::EndAbandonedWaits { grace_ms },
        guild_service::now(),
        |_, _| Ok(()),
    )
    .await?;
    Ok(())
}

/// Moves settled messages past the retention window out of the working set.
async fn archive_settled(bus: &Bus) -> Result<(), guild_wire::ErrorBody> {
    bus.execute(
        &Principal::Service(guild_domain::Service::Bus),
        &Command::Archive {
            limit: ARCHIVE_BATCH,
        },
        guild_service::now(),
        |_, _| Ok(()),
    )
    .await?;
    Ok(())
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
                    guild_service::skip_unreadable(consumer, &msg, &e);
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
/// orchestrator reallocates or pauses". A spawn refused by a spawn cap: the would-be
/// parent asks what to do. One open question per agent and reason: while it is
/// undecided, further refusals ask no more (the refusal rule, ARCHITECTURE.md
/// "Refusals"), whichever service refused.
async fn follow_refusals(bus: Bus, consumer: &'static str, event: &'static str) {
    let filters = vec![subject::event(Service::Spawner, event, "*")];
    let js = bus.js().clone();
    let stop = bus.stopping();
    guild_service::react(js, consumer, filters, stop, |msg| {
        let bus = bus.clone();
        async move {
            let event = match serde_json::from_slice::<SpawnerEvent>(&msg.payload) {
                Ok(event) => event,
                Err(e) => {
                    guild_service::skip_unreadable(consumer, &msg, &e);
                    return Ok(());
                }
            };
            ask_for_scope(&bus, event).await.map_err(|e| e.to_string())
        }
    })
    .await;
}

async fn ask_for_scope(bus: &Bus, event: SpawnerEvent) -> Result<(), guild_wire::ErrorBody> {
    let (agent, refused) = match event {
        SpawnerEvent::BudgetExceeded {
            agent_id: Some(agent),
            mission_id,
            reservation_id: Some(reservation),
            requested,
            remaining,
            by,
            ..
        } => (
            agent,
            ScopeRequest::Reservation {
                by,
                reservation,
                requested,
                remaining,
                mission: mission_id,
            },
        ),
        SpawnerEvent::SpawnCapReached {
            agent_id,
            child,
            holder,
            cap,
            limit,
            current,
            by,
            ..
        } => (
            agent_id,
            ScopeRequest::Spawn(SpawnRefused {
                child,
                holder,
                cap,
                limit,
                current,
                by,
            }),
        ),
        SpawnerEvent::ScalingBlocked {
            agent_id,
            role,
            ready,
            members,
            wanted,
            rule,
            reason,
            ..
        } => (
            agent_id,
            ScopeRequest::Scaling(ScalingHeld {
                role,
                ready,
                members,
                wanted,
                rule,
                reason,
            }),
        ),
        _ => return Ok(()),
    };
    bus.registry()
        .sync()
        .await
        .map_err(|e| guild_wire::ErrorBody::from(&e))?;
    let ask = Command::AskForScope {
        agent,
        refused,
        id: message_id(None),
        traceparent: trace::current_traceparent(),
    };
    let by = Principal::Service(guild_domain::Service::Bus);
    match bus
        .execute(&by, &ask, guild_service::now(), |_, _| Ok(()))
        .await
    {
        // An agent gone since (terminated, never known here) asks nothing.
        Err(Declined {
            rejection: Some(Rejection::UnknownAgent { .. }),
            ..
        }) => Ok(()),
        other => other.map(|_| ()).map_err(guild_wire::ErrorBody::from),
    }
}

async fn react_to(bus: &Bus, event: MissionEvent) -> Result<(), guild_wire::ErrorBody> {
    bus.registry()
        .sync()
        .await
        .map_err(|e| guild_wire::ErrorBody::from(&e))?;
    bus.execute(
        &Principal::Service(guild_domain::Service::Bus),
        &Command::React(Box::new(event)),
        guild_service::now(),
        |_, _| Ok(()),
    )
    .await?;
    Ok(())
}
