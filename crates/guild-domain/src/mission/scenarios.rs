//! Mission rules, one test per rule, against the pure board.

use serde_json::json;

use super::*;
use crate::mission::{DEFAULT_MAX_RETRIES, MAX_NAME_CHARS};
use crate::{AgentId, Effect, MissionId, Phase, Principal, Rejection, Timestamp};

const T0: Timestamp = Timestamp(1_000);

struct Plan {
    board: Board,
    now: Timestamp,
}

fn m(s: &str) -> MissionId {
    MissionId::new(s).unwrap()
}

fn dev() -> AgentId {
    AgentId::new("dev-1").unwrap()
}

impl Plan {
    fn new() -> Self {
        Self {
            board: Board::new(BoardConfig::default()),
            now: T0,
        }
    }

    fn run(&mut self, cmd: Command) -> Result<Vec<Event>, Rejection> {
        let effects = self.board.decide(&Principal::Operator, &cmd, self.now)?;
        let mut events = Vec::new();
        for e in effects {
            match e {
                Effect::Save(mission) => self.board.apply(mission),
                Effect::Emit(ev) => events.push(ev),
                Effect::Audit(_) => {}
            }
        }
        Ok(events)
    }

    fn create(
        &mut self,
        id: &str,
        phase: Phase,
        deps: &[(&str, Severity)],
    ) -> Result<Vec<Event>, Rejection> {
        let mut nm = NewMission::new(m(id), format!("mission {id}"), phase);
        nm.depends_on = deps
            .iter()
            .map(|(d, s)| Dependency {
                mission_id: m(d),
                severity: *s,
            })
            .collect();
        self.run(Command::Create(nm))
    }

    fn status(&self, id: &str) -> MissionStatus {
        self.board.mission(&m(id)).unwrap().status
    }

    fn start(&mut self, id: &str) -> Result<Vec<Event>, Rejection> {
        self.run(Command::Start {
            mission: m(id),
            agent: dev(),
        })
    }

    fn complete(&mut self, id: &str) -> Result<Vec<Event>, Rejection> {
        self.run(Command::Complete {
            mission: m(id),
            output: json!({"done": id}),
            quality_score: Some(0.9),
        })
    }

    fn fail(&mut self, id: &str, retry: bool) -> Result<Vec<Event>, Rejection> {
        self.run(Command::Fail {
            mission: m(id),
            reason: "API test failed".into(),
            retry,
            agent_lost: false,
        })
    }

    fn depend(&mut self, id: &str, on: &str) -> Result<Vec<Event>, Rejection> {
        self.run(Command::AddDependency {
            mission: m(id),
            on: m(on),
            severity: Severity::Hard,
        })
    }
}

