//! The one rule for an agent's allocation to a mission, which two services hold between
//! them (ARCHITECTURE.md, "Allocation"): spawner-svc records that an agent works on a task
//! (WORKING, `assigned_task_id`, `assigned_at`), mission-svc's board records which agent
//! runs a mission (ACTIVE, `assigned_agent_id`). **The board decides**:
//!
//! 1. An allocation comes first, then the start; a start is appended only within a grace
//!    period of its allocation ([`start_in_time`]), otherwise it is refused and the
//!    allocation released.
//! 2. A change that takes a mission off its agent (it left ACTIVE, or moved) frees that
//!    agent, judged on the state the change was decided on ([`freed_by`]), never on what
//!    an instance had folded before.
//! 3. Whoever looks releases an allocation its mission does not run on once it is older
//!    than twice the grace period ([`stray`]): by then no start can follow it. Its age is
//!    its own, never the agent's last change: a heartbeating agent is no proof that its
//!    allocation is meant.
//! 4. A mission ACTIVE on a live agent that does not hold it (a start appended after a
//!    stall longer than all of that) is the reverse: after the same period it is given
//!    back to its agent if the agent is free, or retried elsewhere ([`unheld`]).
//! 5. A mission whose agent was lost is retried within that agent's own lineage: a free
//!    agent of its parent's team with the same role, allowed in the mission's phase
//!    ([`fallback`]). With none, it waits READY and the lost agent's orchestrator (or the
//!    operator) is told; it never goes to an agent of another lineage.
//! 6. An agent may pull its own next mission (`claim_next`): a READY one of its own role
//!    ([`claim_role`]) meant for it or for nobody, in its phase scope, best first
//!    ([`claims`]), started as an assignment starts one (allocation first). A candidate
//!    another claimer started first is passed over for the next ([`claim_moves_on`]); a
//!    refusal about the claimer itself (it already holds a task, it is paused, it may not
//!    assign) ends the claim, since every candidate would meet it.

use crate::agent::{Registry, Role};
use crate::mission::{Board, Mission, MissionStatus};
use crate::{AgentId, MissionId, Rejection, Timestamp};

/// The agent a change to a mission frees: the one it ran on before, when after the change
/// it no longer runs there (it left ACTIVE, or moved to another agent). `before` must be
/// the mission as the change was decided on.
pub fn freed_by(before: Option<&Mission>, after: &Mission) -> Option<AgentId> {
    let before = before.filter(|b| b.status == MissionStatus::Active)?;
    let agent = before.assigned_agent_id.as_ref()?;
    let still_runs =
        after.status == MissionStatus::Active && after.assigned_agent_id.as_ref() == Some(agent);
    (!still_runs).then(|| agent.clone())
}

/// Who may take over a mission whose agent `lost` was lost, best first: free agents of
/// the same role under the same parent, allowed in `phase`. A root agent (the operator's
/// own) has no team, so no fallback: the operator decides.
pub fn fallback(registry: &Registry, lost: &AgentId, phase: crate::Phase) -> Vec<AgentId> {
    let Some(profile) = registry.agent(lost) else {
        return Vec::new();
    };
    let Some(parent) = profile.parent_id.as_ref() else {
        return Vec::new();
    };
    registry
        .agents()
        .filter(|a| &a.id != lost && a.parent_id.as_ref() == Some(parent))
        .filter(|a| a.is_live() && a.is_available() && a.role == profile.role)
        .filter(|a| a.authority.scoped_to_phases.contains(phase))
        .map(|a| a.id.clone())
        .collect()
}

/// The role `agent` (of role `own`) claims for when it asked for `asked`: its own, the
/// only one it may ask for. An agent pulls the work it was made for; a mission of another
/// role reaches it by an assignment, never by a claim.
pub fn claim_role(agent: &AgentId, own: &Role, asked: Option<&Role>) -> Result<Role, Rejection> {
    match asked {
        Some(other) if other != own => Err(Rejection::invalid(
            "role",
            format!(
                "agent {agent} has role {own}; an agent claims missions of its own role only, not {other}"
            ),
        )),
        _ => Ok(own.clone()),
    }
}

/// The missions `agent` may claim for `role`, best first: [`Board::claimable`], less
/// those outside its phase scope (it could never start them, and first in line they would
/// hold back every claim behind them). None for an agent the registry does not know.
pub fn claims(board: &Board, registry: &Registry, agent: &AgentId, role: &Role) -> Vec<MissionId> {
    let Some(profile) = registry.agent(agent) else {
        return Vec::new();
    };
    board
        .claimable(role, agent)
        .into_iter()
        .filter(|m| profile.authority.scoped_to_phases.contains(m.phase))
        .map(|m| m.id.clone())
        .collect()
}

