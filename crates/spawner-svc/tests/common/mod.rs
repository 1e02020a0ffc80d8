//! Runs spawner-svc instances in-process against a real nats-server, with
//! authentication on: each instance connects with the spawner's own credentials and holds
//! the custodian's keys, and every agent gets its own connection.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use guild_domain::agent::{Limits, Role, SpawnRequest};
use guild_domain::{AgentId, Principal, Service};
use guild_sdk::Guild;
use guild_testkit::{NatsServer, Team, eventually_async};
use spawner_svc::{Config, CustodianSetup};
use tokio::sync::oneshot;

/// One running instance; dropping it does not stop it: call `stop`.
pub(crate) struct Instance {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), spawner_svc::Error>>,
}

impl Instance {
    pub(crate) async fn start(server: &NatsServer, config: Config) -> Self {
        Self::start_with_faults(server, config, guild_service::Faults::default()).await
    }

    /// An instance whose commits `faults` can interrupt (crash-recovery tests).
    pub(crate) async fn start_with_faults(
        server: &NatsServer,
        mut config: Config,
        faults: guild_service::Faults,
    ) -> Self {
        let client = server
            .connect_as(&Principal::Service(Service::Spawner))
            .await;
        if config.custodian.is_none() {
            config.custodian = Some(custodian(server));
        }
        // Its own credentials: it signs its audit records with them.
        config.common.nats.creds = Some(server.creds_file(&Principal::Service(Service::Spawner)));
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(guild_service::run_with_faults::<spawner_svc::Spawner>(
            client,
            config,
            faults,
            async {
                let _ = rx.await;
            },
        ));
        Self {
            stop: Some(tx),
            task,
        }
    }

    /// Graceful stop: in-flight requests finish.
    pub(crate) async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.task.await.unwrap().unwrap();
    }

    /// A crash: the task is aborted where it stands.
    pub(crate) fn kill(self) {
        self.task.abort();
    }
}

/// The custodian's keys of `server`.
pub(crate) fn custodian(server: &NatsServer) -> CustodianSetup {
    CustodianSetup {
        keys: server.custodian_keys(),
        system: server.system_options(),
    }
}

pub(crate) fn config(max_agents: u32, token_pool: u64) -> Config {
    let mut c = Config::new(Limits {
        max_agents,
        token_pool,
        max_parallel_groups: None,
    });
    c.outbox_grace = Duration::from_millis(200);
    c
}

/// A server, one instance, and the operator's team, once the instance answers.
pub(crate) async fn setup(max_agents: u32, pool: u64) -> (NatsServer, Instance, Team) {
    let server = NatsServer::start();
    let instance = Instance::start(&server, config(max_agents, pool)).await;
    let team = Team::new(&server).await;
    wait_for_instances(team.operator(), 1).await;
    (server, instance, team)
}

/// Waits until `n` instances answer `$SRV.PING.guild-spawner`.
pub(crate) async fn wait_for_instances(guild: &Guild, n: usize) {
    eventually_async(
        "spawner instances answer PING",
        Duration::from_secs(15),
        || async {
            let client = guild.client();
            let inbox = client.new_inbox();
            let mut sub = client.subscribe(inbox.clone()).await.ok()?;
            client
                .publish_with_reply("$SRV.PING.guild-spawner", inbox, "".into())
                .await
                .ok()?;
            let mut seen = 0;
            let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
            while let Ok(Some(_)) =
                tokio::time::timeout_at(deadline, futures_util::StreamExt::next(&mut sub)).await
            {
                seen += 1;
            }
            // A call through the queue group must work too (the instance finished starting).
            guild.spawner().get_stats().await.ok()?;
            (seen >= n).then_some(())
        },
    )
    .await;
}

pub(crate) fn id(s: &str) -> AgentId {
    AgentId::new(s).unwrap()
}

pub(crate) fn root(name: &str, role: Role, budget: u64) -> SpawnRequest {
    SpawnRequest::new(id(name), role, budget)
}

/// The spawner journal's last sequence: unchanged means nothing was written.
pub(crate) async fn journal_sequence(server: &NatsServer) -> u64 {
    let js = async_nats::jetstream::new(server.connect_admin().await);
    let s = js.get_stream("GUILD_JOURNAL_SPAWNER").await.unwrap();
    s.get_info().await.unwrap().state.last_sequence
}
