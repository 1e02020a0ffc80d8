//! The pool's first write, and the background loops.

use std::time::Duration;

use guild_domain::Principal;
use guild_domain::agent::{Command, Limits, Record, Registry};
use guild_service::{Outgoing, Planned, State};
use guild_wire::ErrorBody;
use tokio::sync::watch;

use crate::Spawner;

/// The spawner's storage as `serve` sees it: accepting a lost journal also puts the pool
/// back at its configured size, since the entries that said what it was are gone.
pub(crate) struct Storage {
    pub(crate) state: State<Registry, Record>,
    pub(crate) limits: Limits,
}

impl guild_service::lost::Storage for Storage {
    fn lost(&self) -> Vec<guild_store::Lost> {
        self.state.lost()
    }

    fn watch(&self) -> Vec<watch::Receiver<Vec<guild_store::Lost>>> {
        guild_service::lost::Storage::watch(&self.state)
    }

    fn recover<'a>(
        &'a self,
        by: &'a Principal,
        request: guild_wire::api::Recover,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<guild_wire::api::Recovered, ErrorBody>>
                + Send
                + 'a,
        >,
    > {
        Box::pin(async move {
            let recovered = guild_service::lost::Storage::recover(&self.state, by, request).await?;
            init_pool(&self.state, self.limits).await?;
            Ok(recovered)
        })
    }
}

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
        .map_err(ErrorBody::from)
}

/// The seed's context-window utilization and parallelization efficiency as gauges, read
/// from this instance's registry when metrics are exported (`guild_telemetry::metrics`).
pub(crate) fn gauges(state: &State<Registry, Record>) {
    use guild_telemetry::KeyValue;
    use guild_telemetry::metrics::ratio_gauge;
    let view = state.clone();
    ratio_gauge(
        "guild.agent.context_window.utilization",
        "Mean context-window utilization of live agents that reported one (target 80-90%).",
        move || {
            view.read_local(|r| {
                r.stats(guild_service::now(), 0.0)
                    .context_window_utilization
            })
            .map(|u| (u, Vec::new()))
            .into_iter()
            .collect()
        },
    );
    let view = state.clone();
    ratio_gauge(
        "guild.agent.parallelization.efficiency",
        "Working agents over max agents: now (window=current) and time-averaged (window=average); target 70%+.",
        move || {
            let e = view.read_local(|r| {
                r.stats(guild_service::now(), 0.0)
                    .parallelization_efficiency
            });
            vec![
                (e.current, vec![KeyValue::new("window", "current")]),
                (e.average, vec![KeyValue::new("window", "average")]),
            ]
        },
    );
}

/// The spawner acting on its own account (expiring heartbeats, sampling).
const ME: Principal = Principal::Service(guild_domain::Service::Spawner);

/// How often the registry's revocations are compared with what the server holds (in
/// memory; the server is asked only when they differ, and every [`RECHECK_EVERY`] rounds).
const REVOCATION_CHECK: Duration = Duration::from_millis(100);
const RECHECK_EVERY: u64 = 20;

/// Runs the background loops until `stop` turns true: the heartbeat sweep, efficiency
/// sampling, the autoscaler (`autoscaler.rs`), and pushing revocations (the runtime publishes what dead writers left). Every instance runs them; journal
/// appends are conditional, so each expiry happens once.
pub(crate) fn background(
    spawner: Spawner,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let config = spawner.config().clone();
        let quota = spawner
            .keeper()
            .map(|k| k.enforce_connection_limit(stop.clone()));
        let autoscaler = tokio::spawn(crate::autoscaler::run(spawner.clone(), stop.clone()));
        let mut liveness =
            tokio::time::interval((config.heartbeat_window / 4).max(Duration::from_millis(25)));
        let mut sample =
            tokio::time::interval(config.efficiency_sample.max(Duration::from_millis(100)));
        // Revocations reach the server within this period of the change that made them.
        let mut revocations = tokio::time::interval(REVOCATION_CHECK);
        let mut rounds = 0u64;
        for t in [&mut liveness, &mut sample, &mut revocations] {
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        loop {
            tokio::select! {
                _ = stop.changed() => {
                    if let Some(q) = quota {
                        q.abort();
                    }
                    let _ = autoscaler.await;
                    return;
                }
                _ = liveness.tick() => {
                    let sweep = Command::ExpireHeartbeats {
                        window_ms: config.heartbeat_window.as_millis() as u64,
                        first_within_ms: config.first_heartbeat_within.as_millis() as u64,
                    };
                    if let Err(e) = spawner.execute(&ME, sweep).await {
                        tracing::warn!(error = %e, "heartbeat sweep failed");
                    }
                }
                _ = revocations.tick() => {
                    if let Some(keeper) = spawner.keeper() {
                        // Now and then ask the server again: it may have restarted, or
                        // another instance may have pushed without the newest key.
                        rounds += 1;
                        if rounds.is_multiple_of(RECHECK_EVERY) {
                            keeper.forget().await;
                        }
                        let wanted = spawner.state().read_local(Registry::revocations);
                        if let Err(e) = keeper.reconcile(&wanted).await {
                            tracing::warn!(error = %e, "revocations not pushed yet");
                        }
                    }
                }
                _ = sample.tick() => {
                    if let Err(e) = spawner.execute(&ME, Command::SampleEfficiency).await {
                        tracing::debug!(error = %e, "efficiency sample skipped");
                    }
                }
            }
        }
    })
}
