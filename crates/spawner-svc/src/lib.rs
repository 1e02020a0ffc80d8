//! spawner-svc: the seed's Agent Spawner as the `guild-spawner` NATS micro service.
//!
//! Every rule lives in [`guild_domain::agent`]; this crate wires them to NATS:
//! the operations of [`guild_wire::api::spawner`] as endpoints, the registry kept in the
//! spawner's journal (one entry per committed change: agents, the pool, mission ledgers),
//! events on `guild.evt.spawner.*`, governance facts in the audit log. Several instances
//! can run at once; each keeps the whole registry in memory, folded from the journal.
//!
//! Background work: failing agents that miss heartbeats, sampling parallelization
//! efficiency, and publishing outbox entries a crashed writer left behind.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use clap::Parser;
//! let config = spawner_svc::Options::parse_from(["spawner-svc", "--mode", "aggressive"]).into_config()?;
//! let client = async_nats::connect("nats://127.0.0.1:4222").await?;
//! spawner_svc::run(client, config, async { tokio::signal::ctrl_c().await.ok(); }).await?;
//! # Ok(()) }
//! ```

mod autoscaler;
mod connections;
mod custodian;
mod handler;
mod state;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use guild_domain::agent::{Limits, Mode, Record, Registry};
use guild_service::{CommonOptions, Faults, Shape, State, parse_duration};
use guild_store::Spec;
use guild_wire::api::spawner as api;
use guild_wire::subject::Service;
use tokio::sync::watch;

pub use custodian::CustodianSetup;
pub use handler::Spawner;

/// The journal holding the registry (`GUILD_JOURNAL_SPAWNER`, subject `guild.journal.spawner`).
pub const JOURNAL: &str = guild_wire::store::journal_of(Service::Spawner);

/// Command-line options (every one also an environment variable).
#[derive(clap::Parser, Clone, Debug)]
#[command(
    name = "spawner-svc",
    version,
    about = "Guild's agent spawner: lifecycle, authority matrix and token budgets over NATS.",
    after_help = guild_telemetry::ENV_HELP
)]
pub struct Options {
    /// Connection, durability, limits and logging.
    #[command(flatten)]
    pub common: CommonOptions,

    /// The seed's concurrent execution limits: safe (6 agents, 200K tokens), aggressive
    /// (10, 300K) or extreme (20, 500K).
    #[arg(long, env = "GUILD_MODE", default_value = "safe")]
    pub mode: String,

    /// Live agents allowed at once (overrides the mode).
    #[arg(long, env = "GUILD_MAX_AGENTS")]
    pub max_agents: Option<u32>,

    /// The global token pool root agents are carved from (overrides the mode).
    #[arg(long, env = "GUILD_TOKEN_POOL")]
    pub token_pool: Option<u64>,

    /// An agent not heard from for this long becomes FAILED (500ms, 30s, 2m).
    #[arg(long, env = "GUILD_HEARTBEAT_WINDOW", default_value = "30s")]
    pub heartbeat_window: String,

    /// How long a new agent has for its first heartbeat before it becomes FAILED: its
    /// process starts once the spawn is answered, and a process (a Python interpreter,
    /// a model client) takes a while to start. Never shorter than --heartbeat-window.
    #[arg(long, env = "GUILD_FIRST_HEARTBEAT_WITHIN", default_value = "60s")]
    pub first_heartbeat_within: String,

    /// Price of 1,000 tokens in US dollars, for cost figures.
    #[arg(long, env = "GUILD_PRICE_PER_1K_TOKENS", default_value_t = 0.003)]
    pub price_per_1k_tokens: f64,

    /// How often parallelization efficiency is sampled.
    #[arg(long, env = "GUILD_EFFICIENCY_SAMPLE", default_value = "5s")]
    pub efficiency_sample: String,

    /// How long an outbox entry is left to its writer before any instance publishes it.
    #[arg(long, env = "GUILD_OUTBOX_GRACE", default_value = "5s")]
    pub outbox_grace: String,

    /// How often scaling policies are applied to the READY missions (a policy's own
    /// cool-down still spaces its changes).
    #[arg(long, env = "GUILD_AUTOSCALE_EVERY", default_value = "1s")]
    pub autoscale_every: String,

