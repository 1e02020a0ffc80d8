//! The spawner's rules, one test per rule, against the pure registry.

use super::*;
use crate::agent::registry::Efficiency;
use crate::phase::{Phase, PhaseScope};
use crate::{AgentId, Effect, MissionId, Principal, Rejection, ReservationId, Timestamp};

const T0: Timestamp = Timestamp(1_000_000);

pub(crate) struct World {
    pub(crate) reg: Registry,
    pub(crate) now: Timestamp,
}

pub(crate) fn id(s: &str) -> AgentId {
    AgentId::new(s).unwrap()
}

fn agent(s: &str) -> Principal {
    Principal::Agent(id(s))
}

impl World {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            reg: Registry::new(limits, T0),
            now: T0,
        }
    }

    pub(crate) fn safe() -> Self {
        Self::new(Mode::Safe.limits())
    }

    /// Decides and applies; returns the events.
    pub(crate) fn run(&mut self, by: &Principal, cmd: Command) -> Result<Vec<Event>, Rejection> {
        let effects = self.reg.decide(by, &cmd, self.now)?;
        let mut events = Vec::new();
        for e in effects {
            match e {
                Effect::Save(r) => self.reg.apply(r),
                Effect::Emit(ev) => events.push(ev),
            }
        }
        Ok(events)
    }

    pub(crate) fn spawn(
        &mut self,
        by: &Principal,
        name: &str,
        role: Role,
        parent: Option<&str>,
        budget: u64,
    ) -> Result<Vec<Event>, Rejection> {
        self.run(
            by,
            Command::Spawn(SpawnRequest {
                id: id(name),
                role,
                capabilities: vec![],
                parent_id: parent.map(id),
                token_budget: budget,
                authority: None,
                public_key: None,
            }),
        )
    }

    pub(crate) fn get(&self, name: &str) -> &AgentProfile {
        self.reg.agent(&id(name)).unwrap()
    }

    pub(crate) fn heartbeat(&mut self, name: &str) {
        self.run(
            &agent(name),
            Command::Heartbeat {
                agent: id(name),
                context: None,
            },
        )
        .unwrap();
    }

    /// Pool free + every agent's allocated: must always equal the pool total.
    pub(crate) fn conserved(&self) -> bool {
        let held: u64 = self.reg.agents().map(|a| a.budget.allocated).sum();
        self.reg.pool().free + held == self.reg.pool().total
    }
}

fn orchestrated() -> World {
    let mut w = World::safe();
    w.spawn(
        &Principal::Operator,
        "orch",
        Role::Orchestrator,
        None,
        100_000,
    )
    .unwrap();
    w.heartbeat("orch");
    w
}

#[test]
fn a_root_spawn_carves_from_the_pool() {
    let w = orchestrated();
    assert_eq!(w.reg.pool().free, 100_000);
    assert_eq!(w.reg.pool().live_agents, 1);
    let o = w.get("orch");
    assert_eq!(o.status, AgentStatus::Active);
    assert!(!o.temporary);
    assert!(o.authority.can_override_decisions);
    assert!(w.conserved());
}

#[test]
fn only_the_operator_spawns_root_agents() {
    let mut w = orchestrated();
    let err = w
        .spawn(&agent("orch"), "rogue", Role::Developer, None, 10)
        .unwrap_err();
    assert_eq!(err, Rejection::RootSpawnRequiresOperator);
}

#[test]
fn a_root_spawn_larger_than_the_pool_is_refused_with_figures() {
    let mut w = World::safe();
    let err = w
        .spawn(
            &Principal::Operator,
            "big",
            Role::Orchestrator,
            None,
            200_001,
        )
        .unwrap_err();
    assert_eq!(
        err,
        Rejection::BudgetExceeded {
            field: "token_budget",
            scope: "the global pool".into(),
            remaining: 200_000,
            requested: 200_001
        }
    );
    assert_eq!(w.reg.agents().count(), 0);
}

#[test]
fn a_child_is_carved_from_its_parent_and_is_temporary() {
    let mut w = orchestrated();
    let events = w
        .spawn(&agent("orch"), "dev", Role::Developer, Some("orch"), 5_000)
        .unwrap();
    assert!(matches!(events[0], Event::Spawned { .. }));
    assert_eq!(w.get("orch").budget.allocated, 95_000);
    assert_eq!(w.get("orch").live_children, 1);
    let dev = w.get("dev");
    assert!(dev.temporary);
    assert_eq!(dev.status, AgentStatus::Pending);
    assert_eq!(dev.parent_id, Some(id("orch")));
    assert!(
        !dev.authority.can_override_decisions,
        "role default clamped: developers do not override"
    );
    assert!(w.conserved());
}

#[test]
fn a_child_budget_over_the_parents_remaining_is_refused() {
    let mut w = orchestrated();
    let err = w
        .spawn(
            &agent("orch"),
            "dev",
            Role::Developer,
            Some("orch"),
            100_001,
        )
        .unwrap_err();
    assert_eq!(err.rule(), "budget_exceeded");
    assert!(err.to_string().contains("100000 tokens left"), "{err}");
    assert!(w.reg.agent(&id("dev")).is_none());
}

#[test]
fn the_global_agent_limit_holds() {
    let mut w = World::new(Limits {
        max_agents: 2,
        token_pool: 1_000,
        max_parallel_groups: None,
    });
    w.spawn(&Principal::Operator, "a", Role::Orchestrator, None, 10)
        .unwrap();
    w.spawn(&Principal::Operator, "b", Role::Orchestrator, None, 10)
        .unwrap();
    let err = w
        .spawn(&Principal::Operator, "c", Role::Orchestrator, None, 10)
        .unwrap_err();
    assert_eq!(err, Rejection::AgentLimitReached { live: 2, max: 2 });
    // Terminated agents no longer count.
    w.run(
        &Principal::Operator,
        Command::Terminate {
            agent: id("a"),
            subtree: false,
            failed: false,
            reason: None,
        },
    )
    .unwrap();
    w.spawn(&Principal::Operator, "c", Role::Orchestrator, None, 10)
        .unwrap();
}

#[test]
fn max_parallel_agents_limits_live_children() {
    let mut w = orchestrated();
    let mut auth = Authority::default_for(&Role::Developer);
    auth.max_parallel_agents = 1;
    w.run(
        &agent("orch"),
        Command::Spawn(SpawnRequest {
            id: id("lead"),
            role: Role::Developer,
            capabilities: vec![],
            parent_id: Some(id("orch")),
            token_budget: 100,
            authority: Some(auth),
            public_key: None,
        }),
    )
    .unwrap();
    w.heartbeat("lead");
    w.spawn(&agent("lead"), "c1", Role::Developer, Some("lead"), 10)
        .unwrap();
    let err = w
        .spawn(&agent("lead"), "c2", Role::Developer, Some("lead"), 10)
        .unwrap_err();
    assert_eq!(
        err,
        Rejection::ParentAtCapacity {
            parent: id("lead"),
            children: 1,
            max: 1
        }
    );
    w.run(
        &agent("lead"),
        Command::Terminate {
            agent: id("c1"),
            subtree: false,
            failed: false,
            reason: None,
        },
    )
    .unwrap();
    w.spawn(&agent("lead"), "c2", Role::Developer, Some("lead"), 10)
        .unwrap();
}

#[test]
fn a_parent_that_may_not_spawn_is_refused() {
    let mut w = orchestrated();
    let mut auth = Authority::default_for(&Role::Qa);
    auth.can_spawn_agents = false;
    w.run(
        &agent("orch"),
        Command::Spawn(SpawnRequest {
            id: id("qa"),
            role: Role::Qa,
            capabilities: vec![],
            parent_id: Some(id("orch")),
            token_budget: 100,
            authority: Some(auth),
            public_key: None,
        }),
    )
    .unwrap();
    let err = w
        .spawn(&agent("qa"), "helper", Role::Support, Some("qa"), 10)
        .unwrap_err();
    assert_eq!(err, Rejection::SpawnNotAllowed { parent: id("qa") });
}

