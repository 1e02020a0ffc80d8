//! Start-up and memory: how long each service takes from process start until it answers
//! `$SRV.PING` (empty store, then replaying a full one), and each service's resident
//! memory as the number of agents grows to 10,000, each with a message in its inbox.

use std::time::Duration;

use guild_sdk::AgentId;
use guild_sdk::api::bus::SendRequest;
use guild_sdk::{Role, SpawnRequest};

use crate::plot::{Axis, Plot, Scale, Series};
use crate::report::{Figure, Row, Section};
use crate::scenario::{concurrently, spawner_env};
use crate::stack::{Service, Stack, Sync, Telemetry, binary};

/// The seed's ceiling for spawner-svc and bus-svc at 10k agents, in MB.
const CEILING_MB: f64 = 100.0;

const SERVICES: [Service; 3] = [Service::Spawner, Service::Mission, Service::Bus];

fn agent(i: u64) -> anyhow::Result<AgentId> {
    AgentId::new(format!("fp{i}")).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Spawns agents `have..n` and sends each one REQUEST, which waits in its inbox.
async fn grow(stack: &Stack, have: u64, n: u64) -> anyhow::Result<()> {
    concurrently(stack, 8, (have..n).collect(), |g, i| async move {
        g.spawner()
            .spawn(SpawnRequest::new(agent(i)?, Role::Developer, 1))
            .await?;
        Ok(())
    })
    .await?;
    concurrently(stack, 8, (have..n).collect(), |g, i| async move {
        g.bus()
            .request(&SendRequest {
                to: agent(i)?,
                subject: "welcome".into(),
                payload: serde_json::json!({ "body": "x".repeat(200) }),
                priority: None,
                task_id: None,
                message_id: None,
            })
            .await?;
        Ok(())
    })
    .await?;
    Ok(())
}

pub(crate) async fn run(quick: bool) -> anyhow::Result<Section> {
    let steps: &[u64] = if quick {
        &[50, 100, 200]
    } else {
        &[1_000, 2_500, 5_000, 7_500, 10_000]
    };
    let mut stack = Stack::start(Sync::Default, Telemetry::Off).await?;
    let mut empty = Vec::new();
    for s in SERVICES {
        let env = if s == Service::Spawner {
            spawner_env()
        } else {
            Vec::new()
        };
        empty.push((s, stack.add_service(s, &env).await?));
    }
    let guild = stack.operator().with_timeout(Duration::from_secs(60));
    let rss_now = |stack: &Stack| SERVICES.map(|s| stack.rss(s));
    // (agents, RSS of each of SERVICES)
    let mut curve = vec![(0u64, rss_now(&stack))];
    let mut have = 0;
    for &n in steps {
        grow(&stack, have, n).await?;
        have = n;
        // Reads sync each service with its journals: the memory is that of every change.
        guild.spawner().get_stats().await?;
        guild.bus().get_message_stats().await?;
        guild.missions().get_statistics().await?;
        curve.push((n, rss_now(&stack)));
    }
    let full_spawner = stack.add_service(Service::Spawner, &spawner_env()).await?;
    let full_bus = stack.add_service(Service::Bus, &[]).await?;

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut rows: Vec<Row> = empty
        .iter()
        .map(|(s, took)| {
            Row::new(
                format!("{} start-up, empty store", binary(*s)),
                ms(*took),
                "ms",
            )
        })
        .collect();
    rows.push(Row::new(
        format!("spawner-svc start-up at {have} agents (replays the journal)"),
        ms(full_spawner),
        "ms",
    ));
    rows.push(Row::new(
        format!("bus-svc start-up at {have} agents and {have} queued messages"),
        ms(full_bus),
        "ms",
    ));
    let last = curve.last().map_or([f64::NAN; 3], |(_, r)| *r);
    for (i, s) in SERVICES.iter().enumerate() {
        let row = Row::new(
            format!("{} resident memory at {have} agents", binary(*s)),
            last[i],
            "MiB",
        );
        rows.push(if *s == Service::Mission {
            row
        } else {
            row.target(format!("< {CEILING_MB} MB"))
                .goal(last[i] < CEILING_MB)
        });
    }
    let series = SERVICES
        .iter()
        .enumerate()
        .map(|(i, s)| {
            Series::new(
                format!("{} RSS", binary(*s)),
                i,
                curve.iter().map(|(n, r)| (*n as f64, r[i])).collect(),
            )
        })
        .collect();
    let steps_text: Vec<String> = steps.iter().map(u64::to_string).collect();
    Ok(Section {
        title: "Start-up and memory (default sync)".into(),
        method: format!(
            "Start-up: from starting the process until it answers `$SRV.PING` (pinged every 5 ms): \
             connecting, creating or finding its streams and buckets, replaying its journal. Each service \
             first on an empty store, then a second instance of spawner-svc and of bus-svc on the full one. \
             Memory: spawner-svc, mission-svc and bus-svc as processes of their own while root agents are \
             spawned by 8 clients, each agent then sent one REQUEST that stays in its inbox; resident memory \
             (VmRSS) of each process at {} agents, after a read that syncs each service with its journals.",
            steps_text.join(", ")
        ),
        rows,
        notes: vec![
            "Every instance holds its whole state in memory, folded from its journal, and bus-svc and \
             mission-svc also follow the spawner's journal for the registry; memory grows with the records, \
             and start-up with the journal since the last snapshot (every 50,000 entries by default). Were a \
             ceiling missed, what would close it: smaller records per agent and per message in memory, as \
             shared-string ids and small sorted sets did for the mission board (180 → 117 MiB at 100k \
             missions)."
                .into(),
        ],
        figures: vec![Figure {
            file: "memory-vs-agents.svg".into(),
            plot: Plot {
                title: "Memory against agents (each with one queued message)".into(),
                x: Axis::new("agents", Scale::Linear),
                y: Axis::new("resident memory (MiB)", Scale::Linear),
                series,
            },
        }],
    })
}