fn ready_ids(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Ready { mission_id, .. } => Some(mission_id.to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_mission_without_dependencies_is_ready_at_once() {
    let mut p = Plan::new();
    let events = p.create("a", Phase::DEVELOPMENT, &[]).unwrap();
    assert_eq!(p.status("a"), MissionStatus::Ready);
    assert_eq!(ready_ids(&events), ["a"]);
    assert!(p.board.check_ready(&m("a")).unwrap());
}

#[test]
fn completing_a_dependency_pushes_readiness_to_dependents() {
    let mut p = Plan::new();
    p.create("a", Phase::RESEARCH, &[]).unwrap();
    p.create("b", Phase::RESEARCH, &[]).unwrap();
    p.create(
        "c",
        Phase::PLANNING,
        &[("a", Severity::Hard), ("b", Severity::Hard)],
    )
    .unwrap();
    assert_eq!(p.status("c"), MissionStatus::Pending);
    assert!(!p.board.check_ready(&m("c")).unwrap());
    p.start("a").unwrap();
    let events = p.complete("a").unwrap();
    assert!(ready_ids(&events).is_empty(), "c still waits on b");
    assert_eq!(
        p.board.mission(&m("c")).unwrap().waiting_on,
        [m("b")].into()
    );
    p.start("b").unwrap();
    let events = p.complete("b").unwrap();
    assert_eq!(ready_ids(&events), ["c"]);
    assert_eq!(
        p.board.mission(&m("b")).unwrap().output_data,
        json!({"done": "b"})
    );
}

#[test]
fn a_cycle_is_refused_with_its_path() {
    let mut p = Plan::new();
    p.create("a", Phase::DEVELOPMENT, &[]).unwrap();
    p.create("b", Phase::DEVELOPMENT, &[("a", Severity::Hard)])
        .unwrap();
    p.create("c", Phase::DEVELOPMENT, &[("b", Severity::Soft)])
        .unwrap();
    let err = p.depend("a", "c").unwrap_err();
    let Rejection::DependencyCycle { path } = &err else {
        panic!("{err}")
    };
    let names: Vec<_> = path.iter().map(|x| x.as_str()).collect();
    assert_eq!(names, ["a", "c", "b", "a"]);
    assert!(err.to_string().contains("a -> c -> b -> a"), "{err}");
    assert_eq!(
        p.board.mission(&m("a")).unwrap().depends_on,
        vec![],
        "nothing written"
    );
}

#[test]
fn self_and_duplicate_dependencies_are_refused() {
    let mut p = Plan::new();
    p.create("a", Phase::DEVELOPMENT, &[]).unwrap();
    p.create("b", Phase::DEVELOPMENT, &[("a", Severity::Hard)])
        .unwrap();
    assert_eq!(
        p.depend("a", "a").unwrap_err(),
        Rejection::SelfDependency { id: m("a") }
    );
    assert_eq!(p.depend("b", "a").unwrap_err().rule(), "dependency_exists");
    assert_eq!(p.depend("b", "zzz").unwrap_err().rule(), "unknown_mission");
    assert_eq!(
        p.create(
            "c",
            Phase::DEVELOPMENT,
            &[("a", Severity::Hard), ("a", Severity::Soft)]
        )
        .unwrap_err()
        .rule(),
        "dependency_exists"
    );
}

#[test]
fn a_new_dependency_sends_a_ready_mission_back_to_pending() {
    let mut p = Plan::new();
    p.create("a", Phase::DEVELOPMENT, &[]).unwrap();
    p.create("b", Phase::DEVELOPMENT, &[]).unwrap();
    p.depend("b", "a").unwrap();
    assert_eq!(p.status("b"), MissionStatus::Pending);
    p.run(Command::RemoveDependency {
        mission: m("b"),
        on: m("a"),
    })
    .unwrap();
    assert_eq!(p.status("b"), MissionStatus::Ready);
    assert_eq!(
        p.run(Command::RemoveDependency {
            mission: m("b"),
            on: m("a")
        })
        .unwrap_err()
        .rule(),
        "unknown_dependency"
    );
}

#[test]
fn dependencies_change_only_before_a_mission_starts() {
    let mut p = Plan::new();
    p.create("a", Phase::DEVELOPMENT, &[]).unwrap();
    p.create("b", Phase::DEVELOPMENT, &[]).unwrap();
    p.start("b").unwrap();
    assert_eq!(p.depend("b", "a").unwrap_err().rule(), "mission_started");
}

#[test]
fn the_fourth_failed_attempt_is_final_with_three_retries() {
    let mut p = Plan::new();
    p.create("a", Phase::DEVELOPMENT, &[]).unwrap();
    for attempt in 1..=3 {
        p.start("a").unwrap();
        let events = p.fail("a", true).unwrap();
        assert!(events.iter().any(|e| matches!(e, Event::AttemptFailed { attempt: n, will_retry: true, .. } if *n == attempt)));
        assert_eq!(p.status("a"), MissionStatus::Ready, "attempt {attempt}");
    }
    p.start("a").unwrap();
    let events = p.fail("a", true).unwrap();
    assert_eq!(p.status("a"), MissionStatus::Failed);
    assert!(events.iter().any(
        |e| matches!(e, Event::Failed { reason, .. } if reason.contains("gave up after 4 attempts"))
    ));
    let mission = p.board.mission(&m("a")).unwrap();
    assert_eq!((mission.attempts, mission.failures.len()), (4, 4));
}

#[test]
fn failing_without_retry_is_final_at_once() {
    let mut p = Plan::new();
    p.create("a", Phase::DEVELOPMENT, &[]).unwrap();
    p.start("a").unwrap();
    p.fail("a", false).unwrap();
    assert_eq!(p.status("a"), MissionStatus::Failed);
    assert_eq!(
        p.run(Command::Fail {
            mission: m("a"),
            reason: " ".into(),
            retry: true,
            agent_lost: false
        })
        .unwrap_err()
        .rule(),
        "illegal_mission_transition"
    );
}

#[test]
fn a_score_below_the_gate_is_a_failed_attempt() {
    let mut p = Plan::new();
    let mut nm = NewMission::new(m("a"), "gated", Phase::TESTING);
    nm.quality_gate = Some(0.8);
    p.run(Command::Create(nm)).unwrap();
    p.start("a").unwrap();
    let events = p
        .run(Command::Complete {
            mission: m("a"),
            output: json!({}),
            quality_score: Some(0.7),
        })
        .unwrap();
    assert_eq!(p.status("a"), MissionStatus::Ready);
    assert!(events.iter().any(|e| matches!(e, Event::AttemptFailed { reason, .. } if reason.contains("below the gate 0.8"))));
    p.start("a").unwrap();
    p.run(Command::Complete {
        mission: m("a"),
        output: json!({}),
        quality_score: Some(0.85),
    })
    .unwrap();
    assert_eq!(p.status("a"), MissionStatus::Completed);
}

#[test]
fn quality_scores_outside_zero_to_one_are_refused() {
    let mut p = Plan::new();
    p.create("a", Phase::DEVELOPMENT, &[]).unwrap();
    p.start("a").unwrap();
    for bad in [1.01, -0.1, f64::NAN] {
        let err = p
            .run(Command::Complete {
                mission: m("a"),
                output: json!({}),
                quality_score: Some(bad),
            })
            .unwrap_err();
        assert_eq!(err.rule(), "quality_out_of_range");
        assert_eq!(err.field(), Some("quality_score"));
    }
    assert_eq!(p.status("a"), MissionStatus::Active);
    let mut nm = NewMission::new(m("b"), "b", Phase::DEVELOPMENT);
    nm.quality_gate = Some(2.0);
    assert_eq!(
        p.run(Command::Create(nm)).unwrap_err().field(),
        Some("quality_gate")
    );
}

#[test]
fn a_hard_dependency_failing_for_good_fails_its_dependents_down_the_graph() {
    let mut p = Plan::new();
    p.create("a", Phase::DEVELOPMENT, &[]).unwrap();
    p.create("b", Phase::DEVELOPMENT, &[("a", Severity::Hard)])
        .unwrap();
    p.create("c", Phase::DEVELOPMENT, &[("b", Severity::Hard)])
        .unwrap();
    p.create("s", Phase::DEVELOPMENT, &[("a", Severity::Soft)])
        .unwrap();
    p.start("a").unwrap();
    let events = p.fail("a", false).unwrap();
    assert_eq!(p.status("b"), MissionStatus::Failed);
    assert_eq!(p.status("c"), MissionStatus::Failed);
    assert_eq!(
        p.status("s"),
        MissionStatus::Ready,
        "a soft dependency's failure does not fail"
    );
    let failed: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Failed {
                mission_id,
                caused_by,
                ..
            } => Some((mission_id.to_string(), caused_by.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        failed,
        vec![
            ("a".into(), None),
            ("b".into(), Some(m("a"))),
            ("c".into(), Some(m("b")))
        ]
    );
    assert_eq!(
        p.create("d", Phase::DEVELOPMENT, &[("a", Severity::Hard)])
            .unwrap_err()
            .rule(),
        "dependency_failed"
    );
}

#[test]
fn cancelling_fails_hard_dependents() {
    let mut p = Plan::new();
    p.create("a", Phase::DEVELOPMENT, &[]).unwrap();
    p.create("b", Phase::DEVELOPMENT, &[("a", Severity::Hard)])
        .unwrap();
    p.run(Command::Cancel {
        mission: m("a"),
        reason: "scope cut".into(),
    })
    .unwrap();
    assert_eq!(p.status("a"), MissionStatus::Cancelled);
    assert_eq!(
        p.board.mission(&m("b")).unwrap().end_reason.as_deref(),
        Some("hard dependency a was cancelled")
    );
    assert_eq!(
        p.run(Command::Cancel {
            mission: m("a"),
            reason: "again".into()
        })
        .unwrap_err()
        .rule(),
        "illegal_mission_transition"
    );
}

#[test]
fn illegal_transitions_are_refused() {
    let mut p = Plan::new();
    p.create("a", Phase::DEVELOPMENT, &[]).unwrap();
    p.create("b", Phase::DEVELOPMENT, &[("a", Severity::Hard)])
        .unwrap();
    assert_eq!(
        p.start("b").unwrap_err().rule(),
        "illegal_mission_transition",
        "PENDING cannot start"
    );
    assert_eq!(
        p.complete("a").unwrap_err().rule(),
        "illegal_mission_transition",
        "READY cannot complete"
    );
    assert_eq!(
        p.run(Command::Archive { mission: m("a") })
            .unwrap_err()
            .rule(),
        "illegal_mission_transition"
    );
}

#[test]
fn parallel_groups_layer_open_missions() {
    let mut p = Plan::new();
    for id in ["M-001", "M-002"] {
        p.create(id, Phase::DEVELOPMENT, &[]).unwrap();
    }
    p.create("M-003", Phase::DEVELOPMENT, &[("M-001", Severity::Hard)])
        .unwrap();
    p.create(
        "M-004",
        Phase::DEVELOPMENT,
        &[("M-002", Severity::Hard), ("M-001", Severity::Soft)],
    )
    .unwrap();
    p.create("M-005", Phase::DEVELOPMENT, &[("M-004", Severity::Hard)])
        .unwrap();
    let groups: Vec<Vec<String>> = p
        .board
        .parallel_groups()
        .into_iter()
        .map(|g| g.missions.iter().map(ToString::to_string).collect())
        .collect();
    assert_eq!(
        groups,
        vec![
            vec!["M-001", "M-002"],
            vec!["M-003", "M-004"],
            vec!["M-005"]
        ]
    );
}

#[test]
fn the_group_limit_caps_concurrently_active_groups() {
    let mut p = Plan::new();
    p.board = Board::new(BoardConfig {
        max_parallel_groups: Some(1),
    });
    p.create("a", Phase::DEVELOPMENT, &[]).unwrap();
    p.create("b", Phase::DEVELOPMENT, &[]).unwrap();
    p.create("x", Phase::DEVELOPMENT, &[]).unwrap();
    p.create("c", Phase::DEVELOPMENT, &[("x", Severity::Hard)])
        .unwrap();
    p.start("a").unwrap();
    p.start("x").unwrap();
    p.complete("x").unwrap();
    assert_eq!(p.status("c"), MissionStatus::Ready);
    // c is in group 1 while a (group 0) runs: a second active group is over the limit.
    let err = p.start("c").unwrap_err();
    assert_eq!(
        err,
        Rejection::GroupLimitReached {
            group: 1,
            active: 1,
            max: 1
        }
    );
    p.start("b").unwrap();
    p.complete("a").unwrap();
    p.complete("b").unwrap();
    p.start("c").unwrap();
}

#[test]
fn the_phase_sync_point_fires_when_the_last_mission_of_a_phase_completes() {
    let mut p = Plan::new();
    p.create("market", Phase::RESEARCH, &[]).unwrap();
    p.create("arch", Phase::RESEARCH, &[]).unwrap();
    p.create(
        "plan",
        Phase::PLANNING,
        &[("market", Severity::Hard), ("arch", Severity::Hard)],
    )
    .unwrap();
    p.start("market").unwrap();
    let events = p.complete("market").unwrap();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::PhaseCompleted { .. }))
    );
    assert!(!p.board.phase_complete(Phase::RESEARCH));
    p.start("arch").unwrap();
    let events = p.complete("arch").unwrap();
    assert!(events.iter().any(|e| matches!(e, Event::PhaseCompleted { phase, missions: 2, .. } if *phase == Phase::RESEARCH)));
    assert!(p.board.phase_complete(Phase::RESEARCH));
    assert_eq!(ready_ids(&events), ["plan"]);
}