#[test]
fn spawn_agent_forbidden_blocks_spawning() {
    let mut w = orchestrated();
    let mut auth = Authority::default_for(&Role::Developer);
    auth.forbidden_actions.insert("spawn_agent".into());
    w.run(
        &agent("orch"),
        Command::Spawn(SpawnRequest {
            id: id("dev"),
            role: Role::Developer,
            capabilities: vec![],
            parent_id: Some(id("orch")),
            token_budget: 100,
            authority: Some(auth),
            public_key: None,
        }),
    )
    .unwrap();
    let err = w
        .spawn(&agent("dev"), "sub", Role::Developer, Some("dev"), 10)
        .unwrap_err();
    assert_eq!(err.rule(), "forbidden_action");
    let events = w.reg.refusal_events(
        &agent("dev"),
        &Command::Spawn(SpawnRequest {
            id: id("sub"),
            role: Role::Developer,
            capabilities: vec![],
            parent_id: Some(id("dev")),
            token_budget: 10,
            authority: None,
            public_key: None,
        }),
        &err,
        T0,
    );
    assert!(
        matches!(&events[..], [Event::AuthorityDenied { action, .. }] if action == "spawn_agent")
    );
    assert!(events[0].is_governance());
}

#[test]
fn a_child_asking_for_more_authority_than_its_parent_is_refused() {
    let mut w = orchestrated();
    w.run(
        &agent("orch"),
        Command::Spawn(SpawnRequest {
            id: id("dev"),
            role: Role::Developer,
            capabilities: vec![],
            parent_id: Some(id("orch")),
            token_budget: 100,
            authority: Some(Authority {
                max_parallel_agents: 2,
                can_spawn_agents: true,
                can_override_decisions: false,
                scoped_to_phases: PhaseScope::Only([Phase::FOUNDATION, Phase::DEVELOPMENT].into()),
                forbidden_actions: ["deploy_production".to_string()].into(),
            }),
            public_key: None,
        }),
    )
    .unwrap();
    let mut greedy = w.get("dev").authority.clone();
    greedy.scoped_to_phases = PhaseScope::All;
    let err = w
        .run(
            &agent("dev"),
            Command::Spawn(SpawnRequest {
                id: id("sub"),
                role: Role::Developer,
                capabilities: vec![],
                parent_id: Some(id("dev")),
                token_budget: 10,
                authority: Some(greedy),
                public_key: None,
            }),
        )
        .unwrap_err();
    assert_eq!(err.field(), Some("scoped_to_phases"));
    assert_eq!(err.rule(), "authority_exceeds_parent");
}

#[test]
fn another_agent_cannot_spawn_under_a_parent_it_does_not_oversee() {
    let mut w = orchestrated();
    w.spawn(&agent("orch"), "a", Role::Developer, Some("orch"), 10)
        .unwrap();
    w.spawn(&agent("orch"), "b", Role::Developer, Some("orch"), 10)
        .unwrap();
    let err = w
        .spawn(&agent("a"), "x", Role::Developer, Some("b"), 1)
        .unwrap_err();
    assert_eq!(err.rule(), "forbidden_action");
}

#[test]
fn duplicate_ids_are_refused() {
    let mut w = orchestrated();
    let err = w
        .spawn(&Principal::Operator, "orch", Role::Orchestrator, None, 1)
        .unwrap_err();
    assert_eq!(err, Rejection::AgentExists { id: id("orch") });
}

#[test]
fn terminating_returns_unused_tokens_to_the_nearest_live_ancestor() {
    let mut w = orchestrated();
    w.spawn(
        &agent("orch"),
        "lead",
        Role::Developer,
        Some("orch"),
        10_000,
    )
    .unwrap();
    w.heartbeat("lead");
    w.spawn(&agent("lead"), "dev", Role::Developer, Some("lead"), 4_000)
        .unwrap();
    w.heartbeat("dev");
    let r = ReservationId::new("r1").unwrap();
    w.run(
        &agent("dev"),
        Command::Reserve {
            agent: id("dev"),
            reservation: r.clone(),
            amount: 1_500,
            mission: None,
            mission_budget: None,
        },
    )
    .unwrap();
    w.run(
        &agent("dev"),
        Command::Commit {
            agent: id("dev"),
            reservation: r,
            used: Usage::total(1_000),
        },
    )
    .unwrap();
    // The lead ends first: the developer is orphaned and keeps running.
    let events = w
        .run(
            &agent("orch"),
            Command::Terminate {
                agent: id("lead"),
                subtree: false,
                failed: false,
                reason: None,
            },
        )
        .unwrap();
    let orphans = events.iter().find_map(|e| match e {
        Event::Terminated { orphans, .. } => Some(orphans.clone()),
        _ => None,
    });
    assert_eq!(orphans, Some(vec![id("dev")]));
    assert_eq!(w.get("orch").budget.allocated, 90_000 + 6_000);
    // The developer's unused 3,000 skip its dead parent and go to the orchestrator.
    let events = w
        .run(
            &agent("orch"),
            Command::Terminate {
                agent: id("dev"),
                subtree: false,
                failed: false,
                reason: None,
            },
        )
        .unwrap();
    assert!(events.iter().any(|e| matches!(e, Event::Terminated { unused_returned: 3_000, returned_to: BudgetHolder::Agent(a), .. } if a == &id("orch"))));
    assert_eq!(w.get("orch").budget.allocated, 99_000);
    assert_eq!(
        w.get("dev").budget,
        Budget {
            used: 1_000,
            ..Budget::new(1_000)
        }
    );
    assert!(w.conserved());
}

#[test]
fn terminating_a_subtree_ends_the_deepest_first_and_returns_everything_up() {
    let mut w = orchestrated();
    w.spawn(
        &agent("orch"),
        "lead",
        Role::Developer,
        Some("orch"),
        10_000,
    )
    .unwrap();
    w.spawn(
        &agent("orch"),
        "lead2",
        Role::Developer,
        Some("orch"),
        1_000,
    )
    .unwrap();
    w.heartbeat("lead");
    w.spawn(&agent("lead"), "dev", Role::Developer, Some("lead"), 4_000)
        .unwrap();
    w.run(
        &agent("orch"),
        Command::Terminate {
            agent: id("lead"),
            subtree: true,
            failed: false,
            reason: Some("done".into()),
        },
    )
    .unwrap();
    assert_eq!(w.get("dev").status, AgentStatus::Completed);
    assert_eq!(w.get("lead").status, AgentStatus::Completed);
    assert_eq!(w.get("lead2").status, AgentStatus::Pending);
    assert_eq!(w.get("orch").budget.allocated, 99_000);
    assert_eq!(w.get("orch").live_children, 1);
    assert_eq!(w.reg.pool().live_agents, 2);
    assert!(w.conserved());
}

#[test]
fn a_root_returns_its_tokens_to_the_pool() {
    let mut w = orchestrated();
    w.run(
        &Principal::Operator,
        Command::Terminate {
            agent: id("orch"),
            subtree: true,
            failed: false,
            reason: None,
        },
    )
    .unwrap();
    assert_eq!(w.reg.pool().free, 200_000);
    assert_eq!(w.reg.pool().live_agents, 0);
}

