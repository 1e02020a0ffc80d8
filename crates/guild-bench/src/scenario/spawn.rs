//! Spawn latency and throughput, with one and two spawner instances, against the raw cost
//! of what a spawn does: a request/reply round trip plus its JetStream writes.

use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream;
use bytes::Bytes;
use futures_util::StreamExt;
use guild_sdk::Guild;
use guild_sdk::domain::agent::{Role, SpawnRequest};
use guild_sdk::domain::{AgentId, Principal, Timestamp};
use guild_store::{AuditLog, Durability};
use guild_wire::audit::{AuditEntry, AuditKind};

use crate::report::{Row, Section};
use crate::stack::{Stack, Sync};
use crate::stats::Samples;

/// The spawner's environment for benchmarks: room for every spawn.
fn spawner_env() -> Vec<(&'static str, String)> {
    vec![
        ("GUILD_MAX_AGENTS", "1000000".into()),
        ("GUILD_TOKEN_POOL", "1000000000000".into()),
        ("GUILD_HEARTBEAT_WINDOW", "1h".into()),
    ]
}

/// A plain request/reply round trip to a responder that echoes.
pub(crate) async fn echo_baseline(
    client: &async_nats::Client,
    n: usize,
) -> anyhow::Result<Samples> {
    let responder = client.clone();
    let mut sub = responder.subscribe("bench.echo").await?;
    let task = tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            if let Some(reply) = m.reply {
                let _ = responder.publish(reply, m.payload).await;
            }
        }
    });
    // Round trip on the subscribing connection before measuring (flush is not a PING).
    client.request("bench.echo", "warm".into()).await?;
    let body = Bytes::from(vec![b'x'; 200]);
    let mut s = Samples::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        client.request("bench.echo", body.clone()).await?;
        s.push(t.elapsed());
    }
    s.elapsed = start.elapsed();
    task.abort();
    Ok(s)
}

/// The JetStream writes a root spawn performs, done directly: the journal append (one
/// message, conditional on the last sequence), the event, the audit append.
async fn spawn_writes_baseline(client: &async_nats::Client, n: usize) -> anyhow::Result<Samples> {
    let js = jetstream::new(client.clone());
    let d = Durability::default();
    let audit = AuditLog::open(&js, d).await?;
    guild_store::provision::events_stream(&js, d).await?;
    guild_store::provision::ensure_stream(
        &js,
        jetstream::stream::Config {
            name: "BENCH_RAW_JOURNAL".into(),
            subjects: vec!["bench.journal".into()],
            ..Default::default()
        },
    )
    .await?;
    let value = Bytes::from(vec![b'x'; 1500]);
    let mut last = 0u64;
    let mut s = Samples::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Expected-Last-Sequence", last.to_string().as_str());
        last = js
            .publish_with_headers("bench.journal", headers, value.clone())
            .await?
            .await?
            .sequence;
        js.publish(format!("guild.evt.spawner.spawned.raw{i}"), value.clone())
            .await?
            .await?;
        audit
            .append(&AuditEntry {
                id: format!("raw-{i}"),
                kind: AuditKind::Spawn,
                actor: Principal::Operator,
                about: format!("raw{i}"),
                mission_id: None,
                at: Timestamp::from_millis(0),
                data: serde_json::json!({"i": i}),
                trace_id: None,
            })
            .await?;
        s.push(t.elapsed());
    }
    s.elapsed = start.elapsed();
    Ok(s)
}

async fn spawns(guild: &Guild, prefix: &str, n: usize) -> anyhow::Result<Samples> {
    let spawner = guild.spawner();
    let mut s = Samples::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let id = AgentId::new(format!("{prefix}{i}"))?;
        let t = Instant::now();
        spawner
            .spawn(SpawnRequest::new(id, Role::Developer, 1))
            .await
            .with_context(|| format!("spawn {i}"))?;
        s.push(t.elapsed());
    }
    s.elapsed = start.elapsed();
    Ok(s)
}

/// Spawns from `clients` connections at once, to find throughput.
async fn concurrent_spawns(
    stack: &Stack,
    prefix: &str,
    clients: usize,
    each: usize,
) -> anyhow::Result<Samples> {
    let mut tasks = Vec::new();
    let start = Instant::now();
    for c in 0..clients {
        let guild = Guild::new(stack.server.connect().await);
        let prefix = format!("{prefix}c{c}x");
        tasks.push(tokio::spawn(
            async move { spawns(&guild, &prefix, each).await },
        ));
    }
    let mut all = Samples::with_capacity(clients * each);
    for t in tasks {
        all.merge(&t.await??);
    }
    all.elapsed = start.elapsed();
    Ok(all)
}

