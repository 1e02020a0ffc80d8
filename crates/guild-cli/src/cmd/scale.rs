//! `scale set|rm|ls`: scaling policies.

use guild_sdk::{AgentId, Principal, ScalingPolicy, ScalingState};

use crate::Ctx;
use crate::cli::ScaleCommand;
use crate::parse;

/// The owner named, or the caller acting as an agent.
fn owner(ctx: &Ctx, named: Option<&str>) -> anyhow::Result<AgentId> {
    match (named, ctx.guild.principal()) {
        (Some(o), _) => parse::agent(o),
        (None, Principal::Agent(me)) => Ok(me.clone()),
        (None, _) => anyhow::bail!("name the policy's owner with --owner (or act --as it)"),
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn row(s: &ScalingState) -> String {
    let p = &s.scaling.policy;
    let phase = p
        .phase
        .map_or("any phase".to_owned(), |ph| format!("phase {ph}"));
    let held = s
        .scaling
        .blocked_by
        .as_ref()
        .map(|r| format!("  held by {r}"))
        .unwrap_or_default();
    format!(
        "{:<18} {:<12} {}..{} agents, {} READY each, {phase}, cool-down {} ms, idle {} ms, {} tokens each: {} live [{}]{held}",
        p.owner.to_string(),
        p.role.to_string(),
        p.min_agents,
        p.max_agents,
        p.ready_per_agent,
        p.cooldown_ms,
        p.idle_ttl_ms,
        p.agent_budget,
        s.members.len(),
        s.members
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

pub(crate) async fn run(ctx: &Ctx, command: ScaleCommand) -> anyhow::Result<()> {
    let spawner = ctx.guild.spawner();
    match command {
        ScaleCommand::Set {
            role,
            owner: named,
            phase,
            min,
            max,
            ready_per_agent,
            hysteresis,
            cooldown,
            budget,
            idle,
            prefix,
        } => {
            let mut policy = ScalingPolicy::new(
                owner(ctx, named.as_deref())?,
                parse::role(&role)?,
                max,
                budget,
            );
            policy.phase = phase.as_deref().map(parse::phase).transpose()?;
            policy.min_agents = min;
            policy.ready_per_agent = ready_per_agent;
            policy.hysteresis = hysteresis;
            policy.cooldown_ms = millis(cooldown);
            policy.idle_ttl_ms = millis(idle);
            policy.agent_prefix = prefix;
            let set = spawner.set_scaling_policy(&policy).await?;
            ctx.out.emit(&set, |s| format!("scaling {}", row(s)));
        }
        ScaleCommand::Rm { role, owner: named } => {
            let owner = owner(ctx, named.as_deref())?;
            let role = parse::role(&role)?;
            spawner.remove_scaling_policy(&owner, &role).await?;
            let gone = serde_json::json!({"owner": owner, "role": role, "removed": true});
            ctx.out.emit(&gone, |_| {
                format!("scaling policy of {owner} for {role} removed")
            });
        }
        ScaleCommand::Ls { owner: named } => {
            let owner = named.as_deref().map(parse::agent).transpose()?;
            let list = spawner.list_scaling_policies(owner.as_ref()).await?;
            ctx.out.emit(&list, |l| {
                if l.policies.is_empty() {
                    return "no scaling policies".to_owned();
                }
                l.policies.iter().map(row).collect::<Vec<_>>().join("\n")
            });
        }
    }
    Ok(())
}
