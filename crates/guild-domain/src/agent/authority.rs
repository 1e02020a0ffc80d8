//! The authority matrix: what an agent is allowed to do, and the rule that a child never
//! holds more authority than its parent.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::role::{Role, validate_name};
use crate::Rejection;
use crate::phase::{Phase, PhaseScope};

/// The operations Guild itself checks. A forbidden action with one of these names blocks
/// that operation for the agent; any other name is for the agent's own tools, checked
/// through `authorize`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Spawn a sub-agent.
    SpawnAgent,
    /// Terminate an agent.
    TerminateAgent,
    /// Send a REQUEST.
    SendRequest,
    /// Send anything at CRITICAL priority.
    SendCritical,
    /// Ask a QUESTION.
    AskQuestion,
    /// Raise an ALERT.
    RaiseAlert,
    /// Hand a task off.
    HandoffTask,
    /// Record a DECISION.
    RecordDecision,
    /// Override another decision.
    OverrideDecision,
    /// Move token budget between agents.
    ReallocateBudget,
    /// Create a mission.
    CreateMission,
    /// Assign (start) a mission.
    AssignMission,
    /// Mark a mission complete.
    CompleteMission,
    /// Mark a mission failed.
    FailMission,
    /// Cancel a mission.
    CancelMission,
    /// Archive finished missions (they leave the working set, still retrievable).
    ArchiveMissions,
    /// Give a child new credentials (revoking its old ones).
    IssueCredentials,
}

impl Action {
    /// Every action Guild checks.
    pub const ALL: [Action; 17] = [
        Action::SpawnAgent,
        Action::TerminateAgent,
        Action::SendRequest,
        Action::SendCritical,
        Action::AskQuestion,
        Action::RaiseAlert,
        Action::HandoffTask,
        Action::RecordDecision,
        Action::OverrideDecision,
        Action::ReallocateBudget,
        Action::CreateMission,
        Action::AssignMission,
        Action::CompleteMission,
        Action::FailMission,
        Action::CancelMission,
        Action::ArchiveMissions,
        Action::IssueCredentials,
    ];

    /// The fixed name, as it appears in `forbidden_actions`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::SpawnAgent => "spawn_agent",
            Action::TerminateAgent => "terminate_agent",
            Action::SendRequest => "send_request",
            Action::SendCritical => "send_critical",
            Action::AskQuestion => "ask_question",
            Action::RaiseAlert => "raise_alert",
            Action::HandoffTask => "handoff_task",
            Action::RecordDecision => "record_decision",
            Action::OverrideDecision => "override_decision",
            Action::ReallocateBudget => "reallocate_budget",
            Action::CreateMission => "create_mission",
            Action::AssignMission => "assign_mission",
            Action::CompleteMission => "complete_mission",
            Action::FailMission => "fail_mission",
            Action::CancelMission => "cancel_mission",
            Action::ArchiveMissions => "archive_missions",
            Action::IssueCredentials => "issue_credentials",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`Registry::authorize`](super::Registry::authorize) is asked about: one of Guild's
/// own actions, or a name of the agent's own tools (`forbidden_actions` may hold either).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ActionName {
    /// An action Guild itself checks; some need a permission beyond not being forbidden.
    Guild(Action),
    /// A tool's action: only `forbidden_actions` and the phase scope apply.
    Tool(String),
}

impl ActionName {
    /// The action a name (as it appears in `forbidden_actions`) stands for: Guild's own
    /// when it spells one, otherwise a tool's.
    pub fn parse(name: &str) -> Self {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == name)
            .map_or_else(|| ActionName::Tool(name.to_owned()), ActionName::Guild)
    }

    /// The name, as it appears in `forbidden_actions`.
    pub fn as_str(&self) -> &str {
        match self {
            ActionName::Guild(a) => a.as_str(),
            ActionName::Tool(name) => name,
        }
    }
}

impl From<Action> for ActionName {
    fn from(a: Action) -> Self {
        ActionName::Guild(a)
    }
}

impl fmt::Display for ActionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The registry's operations on one agent that only the agent itself, someone above it or
/// the operator may make: the action a refusal of one names.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum AgentOperation {
    AllocateTask,
    ReleaseTask,
    TerminateAgent,
    ReserveTokens,
    CommitTokens,
    ReleaseTokens,
    SetStatus,
    PauseAgent,
    ResumeAgent,
}

impl AgentOperation {
    /// The operation's name, as the refusal gives it.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            AgentOperation::AllocateTask => "allocate_task",
            AgentOperation::ReleaseTask => "release_task",
            AgentOperation::TerminateAgent => Action::TerminateAgent.as_str(),
            AgentOperation::ReserveTokens => "reserve_tokens",
            AgentOperation::CommitTokens => "commit_tokens",
            AgentOperation::ReleaseTokens => "release_tokens",
            AgentOperation::SetStatus => "set_status",
            AgentOperation::PauseAgent => "pause_agent",
            AgentOperation::ResumeAgent => "resume_agent",
        }
    }
}

