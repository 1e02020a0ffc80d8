//! The mission rules end to end: the plan built through mission-svc (its own process,
//! its journal on JetStream) by 8 clients, scale by scale, measured at each scale one
//! request at a time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use guild_domain::agent::{Role, SpawnRequest};
use guild_domain::mission::{Dependency, NewMission, Severity};
use guild_domain::{AgentId, MissionId, Phase};
use guild_sdk::Guild;

use super::plan::{EDGES_PER_MISSION, Rng, backward_edges, edges, mid, rng};
use crate::scenario::raw::{Responder, Writes};
use crate::scenario::{concurrently, spawner_env};
use crate::stack::{Service, Stack, Sync, Telemetry};
use crate::stats::Samples;

/// The figures at one scale.
pub(crate) struct AtScale {
    pub(crate) missions: u64,
    /// How long growing the plan to this scale took.
    pub(crate) build: Duration,
    pub(crate) add_dependency: Samples,
    /// From marking a mission complete until its dependent's `ready` event arrives, the
    /// completion sent as soon as its set-up is done.
    pub(crate) readiness: Samples,
    /// The same, the completion sent after [`IDLE`] with nothing to do.
    pub(crate) readiness_idle: Samples,
    /// Raw NATS, in the same run: request → journal append → one event → reply.
    pub(crate) add_dependency_raw: Samples,
    /// Raw NATS, in the same run: request → journal append → four events, timed to the
    /// last event's arrival.
    pub(crate) readiness_raw: Samples,
    /// The same, each request sent after [`IDLE`].
    pub(crate) readiness_idle_raw: Samples,
    pub(crate) groups: Samples,
    pub(crate) rss_mib: f64,
}

pub(crate) struct Figures {
    pub(crate) scales: Vec<AtScale>,
    /// At the largest scale: dependencies on later missions, each repairing the
    /// topological order or closing a cycle (refused, counted in `cycles_refused`).
    pub(crate) against_order: Samples,
    pub(crate) cycles_refused: usize,
    /// A second instance's start-up at the largest scale: it replays the journal.
    pub(crate) startup: Duration,
}

/// How long the machine is left idle before a completion in the idle readiness figures.
pub(crate) const IDLE: Duration = Duration::from_millis(5);

fn mission_env() -> Vec<(&'static str, String)> {
    vec![("GUILD_MODE", "extreme".to_owned())]
}

