//! A request on the agent's own subject, which the broker lets through, carrying a reply
//! subject that is not the agent's: the service answers on it with its own credentials,
//! which may publish far more than the agent's (every reply inbox; the bus every inbox
//! log; each service its journal, its journal's bucket, its events and audit kinds).
//! nats-server checks the subject a client publishes on, never the reply subject it
//! names, so only the service can refuse to answer anywhere but under the caller's own
//! inbox prefix (`_INBOX.agent.<id>`).
//!
//! Each test sends such a request, waits until the service has dealt with it, has the
//! same service make one legitimate write to the same place (it lands after the answer
//! would have: one connection, one stream), and checks that nothing else landed.

use std::time::Duration;

use async_nats::jetstream::{self, message::StreamMessage};
use guild_domain::agent::{Role, SpawnRequest};
use guild_domain::{Principal, Service};
use guild_wire::store;
use serde_json::{Value, json};

use crate::broker::{Guild, Raw, assert_received_nothing, id, last_seq, messages_after};

/// Sends `body` on A's own `subject` of `micro`'s `endpoint`, with `reply` as the reply
/// subject, and waits until the service has answered it: NATS micro counts a request in
/// `$SRV.STATS` once its reply is sent. A service that drops such a request sends none;
/// then there is nothing to wait for, and a bounded wait stands in.
async fn redirect(g: &Guild, raw: &Raw, micro: &str, endpoint: &str, reply: &str, body: Value) {
    let subject = format!(
        "guild.{}.v1.{endpoint}.a",
        micro.trim_start_matches("guild-")
    );
    let before = g.stats_count(micro, endpoint).await;
    raw.client
        .publish_with_reply(subject, reply.to_owned(), body.to_string().into())
        .await
        .unwrap();
    raw.client.flush().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while g.stats_count(micro, endpoint).await == before && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        raw.errors().is_empty(),
        "the broker refused the request itself: {:?}",
        raw.errors()
    );
}

/// What `stream` received after `mark` that `expected` does not account for.
async fn unexpected(
    js: &jetstream::Context,
    stream: &str,
    mark: u64,
    expected: impl Fn(&StreamMessage) -> bool,
) -> Vec<String> {
    messages_after(js, stream, mark)
        .await
        .into_iter()
        .filter(|m| !expected(m) && !crate::broker::is_upkeep(stream, &m.payload))
        .map(|m| {
            format!(
                "#{} {}: {}",
                m.sequence,
                m.subject,
                String::from_utf8_lossy(&m.payload)
            )
        })
        .collect()
}

#[tokio::test]
async fn a_service_never_answers_into_another_agents_reply_inbox() {
    let g = Guild::start().await;
    let b = Raw::agent(&g.server, &g.b).await;
    let mut replies = b.client.subscribe("_INBOX.agent.b.>").await.unwrap();
    b.client.flush().await.unwrap();
    let raw = g.raw_a().await;
    // `authorize`'s answer, delivered where B waits for one of its own.
    redirect(
        &g,
        &raw,
        "guild-spawner",
        "authorize",
        "_INBOX.agent.b.x",
        json!({"agent_id": "a", "action": "deploy_production"}),
    )
    .await;
    // Any later answer of the spawner's comes after it.
    g.sdk("a").spawner().get(&id("a")).await.unwrap();
    assert_received_nothing(&b, &mut replies).await;
    g.stop().await;
}

#[tokio::test]
async fn a_service_never_answers_into_an_inbox_log() {
    let g = Guild::start().await;
    let js = g.admin_js().await;
    let mark = last_seq(&js, store::INBOX_STREAM).await;
    let raw = g.raw_a().await;
    redirect(
        &g,
        &raw,
        "guild-bus",
        "get_message_stats",
        "guild.inbox.b.critical",
        json!({}),
    )
    .await;
    // The bus's next inbox-log write: a message to A.
    g.operator()
        .bus()
        .request(&guild_sdk::SendRequest::new(
            &id("a"),
            "sentinel",
            json!({}),
        ))
        .await
        .unwrap();
    g.published("guild.inbox.a.normal", store::INBOX_STREAM)
        .await;
    let forged = unexpected(&js, store::INBOX_STREAM, mark, |m| {
        m.subject.as_str() == "guild.inbox.a.normal"
    })
    .await;
    assert!(
        forged.is_empty(),
        "bus-svc answered A's request into B's inbox log:\n{}",
        forged.join("\n")
    );
    g.stop().await;
}