#[test]
fn archiving_keeps_missions_retrievable_and_out_of_the_graph() {
    let mut p = Plan::new();
    p.create("a", Phase::DEVELOPMENT, &[]).unwrap();
    p.create("b", Phase::DEVELOPMENT, &[("a", Severity::Hard)])
        .unwrap();
    p.start("a").unwrap();
    p.complete("a").unwrap();
    p.now = T0.plus_millis(10_000);
    p.run(Command::ArchiveOlderThan {
        older_than_ms: 60_000,
    })
    .unwrap();
    assert_eq!(p.status("a"), MissionStatus::Completed, "not old enough");
    p.now = T0.plus_millis(120_000);
    p.run(Command::ArchiveOlderThan {
        older_than_ms: 60_000,
    })
    .unwrap();
    let a = p.board.mission(&m("a")).unwrap();
    assert_eq!(
        (a.status, a.outcome()),
        (MissionStatus::Archived, Some(MissionStatus::Completed))
    );
    assert_eq!(p.board.group_of(&m("b")), Some(0));
    assert!(
        !p.board.phase_complete(Phase::DEVELOPMENT),
        "b is still open"
    );
    p.create("c", Phase::DEVELOPMENT, &[]).unwrap();
    assert_eq!(
        p.depend("c", "a").unwrap_err().field(),
        Some("depends_on"),
        "archived missions take no dependents"
    );
}

