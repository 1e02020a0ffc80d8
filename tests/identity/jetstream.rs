//! The JetStream API: an agent has no right to it at all, and the operator reads three
//! streams (info and Direct Get) but deletes, purges, updates and consumes none. Each call
//! is refused by the broker; the streams are still there, as they were.

use async_nats::jetstream;
use guild_domain::Principal;
use guild_wire::store;
use serde_json::json;

use crate::broker::{Guild, Raw, id};

/// What a stream is, for telling whether a call changed it.
async fn state_of(js: &jetstream::Context, stream: &str) -> (u64, u64, u64, Vec<String>) {
    let mut s = js
        .get_stream(stream)
        .await
        .unwrap_or_else(|e| panic!("{stream} is gone: {e}"));
    let info = s.info().await.unwrap().clone();
    (
        info.state.messages,
        info.state.first_sequence,
        info.state.last_sequence,
        info.config.subjects,
    )
}

/// A consumer Guild never makes.
const SPY: &str = "spy";

async fn assert_no_spy(js: &jetstream::Context, stream: &str) {
    let s = js.get_stream(stream).await.unwrap();
    assert!(
        s.consumer_info(SPY).await.is_err(),
        "a consumer {SPY} exists on {stream}"
    );
}

/// Sends every call of `calls` as `raw` and checks each is refused and changed nothing.
async fn refused_calls(g: &Guild, raw: &Raw, calls: &[(String, serde_json::Value)]) {
    let js = g.admin_js().await;
    let streams = [
        store::AUDIT_STREAM,
        store::INBOX_STREAM,
        "GUILD_JOURNAL_BUS",
        "GUILD_JOURNAL_SPAWNER",
    ];
    let mut before = Vec::new();
    for s in streams {
        before.push(state_of(&js, s).await);
    }
    let marks = g.marks().await;
    for (subject, body) in calls {
        raw.publish_refused(subject, body.to_string()).await;
    }
    for (s, was) in streams.iter().zip(before) {
        assert_eq!(state_of(&js, s).await, was, "{s}");
        assert_no_spy(&js, s).await;
    }
    marks.assert_unchanged(&js).await;
}

/// A consumer reading every message of `stream` from the start.
fn spy_consumer(stream: &str, filter: &str) -> serde_json::Value {
    json!({
        "stream_name": stream,
        "config": {
            "name": SPY,
            "durable_name": SPY,
            "filter_subject": filter,
            "deliver_policy": "all",
            "ack_policy": "none",
        },
    })
}

/// Guild with a message in B's inbox, so the inbox log and the bus journal hold
/// something to lose.
async fn with_a_message() -> Guild {
    let g = Guild::start().await;
    g.operator()
        .bus()
        .request(&guild_sdk::SendRequest::new(&id("b"), "keep me", json!({})))
        .await
        .unwrap();
    g.published("guild.inbox.b.normal", store::INBOX_STREAM)
        .await;
    g
}

#[tokio::test]
async fn an_agent_cannot_delete_the_audit_stream() {
    let g = with_a_message().await;
    let raw = g.raw_a().await;
    let calls = [
        ("$JS.API.STREAM.DELETE.GUILD_AUDIT".to_owned(), json!({})),
        (
            "$JS.API.STREAM.MSG.DELETE.GUILD_AUDIT".to_owned(),
            json!({"seq": 1}),
        ),
    ];
    refused_calls(&g, &raw, &calls).await;
    g.stop().await;
}

#[tokio::test]
async fn an_agent_cannot_purge_a_journal() {
    let g = with_a_message().await;
    let raw = g.raw_a().await;
    let calls = [(
        "$JS.API.STREAM.PURGE.GUILD_JOURNAL_BUS".to_owned(),
        json!({}),
    )];
    refused_calls(&g, &raw, &calls).await;
    g.stop().await;
}

