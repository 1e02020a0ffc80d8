//! The one shape of a Guild service: what a service crate supplies ([`Shape`]: its
//! journal's state, its start-up, its handlers, its background loops) and what every
//! service then does the same way ([`run`]: start, serve, settle, shut down, map errors).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use guild_store::{Journal, Publisher, Spec};
use guild_wire::api::Router;
use tokio::sync::watch;

use crate::commit::{Faults, State};
use crate::lost::Storage;
use crate::options::CommonOptions;

/// Why a service stopped, or could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// JetStream was not usable at start-up.
    #[error("while preparing JetStream: {0}")]
    Storage(#[from] guild_store::Error),
    /// NATS refused to host the service.
    #[error("while serving: {0}")]
    Serve(#[from] async_nats::Error),
    /// What is stored does not fit the configuration (the spawner's pool and its limits).
    #[error("configuration: {0}")]
    Config(String),
    /// A part the service needs could not start (the spawner's custodian).
    #[error("{0}")]
    Start(String),
}

/// A Guild service as the runtime runs it. The service crate implements it on its
/// handler (a cheap clone over shared state) and exposes `run`/`start` as one-line calls
/// to [`run`] and [`Shape::start`].
pub trait Shape: Clone + Send + Sync + Sized + 'static {
    /// The validated configuration (from the binary's options, or built by a test).
    type Config: Clone + Send + Sync + 'static;
    /// The state folded from the service's journal.
    type View: Send + Sync + 'static;
    /// What the journal stores.
    type Record: guild_store::Record;
    /// What serves its operations: the generated `Routes` over its handler.
    type Router: Router + From<Self>;

    /// One line for `$SRV.INFO`.
    const DESCRIPTION: &'static str;

    /// The options every service shares.
    fn common(config: &Self::Config) -> &CommonOptions;

    /// How long an outbox entry is left to its writer before any instance publishes it.
    fn outbox_grace(config: &Self::Config) -> Duration;

    /// Prepares storage and the views the handler reads ([`open_state`] does the common
    /// part); `faults` are for crash-recovery tests and otherwise unarmed.
    fn start(
        client: async_nats::Client,
        config: Self::Config,
        faults: Faults,
    ) -> impl Future<Output = Result<Self, Error>> + Send;

    /// Its state.
    fn state(&self) -> &State<Self::View, Self::Record>;

    /// Its router.
    fn router(&self) -> Self::Router {
        Self::Router::from(self.clone())
    }

    /// What `recover` and the `$SRV.INFO` metadata act on: the state, unless the service
    /// has more to do on recovery.
    fn storage(&self) -> Arc<dyn Storage> {
        Arc::new(self.state().clone())
    }

    /// Starts its background loops (the settle loop is the runtime's); they end when
    /// `stop` turns true, or when [`on_shutdown`](Self::on_shutdown) tells them to.
    fn background(&self, stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()>;

    /// Shutdown began: requests are no longer taken, and the ones in flight are about
    /// to be waited for (the bus ends its waiting consumes here).
    fn on_shutdown(&self) {}
}

/// Runs `S` on `client` until `shutdown` resolves, then stops taking requests, finishes
/// the ones in flight, stops the background loops, and returns.
pub async fn run<S: Shape>(
    client: async_nats::Client,
    config: S::Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    run_with_faults::<S>(client, config, Faults::default(), shutdown).await
}

/// [`run`] with failure injection, for crash-recovery tests.
#[doc(hidden)]
pub async fn run_with_faults<S: Shape>(
    client: async_nats::Client,
    config: S::Config,
    faults: Faults,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let service = S::start(client.clone(), config.clone(), faults).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let background = service.background(stop_rx.clone());
    let settling = settle_loop(service.state().clone(), S::outbox_grace(&config), stop_rx);
    let served = crate::serve(
        client,
        S::DESCRIPTION,
        Arc::new(service.router()),
        service.storage(),
        S::common(&config),
        async {
            shutdown.await;
            service.on_shutdown();
        },
    )
    .await;
    service.on_shutdown();
    stop_tx.send_replace(true);
    for (task, joined) in [
        ("background loops", background.await),
        ("settle loop", settling.await),
    ] {
        if let Err(e) = joined {
            tracing::error!(error = %e, "the {task} ended abnormally");
        }
    }
    served.map_err(Error::Serve)
}

/// Publishes what dead writers left (and the state's other upkeep) every quarter of the
/// outbox grace, between 50 ms and 1 s, until `stop` turns true.
fn settle_loop<V: Send + Sync + 'static, R: guild_store::Record>(
    state: State<V, R>,
    grace: Duration,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut settle = tokio::time::interval(
            (grace / 4).clamp(Duration::from_millis(50), Duration::from_secs(1)),
        );
        settle.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = settle.tick() => {
                    if let Err(e) = state.settle(grace).await {
                        tracing::warn!(error = %e, "publishing sweep failed");
                    }
                }
            }
        }
    })
}

/// Opens a service's state: the events stream, its journal `journal` with `spec`, its
/// audit log (how far the journal saw the log reach tells a loss from a first start), and
/// the write path over them, counting refusals over `--refusal-window`.
pub async fn open_state<V: Send + Sync + 'static, R: guild_store::Record>(
    js: &async_nats::jetstream::Context,
    common: &CommonOptions,
    service: guild_wire::subject::Service,
    journal: &str,
    spec: Spec<V, R>,
    faults: Faults,
) -> Result<State<V, R>, guild_store::Error> {
    let d = common.durability();
    guild_store::provision::events_stream(js, d).await?;
    let journal = Journal::open(js, journal, spec, d).await?;
    let head = journal.audit_head().await?;
    let audit = crate::open_audit(js, common, service, head).await?;
    Ok(
        State::new(service, journal, Publisher::new(js.clone(), audit), d)
            .with_faults(faults)
            .with_refusal_window(common.refusal_window),
    )
}
