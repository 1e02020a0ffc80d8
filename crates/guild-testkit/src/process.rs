//! A Guild service as a process of its own: the built binary (`spawner-svc`, `bus-svc`,
//! `mission-svc`) started with the service's own credentials, as a deployment runs it,
//! and up once it answers `$SRV.PING`. The benchmarks and the fault suite start their
//! services this way; in-process services are [`Running`](crate::Running).
//!
//! ```no_run
//! # async fn demo() -> Result<(), guild_testkit::process::StartError> {
//! use guild_testkit::process::{Service, ServiceProcess, ServiceSpec, binary};
//!
//! let server = guild_testkit::NatsServer::start();
//! let admin = server.connect_admin().await;
//! let mut spec = ServiceSpec::new(
//!     Service::Bus,
//!     guild_testkit::workspace_binary(binary(Service::Bus)),
//!     "/tmp/bus-0.log",
//! );
//! spec.env("NATS_URL", server.url()).credentials(&server).env("GUILD_ACK_WAIT", "5s");
//! let bus = ServiceProcess::start(&spec, &admin, &[]).await?;
//! println!("{} answered after {:?}", bus.id(), bus.startup());
//! # Ok(()) }
//! ```

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use guild_wire::domain::Principal;
pub use guild_wire::subject::Service;
use tokio::process::{Child, Command};

use crate::NatsServer;

/// How often a starting service is pinged: the resolution of its start-up time.
pub const PING_EVERY: Duration = Duration::from_millis(5);

/// How long a new instance may take to answer by default; replaying a large journal takes
/// a while.
pub const START_LIMIT: Duration = Duration::from_secs(180);

/// The binary of `service`: `spawner-svc`, `bus-svc` or `mission-svc`.
pub fn binary(service: Service) -> &'static str {
    match service {
        Service::Spawner => "spawner-svc",
        Service::Bus => "bus-svc",
        Service::Mission => "mission-svc",
    }
}

/// How to start one service process: its binary, arguments and environment, and where its
/// log (stderr) goes. Nothing is inherited from the caller's environment that would change
/// what the service does unasked: no `OTEL_*` variable (telemetry is what the spec says),
/// and `RUST_LOG` is `warn` unless set here.
#[derive(Clone, Debug)]
pub struct ServiceSpec {
    service: Service,
    binary: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    log: PathBuf,
    start_limit: Duration,
}

impl ServiceSpec {
    /// `service`'s `binary`, logging to `log`; add the broker's URL (`NATS_URL`: one, or
    /// every node of a cluster, comma separated) and [`credentials`](Self::credentials).
    pub fn new(service: Service, binary: impl Into<PathBuf>, log: impl Into<PathBuf>) -> Self {
        Self {
            service,
            binary: binary.into(),
            args: Vec::new(),
            env: Vec::new(),
            log: log.into(),
            start_limit: START_LIMIT,
        }
    }

    /// One more environment variable.
    pub fn env(&mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> &mut Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// One more command-line argument.
    pub fn arg(&mut self, arg: impl Into<OsString>) -> &mut Self {
        self.args.push(arg.into());
        self
    }

    /// The service's own credentials as made for `server` (`NATS_CREDS`), and for the
    /// spawner the custodian's bundle and system-account credentials (`GUILD_CUSTODIAN`,
    /// `GUILD_SYSTEM_CREDS`). A cluster's nodes share their keys: any node will do.
    pub fn credentials(&mut self, server: &NatsServer) -> &mut Self {
        self.env(
            "NATS_CREDS",
            server.creds_file(&Principal::Service(self.service)),
        );
        if self.service == Service::Spawner {
            let (custodian, system) = server.custodian_files();
            self.env("GUILD_CUSTODIAN", custodian)
                .env("GUILD_SYSTEM_CREDS", system);
        }
        self
    }

    /// How long [`ServiceProcess::start`] waits for the first answer.
    pub fn start_limit(&mut self, limit: Duration) -> &mut Self {
        self.start_limit = limit;
        self
    }

    /// The service it starts.
    pub fn service(&self) -> Service {
        self.service
    }

    /// Where its log goes.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    fn command(&self) -> Result<Command, StartError> {
        // Appended to, so a restart does not erase how the previous process ended.
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| {
                StartError::new(self, format!("could not open {}: {e}", self.log.display()))
            })?;
        {
            use std::io::Write as _;
            let _ = writeln!(log, "--- {} starting ---", binary(self.service));
        }
        let mut cmd = Command::new(&self.binary);
        cmd.args(&self.args);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("OTEL_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("RUST_LOG", "warn");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        Ok(cmd)
    }
}