#[test]
fn only_the_agent_its_ancestors_or_the_operator_terminate_it() {
    let mut w = orchestrated();
    w.spawn(&agent("orch"), "a", Role::Developer, Some("orch"), 10)
        .unwrap();
    w.spawn(&agent("orch"), "b", Role::Developer, Some("orch"), 10)
        .unwrap();
    let err = w
        .run(
            &agent("a"),
            Command::Terminate {
                agent: id("b"),
                subtree: false,
                failed: false,
                reason: None,
            },
        )
        .unwrap_err();
    assert_eq!(err.rule(), "forbidden_action");
    w.run(
        &agent("b"),
        Command::Terminate {
            agent: id("b"),
            subtree: false,
            failed: false,
            reason: None,
        },
    )
    .unwrap();
    let err = w
        .run(
            &agent("orch"),
            Command::Terminate {
                agent: id("b"),
                subtree: false,
                failed: false,
                reason: None,
            },
        )
        .unwrap_err();
    assert_eq!(err.rule(), "agent_not_live");
}

#[test]
fn heartbeats_activate_and_missing_ones_fail_the_agent_and_release_its_task() {
    let mut w = orchestrated();
    w.spawn(&agent("orch"), "dev", Role::Developer, Some("orch"), 1_000)
        .unwrap();
    w.heartbeat("dev");
    assert_eq!(w.get("dev").status, AgentStatus::Active);
    let task = MissionId::new("M-1").unwrap();
    w.run(
        &agent("orch"),
        Command::AllocateTask {
            agent: id("dev"),
            task: task.clone(),
            phase: None,
        },
    )
    .unwrap();
    w.now = T0.plus_millis(10_000);
    w.heartbeat("orch");
    w.now = T0.plus_millis(31_000);
    let events = w
        .run(
            &Principal::Operator,
            Command::ExpireHeartbeats { window_ms: 30_000 },
        )
        .unwrap();
    assert_eq!(w.get("dev").status, AgentStatus::Failed);
    assert_eq!(
        w.get("dev").status_reason.as_deref(),
        Some("heartbeat_missed")
    );
    assert_eq!(
        w.get("orch").status,
        AgentStatus::Active,
        "heard from 21 s ago"
    );
    assert!(events.iter().any(
        |e| matches!(e, Event::TaskReleased { task_id, agent_lost: true, .. } if task_id == &task)
    ));
    assert!(w.conserved());
    // A dead agent's heartbeat is refused.
    let err = w
        .run(
            &agent("dev"),
            Command::Heartbeat {
                agent: id("dev"),
                context: None,
            },
        )
        .unwrap_err();
    assert_eq!(err.rule(), "agent_not_live");
}

#[test]
fn only_an_agent_sends_its_own_heartbeat() {
    let mut w = orchestrated();
    w.spawn(&agent("orch"), "dev", Role::Developer, Some("orch"), 1_000)
        .unwrap();
    let err = w
        .run(
            &agent("orch"),
            Command::Heartbeat {
                agent: id("dev"),
                context: None,
            },
        )
        .unwrap_err();
    assert_eq!(err.rule(), "forbidden_action");
}

#[test]
fn allocation_needs_an_available_agent_in_scope() {
    let mut w = orchestrated();
    w.spawn(&agent("orch"), "dev", Role::Developer, Some("orch"), 1_000)
        .unwrap();
    let m1 = MissionId::new("M-1").unwrap();
    let err = w
        .run(
            &agent("orch"),
            Command::AllocateTask {
                agent: id("dev"),
                task: m1.clone(),
                phase: None,
            },
        )
        .unwrap_err();
    assert_eq!(
        err.rule(),
        "agent_not_available",
        "PENDING agents take no work"
    );
    w.heartbeat("dev");
    w.run(
        &agent("orch"),
        Command::AllocateTask {
            agent: id("dev"),
            task: m1.clone(),
            phase: Some(Phase::DEVELOPMENT),
        },
    )
    .unwrap();
    assert_eq!(w.get("dev").status, AgentStatus::Working);
    let m2 = MissionId::new("M-2").unwrap();
    let err = w
        .run(
            &agent("orch"),
            Command::AllocateTask {
                agent: id("dev"),
                task: m2.clone(),
                phase: None,
            },
        )
        .unwrap_err();
    assert_eq!(
        err,
        Rejection::AgentBusy {
            id: id("dev"),
            task: m1.clone()
        }
    );
    let err = w
        .run(
            &agent("orch"),
            Command::ReleaseTask {
                agent: id("dev"),
                task: Some(m2),
                allocated_at: None,
                reason: "x".into(),
            },
        )
        .unwrap_err();
    assert_eq!(err.rule(), "task_mismatch");
    w.run(
        &agent("orch"),
        Command::ReleaseTask {
            agent: id("dev"),
            task: Some(m1.clone()),
            allocated_at: Some(crate::Timestamp::from_millis(1)),
            reason: "late".into(),
        },
    )
    .unwrap_err();
    w.run(
        &agent("orch"),
        Command::ReleaseTask {
            agent: id("dev"),
            task: Some(m1),
            allocated_at: w.get("dev").assigned_at,
            reason: "done".into(),
        },
    )
    .unwrap();
    assert!(w.get("dev").is_available());
}

#[test]
fn allocation_outside_the_agents_phases_is_forbidden() {
    let mut w = orchestrated();
    let mut auth = Authority::default_for(&Role::Developer);
    auth.scoped_to_phases = PhaseScope::Only([Phase::FOUNDATION, Phase::DEVELOPMENT].into());
    w.run(
        &agent("orch"),
        Command::Spawn(SpawnRequest {
            id: id("dev"),
            role: Role::Developer,
            capabilities: vec![],
            parent_id: Some(id("orch")),
            token_budget: 10,
            authority: Some(auth),
            public_key: None,
        }),
    )
    .unwrap();
    w.heartbeat("dev");
    let err = w
        .run(
            &agent("orch"),
            Command::AllocateTask {
                agent: id("dev"),
                task: MissionId::new("M").unwrap(),
                phase: Some(Phase::DEPLOYMENT),
            },
        )
        .unwrap_err();
    assert_eq!(err.rule(), "forbidden_action");
    assert!(err.to_string().contains("phase 7"), "{err}");
}

#[test]
fn a_paused_agent_gets_no_new_work_and_resumes_where_it_was() {
    let mut w = orchestrated();
    w.spawn(&agent("orch"), "lead", Role::Developer, Some("orch"), 1_000)
        .unwrap();
    w.heartbeat("lead");
    w.spawn(&agent("lead"), "dev", Role::Developer, Some("lead"), 100)
        .unwrap();
    w.heartbeat("dev");
    let m = MissionId::new("M-1").unwrap();
    w.run(
        &agent("orch"),
        Command::AllocateTask {
            agent: id("dev"),
            task: m,
            phase: None,
        },
    )
    .unwrap();
    let events = w
        .run(
            &agent("orch"),
            Command::Pause {
                agent: id("lead"),
                reason: "over budget".into(),
                subtree: true,
            },
        )
        .unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::Paused { .. }))
            .count(),
        2
    );
    assert_eq!(w.get("dev").status, AgentStatus::Blocked);
    assert_eq!(w.get("lead").status_reason.as_deref(), Some("over budget"));
    let err = w
        .spawn(&agent("lead"), "x", Role::Developer, Some("lead"), 1)
        .unwrap_err();
    assert_eq!(err.rule(), "agent_paused");
    let err = w
        .run(
            &agent("lead"),
            Command::Reserve {
                agent: id("lead"),
                reservation: ReservationId::new("r").unwrap(),
                amount: 1,
                mission: None,
                mission_budget: None,
            },
        )
        .unwrap_err();
    assert_eq!(err.rule(), "agent_paused");
    assert!(w.reg.authorize(&id("lead"), "run_tests", None).is_err());
    // A paused agent cannot resume itself; its overseer can.
    assert_eq!(
        w.run(
            &agent("dev"),
            Command::Resume {
                agent: id("dev"),
                subtree: false
            }
        )
        .unwrap_err()
        .rule(),
        "forbidden_action"
    );
    w.run(
        &agent("orch"),
        Command::Resume {
            agent: id("lead"),
            subtree: true,
        },
    )
    .unwrap();
    assert_eq!(
        w.get("dev").status,
        AgentStatus::Working,
        "resumes with its task"
    );
    assert_eq!(w.get("lead").status, AgentStatus::Active);
}

