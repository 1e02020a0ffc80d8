//! Three nats-servers routed into one JetStream cluster.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use guild_wire::domain::Principal;

use crate::server::{Auth, NatsServer, Routes, ServerOptions, connect_with, read_creds};

/// A JetStream cluster of real servers; every node is killed and cleaned up on drop.
#[derive(Debug)]
pub struct Cluster {
    /// The nodes, in start order.
    pub nodes: Vec<NatsServer>,
}

impl Cluster {
    /// Starts `n` routed nodes and waits until JetStream has a meta leader.
    pub async fn start(n: usize, options: ServerOptions) -> Self {
        let cluster_ports = free_ports(n);
        // One operator for every node: a credential works on each.
        let auth = (!options.insecure).then(Auth::generate);
        let nodes = (0..n)
            .map(|i| {
                let routes = Routes {
                    cluster_port: cluster_ports[i],
                    peers: cluster_ports
                        .iter()
                        .copied()
                        .filter(|&p| p != cluster_ports[i])
                        .collect(),
                };
                NatsServer::launch(
                    format!("guild-n{i}"),
                    options.clone(),
                    Some(routes),
                    auth.clone(),
                )
            })
            .collect();
        let cluster = Self { nodes };
        cluster.wait_for_jetstream().await;
        cluster
    }

    /// Every node's client URL, comma separated (what `NATS_URL` takes).
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Connects as `principal` to any node (see [`NatsServer::connect_as`]).
    pub async fn connect_as(&self, principal: &Principal) -> async_nats::Client {
        let creds = self.nodes[0]
            .layout()
            .map(|_| read_creds(&self.nodes[0].creds_file(principal)));
        let prefix = guild_wire::subject::inbox_prefix(principal);
        connect_with(&self.urls(), creds.as_deref(), Some(&prefix)).await
    }

    /// Connects with unlimited credentials to any node (see [`NatsServer::connect_admin`]).
    pub async fn connect_admin(&self) -> async_nats::Client {
        connect_with(&self.urls(), self.nodes[0].admin_creds().as_deref(), None).await
    }

    async fn wait_for_jetstream(&self) {
        let client = self.connect_admin().await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let info = client.request("$JS.API.INFO", "".into()).await;
            if let Ok(msg) = info {
                let ok = serde_json::from_slice::<serde_json::Value>(&msg.payload)
                    .is_ok_and(|v| v.get("error").is_none());
                if ok {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the JetStream cluster elected no leader in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// `n` ports free right now (bound and released; a race with other processes is possible
/// but rare, and shows up as a start failure with the log).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}")))
        .collect();
    listeners
        .iter()
        .map(|l| {
            l.local_addr()
                .map(|a| a.port())
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect()
}
