//! Token budgets: reservations, commits, releases, reallocation, the pool.

use super::*;

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
