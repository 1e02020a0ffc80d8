//! The runtime the three Guild services share, so each service is only its rules' wiring.
//!
//! * [`CommonOptions`]: the options every service takes (NATS URL, replicas, payload
//!   limit, log format), by flag or `GUILD_*` / `NATS_URL` environment variable.
//! * [`serve()`]: registers a service's operations as NATS micro endpoints, decodes
//!   requests, checks the payload limit and the principal token, and sends error replies.
//! * [`State::commit`]: the write path: plan from the view, commit atomically with the outbox,
//!   retry on conflict, publish.
//! * [`connect`], [`shutdown_signal`], [`now`]: start-up plumbing.

mod clock;
pub mod commit;
mod options;
pub mod serve;

pub use clock::now;
pub use commit::{Committed, Faults, Outgoing, Planned, Refused, State};
pub use options::{CommonOptions, parse_duration};
pub use serve::{Handler, Request, decode, encode, serve};

use std::time::Duration;

/// Connects to NATS for service `name`, retrying in the background if the server is not
/// up yet (a service may start before NATS in a compose deployment).
pub async fn connect(
    opts: &CommonOptions,
    name: &str,
) -> Result<async_nats::Client, async_nats::ConnectError> {
    let urls: Vec<&str> = opts
        .nats_url
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect();
    async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .request_timeout(Some(Duration::from_secs(10)))
        .connect(urls.as_slice())
        .await
}

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
