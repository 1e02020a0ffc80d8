//! Old data still loads (issue 18, point 7): the journals and snapshots that commit e87de88
//! wrote (schema version 2) are committed under `tests/fixtures/old-data/v2/`; each is loaded
//! into a fresh nats-server exactly as JetStream held it, opened the way its service opens
//! it, and must fold into the state that was committed beside it.
//!
//! `GUILD_BLESS=1 cargo nextest run -p guild-tests --test old_data` writes the fixture anew
//! from the running services (see the fixture's README). Do that only when the stored
//! format changes on purpose, and keep the old directory: a new schema version gets a new
//! directory, and every old one must go on loading.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::jetstream;
use guild_domain::Timestamp;
use guild_domain::agent::{Limits, Registry, Role, SpawnRequest};
use guild_domain::message::{OfficeConfig, PostOffice};
use guild_domain::mission::{Board, BoardConfig, NewMission, Severity};
use guild_domain::{AgentId, MissionId, Phase, ReservationId};
use guild_store::{Durability, Journal, Record, Spec};
use guild_testkit::NatsServer;
use guild_wire::subject::Service;
use serde_json::json;

/// The fixture of schema version 2 (today's), written by commit e87de88.
fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/old-data/v2")
}

/// The spawner's limits in the test stack (`tests/common`); a snapshot carries the pool.
const LIMITS: Limits = Limits {
    max_agents: 10,
    token_pool: 100_000,
    max_parallel_groups: None,
};

/// The registry's starting efficiency sample; the snapshot replaces it, so the start time
/// does not show in the folded state.
const START: Timestamp = Timestamp(1_700_000_000_000);

fn registry() -> Spec<Registry, guild_domain::agent::Record> {
    Spec::new(
        || Registry::new(LIMITS, START),
        Registry::apply,
        Registry::records,
    )
}

fn board() -> Spec<Board, guild_domain::mission::Mission> {
    Spec::new(
        || Board::new(BoardConfig::default()),
        Board::apply,
        Board::records,
    )
}

fn office() -> Spec<PostOffice, guild_domain::message::OfficeRecord> {
    Spec::new(
        || PostOffice::new(OfficeConfig::default()),
        PostOffice::apply,
        PostOffice::records,
    )
}

#[tokio::test]
async fn journals_and_snapshots_written_by_schema_version_2_fold_into_the_same_state() {
    if std::env::var_os("GUILD_BLESS").is_some() {
        bless().await;
    }
    let server = NatsServer::start();
    let js = jetstream::new(server.connect_admin().await);
    let dir = fixture();
    assert_eq!(
        load_and_fold(&js, &dir, Service::Spawner, registry).await,
        expected(&dir, Service::Spawner),
        "the spawner's registry"
    );
    assert_eq!(
        load_and_fold(&js, &dir, Service::Mission, board).await,
        expected(&dir, Service::Mission),
        "the mission board"
    );
    assert_eq!(
        load_and_fold(&js, &dir, Service::Bus, office).await,
        expected(&dir, Service::Bus),
        "the post office"
    );
}

/// What `service`'s journal must fold into: its records, one JSON text a line, sorted (the
/// bus and the board keep theirs in hash maps, so their order means nothing).
fn expected(dir: &Path, service: Service) -> Vec<String> {
    let path = dir.join(journal(service)).join("state.jsonl");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (GUILD_BLESS=1 writes it)", path.display()));
    text.lines().map(str::to_owned).collect()
}

fn journal(service: Service) -> &'static str {
    guild_wire::store::journal_of(service)
}

/// The state's records as sorted JSON texts.
fn folded<S: Send + Sync + 'static, R: Record>(
    journal: &Journal<S, R>,
    records: impl Fn(&S) -> Vec<std::sync::Arc<R>>,
) -> Vec<String> {
    let mut lines: Vec<String> = journal
        .read(records)
        .iter()
        .map(|r| serde_json::to_string(r.as_ref()).unwrap())
        .collect();
    lines.sort();
    lines
}

