//! An agent listening where it has no business: another agent's replies and inbox log,
//! every inbox, a service's requests (as a listener or as a member of the service's queue
//! group), NATS micro discovery. The broker refuses each subscription, so nothing reaches
//! it, and the real service keeps answering every request.

use std::time::Duration;

use guild_domain::agent::{Role, SpawnRequest};
use serde_json::json;

use crate::broker::{Guild, Raw, assert_received_nothing, id};

#[tokio::test]
async fn an_agent_cannot_read_another_agents_replies() {
    let g = Guild::start().await;
    let raw = g.raw_a().await;
    let mut spy = raw.subscribe_refused("_INBOX.agent.b.>", None).await;
    // B asks and gets its answer; had A's subscription been accepted, the server would
    // have routed the same reply to A before answering A's flush.
    let profile = g.sdk("b").spawner().get(&id("b")).await.unwrap();
    assert_eq!(profile.id, id("b"));
    assert_received_nothing(&raw, &mut spy).await;
    g.stop().await;
}

/// Sends B a message and waits until B's own reader of its inbox log has it.
async fn a_message_b_reads_in_its_log(g: &Guild) {
    let b = Raw::agent(&g.server, &g.b).await;
    let mut log = b.client.subscribe("guild.inbox.b.>").await.unwrap();
    b.client.flush().await.unwrap();
    g.operator()
        .bus()
        .request(&guild_sdk::SendRequest::new(
            &id("b"),
            "for b's eyes",
            json!({"secret": "plan"}),
        ))
        .await
        .unwrap();
    use futures_util::StreamExt;
    let m = tokio::time::timeout(Duration::from_secs(10), log.next())
        .await
        .expect("B reads its inbox log")
        .unwrap();
    assert_eq!(m.subject.as_str(), "guild.inbox.b.normal");
}

#[tokio::test]
async fn an_agent_cannot_read_another_agents_inbox_log() {
    let g = Guild::start().await;
    let raw = g.raw_a().await;
    let mut spy = raw.subscribe_refused("guild.inbox.b.>", None).await;
    a_message_b_reads_in_its_log(&g).await;
    assert_received_nothing(&raw, &mut spy).await;
    g.stop().await;
}

#[tokio::test]
async fn an_agent_cannot_read_every_inbox() {
    let g = Guild::start().await;
    let raw = g.raw_a().await;
    let mut spy = raw.subscribe_refused("guild.inbox.>", None).await;
    a_message_b_reads_in_its_log(&g).await;
    assert_received_nothing(&raw, &mut spy).await;
    g.stop().await;
}

#[tokio::test]
async fn an_agent_cannot_listen_to_a_services_requests() {
    let g = Guild::start().await;
    let raw = g.raw_a().await;
    let mut spy = raw.subscribe_refused("guild.spawner.v1.>", None).await;
    let before = g.stats_count("guild-spawner", "get_stats").await;
    for _ in 0..3 {
        g.operator().spawner().get_stats().await.unwrap();
    }
    assert_eq!(
        g.stats_count("guild-spawner", "get_stats").await,
        before + 3
    );
    assert_received_nothing(&raw, &mut spy).await;
    g.stop().await;
}

#[tokio::test]
async fn an_agent_cannot_join_a_services_queue_group() {
    let g = Guild::start().await;
    let raw = g.raw_a().await;
    let queue = "guild-spawner";
    let mut all = raw
        .subscribe_refused("guild.spawner.v1.>", Some(queue))
        .await;
    let mut spawns = raw
        .subscribe_refused("guild.spawner.v1.spawn.*", Some(queue))
        .await;
    // Requests the impersonator would have taken its share of, the spawns' replies
    // carrying credentials: every one answered by the spawner itself.
    let (stats, spawn) = (
        g.stats_count("guild-spawner", "get_stats").await,
        g.stats_count("guild-spawner", "spawn").await,
    );
    for _ in 0..4 {
        g.operator().spawner().get_stats().await.unwrap();
    }
    for n in 0..2 {
        let spawned = g
            .operator()
            .spawner()
            .spawn(SpawnRequest::new(id(&format!("c{n}")), Role::Developer, 10))
            .await
            .unwrap();
        assert!(spawned.credentials.is_some());
    }
    assert_eq!(g.stats_count("guild-spawner", "get_stats").await, stats + 4);
    assert_eq!(g.stats_count("guild-spawner", "spawn").await, spawn + 2);
    assert_received_nothing(&raw, &mut all).await;
    assert_received_nothing(&raw, &mut spawns).await;
    g.stop().await;
}

#[tokio::test]
async fn an_agent_cannot_answer_service_discovery() {
    let g = Guild::start().await;
    let raw = g.raw_a().await;
    let mut ping = raw.subscribe_refused("$SRV.PING", None).await;
    let mut info = raw.subscribe_refused("$SRV.INFO.guild-spawner", None).await;
    // The operator's discovery reaches the real service.
    let reply = g
        .operator()
        .client()
        .request("$SRV.INFO.guild-spawner", Vec::new().into())
        .await
        .unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(answer["name"], "guild-spawner");
    let reply = g
        .operator()
        .client()
        .request("$SRV.PING", Vec::new().into())
        .await
        .unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    assert!(
        answer["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("guild-")),
        "{answer}"
    );
    assert_received_nothing(&raw, &mut ping).await;
    assert_received_nothing(&raw, &mut info).await;
    g.stop().await;
}
