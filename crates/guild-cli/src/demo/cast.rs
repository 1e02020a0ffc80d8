//! The demo's cast: ids unique to one run (so the demo can run again on the same Guild),
//! agents on their own connections, and waiting for a message of a given type.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use guild_sdk::{Agent, NatsOptions, Spawner};
use guild_sdk::{AgentId, MissionId};
use guild_sdk::{AgentProfile, SpawnRequest};
use guild_sdk::{Delivery, MessageType};
use guild_wire::api::spawner::AgentCredentials;

use super::Progress;

/// How long any one step may wait for another agent before the demo gives up.
const PATIENCE: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub(crate) struct Cast {
    pub(crate) tag: String,
    /// How the operator connects (its credentials).
    pub(crate) operator: NatsOptions,
    pub(crate) progress: Progress,
    /// Each agent's budget as granted at spawn.
    pub(crate) granted: Arc<Mutex<BTreeMap<AgentId, u64>>>,
    /// Each agent's credentials, as its spawner received them: the agent connects with
    /// its own, as a real agent started by its parent would.
    credentials: Arc<Mutex<BTreeMap<AgentId, AgentCredentials>>>,
}

impl Cast {
    pub(crate) fn new(operator: &NatsOptions, progress: Progress) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Self {
            // 32 bits: runs on one long-lived Guild do not collide in practice.
            tag: format!("{:08x}", nanos ^ std::process::id().rotate_left(16)),
            operator: operator.clone(),
            progress,
            granted: Arc::default(),
            credentials: Arc::default(),
        }
    }

    /// `name` made unique to this run.
    pub(crate) fn agent(&self, name: &str) -> anyhow::Result<AgentId> {
        Ok(AgentId::new(format!("{name}-{}", self.tag))?)
    }

    pub(crate) fn mission(&self, name: &str) -> anyhow::Result<MissionId> {
        Ok(MissionId::new(format!("{name}-{}", self.tag))?)
    }

    /// Agent `id` comes alive: its own connection with its own credentials, its handle,
    /// heartbeats every second.
    pub(crate) async fn join(&self, id: &AgentId) -> anyhow::Result<Agent> {
        let credentials = self
            .credentials
            .lock()
            .ok()
            .and_then(|c| c.get(id).cloned());
        let options = match credentials.and_then(|c| c.creds) {
            Some(creds) => self.operator.with_creds_text(&creds)?,
            // An insecure Guild mints none: the connection is anyone's.
            None => self.operator.clone(),
        };
        let guild = guild_sdk::connect(&options).await?;
        let guild = if guild.principal().agent() == Some(id) {
            guild
        } else {
            guild.acting_as(guild_sdk::Principal::Agent(id.clone()))
        };
        let agent = guild.agent()?;
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
        let spawned = spawner.spawn(request).await?;
        if let Ok(mut granted) = self.granted.lock() {
            granted.insert(spawned.id.clone(), spawned.budget.allocated);
        }
        if let (Some(c), Ok(mut all)) = (&spawned.credentials, self.credentials.lock()) {
            all.insert(spawned.id.clone(), c.clone());
        }
        Ok(spawned.agent)
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
            .consume(wait, types)
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
