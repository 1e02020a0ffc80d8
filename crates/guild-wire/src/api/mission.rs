//! `guild-mission`: missions, dependencies, parallel groups, retries, quality gates.

use std::collections::BTreeMap;

use guild_domain::agent::Role;
use guild_domain::mission::{
    Mission, MissionStats, MissionStatus, NewMission, ParallelGroup, Severity,
};
use guild_domain::{AgentId, MissionId, Phase, Timestamp};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Empty;

/// Names one mission.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MissionRef {
    /// The mission.
    pub mission_id: MissionId,
}

/// The seed's only dependency type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DependencyType {
    /// The dependent waits for the dependency.
    #[default]
    BlocksOn,
}

/// `mission_id` blocks on `depends_on` (the seed's `add_dependency(id, dep, "blocks_on", severity)`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDependency {
    /// The dependent.
    pub mission_id: MissionId,
    /// The mission it waits for.
    pub depends_on: MissionId,
    /// Always `blocks_on`.
    #[serde(default)]
    pub dependency_type: DependencyType,
    /// `hard` (default) or `soft`.
    #[serde(default)]
    pub severity: Severity,
}

/// Removes a dependency.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveDependency {
    /// The dependent.
    pub mission_id: MissionId,
    /// The dependency to drop.
    pub depends_on: MissionId,
}

/// Hands an ACTIVE mission from the agent running it to another (what the bus's HANDOFF
/// does). The receiver must be free and may work in the mission's phase; the caller needs
/// `handoff_task`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReassignMission {
    /// The mission.
    pub mission_id: MissionId,
    /// The agent running it.
    pub from: AgentId,
    /// The agent taking it over.
    pub to: AgentId,
}

/// Whether a mission may start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Readiness {
    /// The mission.
    pub mission_id: MissionId,
    /// READY now.
    pub ready: bool,
    /// Its status.
    pub status: MissionStatus,
    /// Dependencies still holding it back.
    pub waiting_on: Vec<MissionId>,
}

/// How much of the parallel groups to return.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupsQuery {
    /// At most this many missions across all groups (default 1000; the groups are always
    /// computed over every open mission).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// The seed's parallel groups.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ParallelGroups {
    /// Ordered groups of open missions that can run at the same time.
    pub groups: Vec<ParallelGroup>,
    /// Open missions in all groups.
    pub missions: u32,
    /// The limit cut the list: later groups, or the end of the last one, are left out.
    pub truncated: bool,
}

/// Starts a READY mission on an agent (ACTIVE).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignMission {
    /// The mission.
    pub mission_id: MissionId,
    /// The agent; by default the mission's `assigned_agent_id`.
    #[serde(default)]
    pub agent_id: Option<AgentId>,
}

/// An agent asks for its next mission, the pull a worker makes (one an auto-scaler started,
/// say): the best READY mission of its role meant for it or for nobody, started on it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimNext {
    /// The role to claim for: by default the caller's own, and no other may be named.
    #[serde(default)]
    pub role: Option<Role>,
}

/// What a claim took.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Claimed {
    /// The mission now ACTIVE on the caller; `null` when no READY mission of the role is
    /// left for it.
    #[serde(default)]
    pub mission: Option<Mission>,
}

/// Marks an ACTIVE mission complete (the seed's `mark_complete`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkComplete {
    /// The mission.
    pub mission_id: MissionId,
    /// Its output (the shared intelligence other agents read).
    #[serde(default)]
    pub output_data: serde_json::Value,
    /// 0 to 1; below the mission's gate this counts as a failed attempt.
    #[serde(default)]
    pub quality_score: Option<f64>,
}

/// Marks an ACTIVE mission's attempt failed (the seed's `mark_failed`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkFailed {
    /// The mission.
    pub mission_id: MissionId,
    /// Why.
    pub reason: String,
    /// Retry while attempts remain (default true).
    #[serde(default = "yes")]
    pub retry: bool,
}

fn yes() -> bool {
    true
}

/// The mission after `mark_complete` or `mark_failed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MissionOutcome {
    /// The mission now.
    pub mission: Mission,
    /// It went back to READY for another attempt (the seed's `mark_failed(...) -> True`).
    pub will_retry: bool,
}

/// Cancels an open mission.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelMission {
    /// The mission.
    pub mission_id: MissionId,
    /// Why.
    pub reason: String,
}

/// Archives one final mission, or every final mission older than a window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArchiveMissions {
    /// This mission.
    #[serde(default)]
    pub mission_id: Option<MissionId>,
    /// Or every final mission that finished longer ago than this.
    #[serde(default)]
    pub older_than_ms: Option<u64>,
}

/// Missions archived.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Archived {
    /// Their ids.
    pub archived: Vec<MissionId>,
}

