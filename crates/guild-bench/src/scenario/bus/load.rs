//! Send → consume under load: latency at fixed offered loads (open loop) and the most
//! messages per second, through bus-svc and on raw JetStream alike: `PAIRS` senders,
//! each to its own receiver, which consumes and acks every message.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_nats::jetstream;
use guild_sdk::AgentId;
use guild_sdk::Guild;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::inbox::{Receipt, consumer, message, raw_body, raw_reader, raw_stream};
use crate::scenario::aid;
use crate::stack::Stack;
use crate::stats::Samples;

/// Offered loads, messages per second over all pairs.
pub(crate) const LOADS: [u32; 3] = [100, 500, 1_000];

/// Sender → receiver pairs sharing each load.
pub(crate) const PAIRS: usize = 4;

/// The agents of one Guild run: senders `<run>-tx<p>`, receivers `<run>-rx<p>`.
pub(crate) fn agent_names(run: &str) -> Vec<String> {
    (0..PAIRS)
        .flat_map(|p| [format!("{run}-tx{p}"), format!("{run}-rx{p}")])
        .collect()
}

/// Open loop: message k is sent at `k / rate` seconds by a task of its own, so a slow
/// send never delays the next one (a closed loop would send less as the system slows
/// down, and hide the queueing). Each latency runs from the start of the send until the
/// receiver had the message; receipts arrive on `got`.
async fn open_loop<S, Fut>(
    rate: u32,
    count: usize,
    send: &S,
    got: &mut mpsc::UnboundedReceiver<Receipt>,
    base: u64,
) -> anyhow::Result<Samples>
where
    S: Fn(u64) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let origin = tokio::time::Instant::now();
    let mut sends = Vec::with_capacity(count);
    let start = Instant::now();
    for i in 0..count {
        tokio::time::sleep_until(origin + Duration::from_secs_f64(i as f64 / f64::from(rate)))
            .await;
        let sending = send(base + i as u64);
        sends.push(tokio::spawn(async move {
            let t = Instant::now();
            sending.await.map(|()| t)
        }));
    }
    let mut sent = Vec::with_capacity(count);
    for s in sends {
        sent.push(s.await??);
    }
    let mut arrived = vec![None; count];
    let mut left = count;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while left > 0 {
        let (k, at) = tokio::time::timeout_at(deadline, got.recv())
            .await
            .with_context(|| format!("{left} of {count} messages did not arrive within 60 s"))?
            .context("a consumer stopped")?;
        // Another step's, or a redelivery: not this step's to count.
        let Some(slot) = k
            .checked_sub(base)
            .and_then(|i| arrived.get_mut(i as usize))
        else {
            continue;
        };
        if slot.is_none() {
            *slot = Some(at);
            left -= 1;
        }
    }
    let mut s = Samples::with_capacity(count);
    for (t, at) in sent.iter().zip(&arrived) {
        if let Some(at) = at {
            s.push(at.saturating_duration_since(*t));
        }
    }
    s.elapsed = start.elapsed();
    Ok(s)
}

/// Every load of [`LOADS`] for `step` each, after a short warm-up, with one set of
/// senders and receivers; message numbers never repeat across steps.
async fn every_load<S, Fut>(
    step: Duration,
    send: S,
    got: &mut mpsc::UnboundedReceiver<Receipt>,
) -> anyhow::Result<Vec<(u32, Samples)>>
where
    S: Fn(u64) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    open_loop(100, 4 * PAIRS, &send, got, 0).await?;
    let mut out = Vec::new();
    for (i, rate) in LOADS.into_iter().enumerate() {
        let count = ((f64::from(rate) * step.as_secs_f64()) as usize).max(PAIRS);
        let base = (i as u64 + 1) * 1_000_000_000;
        out.push((rate, open_loop(rate, count, &send, got, base).await?));
    }
    Ok(out)
}

/// Raw JetStream at every load: publish (awaiting the stream's ack) to one of `PAIRS`
/// subjects, each read by its own durable pull consumer.
pub(crate) async fn raw_loads(
    client: &async_nats::Client,
    step: Duration,
) -> anyhow::Result<Vec<(u32, Samples)>> {
    let (js, stream) = raw_stream(client).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let readers = raw_readers(&stream, "load", tx).await?;
    let send = |k: u64| {
        let js = js.clone();
        async move {
            let subject = format!("bench.inbox.load{}", k as usize % PAIRS);
            js.publish(subject, raw_body(k)).await?.await?;
            anyhow::Ok(())
        }
    };
    let out = every_load(step, send, &mut rx).await;
    readers.iter().for_each(|r| r.abort());
    out
}

