//! `questions list | show` and `audit`: what the caller may read of the bus's questions
//! and of the audit log, without JetStream rights.

use guild_sdk::api::bus::{AuditQuery, QuestionQuery};
use guild_sdk::{AuditRecord, QuestionState};

use crate::Ctx;
use crate::cli::{AuditArgs, QuestionCommand};
use crate::parse;

pub(crate) async fn questions(ctx: &Ctx, command: QuestionCommand) -> anyhow::Result<()> {
    let bus = ctx.guild.bus();
    match command {
        QuestionCommand::List { open, limit } => {
            let query = QuestionQuery {
                open_only: open,
                limit,
            };
            let questions = bus.list_questions(&query).await?;
            ctx.out.emit(&questions, |qs| {
                if qs.is_empty() {
                    return "no questions".into();
                }
                qs.iter().map(one_line).collect::<Vec<_>>().join("\n")
            });
        }
        QuestionCommand::Show { id } => {
            let state = bus.get_question(&parse::message(&id)?).await?;
            ctx.out.emit(&state, detail);
        }
    }
    Ok(())
}

pub(crate) async fn records(ctx: &Ctx, args: AuditArgs) -> anyhow::Result<()> {
    let query = AuditQuery {
        kinds: args
            .kinds
            .iter()
            .map(|k| parse::audit_kind(k))
            .collect::<anyhow::Result<_>>()?,
        about: args.about,
        limit: args.limit,
        ..AuditQuery::default()
    };
    let records = ctx.guild.bus().audit_records(&query).await?;
    ctx.out.emit(&records, |rs| {
        if rs.is_empty() {
            return "no audit records".into();
        }
        rs.iter().map(record_line).collect::<Vec<_>>().join("\n")
    });
    Ok(())
}

/// `q-1  dev-1 -> lead  "Which database?"  decided by lead: postgres`.
fn one_line(q: &QuestionState) -> String {
    let m = &q.question;
    let status = match &q.decision {
        Some(d) => format!("decided by {}: {}", d.approver, d.choice),
        None if m.requires_decision => match q.escalations.last() {
            Some(e) => format!("open, escalated to {}", e.to),
            None => "open".into(),
        },
        None => "needs no decision".into(),
    };
    format!(
        "{}  {} -> {}  {:?}  {status}",
        m.id, m.from, m.to, m.subject
    )
}

fn detail(q: &QuestionState) -> String {
    let mut out = vec![one_line(q), format!("  payload: {}", q.question.payload)];
    for e in &q.escalations {
        out.push(format!(
            "  escalated to {} at {} ({})",
            e.to, e.at, e.message_id
        ));
    }
    for d in &q.superseded {
        out.push(format!("  overridden: {} by {}", d.choice, d.approver));
    }
    if let Some(d) = &q.decision
        && let Some(why) = &d.rationale
    {
        out.push(format!("  rationale: {why}"));
    }
    out.join("\n")
}

/// `#12   spawn     by operator about dev-1`.
fn record_line(r: &AuditRecord) -> String {
    let e = &r.entry;
    format!(
        "#{:<5} {:<18} by {} about {}",
        r.seq,
        e.kind.as_str(),
        e.actor,
        e.about
    )
}
