//! A real deployment on this machine: one nats-server and service processes, the binaries
//! built next to this one (`target/release/` for `just bench`, `target/debug/` when the
//! quick mode's test runs a debug build), exporting telemetry to a sink in this process or
//! not at all ([`Telemetry`]).

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use guild_sdk::Guild;
use guild_testkit::{NatsServer, ServerOptions};
use tokio::process::{Child, Command};

use crate::sink::{Received, Sink};

/// How often a starting service is pinged: the resolution of the start-up figures.
const PING_EVERY: Duration = Duration::from_millis(5);

/// How long a new instance may take to answer; replaying a large journal takes a while.
const START_LIMIT: Duration = Duration::from_secs(180);

/// How long a service may take to stop when asked (answering what is in flight, then
/// exporting what telemetry it still holds) before it is killed.
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// How nats-server syncs JetStream writes to disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sync {
    /// nats-server's default: `sync_interval` 2 minutes (the OS page cache holds the rest).
    Default,
    /// The compose deployment's: `sync_interval: always`.
    Always,
}

impl Sync {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Sync::Default => "default sync (sync_interval 2m)",
            Sync::Always => "sync_interval: always (the compose deployment's)",
        }
    }

    /// The label, short enough for a plot's title.
    pub(crate) fn short_label(self) -> &'static str {
        match self {
            Sync::Default => "default sync",
            Sync::Always => "sync_interval: always",
        }
    }

    /// What a plot's file name carries to tell the two runs apart.
    pub(crate) fn file_suffix(self) -> &'static str {
        match self {
            Sync::Default => "",
            Sync::Always => "-sync-always",
        }
    }
}

/// Whether the services export traces and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Telemetry {
    /// No `OTEL_*` variable reaches a service (none is inherited from the bench's own
    /// environment either): no exporter and no OpenTelemetry layer is installed, and
    /// Guild's spans are disabled spans (ARCHITECTURE.md, "Traces and metrics").
    Off,
    /// Every service exports spans and metrics by OTLP/HTTP to a [`Sink`] in the bench
    /// process, with the OpenTelemetry SDK's defaults otherwise.
    Otlp,
}

/// Whether the broker authenticates every connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Auth {
    /// As Guild always runs: each service, the operator and each agent with credentials.
    On,
    /// nats-server without authentication and the services with `--insecure`: only to
    /// show what authentication costs, beside the same rows with it on.
    Off,
}

/// Guild's services, by binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Service {
    Spawner,
    Bus,
    Missions,
}

impl Service {
    pub(crate) fn binary(self) -> &'static str {
        match self {
            Service::Spawner => "spawner-svc",
            Service::Bus => "bus-svc",
            Service::Missions => "mission-svc",
        }
    }

    /// The service as the wire contract names it (its `$SRV` subjects).
    fn wire(self) -> guild_wire::subject::Service {
        match self {
            Service::Spawner => guild_wire::subject::Service::Spawner,
            Service::Bus => guild_wire::subject::Service::Bus,
            Service::Missions => guild_wire::subject::Service::Mission,
        }
    }
}

/// One running service process.
struct Instance {
    service: Service,
    /// Its micro service instance id, from its first `$SRV.PING` answer.
    id: String,
    /// The process, killed on drop.
    child: Child,
}

/// nats-server and Guild's services as separate processes.
pub(crate) struct Stack {
    pub(crate) server: NatsServer,
    /// Unlimited credentials: the raw NATS baselines run on it (they are not Guild, and
    /// make streams of their own).
    pub(crate) client: async_nats::Client,
    /// The operator, and each agent the scenarios spawn on its own connection with the
    /// credentials Guild minted for it.
    pub(crate) team: guild_testkit::Team,
    services: Vec<Instance>,
    auth: Auth,
    /// Service logs, removed when the stack drops.
    logs: tempfile::TempDir,
    /// Where the services export to, with [`Telemetry::Otlp`]. After `services`, so that
    /// on drop the processes are killed before it stops answering.
    sink: Option<Sink>,
}