/// Guild at every load: the senders of run `run` send REQUESTs to its receivers, which
/// wait in `consume` and ack.
pub(crate) async fn guild_loads(
    stack: &Stack,
    run: &str,
    step: Duration,
) -> anyhow::Result<Vec<(u32, Samples)>> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (readers, senders) = guild_pairs(stack, run, tx).await?;
    let send = |k: u64| {
        let (sender, to) = senders[k as usize % PAIRS].clone();
        async move {
            sender.bus().request(&message(&to, k)).await?;
            anyhow::Ok(())
        }
    };
    let out = every_load(step, send, &mut rx).await;
    readers.iter().for_each(|r| r.abort());
    out
}

/// Run `run`'s receivers, consuming (receipts to `tx`), and its senders, each with the
/// receiver it sends to.
async fn guild_pairs(
    stack: &Stack,
    run: &str,
    tx: mpsc::UnboundedSender<Receipt>,
) -> anyhow::Result<(Vec<JoinHandle<()>>, Vec<(Guild, AgentId)>)> {
    let mut readers = Vec::new();
    let mut senders = Vec::new();
    for p in 0..PAIRS {
        let receiver = aid(&format!("{run}-rx{p}"))?;
        readers.push(consumer(stack.agent(receiver.as_str())?, tx.clone()));
        let sender = stack
            .agent(&format!("{run}-tx{p}"))?
            .with_timeout(Duration::from_secs(30));
        senders.push((sender, receiver));
    }
    Ok((readers, senders))
}

/// `PAIRS` raw consumers, `bench.inbox.<prefix><p>`, receipts to `tx`.
async fn raw_readers(
    stream: &jetstream::stream::Stream,
    prefix: &str,
    tx: mpsc::UnboundedSender<Receipt>,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let mut readers = Vec::new();
    for p in 0..PAIRS {
        readers.push(raw_reader(stream, &format!("{prefix}{p}"), tx.clone()).await?);
    }
    Ok(readers)
}

/// Closed loop, as fast as it goes: each of `PAIRS` senders sends `each` messages one
/// after another; messages per second until every one was consumed and acked.
async fn most<S, Fut>(
    each: usize,
    send: S,
    got: &mut mpsc::UnboundedReceiver<Receipt>,
) -> anyhow::Result<Samples>
where
    S: Fn(usize, u64) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let start = Instant::now();
    let mut writers = Vec::new();
    for p in 0..PAIRS {
        let sends: Vec<Fut> = (0..each as u64).map(|k| send(p, k)).collect();
        writers.push(tokio::spawn(async move {
            for s in sends {
                s.await?;
            }
            anyhow::Ok(())
        }));
    }
    for w in writers {
        w.await??;
    }
    for i in 0..PAIRS * each {
        if tokio::time::timeout(Duration::from_secs(60), got.recv())
            .await
            .ok()
            .flatten()
            .is_none()
        {
            bail!("only {i} of {} messages were consumed", PAIRS * each);
        }
    }
    Ok(Samples::tally(PAIRS * each, start.elapsed()))
}

/// Raw JetStream throughput over `PAIRS` publishers and pull consumers.
pub(crate) async fn raw_most(client: &async_nats::Client, each: usize) -> anyhow::Result<Samples> {
    let (js, stream) = raw_stream(client).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let readers = raw_readers(&stream, "most", tx).await?;
    let send = |p: usize, k: u64| {
        let js = js.clone();
        async move {
            js.publish(format!("bench.inbox.most{p}"), raw_body(k))
                .await?
                .await?;
            anyhow::Ok(())
        }
    };
    let out = most(each, send, &mut rx).await;
    readers.iter().for_each(|r| r.abort());
    out
}

/// Guild throughput with the agents of run `run` (its own, so no earlier consume is
/// still waiting for them in bus-svc).
pub(crate) async fn guild_most(stack: &Stack, run: &str, each: usize) -> anyhow::Result<Samples> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (readers, senders) = guild_pairs(stack, run, tx).await?;
    let send = |p: usize, k: u64| {
        let (sender, to) = senders[p].clone();
        async move {
            sender.bus().request(&message(&to, k)).await?;
            anyhow::Ok(())
        }
    };
    let out = most(each, send, &mut rx).await;
    readers.iter().for_each(|r| r.abort());
    out
}