pub(crate) async fn run(sync: Sync, quick: bool) -> anyhow::Result<Section> {
    let n = if quick { 100 } else { 2_000 };
    let mut stack = Stack::start(sync).await?;
    let echo = echo_baseline(&stack.client, n).await?;
    let writes = spawn_writes_baseline(&stack.client, n).await?;
    let baseline_p50 = echo.p50() + writes.p50();
    let baseline_p99 = echo.p99() + writes.p99();

    stack
        .add_service("spawner-svc", "guild-spawner", &spawner_env())
        .await?;
    let guild = Guild::new(stack.client.clone()).with_timeout(Duration::from_secs(30));
    spawns(&guild, "warm", 20).await?;
    let one = spawns(&guild, "one", n).await?;
    let one_conc = concurrent_spawns(&stack, "oc", 8, n / 8).await?;
    stack
        .add_service("spawner-svc", "guild-spawner", &spawner_env())
        .await?;
    let two = spawns(&guild, "two", n).await?;
    let two_conc = concurrent_spawns(&stack, "tc", 8, n / 8).await?;

    let goal = |v: f64| Some(v < 5.0);
    let agents = 20 + 2 * n + 2 * 8 * (n / 8);
    let rss: Vec<String> = stack
        .rss_mib()
        .iter()
        .map(|(name, mib)| format!("{name} {mib:.1} MiB"))
        .collect();
    let rows = vec![
        Row {
            metric: "spawn p50, 1 instance".into(),
            target: "seed < 500 ms; Guild p99 < 5 ms".into(),
            baseline: Some(baseline_p50),
            guild: one.p50(),
            unit: "ms",
            met: None,
        },
        Row {
            metric: "spawn p99, 1 instance".into(),
            target: "p99 < 5 ms".into(),
            baseline: Some(baseline_p99),
            guild: one.p99(),
            unit: "ms",
            met: goal(one.p99()),
        },
        Row {
            metric: "spawn p99.9, 1 instance".into(),
            target: "—".into(),
            baseline: None,
            guild: one.p999(),
            unit: "ms",
            met: None,
        },
        Row {
            metric: "spawn p50, 2 instances".into(),
            target: "—".into(),
            baseline: Some(baseline_p50),
            guild: two.p50(),
            unit: "ms",
            met: None,
        },
        Row {
            metric: "spawn p99, 2 instances".into(),
            target: "p99 < 5 ms".into(),
            baseline: Some(baseline_p99),
            guild: two.p99(),
            unit: "ms",
            met: goal(two.p99()),
        },
        Row {
            metric: "spawn throughput, 1 instance, 8 clients".into(),
            target: "—".into(),
            baseline: None,
            guild: one_conc.throughput(),
            unit: "spawns/s",
            met: None,
        },
        Row {
            metric: "spawn p99 under 8 clients, 1 instance".into(),
            target: "—".into(),
            baseline: None,
            guild: one_conc.p99(),
            unit: "ms",
            met: None,
        },
        Row {
            metric: "spawn throughput, 2 instances, 8 clients".into(),
            target: "—".into(),
            baseline: None,
            guild: two_conc.throughput(),
            unit: "spawns/s",
            met: None,
        },
        Row {
            metric: "spawn p99 under 8 clients, 2 instances".into(),
            target: "—".into(),
            baseline: None,
            guild: two_conc.p99(),
            unit: "ms",
            met: None,
        },
    ];
    Ok(Section {
        title: format!("Spawn ({})", sync.label()),
        method: format!(
            "{n} root spawns one after another from one client (the SDK), then {n} from 8 clients at once; \
             spawner-svc runs as its own process, first one instance, then two in one queue group. \
             Every spawn appends one journal entry (the child and the pool, conditional on the journal's \
             last sequence), then publishes its event and appends its audit record. Baseline: a \
             request/reply echo round trip (p50 {:.3} ms, p99 {:.3} ms) plus the same three JetStream \
             writes done directly without Guild (p50 {:.3} ms, p99 {:.3} ms), percentiles added.",
            echo.p50(), echo.p99(), writes.p50(), writes.p99()
        ),
        rows,
        notes: vec![
            format!("Resident memory after {agents} spawns (every agent live): {}.", rss.join(", ")),
            "With two instances, appends from both are serialized by the journal's expected last sequence: \
             an instance that loses a race folds the other's entry and decides again, so a second instance \
             adds availability, not write throughput."
                .into(),
        ],
    })
}
