//! The mission handle: the seed's `MissionManager` methods.

use guild_wire::api::Empty;
use guild_wire::api::mission::{self as api, op};
use guild_wire::domain::agent::Role;
use guild_wire::domain::mission::{Mission, NewMission, Severity};
use guild_wire::domain::{AgentId, MissionId, Phase};

use crate::{Error, Guild};

/// The mission manager, for the principal of the [`Guild`] it came from.
#[derive(Clone, Copy, Debug)]
pub struct Missions<'a> {
    guild: &'a Guild,
}

impl<'a> Missions<'a> {
    pub(crate) fn new(guild: &'a Guild) -> Self {
        Self { guild }
    }

    /// Creates a mission (the seed's `create_mission(name, phase, assigned_agent_id,
    /// token_budget, priority, input_data)`): READY at once without dependencies.
    pub async fn create_mission(&self, mission: &NewMission) -> Result<Mission, Error> {
        self.guild.call::<op::CreateMission>(mission).await
    }

    /// `mission_id` blocks on `depends_on` (the seed's `add_dependency(id, dep,
    /// dependency_type="blocks_on", severity)`). A dependency that would close a cycle is
    /// refused, and the error names the cycle.
    pub async fn add_dependency(
        &self,
        mission_id: &MissionId,
        depends_on: &MissionId,
        severity: Severity,
    ) -> Result<Mission, Error> {
        self.guild
            .call::<op::AddDependency>(&api::AddDependency {
                mission_id: mission_id.clone(),
                depends_on: depends_on.clone(),
                dependency_type: api::DependencyType::BlocksOn,
                severity,
            })
            .await
    }

    /// Removes a dependency.
    pub async fn remove_dependency(
        &self,
        mission_id: &MissionId,
        depends_on: &MissionId,
    ) -> Result<Mission, Error> {
        self.guild
            .call::<op::RemoveDependency>(&api::RemoveDependency {
                mission_id: mission_id.clone(),
                depends_on: depends_on.clone(),
            })
            .await
    }

    /// Whether a mission may start, and what it waits on (the seed's `check_ready`).
    pub async fn check_ready(&self, mission_id: &MissionId) -> Result<api::Readiness, Error> {
        self.guild
            .call::<op::CheckReady>(&api::MissionRef {
                mission_id: mission_id.clone(),
            })
            .await
    }

    /// Ordered groups of missions that can run at the same time (the seed's
    /// `get_parallelizable_missions`), computed over every open mission, with at most
    /// `limit` missions listed (default 1000): `truncated` says the list was cut, and
    /// `missions` how many the groups hold in all.
    pub async fn get_parallelizable_missions(
        &self,
        limit: Option<u32>,
    ) -> Result<api::ParallelGroups, Error> {
        self.guild
            .call::<op::GetParallelizableMissions>(&api::GroupsQuery { limit })
            .await
    }

    /// Starts a READY mission on `agent_id` (or the mission's assigned agent): the spawner
    /// allocates the agent, checking it is free and may work in the mission's phase.
    pub async fn assign_mission(
        &self,
        mission_id: &MissionId,
        agent_id: Option<&AgentId>,
    ) -> Result<Mission, Error> {
        self.guild
            .call::<op::AssignMission>(&api::AssignMission {
                mission_id: mission_id.clone(),
                agent_id: agent_id.cloned(),
            })
            .await
    }

    /// Moves an ACTIVE mission from the agent running it to another in one step (what a
    /// HANDOFF on the bus does): `to` must be free and allowed in the mission's phase.
    pub async fn reassign_mission(
        &self,
        mission_id: &MissionId,
        from: &AgentId,
        to: &AgentId,
    ) -> Result<Mission, Error> {
        self.guild
            .call::<op::ReassignMission>(&api::ReassignMission {
                mission_id: mission_id.clone(),
                from: from.clone(),
                to: to.clone(),
            })
            .await
    }

