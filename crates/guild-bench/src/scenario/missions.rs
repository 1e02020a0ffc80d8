//! Mission operations at scale: `add_dependency` with its cycle check, readiness after a
//! completion, the parallel groups, memory and start-up, measured in-process (the domain
//! alone) and end-to-end (through mission-svc and its journal).

use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use guild_domain::agent::{Role, SpawnRequest};
use guild_domain::mission::{Board, BoardConfig, Command, Dependency, NewMission, Severity};
use guild_domain::{AgentId, Effect, MissionId, Phase, Principal, Timestamp};
use guild_sdk::Guild;

use crate::report::{Row, Section};
use crate::stack::{Stack, Sync};
use crate::stats::Samples;

/// A small, fast, seeded generator: the same plan on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn mid(i: u64) -> MissionId {
    MissionId::new(format!("m{i}")).unwrap_or_else(|_| unreachable!("m<number> is a valid id"))
}

/// The plan: `n` missions, and dependencies that point back to earlier missions within a
/// window of 1,000 (work depends on recent work), as most plans grow.
fn edges(n: u64, count: u64, rng: &mut Rng) -> Vec<(u64, u64)> {
    let mut out = Vec::with_capacity(count as usize);
    while (out.len() as u64) < count {
        let a = 1 + rng.below(n - 1);
        let b = a - 1 - rng.below(a.min(1_000));
        out.push((a, b));
    }
    out
}

