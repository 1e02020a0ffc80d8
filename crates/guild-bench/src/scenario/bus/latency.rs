//! Send → consume, one message at a time, two ways: to a consumer already waiting, and
//! sent then fetched; through bus-svc and on raw JetStream.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::inbox::{consumer, message, raw_body, raw_consumer, raw_reader, raw_stream};
use crate::scenario::aid;
use crate::stack::Stack;
use crate::stats::Samples;

/// The pause between sends in the latency runs, so the consumer is waiting again (its
/// ack and its next consume done) when the next message goes out, in both runs alike.
pub(crate) const SETTLE: Duration = Duration::from_millis(2);

/// Raw JetStream: publish (awaiting the stream's ack) to a subject a pull consumer is
/// waiting on; the time until the consumer holds the message. The consumer acks each one.
pub(crate) async fn raw_waiting(client: &async_nats::Client, n: usize) -> anyhow::Result<Samples> {
    let (js, stream) = raw_stream(client).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let reader = raw_reader(&stream, "lat", tx).await?;
    let mut s = Samples::with_capacity(n);
    let start = Instant::now();
    for k in 0..n as u64 {
        let t = Instant::now();
        js.publish("bench.inbox.lat", raw_body(k)).await?.await?;
        let (_, got) = rx.recv().await.context("the raw consumer stopped")?;
        s.push(got.saturating_duration_since(t));
        tokio::time::sleep(SETTLE).await;
    }
    s.elapsed = start.elapsed();
    reader.abort();
    Ok(s)
}

/// Raw JetStream, one step after the other: publish (awaiting the stream's ack), then
/// fetch the message with a pull request and ack it; the time until the fetch has it.
pub(crate) async fn raw_then_fetch(
    client: &async_nats::Client,
    n: usize,
) -> anyhow::Result<Samples> {
    let (js, stream) = raw_stream(client).await?;
    let consumer = raw_consumer(&stream, "fetch").await?;
    let mut s = Samples::with_capacity(n);
    let start = Instant::now();
    for k in 0..n as u64 {
        let t = Instant::now();
        js.publish("bench.inbox.fetch", raw_body(k)).await?.await?;
        // A pull request that waits (it returns as soon as the message is there): one that
        // does not can reach the consumer before the stored message does.
        let mut batch = consumer
            .batch()
            .max_messages(1)
            .expires(Duration::from_secs(5))
            .messages()
            .await?;
        let m = batch
            .next()
            .await
            .context("the fetch returned nothing")?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        s.push(t.elapsed());
        m.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    s.elapsed = start.elapsed();
    Ok(s)
}

/// Guild: agent `sender` sends a REQUEST while agent `receiver` waits in `consume`; the
/// time until the consume returns it.
pub(crate) async fn guild_waiting(
    stack: &Stack,
    sender: &str,
    receiver: &str,
    n: usize,
) -> anyhow::Result<Samples> {
    let sender = stack.agent(sender)?;
    let to = aid(receiver)?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let reader = consumer(stack.agent(to.as_str())?, tx);
    // Warm up: connections, the consumer's first wait.
    for k in 0..20 {
        sender.bus().request(&message(&to, k)).await?;
        rx.recv().await.context("the consumer stopped")?;
    }
    let mut s = Samples::with_capacity(n);
    let start = Instant::now();
    for k in 0..n as u64 {
        tokio::time::sleep(SETTLE).await;
        let t = Instant::now();
        sender.bus().request(&message(&to, k)).await?;
        let (_, got) = rx.recv().await.context("the consumer stopped")?;
        s.push(got.saturating_duration_since(t));
    }
    s.elapsed = start.elapsed();
    reader.abort();
    Ok(s)
}

/// Guild, one step after the other: send (awaiting the receipt), then consume it without
/// waiting; the time until the consume has it. The receiver acks it afterwards. It is not
/// the waiting run's receiver: that one's last consume may still be waiting in bus-svc.
pub(crate) async fn guild_then_consume(
    stack: &Stack,
    sender: &str,
    receiver: &str,
    n: usize,
) -> anyhow::Result<Samples> {
    let sender = stack.agent(sender)?;
    let to = aid(receiver)?;
    let receiver = stack.agent(to.as_str())?;
    let mut s = Samples::with_capacity(n);
    let start = Instant::now();
    for k in 0..n as u64 {
        let t = Instant::now();
        sender.bus().request(&message(&to, k)).await?;
        let d = receiver
            .bus()
            .consume(Duration::ZERO, &[])
            .await?
            .context("the message was not there")?;
        s.push(t.elapsed());
        receiver.bus().ack(&d.delivery_id).await?;
    }
    s.elapsed = start.elapsed();
    Ok(s)
}
