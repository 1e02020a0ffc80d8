//! Send → consume through bus-svc against the raw JetStream equivalent: a publish to a
//! stream read by a waiting pull consumer, acked explicitly.

use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::{self, consumer::pull};
use bytes::Bytes;
use futures_util::StreamExt;
use guild_sdk::Guild;
use guild_sdk::api::bus::SendRequest;
use guild_sdk::domain::AgentId;
use guild_sdk::domain::agent::{Role, SpawnRequest};
use guild_sdk::domain::message::Priority;
use tokio::sync::mpsc;

use crate::report::{Row, Section};
use crate::stack::{Stack, Sync};
use crate::stats::Samples;

/// The pause between sends in the latency runs, so the consumer is waiting again (its
/// ack and its next consume done) when the next message goes out, in both runs alike.
const SETTLE: Duration = Duration::from_millis(2);

const PAYLOAD: usize = 200;

fn aid(s: &str) -> anyhow::Result<AgentId> {
    AgentId::new(s).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Raw JetStream: publish (awaiting the stream's ack) to a subject a pull consumer is
/// waiting on; the time until the consumer holds the message. The consumer acks each one.
async fn raw_latency(client: &async_nats::Client, n: usize) -> anyhow::Result<Samples> {
    let js = jetstream::new(client.clone());
    let stream = js
        .get_or_create_stream(jetstream::stream::Config {
            name: "BENCH_RAW_INBOX".into(),
            subjects: vec!["bench.inbox.>".into()],
            ..Default::default()
        })
        .await?;
    let consumer = stream
        .get_or_create_consumer(
            "raw-latency",
            pull::Config {
                durable_name: Some("raw-latency".into()),
                filter_subject: "bench.inbox.lat".into(),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ..Default::default()
            },
        )
        .await?;
    let mut messages = consumer.messages().await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        while let Some(Ok(m)) = messages.next().await {
            let got = Instant::now();
            let _ = m.ack().await;
            if tx.send(got).is_err() {
                break;
            }
        }
    });
    let body = Bytes::from(vec![b'x'; PAYLOAD]);
    let mut s = Samples::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        js.publish("bench.inbox.lat", body.clone()).await?.await?;
        let got = rx.recv().await.context("the raw consumer stopped")?;
        s.push(got.saturating_duration_since(t));
        tokio::time::sleep(SETTLE).await;
    }
    s.elapsed = start.elapsed();
    reader.abort();
    Ok(s)
}

