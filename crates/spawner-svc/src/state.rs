//! The pool's first write, and the background loops.

use std::time::Duration;

use guild_domain::Principal;
use guild_domain::agent::{Command, Limits, Record, Registry};
use guild_service::{Outgoing, Planned, State};
use guild_wire::ErrorBody;
use tokio::sync::watch;

use crate::Spawner;

/// Saves the pool when the configured size differs from the journal's (a restart with
/// another mode); instances started with the same limits agree without a write.
pub(crate) async fn init_pool(
    state: &State<Registry, Record>,
    limits: Limits,
) -> Result<(), ErrorBody> {
    state
        .commit(|registry| {
            let outgoing = Outgoing::new(guild_service::now());
            if registry.pool().total == limits.token_pool {
                return Ok(Planned {
                    records: vec![],
                    outgoing,
                    result: (),
                });
            }
            let pool = registry.pool().resized(limits.token_pool)?;
            tracing::warn!(
                from = registry.pool().total,
                to = pool.total,
                "token pool resized"
            );
            Ok(Planned {
                records: vec![Record::Pool(pool)],
                outgoing,
                result: (),
            })
        })
        .await
        .map(|_| ())
}

/// Runs the background loops until `stop` turns true: the heartbeat sweep, efficiency
/// sampling, and publishing what dead writers left. Every instance runs them; journal
/// appends are conditional, so each expiry happens once.
pub(crate) fn background(
    spawner: Spawner,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let config = spawner.config().clone();
        let mut liveness =
            tokio::time::interval((config.heartbeat_window / 4).max(Duration::from_millis(25)));
        let mut sample =
            tokio::time::interval(config.efficiency_sample.max(Duration::from_millis(100)));
        let mut settle = tokio::time::interval(
            (config.outbox_grace / 4).clamp(Duration::from_millis(50), Duration::from_secs(1)),
        );
        for t in [&mut liveness, &mut sample, &mut settle] {
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = liveness.tick() => {
                    let window_ms = config.heartbeat_window.as_millis() as u64;
                    if let Err(e) = spawner.execute(&Principal::Operator, Command::ExpireHeartbeats { window_ms }).await {
                        tracing::warn!(error = %e, "heartbeat sweep failed");
                    }
                }
                _ = sample.tick() => {
                    if let Err(e) = spawner.execute(&Principal::Operator, Command::SampleEfficiency).await {
                        tracing::debug!(error = %e, "efficiency sample skipped");
                    }
                }
                _ = settle.tick() => {
                    let state = spawner.state();
                    let now = guild_service::now().as_millis();
                    if let Err(e) = state.journal.settle(&state.publisher, now, config.outbox_grace).await {
                        tracing::warn!(error = %e, "publishing sweep failed");
                    }
                }
            }
        }
    })
}
