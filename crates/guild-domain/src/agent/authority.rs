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
        Ok(())
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
        }
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
        let cases: [(&str, Widen); 5] = [
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
            let mut child = parent.clone();
            child.can_spawn_agents = false;
            widen(&mut child);
            let err = child.check_within(&parent).unwrap_err();
            assert_eq!(err.field(), Some(field));
            assert_eq!(err.rule(), "authority_exceeds_parent");
        }
        assert!(parent.check_within(&parent).is_ok());
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