/// Whether a claim whose start of one candidate met `rejection` goes on to the next: it
/// does when the refusal is about that mission (another claimer started it first, so it
/// is no longer READY; its group cannot start while the mode's group limit is reached),
/// not when it is about the claimer, which every candidate would meet again.
pub fn claim_moves_on(rejection: &Rejection) -> bool {
    matches!(
        rejection,
        Rejection::IllegalMissionTransition { .. }
            | Rejection::MissionStarted { .. }
            | Rejection::GroupLimitReached { .. }
    )
}

/// Whether `mission` is running on `agent` on the board.
pub fn runs_on(board: &Board, mission: &MissionId, agent: &AgentId) -> bool {
    board.mission(mission).is_some_and(|m| {
        m.status == MissionStatus::Active && m.assigned_agent_id.as_ref() == Some(agent)
    })
}

/// Whether a start may still follow an allocation made at `allocated_at`.
pub fn start_in_time(allocated_at: Timestamp, now: Timestamp, grace_ms: u64) -> bool {
    now.millis_since(allocated_at) <= grace_ms
}

/// How long an allocation its mission does not run on is left alone: twice the time a
/// start has to follow it.
pub const fn release_after(grace_ms: u64) -> u64 {
    grace_ms.saturating_mul(2)
}

/// The allocations to release: each agent holding a mission of this board that is not
/// running on it, allocated more than [`release_after`] ago. Tasks the board does not
/// know are not its to judge.
pub fn stray(
    registry: &Registry,
    board: &Board,
    now: Timestamp,
    grace_ms: u64,
) -> Vec<(AgentId, MissionId)> {
    registry
        .agents()
        .filter(|a| a.is_live())
        .filter_map(|a| {
            let task = a.assigned_task_id.as_ref()?;
            // Allocations recorded before `assigned_at` existed are as old as the record.
            let since = a.assigned_at.unwrap_or(a.updated_at);
            let judged = board.mission(task).is_some()
                && now.millis_since(since) > release_after(grace_ms)
                && !runs_on(board, task, &a.id);
            judged.then(|| (a.id.clone(), task.clone()))
        })
        .collect()
}