/// A service that did not come up: what happened, and its log.
#[derive(Debug)]
pub struct StartError {
    /// The service.
    pub service: Service,
    /// What went wrong.
    pub why: String,
    /// Its log up to then.
    pub log: String,
}

impl StartError {
    fn new(spec: &ServiceSpec, why: String) -> Self {
        Self {
            service: spec.service,
            why: format!("{} {why}", binary(spec.service)),
            log: std::fs::read_to_string(&spec.log).unwrap_or_default(),
        }
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; its log:\n{}", self.why, self.log)
    }
}

impl std::error::Error for StartError {}

/// A signal [`signal`] sends.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGSTOP: the process stops where it stands (a stall: its connections stay open).
    Stop,
    /// SIGCONT: it goes on.
    Cont,
    /// SIGTERM: a deployment's stop (a service answers what is in flight and exits).
    Term,
    /// SIGKILL: a crash.
    Kill,
}

impl Signal {
    /// The name `kill` takes (`STOP`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Signal::Stop => "STOP",
            Signal::Cont => "CONT",
            Signal::Term => "TERM",
            Signal::Kill => "KILL",
        }
    }
}

/// Sends `signal` to process `pid`. No signal crate for four signals: `kill` is
/// everywhere nats-server runs.
pub async fn signal(pid: u32, signal: Signal) -> std::io::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{}", signal.name()))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "kill -{} {pid}: {status}",
            signal.name()
        )))
    }
}

/// What ended a process, in words: its exit code, or the signal that killed it.
pub fn describe_exit(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(9)) => "signal 9 (SIGKILL)".to_owned(),
        (None, Some(15)) => "signal 15 (SIGTERM)".to_owned(),
        (None, Some(sig)) => format!("signal {sig}"),
        (None, None) => "unknown".to_owned(),
    }
}

