//! Question → decision round trip: an agent asks its orchestrator, which is waiting for
//! questions, acks the question and records a decision; the asker, waiting for the
//! decision, consumes it. Through bus-svc, and the same exchange on raw JetStream.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use guild_sdk::MessageType;
use guild_sdk::Role;
use guild_sdk::{Principal, Timestamp};
use guild_store::{AuditLog, Durability};
use guild_wire::audit::{AuditEntry, AuditKind};

use super::inbox::{raw_body, raw_consumer, raw_stream};
use crate::stack::Stack;
use crate::stats::Samples;

/// The orchestrator and the developer under it that asks.
pub(crate) const ORCHESTRATOR: &str = "bench-orch";
pub(crate) const ASKER: &str = "bench-asker";

/// Spawns [`ORCHESTRATOR`] and [`ASKER`] under it, each with its first heartbeat.
pub(crate) async fn spawn_agents(stack: &Stack) -> anyhow::Result<()> {
    super::spawn(stack, ORCHESTRATOR, Role::Orchestrator, None).await?;
    super::spawn(stack, ASKER, Role::Developer, Some(ORCHESTRATOR)).await
}

/// Raw JetStream: the question is published to the orchestrator's subject, where its
/// pull consumer waits; the orchestrator acks it, appends the decision to the audit chain
/// and publishes it to the asker's subject, where the asker's pull consumer waits.
pub(crate) async fn raw(client: &async_nats::Client, n: usize) -> anyhow::Result<Samples> {
    let (js, stream) = raw_stream(client).await?;
    let audit = AuditLog::open(&js, Durability::default()).await?;
    let mut questions = raw_consumer(&stream, "orch").await?.messages().await?;
    let mut decisions = raw_consumer(&stream, "asker").await?.messages().await?;
    let decider_js = js.clone();
    let decider = tokio::spawn(async move {
        let mut i = 0u64;
        while let Some(Ok(q)) = questions.next().await {
            i += 1;
            let decided = async {
                q.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
                audit
                    .append(&AuditEntry {
                        id: format!("raw-decision-{i}"),
                        kind: AuditKind::Decision,
                        actor: Principal::Operator,
                        about: format!("q{i}"),
                        mission_id: None,
                        at: Timestamp::from_millis(0),
                        data: serde_json::json!({ "choice": "yes" }),
                        trace_id: None,
                    })
                    .await?;
                decider_js
                    .publish("bench.inbox.asker", raw_body(i))
                    .await?
                    .await?;
                anyhow::Ok(())
            };
            if let Err(e) = decided.await {
                eprintln!("guild-bench: the raw orchestrator failed: {e:#}");
                return;
            }
        }
    });
    let mut s = Samples::with_capacity(n);
    for k in 0..(n + 5) as u64 {
        let t = Instant::now();
        js.publish("bench.inbox.orch", raw_body(k)).await?.await?;
        let d = tokio::time::timeout(Duration::from_secs(10), decisions.next())
            .await
            .context("no raw decision within 10 s")?
            .context("the asker's consumer ended")?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        // The first five warm the consumers up.
        if k >= 5 {
            s.push(t.elapsed());
        }
        d.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    decider.abort();
    Ok(s)
}

/// Guild: [`ASKER`] asks (`ask_question`, requiring a decision); [`ORCHESTRATOR`], waiting
/// in `consume` for questions, acks it and calls `record_decision`; the asker, waiting in
/// `consume` for decisions, has it. The time from the ask to the asker having the decision.
pub(crate) async fn guild(stack: &Stack, n: usize) -> anyhow::Result<Samples> {
    let orchestrator = stack.agent(ORCHESTRATOR)?;
    let asker = stack.agent(ASKER)?;
    let decider = tokio::spawn(async move {
        let bus = orchestrator.bus();
        loop {
            let asked = bus
                .consume(Duration::from_secs(10), &[MessageType::Question])
                .await;
            let decided = match asked {
                Ok(Some(q)) => match bus.ack(&q.delivery_id).await {
                    Ok(()) => bus
                        .record_decision(&q.message.id, "yes", None, serde_json::Value::Null)
                        .await
                        .map(|_| ()),
                    Err(e) => Err(e),
                },
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = decided {
                eprintln!("guild-bench: the orchestrator failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    let bus = asker.bus();
    let mut s = Samples::with_capacity(n);
    for k in 0..n + 5 {
        let t = Instant::now();
        bus.ask_question(&guild_sdk::AskQuestion::new(
            format!("q{k}"),
            serde_json::json!({ "k": k }),
            true,
        ))
        .await?;
        let d = bus
            .consume(Duration::from_secs(10), &[MessageType::Decision])
            .await?
            .context("no decision within 10 s")?;
        if k >= 5 {
            s.push(t.elapsed());
        }
        bus.ack(&d.delivery_id).await?;
    }
    decider.abort();
    Ok(s)
}
