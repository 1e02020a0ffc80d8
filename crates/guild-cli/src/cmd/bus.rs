//! `send`, `ask`, `alert`, `handoff`, `reply`, `decide`, `inbox` and `tail`.

use std::time::Duration;

use futures_util::StreamExt;
use guild_sdk::api::bus::{AskQuestion, Receipt, SendRequest};
use guild_sdk::{Delivery, Message};
use guild_wire::{header, subject};

use crate::Ctx;
use crate::cli::{
    AlertArgs, AskArgs, DecideArgs, HandoffArgs, InboxArgs, ReplyArgs, SendArgs, TailArgs,
};
use crate::output::{brief, line};
use crate::parse;

fn receipt_text(r: &Receipt) -> String {
    let to: Vec<String> = r.delivered_to.iter().map(ToString::to_string).collect();
    let dup = if r.duplicate { " (already sent)" } else { "" };
    format!(
        "{} {} {} → {}{dup}",
        r.kind,
        r.message_id,
        r.priority,
        if to.is_empty() {
            r.to.to_string()
        } else {
            to.join(", ")
        }
    )
}

/// One message as a line: type, priority, sender, subject, payload.
pub(crate) fn message_line(m: &Message) -> String {
    let reply = m
        .in_reply_to
        .as_ref()
        .map_or(String::new(), |r| format!(" (re {r})"));
    format!(
        "[{:<8}] {:<8} {} → {}: {}{reply}  {}  id {}",
        m.priority.to_string(),
        m.kind.to_string(),
        m.from,
        m.to,
        m.subject,
        brief(&m.payload, 80),
        m.id
    )
}

pub(crate) async fn send(ctx: &Ctx, a: SendArgs) -> anyhow::Result<()> {
    let r = ctx
        .guild
        .bus()
        .request(&SendRequest {
            to: parse::agent(&a.to)?,
            subject: a.subject,
            payload: parse::json("--payload", &a.payload)?,
            priority: a.priority.as_deref().map(parse::priority).transpose()?,
            task_id: a.task.as_deref().map(parse::mission).transpose()?,
            message_id: None,
        })
        .await?;
    ctx.out.emit(&r, receipt_text);
    Ok(())
}

pub(crate) async fn ask(ctx: &Ctx, a: AskArgs) -> anyhow::Result<()> {
    let r = ctx
        .guild
        .bus()
        .ask_question(&AskQuestion {
            to: a.to.as_deref().map(parse::principal).transpose()?,
            subject: a.subject,
            payload: parse::json("--payload", &a.payload)?,
            requires_decision: a.decision,
            decision_deadline_ms: a
                .deadline
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            priority: None,
            task_id: a.task.as_deref().map(parse::mission).transpose()?,
            message_id: None,
        })
        .await?;
    ctx.out.emit(&r, receipt_text);
    Ok(())
}

pub(crate) async fn alert(ctx: &Ctx, a: AlertArgs) -> anyhow::Result<()> {
    let payload = parse::json("--payload", &a.payload)?;
    let r = ctx
        .guild
        .bus()
        .alert(&a.subject, payload, a.critical)
        .await?;
    ctx.out.emit(&r, receipt_text);
    Ok(())
}

pub(crate) async fn handoff(ctx: &Ctx, a: HandoffArgs) -> anyhow::Result<()> {
    let context = parse::json("--context", &a.context)?;
    let r = ctx
        .guild
        .bus()
        .handoff(&parse::agent(&a.to)?, &parse::mission(&a.task)?, context)
        .await?;
    ctx.out.emit(&r, receipt_text);
    Ok(())
}

pub(crate) async fn reply(ctx: &Ctx, a: ReplyArgs) -> anyhow::Result<()> {
    let payload = parse::json("--payload", &a.payload)?;
    let r = ctx
        .guild
        .bus()
        .reply(&parse::message(&a.message_id)?, payload, false)
        .await?;
    ctx.out.emit(&r, receipt_text);
    Ok(())
}

/// The seed's two steps: a reply marked as the decision (delivered to the asker), then
/// `record_decision` completing the audit record with the impact.
pub(crate) async fn decide(ctx: &Ctx, a: DecideArgs) -> anyhow::Result<()> {
    let question = parse::message(&a.question_id)?;
    let impact = parse::json("--impact", &a.impact)?;
    let bus = ctx.guild.bus();
    bus.reply(
        &question,
        serde_json::json!({ "decision": a.choice, "reason": a.rationale }),
        true,
    )
    .await?;
    let outcome = bus
        .record_decision(&question, &a.choice, a.rationale.as_deref(), impact)
        .await?;
    ctx.out.emit(&outcome, |o| {
        format!(
            "decided {}: {} ({}, audit record {})",
            o.decision.question_id,
            o.decision.choice,
            format!("{:?}", o.ruling).to_lowercase(),
            o.audit_seq.map_or("pending".into(), |s| s.to_string())
        )
    });
    Ok(())
}

