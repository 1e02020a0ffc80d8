//! The autoscaler: spawner-svc follows mission-svc's board read-only and, every
//! `--autoscale-every`, gives each scaling policy the load it sees
//! (`Command::Autoscale`, decided by the registry's rules like any spawn).
//!
//! Every instance does this. Two that see the same load decide the same change, with the
//! same member names; the journal's conditional append takes one, and the other, decided
//! again on the state that includes it, finds nothing left to do. A tick that changes
//! nothing writes nothing.

use std::time::Duration;

use guild_domain::agent::{Command, Role};
use guild_domain::mission::{Board, Mission};
use guild_domain::{AgentId, Phase, Principal};
use guild_store::Journal;
use tokio::sync::watch;

use crate::Spawner;

/// Guild applying a policy on its own account.
const ME: Principal = Principal::Service(guild_domain::Service::Spawner);

/// Runs until `stop` turns true.
pub(crate) async fn run(spawner: Spawner, mut stop: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(spawner.config().autoscale_every);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Followed once the first policy is set: a spawner without policies needs no
    // mission-svc, and waits for none.
    let mut board: Option<Journal<Board, Mission>> = None;
    let mut frozen = false;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = every.tick() => {}
        }
        let policies = spawner.state().read_local(|r| {
            r.scalings()
                .filter(|s| r.agent(&s.policy.owner).is_some_and(|o| o.is_live()))
                .map(|s| {
                    (
                        s.policy.owner.clone(),
                        s.policy.role.clone(),
                        s.policy.phase,
                    )
                })
                .collect::<Vec<(AgentId, Role, Option<Phase>)>>()
        });
        if policies.is_empty() {
            continue;
        }
        let missions = match &board {
            Some(b) => b,
            None => {
                let js = async_nats::jetstream::new(spawner.client().clone());
                let durability = spawner.config().common.durability();
                let follow = guild_service::follow_board(&js, durability);
                tokio::select! {
                    _ = stop.changed() => return,
                    followed = follow => match followed {
                        Ok(b) => board.insert(b),
                        Err(e) => {
                            tracing::warn!(error = %e, "autoscaler: mission-svc's board is not readable yet");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            continue;
                        }
                    },
                }
            }
        };
        // A board that stopped following (an entry it could not read) holds a frozen
        // load: scaling on it would be wrong, so nothing is scaled until a restart.
        if let Some(e) = missions.failure() {
            if !frozen {
                tracing::error!(error = %e, "autoscaler: mission-svc's board stopped following; no scaling until spawner-svc restarts");
                frozen = true;
            }
            continue;
        }
        let awaited: Vec<AgentId> = missions.read(|b| b.awaited().into_iter().collect());
        for (owner, role, phase) in policies {
            let ready = missions.read(|b| b.ready_for(&role, phase));
            let tick = Command::Autoscale {
                owner: owner.clone(),
                role: role.clone(),
                ready,
                awaited: awaited.clone(),
            };
            if let Err(e) = spawner.execute(&ME, tick).await {
                tracing::warn!(%owner, %role, error = %e, "autoscale tick failed");
            }
        }
    }
}
