//! What every bus measurement uses on both sides: a Guild consumer agent's loop and the
//! message it is sent; a raw JetStream inbox stream and its pull consumers.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull};
use futures_util::StreamExt;
use guild_sdk::AgentId;
use guild_sdk::Guild;
use guild_sdk::Priority;
use guild_sdk::api::bus::SendRequest;
use tokio::sync::mpsc;

/// Bytes of a message's body.
pub(crate) const PAYLOAD: usize = 200;

/// A message arrived: the number it carries (`k`) and when its receiver had it.
pub(crate) type Receipt = (u64, Instant);

/// A consumer agent's loop: consume (waiting), note when each message arrived, ack.
pub(crate) fn consumer(
    guild: Guild,
    tx: mpsc::UnboundedSender<Receipt>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let bus = guild.bus();
        loop {
            match bus.consume(Duration::from_secs(10), &[]).await {
                Ok(Some(d)) => {
                    let got = Instant::now();
                    let _ = bus.ack(&d.delivery_id).await;
                    let k = d.message.payload["k"].as_u64().unwrap_or(u64::MAX);
                    if tx.send((k, got)).is_err() {
                        return;
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    eprintln!("guild-bench: consume failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    })
}

/// REQUEST number `k` to `to`.
pub(crate) fn message(to: &AgentId, k: u64) -> SendRequest {
    SendRequest {
        to: to.clone(),
        subject: format!("m{k}"),
        payload: serde_json::json!({ "k": k, "body": "x".repeat(PAYLOAD) }),
        priority: Some(Priority::Normal),
        task_id: None,
        message_id: None,
    }
}

/// The raw baselines' inbox stream: every subject under `bench.inbox.`.
pub(crate) async fn raw_stream(
    client: &async_nats::Client,
) -> anyhow::Result<(jetstream::Context, jetstream::stream::Stream)> {
    let js = jetstream::new(client.clone());
    let stream = js
        .get_or_create_stream(jetstream::stream::Config {
            name: "BENCH_RAW_INBOX".into(),
            subjects: vec!["bench.inbox.>".into()],
            ..Default::default()
        })
        .await?;
    Ok((js, stream))
}

/// A durable pull consumer of `bench.inbox.<name>`, acking explicitly, as an agent's
/// inbox would be read without Guild.
pub(crate) async fn raw_consumer(
    stream: &jetstream::stream::Stream,
    name: &str,
) -> anyhow::Result<jetstream::consumer::Consumer<pull::Config>> {
    Ok(stream
        .get_or_create_consumer(
            name,
            pull::Config {
                durable_name: Some(name.into()),
                filter_subject: format!("bench.inbox.{name}"),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ..Default::default()
            },
        )
        .await?)
}

/// A raw consumer's loop: every message as it arrives, acked; its body is the number `k`.
pub(crate) async fn raw_reader(
    stream: &jetstream::stream::Stream,
    name: &str,
    tx: mpsc::UnboundedSender<Receipt>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut messages = raw_consumer(stream, name).await?.messages().await?;
    Ok(tokio::spawn(async move {
        while let Some(Ok(m)) = messages.next().await {
            let got = Instant::now();
            let _ = m.ack().await;
            let k = std::str::from_utf8(&m.payload)
                .ok()
                .and_then(|s| s.split(' ').next()?.parse().ok())
                .unwrap_or(u64::MAX);
            if tx.send((k, got)).is_err() {
                break;
            }
        }
    }))
}

/// A raw message body: the number `k`, padded to the Guild message's size.
pub(crate) fn raw_body(k: u64) -> bytes::Bytes {
    let mut s = format!("{k} ");
    s.push_str(&"x".repeat(PAYLOAD));
    s.into()
}
