//! The mission lifecycle's less travelled paths, against a real nats-server: quality gates,
//! cancelling and failing running missions, removing and soft dependencies, busy agents,
//! archiving and its authority, unknown ids, replies too large to send, and the repair of
//! an assignment left half made.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures_util::StreamExt;
use guild_domain::Phase;
use guild_domain::agent::AgentStatus;
use guild_domain::mission::{BoardConfig, Dependency, MissionStatus, Severity};
use guild_sdk::{Error, ErrorKind};
use guild_testkit::{NatsServer, ServerOptions, eventually_async};
use guild_wire::ErrorCode;
use guild_wire::api::mission::{ArchiveMissions, MissionQuery};
use serde_json::json;

mod common;
use common::*;

fn depends(on: &str, severity: Severity) -> Vec<Dependency> {
    vec![Dependency {
        mission_id: m(on),
        severity,
    }]
}

fn refusal(e: &Error) -> (ErrorKind, Option<&str>) {
    (e.kind(), e.rule())
}

#[tokio::test]
async fn a_completion_below_the_quality_gate_is_a_failed_attempt_that_frees_the_agent() {
    let s = stack(BoardConfig::default()).await;
    let ms = s.guild.missions();
    let mut gated = mission("gated", Phase::DEVELOPMENT);
    gated.quality_gate = Some(0.8);
    gated.token_budget = 700;
    ms.create_mission(&gated).await.unwrap();

    assign(&ms, "gated", "dev-1").await;
    let low = ms
        .mark_complete(&m("gated"), json!({"draft": 1}), Some(0.5))
        .await
        .unwrap();
    assert!(low.will_retry);
    assert_eq!(
        (low.mission.status, low.mission.attempts),
        (MissionStatus::Ready, 1)
    );
    assert_eq!(
        s.guild.spawner().get(&id("dev-1")).await.unwrap().status,
        AgentStatus::Active,
        "the agent is free again"
    );

    assign(&ms, "gated", "dev-2").await;
    let good = ms
        .mark_complete(&m("gated"), json!({"final": 2}), Some(0.9))
        .await
        .unwrap();
    assert!(!good.will_retry);
    assert_eq!(good.mission.status, MissionStatus::Completed);

    let stats = ms.get_statistics().await.unwrap().missions;
    assert_eq!(stats.by_status.get(&MissionStatus::Completed), Some(&1));
    assert_eq!((stats.retries, stats.failed_attempts), (1, 1));
    assert_eq!(
        stats.mean_quality,
        Some(0.9),
        "only the accepted score counts"
    );
    assert_eq!(stats.success_rate, Some(1.0));
    assert_eq!(stats.token_budget_total, 700);
    assert!(stats.throughput_per_hour > 0.0);
}

#[tokio::test]
async fn cancelling_or_finally_failing_a_running_mission_frees_its_agent() {
    let s = stack(BoardConfig::default()).await;
    let ms = s.guild.missions();
    create(&ms, &["cancelled", "failed"]).await;
    assign(&ms, "cancelled", "dev-1").await;
    assign(&ms, "failed", "dev-2").await;

    let cancelled = ms
        .cancel_mission(&m("cancelled"), "no longer needed")
        .await
        .unwrap();
    assert_eq!(cancelled.status, MissionStatus::Cancelled);
    let will_retry = ms
        .mark_failed(&m("failed"), "the approach cannot work", false)
        .await
        .unwrap();
    assert!(!will_retry, "retry=false is final at once");
    let failed = ms.get_mission(&m("failed")).await.unwrap();
    assert_eq!((failed.status, failed.attempts), (MissionStatus::Failed, 1));
    for dev in ["dev-1", "dev-2"] {
        assert_eq!(
            s.guild.spawner().get(&id(dev)).await.unwrap().status,
            AgentStatus::Active,
            "{dev} is free again"
        );
    }
}