/// Missions ACTIVE on a live agent that does not hold them, started more than
/// [`release_after`] ago.
pub fn unheld(
    registry: &Registry,
    board: &Board,
    now: Timestamp,
    grace_ms: u64,
) -> Vec<(AgentId, MissionId)> {
    board
        .missions()
        .filter(|m| {
            m.status == MissionStatus::Active
                && m.started_at
                    .is_some_and(|t| now.millis_since(t) > release_after(grace_ms))
        })
        .filter_map(|m| {
            let agent = m.assigned_agent_id.as_ref()?;
            let a = registry.agent(agent).filter(|a| a.is_live())?;
            (a.assigned_task_id.as_ref() != Some(&m.id)).then(|| (agent.clone(), m.id.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{claim_moves_on, claim_role, claims, fallback};
    use crate::agent::tests::{World, id};
    use crate::agent::{Authority, Command, Role, SpawnRequest};
    use crate::mission::{
        Board, BoardConfig, Command as MissionCommand, MissionStatus, NewMission,
    };
    use crate::{Effect, MissionId, Phase, PhaseScope, Principal, Rejection, Timestamp};

    #[test]
    fn a_claim_is_for_the_claimers_own_role_only() {
        let dev = id("dev-1");
        assert_eq!(
            claim_role(&dev, &Role::Developer, None),
            Ok(Role::Developer)
        );
        assert_eq!(
            claim_role(&dev, &Role::Developer, Some(&Role::Developer)),
            Ok(Role::Developer)
        );
        let other = claim_role(&dev, &Role::Developer, Some(&Role::Qa)).unwrap_err();
        assert_eq!(
            (other.rule(), other.field()),
            ("invalid_field", Some("role"))
        );
        assert!(
            other.to_string().contains("dev-1 has role developer")
                && other.to_string().contains("not qa"),
            "{other}"
        );
        let specialist = Role::Specialist("market-analyst".into());
        assert!(claim_role(&dev, &specialist, Some(&Role::Specialist("other".into()))).is_err());
    }

    #[test]
    fn a_claim_skips_missions_outside_the_claimers_phase_scope() {
        let mut w = World::safe();
        let op = Principal::Operator;
        w.spawn(&op, "orch", Role::Orchestrator, None, 10_000)
            .unwrap();
        let mut narrow = Authority::default_for(&Role::Developer);
        narrow.scoped_to_phases = PhaseScope::Only([Phase::TESTING].into());
        w.run(
            &Principal::Agent(id("orch")),
            Command::Spawn(SpawnRequest {
                authority: Some(narrow),
                ..SpawnRequest::new(id("tester"), Role::Developer, 100).parent(id("orch"))
            }),
        )
        .unwrap();
        w.spawn(
            &Principal::Agent(id("orch")),
            "wide",
            Role::Developer,
            Some("orch"),
            100,
        )
        .unwrap();
        let mut board = Board::new(BoardConfig::default());
        for (name, phase, priority) in [
            ("build", Phase::DEVELOPMENT, 9),
            ("check", Phase::TESTING, 1),
        ] {
            let mut nm = NewMission::new(MissionId::new(name).unwrap(), name, phase);
            nm.role = Some(Role::Developer);
            nm.priority = priority;
            for e in board
                .decide(&op, &MissionCommand::Create(nm), Timestamp(1_000))
                .unwrap()
            {
                if let Effect::Save(m) = e {
                    board.apply(m);
                }
            }
        }
        assert_eq!(
            board
                .mission(&MissionId::new("build").unwrap())
                .unwrap()
                .status,
            MissionStatus::Ready
        );
        let names = |agent: &str| -> Vec<String> {
            claims(&board, &w.reg, &id(agent), &Role::Developer)
                .into_iter()
                .map(|m| m.to_string())
                .collect()
        };
        assert_eq!(names("wide"), ["build", "check"]);
        assert_eq!(names("tester"), ["check"], "build is outside its scope");
        assert!(
            names("nobody").is_empty(),
            "an unknown agent claims nothing"
        );
    }

    #[test]
    fn a_claim_passes_over_a_mission_taken_first_not_a_refusal_of_the_claimer() {
        let m = || MissionId::new("m").unwrap();
        let taken = [
            Rejection::IllegalMissionTransition {
                id: m(),
                from: MissionStatus::Active,
                to: MissionStatus::Active,
            },
            Rejection::MissionStarted {
                id: m(),
                status: MissionStatus::Active,
            },
            Rejection::GroupLimitReached {
                group: 1,
                active: 3,
                max: 3,
            },
        ];
        for r in &taken {
            assert!(claim_moves_on(r), "{r}");
        }
        let the_claimer = [
            Rejection::AgentBusy {
                id: id("dev-1"),
                task: m(),
            },
            Rejection::AgentPaused {
                id: id("dev-1"),
                reason: "budget".into(),
            },
            Rejection::Forbidden {
                actor: "dev-1".into(),
                action: "assign_mission".into(),
                reason: "forbidden_actions".into(),
            },
            Rejection::AgentOnly {
                operation: "claim_next",
            },
        ];
        for r in &the_claimer {
            assert!(!claim_moves_on(r), "{r}");
        }
    }

    #[test]
    fn a_lost_agents_fallback_is_a_free_agent_of_its_own_team() {
        let mut w = World::new(crate::agent::Mode::Aggressive.limits());
        let op = Principal::Operator;
        w.spawn(&op, "orch", Role::Orchestrator, None, 10_000)
            .unwrap();
        w.spawn(&op, "outsider", Role::Developer, None, 100)
            .unwrap();
        let orch = Principal::Agent(id("orch"));
        for (name, role) in [
            ("lost", Role::Developer),
            ("sib", Role::Developer),
            ("tester", Role::Qa),
            ("busy", Role::Developer),
        ] {
            w.spawn(&orch, name, role, Some("orch"), 100).unwrap();
        }
        let mut narrow = Authority::default_for(&Role::Developer);
        narrow.scoped_to_phases = PhaseScope::Only([Phase::TESTING].into());
        w.run(
            &orch,
            Command::Spawn(SpawnRequest {
                authority: Some(narrow),
                ..SpawnRequest::new(id("elsewhere"), Role::Developer, 100).parent(id("orch"))
            }),
        )
        .unwrap();
        for name in ["orch", "outsider", "sib", "tester", "busy", "elsewhere"] {
            w.heartbeat(name);
        }
        w.run(
            &orch,
            Command::AllocateTask {
                agent: id("busy"),
                task: crate::MissionId::new("other").unwrap(),
                phase: None,
            },
        )
        .unwrap();
        assert_eq!(
            fallback(&w.reg, &id("lost"), Phase::DEVELOPMENT),
            [id("sib")],
            "same parent, same role, free, allowed in the phase; never another lineage"
        );
        assert!(
            fallback(&w.reg, &id("outsider"), Phase::DEVELOPMENT).is_empty(),
            "a root agent has no team"
        );
    }
}
