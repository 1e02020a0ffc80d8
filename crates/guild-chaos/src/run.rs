//! One run of the suite, per mode: the deployment up, the team staffed, the faults
//! injected while the workload runs, then the drain (no new work; what is open
//! finishes), quiescence awaited with a bounded wait, every agent ended, the revoked
//! credentials tried, everything stopped, and the checker's verdict.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use guild_domain::agent::{Limits, Mode as GuildMode};
use guild_domain::mission::BoardConfig;
use guild_testkit::{Cluster, NatsServer, ServerOptions};
use guild_wire::domain::Principal;
use tokio::sync::{Mutex, watch};

use crate::RunArgs;
use crate::check::{self, Verdict};
use crate::deploy::{Deployment, Shared};
use crate::driver::{Driver, PLAN};
use crate::fold::Folds;
use crate::inject::{Injector, Mode, schedule};
use crate::record::{Log, now_ms, read_all};
use crate::rng::Rng;
use crate::worker::Control;

/// The heartbeat window the suite gives the spawner (30 s in production): a pause of an
/// agent longer than this makes it FAILED.
pub(crate) const HEARTBEAT_WINDOW: Duration = Duration::from_secs(2);

/// The token pool: the lead and the root agents live at once, with room.
pub(crate) const TOKEN_POOL: u64 = 20_000_000;

/// How long quiescence is waited for after the drain.
pub(crate) const QUIESCENCE: Duration = Duration::from_secs(180);
/// How long the events the journals planned are waited for once the team ended: a sweep
/// publishes what its writer could not after the outbox grace (5 s), retrying while the
/// stream refuses.
pub(crate) const PUBLISHED: Duration = Duration::from_secs(60);

/// What a mode's run came to, for the report.
pub(crate) struct Outcome {
    pub(crate) mode: Mode,
    pub(crate) seed: u64,
    pub(crate) duration: Duration,
    pub(crate) verdict: Verdict,
    /// The nats-server configuration (node 0's).
    pub(crate) server_config: String,
    /// The services' environment.
    pub(crate) env: Vec<(String, String)>,
    /// How long the whole mode took, wall time.
    pub(crate) wall: Duration,
    /// How long quiescence took after the drain (None: not reached in the bound).
    pub(crate) quiescence: Option<Duration>,
    /// How long after the team ended every planned event was stored (None: not in the
    /// bound).
    pub(crate) published: Option<Duration>,
    pub(crate) dir: PathBuf,
}

/// `guild-chaos run`: every mode asked for; whether all passed.
pub(crate) async fn main(args: RunArgs) -> anyhow::Result<bool> {
    let seed = args.seed.unwrap_or_else(|| {
        let t = now_ms();
        Rng::new(t ^ u64::from(std::process::id())).next_u64() % 1_000_000
    });
    eprintln!("guild-chaos: seed {seed} (replay with --seed {seed})");
    let modes: Vec<Mode> = if args.both {
        vec![Mode::Single, Mode::Cluster]
    } else if args.cluster {
        vec![Mode::Cluster]
    } else {
        vec![Mode::Single]
    };
    let base = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("guild-chaos-{seed}-{}", now_ms())),
    };
    let mut outcomes = Vec::new();
    for mode in modes {
        let dir = base.join(mode.name());
        eprintln!(
            "guild-chaos: {} run, {:?} of workload, files in {}",
            mode.name(),
            args.duration,
            dir.display()
        );
        let outcome = run_mode(mode, seed, args.duration, &dir).await?;
        eprintln!("{}", outcome.verdict.summary(mode));
        eprintln!(
            "guild-chaos: {} run {} in {} s",
            mode.name(),
            if outcome.verdict.passed() {
                "PASSED"
            } else {
                "FAILED"
            },
            outcome.wall.as_secs()
        );
        outcomes.push(outcome);
    }
    if let Some(out) = &args.out {
        crate::report::write(out, &outcomes, &args.command_name)
            .with_context(|| format!("while writing {}", out.display()))?;
        eprintln!("guild-chaos: wrote {}", out.display());
    }
    Ok(outcomes.iter().all(|o| o.verdict.passed()))
}