/// Puts `service`'s fixture into JetStream as it was stored (the entries at their own
/// sequences, the snapshot object, the pointer to it), opens the journal as the service
/// does, and returns the state it folds into.
async fn load_and_fold<S: Send + Sync + 'static, R: Record>(
    js: &jetstream::Context,
    dir: &Path,
    service: Service,
    spec: fn() -> Spec<S, R>,
) -> Vec<String> {
    let name = journal(service);
    let dir = dir.join(name);
    let read =
        |file: &str| std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{name}/{file}: {e}"));
    let meta: serde_json::Value = serde_json::from_slice(&read("journal.json")).unwrap();
    let first = meta["first_seq"].as_u64().unwrap();
    // The service's own start-up creates the stream, the bucket and the object store with
    // their real settings; what it folds (nothing) is thrown away.
    drop(
        Journal::open(js, name, spec(), Durability::default())
            .await
            .unwrap(),
    );
    let stream = js
        .get_stream(guild_wire::store::journal_stream(name))
        .await
        .unwrap();
    if first > 1 {
        // An empty stream purged up to `first` starts there, as the trimmed one did.
        stream.purge().sequence(first).await.unwrap();
    }
    let entries = read("entries.jsonl");
    let subject = guild_wire::store::journal_subject(name);
    for (i, line) in entries
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let ack = js
            .publish(subject.clone(), line.to_vec().into())
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(
            ack.sequence,
            first + i as u64,
            "{name}: entry {i} at its sequence"
        );
    }
    let pointer = read("snapshot-pointer.json");
    let object: serde_json::Value = serde_json::from_slice(&pointer).unwrap();
    let object = object["object"].as_str().unwrap();
    js.get_object_store(guild_wire::store::snapshot_bucket(name))
        .await
        .unwrap()
        .put(object, &mut read("snapshot.bin").as_slice())
        .await
        .unwrap();
    js.get_key_value(guild_wire::store::journal_bucket(name))
        .await
        .unwrap()
        .put("snapshot", pointer.into())
        .await
        .unwrap();
    let journal = Journal::open(js, name, spec(), Durability::default())
        .await
        .unwrap();
    assert!(
        journal.health().lost().is_empty(),
        "{name}: nothing reported lost: {:?}",
        journal.health().lost()
    );
    let records = spec().records;
    folded(&journal, records)
}

/// Writes the fixture: a small realistic run through the real services (agents, a budget,
/// messages, a question decided, missions with a dependency run to completion), a snapshot
/// of each journal half-way, more changes after it, then each journal exported as
/// JetStream holds it with the state a fresh instance folds it into.
async fn bless() {
    let server = NatsServer::start();
    let (services, team) = common::start_in_process(&server).await;
    let id = |s: &str| AgentId::new(s).unwrap();
    let m = |s: &str| MissionId::new(s).unwrap();
    let guild = team.operator();

    // Before the snapshot.
    let orch = team
        .spawn(SpawnRequest::new(id("orch-1"), Role::Orchestrator, 20_000))
        .await;
    team.spawn(SpawnRequest::new(id("dev-1"), Role::Developer, 5_000).parent(orch.id.clone()))
        .await;
    let dev = team.agent(&id("dev-1"));
    dev.spawner().heartbeat(None).await.unwrap();
    let r1 = ReservationId::new("r1").unwrap();
    dev.spawner()
        .reserve_tokens(&id("dev-1"), &r1, 1_000, None)
        .await
        .unwrap();
    dev.spawner()
        .commit_tokens(&id("dev-1"), &r1, 800)
        .await
        .unwrap();
    let missions = guild.missions();
    for (mid, phase) in [("schema", Phase::DEVELOPMENT), ("api", Phase::DEVELOPMENT)] {
        let mut nm = NewMission::new(m(mid), mid, phase);
        nm.token_budget = 2_000;
        missions.create_mission(&nm).await.unwrap();
    }
    missions
        .add_dependency(&m("api"), &m("schema"), Severity::Hard)
        .await
        .unwrap();
    guild
        .bus()
        .request(&guild_sdk::SendRequest::new(
            &id("dev-1"),
            "review the schema",
            json!({"tables": 3}),
        ))
        .await
        .unwrap();
    let question = dev
        .bus()
        .ask_question(&guild_sdk::AskQuestion::new(
            "more tokens for tests?",
            json!({"requested": 3000}),
            true,
        ))
        .await
        .unwrap();

    let js = jetstream::new(server.connect_admin().await);
    snapshot_now(&js, Service::Spawner, registry).await;
    snapshot_now(&js, Service::Mission, board).await;
    snapshot_now(&js, Service::Bus, office).await;

    // After it: the tail of each journal.
    let orch_guild = team.agent(&orch.id);
    orch_guild
        .bus()
        .record_decision(
            &question.message_id,
            "approve",
            Some("tests matter"),
            json!({"tokens": 3000}),
        )
        .await
        .unwrap();
    if let Some(d) = dev
        .bus()
        .consume(Duration::from_secs(5), &[])
        .await
        .unwrap()
    {
        dev.bus().ack(&d.delivery_id).await.unwrap();
    }
    missions
        .assign_mission(&m("schema"), Some(&id("dev-1")))
        .await
        .unwrap();
    missions
        .mark_complete(&m("schema"), json!({"tables": 3}), Some(0.9))
        .await
        .unwrap();
    team.spawn(SpawnRequest::new(id("qa-1"), Role::Qa, 2_000).parent(orch.id.clone()))
        .await;
    services.stop().await;

    let dir = fixture();
    export(&js, &dir, Service::Spawner, registry).await;
    export(&js, &dir, Service::Mission, board).await;
    export(&js, &dir, Service::Bus, office).await;
    drop(team);
}

