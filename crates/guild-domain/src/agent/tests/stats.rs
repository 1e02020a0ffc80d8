//! The registry's figures: counts, tokens, efficiency.

use super::*;

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
