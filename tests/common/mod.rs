//! The one full-stack fixture: the three services running in this process on a test-kit
//! server, answering before the test goes on. The workspace tests include it as
//! `mod common`, and so does bus-svc's (`crates/bus-svc/tests/bus.rs`, by path), each
//! changing the configurations it needs through [`start_in_process_with`].

use std::time::Duration;

use guild_domain::agent::Limits;
use guild_domain::message::OfficeConfig;
use guild_domain::mission::BoardConfig;
use guild_domain::{Principal, Service};
use guild_testkit::{NatsServer, Running, Team, eventually_async};

/// The three services; they stop when this drops.
pub(crate) struct Services {
    pub(crate) spawner: Running<spawner_svc::Error>,
    pub(crate) missions: Running<mission_svc::Error>,
    pub(crate) bus: Running<bus_svc::Error>,
}

impl Services {
    /// The services that have ended (returned, failed or panicked) while they should be
    /// running.
    #[allow(dead_code)] // Not every test binary watches them.
    pub(crate) fn ended(&self) -> Vec<&'static str> {
        let mut ended = Vec::new();
        if self.spawner.is_finished() {
            ended.push("spawner-svc");
        }
        if self.missions.is_finished() {
            ended.push("mission-svc");
        }
        if self.bus.is_finished() {
            ended.push("bus-svc");
        }
        ended
    }

    /// Stops the three gracefully, bus first (it follows the others).
    #[allow(dead_code)] // Not every test binary stops them by hand.
    pub(crate) async fn stop(self) {
        self.bus.stop().await;
        self.missions.stop().await;
        self.spawner.stop().await;
    }
}

/// Starts spawner-svc (room for 10 agents and 100,000 tokens), mission-svc and bus-svc on
/// `server`, each with its own credentials, and returns the operator's team once all
/// three answer.
#[allow(dead_code)] // Not every test binary starts them this way.
pub(crate) async fn start_in_process(server: &NatsServer) -> (Services, Team) {
    start_in_process_with(server, |_| {}).await
}

/// The three services' configurations, for a test to change before they start.
pub(crate) struct Configs {
    pub(crate) spawner: spawner_svc::Config,
    pub(crate) missions: mission_svc::Config,
    pub(crate) bus: bus_svc::Config,
}

/// [`start_in_process`], with the configurations changed by `configure` first.
pub(crate) async fn start_in_process_with(
    server: &NatsServer,
    configure: impl FnOnce(&mut Configs),
) -> (Services, Team) {
    let limits = Limits {
        max_agents: 10,
        token_pool: 100_000,
        max_parallel_groups: None,
    };
    let creds = |s| Some(server.creds_file(&Principal::Service(s)));
    let mut config = spawner_svc::Config::new(limits);
    config.common.nats.creds = creds(Service::Spawner);
    config.custodian = Some(spawner_svc::CustodianSetup {
        keys: server.custodian_keys(),
        system: server.system_options(),
    });
    let mut mc = mission_svc::Config::new(BoardConfig::default());
    mc.common.nats.creds = creds(Service::Mission);
    let mut bc = bus_svc::Config::new(OfficeConfig::default());
    bc.common.nats.creds = creds(Service::Bus);
    let mut configs = Configs {
        spawner: config,
        missions: mc,
        bus: bc,
    };
    configure(&mut configs);
    let Configs {
        spawner: config,
        missions: mc,
        bus: bc,
    } = configs;
    let c = server
        .connect_as(&Principal::Service(Service::Spawner))
        .await;
    let spawner = Running::start(move |stop| spawner_svc::run(c, config, stop));
    let c = server
        .connect_as(&Principal::Service(Service::Mission))
        .await;
    let missions = Running::start(move |stop| mission_svc::run(c, mc, stop));
    let c = server.connect_as(&Principal::Service(Service::Bus)).await;
    let bus = Running::start(move |stop| bus_svc::run(c, bc, stop));
    let team = Team::new(server).await;
    let guild = team.operator();
    eventually_async("the services answer", Duration::from_secs(15), || async {
        guild.spawner().get_stats().await.ok()?;
        guild.missions().get_statistics().await.ok()?;
        guild.bus().get_message_stats().await.ok()
    })
    .await;
    (
        Services {
            spawner,
            missions,
            bus,
        },
        team,
    )
}