/// `VmRSS` of a process, in MiB; NaN when it cannot be read.
pub fn rss_mib(pid: u32) -> f64 {
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

/// One running service process, killed on drop.
#[derive(Debug)]
pub struct ServiceProcess {
    service: Service,
    /// Its micro service instance id, from its first `$SRV.PING` answer.
    id: String,
    /// The process.
    child: Child,
    /// Its pid, kept after it ended (tokio forgets it once the exit is reaped).
    pid: Option<u32>,
    log: PathBuf,
    startup: Duration,
    /// How it ended, once it has.
    ended: Option<ExitStatus>,
}

impl ServiceProcess {
    /// Starts `spec` and waits until it answers `$SRV.PING` with an instance id not in
    /// `known` (the instances already running), pinging through `pinger` (a connection
    /// that may publish on `$SRV`: [`NatsServer::connect_admin`]). Fails, killing the
    /// process, when it exits first or does not answer within the spec's start limit.
    pub async fn start(
        spec: &ServiceSpec,
        pinger: &async_nats::Client,
        known: &[String],
    ) -> Result<Self, StartError> {
        let mut cmd = spec.command()?;
        let failed = |why: String| StartError::new(spec, why);
        // Listening before the process starts, so no answer can be missed.
        let inbox = pinger.new_inbox();
        let mut answers = pinger
            .subscribe(inbox.clone())
            .await
            .map_err(|e| failed(format!("could not listen for ping answers: {e}")))?;
        pinger
            .flush()
            .await
            .map_err(|e| failed(format!("could not flush: {e}")))?;
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(|e| failed(format!("could not start {}: {e}", spec.binary.display())))?;
        let pid = child.id();
        let ping_subject = guild_wire::subject::discovery("PING", Some(spec.service));
        let mut tick = tokio::time::interval(PING_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let failure = loop {
            tokio::select! {
                _ = tick.tick() => {
                    if started.elapsed() > spec.start_limit {
                        break format!("did not answer {ping_subject} within {:?}", spec.start_limit);
                    }
                    if let Ok(Some(status)) = child.try_wait() {
                        break format!("exited ({status}) before answering");
                    }
                    // A broker that is down now may be back at the next tick.
                    let _ = pinger
                        .publish_with_reply(ping_subject.clone(), inbox.clone(), "".into())
                        .await;
                }
                Some(answer) = answers.next() => {
                    // With nobody listening yet, the server answers with a status instead.
                    if answer.status.is_some() {
                        continue;
                    }
                    let id = serde_json::from_slice::<serde_json::Value>(&answer.payload)
                        .ok()
                        .and_then(|v| v.get("id")?.as_str().map(str::to_owned));
                    if let Some(id) = id.filter(|id| !known.contains(id)) {
                        return Ok(Self {
                            service: spec.service,
                            id,
                            child,
                            pid,
                            log: spec.log.clone(),
                            startup: started.elapsed(),
                            ended: None,
                        });
                    }
                }
            }
        };
        let _ = child.kill().await;
        Err(failed(failure))
    }

    /// The service it runs.
    pub fn service(&self) -> Service {
        self.service
    }

    /// Its micro service instance id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its process id.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// How long it took from starting the process to its first answer (connecting,
    /// provisioning or finding its streams, replaying its journal), to within
    /// [`PING_EVERY`].
    pub fn startup(&self) -> Duration {
        self.startup
    }

    /// Its log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its resident memory in MiB (NaN once it has ended).
    pub fn rss_mib(&self) -> f64 {
        match (self.ended, self.pid) {
            (None, Some(pid)) => rss_mib(pid),
            _ => f64::NAN,
        }
    }

    /// How it ended, if it has (without waiting).
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.ended.is_none() {
            self.ended = self.child.try_wait().ok().flatten();
        }
        self.ended
    }

    /// Sends `s` to it; fails once it has ended.
    pub async fn signal(&mut self, s: Signal) -> std::io::Result<()> {
        if self.try_wait().is_some() {
            return Err(std::io::Error::other("the process has ended"));
        }
        match self.pid {
            Some(pid) => signal(pid, s).await,
            None => Err(std::io::Error::other("the process has no pid")),
        }
    }

    /// Pauses it (SIGSTOP): a stall, its connections open and unanswered.
    pub async fn pause(&mut self) -> std::io::Result<()> {
        self.signal(Signal::Stop).await
    }

    /// Lets a paused process go on (SIGCONT).
    pub async fn resume(&mut self) -> std::io::Result<()> {
        self.signal(Signal::Cont).await
    }

    /// Kills it (SIGKILL: a crash, not a shutdown) and waits for it; how it ended (by
    /// itself before, if it had).
    pub async fn kill(&mut self) -> std::io::Result<ExitStatus> {
        if let Some(status) = self.try_wait() {
            return Ok(status);
        }
        self.child.kill().await?;
        let status = self.child.wait().await?;
        self.ended = Some(status);
        Ok(status)
    }

    /// Stops it the way a deployment does (SIGTERM: it answers what is in flight, ends
    /// waiting consumes, exports the telemetry it still holds, and exits), killing it if
    /// it is still running after `limit`. How it ended, and whether it had to be killed;
    /// `None` when it could not be waited for.
    pub async fn stop(&mut self, limit: Duration) -> Option<(ExitStatus, bool)> {
        if let Some(status) = self.try_wait() {
            return Some((status, false));
        }
        if let Some(pid) = self.pid {
            let _ = signal(pid, Signal::Term).await;
        }
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(Ok(status)) => {
                self.ended = Some(status);
                Some((status, false))
            }
            Ok(Err(_)) => None,
            Err(_) => self.kill().await.ok().map(|s| (s, true)),
        }
    }
}