#[test]
fn set_status_follows_the_table() {
    let mut w = orchestrated();
    w.spawn(&agent("orch"), "dev", Role::Developer, Some("orch"), 10)
        .unwrap();
    let dev = agent("dev");
    let set = |w: &mut World, status, reason: Option<&str>| {
        w.run(
            &dev,
            Command::SetStatus {
                agent: id("dev"),
                status,
                reason: reason.map(String::from),
            },
        )
    };
    assert_eq!(
        set(&mut w, AgentStatus::Idle, None).unwrap_err().rule(),
        "illegal_agent_transition",
        "PENDING -> IDLE"
    );
    set(&mut w, AgentStatus::Active, None).unwrap();
    set(&mut w, AgentStatus::Idle, None).unwrap();
    assert_eq!(
        set(&mut w, AgentStatus::Blocked, None).unwrap_err().field(),
        Some("reason")
    );
    set(&mut w, AgentStatus::Blocked, Some("waiting on API")).unwrap();
    for s in [
        AgentStatus::Working,
        AgentStatus::Completed,
        AgentStatus::Failed,
        AgentStatus::Pending,
    ] {
        assert_eq!(
            set(&mut w, s, None).unwrap_err().field(),
            Some("status"),
            "{s}"
        );
    }
}

#[test]
fn reservations_charge_agent_and_mission_and_refuse_with_figures() {
    let mut w = orchestrated();
    let m = MissionId::new("M-1").unwrap();
    let r = |s: &str| ReservationId::new(s).unwrap();
    let orch = agent("orch");
    w.run(
        &orch,
        Command::Reserve {
            agent: id("orch"),
            reservation: r("a"),
            amount: 600,
            mission: Some(m.clone()),
            mission_budget: Some(1_000),
        },
    )
    .unwrap();
    let err = w
        .run(
            &orch,
            Command::Reserve {
                agent: id("orch"),
                reservation: r("b"),
                amount: 500,
                mission: Some(m.clone()),
                mission_budget: None,
            },
        )
        .unwrap_err();
    assert_eq!(
        err,
        Rejection::BudgetExceeded {
            field: "amount",
            scope: "mission M-1".into(),
            remaining: 400,
            requested: 500
        }
    );
    let events = w.reg.refusal_events(
        &orch,
        &Command::Reserve {
            agent: id("orch"),
            reservation: r("b"),
            amount: 500,
            mission: Some(m.clone()),
            mission_budget: None,
        },
        &err,
        T0,
    );
    assert!(matches!(
        &events[..],
        [Event::BudgetExceeded {
            mission_id: Some(_),
            requested: 500,
            remaining: 400,
            ..
        }]
    ));
    let err = w
        .run(
            &orch,
            Command::Reserve {
                agent: id("orch"),
                reservation: r("c"),
                amount: 100_000,
                mission: None,
                mission_budget: None,
            },
        )
        .unwrap_err();
    assert_eq!(
        err,
        Rejection::BudgetExceeded {
            field: "amount",
            scope: "agent orch".into(),
            remaining: 99_400,
            requested: 100_000
        }
    );
    assert_eq!(
        w.run(
            &orch,
            Command::Reserve {
                agent: id("orch"),
                reservation: r("a"),
                amount: 1,
                mission: None,
                mission_budget: None
            }
        )
        .unwrap_err(),
        Rejection::ReservationConflict {
            id: r("a"),
            held: 600,
            requested: 1
        }
    );
    // The same reserve again (its reply lost) is answered as the first, and changes
    // nothing.
    let before = w.reg.agent(&id("orch")).unwrap().budget;
    let again = Command::Reserve {
        agent: id("orch"),
        reservation: r("a"),
        amount: 600,
        mission: Some(m.clone()),
        mission_budget: None,
    };
    assert_eq!(w.reg.decide(&orch, &again, T0), Ok(Vec::new()));
    assert_eq!(w.reg.agent(&id("orch")).unwrap().budget, before);
    let elsewhere = Command::Reserve {
        agent: id("orch"),
        reservation: r("a"),
        amount: 600,
        mission: None,
        mission_budget: None,
    };
    assert_eq!(
        w.reg.decide(&orch, &elsewhere, T0).unwrap_err().field(),
        Some("amount")
    );
    assert_eq!(
        w.run(
            &orch,
            Command::Reserve {
                agent: id("orch"),
                reservation: r("z"),
                amount: 0,
                mission: None,
                mission_budget: None
            }
        )
        .unwrap_err()
        .field(),
        Some("amount")
    );
    assert_eq!(
        w.run(
            &orch,
            Command::Reserve {
                agent: id("orch"),
                reservation: r("q"),
                amount: 1,
                mission: Some(MissionId::new("nope").unwrap()),
                mission_budget: None
            }
        )
        .unwrap_err()
        .rule(),
        "unknown_mission"
    );
    // Commit what was used; the rest of the reservation is freed.
    w.run(
        &orch,
        Command::Commit {
            agent: id("orch"),
            reservation: r("a"),
            used: Usage::total(450),
        },
    )
    .unwrap();
    let o = w.get("orch");
    assert_eq!((o.budget.used, o.budget.reserved), (450, 0));
    let l = w.reg.ledger(&m).unwrap();
    assert_eq!((l.used, l.reserved, l.remaining()), (450, 0, 550));
    assert_eq!(
        w.run(
            &orch,
            Command::Commit {
                agent: id("orch"),
                reservation: r("a"),
                used: Usage::total(1)
            }
        )
        .unwrap_err()
        .rule(),
        "unknown_reservation"
    );
    w.run(
        &orch,
        Command::Reserve {
            agent: id("orch"),
            reservation: r("d"),
            amount: 10,
            mission: None,
            mission_budget: None,
        },
    )
    .unwrap();
    w.run(
        &orch,
        Command::Release {
            agent: id("orch"),
            reservation: r("d"),
        },
    )
    .unwrap();
    assert_eq!(w.get("orch").budget.reserved, 0);
    assert!(w.conserved());
}

#[test]
fn spend_over_a_reservation_is_recorded_while_the_budget_covers_it() {
    let mut w = World::safe();
    w.spawn(&Principal::Operator, "a", Role::Developer, None, 100)
        .unwrap();
    let r = |s: &str| ReservationId::new(s).unwrap();
    let a = agent("a");
    w.run(
        &a,
        Command::Reserve {
            agent: id("a"),
            reservation: r("x"),
            amount: 50,
            mission: None,
            mission_budget: None,
        },
    )
    .unwrap();
    let err = w
        .run(
            &a,
            Command::Commit {
                agent: id("a"),
                reservation: r("x"),
                used: Usage::total(101),
            },
        )
        .unwrap_err();
    assert_eq!(err.rule(), "budget_exceeded");
    w.run(
        &a,
        Command::Commit {
            agent: id("a"),
            reservation: r("x"),
            used: Usage::total(100),
        },
    )
    .unwrap();
    assert_eq!(w.get("a").budget.remaining(), 0);
}