#[test]
fn creation_checks_its_fields() {
    let mut p = Plan::new();
    let mut nm = NewMission::new(m("a"), " ", Phase::DEVELOPMENT);
    assert_eq!(
        p.run(Command::Create(nm.clone())).unwrap_err().field(),
        Some("name")
    );
    nm.name = "ok".into();
    nm.priority = 11;
    assert_eq!(
        p.run(Command::Create(nm.clone())).unwrap_err().field(),
        Some("priority")
    );
    nm.priority = 8;
    p.run(Command::Create(nm.clone())).unwrap();
    assert_eq!(
        p.run(Command::Create(nm)).unwrap_err().rule(),
        "mission_exists"
    );
}

#[test]
fn statistics_summarise_the_board() {
    let mut p = Plan::new();
    for id in ["a", "b", "c"] {
        p.create(id, Phase::DEVELOPMENT, &[]).unwrap();
    }
    p.start("a").unwrap();
    p.fail("a", true).unwrap();
    p.start("a").unwrap();
    p.complete("a").unwrap();
    p.start("b").unwrap();
    p.fail("b", false).unwrap();
    p.now = T0.plus_millis(3_600_000);
    let s = p.board.stats(p.now);
    assert_eq!(s.total, 3);
    assert_eq!(s.by_status[&MissionStatus::Completed], 1);
    assert_eq!(s.success_rate, Some(0.5));
    assert_eq!((s.retries, s.failed_attempts), (1, 2));
    assert_eq!(s.mean_quality, Some(0.9));
    assert!((s.throughput_per_hour - 1.0).abs() < 1e-9);
}

