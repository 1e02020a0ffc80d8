//! `spawn`, `agents` and `agent ...`.

use std::collections::BTreeMap;
use std::fmt::Write;

use guild_sdk::{AgentId, Principal};
use guild_sdk::{AgentProfile, AgentQuery, Authority, Capability, SpawnRequest};

use crate::Ctx;
use crate::cli::{AgentCommand, AgentsArgs, SpawnArgs};
use crate::parse;

fn row(a: &AgentProfile) -> String {
    let parent = a
        .parent_id
        .as_ref()
        .map_or("-".to_owned(), ToString::to_string);
    let task = a
        .assigned_task_id
        .as_ref()
        .map_or("-".to_owned(), ToString::to_string);
    format!(
        "{:<22} {:<14} {:<10} parent {:<18} budget {}/{} used  task {task}",
        a.id.to_string(),
        a.role.to_string(),
        a.status.to_string(),
        parent,
        a.budget.used,
        a.budget.allocated
    )
}

pub(crate) async fn spawn(ctx: &Ctx, a: SpawnArgs) -> anyhow::Result<()> {
    let mut request = SpawnRequest::new(parse::agent(&a.id)?, parse::role(&a.role)?, a.budget);
    request.parent_id = match (&a.parent, ctx.guild.principal()) {
        (Some(p), _) => Some(parse::agent(p)?),
        (None, Principal::Agent(me)) => Some(me.clone()),
        (None, _) => None,
    };
    request.capabilities = a
        .capabilities
        .iter()
        .map(|c| Capability::named(c.as_str()))
        .collect();
    if a.max_depth.is_some() || a.max_descendants.is_some() || a.max_spawns_per_minute.is_some() {
        // What the service gives when no authority is asked for, plus the caps.
        let mut authority = Authority::default_for(&request.role);
        if let Some(parent) = &request.parent_id {
            authority = authority.clamp_to(&ctx.guild.spawner().get(parent).await?.authority);
        }
        authority.max_depth = a.max_depth.or(authority.max_depth);
        authority.max_descendants = a.max_descendants.or(authority.max_descendants);
        authority.max_spawns_per_minute =
            a.max_spawns_per_minute.or(authority.max_spawns_per_minute);
        request.authority = Some(authority);
    }
    let spawned = ctx.guild.spawner().spawn(request).await?;
    let saved = match &spawned.credentials {
        Some(c) => crate::identity::save(&ctx.global, &spawned.id, c)?,
        None => None,
    };
    // The credentials go to the file, never to the terminal or the JSON output.
    ctx.out.emit(&spawned.agent, |a| {
        let mut text = format!("spawned {}", row(a));
        if let Some(path) = &saved {
            let _ = write!(
                text,
                "\ncredentials saved to {} (act as it with `guild --as {}`)",
                path.display(),
                a.id
            );
        }
        text
    });
    Ok(())
}

pub(crate) async fn list(ctx: &Ctx, a: AgentsArgs) -> anyhow::Result<()> {
    let query = AgentQuery {
        role: a.role.as_deref().map(parse::role).transpose()?,
        status: a.status.as_deref().map(parse::agent_status).transpose()?,
        include_terminated: a.all,
        ..AgentQuery::default()
    };
    let agents = if a.available {
        ctx.guild.spawner().find_available_agents(&query).await?
    } else {
        ctx.guild.spawner().list(&query).await?
    };
    if a.tree {
        ctx.out.emit(&agents, |agents| tree_text(agents));
    } else {
        ctx.out.emit(&agents, |agents| {
            if agents.is_empty() {
                return "no agents (spawn one with `guild spawn <id> --role developer --budget 5000`)".into();
            }
            agents.iter().map(row).collect::<Vec<_>>().join("\n")
        });
    }
    Ok(())
}

/// The agents as a lineage tree: each under its parent, with role, status and budget.
pub(crate) fn tree_text(agents: &[AgentProfile]) -> String {
    let known: BTreeMap<&AgentId, &AgentProfile> = agents.iter().map(|a| (&a.id, a)).collect();
    let mut children: BTreeMap<Option<&AgentId>, Vec<&AgentProfile>> = BTreeMap::new();
    for a in agents {
        // An agent whose parent is not listed is shown as a root.
        let parent = a.parent_id.as_ref().filter(|p| known.contains_key(p));
        children.entry(parent).or_default().push(a);
    }
    let mut text = String::new();
    fn walk(
        text: &mut String,
        children: &BTreeMap<Option<&AgentId>, Vec<&AgentProfile>>,
        of: Option<&AgentId>,
        prefix: &str,
    ) {
        let Some(kids) = children.get(&of) else {
            return;
        };
        for (i, a) in kids.iter().enumerate() {
            let last = i + 1 == kids.len();
            let (branch, more) = match (of.is_some(), last) {
                (false, _) => ("", ""),
                (true, true) => ("└─ ", "   "),
                (true, false) => ("├─ ", "│  "),
            };
            let temp = if a.temporary { " temporary" } else { "" };
            let _ = writeln!(
                text,
                "{prefix}{branch}{} ({}, {}{temp}) tokens {}/{}",
                a.id, a.role, a.status, a.budget.used, a.budget.allocated
            );
            walk(text, children, Some(&a.id), &format!("{prefix}{more}"));
        }
    }
    walk(&mut text, &children, None, "");
    if text.is_empty() {
        text.push_str("no agents");
    }
    text
}

