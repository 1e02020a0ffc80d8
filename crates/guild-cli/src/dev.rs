//! `guild dev`: nats-server with JetStream (data in a local folder) and the three services
//! in this process. `guild demo` starts the same stack when no Guild is running.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use tokio::process::{Child, Command};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use guild_auth::Layout;
use guild_auth::server::AuthParts;
use guild_sdk::{Principal, Service};

use crate::cli::DevArgs;
use crate::output::Out;

/// Said on every start without authentication.
pub(crate) const INSECURE_WARNING: &str = "WARNING: --insecure: nats-server runs without \
authentication on 127.0.0.1; any local process can act as the operator or any agent. Never \
use this for anything shared.";

/// The embedded stack: a nats-server child process and the three services as tasks.
pub(crate) struct Stack {
    pub(crate) url: String,
    pub(crate) data: PathBuf,
    /// How the operator connects: its credentials from the keys (none when insecure).
    pub(crate) operator: guild_sdk::NatsOptions,
    /// Where the keys and credentials are (`None` when insecure).
    pub(crate) layout: Option<Layout>,
    /// nats-server, in its own process group (see [`start`]).
    server: Child,
    /// Tells the services to stop (they finish what is in flight).
    stop: watch::Sender<bool>,
    /// The services' tasks, by name, each ending with its `run`'s outcome.
    services: Vec<(&'static str, JoinHandle<Result<(), String>>)>,
    /// Released when the stack is dropped, after nats-server has stopped.
    _lock: DataLock,
}

/// Finds nats-server: `NATS_SERVER_BIN`, else `.tools/bin/nats-server` in the current
/// directory or one above it (where `scripts/bootstrap` installs it), else beside this
/// binary's workspace, else `PATH`.
fn nats_server_bin() -> anyhow::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("NATS_SERVER_BIN") {
        let bin = PathBuf::from(bin);
        if bin.is_file() {
            return Ok(bin);
        }
        bail!("NATS_SERVER_BIN={} does not exist", bin.display());
    }
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().map(Path::to_path_buf));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    roots
        .iter()
        .map(|r| r.join(".tools/bin/nats-server"))
        .chain(std::env::split_paths(&path).map(|d| d.join("nats-server")))
        .find(|p| p.is_file())
        .context(
            "no nats-server found: run `scripts/bootstrap` in the Guild repository (it installs the \
             pinned v2.15.1 into .tools/bin), or set NATS_SERVER_BIN",
        )
}

/// nats-server's configuration: loopback only, JetStream in `data`, and Guild's
/// authentication (operator mode, account JWTs kept in `data/jwt`) unless insecure.
fn config_text(data: &Path, port: u16, auth: Option<&AuthParts>) -> String {
    let mut text = format!(
        "server_name: guild-dev\nlisten: 127.0.0.1:{port}\njetstream {{\n  store_dir: {:?}\n}}\n",
        data.join("jetstream").display().to_string()
    );
    if let Some(parts) = auth {
        text.push_str(&guild_auth::server::config(parts, &data.join("jwt")));
    }
    text
}

/// Makes Guild's keys under `layout` on the first start (nothing to type), and reads
/// what the server configuration is made of.
fn keys(layout: &Layout, data: &Path) -> anyhow::Result<AuthParts> {
    let limits = guild_auth::claims::AgentLimits::default();
    guild_auth::init(layout, &data.join("jwt"), limits)
        .with_context(|| format!("cannot make Guild's keys in {}", layout.keys.display()))?;
    layout
        .load_server_parts()
        .with_context(|| format!("cannot read Guild's keys in {}", layout.keys.display()))
}

/// Holds `<data>/guild-dev.lock` while a stack runs on that folder: two nats-servers on
/// one JetStream store would corrupt it. A lock whose process is gone is taken over.
struct DataLock(PathBuf);

impl DataLock {
    fn take(data: &Path) -> anyhow::Result<Self> {
        let path = data.join("guild-dev.lock");
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    use std::io::Write;
                    let _ = write!(f, "{}", std::process::id());
                    return Ok(Self(path));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    let alive = holder
                        .trim()
                        .parse::<u32>()
                        .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
                    if alive {
                        bail!(
                            "another Guild (pid {}) runs on {}; stop it, or pass another --data",
                            holder.trim(),
                            data.display()
                        );
                    }
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create {}", path.display()));
                }
            }
        }
        bail!("cannot take {}", path.display())
    }
}

