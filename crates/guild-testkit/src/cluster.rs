//! Three nats-servers routed into one JetStream cluster.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use guild_wire::domain::Principal;

use crate::netns::Hosts;
use crate::server::{Auth, NatsServer, Routes, ServerOptions, connect_with, read_creds};

/// A JetStream cluster of real servers; every node is killed and cleaned up on drop.
#[derive(Debug)]
pub struct Cluster {
    /// The nodes, in start order (`guild-n0`, `guild-n1`, ...).
    pub nodes: Vec<NatsServer>,
    /// With [`start_on_hosts`](Self::start_on_hosts), the hosts the nodes run on. After
    /// `nodes`: the servers are gone before their namespaces are.
    hosts: Option<Hosts>,
}

impl Cluster {
    /// Starts `n` routed nodes on this machine's loopback and waits until JetStream has a
    /// meta leader.
    pub async fn start(n: usize, options: ServerOptions) -> Self {
        Self::launch(n, options, None).await
    }

    /// Starts `n` routed nodes, each on a host of its own (a network namespace, see
    /// [`Hosts`]), so that one can be cut off from the others and healed
    /// ([`partition`](Self::partition), [`heal`](Self::heal)). Needs root and iproute2.
    pub async fn start_on_hosts(n: usize, options: ServerOptions) -> Self {
        Self::launch(n, options, Some(Hosts::make(n))).await
    }

    async fn launch(n: usize, options: ServerOptions, hosts: Option<Hosts>) -> Self {
        let cluster_ports = free_ports(n);
        let address = |i: usize| {
            hosts
                .as_ref()
                .map_or_else(|| "127.0.0.1".to_owned(), |h| h.hosts[i].ip.clone())
        };
        // One operator for every node: a credential works on each.
        let auth = (!options.insecure).then(Auth::generate);
        let nodes = (0..n)
            .map(|i| {
                let routes = Routes {
                    cluster_port: cluster_ports[i],
                    peers: (0..n)
                        .filter(|&j| j != i)
                        .map(|j| (address(j), cluster_ports[j]))
                        .collect(),
                };
                NatsServer::launch(
                    format!("guild-n{i}"),
                    options.clone(),
                    Some(routes),
                    auth.clone(),
                    hosts.as_ref().map(|h| h.hosts[i].clone()),
                )
            })
            .collect();
        let cluster = Self { nodes, hosts };
        cluster.wait_for_jetstream().await;
        cluster
    }

    /// Cuts node `i` off from the other nodes and from every client (its host's link
    /// goes down). Only on a cluster started with [`start_on_hosts`](Self::start_on_hosts).
    pub fn partition(&self, i: usize) {
        self.on_hosts().partition(i);
    }

    /// Joins node `i` again after [`partition`](Self::partition).
    pub fn heal(&self, i: usize) {
        self.on_hosts().heal(i);
    }

    fn on_hosts(&self) -> &Hosts {
        self.hosts
            .as_ref()
            .unwrap_or_else(|| panic!("this cluster runs on loopback: use start_on_hosts"))
    }

    /// The node that leads `stream` (its Raft group's leader), by index in `nodes`.
    pub async fn stream_leader(&self, stream: &str) -> Option<usize> {
        let client = self.connect_admin().await;
        let reply = client
            .request(format!("$JS.API.STREAM.INFO.{stream}"), "".into())
            .await
            .ok()?;
        let info: serde_json::Value = serde_json::from_slice(&reply.payload).ok()?;
        let leader = info["cluster"]["leader"].as_str()?;
        self.nodes.iter().position(|n| n.name() == leader)
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
