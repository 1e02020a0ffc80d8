//! The runtime the three Guild services share, so each service is only its rules' wiring.
//!
//! * [`CommonOptions`]: the options every service takes (NATS URL, replicas, payload
//!   limit, log format), by flag or `GUILD_*` / `NATS_URL` environment variable.
//! * [`Shape`] and [`run()`]: the one shape of a service: it supplies its state, start-up,
//!   router and background loops; `run` starts it, serves it, settles its outbox, shuts
//!   it down and maps its errors, the same for all three.
//! * [`serve()`]: registers a service's operations as NATS micro endpoints, checks the
//!   payload limit and the principal token, hands each request to the service's
//!   generated router (`guild_wire::api::Router`), and sends error replies.
//! * [`State::commit`]: the write path: plan from the view, commit atomically with the outbox,
//!   retry on conflict, publish.
//! * [`react`]: handles other services' events through a shared durable consumer.
//! * [`connect`], [`shutdown_signal`], [`now`]: start-up plumbing.
//! * [`health_check`]: what `<service> --health-check` runs for a container's health check.

mod clock;
pub mod commit;
mod health;
pub mod lost;
mod options;
mod quota;
mod react;
mod refusals;
pub mod serve;
mod shape;

pub use clock::now;
#[doc(hidden)]
pub use commit::Faults;
pub use commit::{Committed, Outgoing, Planned, Refused, State};
pub use health::{HEALTH_CHECK_TIMEOUT, Unhealthy, health_check};
pub use options::{CommonOptions, parse_duration};
pub use react::{react, skip_unreadable};
pub use serve::{decode, serve};
#[doc(hidden)]
pub use shape::run_with_faults;
pub use shape::{Error, Shape, open_state, run};

/// Connects to NATS as `service`, retrying in the background if the server is not up
/// yet (a service may start before NATS in a compose deployment). Credentials Guild
/// minted must be the service's own: a service started with another identity's would be
/// refused by the broker at every step, so it stops here with the reason instead.
pub async fn connect(
    options: &guild_sdk::NatsOptions,
    service: guild_wire::subject::Service,
) -> Result<async_nats::Client, String> {
    let connection = options
        .connect(&format!("{}-svc", service.token()))
        .await
        .map_err(|e| e.to_string())?;
    match &connection.principal {
        Some(guild_domain::Principal::Service(s)) if *s == service => {}
        Some(other) => {
            return Err(format!(
                "the credentials are {other}'s, not service:{}'s; pass the service's own \
                 (--creds, NATS_CREDS)",
                service.token()
            ));
        }
        None => {}
    }
    Ok(connection.client)
}

/// A service binary's `main`: validated configuration (or exit 64 with the reason),
/// logging, a runtime, a NATS connection, `run` until Ctrl-C or SIGTERM; exit 0 when it
/// stopped cleanly, 1 when it failed. With `--health-check`, only the check (see
/// [`health_check`]): exit 0 when an instance answers, 1 when none does.
pub fn main<C, E, F>(
    name: &str,
    config: Result<C, String>,
    common: impl FnOnce(&C) -> CommonOptions,
    run: impl FnOnce(async_nats::Client, C) -> F,
) -> std::process::ExitCode
where
    F: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{name}: {e}");
            return std::process::ExitCode::from(64);
        }
    };
    let common = common(&config);
    let Some(service) = health::service_of(name) else {
        eprintln!("{name}: not one of Guild's services");
        return std::process::ExitCode::from(64);
    };
    let nats = match common.nats_options() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("{name}: {e}");
            return std::process::ExitCode::from(64);
        }
    };
    // Before telemetry: a check runs every few seconds and must neither log nor export.
    if common.health_check {
        return health::run(name, service, &nats);
    }
    guild_telemetry::init(name, common.log_format);
    if common.insecure {
        tracing::warn!(
            "{name} runs with --insecure: no credentials, any client can act as anyone, \
             audit records are unsigned; never on anything shared"
        );
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{name}: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let client = connect(&nats, service)
            .await
            .map_err(|e| format!("while connecting to NATS at {}: {e}", nats.url))?;
        run(client, config).await.map_err(|e| e.to_string())
    });
    let code = match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "{name} stopped");
            eprintln!("{name}: {e}");
            std::process::ExitCode::FAILURE
        }
    };
    // Export the spans and metrics still buffered.
    guild_telemetry::shutdown();
    code
}

/// Opens the audit log for `service`: records it appends are signed with its own key
/// (from its credentials), and that key is in the key history before anything is signed.
/// `head_seen` is how far the service's journal recorded the log reaching: a shorter (or
/// missing) log is a loss, not a first start.
pub async fn open_audit(
    js: &async_nats::jetstream::Context,
    common: &CommonOptions,
    service: guild_wire::subject::Service,
    head_seen: u64,
) -> Result<guild_store::AuditLog, guild_store::Error> {
    let d = common.durability();
    let mut audit = guild_store::AuditLog::open_guarded(js, d, head_seen).await?;
    if let Some(signer) = common
        .signer(service)
        .map_err(guild_store::Error::Refused)?
    {
        audit = audit.signed_by(signer);
        audit.register(d).await?;
    } else {
        tracing::warn!(
            service = service.token(),
            "no credentials: audit records are not signed"
        );
    }
    Ok(audit)
}

/// The spawner's registry, followed read-only from its journal: what bus-svc and
/// mission-svc read to route messages, authorize callers and find agents.
pub async fn follow_registry(
    js: &async_nats::jetstream::Context,
    d: guild_store::Durability,
) -> Result<
    guild_store::Journal<guild_domain::agent::Registry, guild_domain::agent::Record>,
    guild_store::Error,
> {
    use guild_domain::agent::{Mode, Registry};
    // The limits only matter to the spawner's own decisions; a follower only reads.
    let spec = guild_store::Spec::new(
        || Registry::new(Mode::Extreme.limits(), now()),
        Registry::apply,
        Registry::records,
    );
    guild_store::Journal::follow(js, SPAWNER_JOURNAL, spec, d).await
}

/// Follows mission-svc's board read-only (spawner-svc's autoscaler counts READY missions
/// by role in it). Waits for the journal to exist.
pub async fn follow_board(
    js: &async_nats::jetstream::Context,
    d: guild_store::Durability,
) -> Result<
    guild_store::Journal<guild_domain::mission::Board, guild_domain::mission::Mission>,
    guild_store::Error,
> {
    use guild_domain::mission::{Board, BoardConfig};
    // The group limit only matters to mission-svc's own decisions; a follower only reads.
    let spec = guild_store::Spec::new(
        || Board::new(BoardConfig::default()),
        Board::apply,
        Board::records,
    );
    let name = guild_wire::store::journal_of(guild_domain::Service::Mission);
    guild_store::Journal::follow(js, name, spec, d).await
}

/// The spawner's journal name.
pub const SPAWNER_JOURNAL: &str = guild_wire::store::journal_of(guild_domain::Service::Spawner);

/// Resolves on Ctrl-C or SIGTERM: the shutdown future a service's `main` passes to `run`.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutdown requested");
}