#[test]
fn a_reserve_delivered_again_after_its_commit_is_not_made_twice() {
    let mut w = orchestrated();
    let orch = agent("orch");
    let r = ReservationId::new("once").unwrap();
    let reserve = |amount| Command::Reserve {
        agent: id("orch"),
        reservation: r.clone(),
        amount,
        mission: None,
        mission_budget: None,
    };
    w.run(&orch, reserve(400)).unwrap();
    w.run(
        &orch,
        Command::Commit {
            agent: id("orch"),
            reservation: r.clone(),
            used: Usage::total(300),
        },
    )
    .unwrap();
    let before = w.get("orch").budget;
    // The fault suite saw this: the reserve came again after the commit (a retry whose
    // first attempt had landed), and a second reservation was made.
    assert_eq!(w.reg.decide(&orch, &reserve(400), T0), Ok(Vec::new()));
    assert_eq!(w.get("orch").budget, before);
    assert_eq!(w.get("orch").reservation(&r).map(|x| x.amount), Some(400));
    assert_eq!(
        w.reg.decide(&orch, &reserve(401), T0).unwrap_err().rule(),
        "reservation_conflict"
    );
    // Only the last few are remembered.
    for n in 0..SETTLED_KEPT {
        let other = ReservationId::new(format!("r{n}")).unwrap();
        w.run(
            &orch,
            Command::Reserve {
                agent: id("orch"),
                reservation: other.clone(),
                amount: 1,
                mission: None,
                mission_budget: None,
            },
        )
        .unwrap();
        w.run(
            &orch,
            Command::Release {
                agent: id("orch"),
                reservation: other,
            },
        )
        .unwrap();
    }
    assert_eq!(w.get("orch").settled_reservations.len(), SETTLED_KEPT);
    assert!(w.get("orch").reservation(&r).is_none());
}

#[test]
fn a_commit_may_split_input_and_output_tokens() {
    let mut w = orchestrated();
    let orch = agent("orch");
    let r = |s: &str| ReservationId::new(s).unwrap();
    for name in ["a", "b", "c"] {
        w.run(
            &orch,
            Command::Reserve {
                agent: id("orch"),
                reservation: r(name),
                amount: 100,
                mission: None,
                mission_budget: None,
            },
        )
        .unwrap();
    }
    let commit_to = |name: &str, used| Command::Commit {
        agent: id("orch"),
        reservation: r(name),
        used,
    };
    let commit = |used| commit_to("a", used);
    for (bad, field) in [
        (Usage::default(), "used"),
        (
            Usage {
                used: Some(31),
                ..Usage::split(10, 20)
            },
            "used",
        ),
        (Usage::split(u64::MAX, 1), "output_tokens"),
    ] {
        let e = w.run(&orch, commit(bad)).unwrap_err();
        assert_eq!(e.field(), Some(field), "{bad:?}: {e}");
    }
    let events = w.run(&orch, commit(Usage::split(30, 12))).unwrap();
    assert!(matches!(
        events[..],
        [Event::TokensCommitted {
            tokens: 42,
            input_tokens: 30,
            output_tokens: 12,
            ..
        }]
    ));
    let agreeing = Usage {
        used: Some(7),
        ..Usage::split(5, 2)
    };
    w.run(&orch, commit_to("b", agreeing)).unwrap();
    // One number still works, and counts in neither split.
    w.run(&orch, commit_to("c", Usage::total(100))).unwrap();
    let b = w.get("orch").budget;
    assert_eq!((b.used, b.input_tokens, b.output_tokens), (149, 35, 14));
    let stats = w.reg.stats(T0, 0.0).tokens;
    assert_eq!(
        (stats.used, stats.input_tokens, stats.output_tokens),
        (149, 35, 14)
    );
}

