//! Who may change a mission: the authority an agent needs for a mission command, checked
//! against the spawner's registry (which mission-svc follows read-only).

use super::{Board, Command, MissionStatus};
use crate::Rejection;
use crate::agent::Registry;
use crate::id::{AgentId, Principal};

/// A mission command refused by the authority matrix: the refusal, and the agent it
/// concerns when it was someone else's running mission (the denial record names it).
#[derive(Clone, Debug, PartialEq)]
pub struct Denied {
    /// Why not.
    pub rejection: Rejection,
    /// The agent the mission runs on, when that was the reason.
    pub target: Option<AgentId>,
}

impl Board {
    /// Checks `by`'s authority for `command`: an agent needs the action not forbidden and
    /// the mission's phase in scope; completing, failing or cancelling a running mission,
    /// or handing it over, also needs `by` to be the agent it runs on or one of that
    /// agent's ancestors. The operator and services are not checked.
    pub fn authorize(
        &self,
        registry: &Registry,
        by: &Principal,
        command: &Command,
    ) -> Result<(), Denied> {
        let Principal::Agent(id) = by else {
            return Ok(());
        };
        let (action, phase) = self.required_action(command);
        registry
            .authorize(id, action, phase)
            .map_err(|rejection| Denied {
                rejection,
                target: None,
            })?;
        let running = match command {
            Command::Complete { mission, .. }
            | Command::Fail { mission, .. }
            | Command::Cancel { mission, .. } => self
                .mission(mission)
                .filter(|m| m.status == MissionStatus::Active)
                .and_then(|m| m.assigned_agent_id.clone()),
            Command::Reassign { from, .. } => Some(from.clone()),
            _ => None,
        };
        match running {
            Some(agent) if !registry.may_manage(by, &agent) => Err(Denied {
                rejection: Rejection::Forbidden {
                    actor: id.to_string(),
                    action: action.as_str().into(),
                    reason: format!(
                        "the mission runs on {agent}; only it, its ancestors or the operator may"
                    ),
                },
                target: Some(agent),
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::tests::{World, id};
    use crate::agent::{Command as AgentCommand, Role, SpawnRequest};
    use crate::audit::AuditKind;
    use crate::mission::{BoardConfig, Event, NewMission};
    use crate::{Effect, MissionId, Phase, Timestamp};

    const T0: Timestamp = Timestamp(1_000);

    fn agent(s: &str) -> Principal {
        Principal::Agent(id(s))
    }

    /// orch -> {lead -> dev, other}; mission m1 ACTIVE on dev.
    fn running() -> (World, Board) {
        let mut w = World::safe();
        let mut spawn = |by: Principal, name: &str, role: Role, parent: Option<&str>| {
            w.run(
                &by,
                AgentCommand::Spawn(SpawnRequest {
                    id: id(name),
                    role,
                    capabilities: vec![],
                    parent_id: parent.map(id),
                    token_budget: if parent.is_none() { 10_000 } else { 1_000 },
                    authority: None,
                    public_key: None,
                }),
            )
            .unwrap();
        };
        spawn(Principal::Operator, "orch", Role::Orchestrator, None);
        spawn(agent("orch"), "lead", Role::Developer, Some("orch"));
        spawn(agent("orch"), "other", Role::Developer, Some("orch"));
        spawn(agent("orch"), "dev", Role::Developer, Some("lead"));
        let mut board = Board::new(BoardConfig::default());
        let mission = MissionId::new("m1").unwrap();
        for c in [
            Command::Create(NewMission::new(mission.clone(), "m1", Phase::DEVELOPMENT)),
            Command::Start {
                mission,
                agent: id("dev"),
            },
        ] {
            for e in board.decide(&Principal::Operator, &c, T0).unwrap() {
                if let Effect::Save(m) = e {
                    board.apply(m);
                }
            }
        }
        (w, board)
    }

    fn complete() -> Command {
        Command::Complete {
            mission: MissionId::new("m1").unwrap(),
            output: serde_json::json!({}),
            quality_score: None,
        }
    }

    #[test]
    fn only_the_running_agent_its_ancestors_or_the_operator_complete_a_running_mission() {
        let (w, board) = running();
        for ok in [
            agent("dev"),
            agent("lead"),
            agent("orch"),
            Principal::Operator,
        ] {
            assert_eq!(board.authorize(&w.reg, &ok, &complete()), Ok(()), "{ok}");
        }
        let refused = board
            .authorize(&w.reg, &agent("other"), &complete())
            .unwrap_err();
        assert_eq!(
            refused.target,
            Some(id("dev")),
            "the denial names the agent"
        );
        assert!(
            matches!(&refused.rejection, Rejection::Forbidden { action, reason, .. }
                if action == "complete_mission" && reason.contains("runs on dev")),
            "{refused:?}"
        );
        // The same holds for failing and cancelling, and a handover names its holder.
        let fail = Command::Fail {
            mission: MissionId::new("m1").unwrap(),
            reason: "r".into(),
            retry: false,
            agent_lost: false,
        };
        assert!(board.authorize(&w.reg, &agent("other"), &fail).is_err());
        let handover = Command::Reassign {
            mission: MissionId::new("m1").unwrap(),
            from: id("dev"),
            to: id("other"),
        };
        assert!(board.authorize(&w.reg, &agent("other"), &handover).is_err());
        assert_eq!(board.authorize(&w.reg, &agent("lead"), &handover), Ok(()));
    }

    #[test]
    fn a_forbidden_action_is_refused_before_whose_mission_it_is() {
        let (mut w, board) = running();
        let mut forbidden = crate::agent::Authority::default_for(&Role::Developer);
        forbidden
            .forbidden_actions
            .insert("complete_mission".into());
        w.run(
            &agent("lead"),
            AgentCommand::Spawn(SpawnRequest {
                id: id("intern"),
                role: Role::Developer,
                capabilities: vec![],
                parent_id: Some(id("dev")),
                token_budget: 10,
                authority: Some(forbidden),
                public_key: None,
            }),
        )
        .unwrap();
        // intern is below dev, so may manage it, but may not complete missions at all.
        let refused = board
            .authorize(&w.reg, &agent("intern"), &complete())
            .unwrap_err();
        assert_eq!(refused.target, None);
        assert_eq!(refused.rejection.rule(), "forbidden_action");
    }

    #[test]
    fn mission_outcomes_are_audited_as_missions() {
        let (_, board) = running();
        let effects = board
            .decide(&agent("dev"), &complete(), T0.plus_millis(5))
            .unwrap();
        let audited: Vec<_> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Audit(a) => Some(a),
                _ => None,
            })
            .collect();
        assert!(!audited.is_empty(), "{effects:?}");
        for a in &audited {
            assert_eq!((a.kind, &a.actor), (AuditKind::Mission, &agent("dev")));
        }
        let completed = audited
            .iter()
            .find(|a| {
                matches!(
                    &a.data,
                    crate::audit::AuditData::Mission(Event::Completed { .. })
                )
            })
            .expect("the completion is audited");
        assert_eq!(completed.mission_id, MissionId::new("m1").ok());
        assert_eq!(completed.about, "m1");
        // A phase's completion names no mission.
        let phase = Event::PhaseCompleted {
            phase: Phase::DEVELOPMENT,
            missions: 1,
            at: T0,
        };
        let a = phase.audit(&Principal::Operator).unwrap();
        assert_eq!((a.mission_id, a.about.as_str()), (None, "phase5"));
    }
}
