//! Spawn latency and throughput, with one and two spawner instances, against the raw cost
//! of what a spawn does: a request/reply round trip plus its JetStream writes.

use std::time::{Duration, Instant};

use anyhow::Context;
use guild_sdk::AgentId;
use guild_sdk::Guild;
use guild_sdk::{Role, SpawnRequest};

use crate::report::{Row, Section};
use crate::scenario::raw::{Responder, Writes};
use crate::scenario::{sequential, spawner_env};
use crate::stack::{Service, Stack, Sync, Telemetry};
use crate::stats::Samples;

/// `n` root spawns one after another, named `<prefix><i>`.
pub(crate) async fn spawns(guild: &Guild, prefix: &str, n: usize) -> anyhow::Result<Samples> {
    let spawner = guild.spawner();
    sequential(n, |i| {
        let spawner = &spawner;
        async move {
            let id = AgentId::new(format!("{prefix}{i}"))?;
            spawner
                .spawn(SpawnRequest::new(id, Role::Developer, 1))
                .await
                .with_context(|| format!("spawn {i}"))?;
            Ok(())
        }
    })
    .await
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
        let guild = stack.another_operator().await;
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
    let mut stack = Stack::start(sync, Telemetry::Off).await?;
    let raw = Responder::start(&stack.client, "spawn", Writes::SPAWN)
        .await?
        .measure(&stack.client, n)
        .await?;

    stack.add_service(Service::Spawner, &spawner_env()).await?;
    let guild = stack.operator().with_timeout(Duration::from_secs(30));
    spawns(&guild, "warm", 20).await?;
    let one = spawns(&guild, "one", n).await?;
    let one_conc = concurrent_spawns(&stack, "oc", 8, n / 8).await?;
    stack.add_service(Service::Spawner, &spawner_env()).await?;
    let two = spawns(&guild, "two", n).await?;
    let two_conc = concurrent_spawns(&stack, "tc", 8, n / 8).await?;

    let agents = 20 + 2 * n + 2 * 8 * (n / 8);
    let rows = vec![
        Row::new("spawn p50, 1 instance", one.p50(), "ms")
            .target("seed < 500 ms; Guild p99 < 5 ms")
            .baseline(raw.p50()),
        Row::new("spawn p99, 1 instance", one.p99(), "ms")
            .target("p99 < 5 ms")
            .baseline(raw.p99())
            .goal(one.p99() < 5.0),
        Row::new("spawn p99.9, 1 instance", one.p999(), "ms").baseline(raw.p999()),
        Row::new("spawn p50, 2 instances", two.p50(), "ms").baseline(raw.p50()),
        Row::new("spawn p99, 2 instances", two.p99(), "ms")
            .target("p99 < 5 ms")
            .baseline(raw.p99())
            .goal(two.p99() < 5.0),
        Row::new(
            "spawn throughput, 1 instance, 8 clients",
            one_conc.throughput(),
            "spawns/s",
        ),
        Row::new(
            "spawn p99 under 8 clients, 1 instance",
            one_conc.p99(),
            "ms",
        ),
        Row::new(
            "spawn throughput, 2 instances, 8 clients",
            two_conc.throughput(),
            "spawns/s",
        ),
        Row::new(
            "spawn p99 under 8 clients, 2 instances",
            two_conc.p99(),
            "ms",
        ),
    ];
    Ok(Section {
        title: format!("Spawn ({})", sync.label()),
        method: format!(
            "{n} root spawns one after another from one client (the SDK), then {n} from 8 clients at once; \
             spawner-svc runs as its own process, first one instance, then two in one queue group. \
             Every spawn appends one journal entry (the child and the pool, conditional on the journal's \
             last sequence), then publishes its event and appends its audit record. Baseline: a plain \
             request/reply responder in the bench process that does the same three JetStream writes before \
             it replies ({}), without Guild.",
            Writes::SPAWN.describe()
        ),
        rows,
        notes: vec![
            format!(
                "Resident memory after {agents} spawns (every agent live): {}.",
                stack.memory_note()
            ),
            "With two instances, appends from both are serialized by the journal's expected last sequence: \
             an instance that loses a race folds the other's entry and decides again, so a second instance \
             adds availability, not write throughput. A lost race costs a fold and a second append, which \
             is what a two-instance p99 over the goal is made of. What would close it: one writer per \
             journal at a time (the other instance forwarding its writes, or standing by), the alternative \
             ARCHITECTURE.md weighs against fencing stale leaders."
                .into(),
            "With `sync_interval: always` every JetStream write waits for the disk, in the baseline as in \
             Guild: the figures are the disk's, and the ratio is what Guild adds on top."
                .into(),
        ],
        figures: Vec::new(),
    })
}
