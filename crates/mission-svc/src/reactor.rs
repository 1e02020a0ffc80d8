//! Background work every instance runs: agent loss, reconciliation with the spawner,
//! archiving, and publishing what dead writers left.

use std::time::Duration;

use guild_domain::agent::Event as SpawnerEvent;
use guild_domain::mission::{Command, Event, MissionStatus};
use guild_domain::{AgentId, MissionId, Principal, allocation};
use tokio::sync::watch;

use crate::Missions;

/// The durable consumer that hands each `task_released` event to one instance.
const AGENT_LOSS_CONSUMER: &str = "mission-svc-agent-loss";

/// Runs the loops until `stop` turns true.
pub(crate) fn background(
    missions: Missions,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let config = missions.config().clone();
        let losses = tokio::spawn(follow_agent_losses(missions.clone(), stop.clone()));
        let mut reconcile = tokio::time::interval(config.reconcile_every);
        let mut archive = tokio::time::interval(Duration::from_secs(60));
        for t in [&mut reconcile, &mut archive] {
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = reconcile.tick() => reconcile_allocations(&missions).await,
                _ = archive.tick() => {
                    if let Some(after) = config.archive_after {
                        let cmd = Command::ArchiveOlderThan { older_than_ms: after.as_millis() as u64 };
                        if let Err(e) = missions.execute(&Principal::Service(guild_domain::Service::Mission), cmd).await {
                            tracing::warn!(error = %e, "archiving failed");
                        }
                    }
                }
            }
        }
        losses.abort();
    })
}

/// Reads the spawner's `task_released` events through a durable consumer shared by every
/// instance (each event handled once), and retries the missions of lost agents.
async fn follow_agent_losses(missions: Missions, stop: watch::Receiver<bool>) {
    let filter =
        guild_wire::subject::event(guild_wire::subject::Service::Spawner, "task_released", "*");
    let js = missions.js().clone();
    guild_service::react(js, AGENT_LOSS_CONSUMER, vec![filter], stop, |msg| {
        let missions = missions.clone();
        async move {
            match serde_json::from_slice(&msg.payload) {
                Ok(SpawnerEvent::TaskReleased {
                    agent_id,
                    task_id,
                    agent_lost: true,
                    ..
                }) => agent_lost(&missions, &agent_id, &task_id)
                    .await
                    .map_err(|e| format!("agent {agent_id}, mission {task_id}: {e}")),
                // A release the agent asked for: nothing to retry.
                Ok(_) => Ok(()),
                Err(e) => {
                    guild_service::skip_unreadable(AGENT_LOSS_CONSUMER, &msg, &e);
                    Ok(())
                }
            }
        }
    })
    .await;
}

/// The agent running `mission` is gone: the attempt fails (counting it), and if the mission
/// may retry it goes to a free agent of the lost agent's own team (`allocation::fallback`),
/// or waits READY with an event saying so, which bus-svc turns into a word to the lost
/// agent's orchestrator.
pub(crate) async fn agent_lost(
    missions: &Missions,
    agent: &AgentId,
    mission: &MissionId,
) -> Result<(), guild_wire::ErrorBody> {
    missions
        .state()
        .sync()
        .await
        .map_err(|e| guild_wire::ErrorBody::from(&e))?;
    let running_here = missions.state().read_local(|b| {
        b.mission(mission).is_some_and(|m| {
            m.status == MissionStatus::Active && m.assigned_agent_id.as_ref() == Some(agent)
        })
    });
    if !running_here {
        return Ok(());
    }
    let reason = format!("agent {agent} was lost");
    missions
        .execute(
            &Principal::Service(guild_domain::Service::Mission),
            Command::Fail {
                mission: mission.clone(),
                reason,
                retry: true,
                agent_lost: true,
            },
        )
        .await?;
    let ready = missions.state().read_local(|b| {
        b.mission(mission)
            .is_some_and(|m| m.status == MissionStatus::Ready)
    });
    if !ready {
        return Ok(());
    }
    missions
        .registry()
        .sync()
        .await
        .map_err(|e| guild_wire::ErrorBody::from(&e))?;
    let phase = missions
        .state()
        .read_local(|b| b.mission(mission).map(|m| m.phase));
    let candidates = phase.map_or_else(Vec::new, |phase| {
        missions
            .registry()
            .read(|r| allocation::fallback(r, agent, phase))
    });
    for candidate in candidates {
        match missions
            .assign(
                &Principal::Service(guild_domain::Service::Mission),
                mission,
                Some(candidate.clone()),
            )
            .await
        {
            Ok(_) => {
                tracing::info!(mission = %mission, lost = %agent, to = %candidate, "mission retried on another agent");
                return Ok(());
            }
            Err(e) => tracing::debug!(candidate = %candidate, error = %e, "candidate refused"),
        }
    }
    missions
        .announce(Event::Waiting {
            mission_id: mission.clone(),
            reason: format!(
                "agent {agent} was lost and no free agent of its team with its role can take \
                 the mission"
            ),
            lost_agent: Some(agent.clone()),
            at: guild_service::now(),
        })
        .await
}

