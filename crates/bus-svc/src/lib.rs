//! bus-svc: the seed's Consultation Bus as the `guild-bus` NATS micro service.
//!
//! Every rule lives in [`guild_domain::message`]: routing, delivery order, decisions,
//! escalation. This crate wires them to NATS: the operations of [`guild_wire::api::bus`] as
//! endpoints, the post office (inboxes, deliveries, questions) kept in the bus journal,
//! every message also written to the inbox log `guild.inbox.<owner>.<priority>`, decisions
//! and escalations in the audit log. It follows the spawner's journal read-only to route
//! and authorize, and asks mission-svc to move a task on HANDOFF.
//!
//! Consumers long-poll: a `consume` that finds nothing waits (its wait is recorded, so any
//! instance that accepts a message for that inbox hands it over in the same append).
//!
//! Background work: escalating overdue questions, turning mission failures into ALERTs
//! and claim conflicts into escalations (through durable consumers), archiving settled
//! messages, ending waits whose instance died, publishing what dead writers left.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use clap::Parser;
//! let config = bus_svc::Options::parse_from(["bus-svc", "--ack-wait", "30s"]).into_config()?;
//! let client = async_nats::connect("nats://127.0.0.1:4222").await?;
//! bus_svc::run(client, config, async { tokio::signal::ctrl_c().await.ok(); }).await?;
//! # Ok(()) }
//! ```

mod consume;
mod handler;
mod reactor;
mod send;

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream;
use guild_domain::message::{OfficeConfig, OfficeRecord, PostOffice, StarvationPolicy};
use guild_service::{CommonOptions, Faults, Shape, State, parse_duration};
use guild_store::{Spec, provision};
use guild_wire::api::bus as api;
use guild_wire::subject::Service;
use tokio::sync::watch;

pub use handler::Bus;

/// The journal holding the post office (`GUILD_JOURNAL_BUS`, subject `guild.journal.bus`).
pub const JOURNAL: &str = guild_wire::store::journal_of(Service::Bus);

/// The longest a `consume` may wait.
pub const MAX_CONSUME_WAIT: Duration = Duration::from_secs(30);

/// Command-line options (every one also an environment variable).
#[derive(clap::Parser, Clone, Debug)]
#[command(
    name = "bus-svc",
    version,
    about = "Guild's consultation bus: priority delivery into durable inboxes, questions, decisions and the audit log over NATS.",
    after_help = guild_telemetry::ENV_HELP
)]
pub struct Options {
    /// Connection, durability, limits and logging.
    #[command(flatten)]
    pub common: CommonOptions,

    /// A delivery not acknowledged within this long is delivered again (500ms, 30s, 2m).
    #[arg(long, env = "GUILD_ACK_WAIT", default_value = "30s")]
    pub ack_wait: String,

    /// An undecided QUESTION that needs a decision escalates after this long (the seed's
    /// decision-time target is under 2 minutes).
    #[arg(long, env = "GUILD_DECISION_DEADLINE", default_value = "2m")]
    pub decision_deadline: String,

    /// Acknowledged messages and settled questions older than this leave the working set
    /// (they stay in the inbox log and the audit log); 0 keeps them.
    #[arg(long, env = "GUILD_RETENTION", default_value = "24h")]
    pub retention: String,

    /// How long the inbox log (GUILD_INBOX) keeps every message.
    #[arg(long, env = "GUILD_INBOX_LOG_AGE", default_value = "720h")]
    pub inbox_log_age: String,

    /// Anti-starvation: a HIGH, NORMAL or LOW message waiting longer than this is served
    /// before younger messages of higher priorities (CRITICAL is never delayed).
    #[arg(long, env = "GUILD_STARVATION_HIGH", default_value = "10s")]
    pub starvation_high: String,

    /// The same for NORMAL messages.
    #[arg(long, env = "GUILD_STARVATION_NORMAL", default_value = "30s")]
    pub starvation_normal: String,

    /// The same for LOW messages.
    #[arg(long, env = "GUILD_STARVATION_LOW", default_value = "60s")]
    pub starvation_low: String,

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
    /// The bus rules' settings.
    pub office: OfficeConfig,
    /// How long the inbox log keeps messages.
    pub inbox_log_age: Duration,
    /// Outbox grace.
    pub outbox_grace: Duration,
    /// How often a waiting consume looks again (a delivery's ack window may have run out).
    pub sweep_every: Duration,
    /// How often settled messages are archived.
    pub archive_every: Duration,
}