/// Takes a snapshot of `service`'s journal now, through a second instance of the journal,
/// as the service's settle loop does when one is due.
async fn snapshot_now<S: Send + Sync + 'static, R: Record>(
    js: &jetstream::Context,
    service: Service,
    spec: fn() -> Spec<S, R>,
) {
    let every_entry = Durability {
        snapshot_every: 1,
        ..Durability::default()
    };
    let journal = Journal::open(js, journal(service), spec(), every_entry)
        .await
        .unwrap();
    assert!(
        journal.snapshot_if_due().await.unwrap().is_some(),
        "{}: a snapshot was taken",
        journal.name()
    );
}

/// Writes `service`'s journal as JetStream holds it: `journal.json` (its first and last
/// sequence), `entries.jsonl` (each message's bytes, one a line), `snapshot-pointer.json`
/// (the bucket's `snapshot` value), `snapshot.bin` (the object it names), and
/// `state.jsonl` (what a fresh instance folds it into).
async fn export<S: Send + Sync + 'static, R: Record>(
    js: &jetstream::Context,
    dir: &Path,
    service: Service,
    spec: fn() -> Spec<S, R>,
) {
    let name = journal(service);
    let dir = dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let mut stream = js
        .get_stream(guild_wire::store::journal_stream(name))
        .await
        .unwrap();
    let state = stream.info().await.unwrap().state.clone();
    let mut entries = Vec::new();
    for seq in state.first_sequence..=state.last_sequence {
        let message = stream.get_raw_message(seq).await.unwrap();
        assert!(!message.payload.contains(&b'\n'), "an entry is one line");
        entries.extend_from_slice(&message.payload);
        entries.push(b'\n');
    }
    std::fs::write(dir.join("entries.jsonl"), entries).unwrap();
    std::fs::write(
        dir.join("journal.json"),
        serde_json::to_string_pretty(&json!({
            "first_seq": state.first_sequence,
            "last_seq": state.last_sequence,
        }))
        .unwrap()
            + "\n",
    )
    .unwrap();
    let pointer = js
        .get_key_value(guild_wire::store::journal_bucket(name))
        .await
        .unwrap()
        .get("snapshot")
        .await
        .unwrap()
        .expect("a snapshot pointer");
    std::fs::write(dir.join("snapshot-pointer.json"), &pointer).unwrap();
    let object: serde_json::Value = serde_json::from_slice(&pointer).unwrap();
    let mut bytes = Vec::new();
    let mut stored = js
        .get_object_store(guild_wire::store::snapshot_bucket(name))
        .await
        .unwrap()
        .get(object["object"].as_str().unwrap())
        .await
        .unwrap();
    tokio::io::AsyncReadExt::read_to_end(&mut stored, &mut bytes)
        .await
        .unwrap();
    std::fs::write(dir.join("snapshot.bin"), &bytes).unwrap();
    let journal = Journal::follow(js, name, spec(), Durability::default())
        .await
        .unwrap();
    let records = spec().records;
    let mut state = folded(&journal, records).join("\n");
    state.push('\n');
    std::fs::write(dir.join("state.jsonl"), state).unwrap();
}