#[test]
fn reallocation_stays_inside_the_orchestrators_subtree() {
    let mut w = orchestrated();
    w.spawn(&agent("orch"), "a", Role::Developer, Some("orch"), 1_000)
        .unwrap();
    w.spawn(&agent("orch"), "b", Role::Developer, Some("orch"), 1_000)
        .unwrap();
    w.spawn(
        &Principal::Operator,
        "stranger",
        Role::Developer,
        None,
        1_000,
    )
    .unwrap();
    let orch = agent("orch");
    let events = w
        .run(
            &orch,
            Command::Reallocate {
                from: id("a"),
                to: id("b"),
                amount: 400,
            },
        )
        .unwrap();
    assert!(events.iter().any(|e| e.is_governance()));
    assert_eq!(
        (w.get("a").budget.allocated, w.get("b").budget.allocated),
        (600, 1_400)
    );
    let err = w
        .run(
            &orch,
            Command::Reallocate {
                from: id("a"),
                to: id("stranger"),
                amount: 1,
            },
        )
        .unwrap_err();
    assert_eq!(err.rule(), "forbidden_action");
    let err = w
        .run(
            &agent("a"),
            Command::Reallocate {
                from: id("a"),
                to: id("b"),
                amount: 1,
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("only orchestrators"), "{err}");
    let err = w
        .run(
            &orch,
            Command::Reallocate {
                from: id("a"),
                to: id("b"),
                amount: 601,
            },
        )
        .unwrap_err();
    assert_eq!(err.rule(), "budget_exceeded");
    w.run(
        &Principal::Operator,
        Command::Reallocate {
            from: id("stranger"),
            to: id("a"),
            amount: 10,
        },
    )
    .unwrap();
    assert!(w.conserved());
}

#[test]
fn authorize_checks_forbidden_actions_and_phases() {
    let mut w = orchestrated();
    let auth = Authority {
        max_parallel_agents: 4,
        can_spawn_agents: true,
        can_override_decisions: false,
        scoped_to_phases: PhaseScope::Only([Phase::FOUNDATION, Phase::DEVELOPMENT].into()),
        forbidden_actions: ["delete_database", "merge_main_branch", "deploy_production"]
            .map(String::from)
            .into(),
    };
    w.run(
        &agent("orch"),
        Command::Spawn(SpawnRequest {
            id: id("dev"),
            role: Role::Developer,
            capabilities: vec![],
            parent_id: Some(id("orch")),
            token_budget: 10,
            authority: Some(auth),
            public_key: None,
        }),
    )
    .unwrap();
    let dev = id("dev");
    assert!(w.reg.authorize(&dev, "deploy_production", None).is_err());
    assert!(
        w.reg
            .authorize(&dev, "write_code", Some(Phase::DEVELOPMENT))
            .is_ok()
    );
    assert!(
        w.reg
            .authorize(&dev, "write_code", Some(Phase::TESTING))
            .is_err()
    );
    assert!(w.reg.authorize(&dev, "override_decision", None).is_err());
    assert!(
        w.reg
            .authorize(&id("orch"), "override_decision", None)
            .is_ok()
    );
    assert_eq!(
        w.reg.authorize(&id("ghost"), "x", None).unwrap_err().rule(),
        "unknown_agent"
    );
}

#[test]
fn authorize_refuses_spawning_to_an_agent_that_may_not_spawn_and_nothing_else() {
    let mut w = orchestrated();
    let auth = Authority {
        can_spawn_agents: false,
        ..Authority::default_for(&Role::Developer)
    };
    w.run(
        &agent("orch"),
        Command::Spawn(SpawnRequest {
            id: id("intern"),
            role: Role::Developer,
            capabilities: vec![],
            parent_id: Some(id("orch")),
            token_budget: 10,
            authority: Some(auth),
            public_key: None,
        }),
    )
    .unwrap();
    let intern = id("intern");
    let refused = w.reg.authorize(&intern, "spawn_agent", None).unwrap_err();
    assert!(
        refused.to_string().contains("can_spawn_agents"),
        "{refused}"
    );
    assert!(w.reg.authorize(&intern, "send_request", None).is_ok());
    assert!(w.reg.authorize(&id("orch"), "spawn_agent", None).is_ok());
}

#[test]
fn find_available_filters_on_role_capability_and_status() {
    let mut w = orchestrated();
    for (name, role, caps) in [
        ("py", Role::Developer, vec!["python"]),
        ("rs", Role::Developer, vec!["rust", "python"]),
        ("qa", Role::Qa, vec![]),
    ] {
        w.run(
            &agent("orch"),
            Command::Spawn(SpawnRequest {
                id: id(name),
                role,
                capabilities: caps.into_iter().map(Capability::named).collect(),
                parent_id: Some(id("orch")),
                token_budget: 10,
                authority: None,
                public_key: None,
            }),
        )
        .unwrap();
    }
    w.heartbeat("py");
    w.heartbeat("rs");
    let q = AgentQuery {
        role: Some(Role::Developer),
        capabilities: vec!["python".into()],
        ..Default::default()
    };
    let names = |v: Vec<&AgentProfile>| v.into_iter().map(|a| a.id.to_string()).collect::<Vec<_>>();
    assert_eq!(names(w.reg.find(&q, true)), ["py", "rs"]);
    w.run(
        &agent("orch"),
        Command::AllocateTask {
            agent: id("py"),
            task: MissionId::new("M").unwrap(),
            phase: None,
        },
    )
    .unwrap();
    assert_eq!(names(w.reg.find(&q, true)), ["rs"]);
    let rust = AgentQuery {
        capabilities: vec!["rust".into(), "python".into()],
        ..Default::default()
    };
    assert_eq!(names(w.reg.find(&rust, false)), ["rs"]);
    let pending = AgentQuery {
        status: Some(AgentStatus::Pending),
        ..Default::default()
    };
    assert_eq!(names(w.reg.find(&pending, false)), ["qa"]);
}

#[test]
fn stats_match_the_seeds_figures() {
    let mut w = World::new(Limits {
        max_agents: 20,
        token_pool: 500_000,
        max_parallel_groups: None,
    });
    w.spawn(
        &Principal::Operator,
        "orch",
        Role::Orchestrator,
        None,
        100_000,
    )
    .unwrap();
    w.heartbeat("orch");
    for i in 0..7 {
        let name = format!("a{i}");
        w.spawn(&agent("orch"), &name, Role::Developer, Some("orch"), 1_000)
            .unwrap();
        if i < 2 {
            w.heartbeat(&name);
            w.run(
                &agent("orch"),
                Command::AllocateTask {
                    agent: id(&name),
                    task: MissionId::new(format!("M{i}")).unwrap(),
                    phase: None,
                },
            )
            .unwrap();
        }
    }
    w.run(
        &agent("orch"),
        Command::Heartbeat {
            agent: id("orch"),
            context: Some(ContextWindow {
                window_tokens: 100,
                tokens_in_context: 85,
            }),
        },
    )
    .unwrap();
    let s = w.reg.stats(w.now, 0.003);
    assert_eq!((s.total_agents, s.active_agents), (8, 3));
    assert!((s.capacity - 0.4).abs() < 1e-9);
    assert_eq!(s.by_role["developer"], 7);
    assert_eq!(s.by_status[&AgentStatus::Working], 2);
    assert_eq!(s.context_window_utilization, Some(0.85));
    assert!((s.parallelization_efficiency.current - 0.1).abs() < 1e-9);
    assert_eq!(s.tokens.pool_free, 400_000);
}

#[test]
fn efficiency_is_time_weighted() {
    let mut w = World::new(Limits {
        max_agents: 2,
        token_pool: 100,
        max_parallel_groups: None,
    });
    w.spawn(&Principal::Operator, "a", Role::Developer, None, 10)
        .unwrap();
    w.heartbeat("a");
    w.run(
        &Principal::Operator,
        Command::AllocateTask {
            agent: id("a"),
            task: MissionId::new("M").unwrap(),
            phase: None,
        },
    )
    .unwrap();
    w.run(&Principal::Operator, Command::SampleEfficiency)
        .unwrap();
    w.now = T0.plus_millis(1_000);
    // Half the agents worked for the whole second.
    let avg = w.reg.stats(w.now, 0.0).parallelization_efficiency.average;
    assert!((avg - 0.5).abs() < 1e-9, "{avg}");
}

#[test]
fn limits_change_moves_the_pool_but_never_below_what_agents_hold() {
    let mut w = orchestrated();
    let bigger = Limits {
        token_pool: 300_000,
        ..*w.reg.limits()
    };
    let pool = w.reg.set_limits(bigger).unwrap().unwrap();
    assert_eq!((pool.total, pool.free), (300_000, 200_000));
    let tiny = Limits {
        token_pool: 50_000,
        ..bigger
    };
    assert_eq!(
        w.reg.set_limits(tiny).unwrap_err().field(),
        Some("token_pool")
    );
}

// Boundaries and figures (found by mutation testing: each test pins one comparison).

#[test]
fn exactly_the_remaining_budget_can_be_spawned_reserved_and_moved() {
    let mut w = World::new(Limits {
        max_agents: 5,
        token_pool: 1_000,
        max_parallel_groups: None,
    });
    w.spawn(
        &Principal::Operator,
        "orch",
        Role::Orchestrator,
        None,
        1_000,
    )
    .unwrap();
    assert_eq!(w.reg.pool().free, 0);
    w.spawn(&agent("orch"), "a", Role::Developer, Some("orch"), 600)
        .unwrap();
    w.spawn(&agent("orch"), "b", Role::Developer, Some("orch"), 400)
        .unwrap();
    assert_eq!(w.get("orch").budget.remaining(), 0);
    let r = |s: &str| ReservationId::new(s).unwrap();
    let m = MissionId::new("M").unwrap();
    w.run(
        &agent("a"),
        Command::Reserve {
            agent: id("a"),
            reservation: r("x"),
            amount: 300,
            mission: Some(m),
            mission_budget: Some(300),
        },
    )
    .unwrap();
    w.run(
        &agent("a"),
        Command::Reserve {
            agent: id("a"),
            reservation: r("y"),
            amount: 300,
            mission: None,
            mission_budget: None,
        },
    )
    .unwrap();
    assert_eq!(w.get("a").budget.remaining(), 0);
    w.run(
        &agent("orch"),
        Command::Reallocate {
            from: id("b"),
            to: id("a"),
            amount: 400,
        },
    )
    .unwrap();
    assert_eq!(w.get("b").budget.remaining(), 0);
    assert!(w.conserved());
}

#[test]
fn commit_overrun_is_allowed_up_to_the_budget_and_refusals_report_the_true_figures() {
    let mut w = World::safe();
    w.spawn(&Principal::Operator, "a", Role::Developer, None, 100)
        .unwrap();
    let r = |s: &str| ReservationId::new(s).unwrap();
    let a = agent("a");
    let m = MissionId::new("M").unwrap();
    w.run(
        &a,
        Command::Reserve {
            agent: id("a"),
            reservation: r("x"),
            amount: 50,
            mission: Some(m.clone()),
            mission_budget: Some(80),
        },
    )
    .unwrap();
    // Over the reservation by exactly what is left of the mission (30): allowed.
    w.run(
        &a,
        Command::Commit {
            agent: id("a"),
            reservation: r("x"),
            used: Usage::total(80),
        },
    )
    .unwrap();
    assert_eq!(w.reg.ledger(&m).unwrap().remaining(), 0);
    w.run(
        &a,
        Command::Reserve {
            agent: id("a"),
            reservation: r("y"),
            amount: 10,
            mission: None,
            mission_budget: None,
        },
    )
    .unwrap();
    let err = w
        .run(
            &a,
            Command::Commit {
                agent: id("a"),
                reservation: r("y"),
                used: Usage::total(21),
            },
        )
        .unwrap_err();
    assert_eq!(
        err,
        Rejection::BudgetExceeded {
            field: "used",
            scope: "agent a".into(),
            remaining: 20,
            requested: 21
        }
    );
    let mut w = World::safe();
    w.spawn(&Principal::Operator, "b", Role::Developer, None, 1_000)
        .unwrap();
    let b = agent("b");
    w.run(
        &b,
        Command::Reserve {
            agent: id("b"),
            reservation: r("m"),
            amount: 5,
            mission: Some(m),
            mission_budget: Some(10),
        },
    )
    .unwrap();
    let err = w
        .run(
            &b,
            Command::Commit {
                agent: id("b"),
                reservation: r("m"),
                used: Usage::total(11),
            },
        )
        .unwrap_err();
    assert_eq!(
        err,
        Rejection::BudgetExceeded {
            field: "used",
            scope: "mission M".into(),
            remaining: 10,
            requested: 11
        }
    );
}

#[test]
fn releasing_a_mission_reservation_frees_the_mission_too() {
    let mut w = World::safe();
    w.spawn(&Principal::Operator, "a", Role::Developer, None, 100)
        .unwrap();
    let r = ReservationId::new("x").unwrap();
    let m = MissionId::new("M").unwrap();
    w.run(
        &agent("a"),
        Command::Reserve {
            agent: id("a"),
            reservation: r.clone(),
            amount: 40,
            mission: Some(m.clone()),
            mission_budget: Some(50),
        },
    )
    .unwrap();
    assert_eq!(w.reg.ledger(&m).unwrap().reserved, 40);
    w.run(
        &agent("a"),
        Command::Release {
            agent: id("a"),
            reservation: r,
        },
    )
    .unwrap();
    assert_eq!(w.reg.ledger(&m).unwrap().reserved, 0);
    assert_eq!(w.reg.ledgers().count(), 1);
}

#[test]
fn an_agent_heard_from_exactly_one_window_ago_is_still_alive() {
    let mut w = World::safe();
    w.spawn(&Principal::Operator, "a", Role::Developer, None, 1)
        .unwrap();
    w.now = T0.plus_millis(1_000);
    w.run(
        &Principal::Operator,
        Command::ExpireHeartbeats { window_ms: 1_000 },
    )
    .unwrap();
    assert!(w.get("a").is_live());
    w.now = T0.plus_millis(1_001);
    w.run(
        &Principal::Operator,
        Command::ExpireHeartbeats { window_ms: 1_000 },
    )
    .unwrap();
    assert_eq!(w.get("a").status, AgentStatus::Failed);
}

#[test]
fn pausing_a_subtree_passes_over_ended_agents() {
    let mut w = orchestrated();
    w.spawn(&agent("orch"), "lead", Role::Developer, Some("orch"), 100)
        .unwrap();
    w.spawn(&agent("lead"), "gone", Role::Developer, Some("lead"), 10)
        .unwrap();
    w.run(
        &agent("lead"),
        Command::Terminate {
            agent: id("gone"),
            subtree: false,
            failed: false,
            reason: None,
        },
    )
    .unwrap();
    w.run(
        &agent("orch"),
        Command::Pause {
            agent: id("lead"),
            reason: "hold".into(),
            subtree: true,
        },
    )
    .unwrap();
    assert_eq!(w.get("gone").status, AgentStatus::Completed);
    assert_eq!(w.get("lead").status, AgentStatus::Blocked);
}

#[test]
fn a_paused_agent_is_not_available_even_without_a_task() {
    let mut w = orchestrated();
    w.spawn(&agent("orch"), "dev", Role::Developer, Some("orch"), 10)
        .unwrap();
    w.heartbeat("dev");
    w.run(
        &agent("orch"),
        Command::Pause {
            agent: id("dev"),
            reason: "hold".into(),
            subtree: false,
        },
    )
    .unwrap();
    assert!(!w.get("dev").is_available());
    assert!(
        w.reg
            .find(&AgentQuery::default(), true)
            .iter()
            .all(|a| a.id != id("dev"))
    );
}

#[test]
fn refusals_name_their_target_and_their_kind() {
    let mut w = orchestrated();
    let mut auth = Authority::default_for(&Role::Qa);
    auth.can_spawn_agents = false;
    w.run(
        &agent("orch"),
        Command::Spawn(
            SpawnRequest::new(id("qa"), Role::Qa, 10)
                .parent(id("orch"))
                .authority(auth),
        ),
    )
    .unwrap();
    let cmd = Command::Spawn(SpawnRequest::new(id("sub"), Role::Qa, 1).parent(id("qa")));
    let err = w.reg.decide(&agent("qa"), &cmd, T0).unwrap_err();
    let events = w.reg.refusal_events(&agent("qa"), &cmd, &err, T0);
    assert!(
        matches!(&events[..], [Event::AuthorityDenied { action, target: Some(t), .. }] if action == "spawn_agent" && t == &id("sub"))
    );
    let wide = Authority {
        can_override_decisions: true,
        ..Authority::default_for(&Role::Developer)
    };
    let mut dev_auth = Authority::default_for(&Role::Developer);
    dev_auth.can_override_decisions = false;
    w.run(
        &agent("orch"),
        Command::Spawn(
            SpawnRequest::new(id("dev"), Role::Developer, 10)
                .parent(id("orch"))
                .authority(dev_auth),
        ),
    )
    .unwrap();
    let cmd = Command::Spawn(
        SpawnRequest::new(id("x"), Role::Developer, 1)
            .parent(id("dev"))
            .authority(wide),
    );
    let err = w.reg.decide(&agent("dev"), &cmd, T0).unwrap_err();
    let events = w.reg.refusal_events(&agent("dev"), &cmd, &err, T0);
    assert!(
        matches!(&events[..], [Event::AuthorityDenied { reason, .. }] if reason.contains("can_override_decisions"))
    );
    // An agent's own budget refused while a mission was named: the event names no mission.
    let cmd = Command::Reserve {
        agent: id("dev"),
        reservation: ReservationId::new("r").unwrap(),
        amount: 1_000,
        mission: Some(MissionId::new("M").unwrap()),
        mission_budget: Some(5_000),
    };
    let err = w.reg.decide(&agent("dev"), &cmd, T0).unwrap_err();
    let events = w.reg.refusal_events(&agent("dev"), &cmd, &err, T0);
    assert!(matches!(
        &events[..],
        [Event::BudgetExceeded {
            mission_id: None,
            agent_id: Some(_),
            ..
        }]
    ));
}

#[test]
fn a_forbidden_terminate_agent_blocks_terminating_even_ones_own_children() {
    let mut w = orchestrated();
    let mut auth = Authority::default_for(&Role::Developer);
    auth.forbidden_actions.insert("terminate_agent".into());
    w.run(
        &agent("orch"),
        Command::Spawn(
            SpawnRequest::new(id("lead"), Role::Developer, 100)
                .parent(id("orch"))
                .authority(auth),
        ),
    )
    .unwrap();
    w.heartbeat("lead");
    w.spawn(&agent("lead"), "dev", Role::Developer, Some("lead"), 10)
        .unwrap();
    let err = w
        .run(
            &agent("lead"),
            Command::Terminate {
                agent: id("dev"),
                subtree: false,
                failed: false,
                reason: None,
            },
        )
        .unwrap_err();
    assert_eq!(err.rule(), "forbidden_action");
}

#[test]
fn forbidden_action_names_are_checked_at_spawn() {
    let mut w = World::safe();
    let mut auth = Authority::default_for(&Role::Developer);
    auth.forbidden_actions.insert("Deploy Production".into());
    let err = w
        .run(
            &Principal::Operator,
            Command::Spawn(SpawnRequest::new(id("a"), Role::Developer, 1).authority(auth)),
        )
        .unwrap_err();
    assert_eq!(err.field(), Some("forbidden_actions"));
}

#[test]
fn list_filters_on_parent_and_authorize_knows_who_reallocates() {
    let mut w = orchestrated();
    w.spawn(&agent("orch"), "lead", Role::Developer, Some("orch"), 100)
        .unwrap();
    w.spawn(&agent("lead"), "dev", Role::Developer, Some("lead"), 10)
        .unwrap();
    let q = AgentQuery {
        parent_id: Some(id("lead")),
        ..Default::default()
    };
    let kids: Vec<String> = w
        .reg
        .find(&q, false)
        .iter()
        .map(|a| a.id.to_string())
        .collect();
    assert_eq!(kids, ["dev"]);
    assert!(
        w.reg
            .authorize(&id("orch"), "reallocate_budget", None)
            .is_ok()
    );
    assert!(
        w.reg
            .authorize(&id("lead"), "reallocate_budget", None)
            .is_err()
    );
    assert!(w.reg.authorize(&id("lead"), "spawn_agent", None).is_ok());
}

#[test]
fn efficiency_integrates_each_ratio_over_the_time_it_held() {
    let e = Efficiency::starting(T0);
    assert_eq!(e.average(T0), 0.0, "no time has passed");
    let e = e.sample(T0, 0.5);
    let e = e.sample(T0.plus_millis(1_000), 0.0);
    assert!((e.average(T0.plus_millis(2_000)) - 0.25).abs() < 1e-12);
    let e = e.sample(T0.plus_millis(2_000), 1.0);
    // 0.5 for 1 s, 0 for 1 s, 1.0 for 2 s, over 4 s.
    assert!((e.average(T0.plus_millis(4_000)) - 0.625).abs() < 1e-12);
}

#[test]
fn stats_add_up_tokens_roles_and_utilization_exactly() {
    let mut w = World::new(Limits {
        max_agents: 10,
        token_pool: 10_000,
        max_parallel_groups: None,
    });
    w.spawn(
        &Principal::Operator,
        "orch",
        Role::Orchestrator,
        None,
        4_000,
    )
    .unwrap();
    w.spawn(&agent("orch"), "a", Role::Developer, Some("orch"), 1_000)
        .unwrap();
    w.spawn(&agent("orch"), "b", Role::Qa, Some("orch"), 500)
        .unwrap();
    let r = |s: &str| ReservationId::new(s).unwrap();
    let m = MissionId::new("M").unwrap();
    w.run(
        &agent("a"),
        Command::Reserve {
            agent: id("a"),
            reservation: r("x"),
            amount: 300,
            mission: Some(m.clone()),
            mission_budget: Some(1_000),
        },
    )
    .unwrap();
    w.run(
        &agent("a"),
        Command::Commit {
            agent: id("a"),
            reservation: r("x"),
            used: Usage::total(200),
        },
    )
    .unwrap();
    w.run(
        &agent("b"),
        Command::Reserve {
            agent: id("b"),
            reservation: r("y"),
            amount: 50,
            mission: None,
            mission_budget: None,
        },
    )
    .unwrap();
    w.run(
        &agent("a"),
        Command::Heartbeat {
            agent: id("a"),
            context: Some(ContextWindow {
                window_tokens: 100,
                tokens_in_context: 90,
            }),
        },
    )
    .unwrap();
    w.run(
        &agent("b"),
        Command::Heartbeat {
            agent: id("b"),
            context: Some(ContextWindow {
                window_tokens: 100,
                tokens_in_context: 70,
            }),
        },
    )
    .unwrap();
    w.run(
        &agent("orch"),
        Command::Terminate {
            agent: id("b"),
            subtree: false,
            failed: false,
            reason: None,
        },
    )
    .unwrap();
    let s = w.reg.stats(w.now, 2.0);
    assert_eq!((s.total_agents, s.terminated_agents), (2, 1));
    assert_eq!(s.tokens.used, 200);
    assert_eq!(s.tokens.reserved, 0);
    // b's unused 500 went back to orch: orch 2,500 + 500, a 1,000 (200 of it spent).
    assert_eq!(s.tokens.allocated, 3_000 + 1_000);
    assert_eq!(s.tokens.remaining, 3_000 + 800);
    assert_eq!(s.tokens.pool_free, 6_000);
    assert_eq!(s.tokens.used_by_role.get("developer"), Some(&200));
    assert_eq!(s.tokens.used_by_mission.get(&m), Some(&200));
    assert_eq!(s.by_role.get("qa"), None, "terminated agents are not live");
    assert!((s.cost_usd - 0.4).abs() < 1e-12);
    assert_eq!(
        s.context_window_utilization,
        Some(0.9),
        "only live agents count"
    );
    assert!((s.capacity - 0.2).abs() < 1e-12);
}

#[test]
fn the_pool_can_shrink_to_exactly_what_agents_hold() {
    let p = Pool {
        total: 100,
        free: 40,
        live_agents: 2,
    };
    assert_eq!(
        p.resized(60).unwrap(),
        Pool {
            total: 60,
            free: 0,
            live_agents: 2
        }
    );
    assert!(p.resized(59).is_err());
}

#[test]
fn events_name_themselves_say_what_they_are_about_and_which_are_governance() {
    let mut w = orchestrated();
    let events = w
        .spawn(&agent("orch"), "dev", Role::Developer, Some("orch"), 10)
        .unwrap();
    let spawned = &events[0];
    assert_eq!((spawned.name(), spawned.about()), ("spawned", "dev"));
    assert!(spawned.is_governance());
    let events = w
        .run(
            &agent("orch"),
            Command::Pause {
                agent: id("dev"),
                reason: "r".into(),
                subtree: false,
            },
        )
        .unwrap();
    let paused = events.iter().find(|e| e.name() == "paused").unwrap();
    assert_eq!(paused.about(), "dev");
    assert!(!paused.is_governance());
    for e in &events {
        assert!(Event::NAMES.contains(&e.name()), "{}", e.name());
    }
    let denied = Event::AuthorityDenied {
        by: Principal::Operator,
        action: "x".into(),
        target: None,
        reason: "r".into(),
        at: T0,
    };
    assert_eq!(denied.about(), "operator");
    let moved = Event::BudgetReallocated {
        by: Principal::Operator,
        from: id("a"),
        to: id("b"),
        amount: 1,
        at: T0,
    };
    assert_eq!(moved.about(), "a");
    assert!(moved.is_governance());
}

#[test]
fn names_display_as_the_wire_spells_them() {
    assert_eq!(Action::SendCritical.to_string(), "send_critical");
    assert_eq!(Mode::Aggressive.to_string(), "aggressive");
    assert_eq!(AgentStatus::Working.to_string(), "WORKING");
    assert_eq!(
        Role::Specialist("market-analyst".into()).to_string(),
        "specialist:market-analyst"
    );
}

#[test]
fn clamping_never_grants_spawning_the_parent_lacks() {
    let mut parent = Authority::default_for(&Role::Developer);
    parent.can_spawn_agents = false;
    assert!(
        !Authority::default_for(&Role::Orchestrator)
            .clamp_to(&parent)
            .can_spawn_agents
    );
}

#[test]
fn a_snapshot_rebuilds_the_same_registry() {
    let mut w = orchestrated();
    w.spawn(&agent("orch"), "dev", Role::Developer, Some("orch"), 5_000)
        .unwrap();
    w.run(
        &agent("orch"),
        Command::Reserve {
            agent: id("orch"),
            reservation: ReservationId::new("r1").unwrap(),
            amount: 300,
            mission: Some(MissionId::new("M-1").unwrap()),
            mission_budget: Some(1_000),
        },
    )
    .unwrap();
    let mut records = Vec::new();
    records.extend(w.reg.records().iter().map(|r| (**r).clone()));
    let mut rebuilt = Registry::new(Mode::Safe.limits(), T0);
    for r in records {
        rebuilt.apply(r);
    }
    let ids = |r: &Registry| r.agents().cloned().collect::<Vec<_>>();
    let (mut a, mut b) = (ids(&w.reg), ids(&rebuilt));
    a.sort_by(|x, y| x.id.cmp(&y.id));
    b.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(a, b);
    assert_eq!(rebuilt.pool(), w.reg.pool());
    let m = MissionId::new("M-1").unwrap();
    assert_eq!(rebuilt.ledger(&m), w.reg.ledger(&m));
    assert_eq!(rebuilt.stats(T0, 0.0), w.reg.stats(T0, 0.0));
}
