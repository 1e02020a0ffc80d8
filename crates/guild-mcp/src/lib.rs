//! Guild as MCP tools: an MCP server (`guild mcp`) that speaks as one Guild agent, so a
//! model in any MCP host (a desktop assistant, an IDE, an agent framework) becomes a
//! governed Guild agent without glue.
//!
//! One process is one agent: its connection carries the agent's own credentials, so the
//! broker and the services hold every tool call to that agent's authority and budget. The
//! process heartbeats for the agent, watches its inbox log and the spawner's events about
//! it, and serves MCP over stdio ([`serve_stdio`]) or streamable HTTP ([`serve_http`],
//! loopback by default, bearer token and `Origin` checked).
//!
//! - tools ([`tool_definitions`] lists them): one tool per thing an agent does, each over one operation of
//!   `proto-schemas/` (its request schema is the tool's input schema), called through
//!   [`guild_sdk::Guild::call`];
//! - resources (`guild://inbox`, `guild://questions`, `guild://missions`,
//!   `guild://decisions`) with `notifications/resources/updated`;
//! - `notifications/tools/list_changed` when the agent is paused, resumed, terminated,
//!   given or giving budget, or its credentials are replaced; once it ended, every call is
//!   a tool error naming the rule (`agent_not_live`);
//! - elicitation, only when the process was given the operator's connection
//!   ([`Agent::operator`]): a question of this agent that reaches the human operator
//!   (asked of it, or escalated to it) is put to the host's user, and their answer is
//!   recorded as the operator's decision.
//!
//! ```no_run
//! # async fn run() -> Result<(), guild_mcp::Error> {
//! let options = guild_sdk::NatsOptions::url("nats://127.0.0.1:4222")
//!     .with_auth(guild_sdk::Auth::CredsFile(".guild/creds/dev1.creds".into()));
//! let guild = guild_sdk::connect(&options).await?;
//! guild_mcp::serve_stdio(guild_mcp::Agent::new(guild, ".guild")).await
//! # }
//! ```

#![deny(missing_docs)]

mod agent;
mod elicit;
mod http;
mod refusal;
mod resources;
mod server;
mod tools;

use std::path::PathBuf;
use std::sync::Arc;

use rmcp::ServiceExt;

pub use http::{Http, Tls, serve_http};
pub use server::Server;
pub use tools::{Asked, MyStatus, SpawnedAgent, Usage};

/// Why `guild mcp` could not serve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection acts as someone other than an agent.
    #[error(
        "guild mcp speaks as one agent, and this connection acts as {0}: give the agent's \
         credentials (--as <id>, or --creds/NATS_CREDS)"
    )]
    NotAnAgent(String),
    /// A call to Guild failed at start.
    #[error("guild: {0}")]
    Guild(#[from] guild_sdk::Error),
    /// A subscription (inbox log, events) could not be made.
    #[error("subscribing failed: {0}")]
    Subscribe(String),
    /// The MCP session failed.
    #[error("mcp: {0}")]
    Mcp(String),
    /// The HTTP listener failed.
    #[error("http: {0}")]
    Io(#[from] std::io::Error),
    /// A setting is unusable.
    #[error("{0}")]
    Config(String),
}

/// Who a `guild mcp` process speaks as, and what it may do besides.
#[derive(Clone, Debug)]
pub struct Agent {
    /// The connection, acting as the agent (its own credentials).
    pub guild: guild_sdk::Guild,
    /// Where spawned children's credentials are kept (`<home>/creds/<id>.creds`, mode 0600).
    pub home: PathBuf,
    /// The operator's connection, when the host's user answers for the operator: a
    /// question of this agent that reaches the operator is then put to the user by
    /// elicitation, and the answer recorded as the operator's decision. `None` (the
    /// default): nothing is elicited; the operator answers with `guild decide`.
    pub operator: Option<guild_sdk::Guild>,
}

impl Agent {
    /// The agent `guild` acts as, keeping children's credentials under `home`.
    pub fn new(guild: guild_sdk::Guild, home: impl Into<PathBuf>) -> Self {
        Self {
            guild,
            home: home.into(),
            operator: None,
        }
    }

    /// Lets the host's user answer, as the operator, this agent's questions that reach
    /// the operator (`operator` must act as the operator).
    pub fn with_operator(mut self, operator: guild_sdk::Guild) -> Self {
        self.operator = Some(operator);
        self
    }
}

/// Serves MCP on stdin/stdout as `agent`, until the host closes the stream. Nothing but
/// JSON-RPC is written to stdout (logs go to stderr).
pub async fn serve_stdio(agent: Agent) -> Result<(), Error> {
    let shared = agent::Shared::new(agent)?;
    shared.start().await?;
    let server = Server::new(shared, Arc::new(tools::all()));
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| Error::Mcp(e.to_string()))?;
    let reason = running
        .waiting()
        .await
        .map_err(|e| Error::Mcp(e.to_string()))?;
    tracing::info!(?reason, "mcp session ended");
    Ok(())
}

/// The tools as `tools/list` gives them to an agent whose authority allows all of them,
/// each with the name of its request type in `proto-schemas/` (for docs and tests).
pub fn tool_definitions() -> Vec<(rmcp::model::Tool, String)> {
    tools::all()
        .iter()
        .map(|t| (t.definition(), t.request_type()))
        .collect()
}
