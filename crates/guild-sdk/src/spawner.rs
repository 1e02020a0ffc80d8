//! The spawner handle: the seed's `AgentSpawner` methods.

use guild_wire::api::Empty;
use guild_wire::api::spawner::{self as api, op};
use guild_wire::domain::agent::{
    AgentProfile, AgentQuery, AgentStatus, ContextWindow, PublicKey, SpawnRequest, SpawnerStats,
    Usage,
};
use guild_wire::domain::{AgentId, MissionId, Phase, ReservationId};

use crate::{Error, Guild};

/// The agent spawner, for the principal of the [`Guild`] it came from.
#[derive(Clone, Copy, Debug)]
pub struct Spawner<'a> {
    guild: &'a Guild,
}

impl<'a> Spawner<'a> {
    pub(crate) fn new(guild: &'a Guild) -> Self {
        Self { guild }
    }

    /// Spawns an agent (the seed's `spawner.spawn(role, capabilities, parent_id, token_budget)`).
    /// A root agent (no parent) is carved from the global pool and only the operator spawns
    /// one; a child is carved from its parent's budget and never holds more authority.
    pub async fn spawn(&self, request: SpawnRequest) -> Result<api::Spawned, Error> {
        self.guild.call::<op::Spawn>(&request).await
    }

    /// New credentials for `agent_id` (its parent or the operator asks): the ones before
    /// stop working, their connections are closed. With `public_key` the reply carries
    /// only the JWT for it; without, a whole `.creds` bundle.
    pub async fn issue_credentials(
        &self,
        agent_id: &AgentId,
        public_key: Option<PublicKey>,
    ) -> Result<api::Spawned, Error> {
        self.guild
            .call::<op::IssueCredentials>(&api::IssueCredentials {
                agent_id: agent_id.clone(),
                public_key,
            })
            .await
    }

    /// One agent's profile.
    pub async fn get(&self, agent_id: &AgentId) -> Result<AgentProfile, Error> {
        self.guild
            .call::<op::Get>(&api::AgentRef {
                agent_id: agent_id.clone(),
            })
            .await
    }

    /// Live agents matching `query` (terminated ones too with `include_terminated`).
    pub async fn list(&self, query: &AgentQuery) -> Result<Vec<AgentProfile>, Error> {
        Ok(self.guild.call::<op::List>(query).await?.agents)
    }

    /// Agents that may take work now (the seed's `find_available_agents(role=...)`),
    /// matching `query`: `AgentQuery { role: Some(role), ..Default::default() }`, or
    /// capabilities, status, parent.
    pub async fn find_available_agents(
        &self,
        query: &AgentQuery,
    ) -> Result<Vec<AgentProfile>, Error> {
        Ok(self
            .guild
            .call::<op::FindAvailableAgents>(query)
            .await?
            .agents)
    }

    /// Gives an available agent a task (the seed's `allocate_task(agent_id, task_id)`).
    pub async fn allocate_task(
        &self,
        agent_id: &AgentId,
        task_id: &MissionId,
        phase: Option<Phase>,
    ) -> Result<AgentProfile, Error> {
        self.guild
            .call::<op::AllocateTask>(&api::AllocateTask {
                agent_id: agent_id.clone(),
                task_id: task_id.clone(),
                phase,
            })
            .await
    }

    /// Takes an agent's task back (the seed's `release_task`): `ReleaseTask::new(agent)`,
    /// with the task, the allocation time (only the allocation made then) or a reason as
    /// needed.
    pub async fn release_task(&self, request: &api::ReleaseTask) -> Result<AgentProfile, Error> {
        self.guild.call::<op::ReleaseTask>(request).await
    }

    /// Moves an agent to ACTIVE, IDLE, or BLOCKED with a reason.
    pub async fn set_status(
        &self,
        agent_id: &AgentId,
        status: AgentStatus,
        reason: Option<&str>,
    ) -> Result<AgentProfile, Error> {
        self.guild
            .call::<op::SetStatus>(&api::SetStatus {
                agent_id: agent_id.clone(),
                status,
                reason: reason.map(str::to_owned),
            })
            .await
    }

    /// Pauses an agent (or its subtree): BLOCKED with `reason`, no new work.
    pub async fn pause(
        &self,
        agent_id: &AgentId,
        reason: &str,
        subtree: bool,
    ) -> Result<Vec<AgentProfile>, Error> {
        let r = api::Pause {
            agent_id: agent_id.clone(),
            reason: reason.to_owned(),
            subtree,
        };
        Ok(self.guild.call::<op::Pause>(&r).await?.agents)
    }

    /// Resumes a paused agent (or its subtree).
    pub async fn resume(
        &self,
        agent_id: &AgentId,
        subtree: bool,
    ) -> Result<Vec<AgentProfile>, Error> {
        Ok(self
            .guild
            .call::<op::Resume>(&api::Resume {
                agent_id: agent_id.clone(),
                subtree,
            })
            .await?
            .agents)
    }