#[test]
fn replaying_saved_records_rebuilds_the_same_board() {
    // A scenario with additions, removals, completions, failures and archiving; every
    // saved record is kept and replayed into a fresh board, as a restarted instance does.
    let mut p = Plan::new();
    let mut saved: Vec<Mission> = Vec::new();
    let mut run = |p: &mut Plan, cmd: Command| {
        let effects = p.board.decide(&Principal::Operator, &cmd, p.now).unwrap();
        for e in effects {
            if let Effect::Save(m) = e {
                saved.push(m.clone());
                p.board.apply(m);
            }
        }
    };
    for id in ["a", "b", "c", "d", "e"] {
        run(
            &mut p,
            Command::Create(NewMission::new(m(id), id, Phase::DEVELOPMENT)),
        );
    }
    for (x, on) in [("c", "a"), ("c", "b"), ("d", "c"), ("e", "d"), ("e", "a")] {
        run(
            &mut p,
            Command::AddDependency {
                mission: m(x),
                on: m(on),
                severity: Severity::Hard,
            },
        );
    }
    run(
        &mut p,
        Command::RemoveDependency {
            mission: m("e"),
            on: m("d"),
        },
    );
    run(
        &mut p,
        Command::Start {
            mission: m("a"),
            agent: dev(),
        },
    );
    run(
        &mut p,
        Command::Complete {
            mission: m("a"),
            output: json!(1),
            quality_score: None,
        },
    );
    p.now = T0.plus_millis(10);
    run(&mut p, Command::Archive { mission: m("a") });
    run(
        &mut p,
        Command::Start {
            mission: m("b"),
            agent: dev(),
        },
    );
    run(
        &mut p,
        Command::Fail {
            mission: m("b"),
            reason: "x".into(),
            retry: false,
            agent_lost: false,
        },
    );
    let mut fresh = Board::new(BoardConfig::default());
    for mission in saved {
        fresh.apply(mission);
    }
    assert_eq!(fresh.parallel_groups(), p.board.parallel_groups());
    for id in ["a", "b", "c", "d", "e"] {
        assert_eq!(fresh.mission(&m(id)), p.board.mission(&m(id)), "{id}");
        assert_eq!(fresh.group_of(&m(id)), p.board.group_of(&m(id)), "{id}");
    }
    // e no longer depends on d: with d failed (its hard dependency c failed), e is READY.
    assert_eq!(fresh.mission(&m("e")).unwrap().status, MissionStatus::Ready);
    assert_eq!(
        fresh.group_of(&m("e")),
        Some(0),
        "the archived a is out of the graph"
    );
    assert!(!fresh.phase_complete(Phase::DEVELOPMENT));
}

#[test]
fn a_phase_with_a_failure_is_never_complete() {
    let mut p = Plan::new();
    p.create("a", Phase::TESTING, &[]).unwrap();
    p.create("b", Phase::TESTING, &[]).unwrap();
    p.start("a").unwrap();
    p.fail("a", false).unwrap();
    p.start("b").unwrap();
    let events = p.complete("b").unwrap();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::PhaseCompleted { .. }))
    );
    assert!(!p.board.phase_complete(Phase::TESTING));
}

#[test]
fn a_phase_completes_with_the_count_of_its_completed_missions() {
    let mut p = Plan::new();
    for id in ["a", "b", "c"] {
        p.create(id, Phase::DESIGN, &[]).unwrap();
    }
    p.run(Command::Cancel {
        mission: m("c"),
        reason: "dropped".into(),
    })
    .unwrap();
    p.start("a").unwrap();
    p.complete("a").unwrap();
    p.start("b").unwrap();
    let events = p.complete("b").unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::PhaseCompleted { missions: 2, .. })),
        "{events:?}"
    );
}

#[test]
fn cancelling_the_last_open_mission_of_a_phase_completes_it() {
    let mut p = Plan::new();
    for id in ["a", "b", "c"] {
        p.create(id, Phase::DESIGN, &[]).unwrap();
    }
    let cancel = |p: &mut Plan, id: &str| {
        p.run(Command::Cancel {
            mission: m(id),
            reason: "dropped".into(),
        })
        .unwrap()
    };
    let events = cancel(&mut p, "a");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::PhaseCompleted { .. })),
        "nothing completed yet"
    );
    p.start("b").unwrap();
    p.complete("b").unwrap();
    assert!(!p.board.phase_complete(Phase::DESIGN), "c is still open");
    let events = cancel(&mut p, "c");
    assert!(p.board.phase_complete(Phase::DESIGN));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::PhaseCompleted { missions: 1, .. })),
        "{events:?}"
    );
}

#[test]
fn cancelling_emits_cancelled_not_failed() {
    let mut p = Plan::new();
    p.create("a", Phase::DEVELOPMENT, &[]).unwrap();
    let events = p
        .run(Command::Cancel {
            mission: m("a"),
            reason: "no".into(),
        })
        .unwrap();
    assert!(events.iter().any(|e| matches!(e, Event::Cancelled { .. })));
    assert!(!events.iter().any(|e| matches!(e, Event::Failed { .. })));
}

#[test]
fn limits_on_names_retries_and_archive_age_are_inclusive() {
    let mut p = Plan::new();
    let mut nm = NewMission::new(m("a"), "n".repeat(MAX_NAME_CHARS), Phase::DEVELOPMENT);
    nm.max_retries = 100;
    p.run(Command::Create(nm.clone())).unwrap();
    nm.id = m("b");
    nm.name.push('n');
    assert_eq!(
        p.run(Command::Create(nm.clone())).unwrap_err().field(),
        Some("name")
    );
    nm.name.pop();
    nm.max_retries = 101;
    assert_eq!(
        p.run(Command::Create(nm)).unwrap_err().field(),
        Some("max_retries")
    );
    p.start("a").unwrap();
    p.complete("a").unwrap();
    p.now = T0.plus_millis(500);
    p.run(Command::ArchiveOlderThan { older_than_ms: 500 })
        .unwrap();
    assert_eq!(
        p.status("a"),
        MissionStatus::Completed,
        "exactly the window: not yet"
    );
    p.now = T0.plus_millis(501);
    p.run(Command::ArchiveOlderThan { older_than_ms: 500 })
        .unwrap();
    assert_eq!(p.status("a"), MissionStatus::Archived);
}