impl Drop for DataLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The three services' configurations, read from the environment (`GUILD_*`) with the
/// spawner's mode given: checked before anything starts.
struct Configs {
    spawner: spawner_svc::Config,
    missions: mission_svc::Config,
    bus: bus_svc::Config,
}

/// How each service is told who it is, as its binary would be: the server's URL and its
/// own credentials, the spawner also the custodian's files; or `--insecure`.
struct Identities {
    url: String,
    layout: Option<Layout>,
}

impl Identities {
    fn args(&self, binary: &str, service: Service) -> Vec<String> {
        let mut args = vec![binary.to_owned(), "--nats-url".into(), self.url.clone()];
        let path = |p: PathBuf| p.display().to_string();
        match &self.layout {
            Some(l) => {
                args.extend(["--creds".into(), path(l.service_creds(service))]);
                if service == Service::Spawner {
                    args.extend(["--custodian".into(), path(l.custodian())]);
                    args.extend(["--system-creds".into(), path(l.system_creds())]);
                }
            }
            None => args.push("--insecure".into()),
        }
        args
    }
}

fn configs(mode: &str, ids: &Identities) -> anyhow::Result<Configs> {
    fn read<O: Parser, C>(
        args: Vec<String>,
        into: impl FnOnce(O) -> Result<C, String>,
    ) -> anyhow::Result<C> {
        let options = O::try_parse_from(&args).map_err(|e| anyhow::anyhow!("{}: {e}", args[0]))?;
        into(options).map_err(|e| anyhow::anyhow!("{}: {e}", args[0]))
    }
    let mut spawner = ids.args("spawner-svc", Service::Spawner);
    spawner.extend(["--mode".into(), mode.to_owned()]);
    Ok(Configs {
        spawner: read(spawner, spawner_svc::Options::into_config)?,
        missions: read(
            ids.args("mission-svc", Service::Mission),
            mission_svc::Options::into_config,
        )?,
        bus: read(
            ids.args("bus-svc", Service::Bus),
            bus_svc::Options::into_config,
        )?,
    })
}

/// Whether all three services answer on `guild`'s connection (one quick call each).
pub(crate) async fn answers(guild: &guild_sdk::Guild) -> bool {
    let (spawner, bus, missions) = (guild.spawner(), guild.bus(), guild.missions());
    let (a, b, c) = tokio::join!(
        spawner.get_stats(),
        bus.get_message_stats(),
        missions.get_statistics()
    );
    a.is_ok() && b.is_ok() && c.is_ok()
}

/// Where and how a stack runs.
pub(crate) struct Setup<'a> {
    /// Guild's folder: keys in `<home>/keys`, credentials in `<home>/creds`.
    pub(crate) home: &'a Path,
    /// nats-server's data.
    pub(crate) data: &'a Path,
    pub(crate) port: u16,
    pub(crate) mode: &'a str,
    /// No authentication (an explicit choice, warned about).
    pub(crate) insecure: bool,
}

