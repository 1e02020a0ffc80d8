//! Spawning: the pool, a parent's budget and authority, the agent limits.

use super::*;

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
                max_depth: None,
                max_descendants: None,
                max_spawns_per_minute: None,
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
fn clamping_never_grants_spawning_the_parent_lacks() {
    let mut parent = Authority::default_for(&Role::Developer);
    parent.can_spawn_agents = false;
    assert!(
        !Authority::default_for(&Role::Orchestrator)
            .clamp_to(&parent)
            .can_spawn_agents
    );
}
