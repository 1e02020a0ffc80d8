//! The registry as stored: how bucket keys fold into it, the pool's first write, and the
//! background loops.

use std::time::Duration;

use guild_domain::agent::{Command, Efficiency, Limits, MissionLedger, Pool, Record, Registry};
use guild_domain::{AgentId, Principal};
use guild_service::{Planned, State};
use guild_store::{Change, Write};
use guild_wire::ErrorBody;
use guild_wire::store::{self, POOL_KEY};
use tokio::sync::watch;

use crate::Spawner;

/// Folds one bucket change into the registry. Keys: `agent.<id>`, `pool`,
/// `ledger.<mission>`, `efficiency`; `outbox.*` keys are not state.
pub(crate) fn fold(registry: &mut Registry, change: Change<'_>) {
    let Change::Put { key, value } = change else {
        return;
    };
    let record = if let Some(id) = key.strip_prefix("agent.") {
        decode(key, value)
            .map(Record::Agent)
            .filter(|_| AgentId::new(id).is_ok())
    } else if key == POOL_KEY {
        decode::<Pool>(key, value).map(Record::Pool)
    } else if key.starts_with("ledger.") {
        decode::<MissionLedger>(key, value).map(Record::Ledger)
    } else if key == store::EFFICIENCY_KEY {
        decode::<Efficiency>(key, value).map(Record::Efficiency)
    } else {
        None
    };
    if let Some(r) = record {
        registry.apply(r);
    }
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, value: &[u8]) -> Option<T> {
    serde_json::from_slice(value)
        .inspect_err(|e| tracing::error!(key, error = %e, "unreadable record ignored"))
        .ok()
}

/// The bytes stored for a record (the record's own value, not the tagged enum).
pub(crate) fn encode(record: &Record) -> bytes::Bytes {
    let json = match record {
        Record::Agent(a) => serde_json::to_vec(a),
        Record::Pool(p) => serde_json::to_vec(p),
        Record::Ledger(l) => serde_json::to_vec(l),
        Record::Efficiency(e) => serde_json::to_vec(e),
    };
    bytes::Bytes::from(json.unwrap_or_default())
}

/// Writes the pool the first time any instance starts, or resizes it when the configured
/// token pool changed since.
pub(crate) async fn init_pool(state: &State<Registry>, limits: Limits) -> Result<(), ErrorBody> {
    state
        .commit(|registry, revisions| {
            let expect = revisions.expect(POOL_KEY);
            let pool = match expect {
                guild_store::Expect::Absent => Pool::new(limits.token_pool),
                _ if registry.pool().total == limits.token_pool => {
                    return Ok(Planned {
                        writes: vec![],
                        outgoing: guild_service::Outgoing::new(guild_service::now()),
                        result: (),
                    });
                }
                _ => registry.pool().resized(limits.token_pool)?,
            };
            if expect != guild_store::Expect::Absent {
                tracing::warn!(
                    from = registry.pool().total,
                    to = pool.total,
                    "token pool resized"
                );
            }
            let value = encode(&Record::Pool(pool));
            Ok(Planned {
                writes: vec![Write {
                    key: POOL_KEY.into(),
                    value,
                    expect,
                }],
                outgoing: guild_service::Outgoing::new(guild_service::now()),
                result: (),
            })
        })
        .await
        .map(|_| ())
}

/// Runs the background loops until `stop` turns true: the heartbeat sweep, efficiency
/// sampling, and the outbox sweeper. Every instance runs them; conditional writes make
/// sure each expiry happens once.
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
        let mut sweep =
            tokio::time::interval((config.outbox_grace / 2).max(Duration::from_millis(100)));
        for t in [&mut liveness, &mut sample, &mut sweep] {
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
                _ = sweep.tick() => {
                    let now = guild_service::now().as_millis();
                    if let Err(e) = spawner.state().outbox.sweep(now, config.outbox_grace).await {
                        tracing::warn!(error = %e, "outbox sweep failed");
                    }
                }
            }
        }
    })
}