/// A binary built next to this one.
pub(crate) fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("while finding guild-bench's own path")?;
    let dir = me.parent().context("guild-bench has no parent directory")?;
    let bin = dir.join(name);
    if !bin.is_file() {
        bail!(
            "{} is missing: build the service binaries with the same profile as guild-bench \
             (`cargo build --release --workspace --bins`, as `just bench` does)",
            bin.display()
        );
    }
    Ok(bin)
}

impl Stack {
    pub(crate) async fn start(sync: Sync, telemetry: Telemetry) -> anyhow::Result<Self> {
        Self::start_with(sync, telemetry, Auth::On).await
    }

    /// [`start`](Self::start), with authentication on or off.
    pub(crate) async fn start_with(
        sync: Sync,
        telemetry: Telemetry,
        auth: Auth,
    ) -> anyhow::Result<Self> {
        let server = NatsServer::start_with(ServerOptions {
            sync_always: sync == Sync::Always,
            insecure: auth == Auth::Off,
            ..Default::default()
        });
        let client = server.connect_admin().await;
        let team = guild_testkit::Team::new(&server).await;
        let logs = tempfile::Builder::new().prefix("guild-bench-").tempdir()?;
        let sink = match telemetry {
            Telemetry::Off => None,
            Telemetry::Otlp => Some(Sink::start().await?),
        };
        Ok(Self {
            server,
            client,
            team,
            services: Vec::new(),
            auth,
            logs,
            sink,
        })
    }

