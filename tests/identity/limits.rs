//! What an agent's credentials carry besides permissions (a payload and a subscription
//! limit, enforced by the broker), and the request-rate quota each service holds every
//! agent to.

use std::time::Duration;

use guild_auth::claims::AgentLimits;
use guild_sdk::ErrorKind;
use guild_wire::ErrorCode;
use guild_wire::api::bus::SendRequest;
use guild_wire::payload::DEFAULT_MAX_PAYLOAD;
use serde_json::json;

use crate::broker::{Guild, assert_received_nothing, id};

/// A request of A's (its own subject, which it may use) whose body is `len` bytes.
fn request_of(len: usize) -> Vec<u8> {
    let envelope = serde_json::to_vec(&SendRequest {
        to: id("b"),
        subject: "big".into(),
        payload: json!(""),
        priority: None,
        task_id: None,
        message_id: None,
    })
    .unwrap();
    let pad = len - envelope.len();
    serde_json::to_vec(&SendRequest {
        to: id("b"),
        subject: "big".into(),
        payload: json!("x".repeat(pad)),
        priority: None,
        task_id: None,
        message_id: None,
    })
    .unwrap()
}

#[tokio::test]
async fn a_message_past_the_credentials_payload_limit_closes_the_connection() {
    let g = Guild::start().await;
    let js = g.admin_js().await;
    let limit = AgentLimits::default().payload as usize;
    assert_eq!(limit, DEFAULT_MAX_PAYLOAD + 8 * 1024);
    let raw = g.raw_a().await;
    let requests = g.stats_count("guild-bus", "request").await;
    let marks = g.marks().await;
    let body = request_of(limit + 1);
    assert_eq!(body.len(), limit + 1);
    // The client does not know the credential's limit (the server's is larger): it is the
    // broker that refuses.
    assert!(raw.client.server_info().max_payload > limit);
    raw.client
        .publish("guild.bus.v1.request.a", body.into())
        .await
        .unwrap();
    let _ = raw.client.flush().await;
    let error = raw.expect_error("maximum payload").await;
    raw.expect_disconnected().await;
    assert_eq!(
        g.stats_count("guild-bus", "request").await,
        requests,
        "{error}"
    );
    marks.assert_unchanged(&js).await;
    g.stop().await;
}

/// The credential's payload limit leaves room for headers above Guild's own body limit:
/// a body just past Guild's limit reaches the bus, which refuses it with a typed error,
/// and the connection stays.
#[tokio::test]
async fn a_body_within_the_credentials_limit_but_past_guilds_gets_a_typed_refusal() {
    let g = Guild::start().await;
    let a = g.sdk("a");
    let body = request_of(DEFAULT_MAX_PAYLOAD + 1);
    let reply = a
        .client()
        .request("guild.bus.v1.request.a", body.into())
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(v["error"]["rule"], "payload_too_large", "{v}");
    a.spawner().get(&id("a")).await.unwrap();
    g.stop().await;
}

#[tokio::test]
async fn subscriptions_past_the_credentials_limit_are_refused() {
    let g = Guild::start().await;
    let limit = AgentLimits::default().subscriptions as usize;
    assert_eq!(limit, 64);
    let raw = g.raw_a().await;
    let mut subs = Vec::new();
    for n in 0..limit {
        subs.push(
            raw.client
                .subscribe(format!("_INBOX.agent.a.s{n}"))
                .await
                .unwrap(),
        );
    }
    raw.client.flush().await.unwrap();
    assert!(raw.errors().is_empty(), "{:?}", raw.errors());
    let mut past = raw
        .client
        .subscribe(format!("_INBOX.agent.a.s{limit}"))
        .await
        .unwrap();
    raw.client.flush().await.unwrap();
    let error = raw.expect_error("maximum subscriptions").await;
    // The connection stays, the subscriptions within the limit work, the one past it gets
    // nothing: published first, it would have arrived before the other.
    let admin = g.server.connect_admin().await;
    admin
        .publish(format!("_INBOX.agent.a.s{limit}"), "past".into())
        .await
        .unwrap();
    admin
        .publish(format!("_INBOX.agent.a.s{}", limit - 1), "within".into())
        .await
        .unwrap();
    admin.flush().await.unwrap();
    use futures_util::StreamExt;
    let got = tokio::time::timeout(Duration::from_secs(10), subs[limit - 1].next())
        .await
        .expect("the last subscription within the limit works")
        .unwrap();
    assert_eq!(&got.payload[..], b"within");
    assert_received_nothing(&raw, &mut past).await;
    assert!(!raw.was_disconnected(), "{error}: {:?}", raw.events());
    g.stop().await;
}

#[tokio::test]
async fn requests_past_the_rate_limit_are_refused_as_rate_limited() {
    let g = Guild::start().await;
    let a = g.sdk("a");
    // The default quota: 200 a second, bursts of 400. A thousand at once.
    let calls = (0..1_000).map(|_| {
        let a = a.clone();
        async move { a.spawner().get(&id("a")).await }
    });
    let results = futures_util::future::join_all(calls).await;
    let mut ok = 0;
    let mut limited = 0;
    for r in results {
        match r {
            Ok(_) => ok += 1,
            Err(e) if e.kind() == ErrorKind::Rejected(ErrorCode::RateLimited) => {
                assert_eq!(e.rule(), Some("rate_limited"));
                limited += 1;
            }
            Err(e) => panic!("neither answered nor rate limited: {e}"),
        }
    }
    assert!(limited > 0, "{ok} answered, none rate limited");
    assert!(ok >= 400, "only {ok} answered: the burst is 400");
    // Another agent has its own quota, and the operator none.
    g.sdk("b").spawner().get(&id("b")).await.unwrap();
    g.operator().spawner().get(&id("a")).await.unwrap();
    g.stop().await;
}