#[test]
fn omitted_fields_take_the_seeds_defaults() {
    let nm: NewMission =
        serde_json::from_value(json!({"id": "M-1", "name": "x", "phase": "5"})).unwrap();
    assert_eq!((nm.priority, nm.max_retries), (5, 3));
    assert_eq!(DEFAULT_MAX_RETRIES, 3);
}

#[test]
fn events_name_themselves_and_say_what_they_are_about() {
    let e = Event::Ready {
        mission_id: m("M-1"),
        phase: Phase::DEVELOPMENT,
        assigned_agent_id: None,
        at: T0,
    };
    assert_eq!((e.name(), e.about()), ("ready", "M-1".to_string()));
    assert!(!e.is_governance());
    let done = Event::Completed {
        mission_id: m("M-1"),
        phase: Phase::DEVELOPMENT,
        quality_score: None,
        at: T0,
    };
    assert!(done.is_governance());
    let phase = Event::PhaseCompleted {
        phase: Phase::RESEARCH,
        missions: 3,
        at: T0,
    };
    assert_eq!(
        (phase.name(), phase.about()),
        ("phase_completed", "phase-1".to_string())
    );
    assert!(Event::NAMES.contains(&e.name()) && Event::NAMES.contains(&phase.name()));
}

#[test]
fn statuses_parse_display_and_know_what_is_final() {
    for s in MissionStatus::ALL {
        assert_eq!(MissionStatus::parse(&s.to_string().to_lowercase()), Some(s));
        assert_eq!(
            s.is_final(),
            matches!(
                s,
                MissionStatus::Completed | MissionStatus::Failed | MissionStatus::Cancelled
            )
        );
    }
    assert_eq!(MissionStatus::parse("done"), None);
    let mut p = Plan::new();
    p.create("a", Phase::DEVELOPMENT, &[]).unwrap();
    assert_eq!(
        p.board.mission(&m("a")).unwrap().outcome(),
        None,
        "an open mission has no outcome"
    );
}

#[test]
fn statistics_are_exact() {
    let mut p = Plan::new();
    for id in ["a", "b", "c", "d"] {
        let mut nm = NewMission::new(m(id), id, Phase::DEVELOPMENT);
        nm.token_budget = 100;
        p.run(Command::Create(nm)).unwrap();
    }
    p.start("a").unwrap();
    p.now = T0.plus_millis(1_000);
    p.run(Command::Complete {
        mission: m("a"),
        output: json!({}),
        quality_score: Some(0.5),
    })
    .unwrap();
    p.start("b").unwrap();
    p.now = T0.plus_millis(4_000);
    p.run(Command::Complete {
        mission: m("b"),
        output: json!({}),
        quality_score: Some(1.0),
    })
    .unwrap();
    p.start("c").unwrap();
    p.fail("c", true).unwrap();
    p.start("c").unwrap();
    p.fail("c", true).unwrap();
    p.now = T0.plus_millis(4_000 + 3_600_000);
    let s = p.board.stats(p.now);
    assert_eq!((s.total, s.token_budget_total), (4, 400));
    assert_eq!((s.retries, s.failed_attempts), (1, 2));
    assert_eq!(s.mean_quality, Some(0.75));
    assert_eq!(s.mean_duration_ms, Some(2_000.0));
    assert_eq!(s.success_rate, Some(1.0));
    assert_eq!(
        s.completed_last_hour, 1,
        "a finished more than an hour ago; b exactly an hour ago"
    );
    let hours = (4_000.0 + 3_600_000.0) / 3_600_000.0;
    assert!((s.throughput_per_hour - 2.0 / hours).abs() < 1e-9);
}

#[test]
fn a_snapshot_rebuilds_the_same_board_and_lists_dependencies_first() {
    let mut p = Plan::new();
    for id in ["a", "b", "c", "d"] {
        p.create(id, Phase::DEVELOPMENT, &[]).unwrap();
    }
    // Against the creation order: a waits on d, d on c.
    p.run(Command::AddDependency {
        mission: m("a"),
        on: m("d"),
        severity: Severity::Hard,
    })
    .unwrap();
    p.run(Command::AddDependency {
        mission: m("d"),
        on: m("c"),
        severity: Severity::Hard,
    })
    .unwrap();
    p.start("b").unwrap();
    p.complete("b").unwrap();
    p.board.apply({
        let mut archived = p.board.mission(&m("b")).unwrap().clone();
        archived.final_status = Some(archived.status);
        archived.status = MissionStatus::Archived;
        archived
    });

    let mut records = Vec::new();
    records.extend(p.board.records().iter().map(|m| (**m).clone()));
    assert_eq!(records.len(), 4, "every mission once");
    for r in &records {
        assert_eq!(p.board.mission(&r.id), Some(r), "each record as it is now");
    }
    let pos = |id: &str| records.iter().position(|r| r.id == m(id)).unwrap();
    assert!(
        pos("c") < pos("d") && pos("d") < pos("a"),
        "dependencies first"
    );
    let mut rebuilt = Board::new(BoardConfig::default());
    for r in records {
        rebuilt.apply(r);
    }
    assert_eq!(rebuilt.parallel_groups(), p.board.parallel_groups());
    assert_eq!(rebuilt.len(), 4);
    assert_eq!(
        rebuilt.mission(&m("b")).unwrap().status,
        MissionStatus::Archived
    );
    assert_eq!(rebuilt.group_of(&m("a")), Some(2));
}

