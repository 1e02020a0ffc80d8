//! The fault injector: a schedule drawn from the seed (which faults, in which order, at
//! which second, against which target), then each fault carried out and recorded in the
//! injector's log with when it began and when it was over. Every kind of the mode is in
//! every round of the schedule, so a run in which a kind was injected zero times is a
//! broken run (the checker fails it), never a lucky one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use guild_testkit::Cluster;
use guild_testkit::process::Signal;
use guild_wire::store;
use guild_wire::subject::Service;

use crate::deploy::{INSTANCES, SERVICES, Shared};
use crate::driver::Driver;
use crate::record::{Log, Op, now_ms};
use crate::rng::Rng;

/// Single node or cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Single,
    Cluster,
}

impl Mode {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Single => "single",
            Mode::Cluster => "cluster",
        }
    }
}

/// A kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// kill -9 of a service instance, then started again.
    KillService,
    /// kill -9 of the (only) nats-server, started again on its store.
    KillNats,
    /// SIGSTOP of a service instance for longer than the heartbeat window.
    PauseService,
    /// SIGSTOP of an agent process for longer than the heartbeat window (it is FAILED).
    PauseAgent,
    /// kill -9 of the node leading the spawner's journal, started again after a while.
    KillLeader,
    /// A node cut off from the others and the clients, then healed.
    Partition,
    /// Every node restarted in turn (kill -9 and start), each back in step before the next.
    RollingRestart,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::KillService => "kill -9 service instance",
            Kind::KillNats => "kill -9 nats-server",
            Kind::PauseService => "SIGSTOP service instance",
            Kind::PauseAgent => "SIGSTOP agent",
            Kind::KillLeader => "kill -9 stream leader's node",
            Kind::Partition => "partition a node",
            Kind::RollingRestart => "rolling restart",
        }
    }

    /// The kinds of a mode.
    pub(crate) fn of(mode: Mode) -> &'static [Kind] {
        match mode {
            Mode::Single => &[
                Kind::KillService,
                Kind::KillNats,
                Kind::PauseService,
                Kind::PauseAgent,
            ],
            Mode::Cluster => &[
                Kind::KillLeader,
                Kind::Partition,
                Kind::RollingRestart,
                Kind::KillService,
                Kind::PauseAgent,
            ],
        }
    }
}

/// One planned fault.
#[derive(Clone, Debug)]
pub(crate) struct Fault {
    /// When, from the start of the workload.
    pub(crate) at: Duration,
    pub(crate) kind: Kind,
    /// Which target (an index, taken modulo what there is when the fault comes).
    pub(crate) target: u64,
    /// How long a pause, a cut or a node's absence lasts.
    pub(crate) hold: Duration,
}

/// How long one round of the schedule takes: every kind of the mode once or more.
fn round(mode: Mode) -> Duration {
    match mode {
        Mode::Single => Duration::from_secs(120),
        Mode::Cluster => Duration::from_secs(150),
    }
}

/// The schedule for `duration` of workload: rounds of faults, shuffled, spread out with
/// jitter after a 5 s start. In a single-node round every service instance is killed
/// once, nats-server once, two service pauses and two agent pauses; in a cluster round
/// the leader's node, a partition, a rolling restart, two service kills, an agent pause.
pub(crate) fn schedule(mode: Mode, seed: u64, duration: Duration, window: Duration) -> Vec<Fault> {
    let mut rng = Rng::new(seed).fork(&format!("faults-{}", mode.name()));
    let rounds = (duration.as_secs() / round(mode).as_secs()).max(1);
    let mut faults = Vec::new();
    let slots = (SERVICES.len() * INSTANCES) as u64;
    let window_ms = window.as_millis() as u64;
    for _ in 0..rounds {
        let mut kinds: Vec<(Kind, u64)> = match mode {
            Mode::Single => {
                let mut k: Vec<(Kind, u64)> = (0..slots).map(|i| (Kind::KillService, i)).collect();
                k.push((Kind::KillNats, 0));
                k.push((Kind::PauseService, rng.below(slots)));
                k.push((Kind::PauseService, rng.below(slots)));
                k.push((Kind::PauseAgent, rng.next_u64()));
                k.push((Kind::PauseAgent, rng.next_u64()));
                k
            }
            Mode::Cluster => vec![
                (Kind::KillLeader, 0),
                (Kind::Partition, rng.below(3)),
                (Kind::RollingRestart, 0),
                (Kind::KillService, rng.below(slots)),
                (Kind::KillService, rng.below(slots)),
                (Kind::PauseAgent, rng.next_u64()),
            ],
        };
        rng.shuffle(&mut kinds);
        for (kind, target) in kinds {
            let hold = match kind {
                Kind::KillService | Kind::RollingRestart => 0,
                Kind::KillNats => rng.between(1_000, 3_000),
                Kind::PauseService => rng.between(window_ms + 500, window_ms + 3_000),
                Kind::PauseAgent => rng.between(window_ms + 1_500, window_ms + 3_000),
                Kind::KillLeader => rng.between(3_000, 6_000),
                Kind::Partition => rng.between(5_000, 9_000),
            };
            faults.push(Fault {
                at: Duration::ZERO,
                kind,
                target,
                hold: Duration::from_millis(hold),
            });
        }
    }
    // Spread over [5 s, duration - 10 s], one slot per fault, jittered within its slot.
    let start = 5_000u64;
    let span = (duration.as_millis() as u64)
        .saturating_sub(start + 10_000)
        .max(1_000);
    let width = (span / faults.len().max(1) as u64).max(1);
    for (i, f) in faults.iter_mut().enumerate() {
        f.at = Duration::from_millis(start + i as u64 * width + rng.below(width / 3 + 1));
    }
    faults
}