#[tokio::test]
async fn removing_the_last_dependency_makes_a_mission_ready_with_an_event() {
    let s = stack(BoardConfig::default()).await;
    let ms = s.guild.missions();
    let mut ready_events = s
        .guild
        .client()
        .subscribe("guild.evt.mission.ready.b")
        .await
        .unwrap();
    s.guild.client().flush().await.unwrap();
    create(&ms, &["a"]).await;
    let mut b = mission("b", Phase::DEVELOPMENT);
    b.depends_on = depends("a", Severity::Hard);
    assert_eq!(
        ms.create_mission(&b).await.unwrap().status,
        MissionStatus::Pending
    );

    let b = ms.remove_dependency(&m("b"), &m("a")).await.unwrap();
    assert_eq!(b.status, MissionStatus::Ready);
    assert!(b.depends_on.is_empty());
    let event = tokio::time::timeout(Duration::from_secs(5), ready_events.next())
        .await
        .expect("a ready event for b")
        .unwrap();
    assert_eq!(event.subject.as_str(), "guild.evt.mission.ready.b");
    let groups = ms.get_parallelizable_missions(None).await.unwrap();
    assert_eq!(groups.groups.len(), 1, "a and b can now run side by side");
}

#[tokio::test]
async fn a_failed_soft_dependency_releases_its_dependent_where_a_hard_one_fails_it() {
    let s = stack(BoardConfig::default()).await;
    let ms = s.guild.missions();
    create(&ms, &["base"]).await;
    let mut soft = mission("soft", Phase::DEVELOPMENT);
    soft.depends_on = depends("base", Severity::Soft);
    let mut hard = mission("hard", Phase::DEVELOPMENT);
    hard.depends_on = depends("base", Severity::Hard);
    for x in [&soft, &hard] {
        assert_eq!(
            ms.create_mission(x).await.unwrap().status,
            MissionStatus::Pending,
            "a soft dependency also waits for its mission to finish"
        );
    }
    assign(&ms, "base", "dev-1").await;
    ms.mark_failed(&m("base"), "gave up", false).await.unwrap();
    assert_eq!(
        ms.get_mission(&m("soft")).await.unwrap().status,
        MissionStatus::Ready
    );
    assert_eq!(
        ms.get_mission(&m("hard")).await.unwrap().status,
        MissionStatus::Failed
    );
}

#[tokio::test]
async fn assigning_an_agent_that_is_already_working_is_refused_and_writes_nothing() {
    let s = stack(BoardConfig::default()).await;
    let ms = s.guild.missions();
    create(&ms, &["first", "second"]).await;
    assign(&ms, "first", "dev-1").await;
    let before = journal_sequence(&s.server).await;
    let e = ms
        .assign_mission(&m("second"), Some(&id("dev-1")))
        .await
        .unwrap_err();
    assert_eq!(
        refusal(&e),
        (ErrorKind::Rejected(ErrorCode::Conflict), Some("agent_busy")),
        "{e}"
    );
    assert_eq!(journal_sequence(&s.server).await, before);
    assert_eq!(
        ms.get_mission(&m("second")).await.unwrap().status,
        MissionStatus::Ready
    );
}

#[tokio::test]
async fn archiving_by_age_keeps_missions_retrievable_and_needs_the_authority() {
    let s = stack(BoardConfig::default()).await;
    let ms = s.guild.missions();
    create(&ms, &["done", "open"]).await;
    assign(&ms, "done", "dev-1").await;
    ms.mark_complete(&m("done"), json!({}), None).await.unwrap();
    let by_age = |older_than_ms| ArchiveMissions {
        mission_id: None,
        older_than_ms: Some(older_than_ms),
    };

    // An agent whose authority forbids archiving is refused.
    s.developer_forbidden("no-archive", "archive_missions")
        .await;
    let before = journal_sequence(&s.server).await;
    let e = s
        .agent("no-archive")
        .missions()
        .archive_missions(&by_age(0))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected(ErrorCode::Forbidden), "{e}");
    assert_eq!(journal_sequence(&s.server).await, before);

    assert!(
        ms.archive_missions(&by_age(3_600_000))
            .await
            .unwrap()
            .is_empty(),
        "nothing finished an hour ago"
    );
    assert_eq!(ms.archive_missions(&by_age(0)).await.unwrap(), [m("done")]);
    let done = ms.get_mission(&m("done")).await.unwrap();
    assert_eq!(
        (done.status, done.outcome()),
        (MissionStatus::Archived, Some(MissionStatus::Completed))
    );
    let listed = |include_archived| MissionQuery {
        include_archived,
        ..MissionQuery::default()
    };
    let ids = |l: guild_wire::api::mission::MissionList| {
        l.missions.into_iter().map(|x| x.id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(ms.list_missions(&listed(false)).await.unwrap()),
        [m("open")]
    );
    assert_eq!(
        ids(ms.list_missions(&listed(true)).await.unwrap()).len(),
        2,
        "archived missions are still listed on request"
    );
    let e = ms
        .archive_missions(&ArchiveMissions {
            mission_id: Some(m("open")),
            older_than_ms: Some(0),
        })
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("mission_id"), "{e}");
}