    /// The custodian's bundle (custodian.json, made with the keys): spawner-svc mints each
    /// agent's credentials with it and revokes them when the agent ends.
    #[arg(long, env = "GUILD_CUSTODIAN")]
    pub custodian: Option<std::path::PathBuf>,

    /// The custodian's system-account credentials (system.creds), for pushing revocations.
    #[arg(long, env = "GUILD_SYSTEM_CREDS")]
    pub system_creds: Option<std::path::PathBuf>,

    /// Connections one agent's credentials may hold at once; the newest past it is closed.
    #[arg(long, env = "GUILD_AGENT_MAX_CONNECTIONS", default_value_t = guild_auth::claims::DEFAULT_AGENT_CONNECTIONS)]
    pub agent_max_connections: u32,
}

/// Validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Shared options.
    pub common: CommonOptions,
    /// Global limits.
    pub limits: Limits,
    /// The heartbeat window.
    pub heartbeat_window: Duration,
    /// How long a new agent has for its first heartbeat (at least the window).
    pub first_heartbeat_within: Duration,
    /// Cost figures' price.
    pub price_per_1k_tokens: f64,
    /// Efficiency sampling interval.
    pub efficiency_sample: Duration,
    /// Outbox grace.
    pub outbox_grace: Duration,
    /// How often scaling policies meet the load.
    pub autoscale_every: Duration,
    /// The custodian: `None` only in insecure mode (no credentials are minted).
    pub custodian: Option<CustodianSetup>,
    /// Connections one agent may hold at once.
    pub agent_max_connections: u32,
}

impl Options {
    /// Validates the options.
    pub fn into_config(self) -> Result<Config, String> {
        self.common.validate()?;
        let mode = Mode::parse(&self.mode).map_err(|e| format!("--mode: {e}"))?;
        let limits = Limits::resolve(mode, self.max_agents, self.token_pool, None)
            .map_err(|e| e.to_string())?;
        let heartbeat_window = parse_duration(&self.heartbeat_window)
            .map_err(|e| format!("--heartbeat-window: {e}"))?;
        if heartbeat_window < Duration::from_millis(100) {
            return Err("--heartbeat-window must be at least 100ms".into());
        }
        if !(self.price_per_1k_tokens.is_finite() && self.price_per_1k_tokens >= 0.0) {
            return Err("--price-per-1k-tokens must be a non-negative number".into());
        }
        let custodian = match (&self.custodian, &self.system_creds) {
            (None, None) if self.common.insecure => None,
            _ if self.common.insecure => {
                return Err("--insecure mints no credentials: drop --custodian and \
                            --system-creds, or --insecure"
                    .into());
            }
            (Some(keys), Some(system)) => Some(CustodianSetup {
                keys: guild_auth::CustodianKeys::load(keys)
                    .map_err(|e| format!("--custodian: {e}"))?,
                system: self
                    .common
                    .nats_options()?
                    .with_auth(guild_sdk::Auth::CredsFile(system.clone())),
            }),
            _ => {
                return Err(
                    "--custodian and --system-creds (GUILD_CUSTODIAN, GUILD_SYSTEM_CREDS) \
                            are needed: spawner-svc mints each agent's credentials with them \
                            (`guild dev` makes them under .guild/keys; deploy/README.md says how \
                            elsewhere); --insecure runs without"
                        .into(),
                );
            }
        };
        Ok(Config {
            common: self.common,
            limits,
            heartbeat_window,
            first_heartbeat_within: parse_duration(&self.first_heartbeat_within)
                .map_err(|e| format!("--first-heartbeat-within: {e}"))?,
            price_per_1k_tokens: self.price_per_1k_tokens,
            efficiency_sample: parse_duration(&self.efficiency_sample)
                .map_err(|e| format!("--efficiency-sample: {e}"))?,
            outbox_grace: parse_duration(&self.outbox_grace)
                .map_err(|e| format!("--outbox-grace: {e}"))?,
            autoscale_every: parse_duration(&self.autoscale_every)
                .map_err(|e| format!("--autoscale-every: {e}"))
                .and_then(|d| {
                    (d >= Duration::from_millis(10))
                        .then_some(d)
                        .ok_or_else(|| "--autoscale-every must be at least 10ms".to_owned())
                })?,
            custodian,
            agent_max_connections: self.agent_max_connections,
        })
    }
}

