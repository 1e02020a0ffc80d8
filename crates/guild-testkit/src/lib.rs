//! Guild's test kit: real parts for tests.
//!
//! * [`NatsServer`]: a real `nats-server` with JetStream, one per test, on a free port with
//!   a temporary store; stopped and cleaned up on drop; restartable on the same store and
//!   port, so durability can be tested.
//! * [`Cluster`]: three such servers routed into one JetStream cluster, on loopback or
//!   each on a host of its own ([`netns`]) so a node can be cut off and healed.
//! * [`eventually`]: bounded polling instead of sleeps.
//! * [`Running`]: a service on a background task, stopped gracefully or killed.
//! * [`process::ServiceProcess`]: a service's real binary as a process of its own, up once
//!   it answers `$SRV.PING`; killed, paused, stopped and started again.
//! * [`Team`]: the operator and each agent on its own connection, with the credentials
//!   Guild minted for it, as real agents run.
//!
//! Servers run with Guild's authentication on (operator mode, keys made per server):
//! [`NatsServer::connect_as`] connects as a service, the operator or the observer,
//! [`NatsServer::connect_admin`] with unlimited credentials for looking at streams.
//!
//! The binary is found through `NATS_SERVER_BIN`, then the project's pinned copy in
//! `.tools/bin/nats-server` (installed by `scripts/bootstrap`), then `PATH`. When none is
//! there, starting a server panics with the command that installs it.
//!
//! ```no_run
//! # async fn demo() {
//! use guild_wire::domain::{AgentId, agent::{Role, SpawnRequest}};
//!
//! let server = guild_testkit::NatsServer::start();
//! // (the services started on it, each with `server.connect_as(service)`)
//! let team = guild_testkit::Team::new(&server).await;
//! let dev = AgentId::new("dev-1").unwrap();
//! team.spawn(SpawnRequest::new(dev.clone(), Role::Developer, 5_000)).await;
//! team.agent(&dev).spawner().heartbeat(None).await.unwrap();
//! # }
//! ```

mod binary;
mod cluster;
mod eventually;
pub mod netns;
pub mod process;
mod server;
mod task;
mod team;

pub use binary::{INSTALL_HINT, nats_server_bin, resolve_nats_server_bin, workspace_binary};
pub use cluster::Cluster;
pub use eventually::{eventually, eventually_async};
pub use server::{NatsServer, ServerOptions};
pub use task::Running;
pub use team::Team;
