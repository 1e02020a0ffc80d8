//! The command line: every command, its arguments and their help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::parse;

/// Exit codes, shown in `guild --help`.
pub(crate) const EXIT_CODES: &str = "\
Exit codes:
  0   success
  1   the command failed (see the message)
  2   bad command-line usage
  3   Guild refused the request (the message names the rule and the field)
  69  Guild is not reachable: nothing answers (start it with `guild dev`)
  75  no reply in time (the outcome of a write is unknown: check before retrying)

Identity: each command runs as one principal, pinned by its credentials at the broker:
--creds/NATS_CREDS if given, else --as/GUILD_AS <agent> with <home>/creds/<agent>.creds (saved
there when this CLI spawns the agent), else the operator's <home>/creds/operator.creds (made
by `guild dev`). The other NATS options (--nkey, --user, --password, --tlsca, --tlscert,
--tlskey) are the nats CLI's, with the same environment variables.

Environment: NATS_URL (default nats://127.0.0.1:4222), NATS_CREDS and the other NATS_*
options, GUILD_HOME (default .guild), GUILD_AS (act as an agent), RUST_LOG (log filter for `guild dev` and `guild demo`, default warn), OTEL_EXPORTER_OTLP_ENDPOINT
and the other OTEL_* variables (traces and metrics of `guild dev` and `guild demo`; the list
is in `spawner-svc --help`).";

#[derive(Parser, Debug)]
#[command(
    name = "guild",
    version,
    about = "Guild from the shell: agents, messages, missions and decisions over NATS.",
    long_about = "Guild from the shell: spawn agents, send messages and answer questions, run \
missions, read and verify the decision log.\n\nStart everything locally with `guild dev`, or \
watch the seed's complete workflow with `guild demo`.",
    after_help = EXIT_CODES
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command takes.
#[derive(Args, Debug, Clone)]
pub(crate) struct Global {
    /// Where NATS is and how to authenticate (the nats CLI's names).
    #[command(flatten)]
    pub(crate) nats: guild_sdk::connect::Args,
    /// Guild's local folder: `guild dev` keeps its keys, credentials and data here, and
    /// every command finds the operator's and the agents' credentials in {home}/creds.
    #[arg(long, global = true, env = "GUILD_HOME", default_value = ".guild")]
    pub(crate) home: PathBuf,
    /// Act as this agent instead of the operator, with {home}/creds/{AGENT}.creds.
    #[arg(long = "as", global = true, env = "GUILD_AS", value_name = "AGENT", value_parser = parse::valid(parse::agent))]
    pub(crate) as_agent: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Seconds to wait for each reply.
    #[arg(long, global = true, default_value_t = 10)]
    pub(crate) timeout: u64,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Start nats-server and the three services locally, in this process; Ctrl-C stops.
    Dev(DevArgs),
    /// Run the seed's complete workflow with scripted agents and print the report.
    Demo(DemoArgs),
    /// Spawn an agent (under `--parent`, or as a root agent when the operator spawns).
    Spawn(SpawnArgs),
    /// List agents, or show them as a tree with lineage, status and budgets.
    Agents(AgentsArgs),
    /// One agent: show, pause, resume, terminate, authorize, reallocate.
    Agent {
        #[command(subcommand)]
        command: AgentCommand,
    },
    /// Auto-scaling: how many agents of a role an owner keeps by load (READY missions of
    /// that role). spawner-svc spawns and scales down the members itself.
    Scale {
        #[command(subcommand)]
        command: ScaleCommand,
    },
    /// Send a REQUEST to an agent.
    Send(SendArgs),
    /// Ask a QUESTION (to an agent, or to your orchestrator).
    Ask(AskArgs),
    /// Raise an ALERT to every live agent (HIGH, or CRITICAL with --critical).
    Alert(AlertArgs),
    /// Hand a mission you run to another agent.
    Handoff(HandoffArgs),
    /// Reply to a message.
    Reply(ReplyArgs),
    /// Decide a question: the decision goes to the asker and into the audit log. The
    /// operator (and an agent with `can_override_decisions`) may also decide a question
    /// someone else already decided: the new choice overrides it, and the log keeps both.
    Decide(DecideArgs),
    /// Read your inbox (the operator's, or `--as` an agent's). Without --ack the messages
    /// are taken and given straight back: each look counts as a delivery attempt.
    Inbox(InboxArgs),
    /// Watch the live bus; Ctrl-C stops.
    Tail(TailArgs),
    /// Missions: create, depend, ready, groups, assign, complete, fail, cancel, graph.
    Missions {
        #[command(subcommand)]
        command: MissionCommand,
    },
    /// The decision log: history, verification, Markdown export.
    Decisions {
        #[command(subcommand)]
        command: DecisionCommand,
    },
    /// Questions you may read (your own and your team's; every one as the operator or
    /// the observer): list them, or show one with its decision and escalations.
    Questions {
        #[command(subcommand)]
        command: QuestionCommand,
    },
    /// Audit records you may read (spawns, terminations, denials, decisions, missions,
    /// credentials): yours and your team's, or every one as the operator or the observer.
    Audit(AuditArgs),
    /// Figures from the three services.
    Stats,
    /// The service instances running (from NATS `$SRV`).
    Services,
    /// Administration: making Guild's keys for a deployment.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Serve MCP as one agent (`--as AGENT`, or its `--creds`): a model in an MCP host becomes
    /// that Guild agent, its tools held to the agent's authority and budget. Stdio by
    /// default (only JSON-RPC on stdout, logs on stderr); --http for streamable HTTP.
    Mcp(McpArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum ScaleCommand {
    /// Set (or replace) an owner's policy for a role. Members are spawned under the owner,
    /// carved from its budget and held to its authority, caps and the mode's limit; a
    /// rule that holds a scale-up short raises one question to the owner's orchestrator.
    Set {
        /// The role of the members, and of the missions counted as load.
        #[arg(value_parser = parse::valid(parse::role))]
        role: String,
        /// The owner (by default: you, acting `--as` an orchestrator).
        #[arg(long, value_parser = parse::valid(parse::agent))]
        owner: Option<String>,
        /// Only READY missions of this phase count.
        #[arg(long, value_parser = parse::valid(parse::phase))]
        phase: Option<String>,
        /// Members kept however low the load.
        #[arg(long, default_value_t = 0)]
        min: u32,
        /// Members never exceeded.
        #[arg(long)]
        max: u32,
        /// READY missions per member above which it scales up.
        #[arg(long, default_value_t = 1)]
        ready_per_agent: u32,
        /// The band below the scale-up threshold in which nothing changes, in [0, 1).
        #[arg(long, default_value_t = 0.5)]
        hysteresis: f64,
        /// The least time between two changes (100ms or more).
        #[arg(long, default_value = "5s", value_parser = guild_service::parse_duration)]
        cooldown: std::time::Duration,
        /// Tokens each new member is carved from the owner.
        #[arg(long)]
        budget: u64,
        /// How long a member holds no task before it may be scaled down (100ms or more).
        #[arg(long, default_value = "30s", value_parser = guild_service::parse_duration)]
        idle: std::time::Duration,
        /// Members are named PREFIX-N (by default OWNER-ROLE).
        #[arg(long)]
        prefix: Option<String>,
    },
    /// Drop an owner's policy for a role (its members stay until terminated).
    Rm {
        /// The role.
        #[arg(value_parser = parse::valid(parse::role))]
        role: String,
        /// The owner (by default: you).
        #[arg(long, value_parser = parse::valid(parse::agent))]
        owner: Option<String>,
    },
    /// The policies in force, with their members.
    Ls {
        /// Only this owner's.
        #[arg(long, value_parser = parse::valid(parse::agent))]
        owner: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum AdminCommand {
    /// Make Guild's keys and credentials in a folder (once: a folder that has them is left
    /// alone). What `guild dev` does on its first start, for a deployment: the compose
    /// file's `keys` step runs it. Lays out {out}/keys (the services' and the custodian's
    /// secrets, nats-auth.conf for nats-server) and {out}/creds (operator, observer).
    Init {
        /// The folder to make them in.
        #[arg(long)]
        out: PathBuf,
        /// Where nats-server keeps account JWTs (revocations), as it sees the path: written
        /// into nats-auth.conf.
        #[arg(long)]
        resolver_dir: PathBuf,
        /// Guild's body limit (GUILD_MAX_PAYLOAD), which agent credentials are held to.
        #[arg(long, env = "GUILD_MAX_PAYLOAD", default_value_t = guild_wire::payload::DEFAULT_MAX_PAYLOAD)]
        max_payload: usize,
    },
    /// Accept a service's lost state: it found journal entries or audit records missing
    /// (a purged stream, say), refuses writes with state_lost and raised an ALERT. This
    /// accepts that what is missing is gone; writes resume, and the acceptance is audited.
    /// Operator only. Look at what `guild services` reports as lost first.
    Recover {
        /// The service (spawner, bus, mission), or all three.
        #[arg(long, value_parser = ["spawner", "bus", "mission", "all"])]
        service: String,
        /// Required: you accept that what is missing is gone for good.
        #[arg(long)]
        accept_loss: bool,
    },
}

/// The spawner's mode `guild dev` and the demo run in unless told: the seed's aggressive
/// mode (10 agents), so the demo's nine agents fit (safe mode's six do not).
pub(crate) const DEV_MODE: &str = "aggressive";

#[derive(Args, Debug)]
pub(crate) struct DevArgs {
    /// Where nats-server keeps its data (default {home}/data); running again keeps it.
    #[arg(long, env = "GUILD_DATA")]
    pub(crate) data: Option<PathBuf>,
    /// No authentication: any client connects and may act as anyone. Binds loopback only
    /// and warns on every start; for a throwaway local try-out, never anything shared.
    #[arg(long)]
    pub(crate) insecure: bool,
    /// The NATS client port.
    #[arg(long, default_value_t = 4222)]
    pub(crate) port: u16,
    /// The spawner's concurrent execution limits: safe (6 agents), aggressive (10) or
    /// extreme (20). Aggressive by default so `guild demo`'s nine agents fit.
    #[arg(long, env = "GUILD_MODE", default_value = DEV_MODE, value_parser = parse::valid(parse::mode))]
    pub(crate) mode: String,
}

#[derive(Args, Debug)]
pub(crate) struct McpArgs {
    /// Serve streamable HTTP instead of stdio, at ADDR (127.0.0.1:8765 when `--http` is
    /// given alone; beyond loopback, add --tls-cert); every request needs the bearer
    /// token, and a foreign Origin is refused.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8765")]
    pub(crate) http: Option<std::net::SocketAddr>,
    /// With --http: a file holding the bearer token (else GUILD_MCP_TOKEN).
    #[arg(long, value_name = "FILE")]
    pub(crate) token_file: Option<PathBuf>,
    /// With --http: an Origin allowed besides this server's own loopback ones
    /// (`scheme://host:port`); repeatable.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub(crate) allow_origin: Vec<String>,
    /// With --http: serve HTTPS with this certificate chain (PEM, the server's first);
    /// needs --tls-key. Advised whenever the host connects from another machine.
    #[arg(
        long,
        env = "GUILD_MCP_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub(crate) tls_cert: Option<PathBuf>,
    /// With --http: the private key of --tls-cert (PEM).
    #[arg(
        long,
        env = "GUILD_MCP_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub(crate) tls_key: Option<PathBuf>,
    /// Let the host's user answer, as the operator, this agent's questions that reach the
    /// operator (asked of it or escalated to it), by MCP elicitation: the operator's
    /// credentials ({home}/creds/operator.creds after `guild dev`). Only this agent's
    /// questions are asked; without it nothing is elicited.
    #[arg(long, env = "GUILD_MCP_OPERATOR_CREDS", value_name = "FILE")]
    pub(crate) operator_creds: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct DemoArgs {
    /// Where the embedded stack keeps its data when no Guild runs at NATS_URL (a fresh
    /// temporary folder by default).
    #[arg(long)]
    pub(crate) data: Option<PathBuf>,
    /// Also write the decision log as Markdown here (the seed's decisions.md).
    #[arg(long)]
    pub(crate) decisions_md: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct SpawnArgs {
    /// The new agent's id (letters, digits, `-` and `_`).
    #[arg(value_parser = parse::valid(parse::agent))]
    pub(crate) id: String,
    /// orchestrator, business, architect, developer, qa, devops, security, support, or a
    /// specialty for a specialist.
    #[arg(long, value_parser = parse::valid(parse::role))]
    pub(crate) role: String,
    /// Tokens the agent may use.
    #[arg(long)]
    pub(crate) budget: u64,
    /// The parent agent (defaults to `--as`, when set).
    #[arg(long, value_parser = parse::valid(parse::agent))]
    pub(crate) parent: Option<String>,
    /// A capability (repeatable).
    #[arg(long = "capability")]
    pub(crate) capabilities: Vec<String>,
    /// Cap how many generations of sub-agents may grow below the new agent (0: none).
    /// With any cap, the agent gets its role's default authority within its parent's,
    /// plus the caps; a cap its parent holds is inherited one generation narrower anyway.
    #[arg(long, value_name = "N")]
    pub(crate) max_depth: Option<u32>,
    /// Cap how many agents may ever be spawned below it (every generation, terminated
    /// ones included).
    #[arg(long, value_name = "N")]
    pub(crate) max_descendants: Option<u32>,
    /// Cap how many agents may be spawned below it within any minute.
    #[arg(long, value_name = "N")]
    pub(crate) max_spawns_per_minute: Option<u32>,
}

#[derive(Args, Debug)]
pub(crate) struct AgentsArgs {
    /// Show the lineage as a tree (live agents; with --all the terminated ones too).
    #[arg(long)]
    pub(crate) tree: bool,
    /// Only this role.
    #[arg(long, value_parser = parse::valid(parse::role))]
    pub(crate) role: Option<String>,
    /// Only this status (pending, active, working, blocked, idle, completed, failed).
    #[arg(long, value_parser = parse::valid(parse::agent_status))]
    pub(crate) status: Option<String>,
    /// Include terminated agents.
    #[arg(long)]
    pub(crate) all: bool,
    /// Only free agents (the seed's find_available_agents).
    #[arg(long)]
    pub(crate) available: bool,
}

#[derive(Subcommand, Debug)]
pub(crate) enum AgentCommand {
    /// Show one agent.
    Show {
        /// The agent.
        id: String,
    },
    /// Pause an agent (BLOCKED with a reason; no new work).
    Pause {
        /// The agent.
        #[arg(value_parser = parse::valid(parse::agent))]
        id: String,
        /// Why (shown with its status, and in the event).
        #[arg(long, default_value = "paused by the operator")]
        reason: String,
        /// Its whole subtree too.
        #[arg(long)]
        subtree: bool,
    },
    /// Resume a paused agent.
    Resume {
        /// The agent.
        #[arg(value_parser = parse::valid(parse::agent))]
        id: String,
        /// Its whole subtree too.
        #[arg(long)]
        subtree: bool,
    },
    /// Terminate an agent (unused budget returns to its parent).
    Terminate {
        /// The agent.
        #[arg(value_parser = parse::valid(parse::agent))]
        id: String,
        /// Its whole subtree too, children first.
        #[arg(long)]
        subtree: bool,
    },
    /// May this agent do this action (in this phase)?
    Authorize {
        /// The agent.
        #[arg(value_parser = parse::valid(parse::agent))]
        id: String,
        /// The action, as the authority matrix names it (e.g. deploy_production,
        /// spawn_agents).
        action: String,
        /// The phase the action is for: -1 to 7, or its name.
        #[arg(long, allow_hyphen_values = true, value_parser = parse::valid(parse::phase))]
        phase: Option<String>,
    },
    /// Move tokens between two agents of your subtree.
    Reallocate {
        /// The agent giving tokens (from its unused budget).
        #[arg(value_parser = parse::valid(parse::agent))]
        from: String,
        /// The agent receiving them.
        #[arg(value_parser = parse::valid(parse::agent))]
        to: String,
        /// Tokens to move.
        amount: u64,
    },
    /// New credentials for an agent (you are its parent, or the operator): saved to
    /// {home}/creds/{id}.creds; the old ones stop working and their connections close.
    Credentials {
        /// The agent.
        #[arg(value_parser = parse::valid(parse::agent))]
        id: String,
    },
    /// Heartbeat as the agent (with its credentials in {home}/creds): a PENDING agent
    /// becomes ACTIVE and may take work.
    Heartbeat {
        /// The agent.
        #[arg(value_parser = parse::valid(parse::agent))]
        id: String,
        /// Keep heartbeating, every third of the heartbeat window, until Ctrl-C (so an
        /// agent driven from the shell stays alive).
        #[arg(long)]
        keep: bool,
    },
}

#[derive(Args, Debug)]
pub(crate) struct SendArgs {
    /// The receiving agent.
    #[arg(value_parser = parse::valid(parse::agent))]
    pub(crate) to: String,
    /// What it is about.
    pub(crate) subject: String,
    /// The payload, as JSON.
    #[arg(long, default_value = "{}", value_parser = parse::valid(parse::json_value))]
    pub(crate) payload: String,
    /// critical, high, normal or low.
    #[arg(long, value_parser = parse::valid(parse::priority))]
    pub(crate) priority: Option<String>,
    /// The mission it concerns.
    #[arg(long, value_parser = parse::valid(parse::mission))]
    pub(crate) task: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct AskArgs {
    /// The question.
    pub(crate) subject: String,
    /// Ask this agent (default: your orchestrator, or the operator).
    #[arg(long, value_parser = parse::valid(parse::principal))]
    pub(crate) to: Option<String>,
    /// Context, as JSON.
    #[arg(long, default_value = "{}", value_parser = parse::valid(parse::json_value))]
    pub(crate) payload: String,
    /// A decision is required (it escalates if nobody decides in time).
    #[arg(long)]
    pub(crate) decision: bool,
    /// With --decision: how long each decider has before it escalates (1s to 7 days;
    /// default bus-svc's --decision-deadline, 2m).
    #[arg(long, requires = "decision", value_parser = guild_service::parse_duration)]
    pub(crate) deadline: Option<std::time::Duration>,
    /// The mission it concerns.
    #[arg(long, value_parser = parse::valid(parse::mission))]
    pub(crate) task: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct AlertArgs {
    /// What happened.
    pub(crate) subject: String,
    /// Details, as JSON.
    #[arg(long, default_value = "{}", value_parser = parse::valid(parse::json_value))]
    pub(crate) payload: String,
    /// CRITICAL instead of HIGH.
    #[arg(long)]
    pub(crate) critical: bool,
}

#[derive(Args, Debug)]
pub(crate) struct HandoffArgs {
    /// Who takes the mission over.
    #[arg(value_parser = parse::valid(parse::agent))]
    pub(crate) to: String,
    /// The mission.
    #[arg(value_parser = parse::valid(parse::mission))]
    pub(crate) task: String,
    /// Context for the receiver, as JSON.
    #[arg(long, default_value = "{}", value_parser = parse::valid(parse::json_value))]
    pub(crate) context: String,
}

#[derive(Args, Debug)]
pub(crate) struct ReplyArgs {
    /// The message answered.
    #[arg(value_parser = parse::valid(parse::message))]
    pub(crate) message_id: String,
    /// The answer, as JSON.
    #[arg(long, default_value = "{}", value_parser = parse::valid(parse::json_value))]
    pub(crate) payload: String,
}

#[derive(Args, Debug)]
pub(crate) struct DecideArgs {
    /// The question decided.
    #[arg(value_parser = parse::valid(parse::message))]
    pub(crate) question_id: String,
    /// The choice.
    pub(crate) choice: String,
    /// Why.
    #[arg(long)]
    pub(crate) rationale: Option<String>,
    /// Its impact, as JSON.
    #[arg(long, default_value = "{}", value_parser = parse::valid(parse::json_value))]
    pub(crate) impact: String,
}

#[derive(Args, Debug)]
pub(crate) struct InboxArgs {
    /// At most this many messages.
    #[arg(long, default_value_t = 20)]
    pub(crate) limit: usize,
    /// Wait up to this many seconds for a first message.
    #[arg(long, default_value_t = 0)]
    pub(crate) wait: u64,
    /// Acknowledge what is shown (it will not come again); otherwise it stays queued.
    #[arg(long)]
    pub(crate) ack: bool,
}

#[derive(Args, Debug)]
pub(crate) struct TailArgs {
    /// Only messages to this agent (`operator` for the operator).
    #[arg(long, value_parser = parse::valid(parse::principal))]
    pub(crate) agent: Option<String>,
    /// Only this message type (request, question, alert, handoff, decision, reply).
    #[arg(long = "type", value_parser = parse::valid(parse::message_type))]
    pub(crate) kind: Option<String>,
    /// Only this priority (critical, high, normal, low).
    #[arg(long, value_parser = parse::valid(parse::priority))]
    pub(crate) priority: Option<String>,
    /// Show service events (spawned, mission ready, ...) too.
    #[arg(long)]
    pub(crate) events: bool,
}

#[derive(Subcommand, Debug)]
pub(crate) enum QuestionCommand {
    /// The questions in the bus's working set, oldest first.
    List {
        /// Only questions that need a decision and have none yet.
        #[arg(long)]
        open: bool,
        /// Show at most this many, the newest (the service's default is 1000).
        #[arg(long)]
        limit: Option<u32>,
    },
    /// One question: what was asked, its decision, overrides and escalations.
    Show {
        /// The question's message id (from `guild ask`).
        #[arg(value_parser = parse::valid(parse::message))]
        id: String,
    },
}

#[derive(Args, Debug)]
pub(crate) struct AuditArgs {
    /// Only records of this kind (spawn, terminate, denial, decision, mission, ...);
    /// repeat for several.
    #[arg(long = "kind", value_parser = parse::valid(parse::audit_kind))]
    pub(crate) kinds: Vec<String>,
    /// Only records about this agent, mission or question.
    #[arg(long)]
    pub(crate) about: Option<String>,
    /// Show at most this many, the newest (the service's default is 1000).
    #[arg(long)]
    pub(crate) limit: Option<u32>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum MissionCommand {
    /// Create a mission (READY at once when it has no dependencies).
    Create {
        /// The mission id (letters, digits, `-`, `_`).
        #[arg(value_parser = parse::valid(parse::mission))]
        id: String,
        /// A name for people.
        #[arg(long)]
        name: String,
        /// The phase: a number from -1 to 7, or its name (research, planning, ...).
        #[arg(long, allow_hyphen_values = true, value_parser = parse::valid(parse::phase))]
        phase: String,
        /// Tokens set aside for it (0: no mission budget).
        #[arg(long, default_value_t = 0)]
        budget: u64,
        /// 1 (lowest) to 10 (highest); 5 when unset.
        #[arg(long)]
        priority: Option<u8>,
        /// The agent meant to run it.
        #[arg(long, value_parser = parse::valid(parse::agent))]
        agent: Option<String>,
        /// The role that runs it: `missions claim` hands it only to an agent of that role,
        /// and a scaling policy for the role counts it as load.
        #[arg(long, value_parser = parse::valid(parse::role))]
        role: Option<String>,
        /// Failed attempts retried before it fails for good (the service's default applies
        /// when unset).
        #[arg(long)]
        max_retries: Option<u32>,
        /// The lowest acceptable quality score, 0 to 1.
        #[arg(long)]
        quality_gate: Option<f64>,
        /// Input data, as JSON.
        #[arg(long, default_value = "{}", value_parser = parse::valid(parse::json_value))]
        input: String,
    },
    /// Take your own next READY mission of your role (`--as` an agent): the highest
    /// priority first, then the oldest. Prints nothing to do when none is left.
    Claim,
    /// MISSION blocks on DEPENDS_ON (a cycle is refused with its path).
    Depend {
        /// The mission that waits.
        #[arg(value_parser = parse::valid(parse::mission))]
        mission: String,
        /// The mission it waits on.
        #[arg(value_parser = parse::valid(parse::mission))]
        depends_on: String,
        /// A soft dependency does not hold the mission back when it fails.
        #[arg(long)]
        soft: bool,
    },
    /// Remove a dependency.
    Undepend {
        /// The mission that waits.
        #[arg(value_parser = parse::valid(parse::mission))]
        mission: String,
        /// The mission it no longer waits on.
        #[arg(value_parser = parse::valid(parse::mission))]
        depends_on: String,
    },
    /// Is the mission ready, and what holds it back?
    Ready {
        /// The mission.
        #[arg(value_parser = parse::valid(parse::mission))]
        mission: String,
    },
    /// Groups of missions that can run at the same time, computed over every open mission.
    Groups {
        /// List at most this many missions (the service's default is 1000).
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Start a READY mission on an agent.
    Assign {
        /// The READY mission.
        #[arg(value_parser = parse::valid(parse::mission))]
        mission: String,
        /// The agent to run it (default: the agent it was created for, `--agent` of
        /// `create`).
        #[arg(long, value_parser = parse::valid(parse::agent))]
        agent: Option<String>,
    },
    /// Complete an ACTIVE mission.
    Complete {
        /// The ACTIVE mission.
        #[arg(value_parser = parse::valid(parse::mission))]
        mission: String,
        /// What it produced, as JSON.
        #[arg(long, default_value = "{}", value_parser = parse::valid(parse::json_value))]
        output: String,
        /// Its quality score, 0 to 1 (checked against the mission's quality gate).
        #[arg(long)]
        quality: Option<f64>,
    },
    /// Fail an attempt (retried while attempts remain, unless --final).
    Fail {
        /// The ACTIVE mission.
        #[arg(value_parser = parse::valid(parse::mission))]
        mission: String,
        /// Why it failed.
        #[arg(long)]
        reason: String,
        /// Fail for good: no retry, whatever attempts remain.
        #[arg(long = "final")]
        no_retry: bool,
    },
    /// Cancel an open mission.
    Cancel {
        /// The mission.
        #[arg(value_parser = parse::valid(parse::mission))]
        mission: String,
        /// Why.
        #[arg(long, default_value = "cancelled by the operator")]
        reason: String,
    },
    /// List missions.
    List {
        /// Only this status (pending, ready, active, completed, failed, cancelled,
        /// archived).
        #[arg(long, value_parser = parse::valid(parse::mission_status))]
        status: Option<String>,
        /// Only this phase: -1 to 7, or its name.
        #[arg(long, allow_hyphen_values = true, value_parser = parse::valid(parse::phase))]
        phase: Option<String>,
        /// Only missions of this agent.
        #[arg(long, value_parser = parse::valid(parse::agent))]
        agent: Option<String>,
        /// Include archived missions.
        #[arg(long)]
        archived: bool,
    },
    /// Show one mission.
    Show {
        /// The mission.
        #[arg(value_parser = parse::valid(parse::mission))]
        mission: String,
    },
    /// The dependency graph: missions in dependency order, each with what it waits on.
    Graph,
    /// Outputs of a mission or a whole phase.
    Outputs {
        /// The outputs of this mission.
        #[arg(long, value_parser = parse::valid(parse::mission))]
        mission: Option<String>,
        /// The outputs of every mission of this phase: -1 to 7, or its name.
        #[arg(long, allow_hyphen_values = true, value_parser = parse::valid(parse::phase))]
        phase: Option<String>,
    },
    /// Is a phase complete?
    Phase {
        /// The phase: -1 to 7, or its name.
        #[arg(allow_hyphen_values = true, value_parser = parse::valid(parse::phase))]
        phase: String,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum DecisionCommand {
    /// Decision history.
    Log {
        /// Decisions asked or made by this agent (`operator` for the operator).
        #[arg(long, value_parser = parse::valid(parse::principal))]
        agent: Option<String>,
        /// Decisions about this mission only.
        #[arg(long, value_parser = parse::valid(parse::mission))]
        mission: Option<String>,
        /// Show at most this many decisions, the newest (the service's default is 1000).
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Check the audit log: its hash chain, and every record's signature by the service
    /// allowed to append its kind. By bus-svc, or with --direct from the stream itself (the
    /// operator's or the observer's credentials), or with --file from an export, offline.
    Verify {
        /// Fail unless the chain ends at this head hash (one you kept): catches a
        /// truncated or rewritten chain.
        #[arg(long)]
        expect_head: Option<String>,
        /// Read the stream directly instead of asking bus-svc.
        #[arg(long)]
        direct: bool,
        /// Verify an export (`decisions export --jsonl`) instead; no connection needed.
        #[arg(long, conflicts_with = "direct")]
        file: Option<PathBuf>,
        /// The services' public keys (`audit-keys.json` in the keys folder, or `decisions
        /// keys`); with --file, without it the signatures are not checked.
        #[arg(long)]
        keys: Option<PathBuf>,
    },
    /// The services' audit keys (the key history), as JSON: what `verify --keys` takes.
    Keys,
    /// The decision log as Markdown, or with --jsonl the whole audit log, one record per
    /// line, exactly as stored (for `verify --file`).
    Export {
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Every record of the audit log as JSON lines, read from the stream.
        #[arg(long)]
        jsonl: bool,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every flag and argument of every command says what it is for in `--help`.
    #[test]
    fn every_option_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "guild", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }
}
