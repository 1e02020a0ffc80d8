//! `missions ...`: the mission manager from the shell.

use std::collections::BTreeMap;
use std::fmt::Write;

use guild_sdk::MissionId;
use guild_sdk::api::mission::MissionQuery;
use guild_sdk::{Mission, NewMission, Severity};

use crate::Ctx;
use crate::cli::MissionCommand;
use crate::output::brief;
use crate::parse;

fn row(m: &Mission) -> String {
    let agent = m
        .assigned_agent_id
        .as_ref()
        .map_or("-".to_owned(), ToString::to_string);
    let waits: Vec<String> = m.waiting_on.iter().map(ToString::to_string).collect();
    let waiting = if waits.is_empty() {
        String::new()
    } else {
        format!("  waiting on {}", waits.join(", "))
    };
    format!(
        "{:<22} {:<10} phase {:>2}  p{}  agent {:<16} attempts {}/{}  {}{waiting}",
        m.id.to_string(),
        m.status.to_string(),
        m.phase.to_string(),
        m.priority,
        agent,
        m.attempts,
        m.max_retries + 1,
        m.name
    )
}

pub(crate) async fn run(ctx: &Ctx, command: MissionCommand) -> anyhow::Result<()> {
    let missions = ctx.guild.missions();
    match command {
        MissionCommand::Create {
            id,
            name,
            phase,
            budget,
            priority,
            agent,
            role,
            max_retries,
            quality_gate,
            input,
        } => {
            let mut m = NewMission::new(parse::mission(&id)?, name, parse::phase(&phase)?);
            m.token_budget = budget;
            if let Some(p) = priority {
                m.priority = p;
            }
            m.assigned_agent_id = agent.as_deref().map(parse::agent).transpose()?;
            m.role = role.as_deref().map(parse::role).transpose()?;
            if let Some(r) = max_retries {
                m.max_retries = r;
            }
            m.quality_gate = quality_gate;
            m.input_data = parse::json("--input", &input)?;
            let created = missions.create_mission(&m).await?;
            ctx.out.emit(&created, |m| format!("created {}", row(m)));
        }
        MissionCommand::Claim => {
            let claimed = missions.claim_next(None).await?;
            ctx.out.emit(&claimed, |c| match c {
                Some(m) => format!("claimed {}", row(m)),
                None => "nothing to claim".to_owned(),
            });
        }
        MissionCommand::Depend {
            mission,
            depends_on,
            soft,
        } => {
            let severity = if soft { Severity::Soft } else { Severity::Hard };
            let m = missions
                .add_dependency(
                    &parse::mission(&mission)?,
                    &parse::mission(&depends_on)?,
                    severity,
                )
                .await?;
            ctx.out.emit(&m, row);
        }
        MissionCommand::Undepend {
            mission,
            depends_on,
        } => {
            let m = missions
                .remove_dependency(&parse::mission(&mission)?, &parse::mission(&depends_on)?)
                .await?;
            ctx.out.emit(&m, row);
        }
        MissionCommand::Ready { mission } => {
            let r = missions.check_ready(&parse::mission(&mission)?).await?;
            ctx.out.emit(&r, |r| {
                if r.ready {
                    format!("{} is ready ({})", r.mission_id, r.status)
                } else {
                    let w: Vec<String> = r.waiting_on.iter().map(ToString::to_string).collect();
                    format!(
                        "{} is not ready ({}); waiting on: {}",
                        r.mission_id,
                        r.status,
                        w.join(", ")
                    )
                }
            });
        }
        MissionCommand::Groups { limit } => {
            let g = missions.get_parallelizable_missions(limit).await?;
            ctx.out.emit(&g, |g| {
                let mut text = String::new();
                for group in &g.groups {
                    let ids: Vec<String> = group.missions.iter().map(ToString::to_string).collect();
                    let _ = writeln!(text, "group {}: {}", group.index, ids.join(", "));
                }
                if g.truncated {
                    let shown: usize = g.groups.iter().map(|x| x.missions.len()).sum();
                    let _ = writeln!(
                        text,
                        "(the first {shown} of {} missions; --limit lists more)",
                        g.missions
                    );
                }
                if text.is_empty() {
                    "no open missions".into()
                } else {
                    text
                }
            });
        }
        MissionCommand::Assign { mission, agent } => {
            let agent = agent.as_deref().map(parse::agent).transpose()?;
            let m = missions
                .assign_mission(&parse::mission(&mission)?, agent.as_ref())
                .await?;
            ctx.out.emit(&m, |m| format!("assigned {}", row(m)));
        }
        MissionCommand::Complete {
            mission,
            output,
            quality,
        } => {
            let o = missions
                .mark_complete(
                    &parse::mission(&mission)?,
                    parse::json("--output", &output)?,
                    quality,
                )
                .await?;
            ctx.out.emit(&o, |o| {
                let retry = if o.will_retry {
                    " (below its quality gate: it will be retried)"
                } else {
                    ""
                };
                format!("{}{retry}", row(&o.mission))
            });
        }
        MissionCommand::Fail {
            mission,
            reason,
            no_retry,
        } => {
            let retried = missions
                .mark_failed(&parse::mission(&mission)?, &reason, !no_retry)
                .await?;
            let result = serde_json::json!({ "mission_id": mission, "will_retry": retried });
            ctx.out.emit(&result, |_| {
                if retried {
                    format!("{mission}: attempt failed; READY for another")
                } else {
                    format!("{mission}: FAILED for good")
                }
            });
        }
        MissionCommand::Cancel { mission, reason } => {
            let m = missions
                .cancel_mission(&parse::mission(&mission)?, &reason)
                .await?;
            ctx.out.emit(&m, row);
        }
        MissionCommand::List {
            status,
            phase,
            agent,
            archived,
        } => {
            let query = MissionQuery {
                status: status.as_deref().map(parse::mission_status).transpose()?,
                phase: phase.as_deref().map(parse::phase).transpose()?,
                agent_id: agent.as_deref().map(parse::agent).transpose()?,
                include_archived: archived,
                limit: None,
            };
            let list = missions.list_missions(&query).await?;
            ctx.out.emit(&list, |l| {
                if l.missions.is_empty() {
                    return "no missions (create one with `guild missions create <id> --name ... --phase 0`)".into();
                }
                l.missions.iter().map(row).collect::<Vec<_>>().join("\n")
            });
        }
        MissionCommand::Show { mission } => {
            let m = missions.get_mission(&parse::mission(&mission)?).await?;
            ctx.out.emit(&m, |m| {
                format!(
                    "{}\n  input {}\n  output {}",
                    row(m),
                    brief(&m.input_data, 200),
                    brief(&m.output_data, 200)
                )
            });
        }
        MissionCommand::Graph => {
            let list = missions.list_missions(&MissionQuery::default()).await?;
            ctx.out.emit(&list, |l| graph_text(&l.missions));
        }
        MissionCommand::Outputs { mission, phase } => {
            let mission = mission.as_deref().map(parse::mission).transpose()?;
            let phase = phase.as_deref().map(parse::phase).transpose()?;
            let outputs = missions.get_outputs(mission.as_ref(), phase).await?;
            ctx.out.emit(&outputs, |o| {
                o.iter()
                    .map(|o| {
                        format!(
                            "{} ({}): {}",
                            o.mission_id,
                            o.name,
                            brief(&o.output_data, 120)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        MissionCommand::Phase { phase } => {
            let s = missions.phase_status(parse::phase(&phase)?).await?;
            ctx.out.emit(&s, |s| {
                let counts: Vec<String> = s
                    .by_status
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect();
                format!(
                    "phase {} ({}): {}; {}",
                    s.phase,
                    s.name,
                    if s.complete {
                        "complete"
                    } else {
                        "not complete"
                    },
                    counts.join(", ")
                )
            });
        }
    }
    Ok(())
}

/// The dependency graph as text: missions by level (a mission comes after everything it
/// depends on), each with what it waits on.
fn graph_text(missions: &[Mission]) -> String {
    let by_id: BTreeMap<&MissionId, &Mission> = missions.iter().map(|m| (&m.id, m)).collect();
    // A mission's level is one more than its deepest dependency's (the service refuses
    // cycles, so this ends); dependencies outside the list count as level 0.
    fn level<'a>(
        m: &'a Mission,
        by_id: &BTreeMap<&'a MissionId, &'a Mission>,
        memo: &mut BTreeMap<&'a MissionId, usize>,
    ) -> usize {
        if let Some(l) = memo.get(&m.id) {
            return *l;
        }
        let l = m
            .depends_on
            .iter()
            .filter_map(|d| by_id.get(&d.mission_id))
            .map(|d| level(d, by_id, memo) + 1)
            .max()
            .unwrap_or(0);
        memo.insert(&m.id, l);
        l
    }
    let mut memo = BTreeMap::new();
    let mut sorted: Vec<(usize, &Mission)> = missions
        .iter()
        .map(|m| (level(m, &by_id, &mut memo), m))
        .collect();
    sorted.sort_by(|(la, a), (lb, b)| (la, a.phase, &a.id).cmp(&(lb, b.phase, &b.id)));
    let mut text = String::new();
    let mut current = None;
    for (l, m) in sorted {
        if current != Some(l) {
            current = Some(l);
            let _ = writeln!(text, "level {l}");
        }
        let deps: Vec<String> = m
            .depends_on
            .iter()
            .map(|d| match d.severity {
                Severity::Hard => d.mission_id.to_string(),
                Severity::Soft => format!("{} (soft)", d.mission_id),
            })
            .collect();
        let arrow = if deps.is_empty() {
            String::new()
        } else {
            format!("  ⇐ {}", deps.join(", "))
        };
        let _ = writeln!(
            text,
            "  {} [{}] phase {} {}{arrow}",
            m.id, m.status, m.phase, m.name
        );
    }
    if text.is_empty() {
        "no missions".into()
    } else {
        text
    }
}
