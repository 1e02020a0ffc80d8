//! The observer's credentials: the read operations and read-only stream access, nothing
//! that writes.

use guild_domain::Principal;
use guild_domain::agent::{Role, SpawnRequest};
use guild_sdk::ErrorKind;
use serde_json::json;

use crate::broker::{Guild, id};

#[tokio::test]
async fn the_observer_is_refused_writes_by_the_broker() {
    let g = Guild::start().await;
    let js = g.admin_js().await;
    let raw = g.raw_as(&Principal::Observer).await;
    let spawns = g.stats_count("guild-spawner", "spawn").await;
    let terminates = g.stats_count("guild-spawner", "terminate").await;
    let requests = g.stats_count("guild-bus", "request").await;
    let marks = g.marks().await;
    let spawn = SpawnRequest::new(id("watcher"), Role::Orchestrator, 1_000);
    raw.publish_refused(
        "guild.spawner.v1.spawn.observer",
        serde_json::to_vec(&spawn).unwrap(),
    )
    .await;
    raw.publish_refused(
        "guild.spawner.v1.terminate.observer",
        json!({"agent_id": "a"}).to_string(),
    )
    .await;
    raw.publish_refused(
        "guild.bus.v1.request.observer",
        json!({"to": "a", "subject": "x"}).to_string(),
    )
    .await;
    // Its read operations as anyone else (the operator) are refused too.
    raw.publish_refused("guild.spawner.v1.get_stats.operator", "{}")
        .await;
    assert_eq!(g.stats_count("guild-spawner", "spawn").await, spawns);
    assert_eq!(
        g.stats_count("guild-spawner", "terminate").await,
        terminates
    );
    assert_eq!(g.stats_count("guild-bus", "request").await, requests);
    marks.assert_unchanged(&js).await;
    // Through the SDK: `PermissionDenied`.
    let observer = guild_sdk::connect(&g.server.options_as(&Principal::Observer))
        .await
        .unwrap();
    assert_eq!(observer.principal(), &Principal::Observer);
    let e = observer.spawner().spawn(spawn).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert_eq!(g.stats_count("guild-spawner", "spawn").await, spawns);
    g.stop().await;
}

#[tokio::test]
async fn the_observer_may_read() {
    let g = Guild::start().await;
    let observer = guild_sdk::connect(&g.server.options_as(&Principal::Observer))
        .await
        .unwrap();
    let stats = observer.spawner().get_stats().await.unwrap();
    assert_eq!(stats.total_agents, 2);
    assert_eq!(observer.spawner().get(&id("a")).await.unwrap().id, id("a"));
    observer.bus().get_message_stats().await.unwrap();
    observer.missions().get_statistics().await.unwrap();
    // And the audit log, straight from its stream.
    let records = guild_sdk::audit::export(&observer).await.unwrap();
    let keys = guild_sdk::audit::keys(&observer).await.unwrap();
    let report = guild_sdk::audit::verify(&records, Some(&keys));
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, 2);
    g.stop().await;
}