/// What an agent is allowed to do (the seed's `AgentAuthority`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Authority {
    /// How many live sub-agents it may manage at once.
    pub max_parallel_agents: u32,
    /// Whether it may spawn sub-agents.
    pub can_spawn_agents: bool,
    /// Whether it may override decisions (and decide questions not addressed to it).
    pub can_override_decisions: bool,
    /// The phases it may work in.
    pub scoped_to_phases: PhaseScope,
    /// Actions it must not take: Guild's own (`spawn_agent`, ...) or its tools' names.
    #[serde(default)]
    pub forbidden_actions: BTreeSet<String>,
    /// How many generations of sub-agents may exist below it: 1 allows children but no
    /// grandchildren, 0 no sub-agents at all. No cap when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_depth: Option<u32>,
    /// How many agents may ever be spawned below it, every generation and terminated ones
    /// included (a lifetime count, unlike `max_parallel_agents`). No cap when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_descendants: Option<u32>,
    /// How many agents may be spawned below it, every generation, within any 60 s. No
    /// cap when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_spawns_per_minute: Option<u32>,
}

/// The three caps on a spawn tree's growth an authority may hold.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum SpawnCap {
    /// `max_depth`.
    MaxDepth,
    /// `max_descendants`.
    MaxDescendants,
    /// `max_spawns_per_minute`.
    MaxSpawnsPerMinute,
}

impl SpawnCap {
    /// Every cap.
    pub const ALL: [SpawnCap; 3] = [
        SpawnCap::MaxDepth,
        SpawnCap::MaxDescendants,
        SpawnCap::MaxSpawnsPerMinute,
    ];

    /// The authority field holding it.
    pub const fn field(self) -> &'static str {
        match self {
            SpawnCap::MaxDepth => "max_depth",
            SpawnCap::MaxDescendants => "max_descendants",
            SpawnCap::MaxSpawnsPerMinute => "max_spawns_per_minute",
        }
    }

    /// The rule a spawn it refuses breaks.
    pub const fn rule(self) -> &'static str {
        match self {
            SpawnCap::MaxDepth => "spawn_depth_exceeded",
            SpawnCap::MaxDescendants => "descendants_exhausted",
            SpawnCap::MaxSpawnsPerMinute => "spawn_rate_exceeded",
        }
    }

    /// The cap as `authority` holds it.
    pub fn of(self, authority: &Authority) -> Option<u32> {
        match self {
            SpawnCap::MaxDepth => authority.max_depth,
            SpawnCap::MaxDescendants => authority.max_descendants,
            SpawnCap::MaxSpawnsPerMinute => authority.max_spawns_per_minute,
        }
    }

    fn set(self, authority: &mut Authority, value: Option<u32>) {
        match self {
            SpawnCap::MaxDepth => authority.max_depth = value,
            SpawnCap::MaxDescendants => authority.max_descendants = value,
            SpawnCap::MaxSpawnsPerMinute => authority.max_spawns_per_minute = value,
        }
    }

    /// The most a child of a holder of `parent` may hold: one generation less for the
    /// depth, the same for the others (the lifetime count is narrowed further, to what
    /// is left of the parent's, when the child is spawned).
    fn bound_for_child(self, parent: &Authority) -> Option<u32> {
        let p = self.of(parent)?;
        Some(match self {
            SpawnCap::MaxDepth => p.saturating_sub(1),
            SpawnCap::MaxDescendants | SpawnCap::MaxSpawnsPerMinute => p,
        })
    }
}

impl std::fmt::Display for SpawnCap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.field())
    }
}

impl Authority {
    /// The authority a role gets when none is given: orchestrators may spawn and override
    /// across all phases; every other role may spawn up to 4 sub-agents and not override.
    pub fn default_for(role: &Role) -> Self {
        let orchestrator = matches!(role, Role::Orchestrator);
        Self {
            max_parallel_agents: if orchestrator { 20 } else { 4 },
            can_spawn_agents: true,
            can_override_decisions: orchestrator,
            scoped_to_phases: PhaseScope::All,
            forbidden_actions: BTreeSet::new(),
            max_depth: None,
            max_descendants: None,
            max_spawns_per_minute: None,
        }
    }

    /// Checks the names in `forbidden_actions`.
    pub fn validate(&self) -> Result<(), Rejection> {
        self.forbidden_actions
            .iter()
            .try_for_each(|a| validate_name("forbidden_actions", a))
    }

    /// Whether the action called `name` is forbidden.
    pub fn forbids(&self, name: &str) -> bool {
        self.forbidden_actions.contains(name)
    }