#[tokio::test]
async fn every_operation_on_an_unknown_mission_is_not_found_and_writes_nothing() {
    let s = stack(BoardConfig::default()).await;
    let ms = s.guild.missions();
    create(&ms, &["known"]).await;
    let before = journal_sequence(&s.server).await;
    let (ghost, known) = (m("ghost"), m("known"));
    let errors: Vec<(&str, Error)> = vec![
        (
            "add_dependency",
            ms.add_dependency(&ghost, &known, Severity::Hard)
                .await
                .unwrap_err(),
        ),
        (
            "add_dependency on",
            ms.add_dependency(&known, &ghost, Severity::Hard)
                .await
                .unwrap_err(),
        ),
        (
            "remove_dependency",
            ms.remove_dependency(&ghost, &known).await.unwrap_err(),
        ),
        ("check_ready", ms.check_ready(&ghost).await.unwrap_err()),
        (
            "assign_mission",
            ms.assign_mission(&ghost, Some(&id("dev-1")))
                .await
                .unwrap_err(),
        ),
        (
            "mark_complete",
            ms.mark_complete(&ghost, json!({}), None).await.unwrap_err(),
        ),
        (
            "mark_failed",
            ms.mark_failed(&ghost, "x", true).await.unwrap_err(),
        ),
        (
            "cancel_mission",
            ms.cancel_mission(&ghost, "x").await.unwrap_err(),
        ),
        (
            "archive_missions",
            ms.archive_missions(&ArchiveMissions {
                mission_id: Some(ghost.clone()),
                older_than_ms: None,
            })
            .await
            .unwrap_err(),
        ),
    ];
    for (op, e) in errors {
        assert_eq!(
            e.kind(),
            ErrorKind::Rejected(ErrorCode::NotFound),
            "{op}: {e}"
        );
    }
    assert_eq!(journal_sequence(&s.server).await, before);
}

#[tokio::test]
async fn a_reply_larger_than_the_server_takes_is_an_error_not_a_timeout() {
    let server = NatsServer::start_with(ServerOptions {
        extra_config: "max_payload: 16384\n".into(),
        ..ServerOptions::default()
    });
    let s = stack_on(server, BoardConfig::default()).await;
    let ms = s.guild.missions();
    for i in 0..8 {
        let mut big = mission(&format!("big-{i}"), Phase::DEVELOPMENT);
        big.input_data = json!({ "notes": "x".repeat(3_000) });
        ms.create_mission(&big).await.unwrap();
    }
    // Answered with the rule, where the caller used to wait for its timeout.
    let e = ms
        .list_missions(&MissionQuery::default())
        .await
        .unwrap_err();
    assert_eq!(
        refusal(&e),
        (
            ErrorKind::Rejected(ErrorCode::BadRequest),
            Some("reply_too_large")
        ),
        "{e}"
    );
    let few = ms
        .list_missions(&MissionQuery {
            limit: Some(2),
            ..MissionQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(few.missions.len(), 2, "asking for less works");
}

#[tokio::test]
async fn an_allocation_whose_start_was_never_appended_is_released_by_reconciliation() {
    let s = stack(BoardConfig::default()).await;
    let ms = s.guild.missions();
    create(&ms, &["half"]).await;
    let spawner = s.guild.spawner();
    // Another system's task on dev-2, allocated first: not a mission of this board.
    spawner
        .allocate_task(&id("dev-2"), &m("not-a-mission"), None)
        .await
        .unwrap();
    // What mission-svc does before appending a start, as if it crashed right after.
    spawner
        .allocate_task(&id("dev-1"), &m("half"), Some(Phase::DEVELOPMENT))
        .await
        .unwrap();
    eventually_async(
        "the allocation the board does not hold is released",
        Duration::from_secs(15),
        || async {
            let a = spawner.get(&id("dev-1")).await.ok()?;
            (a.status == AgentStatus::Active).then_some(())
        },
    )
    .await;
    assert_eq!(
        ms.get_mission(&m("half")).await.unwrap().status,
        MissionStatus::Ready,
        "the mission was never started"
    );
    let other = spawner.get(&id("dev-2")).await.unwrap();
    assert_eq!(
        (other.status, other.assigned_task_id),
        (AgentStatus::Working, Some(m("not-a-mission"))),
        "a task that is not a mission is not ours to release"
    );
}
