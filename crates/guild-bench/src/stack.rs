//! A real deployment on this machine: one nats-server and service processes (the release
//! binaries built next to this one).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::StreamExt;
use guild_testkit::{NatsServer, ServerOptions};
use tokio::process::{Child, Command};

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
}

/// nats-server and Guild's services as separate processes.
pub(crate) struct Stack {
    pub(crate) server: NatsServer,
    pub(crate) client: async_nats::Client,
    /// Service processes, killed on drop.
    services: Vec<(String, Child)>,
    /// Service logs, removed when the stack drops.
    logs: tempfile::TempDir,
}

/// A binary built next to this one (`target/release/<name>`).
pub(crate) fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("while finding guild-bench's own path")?;
    let bin = me
        .parent()
        .map(|d| d.join(name))
        .context("guild-bench has no parent directory")?;
    if !bin.is_file() {
        bail!(
            "{} is missing: build it first (`cargo build --release --workspace --bins`, as `just bench` does)",
            bin.display()
        );
    }
    Ok(bin)
}

impl Stack {
    pub(crate) async fn start(sync: Sync) -> anyhow::Result<Self> {
        let server = NatsServer::start_with(ServerOptions {
            sync_always: sync == Sync::Always,
            ..Default::default()
        });
        let client = server.connect().await;
        let logs = tempfile::Builder::new().prefix("guild-bench-").tempdir()?;
        Ok(Self {
            server,
            client,
            services: Vec::new(),
            logs,
        })
    }

    /// Starts one more instance of `service` (`spawner-svc`, ...) with `env`, and waits
    /// until it answers `$SRV.PING`.
    pub(crate) async fn add_service(
        &mut self,
        service: &str,
        micro_name: &str,
        env: &[(&str, String)],
    ) -> anyhow::Result<()> {
        let before = self.instances(micro_name).await;
        let n = self.services.len();
        let log = std::fs::File::create(self.logs.path().join(format!("{service}-{n}.log")))?;
        let mut cmd = Command::new(sibling(service)?);
        cmd.env("NATS_URL", self.server.url())
            .env(
                "RUST_LOG",
                std::env::var("GUILD_BENCH_SERVICE_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("while starting {service}"))?;
        self.services.push((service.to_owned(), child));
        // A new instance answers once it has replayed its journal, which after a large
        // scenario takes a while; a crash ends the wait at once.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
        let mut exited = None;
        while tokio::time::Instant::now() < deadline {
            if self.instances(micro_name).await > before {
                return Ok(());
            }
            if let Some((_, child)) = self.services.last_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                exited = Some(status);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = std::fs::read_to_string(self.logs.path().join(format!("{service}-{n}.log")))
            .unwrap_or_default();
        match exited {
            Some(status) => bail!("{service} exited ({status}) before answering; its log:\n{log}"),
            None => bail!(
                "{service} did not answer $SRV.PING.{micro_name} within 180 s; its log:\n{log}"
            ),
        }
    }

    /// How many instances of a micro service answer a ping.
    pub(crate) async fn instances(&self, micro_name: &str) -> usize {
        let inbox = self.client.new_inbox();
        let Ok(mut sub) = self.client.subscribe(inbox.clone()).await else {
            return 0;
        };
        if self
            .client
            .publish_with_reply(format!("$SRV.PING.{micro_name}"), inbox, "".into())
            .await
            .is_err()
        {
            return 0;
        }
        let _ = self.client.flush().await;
        let mut n = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
        while let Ok(Some(m)) = tokio::time::timeout_at(deadline, sub.next()).await {
            // With nobody listening, the server answers with a "no responders" status.
            if m.status.is_none() {
                n += 1;
            }
        }
        n
    }

    /// Resident memory of each service process, in MiB.
    pub(crate) fn rss_mib(&self) -> Vec<(String, f64)> {
        self.services
            .iter()
            .filter_map(|(name, child)| {
                let pid = child.id()?;
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
                let kb: f64 = status
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))?
                    .split_whitespace()
                    .nth(1)?
                    .parse()
                    .ok()?;
                Some((name.clone(), kb / 1024.0))
            })
            .collect()
    }
}