/// Repairs what a crash between the spawner and the board can leave: an agent holding a
/// mission that is not running on it (released), and a running mission whose agent ended
/// (treated as lost, in case its event was missed).
async fn reconcile_allocations(missions: &Missions) {
    if missions.registry().sync().await.is_err() || missions.state().sync().await.is_err() {
        return;
    }
    let now = guild_service::now();
    let settle_ms = missions.allocation_grace_ms();
    // The one rule (guild_domain::allocation), read board then registry (the order every
    // nested read takes, `authorize` too). An allocation its mission does not run on is
    // released once no start can follow it, however often its agent heartbeats; only
    // that allocation (a later one of the same agent is not this one's to undo).
    let (stray, unheld) = missions.state().read_local(|b| {
        missions.registry().read(|r| {
            let stray: Vec<_> = allocation::stray(r, b, now, settle_ms)
                .into_iter()
                .map(|(a, m)| {
                    let at = r.agent(&a).and_then(|p| p.assigned_at);
                    (a, m, at)
                })
                .collect();
            (stray, allocation::unheld(r, b, now, settle_ms))
        })
    });
    for (agent, mission, allocated_at) in stray {
        tracing::info!(agent = %agent, mission = %mission, "releasing an allocation the board does not hold");
        missions
            .release_allocation(
                &agent,
                &mission,
                allocated_at,
                "reconciled: the mission is not running on this agent",
            )
            .await;
    }
    // The reverse, after a start appended past every deadline: the mission goes back to
    // its agent when that is free, or is retried elsewhere.
    for (agent, mission) in unheld {
        let phase = missions
            .state()
            .read_local(|b| b.mission(&mission).map(|m| m.phase));
        let given_back = missions
            .guild(&Principal::Service(guild_domain::Service::Mission))
            .spawner()
            .allocate_task(&agent, &mission, phase)
            .await;
        if given_back.is_err()
            && let Err(e) = agent_lost(missions, &agent, &mission).await
        {
            tracing::warn!(agent = %agent, mission = %mission, error = %e, "could not retry a mission its agent let go of");
        }
    }
    let orphaned: Vec<(AgentId, MissionId)> = missions.state().read_local(|b| {
        b.missions()
            .filter(|m| {
                m.status == MissionStatus::Active
                    && m.started_at
                        .is_some_and(|t| now.millis_since(t) > settle_ms)
            })
            .filter_map(|m| Some((m.assigned_agent_id.clone()?, m.id.clone())))
            .collect()
    });
    for (agent, mission) in orphaned {
        let ended = missions
            .registry()
            .read(|r| r.agent(&agent).is_none_or(|a| !a.is_live()));
        if ended && let Err(e) = agent_lost(missions, &agent, &mission).await {
            tracing::warn!(agent = %agent, mission = %mission, error = %e, "could not retry an orphaned mission");
        }
    }
}
