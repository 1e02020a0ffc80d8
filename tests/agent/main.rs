//! The SDK's agent handle against the real services: its first heartbeat makes it ACTIVE,
//! `on` hands each message of the chosen types to a handler and acks it, and `work`
//! charges what a unit of work used, or releases the reservation when the work fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

use std::time::Duration;

use guild_domain::agent::{AgentStatus, Role, SpawnRequest};
use guild_domain::message::MessageType;
use guild_domain::mission::NewMission;
use guild_domain::{AgentId, MissionId, Phase};
use guild_sdk::WorkError;
use guild_testkit::{NatsServer, eventually_async};
use tokio::sync::mpsc;

#[tokio::test]
async fn an_agent_heartbeats_handles_its_messages_and_works_under_its_budget() {
    let server = NatsServer::start();
    let (services, team) = common::start_in_process(&server).await;
    let guild = team.operator();
    let id = AgentId::new("worker").unwrap();
    team.spawn(SpawnRequest::new(id.clone(), Role::Developer, 5_000))
        .await;
    let me = team.agent(&id).agent().unwrap();
    me.start_heartbeats(Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(
        guild.spawner().get(&id).await.unwrap().status,
        AgentStatus::Active
    );

    // `on`: requests reach the handler (questions stay queued), and are acked.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let sub = me.on(&[MessageType::Request], move |d| {
        let tx = tx.clone();
        async move {
            tx.send(d.message.subject).map_err(|e| e.to_string())?;
            Ok(())
        }
    });
    guild
        .bus()
        .request(&guild_sdk::SendRequest::new(
            &id,
            "first",
            serde_json::json!({}),
        ))
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, "first");
    drop(sub);
    eventually_async("the request was acked", Duration::from_secs(10), || async {
        let stats = guild.bus().get_message_stats().await.ok()?;
        (stats.queue_size == 0).then_some(())
    })
    .await;

    // `work`: what was used is charged to the agent and the mission; a failure releases.
    let mission = MissionId::new("m1").unwrap();
    guild
        .missions()
        .create_mission(&{
            let mut m = NewMission::new(mission.clone(), "m", Phase::DEVELOPMENT);
            m.token_budget = 3_000;
            m
        })
        .await
        .unwrap();
    let value = me
        .work(2_000, Some(&mission), || async {
            Ok::<_, String>(("done", 1_200))
        })
        .await
        .unwrap();
    assert_eq!(value, "done");
    let failed = me
        .work(1_000, Some(&mission), || async {
            Err::<((), u64), _>("no")
        })
        .await;
    assert!(matches!(failed, Err(WorkError::Work("no"))));
    let budget = guild.spawner().get(&id).await.unwrap().budget;
    assert_eq!((budget.used, budget.reserved), (1_200, 0));
    let stats = guild.spawner().get_stats().await.unwrap();
    assert_eq!(stats.tokens.used_by_mission.get(&mission), Some(&1_200));

    // Over the budget: refused before any work runs.
    let refused = me
        .work(10_000, None, || async { Ok::<_, String>(((), 0)) })
        .await;
    let Err(WorkError::Guild(e)) = refused else {
        panic!("expected a refusal");
    };
    assert_eq!(e.rule(), Some("budget_exceeded"));
    drop(me);
    services.stop().await;
}
