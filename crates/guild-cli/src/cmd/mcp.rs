//! `guild mcp`: the MCP server of `guild-mcp`, speaking as the agent this command acts as.

use anyhow::Context;

use crate::Ctx;
use crate::cli::McpArgs;
use crate::parse::BadArgument;

/// The variable holding the HTTP transport's bearer token.
const TOKEN_VAR: &str = "GUILD_MCP_TOKEN";

pub(crate) async fn run(ctx: &Ctx, args: McpArgs) -> anyhow::Result<()> {
    let home = &ctx.global.home;
    let guild = ctx.guild.clone();
    let Some(listen) = args.http else {
        return guild_mcp::serve_stdio(guild, home)
            .await
            .context("while serving MCP on stdio");
    };
    let token = match &args.token_file {
        Some(file) => std::fs::read_to_string(file)
            .with_context(|| format!("while reading the token file {}", file.display()))?
            .trim()
            .to_owned(),
        None => std::env::var(TOKEN_VAR).map_err(|_| {
            BadArgument(format!(
                "--http needs a bearer token: set {TOKEN_VAR} or give --token-file"
            ))
        })?,
    };
    let options = guild_mcp::Http {
        listen,
        token,
        allowed_origins: args.allow_origin,
    };
    let shutdown = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            eprintln!("guild mcp: ctrl-c not watched ({e}); stop it with a signal");
            std::future::pending::<()>().await;
        }
    };
    guild_mcp::serve_http(
        guild,
        home,
        options,
        |addr| eprintln!("guild mcp: serving streamable HTTP at http://{addr}/mcp"),
        shutdown,
    )
    .await
    .context("while serving MCP over HTTP")
}
