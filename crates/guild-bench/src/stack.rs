//! A real deployment on this machine: one nats-server and service processes, the binaries
//! built next to this one (`target/release/` for `just bench`, `target/debug/` when the
//! quick mode's test runs a debug build), exporting telemetry to a sink in this process or
//! not at all ([`Telemetry`]).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use guild_sdk::Guild;
use guild_testkit::{NatsServer, ServerOptions};

use crate::sink::{Received, Sink};

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

pub(crate) use guild_testkit::process::Service;
pub(crate) use guild_testkit::process::binary;
use guild_testkit::process::{ServiceProcess, ServiceSpec};

/// nats-server and Guild's services as separate processes.
pub(crate) struct Stack {
    pub(crate) server: NatsServer,
    /// Unlimited credentials: the raw NATS baselines run on it (they are not Guild, and
    /// make streams of their own).
    pub(crate) client: async_nats::Client,
    /// The operator, and each agent the scenarios spawn on its own connection with the
    /// credentials Guild minted for it.
    pub(crate) team: guild_testkit::Team,
    services: Vec<ServiceProcess>,
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
    /// journal), to within 5 ms.
    pub(crate) async fn add_service(
        &mut self,
        service: Service,
        env: &[(&str, String)],
    ) -> anyhow::Result<Duration> {
        let log_path =
            self.logs
                .path()
                .join(format!("{}-{}.log", binary(service), self.services.len()));
        let mut cmd = ServiceSpec::new(service, sibling(binary(service))?, log_path);
        cmd.env("NATS_URL", self.server.url());
        match self.auth {
            // Each service with its own credentials, the spawner with the custodian's keys.
            Auth::On => {
                cmd.credentials(&self.server);
            }
            Auth::Off => {
                cmd.arg("--insecure");
            }
        }
        cmd.env(
            "RUST_LOG",
            std::env::var("GUILD_BENCH_SERVICE_LOG").unwrap_or_else(|_| "warn".into()),
        );
        // The figures are throughput and latency under load: the per-agent request quota
        // (a guard against one agent in a loop) is off, or it would be what is measured.
        cmd.env("GUILD_MAX_REQUESTS_PER_SECOND", "0");
        // Telemetry is what the stack says (the spec drops inherited `OTEL_*` variables).
        if let Some(sink) = &self.sink {
            cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", sink.url())
                .env("OTEL_SERVICE_NAME", binary(service));
        }
        for (k, v) in env {
            cmd.env(*k, v.as_str());
        }
        let known: Vec<String> = self
            .services
            .iter()
            .filter(|i| i.service() == service)
            .map(|i| i.id().to_owned())
            .collect();
        let instance = ServiceProcess::start(&cmd, &self.client, &known).await?;
        let took = instance.startup();
        self.services.push(instance);
        Ok(took)
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
        let stops = self.services.iter_mut().map(|i| async move {
            if let Some((_, true)) = i.stop(STOP_LIMIT).await {
                eprintln!(
                    "guild-bench: {} did not stop within {STOP_LIMIT:?}; killed it",
                    binary(i.service())
                );
            }
        });
        futures_util::future::join_all(stops).await;
        self.services.clear();
        started.elapsed()
    }

    /// Resident memory of each service process, in MiB.
    pub(crate) fn rss_mib(&self) -> Vec<(&'static str, f64)> {
        self.services
            .iter()
            .map(|i| (binary(i.service()), i.rss_mib()))
            .collect()
    }

    /// Resident memory of the first instance of `service`, in MiB (NaN if none runs).
    pub(crate) fn rss(&self, service: Service) -> f64 {
        self.services
            .iter()
            .find(|i| i.service() == service)
            .map_or(f64::NAN, ServiceProcess::rss_mib)
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