#[test]
fn a_handoff_moves_an_active_mission_from_its_holder_only() {
    let mut p = Plan::new();
    p.create("a", Phase::DEVELOPMENT, &[]).unwrap();
    let qa = AgentId::new("qa-1").unwrap();
    let reassign = |from: AgentId, to: AgentId| Command::Reassign {
        mission: m("a"),
        from,
        to,
    };
    assert_eq!(
        p.run(reassign(dev(), qa.clone())).unwrap_err(),
        Rejection::NotTaskHolder {
            mission: m("a"),
            agent: dev(),
            holder: None
        },
        "not running yet"
    );
    p.start("a").unwrap();
    assert_eq!(
        p.board
            .claim_conflict(&Principal::Operator, &m("a"), &qa, T0)
            .map(|e| e.name()),
        Some("claim_conflict")
    );
    assert!(
        p.board
            .claim_conflict(&Principal::Operator, &m("a"), &dev(), T0)
            .is_none()
    );
    assert_eq!(
        p.run(reassign(dev(), dev())).unwrap_err().field(),
        Some("to")
    );
    let events = p.run(reassign(dev(), qa.clone())).unwrap();
    assert_eq!(events[0].name(), "handed_off");
    let after = p.board.mission(&m("a")).unwrap();
    assert_eq!(after.assigned_agent_id.as_ref(), Some(&qa));
    assert_eq!(
        (after.status, after.attempts),
        (MissionStatus::Active, 1),
        "same attempt"
    );
    // Handing it over again from the old holder is a conflict naming the new one.
    assert_eq!(
        p.run(reassign(dev(), qa.clone())).unwrap_err(),
        Rejection::NotTaskHolder {
            mission: m("a"),
            agent: dev(),
            holder: Some(qa)
        }
    );
    assert_eq!(
        p.board.required_action(&reassign(dev(), dev())),
        (crate::agent::Action::HandoffTask, Some(Phase::DEVELOPMENT))
    );
}

#[test]
fn a_phase_of_cancelled_missions_only_is_not_complete() {
    let mut p = Plan::new();
    assert!(p.board.is_empty());
    p.create("a", Phase::DESIGN, &[]).unwrap();
    assert!(!p.board.is_empty());
    p.run(Command::Cancel {
        mission: m("a"),
        reason: "dropped".into(),
    })
    .unwrap();
    assert!(
        !p.board.phase_complete(Phase::DESIGN),
        "nothing was completed in it"
    );
}

/// A READY mission for `role` (when given), of `priority`, meant for `agent` (when given),
/// created at `at`.
fn role_mission(
    p: &mut Plan,
    id: &str,
    role: Option<crate::agent::Role>,
    priority: u8,
    agent: Option<&str>,
    at: u64,
) {
    p.now = T0.plus_millis(at);
    let mut nm = NewMission::new(m(id), id, Phase::DEVELOPMENT);
    nm.role = role;
    nm.priority = priority;
    nm.assigned_agent_id = agent.map(|a| AgentId::new(a).unwrap());
    p.run(Command::Create(nm)).unwrap();
}

fn ids(missions: Vec<&Mission>) -> Vec<&str> {
    missions.into_iter().map(|m| m.id.as_str()).collect()
}

#[test]
fn claimable_missions_are_the_ready_ones_of_the_role_for_the_agent_or_nobody_best_first() {
    use crate::agent::Role;
    let dev_role = Some(Role::Developer);
    let mut p = Plan::new();
    role_mission(&mut p, "old-5", dev_role.clone(), 5, None, 0);
    role_mission(&mut p, "old-9", dev_role.clone(), 9, None, 5);
    role_mission(&mut p, "new-9", dev_role.clone(), 9, None, 10);
    // Same priority, same instant: by id.
    role_mission(&mut p, "tie-b", dev_role.clone(), 5, None, 20);
    role_mission(&mut p, "tie-a", dev_role.clone(), 5, None, 20);
    role_mission(&mut p, "mine", dev_role.clone(), 1, Some("dev-1"), 30);
    role_mission(&mut p, "theirs", dev_role.clone(), 10, Some("dev-2"), 30);
    role_mission(&mut p, "tests", Some(Role::Qa), 10, None, 30);
    role_mission(&mut p, "anyone", None, 10, None, 30);
    role_mission(&mut p, "running", dev_role.clone(), 10, None, 30);
    p.start("running").unwrap();
    let mut waiting = NewMission::new(m("waiting"), "waiting", Phase::DEVELOPMENT);
    waiting.role = dev_role;
    waiting.priority = 10;
    waiting.depends_on = vec![Dependency {
        mission_id: m("old-5"),
        severity: Severity::Hard,
    }];
    p.run(Command::Create(waiting)).unwrap();
    assert_eq!(p.status("waiting"), MissionStatus::Pending);

    let best_first = ["old-9", "new-9", "old-5", "tie-a", "tie-b", "mine"];
    assert_eq!(
        ids(p.board.claimable(&Role::Developer, &dev())),
        best_first,
        "priority, then age, then id; never another's, another role's, a role-less, a running or a waiting one"
    );
    let dev2 = AgentId::new("dev-2").unwrap();
    assert_eq!(
        ids(p.board.claimable(&Role::Developer, &dev2)),
        ["theirs", "old-9", "new-9", "old-5", "tie-a", "tie-b"]
    );
    assert_eq!(ids(p.board.claimable(&Role::Qa, &dev())), ["tests"]);
    assert!(p.board.claimable(&Role::Architect, &dev()).is_empty());

    // Started, it leaves the pile; finished, its dependent joins it.
    p.start("old-5").unwrap();
    p.complete("old-5").unwrap();
    assert_eq!(
        ids(p.board.claimable(&Role::Developer, &dev()))[..2],
        ["waiting", "old-9"]
    );
    // A retried attempt comes back for the agent that ran it; a lost agent's, for anyone.
    p.fail("running", true).unwrap();
    assert_eq!(p.status("running"), MissionStatus::Ready);
    assert!(ids(p.board.claimable(&Role::Developer, &dev())).contains(&"running"));
    assert!(!ids(p.board.claimable(&Role::Developer, &dev2)).contains(&"running"));

    // A board rebuilt from its records offers the same.
    let mut fresh = Board::new(BoardConfig::default());
    for r in p.board.records() {
        fresh.apply((*r).clone());
    }
    assert_eq!(
        ids(fresh.claimable(&Role::Developer, &dev())),
        ids(p.board.claimable(&Role::Developer, &dev()))
    );
}