#[tokio::test]
async fn an_agent_cannot_create_a_consumer_on_the_inbox_log() {
    let g = with_a_message().await;
    let raw = g.raw_a().await;
    let calls = [
        (
            "$JS.API.CONSUMER.CREATE.GUILD_INBOX".to_owned(),
            spy_consumer(store::INBOX_STREAM, "guild.inbox.b.>"),
        ),
        (
            format!("$JS.API.CONSUMER.CREATE.GUILD_INBOX.{SPY}.guild.inbox.b.>"),
            spy_consumer(store::INBOX_STREAM, "guild.inbox.b.>"),
        ),
    ];
    refused_calls(&g, &raw, &calls).await;
    g.stop().await;
}

#[tokio::test]
async fn an_agent_cannot_create_a_consumer_on_a_journal() {
    let g = with_a_message().await;
    let raw = g.raw_a().await;
    let journal = "GUILD_JOURNAL_SPAWNER";
    let calls = [
        (
            format!("$JS.API.CONSUMER.CREATE.{journal}.{SPY}"),
            spy_consumer(journal, "guild.journal.spawner"),
        ),
        (
            format!("$JS.API.CONSUMER.DURABLE.CREATE.{journal}.{SPY}"),
            spy_consumer(journal, "guild.journal.spawner"),
        ),
    ];
    refused_calls(&g, &raw, &calls).await;
    g.stop().await;
}

/// Reading B's inbox log message by message, without a consumer.
#[tokio::test]
async fn an_agent_cannot_read_a_stream_directly() {
    let g = with_a_message().await;
    let raw = g.raw_a().await;
    let calls = [
        (
            "$JS.API.DIRECT.GET.GUILD_INBOX".to_owned(),
            json!({"last_by_subj": "guild.inbox.b.normal"}),
        ),
        (
            "$JS.API.STREAM.MSG.GET.GUILD_JOURNAL_BUS".to_owned(),
            json!({"seq": 1}),
        ),
        ("$JS.API.STREAM.INFO.GUILD_AUDIT".to_owned(), json!({})),
    ];
    refused_calls(&g, &raw, &calls).await;
    g.stop().await;
}

#[tokio::test]
async fn the_operator_cannot_delete_purge_update_or_consume_guilds_streams() {
    let g = with_a_message().await;
    let raw = g.raw_as(&Principal::Operator).await;
    let journal = "GUILD_JOURNAL_SPAWNER";
    let calls = [
        ("$JS.API.STREAM.DELETE.GUILD_AUDIT".to_owned(), json!({})),
        (
            "$JS.API.STREAM.MSG.DELETE.GUILD_AUDIT".to_owned(),
            json!({"seq": 1}),
        ),
        (
            "$JS.API.STREAM.UPDATE.GUILD_AUDIT".to_owned(),
            json!({"name": "GUILD_AUDIT", "subjects": ["guild.audit.>"], "deny_delete": false}),
        ),
        (
            "$JS.API.STREAM.PURGE.GUILD_JOURNAL_BUS".to_owned(),
            json!({}),
        ),
        (
            "$JS.API.CONSUMER.CREATE.GUILD_INBOX".to_owned(),
            spy_consumer(store::INBOX_STREAM, "guild.inbox.>"),
        ),
        (
            format!("$JS.API.CONSUMER.CREATE.{journal}.{SPY}"),
            spy_consumer(journal, "guild.journal.spawner"),
        ),
        (
            format!("$JS.API.CONSUMER.DURABLE.CREATE.{journal}.{SPY}"),
            spy_consumer(journal, "guild.journal.spawner"),
        ),
    ];
    refused_calls(&g, &raw, &calls).await;
    // What the operator may do with a stream: read it (its info, Direct Get).
    let js = jetstream::new(raw.client.clone());
    let mut audit = js.get_stream(store::AUDIT_STREAM).await.unwrap();
    let first = audit.info().await.unwrap().state.first_sequence;
    audit.direct_get(first).await.unwrap();
    g.stop().await;
}
