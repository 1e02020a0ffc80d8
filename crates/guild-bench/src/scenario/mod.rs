//! The scenarios. Each starts what it needs, measures, and returns its sections.

pub(crate) mod bus;
pub(crate) mod footprint;
pub(crate) mod identity;
pub(crate) mod missions;
pub(crate) mod overhead;
pub(crate) mod raw;
pub(crate) mod spawn;
pub(crate) mod tracing;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use guild_sdk::AgentId;
use guild_sdk::Guild;

use crate::stack::Stack;
use crate::stats::Samples;

/// An agent id from a name the bench made up.
pub(crate) fn aid(s: &str) -> anyhow::Result<AgentId> {
    AgentId::new(s).map_err(|e| anyhow::anyhow!("{e}"))
}

/// The spawner's environment for benchmarks: room for every spawn, and no agent lost for
/// a missed heartbeat while a run is busy.
pub(crate) fn spawner_env() -> Vec<(&'static str, String)> {
    vec![
        ("GUILD_MAX_AGENTS", "1000000".into()),
        ("GUILD_TOKEN_POOL", "1000000000000".into()),
        ("GUILD_HEARTBEAT_WINDOW", "1h".into()),
    ]
}

/// Times `n` calls made one after another.
pub(crate) async fn sequential<F, Fut>(n: usize, mut call: F) -> anyhow::Result<Samples>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut s = Samples::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        call(i).await?;
        s.push(t.elapsed());
    }
    s.elapsed = start.elapsed();
    Ok(s)
}

/// Runs `jobs` from `clients` connections at once, each connection taking the next job
/// from one queue; returns how long all took.
pub(crate) async fn concurrently<F, Fut>(
    stack: &Stack,
    clients: usize,
    jobs: Vec<u64>,
    call: F,
) -> anyhow::Result<Duration>
where
    F: Fn(Guild, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let start = Instant::now();
    // One queue, taken in order: jobs start in the order given, as a plan grows, rather
    // than each client working through a slice of its own.
    let jobs = Arc::new(jobs);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients.max(1) {
        let guild = stack
            .another_operator()
            .await
            .with_timeout(Duration::from_secs(60));
        let (jobs, next, call) = (jobs.clone(), next.clone(), call.clone());
        tasks.push(tokio::spawn(async move {
            while let Some(&j) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                call(guild.clone(), j).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(start.elapsed())
}