async fn connect_operator(urls: &str, creds: &Path) -> anyhow::Result<guild_sdk::Guild> {
    let options = guild_sdk::NatsOptions::url(urls)
        .with_auth(guild_sdk::Auth::CredsFile(creds.to_path_buf()));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match guild_sdk::connect(&options).await {
            Ok(g) => return Ok(g),
            Err(e) if Instant::now() > deadline => {
                return Err(anyhow::anyhow!("the operator could not connect: {e}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn run_mode(
    mode: Mode,
    seed: u64,
    duration: Duration,
    dir: &Path,
) -> anyhow::Result<Outcome> {
    let wall = Instant::now();
    std::fs::create_dir_all(dir.join("logs"))?;
    let driver_log = Arc::new(Log::open(&dir.join("logs").join("driver.jsonl"), "driver")?);
    let injector_log = Arc::new(Log::open(
        &dir.join("logs").join("injector.jsonl"),
        "injector",
    )?);
    let deploy_log = Arc::new(Log::open(&dir.join("logs").join("deploy.jsonl"), "deploy")?);

    // The broker: one node, or three on hosts of their own. A cluster that cannot be made
    // (no root, no iproute2) fails the run: the test kit panics, and that is an error here.
    let options = ServerOptions::default();
    let (nodes, cluster, admin) = match mode {
        Mode::Single => {
            let server = tokio::task::spawn_blocking(move || NatsServer::start_with(options))
                .await
                .context("while starting nats-server")?;
            let admin = server.connect_admin().await;
            (vec![server], None, admin)
        }
        Mode::Cluster => {
            let mut c = tokio::spawn(Cluster::start_on_hosts(3, options))
                .await
                .context("while starting the 3-node cluster on network namespaces (root and iproute2 needed)")?;
            let admin = c.connect_admin().await;
            let nodes = std::mem::take(&mut c.nodes);
            (nodes, Some(Arc::new(c)), admin)
        }
    };
    let server_config = nodes[0].config_text();
    let operator_creds = nodes[0].creds_file(&Principal::Operator);
    let urls = crate::deploy::urls(&nodes);
    let replicas = if mode == Mode::Cluster { "3" } else { "1" };
    let env: Vec<(String, String)> = [
        ("GUILD_REPLICAS", replicas.to_owned()),
        (
            "GUILD_HEARTBEAT_WINDOW",
            format!("{}s", HEARTBEAT_WINDOW.as_secs()),
        ),
        ("GUILD_MAX_AGENTS", PLAN.max_agents.to_string()),
        ("GUILD_TOKEN_POOL", TOKEN_POOL.to_string()),
        ("GUILD_ACK_WAIT", "5s".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let deployment = Deployment::start(
        nodes,
        &admin,
        dir,
        seed,
        &env,
        |_| Vec::new(),
        deploy_log.clone(),
    )
    .await
    .context("while starting the services")?;
    let deploy: Shared = Arc::new(Mutex::new(deployment));
    let operator = connect_operator(&urls, &operator_creds).await?;

    let limits = Limits::resolve(
        GuildMode::Safe,
        Some(PLAN.max_agents),
        Some(TOKEN_POOL),
        None,
    )
    .map_err(|e| anyhow::anyhow!("limits: {e:?}"))?;
    let folds = Arc::new(Mutex::new(Folds::new(
        limits,
        BoardConfig {
            max_parallel_groups: limits.max_parallel_groups,
        },
    )));
    let js = async_nats::jetstream::new(admin.clone());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut background = Vec::new();
    // The journals read as they grow (a failed read, the broker down, is tried again).
    {
        let folds = folds.clone();
        let js = js.clone();
        let mut stop = stop_rx.clone();
        background.push(tokio::spawn(async move {
            loop {
                let _ = folds.lock().await.pull(&js).await;
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        }));
    }
    // Processes that end on their own, recorded (and services started again).
    {
        let deploy = deploy.clone();
        let admin = admin.clone();
        let mut stop = stop_rx.clone();
        background.push(tokio::spawn(async move {
            loop {
                deploy.lock().await.supervise(&admin).await;
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(Duration::from_millis(300)) => {}
                }
            }
        }));
    }
    let control = Control::new(dir);
    let driver = Driver::new(
        operator.clone(),
        driver_log.clone(),
        deploy.clone(),
        control.clone(),
        folds.clone(),
        Rng::new(seed).fork("driver"),
    );
    let (driver_stop_tx, driver_stop_rx) = watch::channel(false);
    let driver_tasks = driver.start(driver_stop_rx);
    let staffed = within(Duration::from_secs(90), || {
        let d = driver.clone();
        async move { d.staffed(PLAN.roots).await.then_some(()) }
    })
    .await;
    if staffed.is_none() {
        anyhow::bail!(
            "the team was not staffed within 90 s; see {}",
            dir.display()
        );
    }

    let plan = schedule(mode, seed, duration, HEARTBEAT_WINDOW);
    eprintln!("guild-chaos: {} faults planned:", plan.len());
    for f in &plan {
        eprintln!(
            "  at {:>5.1} s  {:<30} target {} hold {} ms",
            f.at.as_secs_f64(),
            f.kind.name(),
            f.target,
            f.hold.as_millis()
        );
    }
    let injector = Injector {
        deploy: deploy.clone(),
        admin: admin.clone(),
        log: injector_log.clone(),
        cluster: cluster.clone(),
        driver: driver.clone(),
        operator_creds: operator_creds.clone(),
    };
    let started = Instant::now();
    injector.run(&plan, started, duration).await;

    // The drain: no new work; what is open finishes, every acknowledged message reaches
    // the agents still live.
    eprintln!("guild-chaos: draining");
    driver.drain();
    control.set("drain")?;
    let drained_at = Instant::now();
    let quiet = within(QUIESCENCE, || {
        let folds = folds.clone();
        let js = js.clone();
        let dir = dir.to_path_buf();
        async move {
            let mut f = folds.lock().await;
            f.pull(&js).await.ok()?;
            if f.missions.open() > 0 {
                return None;
            }
            let live: BTreeSet<String> = live_agents(&f);
            let (lines, _) = read_all(&dir.join("logs")).ok()?;
            check::undelivered(&lines, &live).is_empty().then_some(())
        }
    })
    .await;
    let quiescence = quiet.map(|()| drained_at.elapsed());
    match quiescence {
        Some(q) => eprintln!(
            "guild-chaos: quiescent {} ms after the drain",
            q.as_millis()
        ),
        None => eprintln!(
            "guild-chaos: NOT quiescent {} s after the drain",
            QUIESCENCE.as_secs()
        ),
    }
    control.set("idle")?;
    // A consume under way when `idle` appeared ends within its wait.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let at_quiet = {
        let mut f = folds.lock().await;
        let _ = f.pull(&js).await;
        check::Quiet::of(&f)
    };
    let _ = driver_stop_tx.send(true);
    for t in driver_tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
    }
    driver.release_lead();

    // Every agent ended the way an operator ends a team (terminate, subtree), then every
    // ended agent's credentials tried.
    end_team(&operator).await;
    let _ = within(Duration::from_secs(30), || {
        let operator = operator.clone();
        async move {
            let all = operator.spawner().list(&Default::default()).await.ok()?;
            all.iter().all(|a| !a.is_live()).then_some(())
        }
    })
    .await;
    // Revocation takes effect at the broker once the custodian has pushed the claims.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ended = ended_now(&operator).await;
    for (id, k) in driver
        .known()
        .into_iter()
        .filter(|(id, _)| ended.contains(id.as_str()))
    {
        crate::inject::try_revoked(
            &injector_log,
            &urls,
            &operator_creds,
            id.as_str(),
            &k.creds,
            "the end of the run",
        )
        .await;
    }
    // What the journals planned to publish is published after the answers (a failed
    // publish by a sweep after the outbox grace): waited for, bounded, then read once more.
    let published_from = Instant::now();
    let published = within(PUBLISHED, || {
        let folds = folds.clone();
        let js = js.clone();
        async move {
            let mut f = folds.lock().await;
            f.pull(&js).await.ok()?;
            let streams = check::Streams::read(&js).await;
            check::unstored(&f, &streams).is_empty().then_some(())
        }
    })
    .await
    .map(|()| published_from.elapsed());
    match published {
        Some(p) => eprintln!(
            "guild-chaos: every planned event stored {} ms after the team ended",
            p.as_millis()
        ),
        None => eprintln!(
            "guild-chaos: planned events still unstored {} s after the team ended",
            PUBLISHED.as_secs()
        ),
    }
    {
        let mut f = folds.lock().await;
        let _ = f.pull(&js).await;
    }
    let streams = check::Streams::read(&js).await;
    let audit = match (
        guild_sdk::audit::export(&operator).await,
        guild_sdk::audit::keys(&operator).await,
    ) {
        (Ok(records), Ok(keys)) => Ok(guild_sdk::audit::verify(&records, Some(&keys))),
        (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
    };

    // Everything stopped; the exits recorded.
    let restarts = {
        let mut d = deploy.lock().await;
        d.supervise(&admin).await;
        let _ = stop_tx.send(true);
        d.shut_down().await;
        d.slots
            .iter()
            .map(|s| (s.name.clone(), s.restarts.clone()))
            .collect::<Vec<_>>()
    };
    for t in background {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    let (lines, torn) = read_all(&dir.join("logs"))?;
    let verdict = {
        let f = folds.lock().await;
        check::check(check::Inputs {
            mode,
            duration,
            lines: &lines,
            torn,
            folds: &f,
            quiet: &at_quiet,
            streams: &streams,
            audit: &audit,
            restarts: &restarts,
            quiescent: quiescence.is_some(),
        })
    };
    drop(injector);
    drop(driver);
    // The nodes before the hosts they run on.
    if let Ok(d) = Arc::try_unwrap(deploy) {
        drop(d.into_inner());
    }
    drop(cluster);
    Ok(Outcome {
        mode,
        seed,
        duration,
        verdict,
        server_config,
        env,
        wall: wall.elapsed(),
        quiescence,
        published,
        dir: dir.to_path_buf(),
    })
}

/// The agents live in the folded registry, with the operator (whose inbox is live too).
pub(crate) fn live_agents(f: &Folds) -> BTreeSet<String> {
    f.spawner
        .registry
        .agents()
        .filter(|a| a.is_live())
        .map(|a| a.id.to_string())
        .chain([Principal::Operator.token().to_owned()])
        .collect()
}

/// Terminates every live agent (roots with their subtrees first; an agent whose parent
/// ended before it is a root of its own then).
async fn end_team(operator: &guild_sdk::Guild) {
    for _ in 0..5 {
        let Ok(all) = operator.spawner().list(&Default::default()).await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        let live: Vec<_> = all.iter().filter(|a| a.is_live()).collect();
        if live.is_empty() {
            return;
        }
        let live_ids: BTreeSet<_> = live.iter().map(|a| a.id.clone()).collect();
        for a in live
            .iter()
            .filter(|a| a.parent_id.as_ref().is_none_or(|p| !live_ids.contains(p)))
        {
            let _ = crate::call::settle(crate::call::PATIENCE, || {
                let (g, id) = (operator.clone(), &a.id);
                async move {
                    g.spawner()
                        .terminate(&guild_sdk::Terminate::new(id, true))
                        .await
                }
            })
            .await;
        }
    }
}

/// The agents Guild has ended, as it lists them now.
async fn ended_now(operator: &guild_sdk::Guild) -> BTreeSet<String> {
    let query = guild_sdk::AgentQuery {
        include_terminated: true,
        ..Default::default()
    };
    operator
        .spawner()
        .list(&query)
        .await
        .map(|all| {
            all.iter()
                .filter(|a| !a.is_live())
                .map(|a| a.id.to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Polls `check` every 200 ms until it returns `Some`, for at most `limit`: `None` when
/// it never did (the caller decides what that means; the test kit's `eventually` panics).
async fn within<T, F>(limit: Duration, mut check: impl FnMut() -> F) -> Option<T>
where
    F: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