/// What the injector works with.
pub(crate) struct Injector {
    pub(crate) deploy: Shared,
    /// Unlimited credentials, to look at the streams and ping the services.
    pub(crate) admin: async_nats::Client,
    pub(crate) log: Arc<Log>,
    /// The cluster's hosts (for partitions); its nodes are in the deployment.
    pub(crate) cluster: Option<Arc<Cluster>>,
    pub(crate) driver: Arc<Driver>,
    /// The operator's credentials file: the control connection of revocation probes.
    pub(crate) operator_creds: std::path::PathBuf,
}

impl Injector {
    /// Carries out `plan` from `started` on; returns once the last fault is over and
    /// `duration` has passed.
    pub(crate) async fn run(&self, plan: &[Fault], started: Instant, duration: Duration) {
        for f in plan {
            tokio::time::sleep_until((started + f.at).into()).await;
            self.inject(f).await;
        }
        tokio::time::sleep_until((started + duration).into()).await;
    }

    fn record(&self, t0: u64, kind: Kind, target: String, note: String, caught_up: Option<u64>) {
        eprintln!(
            "guild-chaos: fault {:<30} {target} ({note}{})",
            kind.name(),
            caught_up.map_or(String::new(), |c| format!(", back in step {c} ms later"))
        );
        self.log.write(
            t0,
            Op::Fault {
                kind: kind.name().to_owned(),
                target,
                until: now_ms(),
                note,
                caught_up_ms: caught_up,
            },
        );
    }