impl Config {
    /// Defaults, as `spawner-svc --insecure` with no other options would run; set
    /// [`custodian`](Self::custodian) to mint credentials.
    pub fn new(limits: Limits) -> Self {
        Self {
            common: CommonOptions::default(),
            limits,
            heartbeat_window: Duration::from_secs(30),
            first_heartbeat_within: Duration::from_secs(60),
            price_per_1k_tokens: 0.003,
            efficiency_sample: Duration::from_secs(5),
            outbox_grace: Duration::from_secs(5),
            autoscale_every: Duration::from_secs(1),
            custodian: None,
            agent_max_connections: guild_auth::claims::DEFAULT_AGENT_CONNECTIONS,
        }
    }
}

/// Why the service stopped.
pub use guild_service::Error;

/// Runs the service on `client` until `shutdown` resolves, then stops taking requests,
/// finishes the ones in flight, and returns.
pub async fn run(
    client: async_nats::Client,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    guild_service::run::<Spawner>(client, config, shutdown).await
}

/// Prepares storage and the registry view; the handler [`run`] serves.
pub async fn start(client: async_nats::Client, config: Config) -> Result<Spawner, Error> {
    Spawner::start(client, config, Faults::default()).await
}

impl Shape for Spawner {
    type Config = Config;
    type View = Registry;
    type Record = Record;
    type Router = api::Routes<Spawner>;
    const DESCRIPTION: &'static str =
        "Guild agent spawner: lifecycle, authority matrix, token budgets";

    fn common(config: &Config) -> &CommonOptions {
        &config.common
    }

    fn outbox_grace(config: &Config) -> Duration {
        config.outbox_grace
    }

    async fn start(
        client: async_nats::Client,
        config: Config,
        faults: Faults,
    ) -> Result<Self, Error> {
        let js = jetstream::new(client.clone());
        let limits = config.limits;
        let spec = Spec::new(
            move || Registry::new(limits, guild_service::now()),
            Registry::apply,
            Registry::records,
        );
        let state =
            guild_service::open_state(&js, &config.common, Service::Spawner, JOURNAL, spec, faults)
                .await?;
        if state.lost().is_empty() {
            state::init_pool(&state, config.limits)
                .await
                .map_err(|e| Error::Config(e.message))?;
        } else {
            // Never refilled on its own: the operator looks first (`recover`).
            tracing::error!(lost = ?state.lost(), "state lost: the pool is left as the journal has it");
        }
        state::gauges(&state);
        let keeper = match &config.custodian {
            Some(setup) => {
                let limits = guild_auth::claims::AgentLimits {
                    connections: config.agent_max_connections,
                    ..guild_auth::claims::AgentLimits::for_payload(config.common.max_payload)
                };
                let keeper = custodian::Keeper::start(setup, limits)
                    .await
                    .map_err(|e| Error::Start(format!("custodian: {e}")))?;
                // Before serving: the account JWT is this version's, and carries every
                // revocation in the journal (a server restored from a backup, say).
                let wanted = state.read_local(Registry::revocations);
                keeper
                    .reconcile(&wanted)
                    .await
                    .map_err(|e| Error::Start(format!("custodian: {}", e.message)))?;
                Some(keeper)
            }
            None => {
                tracing::warn!(
                    "spawner-svc runs insecure: no credentials are minted, and any client can act \
                     as anyone"
                );
                None
            }
        };
        Ok(Spawner::new(client, state, config, keeper))
    }

    fn state(&self) -> &State<Registry, Record> {
        Spawner::state(self)
    }

    fn storage(&self) -> Arc<dyn guild_service::lost::Storage> {
        Arc::new(state::Storage {
            state: Spawner::state(self).clone(),
            limits: self.config().limits,
        })
    }

    fn background(&self, stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        state::background(self.clone(), stop)
    }
}
