//! The deployment under test, all on this machine: nats-server nodes (one here; the
//! cluster run passes three), two instances of each service as processes of their own,
//! and the workload's agents as processes. It starts, kills, pauses and restarts them,
//! and records how every process ended and who ended it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use guild_testkit::NatsServer;
use guild_testkit::process::{
    Service, ServiceProcess, ServiceSpec, Signal, binary, describe_exit, signal,
};
use tokio::process::{Child, Command};

use crate::record::{Log, Op, now_ms};

/// Instances of each service.
pub(crate) const INSTANCES: usize = 2;

/// The services, in the order they are started (the spawner first: the others follow
/// its journal).
pub(crate) const SERVICES: [Service; 3] = [Service::Spawner, Service::Mission, Service::Bus];

/// One service instance: how to start it, and the process when it runs.
pub(crate) struct Slot {
    pub(crate) spec: ServiceSpec,
    /// `spawner-svc#0`, ...
    pub(crate) name: String,
    pub(crate) process: Option<ServiceProcess>,
    /// Start-up times of the restarts after kills.
    pub(crate) restarts: Vec<Duration>,
}

/// A workload agent's process.
pub(crate) struct AgentProcess {
    pub(crate) child: Child,
    pub(crate) pid: Option<u32>,
    /// Under SIGSTOP now (the injector's).
    pub(crate) paused: bool,
    /// When its last pause was lifted: it is given a moment to log the replies that came
    /// while it was stopped before the workload stops it.
    pub(crate) resumed_at: Option<std::time::Instant>,
}

/// Everything running, behind one lock (see [`Shared`]).
pub(crate) struct Deployment {
    /// The nats-server nodes (clients get every URL).
    pub(crate) nodes: Vec<NatsServer>,
    pub(crate) slots: Vec<Slot>,
    pub(crate) agents: BTreeMap<String, AgentProcess>,
    /// Where the run's files go.
    pub(crate) dir: PathBuf,
    seed: u64,
    /// Exits and faults.
    log: Arc<Log>,
}

/// The deployment as the driver, the injector and the supervisor share it.
pub(crate) type Shared = Arc<tokio::sync::Mutex<Deployment>>;

/// Every node's client URL, comma separated (what `NATS_URL` takes).
pub(crate) fn urls(nodes: &[NatsServer]) -> String {
    nodes
        .iter()
        .map(NatsServer::url)
        .collect::<Vec<_>>()
        .join(",")
}