    async fn inject(&self, f: &Fault) {
        let t0 = now_ms();
        match f.kind {
            Kind::KillService => {
                let mut d = self.deploy.lock().await;
                let i = (f.target as usize) % d.slots.len();
                let name = d.slots[i].name.clone();
                let Some(status) = d.kill_slot(i, "killed by the injector (kill -9)").await else {
                    drop(d);
                    return self.record(t0, f.kind, name, "was not running".into(), None);
                };
                let note = match d.restart_slot(i, &self.admin).await {
                    Ok(took) => format!("{status}; answering again after {} ms", took.as_millis()),
                    Err(e) => format!("{status}; could not be started again: {e:#}"),
                };
                drop(d);
                self.record(t0, f.kind, name, note, None);
            }
            Kind::PauseService => {
                let (name, paused) = {
                    let mut d = self.deploy.lock().await;
                    let i = (f.target as usize) % d.slots.len();
                    let name = d.slots[i].name.clone();
                    let ok = match d.slots[i].process.as_mut() {
                        Some(p) => p.pause().await.is_ok(),
                        None => false,
                    };
                    (name, ok.then_some(i))
                };
                let Some(i) = paused else {
                    return self.record(t0, f.kind, name, "was not running".into(), None);
                };
                tokio::time::sleep(f.hold).await;
                let mut d = self.deploy.lock().await;
                if let Some(p) = d.slots[i].process.as_mut() {
                    let _ = p.resume().await;
                }
                drop(d);
                self.record(
                    t0,
                    f.kind,
                    name,
                    format!("paused {} ms", f.hold.as_millis()),
                    None,
                );
            }
            Kind::PauseAgent => {
                let target = {
                    let mut d = self.deploy.lock().await;
                    let live: Vec<String> = d
                        .agents
                        .iter()
                        .filter(|(_, a)| !a.paused)
                        .map(|(id, _)| id.clone())
                        .collect();
                    match live.get((f.target as usize) % live.len().max(1)).cloned() {
                        Some(id) if d.signal_agent(&id, Signal::Stop).await => Some(id),
                        _ => None,
                    }
                };
                let Some(agent) = target else {
                    return self.record(
                        t0,
                        f.kind,
                        "-".into(),
                        "no agent process to pause".into(),
                        None,
                    );
                };
                tokio::time::sleep(f.hold).await;
                self.deploy
                    .lock()
                    .await
                    .signal_agent(&agent, Signal::Cont)
                    .await;
                self.record(
                    t0,
                    f.kind,
                    agent,
                    format!("paused {} ms", f.hold.as_millis()),
                    None,
                );
            }
            Kind::KillNats => {
                {
                    let mut d = self.deploy.lock().await;
                    tokio::task::block_in_place(|| d.nodes[0].kill());
                    d.record_exit(
                        "nats-server",
                        "signal 9 (SIGKILL)".into(),
                        "killed by the injector (kill -9)",
                        true,
                    );
                }
                tokio::time::sleep(f.hold).await;
                {
                    let mut d = self.deploy.lock().await;
                    tokio::task::block_in_place(|| d.nodes[0].resume());
                }
                self.record(
                    t0,
                    f.kind,
                    "nats-server".into(),
                    format!("down {} ms", f.hold.as_millis()),
                    None,
                );
                self.probe_revoked(t0, f.kind.name()).await;
            }
            Kind::KillLeader => {
                let leader = self
                    .leader(&store::journal_stream(store::journal_of(Service::Spawner)))
                    .await;
                let i = leader.unwrap_or(0);
                let name = {
                    let mut d = self.deploy.lock().await;
                    tokio::task::block_in_place(|| d.nodes[i].kill());
                    let name = format!("nats-server {}", d.nodes[i].name());
                    d.record_exit(
                        &name,
                        "signal 9 (SIGKILL)".into(),
                        "killed by the injector (kill -9)",
                        true,
                    );
                    name
                };
                tokio::time::sleep(f.hold).await;
                {
                    let mut d = self.deploy.lock().await;
                    tokio::task::block_in_place(|| d.nodes[i].resume());
                }
                let back = Instant::now();
                let caught = self.caught_up(back).await;
                let note = format!(
                    "{}; down {} ms",
                    if leader.is_some() {
                        "the spawner journal's leader"
                    } else {
                        "leader unknown, node 0"
                    },
                    f.hold.as_millis()
                );
                self.record(t0, f.kind, name, note, caught);
                self.probe_revoked(t0, f.kind.name()).await;
            }
            Kind::Partition => {
                let Some(cluster) = &self.cluster else { return };
                let i = (f.target as usize) % 3;
                let name = format!("guild-n{i}");
                tokio::task::block_in_place(|| cluster.partition(i));
                tokio::time::sleep(f.hold).await;
                tokio::task::block_in_place(|| cluster.heal(i));
                let caught = self.caught_up(Instant::now()).await;
                self.record(
                    t0,
                    f.kind,
                    name,
                    format!("cut off {} ms", f.hold.as_millis()),
                    caught,
                );
                self.probe_revoked(t0, f.kind.name()).await;
            }
            Kind::RollingRestart => {
                let n = self.deploy.lock().await.nodes.len();
                let mut worst: Option<u64> = Some(0);
                for i in 0..n {
                    {
                        let mut d = self.deploy.lock().await;
                        let name = format!("nats-server {}", d.nodes[i].name());
                        tokio::task::block_in_place(|| d.nodes[i].restart());
                        d.record_exit(
                            &name,
                            "signal 9 (SIGKILL)".into(),
                            "rolling restart by the injector",
                            true,
                        );
                    }
                    let c = self.caught_up(Instant::now()).await;
                    worst = match (worst, c) {
                        (Some(w), Some(c)) => Some(w.max(c)),
                        _ => None,
                    };
                }
                self.record(
                    t0,
                    f.kind,
                    "every node".into(),
                    "each restarted (kill -9, start) once the previous was back in step".into(),
                    worst,
                );
                self.probe_revoked(t0, f.kind.name()).await;
            }
        }
    }

    /// The node leading `stream`, by index in the deployment's nodes.
    async fn leader(&self, stream: &str) -> Option<usize> {
        let info = self.stream_info(stream).await?;
        let leader = info["cluster"]["leader"].as_str()?.to_owned();
        let d = self.deploy.lock().await;
        d.nodes.iter().position(|n| n.name() == leader)
    }

    async fn stream_info(&self, stream: &str) -> Option<serde_json::Value> {
        let reply = tokio::time::timeout(
            Duration::from_secs(3),
            self.admin
                .request(format!("$JS.API.STREAM.INFO.{stream}"), "".into()),
        )
        .await
        .ok()?
        .ok()?;
        serde_json::from_slice(&reply.payload).ok()
    }

