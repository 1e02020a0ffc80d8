//! The commands that call the services: one module per area.

mod agents;
mod audit;
mod bus;
mod decisions;
mod info;
mod mcp;
mod missions;
mod scale;

pub(crate) use agents::tree_text;
pub(crate) use decisions::verify_file;

use crate::Ctx;
use crate::cli::Command;

/// Runs one command against a running Guild.
pub(crate) async fn dispatch(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Spawn(a) => agents::spawn(ctx, a).await,
        Command::Agents(a) => agents::list(ctx, a).await,
        Command::Agent { command } => agents::one(ctx, command).await,
        Command::Scale { command } => scale::run(ctx, command).await,
        Command::Send(a) => bus::send(ctx, a).await,
        Command::Ask(a) => bus::ask(ctx, a).await,
        Command::Alert(a) => bus::alert(ctx, a).await,
        Command::Handoff(a) => bus::handoff(ctx, a).await,
        Command::Reply(a) => bus::reply(ctx, a).await,
        Command::Decide(a) => bus::decide(ctx, a).await,
        Command::Inbox(a) => bus::inbox(ctx, a).await,
        Command::Tail(a) => bus::tail(ctx, a).await,
        Command::Missions { command } => missions::run(ctx, command).await,
        Command::Decisions { command } => decisions::run(ctx, command).await,
        Command::Questions { command } => audit::questions(ctx, command).await,
        Command::Audit(a) => audit::records(ctx, a).await,
        Command::Mcp(a) => mcp::run(ctx, a).await,
        Command::Stats => info::stats(ctx).await,
        Command::Services => info::services(ctx).await,
        Command::Admin {
            command:
                crate::cli::AdminCommand::Recover {
                    service,
                    accept_loss,
                },
        } => info::recover(ctx, &service, accept_loss).await,
        // Handled before connecting.
        Command::Dev(_)
        | Command::Demo(_)
        | Command::Completions { .. }
        | Command::Admin { .. } => Ok(()),
    }
}
