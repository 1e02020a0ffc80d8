//! Request overhead of each service: its cheapest read against a raw echo, and one write
//! against echo plus the JetStream writes that write performs (`raw::Writes`).

use std::time::Duration;

use guild_sdk::Guild;
use guild_sdk::NewMission;
use guild_sdk::Priority;
use guild_sdk::api::bus::SendRequest;
use guild_sdk::{AgentId, MissionId, Phase};
use guild_sdk::{Role, SpawnRequest};

use crate::report::{Row, Section};
use crate::scenario::raw::{self, Responder, Writes};
use crate::scenario::{aid, sequential, spawner_env};
use crate::stack::{Service, Stack, Sync, Telemetry, binary};
use crate::stats::Samples;

/// Guild's goal: at most this many times the raw figure.
const GOAL: f64 = 1.5;

/// One operation and what it is measured against.
struct Measured {
    service: Service,
    /// "read `get`" or "write `spawn`".
    what: &'static str,
    guild: Samples,
    baseline: Samples,
    /// What the baseline does.
    writes: Writes,
}

impl Measured {
    fn rows(&self) -> [Row; 2] {
        let name = format!("{} {}", binary(self.service), self.what);
        let against = if self.writes.journal {
            "echo + its writes"
        } else {
            "echo"
        };
        [
            Row::new(format!("{name} p50"), self.guild.p50(), "ms")
                .target(format!("≤ {GOAL}× {against}"))
                .baseline(self.baseline.p50())
                .goal(self.guild.p50() <= GOAL * self.baseline.p50()),
            Row::new(format!("{name} p99"), self.guild.p99(), "ms").baseline(self.baseline.p99()),
        ]
    }
}

/// Times `n` calls after a warm-up of 20.
async fn timed<F, Fut>(n: usize, mut call: F) -> anyhow::Result<Samples>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    sequential(20, |i| call(n + i)).await?;
    sequential(n, call).await
}

/// spawner-svc's cheapest read: `n` `get`s of agent `target`, after a warm-up.
pub(crate) async fn spawner_gets(
    guild: &Guild,
    target: &AgentId,
    n: usize,
) -> anyhow::Result<Samples> {
    let spawner = guild.spawner();
    timed(n, |_| {
        let spawner = &spawner;
        async move {
            spawner.get(target).await?;
            Ok(())
        }
    })
    .await
}

/// mission-svc's typical write: `n` missions without dependencies created, named
/// `<prefix><i>`, after a warm-up.
pub(crate) async fn mission_creates(
    guild: &Guild,
    prefix: &str,
    n: usize,
) -> anyhow::Result<Samples> {
    let missions = guild.missions();
    timed(n, |i| {
        let missions = &missions;
        async move {
            let id = MissionId::new(format!("{prefix}{i}"))?;
            let m = NewMission::new(id, "m", Phase::DEVELOPMENT);
            missions.create_mission(&m).await?;
            Ok(())
        }
    })
    .await
}

