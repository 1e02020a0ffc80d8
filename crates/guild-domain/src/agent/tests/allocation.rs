//! Allocating a task to an agent, and finding available agents.

use super::*;

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