fn apply(
    board: &mut Board,
    effects: Vec<Effect<guild_domain::mission::Mission, guild_domain::mission::Event>>,
) {
    for e in effects {
        if let Effect::Save(m) = e {
            board.apply(m);
        }
    }
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
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

struct DomainFigures {
    add_dependency: Samples,
    against_order: Samples,
    cycles_refused: usize,
    completion: Samples,
    groups: Samples,
    memory_mib: f64,
}

/// The domain alone: no NATS, no serialization.
fn in_process(n: u64, edge_count: u64) -> DomainFigures {
    let by = Principal::Operator;
    let now = Timestamp::from_millis(0);
    let before = rss_mib();
    let mut board = Board::new(BoardConfig::default());
    for i in 0..n {
        let effects = board
            .decide(
                &by,
                &Command::Create(NewMission::new(mid(i), "m", Phase::DEVELOPMENT)),
                now,
            )
            .unwrap_or_default();
        apply(&mut board, effects);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut add = Samples::with_capacity(edge_count as usize);
    for (a, b) in edges(n, edge_count, &mut rng) {
        let cmd = Command::AddDependency {
            mission: mid(a),
            on: mid(b),
            severity: Severity::Hard,
        };
        let t = Instant::now();
        if let Ok(effects) = board.decide(&by, &cmd, now) {
            apply(&mut board, effects);
        }
        add.push(t.elapsed());
    }
    // Edges against the creation order: the order must be repaired, or the edge closes a cycle.
    let mut against = Samples::with_capacity(1_000);
    let mut cycles_refused = 0;
    for _ in 0..1_000 {
        let a = rng.below(n - 1);
        let b = a + 1 + rng.below((n - a - 1).min(1_000));
        let cmd = Command::AddDependency {
            mission: mid(a),
            on: mid(b),
            severity: Severity::Soft,
        };
        let t = Instant::now();
        match board.decide(&by, &cmd, now) {
            Ok(effects) => apply(&mut board, effects),
            Err(_) => cycles_refused += 1,
        }
        against.push(t.elapsed());
    }
    let memory_mib = rss_mib() - before;
    let mut groups = Samples::with_capacity(5);
    for i in 0..5u64 {
        // One more edge invalidates the cached layers, so each run computes them afresh.
        let cmd = Command::AddDependency {
            mission: mid(n - 1 - i),
            on: mid(0),
            severity: Severity::Soft,
        };
        if let Ok(effects) = board.decide(&by, &cmd, now) {
            apply(&mut board, effects);
        }
        let t = Instant::now();
        let g = board.parallel_groups();
        groups.push(t.elapsed());
        std::hint::black_box(g);
    }
    // Readiness after a completion: complete READY missions (their dependents are released).
    let ready: Vec<MissionId> = board
        .missions()
        .filter(|m| m.status == guild_domain::mission::MissionStatus::Ready)
        .map(|m| m.id.clone())
        .take(1_000)
        .collect();
    let agent = AgentId::new("bench").unwrap_or_else(|_| unreachable!());
    let mut completion = Samples::with_capacity(ready.len());
    for id in ready {
        if let Ok(effects) = board.decide(
            &by,
            &Command::Start {
                mission: id.clone(),
                agent: agent.clone(),
            },
            now,
        ) {
            apply(&mut board, effects);
        }
        let cmd = Command::Complete {
            mission: id,
            output: serde_json::Value::Null,
            quality_score: None,
        };
        let t = Instant::now();
        if let Ok(effects) = board.decide(&by, &cmd, now) {
            apply(&mut board, effects);
        }
        completion.push(t.elapsed());
    }
    DomainFigures {
        add_dependency: add,
        against_order: against,
        cycles_refused,
        completion,
        groups,
        memory_mib,
    }
}

/// Runs `jobs` requests from `clients` connections at once.
async fn concurrently<F, Fut>(
    stack: &Stack,
    clients: usize,
    jobs: Vec<u64>,
    call: F,
) -> anyhow::Result<()>
where
    F: Fn(Guild, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let chunk = jobs.len().div_ceil(clients).max(1);
    let mut tasks = Vec::new();
    for part in jobs.chunks(chunk) {
        let guild = Guild::new(stack.server.connect().await).with_timeout(Duration::from_secs(60));
        let part = part.to_vec();
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            for j in part {
                call(guild.clone(), j).await?;
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

pub(crate) async fn run(quick: bool) -> anyhow::Result<Section> {
    let (n, edge_count) = if quick {
        (1_000u64, 3_000u64)
    } else {
        (100_000, 300_000)
    };
    let domain = tokio::task::spawn_blocking(move || in_process(n, edge_count)).await?;

    let mut stack = Stack::start(Sync::Default).await?;
    let env = vec![
        ("GUILD_MAX_AGENTS", "1000".to_owned()),
        ("GUILD_TOKEN_POOL", "100000000".to_owned()),
    ];
    stack
        .add_service("spawner-svc", "guild-spawner", &env)
        .await?;
    stack
        .add_service(
            "mission-svc",
            "guild-mission",
            &[("GUILD_MODE", "extreme".to_owned())],
        )
        .await?;
    let guild = Guild::new(stack.client.clone()).with_timeout(Duration::from_secs(60));
    let build = Instant::now();
    concurrently(&stack, 8, (0..n).collect(), |g, i| async move {
        g.missions()
            .create_mission(&NewMission::new(mid(i), "m", Phase::DEVELOPMENT))
            .await
            .map(|_| ())
            .context("create")
    })
    .await?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let plan = edges(n, edge_count, &mut rng);
    let plan_jobs: Vec<u64> = (0..plan.len() as u64).collect();
    let plan = std::sync::Arc::new(plan);
    concurrently(&stack, 8, plan_jobs, move |g, k| {
        let plan = plan.clone();
        async move {
            let (a, b) = plan[k as usize];
            match g
                .missions()
                .add_dependency(&mid(a), &mid(b), Severity::Hard)
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if e.rule() == Some("dependency_exists") => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
    })
    .await?;
    let build_secs = build.elapsed().as_secs_f64();

    // Latency, one request at a time, on the full board.
    let samples = if quick { 100 } else { 2_000 };
    let mut add = Samples::with_capacity(samples);
    let start = Instant::now();
    for (a, b) in edges(n, samples as u64, &mut Rng(7)) {
        let t = Instant::now();
        match guild
            .missions()
            .add_dependency(&mid(a), &mid(b), Severity::Soft)
            .await
        {
            Ok(_) => {}
            Err(e) if e.rule() == Some("dependency_exists") => {}
            Err(e) => return Err(e.into()),
        }
        add.push(t.elapsed());
    }
    add.elapsed = start.elapsed();

    // Readiness after a completion: mark X complete, wait for D's `ready` event.
    guild
        .spawner()
        .spawn(SpawnRequest::new(
            AgentId::new("bench-dev")?,
            Role::Developer,
            1_000,
        ))
        .await?;
    guild
        .as_agent(AgentId::new("bench-dev")?)
        .spawner()
        .heartbeat(None)
        .await?;
    let mut ready_events = stack.client.subscribe("guild.evt.mission.ready.>").await?;
    let pairs = if quick { 20 } else { 200 };
    let mut readiness = Samples::with_capacity(pairs);
    for p in 0..pairs {
        let (x, d) = (
            MissionId::new(format!("x{p}"))?,
            MissionId::new(format!("d{p}"))?,
        );
        guild
            .missions()
            .create_mission(&NewMission::new(x.clone(), "x", Phase::DEVELOPMENT))
            .await?;
        let mut dep = NewMission::new(d.clone(), "d", Phase::DEVELOPMENT);
        dep.depends_on = vec![Dependency {
            mission_id: x.clone(),
            severity: Severity::Hard,
        }];
        guild.missions().create_mission(&dep).await?;
        guild
            .missions()
            .assign_mission(&x, Some(&AgentId::new("bench-dev")?))
            .await?;
        // Drain events of the set-up (x's own readiness).
        while let Ok(Some(_)) =
            tokio::time::timeout(Duration::from_millis(5), ready_events.next()).await
        {}
        let want = format!("guild.evt.mission.ready.{d}");
        let t = Instant::now();
        guild
            .missions()
            .mark_complete(&x, serde_json::Value::Null, None)
            .await?;
        loop {
            let m = tokio::time::timeout(Duration::from_secs(10), ready_events.next())
                .await?
                .context("events ended")?;
            if m.subject.as_str() == want {
                break;
            }
        }
        readiness.push(t.elapsed());
    }
    let mut groups = Samples::with_capacity(5);
    for _ in 0..5 {
        // A dependency change invalidates the cached layers, as in the domain figures.
        let _ = guild
            .missions()
            .add_dependency(&mid(n - 1), &mid(0), Severity::Soft)
            .await;
        let _ = guild
            .missions()
            .remove_dependency(&mid(n - 1), &mid(0))
            .await;
        let t = Instant::now();
        let g = guild.missions().parallel_groups(Some(1_000)).await?;
        groups.push(t.elapsed());
        std::hint::black_box(g);
    }
    let rss = stack
        .rss_mib()
        .into_iter()
        .find(|(s, _)| s == "mission-svc")
        .map_or(f64::NAN, |(_, m)| m);

    // Start-up: a new instance replays the whole journal before it answers.
    let t = Instant::now();
    stack
        .add_service(
            "mission-svc",
            "guild-mission",
            &[("GUILD_MODE", "extreme".to_owned())],
        )
        .await?;
    let startup = t.elapsed().as_secs_f64() * 1000.0;

    let scale = format!("{n} missions, {edge_count} dependencies");
    let rows = vec![
        Row {
            metric: format!("add_dependency with cycle check p99, in-process ({scale})"),
            target: "< 1 ms".into(),
            baseline: None,
            guild: domain.add_dependency.p99(),
            unit: "ms",
            met: Some(domain.add_dependency.p99() < 1.0),
        },
        Row {
            metric: "add_dependency against the order (repair or refuse) p99, in-process".into(),
            target: "< 1 ms".into(),
            baseline: None,
            guild: domain.against_order.p99(),
            unit: "ms",
            met: Some(domain.against_order.p99() < 1.0),
        },
        Row {
            metric: "add_dependency p50, end-to-end".into(),
            target: "—".into(),
            baseline: None,
            guild: add.p50(),
            unit: "ms",
            met: None,
        },
        Row {
            metric: "add_dependency p99, end-to-end".into(),
            target: "< 1 ms (domain goal)".into(),
            baseline: None,
            guild: add.p99(),
            unit: "ms",
            met: Some(add.p99() < 1.0),
        },
        Row {
            metric: "readiness after a completion p99, in-process".into(),
            target: "< 1 ms".into(),
            baseline: None,
            guild: domain.completion.p99(),
            unit: "ms",
            met: Some(domain.completion.p99() < 1.0),
        },
        Row {
            metric: "readiness after a completion p99, end-to-end (complete → `ready` event)"
                .into(),
            target: "—".into(),
            baseline: None,
            guild: readiness.p99(),
            unit: "ms",
            met: None,
        },
        Row {
            metric: "parallel groups, in-process (worst of 5)".into(),
            target: "seed < 50 ms".into(),
            baseline: None,
            guild: domain.groups.quantile_ms(1.0),
            unit: "ms",
            met: Some(domain.groups.quantile_ms(1.0) < 50.0),
        },
        Row {
            metric: "parallel groups, end-to-end (worst of 5)".into(),
            target: "seed < 50 ms".into(),
            baseline: None,
            guild: groups.quantile_ms(1.0),
            unit: "ms",
            met: Some(groups.quantile_ms(1.0) < 50.0),
        },
        Row {
            metric: "mission-svc resident memory".into(),
            target: "< 200 MB".into(),
            baseline: None,
            guild: rss,
            unit: "MiB",
            met: Some(rss < 200.0),
        },
        Row {
            metric: "domain memory for the board (bench process RSS growth)".into(),
            target: "—".into(),
            baseline: None,
            guild: domain.memory_mib,
            unit: "MiB",
            met: None,
        },
        Row {
            metric: "mission-svc start-up (replays the journal)".into(),
            target: "—".into(),
            baseline: None,
            guild: startup,
            unit: "ms",
            met: None,
        },
    ];
    Ok(Section {
        title: format!("Missions at scale ({scale})"),
        method: format!(
            "The plan: {n} missions, then {edge_count} `blocks_on` dependencies, each from a mission to one of \
             the 1,000 created before it (seeded, the same every run). In-process: the domain's `Board` alone, \
             each operation decided and applied. End-to-end: the same plan built through mission-svc by 8 \
             clients ({build_secs:.0} s), then measured one request at a time: {samples} more dependencies; \
             {pairs} completions timed until the dependent's `ready` event arrives; the groups request \
             (computed over every open mission, 1,000 listed). The in-process 'against the order' row adds \
             1,000 dependencies on later missions, which repair the topological order or close a cycle \
             ({} of them did, and were refused).",
            domain.cycles_refused
        ),
        rows,
        notes: vec![
            "End-to-end latency includes the request round trip and one journal append; the in-process figures \
             are the rules themselves."
                .into(),
        ],
    })
}
