//! Guild's test kit: real parts for tests.
//!
//! * [`NatsServer`]: a real `nats-server` with JetStream, one per test, on a free port with
//!   a temporary store; stopped and cleaned up on drop; restartable on the same store and
//!   port, so durability can be tested.
//! * [`Cluster`]: three such servers routed into one JetStream cluster.
//! * [`eventually`]: bounded polling instead of sleeps.
//! * [`Running`]: a service on a background task, stopped gracefully or killed.
//!
//! The binary is found through `NATS_SERVER_BIN`, then the project's pinned copy in
//! `.tools/bin/nats-server` (installed by `scripts/bootstrap`), then `PATH`. When none is
//! there, starting a server panics with the command that installs it.
//!
//! ```no_run
//! # async fn demo() {
//! let server = guild_testkit::NatsServer::start();
//! let client = server.connect().await;
//! client.publish("hello", "world".into()).await.unwrap();
//! # }
//! ```

mod binary;
mod cluster;
mod eventually;
mod server;
mod task;

pub use binary::{INSTALL_HINT, nats_server_bin, resolve_nats_server_bin, workspace_binary};
pub use cluster::Cluster;
pub use eventually::{eventually, eventually_async};
pub use server::{NatsServer, ServerOptions};
pub use task::Running;