#[test]
fn the_load_a_scaling_policy_sees_is_ready_missions_of_the_role_meant_for_nobody() {
    use crate::agent::Role;
    let mut p = Plan::new();
    for (i, id) in ["d1", "d2", "d3"].into_iter().enumerate() {
        role_mission(&mut p, id, Some(Role::Developer), 5, None, i as u64);
    }
    role_mission(&mut p, "meant", Some(Role::Developer), 5, Some("dev-1"), 5);
    role_mission(&mut p, "tests", Some(Role::Qa), 5, None, 5);
    role_mission(&mut p, "anyone", None, 5, None, 5);
    let mut testing = NewMission::new(m("t1"), "t1", Phase::TESTING);
    testing.role = Some(Role::Developer);
    p.run(Command::Create(testing)).unwrap();

    assert_eq!(p.board.ready_for(&Role::Developer, None), 4);
    assert_eq!(
        p.board
            .ready_for(&Role::Developer, Some(Phase::DEVELOPMENT)),
        3
    );
    assert_eq!(p.board.ready_for(&Role::Developer, Some(Phase::TESTING)), 1);
    assert_eq!(p.board.ready_for(&Role::Qa, None), 1);
    assert_eq!(p.board.ready_for(&Role::Qa, Some(Phase::DEVELOPMENT)), 1);
    assert_eq!(p.board.ready_for(&Role::Architect, None), 0);

    // Started, a mission is no longer load; back READY for the agent that ran it, it is
    // that agent's, not the pile's; its agent lost, it is the pile's again.
    p.start("d1").unwrap();
    assert_eq!(p.board.ready_for(&Role::Developer, None), 3);
    p.fail("d1", true).unwrap();
    assert_eq!(p.status("d1"), MissionStatus::Ready);
    assert_eq!(p.board.ready_for(&Role::Developer, None), 3);
    p.start("d1").unwrap();
    p.run(Command::Fail {
        mission: m("d1"),
        reason: "agent lost".into(),
        retry: true,
        agent_lost: true,
    })
    .unwrap();
    assert_eq!(p.board.ready_for(&Role::Developer, None), 4);
    // Cancelled, it is gone.
    p.run(Command::Cancel {
        mission: m("d2"),
        reason: "dropped".into(),
    })
    .unwrap();
    assert_eq!(p.board.ready_for(&Role::Developer, None), 3);
}

#[test]
fn a_missions_role_is_optional_on_the_wire_and_copied_at_creation() {
    let nm: NewMission =
        serde_json::from_value(json!({"id": "M-1", "name": "x", "phase": "5"})).unwrap();
    assert_eq!(nm.role, None);
    assert!(
        serde_json::to_value(&nm).unwrap().get("role").is_none(),
        "left out when none"
    );
    let nm: NewMission = serde_json::from_value(
        json!({"id": "M-1", "name": "x", "phase": "5", "role": "DEVELOPER"}),
    )
    .unwrap();
    assert_eq!(nm.role, Some(crate::agent::Role::Developer));
    let mut p = Plan::new();
    p.run(Command::Create(nm)).unwrap();
    let created = p.board.mission(&m("M-1")).unwrap();
    assert_eq!(created.role, Some(crate::agent::Role::Developer));
    assert_eq!(serde_json::to_value(created).unwrap()["role"], "developer");
    let err = serde_json::from_value::<NewMission>(
        json!({"id": "M-1", "name": "x", "phase": "5", "role": "wizard"}),
    )
    .unwrap_err();
    assert!(err.to_string().contains("not a role"), "{err}");
}
