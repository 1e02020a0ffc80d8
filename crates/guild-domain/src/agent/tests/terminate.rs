//! Termination: who may, and where the unused tokens go.

use super::*;

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