/// Starts nats-server on `port` with its store in `data`, waits until it takes
/// connections, then starts the three services on it, each with its own credentials.
pub(crate) async fn start(setup: Setup<'_>) -> anyhow::Result<Stack> {
    let Setup {
        home,
        data,
        port,
        mode,
        insecure,
    } = setup;
    std::fs::create_dir_all(data)
        .with_context(|| format!("cannot create the data folder {}", data.display()))?;
    let data = data.canonicalize().unwrap_or_else(|_| data.to_path_buf());
    let lock = DataLock::take(&data)?;
    let layout = (!insecure).then(|| Layout::under(home));
    let auth = layout.as_ref().map(|l| keys(l, &data)).transpose()?;
    let url = format!("nats://127.0.0.1:{port}");
    let configs = configs(
        mode,
        &Identities {
            url: url.clone(),
            layout: layout.clone(),
        },
    )?;
    // A taken port would let us "connect" to someone else's server.
    std::net::TcpListener::bind(("127.0.0.1", port)).with_context(|| {
        format!("port {port} is in use (another `guild dev`?); pass another --port")
    })?;
    let conf = data.join("nats.conf");
    guild_auth::write_secret(&conf, &config_text(&data, port, auth.as_ref()))
        .with_context(|| format!("cannot write {}", conf.display()))?;
    // Appended, not truncated: the log of an earlier run may be what someone is reading.
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data.join("nats-server.log"))?;
    let bin = nats_server_bin()?;
    let mut server = Command::new(&bin)
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        // Its own process group: Ctrl-C reaches Guild, which stops the services first.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    let base = guild_sdk::NatsOptions::url(&url);
    let as_identity = |p: &Principal| match &layout {
        Some(l) => base.with_auth(guild_sdk::Auth::CredsFile(match p {
            Principal::Service(s) => l.service_creds(*s),
            other => l.creds_of(other),
        })),
        None => base.clone(),
    };
    let operator = as_identity(&Principal::Operator);
    // Up once the operator can connect.
    loop {
        if let Ok(Some(status)) = server.try_wait() {
            bail!(
                "nats-server exited ({status}) while starting; its log is {}",
                data.join("nats-server.log").display()
            );
        }
        match operator.connect("guild dev").await {
            Ok(_) => break,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let connect = |service| {
        let options = as_identity(&Principal::Service(service));
        async move {
            guild_service::connect(&options, service)
                .await
                .map_err(|e| anyhow::anyhow!("{}-svc: {e}", service.token()))
        }
    };
    let spawner_client = connect(Service::Spawner).await?;
    let mission_client = connect(Service::Mission).await?;
    let bus_client = connect(Service::Bus).await?;
    let (stop, stopped) = watch::channel(false);
    let run = |name: &'static str, task: JoinHandle<Result<(), String>>| (name, task);
    let until = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let Configs {
        spawner,
        missions,
        bus,
    } = configs;
    let services = vec![
        run("spawner-svc", {
            let (c, rx) = (spawner_client, stopped.clone());
            tokio::spawn(async move {
                spawner_svc::run(c, spawner, until(rx))
                    .await
                    .map_err(|e| e.to_string())
            })
        }),
        run("mission-svc", {
            let (c, rx) = (mission_client, stopped.clone());
            tokio::spawn(async move {
                mission_svc::run(c, missions, until(rx))
                    .await
                    .map_err(|e| e.to_string())
            })
        }),
        run("bus-svc", {
            let (c, rx) = (bus_client, stopped);
            tokio::spawn(async move {
                bus_svc::run(c, bus, until(rx))
                    .await
                    .map_err(|e| e.to_string())
            })
        }),
    ];
    let stack = Stack {
        url,
        data,
        operator,
        layout,
        server,
        stop,
        services,
        _lock: lock,
    };
    if let Err(e) = stack.wait_ready().await {
        // The stack never came up; why it then also failed to stop belongs to the same story.
        return Err(match stack.stop().await {
            Ok(()) => e,
            Err(stop) => anyhow::anyhow!("{e:#}; stopping what had started failed too: {stop:#}"),
        });
    }
    Ok(stack)
}

impl Stack {
    /// Waits until every service answers, or one of them stopped.
    async fn wait_ready(&self) -> anyhow::Result<()> {
        let guild = guild_sdk::connect(&self.operator).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if answers(&guild).await {
                return Ok(());
            }
            if let Some((name, _)) = self.services.iter().find(|(_, t)| t.is_finished()) {
                bail!("{name} stopped while starting (RUST_LOG=info shows why)");
            }
            if tokio::time::Instant::now() > deadline {
                bail!("the services did not answer within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the services (they finish what is in flight), then nats-server (SIGTERM, so
    /// JetStream closes its files cleanly).
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let mut failed = Vec::new();
        for (name, task) in self.services.drain(..) {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failed.push(format!("{name}: {e}")),
                Err(e) => failed.push(format!("{name}: {e}")),
            }
        }
        if let Some(pid) = self.server.id() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(10), self.server.wait())
            .await
            .is_err()
        {
            let _ = self.server.kill().await;
        }
        if failed.is_empty() {
            Ok(())
        } else {
            bail!("{}", failed.join("; "))
        }
    }

    /// The first service that stopped on its own, if any.
    fn crashed(&self) -> Option<&'static str> {
        self.services
            .iter()
            .find(|(_, t)| t.is_finished())
            .map(|(n, _)| *n)
    }
}