    /// Refuses when `self` holds more than `parent` on any field, naming the field.
    pub fn check_within(&self, parent: &Authority) -> Result<(), Rejection> {
        let excess = |field: &'static str, detail: String| {
            Err(Rejection::AuthorityExceedsParent {
                field: field.to_owned(),
                detail,
            })
        };
        if self.max_parallel_agents > parent.max_parallel_agents {
            return excess(
                "max_parallel_agents",
                format!(
                    "{} > parent's {}",
                    self.max_parallel_agents, parent.max_parallel_agents
                ),
            );
        }
        if self.can_spawn_agents && !parent.can_spawn_agents {
            return excess("can_spawn_agents", "parent may not spawn".into());
        }
        if self.can_override_decisions && !parent.can_override_decisions {
            return excess("can_override_decisions", "parent may not override".into());
        }
        if !self.scoped_to_phases.is_within(&parent.scoped_to_phases) {
            return excess(
                "scoped_to_phases",
                "child phases are not a subset of parent's".into(),
            );
        }
        if let Some(missing) = parent
            .forbidden_actions
            .difference(&self.forbidden_actions)
            .next()
        {
            return excess(
                "forbidden_actions",
                format!("parent forbids {missing:?}, child does not"),
            );
        }
        for cap in SpawnCap::ALL {
            if let (Some(asked), Some(bound)) = (cap.of(self), cap.bound_for_child(parent))
                && asked > bound
            {
                return excess(
                    cap.field(),
                    format!("{asked} > {bound}, the most a child of its parent may hold"),
                );
            }
        }
        Ok(())
    }

    /// `self` (within `parent`, see [`check_within`](Self::check_within)) with each spawn
    /// cap it leaves out set to the most its parent allows: a cap is never lost by not
    /// naming it.
    pub fn inherit_caps(mut self, parent: &Authority) -> Authority {
        for cap in SpawnCap::ALL {
            if cap.of(&self).is_none() {
                cap.set(&mut self, cap.bound_for_child(parent));
            }
        }
        self
    }

    /// The largest authority within both `self` and `parent`: what a child gets when it asks
    /// for its role's default under a parent.
    pub fn clamp_to(&self, parent: &Authority) -> Authority {
        let scoped_to_phases = match (&self.scoped_to_phases, &parent.scoped_to_phases) {
            (PhaseScope::All, outer) => outer.clone(),
            (inner, PhaseScope::All) => inner.clone(),
            (PhaseScope::Only(a), PhaseScope::Only(b)) => {
                PhaseScope::Only(a.intersection(b).copied().collect())
            }
        };
        Authority {
            max_parallel_agents: self.max_parallel_agents.min(parent.max_parallel_agents),
            can_spawn_agents: self.can_spawn_agents && parent.can_spawn_agents,
            can_override_decisions: self.can_override_decisions && parent.can_override_decisions,
            scoped_to_phases,
            forbidden_actions: self
                .forbidden_actions
                .union(&parent.forbidden_actions)
                .cloned()
                .collect(),
            max_depth: None,
            max_descendants: None,
            max_spawns_per_minute: None,
        }
        .with_caps_within(self, parent)
    }

    /// `self` holding, for each spawn cap, the smaller of `own`'s and what `parent` allows
    /// a child.
    fn with_caps_within(mut self, own: &Authority, parent: &Authority) -> Authority {
        for cap in SpawnCap::ALL {
            let value = match (cap.of(own), cap.bound_for_child(parent)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            cap.set(&mut self, value);
        }
        self
    }

    /// May the holder take the action called `action` in `phase`? The reason says why not.
    pub fn permits(&self, action: &str, phase: Option<Phase>) -> Result<(), String> {
        if self.forbids(action) {
            return Err(format!("{action} is in forbidden_actions"));
        }
        if let Some(phase) = phase
            && !self.scoped_to_phases.contains(phase)
        {
            return Err(format!("phase {phase} is outside scoped_to_phases"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed_example() -> Authority {
        Authority {
            max_parallel_agents: 4,
            can_spawn_agents: true,
            can_override_decisions: false,
            scoped_to_phases: PhaseScope::Only([Phase::FOUNDATION, Phase::DEVELOPMENT].into()),
            forbidden_actions: ["delete_database", "merge_main_branch", "deploy_production"]
                .map(String::from)
                .into(),
            max_depth: None,
            max_descendants: None,
            max_spawns_per_minute: None,
        }
    }

    #[test]
    fn seed_example_round_trips() {
        let json = r#"{"max_parallel_agents":4,"can_spawn_agents":true,
            "can_override_decisions":false,"scoped_to_phases":["4","5"],
            "forbidden_actions":["delete_database","merge_main_branch","deploy_production"]}"#;
        let parsed: Authority = serde_json::from_str(json).unwrap();
        assert_eq!(parsed, seed_example());
    }

    #[test]
    fn each_field_of_excess_is_named() {
        let parent = seed_example();
        type Widen = fn(&mut Authority);
        let cases: [(&str, Widen); 8] = [
            ("max_depth", |a| a.max_depth = Some(3)),
            ("max_descendants", |a| a.max_descendants = Some(11)),
            ("max_spawns_per_minute", |a| {
                a.max_spawns_per_minute = Some(6)
            }),
            ("max_parallel_agents", |a| a.max_parallel_agents = 5),
            ("can_override_decisions", |a| {
                a.can_override_decisions = true
            }),
            ("scoped_to_phases", |a| a.scoped_to_phases = PhaseScope::All),
            ("forbidden_actions", |a| {
                a.forbidden_actions.remove("deploy_production");
            }),
            ("can_spawn_agents", |a| a.can_spawn_agents = true),
        ];
        for (field, widen) in cases {
            let mut parent = parent.clone();
            if field == "can_spawn_agents" {
                parent.can_spawn_agents = false;
            }
            parent.max_depth = Some(3);
            parent.max_descendants = Some(10);
            parent.max_spawns_per_minute = Some(5);
            let mut child = Authority {
                max_depth: None,
                max_descendants: None,
                max_spawns_per_minute: None,
                ..parent.clone()
            }
            .inherit_caps(&parent);
            child.can_spawn_agents = false;
            widen(&mut child);
            let err = child.check_within(&parent).unwrap_err();
            assert_eq!(err.field(), Some(field));
            assert_eq!(err.rule(), "authority_exceeds_parent");
        }
        assert!(parent.check_within(&parent).is_ok());
    }

    #[test]
    fn a_child_holds_at_most_one_generation_less_and_never_loses_a_cap_by_leaving_it_out() {
        let mut parent = seed_example();
        parent.max_depth = Some(2);
        parent.max_descendants = Some(10);
        parent.max_spawns_per_minute = Some(5);
        let mut deep = seed_example();
        deep.max_depth = Some(2);
        let err = deep.check_within(&parent).unwrap_err();
        assert_eq!(err.field(), Some("max_depth"));
        deep.max_depth = Some(1);
        assert!(deep.check_within(&parent).is_ok());
        // Left out: inherited at the most the parent allows.
        let child = seed_example().inherit_caps(&parent);
        assert_eq!(
            (
                child.max_depth,
                child.max_descendants,
                child.max_spawns_per_minute
            ),
            (Some(1), Some(10), Some(5))
        );
        // A role's default is clamped the same way.
        let clamped = Authority::default_for(&Role::Orchestrator).clamp_to(&parent);
        assert_eq!(clamped.max_depth, Some(1));
        assert!(clamped.check_within(&parent).is_ok());
        // An uncapped parent leaves an uncapped child uncapped.
        let free = seed_example().inherit_caps(&seed_example());
        assert_eq!(free.max_depth, None);
    }

    #[test]
    fn clamping_gives_authority_within_the_parent() {
        let parent = seed_example();
        let child = Authority::default_for(&Role::Orchestrator).clamp_to(&parent);
        assert!(child.check_within(&parent).is_ok());
        assert!(!child.can_override_decisions);
        assert_eq!(child.max_parallel_agents, 4);
    }

    #[test]
    fn action_names_parse_to_guilds_own_actions_or_a_tools() {
        for a in Action::ALL {
            assert_eq!(ActionName::parse(a.as_str()), ActionName::Guild(a));
            assert_eq!(ActionName::from(a).as_str(), a.as_str());
        }
        let tool = ActionName::parse("deploy_production");
        assert_eq!(tool, ActionName::Tool("deploy_production".into()));
        assert_eq!(tool.to_string(), "deploy_production");
        // Names are exact, as in `forbidden_actions`: another spelling is a tool's.
        assert!(matches!(
            ActionName::parse("Spawn_Agent"),
            ActionName::Tool(_)
        ));
    }

    #[test]
    fn permits_checks_forbidden_names_and_phase_scope() {
        let a = seed_example();
        assert!(a.permits("deploy_production", None).is_err());
        assert!(a.permits("run_tests", Some(Phase::DEVELOPMENT)).is_ok());
        let err = a.permits("run_tests", Some(Phase::TESTING)).unwrap_err();
        assert!(err.contains("phase 6"), "{err}");
    }

    #[test]
    fn action_names_are_the_fixed_ones() {
        let names: Vec<_> = Action::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(names.len(), 17);
        for a in Action::ALL {
            assert_eq!(
                serde_json::to_string(&a).unwrap(),
                format!("\"{}\"", a.as_str())
            );
        }
    }
}
