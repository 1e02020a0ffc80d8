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

use super::plan::{EDGES_PER_MISSION, Rng, edges, mid, rng};
use crate::scenario::{concurrently, spawner_env};
use crate::stack::{Service, Stack, Sync, Telemetry};
use crate::stats::Samples;

/// The figures at one scale.
pub(crate) struct AtScale {
    pub(crate) missions: u64,
    /// How long growing the plan to this scale took.
    pub(crate) build: Duration,
    pub(crate) add_dependency: Samples,
    /// From marking a mission complete until its dependent's `ready` event arrives.
    pub(crate) readiness: Samples,
    pub(crate) groups: Samples,
    pub(crate) rss_mib: f64,
}

pub(crate) struct Figures {
    pub(crate) scales: Vec<AtScale>,
    /// A second instance's start-up at the largest scale: it replays the journal.
    pub(crate) startup: Duration,
}

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
    stack.add_service(Service::Missions, &mission_env()).await?;
    let guild = Guild::new(stack.client.clone()).with_timeout(Duration::from_secs(60));
    let dev = AgentId::new("bench-dev")?;
    guild
        .spawner()
        .spawn(SpawnRequest::new(dev.clone(), Role::Developer, 1_000))
        .await?;
    guild
        .as_agent(dev.clone())
        .spawner()
        .heartbeat(None)
        .await?;
    let mut ready_events = stack.client.subscribe("guild.evt.mission.ready.>").await?;

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

        // Readiness after a completion: mark X complete, wait for D's `ready` event.
        let mut readiness = Samples::with_capacity(pairs);
        for p in 0..pairs {
            let (x, d) = (
                MissionId::new(format!("x{n}-{p}"))?,
                MissionId::new(format!("d{n}-{p}"))?,
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
            guild.missions().assign_mission(&x, Some(&dev)).await?;
            // Drain events of the set-up (x's own readiness).
            while let Ok(Some(_)) =
                tokio::time::timeout(Duration::from_millis(5), ready_events.next()).await
            {
            }
            let want = format!("guild.evt.mission.ready.{d}");
            let t = Instant::now();
            // The event is awaited alongside the request, not after its reply: a
            // subscriber learns of readiness when the event comes, whatever the reply does.
            let missions = guild.missions();
            let complete = missions.mark_complete(&x, serde_json::Value::Null, None);
            let ready = async {
                loop {
                    let m = tokio::time::timeout(Duration::from_secs(10), ready_events.next())
                        .await?
                        .context("events ended")?;
                    if m.subject.as_str() == want {
                        return anyhow::Ok(t.elapsed());
                    }
                }
            };
            let (completed, ready) = tokio::join!(complete, ready);
            completed?;
            readiness.push(ready?);
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
        out.push(AtScale {
            missions: n,
            build,
            add_dependency: add,
            readiness,
            groups,
            rss_mib: stack.rss(Service::Missions),
        });
    }

    // Start-up: a new instance replays the whole journal before it answers.
    let startup = stack.add_service(Service::Missions, &mission_env()).await?;
    Ok(Figures {
        scales: out,
        startup,
    })
}