pub(crate) async fn run(sync: Sync, quick: bool) -> anyhow::Result<Section> {
    let n = if quick { 100 } else { 2_000 };
    let mut stack = Stack::start(sync, Telemetry::Off).await?;
    // Baselines first, while nothing else runs against the server.
    let client = &stack.client;
    let baseline = |name: &'static str, writes| async move {
        Responder::start(client, name, writes)
            .await?
            .measure(client, n)
            .await
    };
    let echo = baseline("echo", Writes::NONE).await?;
    let spawn_raw = baseline("spawn", Writes::SPAWN).await?;
    let create_raw = baseline("create", Writes::CREATE_MISSION).await?;
    let send_raw = baseline("send", Writes::SEND).await?;

    stack.add_service(Service::Spawner, &spawner_env()).await?;
    stack.add_service(Service::Mission, &[]).await?;
    stack.add_service(Service::Bus, &[]).await?;
    let guild = stack.operator().with_timeout(Duration::from_secs(30));
    let target = aid("bench-target")?;
    guild
        .spawner()
        .spawn(SpawnRequest::new(target.clone(), Role::Developer, 1_000))
        .await?;
    let mission = MissionId::new("bench-mission")?;
    guild
        .missions()
        .create_mission(&NewMission::new(mission.clone(), "m", Phase::DEVELOPMENT))
        .await?;

    let (spawner, missions, bus) = (guild.spawner(), guild.missions(), guild.bus());
    let spawner_get = spawner_gets(&guild, &target, n).await?;
    let spawn = timed(n, |i| {
        let spawner = &spawner;
        async move {
            let id = AgentId::new(format!("ov{i}"))?;
            spawner
                .spawn(SpawnRequest::new(id, Role::Developer, 1))
                .await?;
            Ok(())
        }
    })
    .await?;
    let mission_get = timed(n, |_| {
        let (missions, mission) = (&missions, &mission);
        async move {
            missions.get_mission(mission).await?;
            Ok(())
        }
    })
    .await?;
    let create = mission_creates(&guild, "ov", n).await?;
    let stats = timed(n, |_| {
        let bus = &bus;
        async move {
            bus.get_message_stats().await?;
            Ok(())
        }
    })
    .await?;
    let send = timed(n, |i| {
        let (bus, to) = (&bus, &target);
        async move {
            bus.request(&SendRequest {
                to: to.clone(),
                subject: format!("m{i}"),
                payload: serde_json::json!({ "body": "x".repeat(200) }),
                priority: Some(Priority::Normal),
                task_id: None,
                message_id: None,
            })
            .await?;
            Ok(())
        }
    })
    .await?;

    let read = |service, what, guild| Measured {
        service,
        what,
        guild,
        baseline: echo.clone(),
        writes: Writes::NONE,
    };
    let measured = [
        read(Service::Spawner, "read `get`", spawner_get),
        Measured {
            service: Service::Spawner,
            what: "write `spawn`",
            guild: spawn,
            baseline: spawn_raw,
            writes: Writes::SPAWN,
        },
        read(Service::Mission, "read `get_mission`", mission_get),
        Measured {
            service: Service::Mission,
            what: "write `create_mission`",
            guild: create,
            baseline: create_raw,
            writes: Writes::CREATE_MISSION,
        },
        read(Service::Bus, "read `get_message_stats`", stats),
        Measured {
            service: Service::Bus,
            what: "write `request` (send)",
            guild: send,
            baseline: send_raw,
            writes: Writes::SEND,
        },
    ];
    let baselines: Vec<String> = measured
        .iter()
        .filter(|m| m.writes.journal)
        .map(|m| format!("{}: {}", m.what, m.writes.describe()))
        .collect();
    Ok(Section {
        title: format!("Request overhead ({})", sync.label()),
        method: format!(
            "Each service's cheapest read and one typical write, {n} calls one after another from one \
             client through the SDK after 20 warm-up calls, every service a process of its own. Reads \
             are measured against an echo: a plain NATS request/reply responder in the bench process, \
             same request size. Writes are measured against the same responder doing, before it replies, \
             the JetStream writes the operation does, the way Guild does them (a journal entry of {} \
             bytes appended with `Nats-Expected-Last-Sequence` and a message id, events sent together \
             then awaited, audit entries appended to the hash chain): {}. Baselines are measured first, \
             against the same server.",
            raw::JOURNAL_ENTRY,
            baselines.join("; ")
        ),
        rows: measured.iter().flat_map(Measured::rows).collect(),
        notes: vec![
            "Why reads cost more than an echo: every read first syncs the instance with its journal (one \
             JetStream stream-info request for the last sequence, then waiting until that entry is folded \
             in), so that an answer reflects every change acknowledged before it, by any instance. That \
             is a second round trip to the server on every read. What would close it: let the caller say \
             which sequence it has seen (its last write's, returned with every reply) and answer from \
             memory once the instance has folded that in, syncing only when asked for a \
             strictly-current read; or keep the last sequence current from the journal feed itself."
                .into(),
            "Why writes cost more than their raw writes: decoding and checking the request, the domain's \
             decision, serializing the whole entry (records, events and audit entries) and folding it in, \
             and the reply built from the saved records. The journal append, the events and the audit \
             append are the same writes the baseline does, in the same order. What would close it: first \
             a profile of the write path (these figures are whole calls); the candidates are the JSON \
             encoding of the entry, which carries the events and audit entries it will publish so that a \
             dead writer's can be published by another instance, and of the request and reply."
                .into(),
            format!("Resident memory at the end: {}.", stack.memory_note()),
        ],
        figures: Vec::new(),
    })
}