/// Shows waiting messages: consumes them without waiting, then acks them (`--ack`) or
/// gives them straight back, so they stay queued for their owner.
pub(crate) async fn inbox(ctx: &Ctx, a: InboxArgs) -> anyhow::Result<()> {
    let bus = ctx.guild.bus();
    let mut taken: Vec<Delivery> = Vec::new();
    let mut wait = Duration::from_secs(a.wait);
    while taken.len() < a.limit {
        match bus.consume(wait, &[]).await? {
            Some(d) => taken.push(d),
            None => break,
        }
        wait = Duration::ZERO;
    }
    for d in &taken {
        if a.ack {
            bus.ack(&d.delivery_id).await?;
        } else {
            bus.nak(&d.delivery_id, Duration::ZERO).await?;
        }
    }
    ctx.out.emit(&taken, |taken| {
        if taken.is_empty() {
            return format!("{}'s inbox is empty", ctx.guild.principal());
        }
        taken
            .iter()
            .map(|d| message_line(&d.message))
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

/// Follows the inbox log (every message as it enters an inbox) and, with `--events`, the
/// services' events, until Ctrl-C.
pub(crate) async fn tail(ctx: &Ctx, a: TailArgs) -> anyhow::Result<()> {
    let owner = a.agent.as_deref().map(parse::principal).transpose()?;
    let kind = a.kind.as_deref().map(parse::message_type).transpose()?;
    let priority = a.priority.as_deref().map(parse::priority).transpose()?;
    let filter = match (&owner, priority) {
        (Some(o), Some(p)) => subject::inbox(o, p),
        (Some(o), None) => subject::inbox_all_levels(o),
        (None, Some(p)) => subject::inbox_level(p),
        (None, None) => subject::INBOX_WILDCARD.to_owned(),
    };
    let client = ctx.guild.client();
    let mut inbox = client.subscribe(filter.clone()).await?;
    let mut events = if a.events {
        // With --agent, that agent's own events (the spawner's are about agents).
        let events = match &owner {
            Some(guild_sdk::Principal::Agent(id)) => {
                subject::event(subject::Service::Spawner, "*", id.as_str())
            }
            _ => subject::EVENTS_WILDCARD.to_owned(),
        };
        Some(client.subscribe(events).await?)
    } else {
        None
    };
    ctx.out.note(&format!(
        "watching {filter}{}; Ctrl-C stops",
        if a.events { " and events" } else { "" }
    ));
    // One listener for the whole loop (one per pass misses a Ctrl-C during a print).
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            m = inbox.next() => {
                let Some(m) = m else { break };
                let wanted = kind.is_none_or(|k| {
                    m.headers.as_ref().and_then(|h| h.get(header::MESSAGE_TYPE)).is_some_and(|v| v.as_str() == k.as_str())
                });
                if !wanted {
                    continue;
                }
                match serde_json::from_slice::<Message>(&m.payload) {
                    // A broadcast has a copy per inbox: the subject says whose this is.
                    Ok(msg) if ctx.out.json => line(&serde_json::json!({ "subject": m.subject.as_str(), "message": msg }).to_string()),
                    Ok(msg) => {
                        let owner = subject::parse_inbox(&m.subject).map_or("?", |(o, _)| o);
                        line(&format!("{owner:>20} ⇐ {}", message_line(&msg)));
                    }
                    Err(e) => eprintln!("guild: unreadable message on {}: {e}", m.subject),
                }
            }
            e = async { match events.as_mut() { Some(s) => s.next().await, None => std::future::pending().await } } => {
                let Some(e) = e else { break };
                let body: serde_json::Value = match serde_json::from_slice(&e.payload) {
                    Ok(body) => body,
                    Err(err) => {
                        eprintln!("guild: unreadable event on {}: {err}", e.subject);
                        continue;
                    }
                };
                if ctx.out.json {
                    line(&serde_json::json!({ "subject": e.subject.as_str(), "event": body }).to_string());
                } else {
                    line(&format!("event {}  {}", e.subject, brief(&body, 100)));
                }
            }
            _ = &mut stop => break,
        }
    }
    Ok(())
}
