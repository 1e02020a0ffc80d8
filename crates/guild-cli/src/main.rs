//! `guild`: Guild from the shell. Every operation of the three services, `guild dev` (the
//! whole stack locally) and `guild demo` (the seed's complete workflow).

mod cli;
mod cmd;
mod demo;
mod dev;
mod identity;
mod output;
mod parse;

use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use guild_sdk::{ErrorKind, Guild};

use crate::cli::{Cli, Command, Global};
use crate::output::Out;

/// What a command needs: the connection acting as the chosen principal, the global
/// options (where credentials are kept), and the output.
pub(crate) struct Ctx {
    pub(crate) guild: Guild,
    pub(crate) global: Global,
    pub(crate) out: Out,
}

impl Ctx {
    async fn connect(global: &Global) -> anyhow::Result<Self> {
        let guild = guild_sdk::connect(&identity::options(global)?)
            .await?
            .with_timeout(Duration::from_secs(global.timeout.max(1)));
        Ok(Self {
            guild,
            global: global.clone(),
            out: Out { json: global.json },
        })
    }

    /// A connection of agent `id`'s own (its credentials in `<home>/creds`), for what only
    /// the agent may do (heartbeats).
    pub(crate) async fn as_agent(&self, id: &guild_sdk::AgentId) -> anyhow::Result<Guild> {
        if self.guild.principal().agent() == Some(id) {
            return Ok(self.guild.clone());
        }
        let mut global = self.global.clone();
        global.as_agent = Some(id.to_string());
        global.nats.creds = None;
        Ok(guild_sdk::connect(&identity::options(&global)?)
            .await?
            .with_timeout(Duration::from_secs(self.global.timeout.max(1))))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("guild: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let text = format!("{e:#}");
            eprintln!("guild: {text}");
            let code = exit_code(&e);
            if code == exit::UNAVAILABLE && !text.contains("guild dev") {
                eprintln!(
                    "guild: is Guild running there? `guild dev` starts it locally; NATS_URL or \
                     --nats-url point elsewhere"
                );
            }
            ExitCode::from(code)
        }
    }
}

/// The exit codes [`cli::EXIT_CODES`] documents.
mod exit {
    pub(crate) const FAILED: u8 = 1;
    pub(crate) const USAGE: u8 = 2;
    pub(crate) const REFUSED: u8 = 3;
    pub(crate) const UNAVAILABLE: u8 = 69;
    pub(crate) const TIMED_OUT: u8 = 75;
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let out = Out {
        json: cli.global.json,
    };
    // Where services run in this process: their logs (warnings unless RUST_LOG says
    // more) and, with OTEL_* set, their traces and metrics.
    // `guild mcp` logs too: to stderr, as always, since its stdout is the MCP stream.
    if matches!(
        cli.command,
        Command::Dev(_) | Command::Demo(_) | Command::Mcp(_)
    ) {
        guild_telemetry::init_logging_at("guild", guild_telemetry::LogFormat::from_env(), "warn");
    }
    let result = dispatch(cli, out).await;
    guild_telemetry::shutdown();
    result
}

async fn dispatch(cli: Cli, out: Out) -> anyhow::Result<()> {
    match cli.command {
        Command::Dev(args) => return dev::run(args, &cli.global.home, out).await,
        Command::Demo(args) => return demo::run(args, &cli.global, out).await,
        Command::Admin {
            command:
                cli::AdminCommand::Init {
                    out: folder,
                    resolver_dir,
                    max_payload,
                },
        } => return admin_init(&folder, &resolver_dir, max_payload, out),
        Command::Decisions {
            command:
                cli::DecisionCommand::Verify {
                    file: Some(file),
                    keys,
                    expect_head,
                    ..
                },
        } => return cmd::verify_file(out, &file, keys.as_deref(), expect_head.as_deref()),
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "guild", &mut script);
            // Written, not unwrapped: `guild completions zsh | head` closes the pipe early.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
            return Ok(());
        }
        _ => {}
    }
    let ctx = Ctx::connect(&cli.global).await?;
    cmd::dispatch(&ctx, cli.command).await
}

/// `guild admin init`: makes the keys before anything runs.
fn admin_init(
    folder: &std::path::Path,
    resolver_dir: &std::path::Path,
    max_payload: usize,
    out: Out,
) -> anyhow::Result<()> {
    let layout = guild_auth::Layout::under(folder);
    let limits = guild_auth::claims::AgentLimits::for_payload(max_payload);
    let made = guild_auth::init(&layout, resolver_dir, limits)?;
    let info = serde_json::json!({
        "made": made,
        "keys": layout.keys,
        "creds": layout.creds,
        "nats_config": layout.server_config(),
        "operator_creds": layout.creds_of(&guild_sdk::Principal::Operator),
    });
    out.emit(&info, |_| {
        if made {
            format!(
                "made Guild's keys in {} and credentials in {}; include {} in \
                 nats-server's configuration; back the keys folder up (deploy/README.md)",
                layout.keys.display(),
                layout.creds.display(),
                layout.server_config().display()
            )
        } else {
            format!(
                "Guild's keys are already in {}; nothing changed",
                layout.keys.display()
            )
        }
    });
    Ok(())
}

/// The exit code for a failure: see [`cli::EXIT_CODES`].
fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(sdk) = cause.downcast_ref::<guild_sdk::Error>() {
            return match sdk.kind() {
                ErrorKind::Rejected(_) => exit::REFUSED,
                ErrorKind::NoResponders | ErrorKind::Transport => exit::UNAVAILABLE,
                ErrorKind::PermissionDenied => exit::REFUSED,
                ErrorKind::TimedOut => exit::TIMED_OUT,
                _ => exit::FAILED,
            };
        }
        if cause.downcast_ref::<parse::BadArgument>().is_some() {
            return exit::USAGE;
        }
    }
    exit::FAILED
}
