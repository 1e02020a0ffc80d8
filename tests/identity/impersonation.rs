//! An agent acting as someone else: another agent's request subjects, the operator's, its
//! heartbeat, its inbox, the replies it waits for. The broker refuses each publish, so the
//! service behind the subject never sees it.

use std::time::Duration;

use guild_domain::Principal;
use guild_domain::agent::{AgentStatus, Role, SpawnRequest};
use guild_sdk::ErrorKind;
use guild_wire::api::bus::{Ack, Consume, SendRequest};
use guild_wire::api::spawner::Heartbeat;
use serde_json::json;

use crate::broker::{Guild, Raw, assert_received_nothing, id};

#[tokio::test]
async fn an_agent_cannot_send_a_request_as_another_agent() {
    let g = Guild::start().await;
    let js = g.admin_js().await;
    let raw = g.raw_a().await;
    let requests = g.stats_count("guild-bus", "request").await;
    let marks = g.marks().await;
    let body = SendRequest {
        to: id("a"),
        subject: "from b, honestly".into(),
        payload: json!({"approve": "everything"}),
        priority: None,
        task_id: None,
        message_id: None,
    };
    raw.publish_refused("guild.bus.v1.request.b", serde_json::to_vec(&body).unwrap())
        .await;
    assert_eq!(g.stats_count("guild-bus", "request").await, requests);
    marks.assert_unchanged(&js).await;
    // Through the SDK the same refusal is `PermissionDenied`, at once.
    let e = g
        .sdk("a")
        .acting_as(Principal::Agent(id("b")))
        .bus()
        .request(&body)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert_eq!(g.stats_count("guild-bus", "request").await, requests);
    g.stop().await;
}

#[tokio::test]
async fn an_agent_cannot_send_a_request_as_the_operator() {
    let g = Guild::start().await;
    let js = g.admin_js().await;
    let raw = g.raw_a().await;
    let spawns = g.stats_count("guild-spawner", "spawn").await;
    let marks = g.marks().await;
    // A root agent with most of the pool: only the operator spawns roots.
    let body = SpawnRequest::new(id("rogue"), Role::Orchestrator, 90_000);
    raw.publish_refused(
        "guild.spawner.v1.spawn.operator",
        serde_json::to_vec(&body).unwrap(),
    )
    .await;
    assert_eq!(g.stats_count("guild-spawner", "spawn").await, spawns);
    marks.assert_unchanged(&js).await;
    let e = g.operator().spawner().get(&id("rogue")).await.unwrap_err();
    assert_eq!(e.rule(), Some("unknown_agent"), "{e}");
    let e = g
        .sdk("a")
        .acting_as(Principal::Operator)
        .spawner()
        .spawn(body)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    g.stop().await;
}

#[tokio::test]
async fn an_agent_cannot_heartbeat_for_another_agent() {
    let g = Guild::start().await;
    let js = g.admin_js().await;
    let raw = g.raw_a().await;
    let heartbeats = g.stats_count("guild-spawner", "heartbeat").await;
    let marks = g.marks().await;
    let body = Heartbeat {
        context_window: None,
    };
    raw.publish_refused(
        "guild.spawner.v1.heartbeat.b",
        serde_json::to_vec(&body).unwrap(),
    )
    .await;
    assert_eq!(
        g.stats_count("guild-spawner", "heartbeat").await,
        heartbeats
    );
    marks.assert_unchanged(&js).await;
    // B was never heard from: still PENDING, no heartbeat recorded.
    let b = g.operator().spawner().get(&id("b")).await.unwrap();
    assert_eq!(b.status, AgentStatus::Pending);
    assert_eq!(b.last_heartbeat_at, None);
    g.stop().await;
}

#[tokio::test]
async fn an_agent_cannot_consume_or_ack_another_agents_inbox() {
    let g = Guild::start().await;
    let js = g.admin_js().await;
    // Two messages for B; B takes the first and has not acked it yet.
    let ops = g.operator().bus();
    ops.request(&guild_sdk::SendRequest::new(
        &id("b"),
        "first",
        json!({"n": 1}),
    ))
    .await
    .unwrap();
    ops.request(&guild_sdk::SendRequest::new(
        &id("b"),
        "second",
        json!({"n": 2}),
    ))
    .await
    .unwrap();
    let b = g.sdk("b");
    let first = b
        .bus()
        .consume(Duration::from_secs(5), &[])
        .await
        .unwrap()
        .expect("B's first message");
    assert_eq!(first.message.subject, "first");
    // Both are in B's inbox log before anything is measured.
    g.stored("guild.inbox.b.normal", "GUILD_INBOX", 2).await;
    let raw = g.raw_a().await;
    let consumes = g.stats_count("guild-bus", "consume").await;
    let acks = g.stats_count("guild-bus", "ack").await;
    let marks = g.marks().await;

    let consume = Consume {
        timeout_ms: 0,
        types: Vec::new(),
    };
    raw.publish_refused(
        "guild.bus.v1.consume.b",
        serde_json::to_vec(&consume).unwrap(),
    )
    .await;
    let ack = Ack {
        delivery_id: first.delivery_id.clone(),
    };
    raw.publish_refused("guild.bus.v1.ack.b", serde_json::to_vec(&ack).unwrap())
        .await;
    assert_eq!(g.stats_count("guild-bus", "consume").await, consumes);
    assert_eq!(g.stats_count("guild-bus", "ack").await, acks);
    marks.assert_unchanged(&js).await;
    // B's delivery was still B's to ack, and the second message still B's to take.
    b.bus().ack(&first.delivery_id).await.unwrap();
    let second = b
        .bus()
        .consume(Duration::from_secs(5), &[])
        .await
        .unwrap()
        .expect("B's second message");
    assert_eq!(second.message.subject, "second");
    g.stop().await;
}

#[tokio::test]
async fn an_agent_cannot_publish_a_reply_into_another_agents_inbox() {
    let g = Guild::start().await;
    let js = g.admin_js().await;
    // B waits on its reply inbox, as a client waiting for a service's answer does.
    let b = Raw::agent(&g.server, &g.b).await;
    let mut replies = b.client.subscribe("_INBOX.agent.b.>").await.unwrap();
    b.client.flush().await.unwrap();
    let raw = g.raw_a().await;
    let marks = g.marks().await;
    // A spoofed answer to a spawn, and a spoofed error.
    raw.publish_refused(
        "_INBOX.agent.b.x",
        json!({"id": "b", "status": "ACTIVE", "budget": {"allocated": 1_000_000}}).to_string(),
    )
    .await;
    raw.publish_refused(
        "_INBOX.agent.b.x.y",
        json!({"error": {"code": "forbidden", "rule": "spoofed", "message": "stop"}}).to_string(),
    )
    .await;
    // Had either been routed, B would have it before the answer to its flush.
    assert_received_nothing(&b, &mut replies).await;
    marks.assert_unchanged(&js).await;
    g.stop().await;
}