    /// How long from `since` until every journal's and the audit log's replicas are all
    /// current with a leader (bounded at 90 s: None when they were not).
    async fn caught_up(&self, since: Instant) -> Option<u64> {
        let streams: Vec<String> = [Service::Spawner, Service::Mission, Service::Bus]
            .into_iter()
            .map(|s| store::journal_stream(store::journal_of(s)))
            .chain([store::AUDIT_STREAM.to_owned()])
            .collect();
        while since.elapsed() < Duration::from_secs(90) {
            let mut all = true;
            for s in &streams {
                let ok = self.stream_info(s).await.is_some_and(|info| {
                    let c = &info["cluster"];
                    c["leader"].as_str().is_some()
                        && c["replicas"].as_array().is_some_and(|r| {
                            r.len() == 2
                                && r.iter().all(|x| {
                                    x["current"].as_bool() == Some(true)
                                        && x["lag"].as_u64().unwrap_or(0) == 0
                                })
                        })
                });
                if !ok {
                    all = false;
                    break;
                }
            }
            if all {
                return Some(since.elapsed().as_millis() as u64);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }

    /// Tries the credentials of up to three agents Guild ended at least 3 s before `t0`.
    async fn probe_revoked(&self, t0: u64, after: &str) {
        let mut ended = self.driver.ended_before(t0, 3_000);
        let mut rng = Rng::new(t0);
        rng.shuffle(&mut ended);
        let urls = self.deploy.lock().await.urls();
        for (agent, creds) in ended.into_iter().take(3) {
            try_revoked(
                &self.log,
                &urls,
                &self.operator_creds,
                agent.as_str(),
                &creds,
                after,
            )
            .await;
        }
    }
}

/// Connects with an ended agent's credentials (expected: refused) and, at the same
/// moment, with the operator's (expected: let in; otherwise the probe says nothing).
pub(crate) async fn try_revoked(
    log: &Log,
    urls: &str,
    operator_creds: &std::path::Path,
    agent: &str,
    creds: &str,
    after: &str,
) -> bool {
    let t0 = now_ms();
    let control = guild_sdk::NatsOptions::url(urls)
        .with_auth(guild_sdk::Auth::CredsFile(operator_creds.to_path_buf()));
    let mut conclusive = false;
    for _ in 0..20 {
        if let Ok(Ok(g)) =
            tokio::time::timeout(Duration::from_secs(5), guild_sdk::connect(&control)).await
        {
            conclusive = g.client().flush().await.is_ok();
        }
        if conclusive {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let accepted = match guild_sdk::NatsOptions::url(urls).with_creds_text(creds) {
        Ok(options) => {
            match tokio::time::timeout(Duration::from_secs(8), guild_sdk::connect(&options)).await {
                Ok(Ok(g)) => g.client().flush().await.is_ok(),
                _ => false,
            }
        }
        Err(_) => false,
    };
    log.write(
        t0,
        Op::RevokedTried {
            agent: agent.to_owned(),
            accepted,
            after: after.to_owned(),
            conclusive,
        },
    );
    if accepted {
        eprintln!("guild-chaos: the revoked credentials of {agent} were let in ({after})");
    }
    accepted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_round_has_every_kind_and_the_seed_fixes_the_plan() {
        for mode in [Mode::Single, Mode::Cluster] {
            let d = Duration::from_secs(600);
            let plan = schedule(mode, 7, d, Duration::from_secs(2));
            for k in Kind::of(mode) {
                let n = plan.iter().filter(|f| f.kind == *k).count();
                assert!(
                    n >= (600 / round(mode).as_secs()) as usize,
                    "{mode:?} {k:?}: {n}"
                );
            }
            assert!(plan.windows(2).all(|w| w[0].at < w[1].at));
            assert!(plan.iter().all(|f| f.at < d));
            let again = schedule(mode, 7, d, Duration::from_secs(2));
            let key = |p: &[Fault]| {
                p.iter()
                    .map(|f| (f.at, f.kind, f.target, f.hold))
                    .collect::<Vec<_>>()
            };
            assert_eq!(key(&plan), key(&again));
            assert_ne!(
                key(&plan),
                key(&schedule(mode, 8, d, Duration::from_secs(2)))
            );
        }
        // In a single-node round every service instance is killed.
        let plan = schedule(
            Mode::Single,
            1,
            Duration::from_secs(90),
            Duration::from_secs(2),
        );
        let mut killed: Vec<u64> = plan
            .iter()
            .filter(|f| f.kind == Kind::KillService)
            .map(|f| f.target)
            .collect();
        killed.sort_unstable();
        assert_eq!(
            killed,
            (0..(SERVICES.len() * INSTANCES) as u64).collect::<Vec<_>>()
        );
    }
}