/// A filter over missions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MissionQuery {
    /// Only this status.
    #[serde(default)]
    pub status: Option<MissionStatus>,
    /// Only this phase.
    #[serde(default)]
    pub phase: Option<Phase>,
    /// Only missions assigned to this agent.
    #[serde(default)]
    pub agent_id: Option<AgentId>,
    /// Include ARCHIVED missions (off by default).
    #[serde(default)]
    pub include_archived: bool,
    /// At most this many (default 1000).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Missions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MissionList {
    /// Matching missions, newest first.
    pub missions: Vec<Mission>,
    /// How many matched in all.
    pub total: u32,
}

/// Whose outputs: one mission's, or a whole phase's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputQuery {
    /// This mission.
    #[serde(default)]
    pub mission_id: Option<MissionId>,
    /// Or every completed mission of this phase.
    #[serde(default)]
    pub phase: Option<Phase>,
}

/// One mission's output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Output {
    /// The mission.
    pub mission_id: MissionId,
    /// Its name.
    pub name: String,
    /// Its phase.
    pub phase: Phase,
    /// Its output.
    pub output_data: serde_json::Value,
    /// Its quality score.
    #[serde(default)]
    pub quality_score: Option<f64>,
    /// When it completed.
    #[serde(default)]
    pub finished_at: Option<Timestamp>,
}

/// The seed's shared intelligence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Outputs {
    /// Completed missions' outputs.
    pub outputs: Vec<Output>,
}

/// Names a phase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PhaseRef {
    /// The phase.
    pub phase: Phase,
}

/// Where a phase stands (the seed's sync point: "Phase −1 mission complete?").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PhaseStatus {
    /// The phase.
    pub phase: Phase,
    /// Its name.
    pub name: String,
    /// Every mission finished, none failed, at least one completed.
    pub complete: bool,
    /// Its missions per status.
    pub by_status: BTreeMap<MissionStatus, u32>,
}

/// Mission figures plus what the spawner's ledgers say was spent on them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MissionStatistics {
    /// Counts, success rate, retries, quality, throughput.
    pub missions: MissionStats,
    /// Tokens spent on missions (from the spawner's ledgers).
    pub tokens_used: u64,
    /// Tokens reserved for missions now.
    pub tokens_reserved: u64,
}

/// The operations, one marker type each (`op::Spawn` and so on).
pub mod op {
    use crate::api::operations;

    operations!(Mission {
        /// Creates a mission: name, phase, agent, token budget, priority, input, retries, quality gate (the seed's `create_mission`).
        CreateMission = create_mission: super::NewMission => super::Mission;
        /// Adds a `blocks_on` dependency, hard or soft; a cycle is refused with its path (the seed's `add_dependency`).
        AddDependency = add_dependency: super::AddDependency => super::Mission;
        /// Removes a dependency.
        RemoveDependency = remove_dependency: super::RemoveDependency => super::Mission;
        /// Whether a mission's dependencies are met (the seed's `check_ready`).
        CheckReady = check_ready, read: super::MissionRef => super::Readiness;
        /// Ordered groups of missions that can run at the same time (the seed's `get_parallelizable_missions`).
        GetParallelizableMissions = get_parallelizable_missions, read: super::GroupsQuery => super::ParallelGroups;
        /// Starts a READY mission on an agent, after the spawner allocates it.
        AssignMission = assign_mission: super::AssignMission => super::Mission;
        /// Moves an ACTIVE mission to another agent in one step (the bus's HANDOFF).
        ReassignMission = reassign_mission: super::ReassignMission => super::Mission;
        /// Starts the calling agent's next mission: the READY one of its role meant for it or for nobody, highest priority first, then oldest; `null` when none is left.
        ClaimNext = claim_next: super::ClaimNext => super::Claimed;
        /// Completes an ACTIVE mission with output and quality score (the seed's `mark_complete`).
        MarkComplete = mark_complete: super::MarkComplete => super::MissionOutcome;
        /// Fails an attempt; READY again while retries remain (the seed's `mark_failed`).
        MarkFailed = mark_failed: super::MarkFailed => super::MissionOutcome;
        /// Cancels an open mission.
        CancelMission = cancel_mission: super::CancelMission => super::Mission;
        /// Archives final missions (they stay retrievable).
        ArchiveMissions = archive_missions: super::ArchiveMissions => super::Archived;
        /// One mission.
        GetMission = get_mission, read: super::MissionRef => super::Mission;
        /// Missions matching a filter.
        ListMissions = list_missions, read: super::MissionQuery => super::MissionList;
        /// Outputs of a mission or of a whole phase (the seed's shared intelligence).
        GetOutputs = get_outputs, read: super::OutputQuery => super::Outputs;
        /// Whether a phase is complete (the seed's sync point).
        PhaseStatus = phase_status, read: super::PhaseRef => super::PhaseStatus;
        /// Per-status counts, success rate, retries, quality, tokens, throughput (the seed's `get_statistics`).
        GetStatistics = get_statistics, read: super::Empty => super::MissionStatistics;
    });
}

pub use op::{Handler, OPS, Routes};
