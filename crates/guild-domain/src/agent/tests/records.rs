//! Events, names as the wire spells them, and snapshots.

use super::*;

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

#[test]
fn governance_events_are_audited_by_the_decision_that_made_them() {
    use crate::audit::{AuditData, AuditKind};
    let w = orchestrated();
    let spawn = Command::Spawn(SpawnRequest {
        id: id("dev"),
        role: Role::Developer,
        capabilities: vec![],
        parent_id: Some(id("orch")),
        token_budget: 10,
        authority: None,
        public_key: None,
    });
    let effects = w.reg.decide(&agent("orch"), &spawn, w.now).unwrap();
    let audits: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Audit(a) => Some(a),
            _ => None,
        })
        .collect();
    let [a] = audits.as_slice() else {
        panic!("one audit record for one spawn: {effects:?}");
    };
    assert_eq!(a.kind, AuditKind::Spawn);
    assert_eq!((&a.actor, a.about.as_str()), (&agent("orch"), "dev"));
    assert!(
        matches!(&a.data, AuditData::Spawner(Event::Spawned { agent_id, .. }) if agent_id == &id("dev"))
    );
    // The audit record follows the event it keeps.
    let emitted = effects
        .iter()
        .position(|e| matches!(e, Effect::Emit(Event::Spawned { .. })));
    let audited = effects.iter().position(|e| matches!(e, Effect::Audit(_)));
    assert!(emitted < audited, "{effects:?}");

    // A refused spawn's denial is audited too; a pause is not governance.
    let denied = Event::AuthorityDenied {
        by: agent("dev"),
        action: "spawn_agent".into(),
        target: None,
        reason: "r".into(),
        at: T0,
    };
    assert_eq!(
        denied.audit(&agent("dev")).map(|a| a.kind),
        Some(AuditKind::Denial)
    );
    let paused = Event::Paused {
        agent_id: id("dev"),
        reason: "r".into(),
        by: Principal::Operator,
        at: T0,
    };
    assert_eq!(paused.audit(&Principal::Operator), None);
    assert_eq!(
        crate::agent::SpawnerEffect::announced(&Principal::Operator, [paused]).len(),
        1,
        "published, not audited"
    );
}
