//! What identity at the broker costs and how fast it acts: connecting with an agent's
//! minted credentials against connecting to a server that checks nothing, and the time
//! from a terminate's reply until the terminated agent's live connection is closed.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use guild_sdk::{Role, SpawnRequest};
use guild_testkit::{NatsServer, ServerOptions};
use tokio::sync::mpsc;

use crate::report::{Row, Section};
use crate::scenario::{aid, spawner_env};
use crate::stack::{Service, Stack, Sync, Telemetry};
use crate::stats::Samples;

/// The bound: a terminated agent's connection is closed within 5 s (p99).
const REVOCATION_GOAL_MS: f64 = 5_000.0;

/// How long one revocation may take before the run gives up on it.
const REVOCATION_LIMIT: Duration = Duration::from_secs(30);

/// Connects with `creds` (or none) and makes one round trip, which the server answers only
/// once it accepted the connection.
async fn connect_once(url: &str, creds: Option<(&str, &str)>) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let options = match creds {
        Some((creds, prefix)) => {
            async_nats::ConnectOptions::with_credentials(creds)?.custom_inbox_prefix(prefix)
        }
        None => async_nats::ConnectOptions::new(),
    };
    let client = options.connect(url).await?;
    client.flush().await?;
    let took = started.elapsed();
    drop(client);
    Ok(took)
}

async fn connects(url: &str, creds: Option<(&str, &str)>, n: usize) -> anyhow::Result<Samples> {
    let mut s = Samples::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        s.push(connect_once(url, creds).await?);
    }
    s.elapsed = start.elapsed();
    Ok(s)
}

/// Spawns `name`, connects it with its own credentials, terminates it, and returns the
/// time from the terminate's reply until its connection was closed by the server.
async fn revocation(stack: &Stack, name: &str) -> anyhow::Result<Duration> {
    let spawned = stack
        .team
        .try_spawn(SpawnRequest::new(aid(name)?, Role::Developer, 10))
        .await?;
    let creds = spawned
        .credentials
        .as_ref()
        .and_then(|c| c.creds.clone())
        .context("the spawn reply carried no credentials")?;
    let (tx, mut closed) = mpsc::unbounded_channel();
    let client = async_nats::ConnectOptions::with_credentials(&creds)?
        .custom_inbox_prefix(format!("_INBOX.agent.{name}"))
        .max_reconnects(Some(1))
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if matches!(event, async_nats::Event::Disconnected) {
                    let _ = tx.send(Instant::now());
                }
            }
        })
        .connect(stack.server.url())
        .await?;
    client.flush().await?;
    stack
        .operator()
        .spawner()
        .terminate(&guild_sdk::Terminate::new(&aid(name)?, false))
        .await?;
    let replied = Instant::now();
    let Ok(Some(at)) = tokio::time::timeout(REVOCATION_LIMIT, closed.recv()).await else {
        bail!("{name}'s connection was still open {REVOCATION_LIMIT:?} after its terminate");
    };
    Ok(at.saturating_duration_since(replied))
}

pub(crate) async fn run(quick: bool) -> anyhow::Result<Section> {
    let (n_connect, n_revoke) = if quick { (10, 5) } else { (200, 50) };
    let mut stack = Stack::start(Sync::Default, Telemetry::Off).await?;
    stack.add_service(Service::Spawner, &spawner_env()).await?;
    let spawned = stack
        .team
        .try_spawn(SpawnRequest::new(
            aid("bench-connector")?,
            Role::Developer,
            10,
        ))
        .await?;
    let creds = spawned
        .credentials
        .as_ref()
        .and_then(|c| c.creds.clone())
        .context("the spawn reply carried no credentials")?;
    let with_creds = connects(
        &stack.server.url(),
        Some((&creds, "_INBOX.agent.bench-connector")),
        n_connect,
    )
    .await?;
    let open = NatsServer::start_with(ServerOptions {
        insecure: true,
        ..Default::default()
    });
    let without = connects(&open.url(), None, n_connect).await?;
    drop(open);
    let mut revocations = Samples::with_capacity(n_revoke);
    let start = Instant::now();
    for i in 0..n_revoke {
        revocations.push(revocation(&stack, &format!("bench-revoked-{i}")).await?);
    }
    revocations.elapsed = start.elapsed();
    let rows = vec![
        Row::new(
            "connect with an agent's credentials: p50",
            with_creds.p50(),
            "ms",
        )
        .baseline(without.p50()),
        Row::new(
            "connect with an agent's credentials: p99",
            with_creds.p99(),
            "ms",
        )
        .baseline(without.p99()),
        Row::new(
            "terminate's reply → the agent's connection closed: p50",
            revocations.p50(),
            "ms",
        ),
        Row::new(
            "terminate's reply → the agent's connection closed: p99",
            revocations.p99(),
            "ms",
        )
        .target("< 5 s")
        .goal(revocations.p99() < REVOCATION_GOAL_MS),
        Row::new(
            "terminate's reply → the agent's connection closed: max",
            revocations.quantile_ms(1.0),
            "ms",
        ),
    ];
    Ok(Section {
        title: "Identity: connecting with credentials, revocation".into(),
        method: format!(
            "*Connect*: {n_connect} connections one after another with an agent's minted credentials \
             (the server sends a nonce, the client signs it with the agent's seed, the server checks the \
             user JWT against the account's scoped signing key), each until its first round trip \
             (`flush`) is answered, then closed. Baseline: the same against a nats-server that \
             authenticates nobody. *Revocation*, {n_revoke} times: an agent is spawned and connects \
             with its credentials; the operator terminates it; measured from the terminate's reply \
             until the agent's connection is closed by the server (the client's `Disconnected` \
             event). Between them: the spawner-svc instance that appended the termination (the \
             revocation is in the same journal entry) notices the registry's revocations differ from \
             what the server holds (every 100 ms), signs an account JWT carrying them and pushes it \
             (`$SYS.REQ.CLAIMS.UPDATE`); nats-server closes the revoked user's connections as it \
             applies it. One spawner-svc instance, default sync."
        ),
        rows,
        notes: vec![format!(
            "Resident memory at the end: {}.",
            stack.memory_note()
        )],
        figures: Vec::new(),
    })
}