    /// Starts this agent's next mission, the pull a worker makes (one an auto-scaler
    /// spawned calls it in a loop: claim, work, complete, claim again): the READY mission
    /// of `role` meant for this agent or for nobody, highest priority first, then the
    /// oldest, allocated and started as [`assign_mission`](Self::assign_mission) would.
    /// `role` is this agent's own by default and may not be another. `Ok(None)` when no
    /// such mission is left. Refused (rule `agent_only`) unless the caller is an agent,
    /// and (`agent_busy`) while this agent already holds a task.
    pub async fn claim_next(&self, role: Option<&Role>) -> Result<Option<Mission>, Error> {
        Ok(self
            .guild
            .call::<op::ClaimNext>(&api::ClaimNext {
                role: role.cloned(),
            })
            .await?
            .mission)
    }

    /// Completes an ACTIVE mission (the seed's `mark_complete(id, output_data,
    /// quality_score)`); below the mission's quality gate it counts as a failed attempt.
    pub async fn mark_complete(
        &self,
        mission_id: &MissionId,
        output_data: serde_json::Value,
        quality_score: Option<f64>,
    ) -> Result<api::MissionOutcome, Error> {
        self.guild
            .call::<op::MarkComplete>(&api::MarkComplete {
                mission_id: mission_id.clone(),
                output_data,
                quality_score,
            })
            .await
    }

    /// Fails an attempt (the seed's `mark_failed(id, reason, retry)`): `Ok(true)` when the
    /// mission goes back to READY for another attempt, `Ok(false)` when it gave up.
    pub async fn mark_failed(
        &self,
        mission_id: &MissionId,
        reason: &str,
        retry: bool,
    ) -> Result<bool, Error> {
        let r = api::MarkFailed {
            mission_id: mission_id.clone(),
            reason: reason.to_owned(),
            retry,
        };
        Ok(self.guild.call::<op::MarkFailed>(&r).await?.will_retry)
    }

    /// Cancels an open mission.
    pub async fn cancel_mission(
        &self,
        mission_id: &MissionId,
        reason: &str,
    ) -> Result<Mission, Error> {
        self.guild
            .call::<op::CancelMission>(&api::CancelMission {
                mission_id: mission_id.clone(),
                reason: reason.to_owned(),
            })
            .await
    }

    /// Archives one final mission, or every final mission older than `older_than_ms`.
    pub async fn archive_missions(
        &self,
        request: &api::ArchiveMissions,
    ) -> Result<Vec<MissionId>, Error> {
        Ok(self
            .guild
            .call::<op::ArchiveMissions>(request)
            .await?
            .archived)
    }

    /// One mission.
    pub async fn get_mission(&self, mission_id: &MissionId) -> Result<Mission, Error> {
        self.guild
            .call::<op::GetMission>(&api::MissionRef {
                mission_id: mission_id.clone(),
            })
            .await
    }

    /// Missions matching a filter.
    pub async fn list_missions(
        &self,
        query: &api::MissionQuery,
    ) -> Result<api::MissionList, Error> {
        self.guild.call::<op::ListMissions>(query).await
    }

    /// The outputs of a mission, or of every completed mission of a phase (the seed's
    /// shared intelligence).
    pub async fn get_outputs(
        &self,
        mission_id: Option<&MissionId>,
        phase: Option<Phase>,
    ) -> Result<Vec<api::Output>, Error> {
        let q = api::OutputQuery {
            mission_id: mission_id.cloned(),
            phase,
        };
        Ok(self.guild.call::<op::GetOutputs>(&q).await?.outputs)
    }

    /// Whether a phase is complete (the seed's sync point).
    pub async fn phase_status(&self, phase: Phase) -> Result<api::PhaseStatus, Error> {
        self.guild
            .call::<op::PhaseStatus>(&api::PhaseRef { phase })
            .await
    }

    /// Counts, success rate, retries, quality, tokens and throughput (the seed's
    /// `get_statistics()`).
    pub async fn get_statistics(&self) -> Result<api::MissionStatistics, Error> {
        self.guild.call::<op::GetStatistics>(&Empty {}).await
    }
}