impl Deployment {
    /// Starts a service instance per slot on `nodes`, with `env` for every service and
    /// `own_env` per service.
    pub(crate) async fn start(
        nodes: Vec<NatsServer>,
        admin: &async_nats::Client,
        dir: &Path,
        seed: u64,
        env: &[(String, String)],
        own_env: impl Fn(Service) -> Vec<(String, String)>,
        log: Arc<Log>,
    ) -> anyhow::Result<Self> {
        for sub in ["services", "agents", "creds", "logs"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        let mut slots = Vec::new();
        for service in SERVICES {
            for i in 0..INSTANCES {
                let name = format!("{}#{i}", binary(service));
                let log_path = dir
                    .join("services")
                    .join(format!("{}-{i}.log", binary(service)));
                // Built next to this binary (`target/<profile>/`); it says how when missing.
                let bin = guild_testkit::workspace_binary(binary(service));
                let mut spec = ServiceSpec::new(service, bin, log_path);
                spec.env("NATS_URL", urls(&nodes)).credentials(&nodes[0]);
                for (k, v) in env.iter().chain(own_env(service).iter()) {
                    spec.env(k, v);
                }
                slots.push(Slot {
                    spec,
                    name,
                    process: None,
                    restarts: Vec::new(),
                });
            }
        }
        let mut d = Self {
            nodes,
            slots,
            agents: BTreeMap::new(),
            dir: dir.to_path_buf(),
            seed,
            log,
        };
        for i in 0..d.slots.len() {
            let known = d.known_ids(d.slots[i].spec.service());
            let p = ServiceProcess::start(&d.slots[i].spec, admin, &known)
                .await
                .with_context(|| format!("while starting {}", d.slots[i].name))?;
            d.slots[i].process = Some(p);
        }
        Ok(d)
    }

    /// The micro ids of the running instances of `service`.
    pub(crate) fn known_ids(&self, service: Service) -> Vec<String> {
        self.slots
            .iter()
            .filter(|s| s.spec.service() == service)
            .filter_map(|s| s.process.as_ref().map(|p| p.id().to_owned()))
            .collect()
    }

    /// Every node's URL.
    pub(crate) fn urls(&self) -> String {
        urls(&self.nodes)
    }

    /// Records how a process ended.
    pub(crate) fn record_exit(&self, process: &str, status: String, cause: &str, expected: bool) {
        self.log.write(
            now_ms(),
            Op::Exit {
                process: process.to_owned(),
                status,
                cause: cause.to_owned(),
                expected,
            },
        );
    }

    /// Kills slot `i` (SIGKILL) for `cause`, recording how it ended.
    pub(crate) async fn kill_slot(&mut self, i: usize, cause: &str) -> Option<String> {
        let mut p = self.slots[i].process.take()?;
        let status = match p.kill().await {
            Ok(s) => describe_exit(&s),
            Err(e) => format!("could not be killed: {e}"),
        };
        self.record_exit(&self.slots[i].name, status.clone(), cause, true);
        Some(status)
    }

    /// Starts an agent process for `agent` with its credentials.
    pub(crate) fn spawn_agent(&mut self, agent: &str, creds: &str) -> anyhow::Result<()> {
        let creds_path = self.dir.join("creds").join(format!("{agent}.creds"));
        std::fs::write(&creds_path, creds)?;
        let out = std::fs::File::create(self.dir.join("agents").join(format!("{agent}.log")))?;
        let me = std::env::current_exe().context("while finding guild-chaos's own path")?;
        let mut cmd = Command::new(me);
        cmd.arg("agent")
            .arg("--dir")
            .arg(&self.dir)
            .arg("--seed")
            .arg(self.seed.to_string())
            .env("NATS_URL", self.urls())
            .env("NATS_CREDS", &creds_path)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(out))
            .kill_on_drop(true);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("OTEL_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd.spawn().context("while starting an agent process")?;
        let pid = child.id();
        self.agents.insert(
            agent.to_owned(),
            AgentProcess {
                child,
                pid,
                paused: false,
                resumed_at: None,
            },
        );
        Ok(())
    }

    /// Stops agent `agent`'s process (SIGKILL; its log is flushed line by line) for `cause`.
    pub(crate) async fn stop_agent(&mut self, agent: &str, cause: &str) {
        if let Some(mut a) = self.agents.remove(agent) {
            let status = match a.child.try_wait() {
                Ok(Some(s)) => describe_exit(&s),
                _ => {
                    let _ = a.child.kill().await;
                    match a.child.wait().await {
                        Ok(s) => describe_exit(&s),
                        Err(e) => format!("unknown ({e})"),
                    }
                }
            };
            self.record_exit(&format!("agent {agent}"), status, cause, true);
        }
    }

    /// Sends SIGSTOP or SIGCONT to agent `agent`.
    pub(crate) async fn signal_agent(&mut self, agent: &str, s: Signal) -> bool {
        let Some(a) = self.agents.get_mut(agent) else {
            return false;
        };
        if matches!(a.child.try_wait(), Ok(Some(_))) {
            return false;
        }
        let Some(pid) = a.pid else { return false };
        let ok = signal(pid, s).await.is_ok();
        if ok {
            a.paused = s == Signal::Stop;
            if s == Signal::Cont {
                a.resumed_at = Some(std::time::Instant::now());
            }
        }
        ok
    }

    /// Looks for processes that ended on their own: recorded as unexpected; a service is
    /// started again, so the run goes on (the verdict fails all the same).
    pub(crate) async fn supervise(&mut self, admin: &async_nats::Client) {
        for i in 0..self.slots.len() {
            let ended = self.slots[i]
                .process
                .as_mut()
                .and_then(ServiceProcess::try_wait);
            if let Some(status) = ended {
                self.slots[i].process = None;
                self.record_exit(
                    &self.slots[i].name,
                    describe_exit(&status),
                    "exited on its own",
                    false,
                );
                let _ = self.restart_slot(i, admin).await;
            }
        }
        let mut gone = Vec::new();
        for (id, a) in &mut self.agents {
            if let Ok(Some(status)) = a.child.try_wait() {
                gone.push((id.clone(), describe_exit(&status)));
            }
        }
        for (id, status) in gone {
            self.agents.remove(&id);
            self.record_exit(&format!("agent {id}"), status, "exited on its own", false);
        }
        for n in 0..self.nodes.len() {
            if let Some(status) = self.nodes[n].try_wait() {
                let name = format!("nats-server {}", self.nodes[n].name());
                self.record_exit(&name, describe_exit(&status), "exited on its own", false);
                tokio::task::block_in_place(|| self.nodes[n].resume());
            }
        }
    }

    /// Starts slot `i` again (after a kill); its start-up time.
    pub(crate) async fn restart_slot(
        &mut self,
        i: usize,
        admin: &async_nats::Client,
    ) -> anyhow::Result<Duration> {
        let known = self.known_ids(self.slots[i].spec.service());
        let p = ServiceProcess::start(&self.slots[i].spec, admin, &known)
            .await
            .with_context(|| format!("while restarting {}", self.slots[i].name))?;
        let took = p.startup();
        self.slots[i].process = Some(p);
        self.slots[i].restarts.push(took);
        Ok(took)
    }

    /// Stops everything at the end of the run: agents killed, services stopped the way a
    /// deployment stops them (SIGTERM, killed after 10 s), each exit recorded as the run's.
    pub(crate) async fn shut_down(&mut self) {
        let ids: Vec<String> = self.agents.keys().cloned().collect();
        for id in ids {
            self.stop_agent(&id, "the run ended").await;
        }
        for i in 0..self.slots.len() {
            if let Some(mut p) = self.slots[i].process.take() {
                let status = match p.stop(Duration::from_secs(10)).await {
                    Some((s, false)) => describe_exit(&s),
                    Some((s, true)) => format!("{} (did not stop within 10 s)", describe_exit(&s)),
                    None => "unknown".into(),
                };
                self.record_exit(&self.slots[i].name, status, "the run ended", true);
            }
        }
    }
}
