//! `decisions log | verify | export`.

use guild_sdk::api::bus::DecisionQuery;

use crate::Ctx;
use crate::cli::DecisionCommand;
use crate::parse;

pub(crate) async fn run(ctx: &Ctx, command: DecisionCommand) -> anyhow::Result<()> {
    let bus = ctx.guild.bus();
    match command {
        DecisionCommand::Log {
            agent,
            mission,
            limit,
        } => {
            let query = DecisionQuery {
                agent: agent.as_deref().map(parse::principal).transpose()?,
                mission_id: mission.as_deref().map(parse::mission).transpose()?,
                limit,
                ..DecisionQuery::default()
            };
            let log = bus.decision_history(&query).await?;
            ctx.out.emit(&log, |log| {
                if log.is_empty() {
                    return "no decisions recorded".into();
                }
                log.iter()
                    .map(|d| {
                        let r = &d.record;
                        format!(
                            "#{:<5} {:<18} {} {:?} for {} (question {}){}",
                            d.audit_seq,
                            d.kind.as_str(),
                            r.approver,
                            r.choice,
                            r.asker,
                            r.question_id,
                            r.rationale
                                .as_deref()
                                .map_or(String::new(), |w| format!(": {w}"))
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        DecisionCommand::Verify => {
            let report = bus.verify_audit().await?;
            ctx.out.emit(&report, |r| {
                if r.ok {
                    format!(
                        "audit log intact: {} records, head {}",
                        r.records, r.head_hash
                    )
                } else {
                    format!("audit log BROKEN: {:?}", r.problems)
                }
            });
            if !report.ok {
                anyhow::bail!("the audit log failed verification");
            }
        }
        DecisionCommand::Export { out } => {
            let export = bus.export_decisions(&DecisionQuery::default()).await?;
            match out {
                Some(path) => {
                    std::fs::write(&path, &export.markdown)
                        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
                    ctx.out.note(&format!("wrote {}", path.display()));
                }
                None => ctx.out.emit(&export, |e| e.markdown.clone()),
            }
        }
    }
    Ok(())
}
