//! A team of agents for a test: the operator and each agent on its own connection, with
//! the credentials Guild minted when it was spawned, as real agents run.

use std::collections::BTreeMap;
use std::sync::Mutex;

use guild_sdk::AgentId;
use guild_sdk::Guild;
use guild_sdk::SpawnRequest;
use guild_sdk::api::spawner::Spawned;

use crate::NatsServer;

/// The operator's connection and one connection per agent spawned through it.
#[derive(Debug)]
pub struct Team {
    operator: Guild,
    agents: Mutex<BTreeMap<AgentId, Guild>>,
}

impl Team {
    /// The operator of `server`, with no agents yet.
    pub async fn new(server: &NatsServer) -> Self {
        Self {
            operator: server.operator().await,
            agents: Mutex::default(),
        }
    }

    /// The operator's connection.
    pub fn operator(&self) -> &Guild {
        &self.operator
    }

    /// Spawns `request`: by its parent's connection when it names one (the parent must be
    /// on this team), by the operator otherwise; then connects the new agent with its own
    /// credentials. Panics on a refusal: use [`try_spawn`](Self::try_spawn) to see one.
    pub async fn spawn(&self, request: SpawnRequest) -> Spawned {
        let id = request.id.clone();
        self.try_spawn(request)
            .await
            .unwrap_or_else(|e| panic!("spawning {id}: {e}"))
    }

    /// [`spawn`](Self::spawn), returning the refusal.
    pub async fn try_spawn(&self, request: SpawnRequest) -> Result<Spawned, guild_sdk::Error> {
        let by = match &request.parent_id {
            Some(parent) => self.agent(parent),
            None => self.operator.clone(),
        };
        let spawned = by.spawner().spawn(request).await?;
        self.join(&spawned).await?;
        Ok(spawned)
    }

    /// Connects an agent spawned (or given new credentials) elsewhere. On an insecure
    /// Guild (the benchmarks' authentication-off runs), where spawns mint nothing, the agent
    /// gets a plain connection of its own acting as it.
    pub async fn join(&self, spawned: &Spawned) -> Result<Guild, guild_sdk::Error> {
        let guild = match &spawned.credentials {
            Some(credentials) => self.operator.connect_agent(credentials).await?,
            None => self
                .operator
                .connect_again()
                .await?
                .acting_as(guild_sdk::Principal::Agent(spawned.id.clone())),
        };
        if let Ok(mut agents) = self.agents.lock() {
            agents.insert(spawned.id.clone(), guild.clone());
        }
        Ok(guild)
    }

    /// Agent `id`'s own connection. Panics when it was not spawned through this team.
    pub fn agent(&self, id: &AgentId) -> Guild {
        self.agents
            .lock()
            .ok()
            .and_then(|a| a.get(id).cloned())
            .unwrap_or_else(|| panic!("{id} was not spawned through this team"))
    }
}
