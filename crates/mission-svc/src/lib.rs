//! mission-svc: the seed's Mission Manager as the `guild-mission` NATS micro service.
//!
//! Every rule lives in [`guild_domain::mission`]; this crate wires them to NATS: the
//! operations of [`guild_wire::api::mission`] as endpoints, the board (missions and their
//! dependency graph) kept in the mission journal, events on `guild.evt.mission.*`, mission
//! outcomes in the audit log. It follows the spawner's journal read-only to authorize
//! callers and find agents, and asks spawner-svc to allocate and release agents.
//!
//! Background work: retrying missions whose agent was lost (from the spawner's
//! `task_released` events, through a durable consumer), reconciling allocations a crash
//! left half-made, archiving old final missions, and publishing what dead writers left.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use clap::Parser;
//! let config = mission_svc::Options::parse_from(["mission-svc", "--mode", "safe"]).into_config()?;
//! let client = async_nats::connect("nats://127.0.0.1:4222").await?;
//! mission_svc::run(client, config, async { tokio::signal::ctrl_c().await.ok(); }).await?;
//! # Ok(()) }
//! ```

mod handler;
mod reactor;

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream;
use guild_domain::PhaseNames;
use guild_domain::agent::{Limits, Mode};
use guild_domain::mission::{Board, BoardConfig, Mission};
use guild_service::{CommonOptions, Faults, Shape, State, parse_duration};
use guild_store::Spec;
use guild_wire::api::mission as api;
use guild_wire::subject::Service;
use tokio::sync::watch;

pub use handler::Missions;

/// The journal holding the board (`GUILD_JOURNAL_MISSION`, subject `guild.journal.mission`).
pub const JOURNAL: &str = guild_wire::store::journal_of(Service::Mission);

/// Command-line options (every one also an environment variable).
#[derive(clap::Parser, Clone, Debug)]
#[command(
    name = "mission-svc",
    version,
    about = "Guild's mission manager: missions, dependencies, parallel groups, retries and quality gates over NATS.",
    after_help = guild_telemetry::ENV_HELP
)]
pub struct Options {
    /// Connection, durability, limits and logging.
    #[command(flatten)]
    pub common: CommonOptions,

    /// The seed's concurrent execution limits: safe (3 parallel groups), aggressive (5) or
    /// extreme (unlimited).
    #[arg(long, env = "GUILD_MODE", default_value = "safe")]
    pub mode: String,

    /// Mission groups that may have ACTIVE missions at once (overrides the mode; 0 is
    /// unlimited).
    #[arg(long, env = "GUILD_MAX_PARALLEL_GROUPS")]
    pub max_parallel_groups: Option<u32>,

    /// Final missions older than this leave the working set (stay retrievable); 0 keeps
    /// them (500ms, 30s, 2m, 24h).
    #[arg(long, env = "GUILD_ARCHIVE_AFTER", default_value = "24h")]
    pub archive_after: String,

    /// Phase names to show instead of the defaults: "5=build,6=verify".
    #[arg(long, env = "GUILD_PHASE_NAMES", default_value = "")]
    pub phase_names: String,

    /// How long an unpublished journal entry is left to its writer before any instance
    /// publishes it.
    #[arg(long, env = "GUILD_OUTBOX_GRACE", default_value = "5s")]
    pub outbox_grace: String,
}

/// Validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Shared options.
    pub common: CommonOptions,
    /// The mission rules' settings.
    pub board: BoardConfig,
    /// Archive final missions after this long; `None` never.
    pub archive_after: Option<Duration>,
    /// Phase names.
    pub phase_names: PhaseNames,
    /// Outbox grace.
    pub outbox_grace: Duration,
    /// How often allocations are reconciled with the spawner.
    pub reconcile_every: Duration,
}

impl Options {
    /// Validates the options.
    pub fn into_config(self) -> Result<Config, String> {
        self.common.validate()?;
        let mode = Mode::parse(&self.mode).map_err(|e| format!("--mode: {e}"))?;
        let limits = Limits::resolve(mode, None, None, self.max_parallel_groups)
            .map_err(|e| e.to_string())?;
        let archive_after =
            parse_duration(&self.archive_after).map_err(|e| format!("--archive-after: {e}"))?;
        Ok(Config {
            common: self.common,
            board: BoardConfig {
                max_parallel_groups: limits.max_parallel_groups,
            },
            archive_after: (!archive_after.is_zero()).then_some(archive_after),
            phase_names: PhaseNames::with_overrides(&self.phase_names)
                .map_err(|e| format!("--phase-names: {e}"))?,
            outbox_grace: parse_duration(&self.outbox_grace)
                .map_err(|e| format!("--outbox-grace: {e}"))?,
            reconcile_every: Duration::from_secs(5),
        })
    }
}

impl Config {
    /// Defaults, as `mission-svc` with no options and no environment would run.
    pub fn new(board: BoardConfig) -> Self {
        Self {
            common: CommonOptions::default(),
            board,
            archive_after: Some(Duration::from_secs(24 * 3600)),
            phase_names: PhaseNames::default(),
            outbox_grace: Duration::from_secs(5),
            reconcile_every: Duration::from_secs(5),
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
    guild_service::run::<Missions>(client, config, shutdown).await
}

/// Prepares storage, the board and the followed registry; the handler [`run`] serves.
pub async fn start(client: async_nats::Client, config: Config) -> Result<Missions, Error> {
    Missions::start(client, config, Faults::default()).await
}

impl Shape for Missions {
    type Config = Config;
    type View = Board;
    type Record = Mission;
    type Router = api::Routes<Missions>;
    const DESCRIPTION: &'static str =
        "Guild mission manager: missions, dependencies, parallel groups, retries, quality gates";

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
        let board = config.board;
        let spec = Spec::new(move || Board::new(board), Board::apply, Board::records);
        let state =
            guild_service::open_state(&js, &config.common, Service::Mission, JOURNAL, spec, faults)
                .await?;
        let registry = guild_service::follow_registry(&js, config.common.durability()).await?;
        let state = state.reading(registry.clone());
        Ok(Missions::new(client, js, state, registry, config))
    }

    fn state(&self) -> &State<Board, Mission> {
        Missions::state(self)
    }

    fn background(&self, stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        reactor::background(self.clone(), stop)
    }
}
