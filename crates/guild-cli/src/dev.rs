//! `guild dev`: nats-server with JetStream (data in a local folder) and the three services
//! in this process. `guild demo` starts the same stack when no Guild is running.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cli::DevArgs;
use crate::output::Out;

/// The embedded stack: a nats-server child process and the three services as tasks.
pub(crate) struct Stack {
    pub(crate) url: String,
    pub(crate) data: PathBuf,
    server: Child,
    stop: watch::Sender<bool>,
    services: Vec<(&'static str, JoinHandle<Result<(), String>>)>,
}

/// The seed's aggressive mode (10 agents): the demo's nine agents fit, safe mode's six do not.
pub(crate) const DEV_MODE: &str = "aggressive";

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

fn config_text(data: &Path, port: u16) -> String {
    format!(
        "server_name: guild-dev\nlisten: 127.0.0.1:{port}\njetstream {{\n  store_dir: {:?}\n}}\n",
        data.join("jetstream").display().to_string()
    )
}

/// Starts nats-server on `port` with its store in `data`, waits until it takes
/// connections, then starts the three services on it.
pub(crate) async fn start(data: &Path, port: u16, mode: &str) -> anyhow::Result<Stack> {
    std::fs::create_dir_all(data)
        .with_context(|| format!("cannot create the data folder {}", data.display()))?;
    let data = data.canonicalize().unwrap_or_else(|_| data.to_path_buf());
    let conf = data.join("nats.conf");
    std::fs::write(&conf, config_text(&data, port))
        .with_context(|| format!("cannot write {}", conf.display()))?;
    let log = std::fs::File::create(data.join("nats-server.log"))?;
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
    let url = format!("nats://127.0.0.1:{port}");
    let client = loop {
        if let Ok(Some(status)) = server.try_wait() {
            let log = std::fs::read_to_string(data.join("nats-server.log")).unwrap_or_default();
            bail!(
                "nats-server exited ({status}); is port {port} taken (another `guild dev`?) — try \
                 `--port`. Its log:\n{log}"
            );
        }
        match async_nats::connect(&url).await {
            Ok(c) => break c,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let (stop, stopped) = watch::channel(false);
    let mut services = Vec::new();
    let until_stop = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let spawner = spawner_svc::Options::try_parse_from(["spawner-svc", "--mode", mode])
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .into_config()
        .map_err(|e| anyhow::anyhow!("spawner-svc: {e}"))?;
    let (c, rx) = (client.clone(), stopped.clone());
    services.push((
        "spawner-svc",
        tokio::spawn(async move {
            spawner_svc::run(c, spawner, until_stop(rx))
                .await
                .map_err(|e| e.to_string())
        }),
    ));
    let missions = mission_svc::Options::try_parse_from(["mission-svc"])
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .into_config()
        .map_err(|e| anyhow::anyhow!("mission-svc: {e}"))?;
    let (c, rx) = (client.clone(), stopped.clone());
    services.push((
        "mission-svc",
        tokio::spawn(async move {
            mission_svc::run(c, missions, until_stop(rx))
                .await
                .map_err(|e| e.to_string())
        }),
    ));
    let bus = bus_svc::Options::try_parse_from(["bus-svc"])
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .into_config()
        .map_err(|e| anyhow::anyhow!("bus-svc: {e}"))?;
    let (c, rx) = (client.clone(), stopped);
    services.push((
        "bus-svc",
        tokio::spawn(async move {
            bus_svc::run(c, bus, until_stop(rx))
                .await
                .map_err(|e| e.to_string())
        }),
    ));
    let stack = Stack {
        url,
        data,
        server,
        stop,
        services,
    };
    stack.wait_ready().await?;
    Ok(stack)
}

impl Stack {
    /// Waits until every service answers, or one of them stopped.
    async fn wait_ready(&self) -> anyhow::Result<()> {
        let guild = guild_sdk::connect(&self.url).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (spawner, bus, missions) = (guild.spawner(), guild.bus(), guild.missions());
            let (a, b, c) = tokio::join!(
                spawner.get_stats(),
                bus.get_message_stats(),
                missions.get_statistics()
            );
            if a.is_ok() && b.is_ok() && c.is_ok() {
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
pub(crate) async fn run(args: DevArgs, out: Out) -> anyhow::Result<()> {
    let mut stack = start(&args.data, args.port, &args.mode).await?;
    let info = serde_json::json!({
        "nats_url": stack.url,
        "data": stack.data,
        "nats_server_log": stack.data.join("nats-server.log"),
        "services": ["spawner-svc (guild-spawner)", "bus-svc (guild-bus)", "mission-svc (guild-mission)"],
        "mode": args.mode,
    });
    out.emit(&info, |_| {
        format!(
            "Guild is running.\n  NATS        {url} (JetStream data in {data})\n  services    spawner-svc, bus-svc, \
             mission-svc in this process (mode {mode})\n  server log  {log}\n\nIn another shell: `guild \
             services`, `guild demo`, `guild spawn lead --role orchestrator --budget 50000`.\nCtrl-C stops \
             everything; running `guild dev` again keeps the data.",
            url = stack.url,
            data = stack.data.join("jetstream").display(),
            mode = args.mode,
            log = stack.data.join("nats-server.log").display(),
        )
    });
    let mut check = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = guild_service::shutdown_signal() => break,
            _ = check.tick() => {
                if let Some(name) = stack.crashed() {
                    out.note(&format!("{name} stopped; shutting down"));
                    break;
                }
                if let Ok(Some(status)) = stack.server.try_wait() {
                    out.note(&format!("nats-server exited ({status}); shutting down"));
                    break;
                }
            }
        }
    }
    out.note("stopping: services first, then nats-server");
    stack.stop().await?;
    out.note("stopped");
    Ok(())
}
