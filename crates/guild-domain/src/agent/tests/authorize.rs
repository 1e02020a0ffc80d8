//! The authority check `authorize`, and what refusals name.

use super::*;

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

        max_depth: None,
        max_descendants: None,
        max_spawns_per_minute: None,
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
    assert!(
        w.reg
            .authorize(&dev, ActionName::parse("deploy_production"), None)
            .is_err()
    );
    assert!(
        w.reg
            .authorize(
                &dev,
                ActionName::parse("write_code"),
                Some(Phase::DEVELOPMENT)
            )
            .is_ok()
    );
    assert!(
        w.reg
            .authorize(&dev, ActionName::parse("write_code"), Some(Phase::TESTING))
            .is_err()
    );
    assert!(
        w.reg
            .authorize(&dev, ActionName::parse("override_decision"), None)
            .is_err()
    );
    assert!(
        w.reg
            .authorize(&id("orch"), ActionName::parse("override_decision"), None)
            .is_ok()
    );
    assert_eq!(
        w.reg
            .authorize(&id("ghost"), ActionName::parse("x"), None)
            .unwrap_err()
            .rule(),
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
    let refused = w
        .reg
        .authorize(&intern, ActionName::parse("spawn_agent"), None)
        .unwrap_err();
    assert!(
        refused.to_string().contains("can_spawn_agents"),
        "{refused}"
    );
    assert!(
        w.reg
            .authorize(&intern, ActionName::parse("send_request"), None)
            .is_ok()
    );
    assert!(
        w.reg
            .authorize(&id("orch"), ActionName::parse("spawn_agent"), None)
            .is_ok()
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
            .authorize(&id("orch"), ActionName::parse("reallocate_budget"), None)
            .is_ok()
    );
    assert!(
        w.reg
            .authorize(&id("lead"), ActionName::parse("reallocate_budget"), None)
            .is_err()
    );
    assert!(
        w.reg
            .authorize(&id("lead"), ActionName::parse("spawn_agent"), None)
            .is_ok()
    );
}
