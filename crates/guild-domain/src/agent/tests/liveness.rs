//! Heartbeats, pausing and resuming, and the status table.

use super::*;

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
            Command::ExpireHeartbeats {
                window_ms: 30_000,
                first_within_ms: 0,
            },
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
    assert!(
        w.reg
            .authorize(&id("lead"), ActionName::parse("run_tests"), None)
            .is_err()
    );
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
fn an_agent_heard_from_exactly_one_window_ago_is_still_alive() {
    let mut w = World::safe();
    w.spawn(&Principal::Operator, "a", Role::Developer, None, 1)
        .unwrap();
    w.now = T0.plus_millis(1_000);
    w.run(
        &Principal::Operator,
        Command::ExpireHeartbeats {
            window_ms: 1_000,
            first_within_ms: 0,
        },
    )
    .unwrap();
    assert!(w.get("a").is_live());
    w.now = T0.plus_millis(1_001);
    w.run(
        &Principal::Operator,
        Command::ExpireHeartbeats {
            window_ms: 1_000,
            first_within_ms: 0,
        },
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

/// Found by the fault suite (cluster mode): a spawn answered 4 s late (the journal's node
/// partitioned) left an agent failed by a 2 s window before its process had started.
#[test]
fn a_new_agent_has_its_own_window_for_the_first_heartbeat() {
    let mut w = World::safe();
    w.spawn(&Principal::Operator, "new", Role::Developer, None, 1)
        .unwrap();
    w.spawn(&Principal::Operator, "old", Role::Developer, None, 1)
        .unwrap();
    w.heartbeat("old");
    let sweep = Command::ExpireHeartbeats {
        window_ms: 1_000,
        first_within_ms: 5_000,
    };
    w.now = T0.plus_millis(4_000);
    w.run(&Principal::Operator, sweep.clone()).unwrap();
    assert!(w.get("new").is_live(), "within its first window");
    assert_eq!(w.get("old").status, AgentStatus::Failed, "past the window");
    w.now = T0.plus_millis(5_001);
    w.run(&Principal::Operator, sweep).unwrap();
    assert_eq!(w.get("new").status, AgentStatus::Failed);
    assert_eq!(
        w.get("new").status_reason.as_deref(),
        Some("heartbeat_missed")
    );
}