/// Grows the plan from `have` to `n` missions through mission-svc, 8 clients at once.
async fn grow(stack: &Stack, have: u64, n: u64, plan: &mut Rng) -> anyhow::Result<()> {
    concurrently(stack, 8, (have..n).collect(), |g, i| async move {
        g.missions()
            .create_mission(&NewMission::new(mid(i), "m", Phase::DEVELOPMENT))
            .await
            .map(|_| ())
            .context("create")
    })
    .await?;
    let deps = Arc::new(edges(have, n, EDGES_PER_MISSION * (n - have), plan));
    let jobs = (0..deps.len() as u64).collect();
    concurrently(stack, 8, jobs, move |g, k| {
        let deps = deps.clone();
        async move {
            let (a, b) = deps[k as usize];
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
    Ok(())
}

pub(crate) async fn end_to_end(
    scales: &[u64],
    samples: u64,
    pairs: usize,
) -> anyhow::Result<Figures> {
    let mut stack = Stack::start(Sync::Default, Telemetry::Off).await?;
    // With room to spare, and no heartbeat window: building 100k missions takes minutes.
    stack.add_service(Service::Spawner, &spawner_env()).await?;
    stack.add_service(Service::Mission, &mission_env()).await?;
    let guild = stack.operator().with_timeout(Duration::from_secs(60));
    let dev = AgentId::new("bench-dev")?;
    stack
        .team
        .try_spawn(SpawnRequest::new(dev.clone(), Role::Developer, 1_000))
        .await?;
    stack.agent(dev.as_str())?.spawner().heartbeat(None).await?;
    let add_raw = Responder::start(&stack.client, "adddependency", Writes::ADD_DEPENDENCY).await?;
    let complete_raw = Responder::start(&stack.client, "complete", Writes::COMPLETE).await?;

    let mut plan = rng();
    let mut have = 0;
    let mut out = Vec::new();
    for &n in scales {
        let build = Instant::now();
        grow(&stack, have, n, &mut plan).await?;
        let build = build.elapsed();
        have = n;

        // Latency, one request at a time, on the board at this scale.
        let mut add = Samples::with_capacity(samples as usize);
        for (a, b) in edges(0, n, samples, &mut Rng(7 + n)) {
            match add_dependency(&guild, a, b).await? {
                Added::Yes(took) => add.push(took),
                Added::Exists => {}
                Added::Cycle(_) => {
                    anyhow::bail!("m{a} -> m{b} points back: it cannot close a cycle")
                }
            }
        }

        let (readiness, readiness_idle) = readiness(&stack.client, &guild, &dev, n, pairs).await?;

        // The raw baselines at this scale, under the same load on the same server.
        let add_dependency_raw = add_raw.measure(&stack.client, samples as usize).await?;
        let readiness_raw = complete_raw
            .measure_until_last_event(&stack.client, pairs, Duration::ZERO)
            .await?;
        let readiness_idle_raw = complete_raw
            .measure_until_last_event(&stack.client, pairs, IDLE)
            .await?;

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
            let g = guild
                .missions()
                .get_parallelizable_missions(Some(1_000))
                .await?;
            groups.push(t.elapsed());
            std::hint::black_box(g);
        }
        out.push(AtScale {
            missions: n,
            build,
            add_dependency: add,
            readiness,
            readiness_idle,
            add_dependency_raw,
            readiness_raw,
            readiness_idle_raw,
            groups,
            rss_mib: stack.rss(Service::Mission),
        });
    }

    // Against the creation order, last: each repairs the order the figures above relied on.
    let mut against_order = Samples::with_capacity(1_000);
    let mut cycles_refused = 0;
    for (a, b) in backward_edges(have, 1_000, &mut Rng(11)) {
        match add_dependency(&guild, a, b).await? {
            Added::Yes(took) => against_order.push(took),
            Added::Cycle(took) => {
                cycles_refused += 1;
                against_order.push(took);
            }
            Added::Exists => {}
        }
    }

    // Start-up: a new instance replays the whole journal before it answers.
    let startup = stack.add_service(Service::Mission, &mission_env()).await?;
    Ok(Figures {
        scales: out,
        against_order,
        cycles_refused,
        startup,
    })
}

/// What adding a dependency did, and how long it took.
enum Added {
    Yes(Duration),
    /// Refused: it would have closed a cycle.
    Cycle(Duration),
    /// Refused before any graph work, as the plan already has it: not a sample of adding one.
    Exists,
}

/// Makes mission `a` depend (softly) on mission `b`, timed.
async fn add_dependency(guild: &Guild, a: u64, b: u64) -> anyhow::Result<Added> {
    let t = Instant::now();
    match guild
        .missions()
        .add_dependency(&mid(a), &mid(b), Severity::Soft)
        .await
    {
        Ok(_) => Ok(Added::Yes(t.elapsed())),
        Err(e) if e.rule() == Some("dependency_cycle") => Ok(Added::Cycle(t.elapsed())),
        Err(e) if e.rule() == Some("dependency_exists") => Ok(Added::Exists),
        Err(e) => Err(e.into()),
    }
}

/// Readiness after a completion, `pairs` times each way: mission X is created, assigned
/// and completed, and the time is from sending the completion until the `ready` event of
/// D (which depends on X) arrives. The event is awaited alongside the request, not after
/// its reply: a subscriber learns of readiness when the event comes, whatever the reply
/// does. Alternately the completion follows its set-up at once (returned first), or after
/// [`IDLE`] with nothing running (second).
async fn readiness(
    client: &async_nats::Client,
    guild: &Guild,
    dev: &AgentId,
    n: u64,
    pairs: usize,
) -> anyhow::Result<(Samples, Samples)> {
    // Subscribed only now: the plan's growth made most of its missions READY, and a
    // subscriber left unread through it would overflow and drop what comes next.
    let mut events = client.subscribe("guild.evt.mission.ready.>").await?;
    client.flush().await?;
    let mut next_event = async |subject: &str| {
        loop {
            let m = tokio::time::timeout(Duration::from_secs(10), events.next())
                .await?
                .context("events ended")?;
            if m.subject.as_str() == subject {
                return anyhow::Ok(());
            }
        }
    };
    let (mut at_once, mut after_idle) =
        (Samples::with_capacity(pairs), Samples::with_capacity(pairs));
    for p in 0..2 * pairs {
        let (x, d) = (
            MissionId::new(format!("x{n}-{p}"))?,
            MissionId::new(format!("d{n}-{p}"))?,
        );
        let missions = guild.missions();
        missions
            .create_mission(&NewMission::new(x.clone(), "x", Phase::DEVELOPMENT))
            .await?;
        let mut dep = NewMission::new(d.clone(), "d", Phase::DEVELOPMENT);
        dep.depends_on = vec![Dependency {
            mission_id: x.clone(),
            severity: Severity::Hard,
        }];
        missions.create_mission(&dep).await?;
        missions.assign_mission(&x, Some(dev)).await?;
        // X's own `ready` event, sent before its creation was answered, is the set-up's
        // only one.
        next_event(&format!("guild.evt.mission.ready.{x}")).await?;
        let idle = p % 2 == 1;
        if idle {
            tokio::time::sleep(IDLE).await;
        }
        let want = format!("guild.evt.mission.ready.{d}");
        let t = Instant::now();
        let complete = missions.mark_complete(&x, serde_json::Value::Null, None);
        let ready = async {
            next_event(&want).await?;
            anyhow::Ok(t.elapsed())
        };
        let (completed, ready) = tokio::join!(complete, ready);
        completed?;
        if idle { &mut after_idle } else { &mut at_once }.push(ready?);
    }
    Ok((at_once, after_idle))
}
