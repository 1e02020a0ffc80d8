//! `claim_next` against a real nats-server, with a real spawner-svc beside mission-svc:
//! agents pulling their own work (issue 22), each mission taken exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use futures_util::TryStreamExt;
use guild_domain::Phase;
use guild_domain::agent::{AgentStatus, Role, SpawnRequest};
use guild_domain::mission::{BoardConfig, MissionStatus};
use guild_sdk::{ErrorKind, Guild};
use guild_wire::ErrorCode;
use serde_json::json;

mod common;
use common::*;

/// Claims, completes and claims again until nothing is left; the missions taken, in order,
/// with their priorities.
async fn pull(g: Guild, me: &str) -> Vec<(String, u8)> {
    let ms = g.missions();
    let mut took = Vec::new();
    while let Some(m) = ms.claim_next(None).await.unwrap() {
        assert_eq!(
            (m.status, m.assigned_agent_id.as_ref(), m.attempts),
            (MissionStatus::Active, Some(&id(me)), 1),
            "{me} claimed {m:?}"
        );
        ms.mark_complete(&m.id, json!({"by": me}), Some(0.9))
            .await
            .unwrap();
        took.push((m.id.to_string(), m.priority));
    }
    took
}

#[tokio::test]
async fn developers_claiming_at_once_take_every_developer_mission_exactly_once() {
    let s = stack(BoardConfig::default()).await;
    // Beside dev-1 and dev-2: a tester, and a developer that does not claim until the end.
    for (name, role) in [("qa-1", Role::Qa), ("dev-3", Role::Developer)] {
        s.team
            .spawn(SpawnRequest::new(id(name), role, 10_000).parent(id("orch")))
            .await;
        s.agent(name).spawner().heartbeat(None).await.unwrap();
    }
    let ms = s.guild.missions();
    let burst: Vec<String> = (0..24).map(|i| format!("build-{i:02}")).collect();
    for (i, name) in burst.iter().enumerate() {
        let mut nm = mission(name, Phase::DEVELOPMENT);
        nm.role = Some(Role::Developer);
        nm.priority = 1 + (i % 10) as u8;
        ms.create_mission(&nm).await.unwrap();
    }
    // Each of these stands first in line by priority, and none is the two claimers'.
    let mut tests = mission("tests", Phase::DEVELOPMENT);
    tests.role = Some(Role::Qa);
    tests.priority = 10;
    let mut meant = mission("meant", Phase::DEVELOPMENT);
    meant.role = Some(Role::Developer);
    meant.priority = 10;
    meant.assigned_agent_id = Some(id("dev-3"));
    let mut anyone = mission("anyone", Phase::DEVELOPMENT);
    anyone.priority = 10;
    for nm in [&tests, &meant, &anyone] {
        ms.create_mission(nm).await.unwrap();
    }

    let (one, two) = tokio::join!(
        pull(s.agent("dev-1"), "dev-1"),
        pull(s.agent("dev-2"), "dev-2")
    );
    assert!(
        !one.is_empty() && !two.is_empty(),
        "both claimed: {one:?} {two:?}"
    );
    let mut taken: Vec<&str> = one.iter().chain(&two).map(|(m, _)| m.as_str()).collect();
    taken.sort_unstable();
    assert_eq!(taken, burst, "every developer mission exactly once");
    for (who, took) in [("dev-1", &one), ("dev-2", &two)] {
        assert!(
            took.windows(2).all(|w| w[0].1 >= w[1].1),
            "{who} took the best one left each time: {took:?}"
        );
    }
    for name in &burst {
        let m = ms.get_mission(&m(name)).await.unwrap();
        assert_eq!(
            (m.status, m.attempts),
            (MissionStatus::Completed, 1),
            "{name}"
        );
    }
    for name in ["tests", "meant", "anyone"] {
        assert_eq!(
            ms.get_mission(&m(name)).await.unwrap().status,
            MissionStatus::Ready,
            "{name} is not the claimers'"
        );
    }
    // Losing a race for a candidate is not a claim conflict to escalate.
    let js = async_nats::jetstream::new(s.server.connect_admin().await);
    let events = js.get_stream("GUILD_EVENTS").await.unwrap();
    let conflicts: Vec<(String, usize)> = events
        .info_with_subjects("guild.evt.mission.claim_conflict.>")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(conflicts.is_empty(), "{conflicts:?}");

    // Nothing is left for dev-1; the mission meant for dev-3 is dev-3's, the tester's the
    // tester's, and the role-less one is nobody's to claim.
    let dev1 = s.agent("dev-1");
    assert_eq!(dev1.missions().claim_next(None).await.unwrap(), None);
    let dev3 = s.agent("dev-3");
    let got = dev3.missions().claim_next(None).await.unwrap().unwrap();
    assert_eq!((got.id, got.status), (m("meant"), MissionStatus::Active));
    let qa = s.agent("qa-1");
    let got = qa
        .missions()
        .claim_next(Some(&Role::Qa))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.id, got.assigned_agent_id),
        (m("tests"), Some(id("qa-1")))
    );
    assert_eq!(
        ms.get_mission(&m("anyone")).await.unwrap().status,
        MissionStatus::Ready
    );

    // An agent claims for its own role only, naming the field.
    let e = dev1
        .missions()
        .claim_next(Some(&Role::Qa))
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.rule(), e.field()),
        (
            ErrorKind::Rejected(ErrorCode::BadRequest),
            Some("invalid_field"),
            Some("role")
        ),
        "{e}"
    );
    // Only an agent claims: the operator assigns.
    let e = ms.claim_next(None).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.rule()),
        (
            ErrorKind::Rejected(ErrorCode::Forbidden),
            Some("agent_only")
        ),
        "{e}"
    );
}

#[tokio::test]
async fn a_claimer_that_already_holds_a_task_is_refused_and_takes_nothing() {
    let s = stack(BoardConfig::default()).await;
    let ms = s.guild.missions();
    for name in ["held", "next"] {
        let mut nm = mission(name, Phase::DEVELOPMENT);
        nm.role = Some(Role::Developer);
        ms.create_mission(&nm).await.unwrap();
    }
    assign(&ms, "held", "dev-1").await;
    let e = s
        .agent("dev-1")
        .missions()
        .claim_next(None)
        .await
        .unwrap_err();
    assert_eq!(e.rule(), Some("agent_busy"), "{e}");
    assert_eq!(
        ms.get_mission(&m("next")).await.unwrap().status,
        MissionStatus::Ready,
        "the claim stopped at the first refusal about the claimer"
    );
    let dev1 = s.guild.spawner().get(&id("dev-1")).await.unwrap();
    assert_eq!(
        (dev1.status, dev1.assigned_task_id),
        (AgentStatus::Working, Some(m("held"))),
        "its own task is untouched"
    );
    // Another developer takes it.
    let got = s
        .agent("dev-2")
        .missions()
        .claim_next(None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.id, m("next"));
    let claimed: BTreeSet<_> = ms
        .list_missions(&Default::default())
        .await
        .unwrap()
        .missions
        .into_iter()
        .filter(|m| m.status == MissionStatus::Active)
        .map(|m| (m.id.to_string(), m.assigned_agent_id.unwrap().to_string()))
        .collect();
    assert_eq!(
        claimed,
        [("held", "dev-1"), ("next", "dev-2")]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .into()
    );
}
