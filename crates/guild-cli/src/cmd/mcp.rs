//! `guild mcp`: the MCP server of `guild-mcp`, speaking as the agent this command acts as.

use anyhow::Context;

use crate::Ctx;
use crate::cli::McpArgs;
use crate::parse::BadArgument;

/// The variable holding the HTTP transport's bearer token.
const TOKEN_VAR: &str = "GUILD_MCP_TOKEN";

pub(crate) async fn run(ctx: &Ctx, args: McpArgs) -> anyhow::Result<()> {
    let mut agent = guild_mcp::Agent::new(ctx.guild.clone(), &ctx.global.home);
    if let Some(creds) = &args.operator_creds {
        agent = agent.with_operator(operator(ctx, creds).await?);
    }
    let Some(listen) = args.http else {
        if args.tls_cert.is_some() {
            return Err(BadArgument("--tls-cert and --tls-key go with --http".into()).into());
        }
        return guild_mcp::serve_stdio(agent)
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
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert_chain), Some(private_key)) => Some(guild_mcp::Tls {
            cert_chain,
            private_key,
        }),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let options = guild_mcp::Http {
        listen,
        token,
        allowed_origins: args.allow_origin,
        tls,
    };
    let shutdown = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            eprintln!("guild mcp: ctrl-c not watched ({e}); stop it with a signal");
            std::future::pending::<()>().await;
        }
    };
    guild_mcp::serve_http(
        agent,
        options,
        |addr| eprintln!("guild mcp: serving streamable HTTP at {scheme}://{addr}/mcp"),
        shutdown,
    )
    .await
    .context("while serving MCP over HTTP")
}

/// The operator's connection, on the same server as the agent's, with `creds`.
async fn operator(ctx: &Ctx, creds: &std::path::Path) -> anyhow::Result<guild_sdk::Guild> {
    let mut options = crate::identity::options(&ctx.global)?;
    options.auth = guild_sdk::Auth::CredsFile(creds.to_owned());
    let operator = guild_sdk::connect(&options)
        .await
        .with_context(|| format!("while connecting with --operator-creds {}", creds.display()))?;
    if operator.principal() != &guild_sdk::Principal::Operator {
        return Err(BadArgument(format!(
            "--operator-creds {} act as {}, not the operator",
            creds.display(),
            operator.principal()
        ))
        .into());
    }
    Ok(operator)
}