#[tokio::test]
async fn a_service_never_answers_into_its_journal() {
    let g = Guild::start().await;
    let js = g.admin_js().await;
    let journal = "GUILD_JOURNAL_BUS";
    let mark = last_seq(&js, journal).await;
    let raw = g.raw_a().await;
    redirect(
        &g,
        &raw,
        "guild-bus",
        "get_message_stats",
        "guild.journal.bus",
        json!({}),
    )
    .await;
    // The bus's next journal entry: a message to A (its inbox log follows the entry).
    g.operator()
        .bus()
        .request(&guild_sdk::SendRequest::new(
            &id("a"),
            "sentinel",
            json!({}),
        ))
        .await
        .unwrap();
    g.published("guild.inbox.a.normal", store::INBOX_STREAM)
        .await;
    let forged = unexpected(&js, journal, mark, |m| {
        let v: Value = serde_json::from_slice(&m.payload).unwrap_or_default();
        v["writer"].is_string() && v["records"].is_array()
    })
    .await;
    assert!(
        forged.is_empty(),
        "bus-svc answered A's request into its own journal:\n{}",
        forged.join("\n")
    );
    g.stop().await;
}

#[tokio::test]
async fn a_service_never_answers_as_an_event() {
    let g = Guild::start().await;
    let js = g.admin_js().await;
    let mark = last_seq(&js, store::EVENTS_STREAM).await;
    let raw = g.raw_a().await;
    redirect(
        &g,
        &raw,
        "guild-spawner",
        "get_stats",
        "guild.evt.spawner.spawned.ghost",
        json!({}),
    )
    .await;
    // The spawner's next event: the operator spawns `s`.
    g.operator()
        .spawner()
        .spawn(SpawnRequest::new(id("s"), Role::Developer, 10))
        .await
        .unwrap();
    g.published("guild.evt.spawner.spawned.s", store::EVENTS_STREAM)
        .await;
    let forged = unexpected(&js, store::EVENTS_STREAM, mark, |m| {
        m.subject.as_str().ends_with(".s")
    })
    .await;
    assert!(
        forged.is_empty(),
        "spawner-svc answered A's request as a `spawned` event:\n{}",
        forged.join("\n")
    );
    g.stop().await;
}

#[tokio::test]
async fn a_service_never_answers_into_the_audit_log() {
    let g = Guild::start().await;
    let js = g.admin_js().await;
    let mark = last_seq(&js, store::AUDIT_STREAM).await;
    let raw = g.raw_a().await;
    redirect(
        &g,
        &raw,
        "guild-spawner",
        "get_stats",
        "guild.audit.spawn.ghost",
        json!({}),
    )
    .await;
    // The spawner's next audit record: the operator spawns `s`.
    g.operator()
        .spawner()
        .spawn(SpawnRequest::new(id("s"), Role::Developer, 10))
        .await
        .unwrap();
    g.published("guild.audit.spawn.s", store::AUDIT_STREAM)
        .await;
    let forged = unexpected(&js, store::AUDIT_STREAM, mark, |m| {
        m.subject.as_str() == "guild.audit.spawn.s"
    })
    .await;
    let records = guild_sdk::audit::export(g.operator()).await.unwrap();
    let keys = guild_sdk::audit::keys(g.operator()).await.unwrap();
    let report = guild_sdk::audit::verify(&records, Some(&keys));
    assert!(
        forged.is_empty() && report.ok,
        "spawner-svc answered A's request into the audit log (which denies deletes: for \
         good):\n{}\n{report:?}",
        forged.join("\n")
    );
    g.stop().await;
}

/// The journal's bucket holds the snapshot pointer a starting instance reads first.
#[tokio::test]
async fn a_service_never_answers_into_its_journal_bucket() {
    let mut g = Guild::start().await;
    let js = g.admin_js().await;
    let bucket = "KV_guild_bus_journal";
    let mark = last_seq(&js, bucket).await;
    let raw = g.raw_a().await;
    redirect(
        &g,
        &raw,
        "guild-bus",
        "get_message_stats",
        "$KV.guild_bus_journal.snapshot",
        json!({}),
    )
    .await;
    g.sdk("a").bus().get_message_stats().await.unwrap();
    // Stopped and started again, bus-svc reads the pointer first.
    g.services.take().unwrap().stop().await;
    let bus = Principal::Service(Service::Bus);
    let client = g.server.connect_as(&bus).await;
    let mut config = bus_svc::Config::new(guild_domain::message::OfficeConfig::default());
    config.common.nats.creds = Some(g.server.creds_file(&bus));
    let started = tokio::time::timeout(Duration::from_secs(20), bus_svc::start(client, config))
        .await
        .expect("bus-svc starts or fails in time")
        .map(|_| ())
        .map_err(|e| e.to_string());
    let written = unexpected(&js, bucket, mark, |_| false).await;
    assert!(
        written.is_empty() && started.is_ok(),
        "bus-svc answered A's request into its journal bucket:\n{}\nand then started with: \
         {started:?}",
        written.join("\n")
    );
}