    /// Starts one more instance of `service` with `env`, waits until it answers
    /// `$SRV.PING`, and returns how long that took from starting the process: its
    /// start-up time (connecting, provisioning or finding its streams, replaying its
    /// journal), to within [`PING_EVERY`].
    pub(crate) async fn add_service(
        &mut self,
        service: Service,
        env: &[(&str, String)],
    ) -> anyhow::Result<Duration> {
        let log_path =
            self.logs
                .path()
                .join(format!("{}-{}.log", service.binary(), self.services.len()));
        let log = std::fs::File::create(&log_path)?;
        let mut cmd = Command::new(sibling(service.binary())?);
        cmd.env("NATS_URL", self.server.url());
        match self.auth {
            // Each service with its own credentials, the spawner with the custodian's keys.
            Auth::On => {
                let identity = guild_wire::domain::Principal::Service(service.wire());
                cmd.env("NATS_CREDS", self.server.creds_file(&identity));
                if service == Service::Spawner {
                    let (custodian, system) = self.server.custodian_files();
                    cmd.env("GUILD_CUSTODIAN", custodian)
                        .env("GUILD_SYSTEM_CREDS", system);
                }
            }
            Auth::Off => {
                cmd.arg("--insecure");
            }
        }
        cmd.env(
            "RUST_LOG",
            std::env::var("GUILD_BENCH_SERVICE_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .kill_on_drop(true);
        // The figures are throughput and latency under load: the per-agent request quota
        // (a guard against one agent in a loop) is off, or it would be what is measured.
        cmd.env("GUILD_MAX_REQUESTS_PER_SECOND", "0");
        // Telemetry is what the stack says, whatever the bench's own environment holds.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("OTEL_") {
                cmd.env_remove(k);
            }
        }
        if let Some(sink) = &self.sink {
            cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", sink.url())
                .env("OTEL_SERVICE_NAME", service.binary());
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let known: HashSet<&str> = self
            .services
            .iter()
            .filter(|i| i.service == service)
            .map(|i| i.id.as_str())
            .collect();
        // Listening before the process starts, so no answer can be missed.
        let inbox = self.client.new_inbox();
        let mut answers = self.client.subscribe(inbox.clone()).await?;
        self.client.flush().await?;
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("while starting {}", service.binary()))?;
        let ping_subject = guild_wire::subject::discovery("PING", Some(service.wire()));
        let mut tick = tokio::time::interval(PING_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let failure = loop {
            tokio::select! {
                _ = tick.tick() => {
                    if started.elapsed() > START_LIMIT {
                        break format!("did not answer {ping_subject} within {START_LIMIT:?}");
                    }
                    if let Ok(Some(status)) = child.try_wait() {
                        break format!("exited ({status}) before answering");
                    }
                    self.client
                        .publish_with_reply(ping_subject.clone(), inbox.clone(), "".into())
                        .await?;
                }
                Some(answer) = answers.next() => {
                    // With nobody listening yet, the server answers with a status instead.
                    if answer.status.is_some() {
                        continue;
                    }
                    let id = serde_json::from_slice::<serde_json::Value>(&answer.payload)
                        .ok()
                        .and_then(|v| v.get("id")?.as_str().map(str::to_owned));
                    if let Some(id) = id.filter(|id| !known.contains(id.as_str())) {
                        let took = started.elapsed();
                        self.services.push(Instance { service, id, child });
                        return Ok(took);
                    }
                }
            }
        };
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        bail!("{} {failure}; its log:\n{log}", service.binary())
    }

    /// The operator's connection (one for the whole stack).
    pub(crate) fn operator(&self) -> Guild {
        self.team.operator().clone()
    }

    /// A new connection of the operator's own, for clients that must not share one.
    pub(crate) async fn another_operator(&self) -> Guild {
        self.server.operator().await
    }

    /// Agent `name`'s own connection (it was spawned through [`Stack::team`]).
    pub(crate) fn agent(&self, name: &str) -> anyhow::Result<Guild> {
        Ok(self.team.agent(&guild_wire::domain::AgentId::new(name)?))
    }

    /// What the services exported, with [`Telemetry::Otlp`].
    pub(crate) fn received(&self) -> Option<Received> {
        self.sink.as_ref().map(Sink::received)
    }

    /// Stops every service the way a deployment does (SIGTERM: each answers what is in
    /// flight, ends waiting consumes and exports the telemetry it still holds), killing
    /// any still running after [`STOP_LIMIT`]. Returns how long that took. Dropping the
    /// stack kills the services instead, at once; this is for when what they flush on
    /// the way out is wanted.
    pub(crate) async fn stop_services(&mut self) -> Duration {
        let started = Instant::now();
        for i in &self.services {
            if let Some(pid) = i.child.id() {
                // No signal crate for one signal: `kill` is everywhere nats-server runs.
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(pid.to_string())
                    .status()
                    .await;
            }
        }
        for mut i in self.services.drain(..) {
            let left = STOP_LIMIT.saturating_sub(started.elapsed());
            if tokio::time::timeout(left, i.child.wait()).await.is_err() {
                eprintln!(
                    "guild-bench: {} did not stop within {STOP_LIMIT:?}; killing it",
                    i.service.binary()
                );
                let _ = i.child.kill().await;
            }
        }
        started.elapsed()
    }

    /// Resident memory of each service process, in MiB.
    pub(crate) fn rss_mib(&self) -> Vec<(&'static str, f64)> {
        self.services
            .iter()
            .map(|i| {
                (
                    i.service.binary(),
                    i.child.id().map_or(f64::NAN, rss_of_pid),
                )
            })
            .collect()
    }

    /// Resident memory of the first instance of `service`, in MiB (NaN if none runs).
    pub(crate) fn rss(&self, service: Service) -> f64 {
        self.services
            .iter()
            .find(|i| i.service == service)
            .and_then(|i| i.child.id())
            .map_or(f64::NAN, rss_of_pid)
    }

    /// The note every scenario ends with: what each process holds.
    pub(crate) fn memory_note(&self) -> String {
        let each: Vec<String> = self
            .rss_mib()
            .iter()
            .map(|(name, mib)| format!("{name} {mib:.1} MiB"))
            .collect();
        each.join(", ")
    }
}

/// `VmRSS` of a process, in MiB; NaN when it cannot be read.
pub(crate) fn rss_of_pid(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse::<f64>()
                .ok()
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}
