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
        DecisionCommand::Verify {
            expect_head,
            direct,
            file: _,
            keys,
        } => {
            let report = if direct {
                let keys = match keys {
                    Some(path) => read_keys(&path)?,
                    None => guild_sdk::audit::keys(&ctx.guild).await?,
                };
                let records = guild_sdk::audit::export(&ctx.guild).await?;
                guild_sdk::audit::verify(&records, Some(&keys))
            } else {
                bus.verify_audit().await?
            };
            show(ctx.out, &report, expect_head.as_deref())?;
        }
        DecisionCommand::Keys => {
            let keys = guild_sdk::audit::keys(&ctx.guild).await?;
            ctx.out.emit(&keys, |k| {
                serde_json::to_string_pretty(k).unwrap_or_default()
            });
        }
        DecisionCommand::Export { out, jsonl: true } => {
            let records = guild_sdk::audit::export(&ctx.guild).await?;
            let mut text = String::new();
            for r in &records {
                text.push_str(&serde_json::to_string(r)?);
                text.push('\n');
            }
            match out {
                Some(path) => {
                    std::fs::write(&path, text)
                        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
                    ctx.out.note(&format!(
                        "wrote {} records to {}",
                        records.len(),
                        path.display()
                    ));
                }
                None => {
                    use std::io::Write;
                    std::io::stdout().write_all(text.as_bytes())?;
                }
            }
        }
        DecisionCommand::Export { out, jsonl: false } => {
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

/// Reads a key history file (`audit-keys.json`).
pub(crate) fn read_keys(path: &std::path::Path) -> anyhow::Result<guild_wire::audit::AuditKeys> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// `decisions verify --file`: an export checked here, with no connection.
pub(crate) fn verify_file(
    out: crate::output::Out,
    file: &std::path::Path,
    keys: Option<&std::path::Path>,
    expect_head: Option<&str>,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let mut records = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let r: guild_sdk::audit::Exported = serde_json::from_str(line)
            .map_err(|e| anyhow::anyhow!("{} line {}: {e}", file.display(), n + 1))?;
        records.push(r);
    }
    let keys = keys.map(read_keys).transpose()?;
    let report = guild_sdk::audit::verify(&records, keys.as_ref());
    show(out, &report, expect_head)
}

/// Prints a verification and fails unless it holds (and ends at `expect_head`).
fn show(
    out: crate::output::Out,
    report: &guild_wire::audit::VerifyReport,
    expect_head: Option<&str>,
) -> anyhow::Result<()> {
    let head_ok = expect_head.is_none_or(|h| report.has_head(h));
    out.emit(report, |r| {
        let mut text = if r.ok {
            format!(
                "audit log intact: {} records, last #{}, head {}",
                r.records, r.last_seq, r.head_hash
            )
        } else {
            let mut t = format!("audit log BROKEN ({} records, last #{}):", r.records, r.last_seq);
            for p in &r.problems {
                t.push_str(&format!("\n  {}", serde_json::to_string(p).unwrap_or_default()));
            }
            t
        };
        if r.signatures_checked {
            text.push_str(&format!("\nsignatures: {} verified", r.signed));
        } else {
            text.push_str("\nsignatures: not checked (no key history: pass --keys)");
        }
        if !r.unsigned.is_empty() {
            text.push_str(&format!(
                "; {} unsigned records made before signing (#{}..#{})",
                r.unsigned.len(),
                r.unsigned.first().unwrap_or(&0),
                r.unsigned.last().unwrap_or(&0)
            ));
        }
        if !head_ok {
            text.push_str(&format!(
                "\nHEAD MISMATCH: the chain ends at {}, not at the head you kept (truncated or rewritten)",
                r.head_hash
            ));
        }
        text
    });
    if !report.ok {
        anyhow::bail!("the audit log failed verification");
    }
    if !head_ok {
        anyhow::bail!("the audit log does not end at the expected head");
    }
    Ok(())
}