pub(crate) async fn one(ctx: &Ctx, command: AgentCommand) -> anyhow::Result<()> {
    let spawner = ctx.guild.spawner();
    match command {
        AgentCommand::Show { id } => {
            let a = spawner.get(&parse::agent(&id)?).await?;
            ctx.out.emit(&a, |a| {
                format!(
                    "{}\n  capabilities: {}\n  authority: {}",
                    row(a),
                    a.capabilities
                        .iter()
                        .map(|c| c.name.clone())
                        .collect::<Vec<_>>()
                        .join(", "),
                    serde_json::to_string(&a.authority).unwrap_or_default()
                )
            });
        }
        AgentCommand::Pause {
            id,
            reason,
            subtree,
        } => {
            let changed = spawner.pause(&parse::agent(&id)?, &reason, subtree).await?;
            ctx.out.emit(&changed, |c| lines("paused", c));
        }
        AgentCommand::Resume { id, subtree } => {
            let changed = spawner.resume(&parse::agent(&id)?, subtree).await?;
            ctx.out.emit(&changed, |c| lines("resumed", c));
        }
        AgentCommand::Terminate { id, subtree } => {
            let changed = spawner
                .terminate(&guild_sdk::Terminate::new(&parse::agent(&id)?, subtree))
                .await?;
            ctx.out.emit(&changed, |c| lines("terminated", c));
        }
        AgentCommand::Authorize { id, action, phase } => {
            let phase = phase.as_deref().map(parse::phase).transpose()?;
            let verdict = spawner
                .authorize(&parse::agent(&id)?, &action, phase)
                .await?;
            ctx.out
                .emit(&verdict, |v| serde_json::to_string(v).unwrap_or_default());
        }
        AgentCommand::Credentials { id } => {
            let agent = parse::agent(&id)?;
            let issued = spawner.issue_credentials(&agent, None).await?;
            let saved = match &issued.credentials {
                Some(c) => crate::identity::save(&ctx.global, &agent, c)?,
                None => None,
            };
            ctx.out.emit(&issued.agent, |a| match &saved {
                Some(path) => format!(
                    "new credentials for {} saved to {}; the old ones no longer work",
                    a.id,
                    path.display()
                ),
                None => format!("new credentials for {}", a.id),
            });
        }
        AgentCommand::Heartbeat { id, keep } => {
            let me = ctx.as_agent(&parse::agent(&id)?).await?;
            let ack = me.spawner().heartbeat(None).await?;
            ctx.out.emit(&ack, |a| {
                format!(
                    "{id} is {} (heartbeat window {} ms)",
                    a.status, a.heartbeat_window_ms
                )
            });
            if keep {
                let every =
                    std::time::Duration::from_millis((ack.heartbeat_window_ms / 3).max(100));
                ctx.out.note(&format!(
                    "heartbeating as {id} every {every:?}; Ctrl-C stops"
                ));
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                // One listener for the whole loop: one made per pass would miss a Ctrl-C
                // that came while a heartbeat was on its way.
                let stop = tokio::signal::ctrl_c();
                tokio::pin!(stop);
                loop {
                    tokio::select! {
                        _ = tick.tick() => { me.spawner().heartbeat(None).await?; }
                        _ = &mut stop => break,
                    }
                }
            }
        }
        AgentCommand::Reallocate { from, to, amount } => {
            let done = spawner
                .reallocate_budget(&parse::agent(&from)?, &parse::agent(&to)?, amount)
                .await?;
            ctx.out
                .emit(&done, |d| serde_json::to_string(d).unwrap_or_default());
        }
    }
    Ok(())
}

fn lines(what: &str, agents: &[AgentProfile]) -> String {
    agents
        .iter()
        .map(|a| format!("{what} {}", row(a)))
        .collect::<Vec<_>>()
        .join("\n")
}