/// `guild dev`: runs until Ctrl-C.
pub(crate) async fn run(args: DevArgs, home: &Path, out: Out) -> anyhow::Result<()> {
    let mut stops = Stops::listen()?;
    if args.insecure {
        out.note(INSECURE_WARNING);
    }
    let data = args.data.clone().unwrap_or_else(|| home.join("data"));
    let mut stack = start(Setup {
        home,
        data: &data,
        port: args.port,
        mode: &args.mode,
        insecure: args.insecure,
    })
    .await?;
    let log = stack.data.join("nats-server.log");
    let creds = stack
        .layout
        .as_ref()
        .map(|l| l.creds_of(&Principal::Operator));
    let info = serde_json::json!({
        "nats_url": stack.url,
        "data": stack.data,
        "nats_server_log": stack.data.join("nats-server.log"),
        "services": ["spawner-svc (guild-spawner)", "bus-svc (guild-bus)", "mission-svc (guild-mission)"],
        "mode": args.mode,
        "authentication": !args.insecure,
        "operator_creds": creds,
        "observer_creds": stack.layout.as_ref().map(|l| l.creds_of(&Principal::Observer)),
        "keys": stack.layout.as_ref().map(|l| l.keys.clone()),
    });
    out.emit(&info, |_| {
        let identity = match (&creds, &stack.layout) {
            (Some(c), Some(l)) => format!(
                "\n  operator    {} (the `guild` CLI here uses it by default)\n  keys        {} \
                 (back them up: they are Guild's identity)",
                c.display(),
                l.keys.display()
            ),
            _ => "\n  INSECURE    no authentication: anyone can act as anyone".into(),
        };
        format!(
            "Guild is running.\n  NATS        {url} (JetStream data in {data}){identity}\n  services    \
             spawner-svc, bus-svc, mission-svc in this process (mode {mode})\n  server log  {log}\n\nIn \
             another shell: `guild services`, `guild demo`, `guild spawn lead --role orchestrator \
             --budget 50000`.\nCtrl-C stops everything; running `guild dev` again keeps the data.",
            url = stack.url,
            data = stack.data.join("jetstream").display(),
            mode = args.mode,
            log = stack.data.join("nats-server.log").display(),
        )
    });
    let mut check = tokio::time::interval(Duration::from_secs(1));
    let failure = loop {
        tokio::select! {
            () = stops.requested() => break None,
            _ = check.tick() => {
                if let Some(name) = stack.crashed() {
                    break Some(format!("{name} stopped on its own"));
                }
                if let Ok(Some(status)) = stack.server.try_wait() {
                    break Some(format!("nats-server exited ({status})"));
                }
            }
        }
    };
    if let Some(why) = &failure {
        out.note(&format!("{why}; shutting down"));
    }
    out.note("stopping: services first, then nats-server");
    stack.stop().await?;
    out.note("stopped");
    match failure {
        None => Ok(()),
        Some(why) => bail!(
            "{why}; the services' log lines above (RUST_LOG=info for more) and {} say why",
            log.display()
        ),
    }
}

/// Ctrl-C, SIGTERM, or SIGHUP (the terminal closed): every way a person stops Guild.
/// Listening starts when this is made, so a signal that comes while Guild is still
/// starting is kept and acted on once it has started, for a clean stop.
pub(crate) struct Stops {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

impl Stops {
    pub(crate) fn listen() -> anyhow::Result<Self> {
        let on = |kind| signal(kind).context("cannot listen for signals");
        Ok(Self {
            interrupt: on(SignalKind::interrupt())?,
            terminate: on(SignalKind::terminate())?,
            hangup: on(SignalKind::hangup())?,
        })
    }

    /// Resolves on the next of the three.
    pub(crate) async fn requested(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
            _ = self.hangup.recv() => {}
        }
    }
}
