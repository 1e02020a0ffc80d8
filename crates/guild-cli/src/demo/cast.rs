//! The demo's cast: ids unique to one run (so the demo can run again on the same Guild),
//! agents on their own connections, and waiting for a message of a given type.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use guild_sdk::domain::agent::{AgentProfile, SpawnRequest};
use guild_sdk::domain::message::{Delivery, MessageType};
use guild_sdk::domain::{AgentId, MissionId};
use guild_sdk::{Agent, Spawner};

use super::Progress;

/// How long any one step may wait for another agent before the demo gives up.
const PATIENCE: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub(crate) struct Cast {
    pub(crate) tag: String,
    pub(crate) url: String,
    pub(crate) progress: Progress,
    /// Each agent's budget as granted at spawn.
    pub(crate) granted: Arc<Mutex<BTreeMap<AgentId, u64>>>,
}

impl Cast {
    pub(crate) fn new(url: &str, progress: Progress) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Self {
            // 32 bits: runs on one long-lived Guild do not collide in practice.
            tag: format!("{:08x}", nanos ^ std::process::id().rotate_left(16)),
            url: url.to_owned(),
            progress,
            granted: Arc::default(),
        }
    }

    /// `name` made unique to this run.
    pub(crate) fn agent(&self, name: &str) -> anyhow::Result<AgentId> {
        Ok(AgentId::new(format!("{name}-{}", self.tag))?)
    }

    pub(crate) fn mission(&self, name: &str) -> anyhow::Result<MissionId> {
        Ok(MissionId::new(format!("{name}-{}", self.tag))?)
    }

    /// Agent `id` comes alive: its own connection, its handle, heartbeats every second.
    pub(crate) async fn join(&self, id: &AgentId) -> anyhow::Result<Agent> {
        let guild = guild_sdk::connect(&self.url).await?;
        let agent = guild.agent(id.clone());
        agent.start_heartbeats(Duration::from_secs(1)).await?;
        Ok(agent)
    }

    /// Spawns through `spawner` and remembers the budget granted: an agent's allocation
    /// shrinks to what it used when it terminates, and the report shows both.
    pub(crate) async fn spawn(
        &self,
        spawner: &Spawner<'_>,
        request: SpawnRequest,
    ) -> anyhow::Result<AgentProfile> {
        let agent = spawner.spawn(request).await?;
        if let Ok(mut granted) = self.granted.lock() {
            granted.insert(agent.id.clone(), agent.budget.allocated);
        }
        Ok(agent)
    }

    pub(crate) fn say(&self, who: &AgentId, text: &str) {
        self.progress.say(untagged(who.as_str()), text);
    }
}

/// An id without the run's tag, for progress lines (`backend-dev-1a2b3c4d` → `backend-dev`).
pub(crate) fn untagged(id: &str) -> &str {
    id.rsplit_once('-').map_or(id, |(name, _)| name)
}

/// Consumes the next message of one of `types` from `agent`'s inbox (others stay queued),
/// acks it and returns it; fails after [`PATIENCE`] naming what was awaited.
pub(crate) async fn expect(
    agent: &Agent,
    types: &[MessageType],
    what: &str,
) -> anyhow::Result<Delivery> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            bail!("{} waited {PATIENCE:?} for {what}", agent.id());
        }
        let wait = left.min(Duration::from_secs(10));
        if let Some(d) = agent
            .bus()
            .consume_types(wait, types)
            .await
            .with_context(|| format!("{} waiting for {what}", agent.id()))?
        {
            agent.bus().ack(&d.delivery_id).await?;
            return Ok(d);
        }
    }
}

/// [`expect`]s a message of `kind` that names a mission (an assignment, a handoff), and
/// returns it with that mission.
pub(crate) async fn expect_task(
    agent: &Agent,
    kind: MessageType,
    what: &str,
) -> anyhow::Result<(Delivery, MissionId)> {
    let d = expect(agent, &[kind], what).await?;
    let task = d
        .message
        .task_id
        .clone()
        .with_context(|| format!("{what} names no mission"))?;
    Ok((d, task))
}

/// Retries `check` every 50 ms until it yields, for at most [`PATIENCE`].
pub(crate) async fn until<T, F, Fut>(what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("gave up after {PATIENCE:?} waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