    /// Ends an agent (the seed's `terminate`): `Terminate::new(agent, subtree)` ends it
    /// (and its subtree when `subtree`), unused tokens returning up the lineage; set
    /// `failed` and a reason as needed.
    pub async fn terminate(&self, request: &api::Terminate) -> Result<Vec<AgentProfile>, Error> {
        Ok(self.guild.call::<op::Terminate>(request).await?.agents)
    }

    /// A heartbeat from this client's agent, with its context-window figures.
    pub async fn heartbeat(
        &self,
        context_window: Option<ContextWindow>,
    ) -> Result<api::HeartbeatAck, Error> {
        self.guild
            .call::<op::Heartbeat>(&api::Heartbeat { context_window })
            .await
    }

    /// May `agent_id` take `action` (in `phase`)? A "no" is an answer, not an error.
    pub async fn authorize(
        &self,
        agent_id: &AgentId,
        action: &str,
        phase: Option<Phase>,
    ) -> Result<api::Authorization, Error> {
        self.guild
            .call::<op::Authorize>(&api::Authorize {
                agent_id: agent_id.clone(),
                action: action.to_owned(),
                phase,
            })
            .await
    }

    /// Sets tokens aside before work, charged to the agent and, when named, a mission.
    pub async fn reserve_tokens(
        &self,
        agent_id: &AgentId,
        reservation_id: &ReservationId,
        amount: u64,
        mission_id: Option<&MissionId>,
    ) -> Result<api::Reserved, Error> {
        self.guild
            .call::<op::ReserveTokens>(&api::ReserveTokens {
                agent_id: agent_id.clone(),
                reservation_id: reservation_id.clone(),
                amount,
                mission_id: mission_id.cloned(),
            })
            .await
    }

    /// Records what a unit of work used: a number of tokens, or a [`Usage`] with the
    /// input and output tokens apart (`Usage::split(input, output)`).
    pub async fn commit_tokens(
        &self,
        agent_id: &AgentId,
        reservation_id: &ReservationId,
        used: impl Into<Usage>,
    ) -> Result<api::BudgetOf, Error> {
        let used = used.into();
        self.guild
            .call::<op::CommitTokens>(&api::CommitTokens {
                agent_id: agent_id.clone(),
                reservation_id: reservation_id.clone(),
                used: used.used,
                input_tokens: used.input_tokens,
                output_tokens: used.output_tokens,
            })
            .await
    }

    /// Drops a reservation unused.
    pub async fn release_tokens(
        &self,
        agent_id: &AgentId,
        reservation_id: &ReservationId,
    ) -> Result<api::BudgetOf, Error> {
        self.guild
            .call::<op::ReleaseTokens>(&api::ReleaseTokens {
                agent_id: agent_id.clone(),
                reservation_id: reservation_id.clone(),
            })
            .await
    }

    /// Moves tokens between two agents of the caller's subtree (orchestrators only).
    pub async fn reallocate_budget(
        &self,
        from: &AgentId,
        to: &AgentId,
        amount: u64,
    ) -> Result<api::Reallocated, Error> {
        self.guild
            .call::<op::ReallocateBudget>(&api::ReallocateBudget {
                from: from.clone(),
                to: to.clone(),
                amount,
            })
            .await
    }

    /// Sets (or replaces) how many agents of `policy.role` its owner keeps by load: the
    /// operator, or an orchestrator that is the owner or above it, may. spawner-svc then
    /// spawns and scales down the owner's members itself, under the owner's authority
    /// and budget.
    pub async fn set_scaling_policy(
        &self,
        policy: &guild_wire::domain::agent::ScalingPolicy,
    ) -> Result<api::ScalingState, Error> {
        self.guild.call::<op::SetScalingPolicy>(policy).await
    }

    /// Drops `owner`'s scaling policy for `role`; its members stay until terminated.
    pub async fn remove_scaling_policy(
        &self,
        owner: &AgentId,
        role: &guild_wire::domain::agent::Role,
    ) -> Result<(), Error> {
        self.guild
            .call::<op::RemoveScalingPolicy>(&api::ScalingRef {
                owner: owner.clone(),
                role: role.clone(),
            })
            .await
            .map(|_| ())
    }

    /// The scaling policies in force (of one owner, when given), with their live members.
    pub async fn list_scaling_policies(
        &self,
        owner: Option<&AgentId>,
    ) -> Result<api::ScalingList, Error> {
        self.guild
            .call::<op::ListScalingPolicies>(&api::ScalingQuery {
                owner: owner.cloned(),
            })
            .await
    }

    /// The seed's `get_stats()`: agents, capacity, tokens, cost, context use, efficiency.
    pub async fn get_stats(&self) -> Result<SpawnerStats, Error> {
        self.guild.call::<op::GetStats>(&Empty {}).await
    }
}