/// Raw JetStream, one step after the other: publish (awaiting the stream's ack), then
/// fetch the message with a pull request and ack it; the time until the fetch has it.
async fn raw_publish_then_fetch(client: &async_nats::Client, n: usize) -> anyhow::Result<Samples> {
    let js = jetstream::new(client.clone());
    let stream = js.get_stream("BENCH_RAW_INBOX").await?;
    let consumer = stream
        .get_or_create_consumer(
            "raw-fetch",
            pull::Config {
                durable_name: Some("raw-fetch".into()),
                filter_subject: "bench.inbox.fetch".into(),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ..Default::default()
            },
        )
        .await?;
    let body = Bytes::from(vec![b'x'; PAYLOAD]);
    let mut s = Samples::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        js.publish("bench.inbox.fetch", body.clone()).await?.await?;
        let mut batch = consumer.fetch().max_messages(1).messages().await?;
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

/// Raw JetStream throughput: `pairs` publishers each with their own subject and pull
/// consumer, `each` messages per pair, every message acked; messages per second overall.
async fn raw_throughput(
    client: &async_nats::Client,
    pairs: usize,
    each: usize,
) -> anyhow::Result<Samples> {
    let js = jetstream::new(client.clone());
    let stream = js.get_stream("BENCH_RAW_INBOX").await?;
    let mut readers = Vec::new();
    for p in 0..pairs {
        let name = format!("raw-tp-{p}");
        let consumer = stream
            .get_or_create_consumer(
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: format!("bench.inbox.tp{p}"),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ..Default::default()
                },
            )
            .await?;
        let mut messages = consumer.messages().await?;
        readers.push(tokio::spawn(async move {
            for _ in 0..each {
                match messages.next().await {
                    Some(Ok(m)) => {
                        let _ = m.ack().await;
                    }
                    _ => break,
                }
            }
        }));
    }
    let start = Instant::now();
    let mut writers = Vec::new();
    for p in 0..pairs {
        let js = js.clone();
        writers.push(tokio::spawn(async move {
            let body = Bytes::from(vec![b'x'; PAYLOAD]);
            for _ in 0..each {
                js.publish(format!("bench.inbox.tp{p}"), body.clone())
                    .await?
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    for w in writers {
        w.await??;
    }
    for r in readers {
        r.await?;
    }
    let mut s = Samples::with_capacity(pairs * each);
    for _ in 0..pairs * each {
        s.push(Duration::ZERO);
    }
    s.elapsed = start.elapsed();
    Ok(s)
}

/// A consumer agent's loop: consume (waiting), note when each message arrived, ack.
fn consumer(guild: Guild, tx: mpsc::UnboundedSender<Instant>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let bus = guild.bus();
        loop {
            match bus.consume(Duration::from_secs(10)).await {
                Ok(Some(d)) => {
                    let got = Instant::now();
                    let _ = bus.ack(&d.delivery_id).await;
                    if tx.send(got).is_err() {
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

fn send(to: &AgentId, i: usize) -> SendRequest {
    SendRequest {
        to: to.clone(),
        subject: format!("m{i}"),
        payload: serde_json::json!({ "body": "x".repeat(PAYLOAD) }),
        priority: Some(Priority::Normal),
        task_id: None,
        message_id: None,
    }
}

/// Guild: agent `sender` sends a REQUEST while agent `receiver` waits in `consume`; the
/// time until the consume returns it.
async fn guild_latency(stack: &Stack, n: usize) -> anyhow::Result<Samples> {
    let sender = Guild::new(stack.server.connect().await).as_agent(aid("bench-sender")?);
    let receiver = Guild::new(stack.server.connect().await).as_agent(aid("bench-receiver")?);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let reader = consumer(receiver, tx);
    let to = aid("bench-receiver")?;
    // Warm up: connections, the consumer's first wait.
    for i in 0..20 {
        sender.bus().send_request(&send(&to, i)).await?;
        rx.recv().await.context("the consumer stopped")?;
    }
    let mut s = Samples::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        tokio::time::sleep(SETTLE).await;
        let t = Instant::now();
        sender.bus().send_request(&send(&to, i)).await?;
        let got = rx.recv().await.context("the consumer stopped")?;
        s.push(got.saturating_duration_since(t));
    }
    s.elapsed = start.elapsed();
    reader.abort();
    Ok(s)
}

/// Guild, one step after the other: send (awaiting the receipt), then consume it without
/// waiting; the time until the consume has it. The receiver acks it afterwards. It is not
/// the latency run's receiver: that one's last consume may still be waiting in bus-svc.
async fn guild_send_then_consume(stack: &Stack, n: usize) -> anyhow::Result<Samples> {
    let sender = Guild::new(stack.server.connect().await).as_agent(aid("bench-sender")?);
    let receiver = Guild::new(stack.server.connect().await).as_agent(aid("bench-fetcher")?);
    let to = aid("bench-fetcher")?;
    let mut s = Samples::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        sender.bus().send_request(&send(&to, i)).await?;
        let d = receiver
            .bus()
            .consume(Duration::ZERO)
            .await?
            .context("the message was not there")?;
        s.push(t.elapsed());
        receiver.bus().ack(&d.delivery_id).await?;
    }
    s.elapsed = start.elapsed();
    Ok(s)
}

/// Guild throughput: `pairs` sender agents each sending `each` REQUESTs to their own
/// receiver agent, which consumes and acks; messages per second overall.
async fn guild_throughput(stack: &Stack, pairs: usize, each: usize) -> anyhow::Result<Samples> {
    let mut readers = Vec::new();
    let mut counters = Vec::new();
    for p in 0..pairs {
        let receiver =
            Guild::new(stack.server.connect().await).as_agent(aid(&format!("bench-rx{p}"))?);
        let (tx, rx) = mpsc::unbounded_channel();
        readers.push(consumer(receiver, tx));
        counters.push(rx);
    }
    let start = Instant::now();
    let mut writers = Vec::new();
    for p in 0..pairs {
        let sender = Guild::new(stack.server.connect().await)
            .as_agent(aid(&format!("bench-tx{p}"))?)
            .with_timeout(Duration::from_secs(30));
        let to = aid(&format!("bench-rx{p}"))?;
        writers.push(tokio::spawn(async move {
            for i in 0..each {
                sender.bus().send_request(&send(&to, i)).await?;
            }
            anyhow::Ok(())
        }));
    }
    for w in writers {
        w.await??;
    }
    for rx in &mut counters {
        for _ in 0..each {
            rx.recv().await.context("a consumer stopped")?;
        }
    }
    let elapsed = start.elapsed();
    for r in readers {
        r.abort();
    }
    let mut s = Samples::with_capacity(pairs * each);
    for _ in 0..pairs * each {
        s.push(Duration::ZERO);
    }
    s.elapsed = elapsed;
    Ok(s)
}

pub(crate) async fn run(sync: Sync, quick: bool) -> anyhow::Result<Section> {
    let n = if quick { 100 } else { 2_000 };
    let (pairs, each) = if quick { (2, 100) } else { (4, 1_000) };
    let mut stack = Stack::start(sync).await?;
    let raw = raw_latency(&stack.client, n).await?;
    let raw_fetch = raw_publish_then_fetch(&stack.client, n).await?;
    let raw_tp = raw_throughput(&stack.client, pairs, each).await?;

    let env = vec![
        ("GUILD_MAX_AGENTS", "1000".to_owned()),
        ("GUILD_TOKEN_POOL", "1000000000".to_owned()),
        ("GUILD_HEARTBEAT_WINDOW", "1h".to_owned()),
    ];
    stack
        .add_service("spawner-svc", "guild-spawner", &env)
        .await?;
    stack
        .add_service("mission-svc", "guild-mission", &[])
        .await?;
    stack.add_service("bus-svc", "guild-bus", &[]).await?;
    let guild = Guild::new(stack.client.clone()).with_timeout(Duration::from_secs(30));
    let mut names = vec![
        "bench-sender".to_owned(),
        "bench-receiver".to_owned(),
        "bench-fetcher".to_owned(),
    ];
    for p in 0..pairs {
        names.push(format!("bench-tx{p}"));
        names.push(format!("bench-rx{p}"));
    }
    for name in &names {
        guild
            .spawner()
            .spawn(SpawnRequest::new(aid(name)?, Role::Developer, 1_000_000))
            .await?;
        guild.as_agent(aid(name)?).spawner().heartbeat(None).await?;
    }
    let bus = guild_latency(&stack, n).await?;
    let bus_seq = guild_send_then_consume(&stack, n).await?;
    let bus_tp = guild_throughput(&stack, pairs, each).await?;
    let rss: Vec<String> = stack
        .rss_mib()
        .iter()
        .map(|(name, mib)| format!("{name} {mib:.1} MiB"))
        .collect();
    let goal = |g: &Samples, b: &Samples| Some(g.p99() < 5.0 && g.p99() <= 2.0 * b.p99());
    let rows = vec![
        Row {
            metric: "send, then consume: p50 (baseline: publish, then fetch)".into(),
            target: "—".into(),
            baseline: Some(raw_fetch.p50()),
            guild: bus_seq.p50(),
            unit: "ms",
            met: None,
        },
        Row {
            metric: "send, then consume: p99 (baseline: publish, then fetch)".into(),
            target: "seed < 100 ms; Guild < 5 ms and ≤ 2× baseline".into(),
            baseline: Some(raw_fetch.p99()),
            guild: bus_seq.p99(),
            unit: "ms",
            met: goal(&bus_seq, &raw_fetch),
        },
        Row {
            metric: "send → waiting consume: p50 (baseline: publish → waiting pull consumer)"
                .into(),
            target: "—".into(),
            baseline: Some(raw.p50()),
            guild: bus.p50(),
            unit: "ms",
            met: None,
        },
        Row {
            metric: "send → waiting consume: p99 (baseline: publish → waiting pull consumer)"
                .into(),
            target: "< 5 ms; ≤ 2× this stricter baseline".into(),
            baseline: Some(raw.p99()),
            guild: bus.p99(),
            unit: "ms",
            met: goal(&bus, &raw),
        },
        Row {
            metric: "send → waiting consume: p99.9".into(),
            target: "—".into(),
            baseline: Some(raw.p999()),
            guild: bus.p999(),
            unit: "ms",
            met: None,
        },
        Row {
            metric: format!("throughput, {pairs} senders → {pairs} consumers, every message acked"),
            target: "—".into(),
            baseline: Some(raw_tp.throughput()),
            guild: bus_tp.throughput(),
            unit: "msg/s",
            met: None,
        },
    ];
    Ok(Section {
        title: format!("Bus: send → consume ({})", sync.label()),
        method: format!(
            "Latency, two ways, {n} REQUESTs of {PAYLOAD} bytes from one agent to another, one at a time, \
             measured from the start of the send call until the receiver has the message; bus-svc, spawner-svc \
             and mission-svc run as their own processes. *Send, then consume*: the send's receipt comes back, \
             then the receiver consumes without waiting; baseline: a JetStream publish (awaiting the stream's \
             ack), then a one-message fetch from a durable pull consumer. *Send → waiting consume*: the \
             receiver is already waiting in `consume` (long poll) and {} ms pass between sends so it is waiting \
             again; baseline: a publish to a subject a durable pull consumer is already waiting on, which is \
             the least any design on JetStream can cost. Every message is acked explicitly. Throughput: \
             {pairs} sender/receiver pairs, {each} messages each, every message consumed and acked; the baseline \
             is {pairs} publishers and {pairs} pull consumers doing the same on raw JetStream.",
            SETTLE.as_millis()
        ),
        rows,
        notes: vec![
            format!("Resident memory at the end: {}.", rss.join(", ")),
            "Each Guild message costs three journal appends (the send, the consumer's wait or take, the ack) \
             against one stored message and one ack on raw JetStream: the price of priority order across \
             instances, waits that any instance can serve, and ack windows that survive restarts. The latency \
             path is one append: the send hands the message to the waiting consume in the same entry."
                .into(),
        ],
    })
}
