//! Three nats-servers routed into one JetStream cluster.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::server::{NatsServer, Routes, ServerOptions, connect_url};

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
                NatsServer::launch(format!("guild-n{i}"), options.clone(), Some(routes))
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

    /// Connects to the first node.
    pub async fn connect(&self) -> async_nats::Client {
        connect_url(&self.urls()).await
    }

    async fn wait_for_jetstream(&self) {
        let client = self.connect().await;
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
