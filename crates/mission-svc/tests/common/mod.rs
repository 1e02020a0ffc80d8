//! What the mission-svc tests share: the services in this process against a real
//! nats-server, and a stack with an orchestrator and two developers.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use async_nats::jetstream;
use guild_domain::agent::{Authority, Limits, Role, SpawnRequest};
use guild_domain::mission::{BoardConfig, NewMission};
use guild_domain::{AgentId, MissionId, Phase, Principal, Service};
use guild_sdk::{Guild, Missions};
use guild_testkit::{NatsServer, Running, Team, eventually_async};

pub(crate) async fn spawner(
    server: &NatsServer,
    heartbeat: Duration,
) -> Running<spawner_svc::Error> {
    let client = server
        .connect_as(&Principal::Service(Service::Spawner))
        .await;
    let mut config = spawner_svc::Config::new(Limits {
        max_agents: 50,
        token_pool: 1_000_000,
        max_parallel_groups: None,
    });
    config.heartbeat_window = heartbeat;
    config.outbox_grace = Duration::from_millis(300);
    config.autoscale_every = Duration::from_millis(50);
    config.custodian = Some(spawner_svc::CustodianSetup {
        keys: server.custodian_keys(),
        system: server.system_options(),
    });
    config.common.nats.creds = Some(server.creds_file(&Principal::Service(Service::Spawner)));
    Running::start(move |stop| spawner_svc::run(client, config, stop))
}

pub(crate) async fn missions(
    server: &NatsServer,
    board: BoardConfig,
) -> Running<mission_svc::Error> {
    missions_reconciling_every(server, board, Duration::from_millis(300)).await
}

/// mission-svc, checking its allocations against the spawner every `reconcile_every`.
pub(crate) async fn missions_reconciling_every(
    server: &NatsServer,
    board: BoardConfig,
    reconcile_every: Duration,
) -> Running<mission_svc::Error> {
    let client = server
        .connect_as(&Principal::Service(Service::Mission))
        .await;
    let mut config = mission_svc::Config::new(board);
    config.common.nats.creds = Some(server.creds_file(&Principal::Service(Service::Mission)));
    config.outbox_grace = Duration::from_millis(300);
    config.reconcile_every = reconcile_every;
    Running::start(move |stop| mission_svc::run(client, config, stop))
}

pub(crate) async fn ready(guild: &Guild) {
    eventually_async("both services answer", Duration::from_secs(15), || async {
        guild.spawner().get_stats().await.ok()?;
        guild.missions().get_statistics().await.ok()
    })
    .await;
}

pub(crate) fn id(s: &str) -> AgentId {
    AgentId::new(s).unwrap()
}

pub(crate) fn m(s: &str) -> MissionId {
    MissionId::new(s).unwrap()
}

pub(crate) fn mission(name: &str, phase: Phase) -> NewMission {
    NewMission::new(m(name), format!("mission {name}"), phase)
}

/// Creates a DEVELOPMENT mission without dependencies for each of `names`.
pub(crate) async fn create(ms: &Missions<'_>, names: &[&str]) {
    for name in names {
        ms.create_mission(&mission(name, Phase::DEVELOPMENT))
            .await
            .unwrap();
    }
}

/// Starts mission `name` on `agent`.
pub(crate) async fn assign(ms: &Missions<'_>, name: &str, agent: &str) {
    ms.assign_mission(&m(name), Some(&id(agent))).await.unwrap();
}

/// A running stack: nats-server, spawner-svc, mission-svc, and the operator's team with an
/// orchestrator and two heartbeating developers, each on its own connection.
pub(crate) struct Stack {
    pub(crate) server: NatsServer,
    pub(crate) spawner: Running<spawner_svc::Error>,
    pub(crate) missions: Vec<Running<mission_svc::Error>>,
    /// The operator's connection.
    pub(crate) guild: Guild,
    pub(crate) team: Team,
}

pub(crate) async fn stack(board: BoardConfig) -> Stack {
    stack_on(NatsServer::start(), board).await
}

/// [`stack`] on a server the caller configured.
pub(crate) async fn stack_on(server: NatsServer, board: BoardConfig) -> Stack {
    let spawner = spawner(&server, Duration::from_secs(60)).await;
    let missions = vec![missions(&server, board).await];
    let team = Team::new(&server).await;
    let guild = team.operator().clone();
    ready(&guild).await;
    team.spawn(SpawnRequest::new(id("orch"), Role::Orchestrator, 100_000))
        .await;
    for dev in ["dev-1", "dev-2"] {
        team.spawn(SpawnRequest::new(id(dev), Role::Developer, 10_000).parent(id("orch")))
            .await;
        team.agent(&id(dev))
            .spawner()
            .heartbeat(None)
            .await
            .unwrap();
    }
    Stack {
        server,
        spawner,
        missions,
        guild,
        team,
    }
}

impl Stack {
    /// Spawns `name`, a developer under `orch` whose authority forbids `action`.
    pub(crate) async fn developer_forbidden(&self, name: &str, action: &str) {
        let mut authority = Authority::default_for(&Role::Developer);
        authority.forbidden_actions.insert(action.to_owned());
        self.team
            .spawn(
                SpawnRequest::new(id(name), Role::Developer, 100)
                    .parent(id("orch"))
                    .authority(authority),
            )
            .await;
    }

    /// Agent `name`'s own connection.
    pub(crate) fn agent(&self, name: &str) -> Guild {
        self.team.agent(&id(name))
    }
}

pub(crate) async fn journal_sequence(server: &NatsServer) -> u64 {
    let js = jetstream::new(server.connect_admin().await);
    let s = js.get_stream("GUILD_JOURNAL_MISSION").await.unwrap();
    s.get_info().await.unwrap().state.last_sequence
}