fn millis(name: &str, text: &str) -> Result<u64, String> {
    parse_duration(text)
        .map(|d| d.as_millis() as u64)
        .map_err(|e| format!("--{name}: {e}"))
}

impl Options {
    /// Validates the options.
    pub fn into_config(self) -> Result<Config, String> {
        self.common.validate()?;
        let ack_wait_ms = millis("ack-wait", &self.ack_wait)?;
        if ack_wait_ms < 100 {
            return Err("--ack-wait must be at least 100ms".into());
        }
        let retention_ms = match millis("retention", &self.retention)? {
            0 => u64::MAX,
            ms => ms,
        };
        let inbox_log_age =
            parse_duration(&self.inbox_log_age).map_err(|e| format!("--inbox-log-age: {e}"))?;
        if inbox_log_age.is_zero() {
            return Err("--inbox-log-age must be positive".into());
        }
        Ok(Config {
            common: self.common,
            office: OfficeConfig {
                ack_wait_ms,
                starvation: StarvationPolicy {
                    high_max_wait_ms: millis("starvation-high", &self.starvation_high)?,
                    normal_max_wait_ms: millis("starvation-normal", &self.starvation_normal)?,
                    low_max_wait_ms: millis("starvation-low", &self.starvation_low)?,
                },
                decision_deadline_ms: millis("decision-deadline", &self.decision_deadline)?,
                retention_ms,
            },
            inbox_log_age,
            outbox_grace: parse_duration(&self.outbox_grace)
                .map_err(|e| format!("--outbox-grace: {e}"))?,
            sweep_every: Duration::from_millis(250),
            archive_every: Duration::from_secs(60),
        })
    }
}

impl Config {
    /// Defaults, as `bus-svc` with no options and no environment would run.
    pub fn new(office: OfficeConfig) -> Self {
        Self {
            common: CommonOptions::default(),
            office,
            inbox_log_age: guild_wire::store::INBOX_MAX_AGE,
            outbox_grace: Duration::from_secs(5),
            sweep_every: Duration::from_millis(250),
            archive_every: Duration::from_secs(60),
        }
    }
}

/// Why the service stopped.
pub use guild_service::Error;

/// Runs the service on `client` until `shutdown` resolves, then stops taking requests,
/// ends waiting consumes with no message, finishes the requests in flight, and returns.
pub async fn run(
    client: async_nats::Client,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    guild_service::run::<Bus>(client, config, shutdown).await
}

/// Prepares storage, the post office and the followed registry; the handler [`run`] serves.
pub async fn start(client: async_nats::Client, config: Config) -> Result<Bus, Error> {
    Bus::start(client, config, Faults::default()).await
}

impl Shape for Bus {
    type Config = Config;
    type View = PostOffice;
    type Record = OfficeRecord;
    type Router = api::Routes<Bus>;
    const DESCRIPTION: &'static str =
        "Guild consultation bus: priority delivery, questions, decisions, audit log";

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
        let d = config.common.durability();
        provision::inbox_stream(&js, d, config.inbox_log_age).await?;
        let registry = guild_service::follow_registry(&js, d).await?;
        let wakers = consume::Wakers::default();
        let office = config.office;
        let fold_wakers = wakers.clone();
        let spec = Spec::new(
            move || PostOffice::new(office),
            move |o: &mut PostOffice, r| fold_wakers.fold(o, r),
            PostOffice::records,
        );
        let state =
            guild_service::open_state(&js, &config.common, Service::Bus, JOURNAL, spec, faults)
                .await?
                .reading(registry.clone());
        let audit = state.audit_log().clone();
        Ok(Bus::new(client, js, state, registry, audit, wakers, config))
    }

    fn state(&self) -> &State<PostOffice, OfficeRecord> {
        Bus::state(self)
    }

    /// The loops end with [`on_shutdown`](Shape::on_shutdown), as waiting consumes do.
    fn background(&self, _stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        reactor::background(self.clone())
    }

    fn on_shutdown(&self) {
        self.stop();
    }
}
