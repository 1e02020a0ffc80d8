//! The lost-state rule (ARCHITECTURE.md, "Lost state"), with the spawner as the service
//! that lost something: a purged journal and a deleted audit stream are each reported,
//! not papered over. The service starts, serves reads, refuses writes with `state_lost`,
//! says `degraded` in `$SRV.INFO`, announces the loss once, and resumes only when the
//! operator accepts it, which is audited.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use guild_domain::agent::Role;
use guild_domain::{Principal, Service};
use guild_sdk::ErrorKind;
use guild_testkit::{NatsServer, Team, eventually_async};
use guild_wire::ErrorCode;
use guild_wire::audit::{AuditKind, AuditRecord};
use guild_wire::store::{AUDIT_STREAM, Lost};

/// Every instance's `$SRV.INFO` metadata `state` (`ok` or `degraded`).
async fn states(server: &NatsServer) -> Vec<String> {
    let client = server.connect_admin().await;
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(inbox.clone()).await.unwrap();
    client
        .publish_with_reply("$SRV.INFO.guild-spawner", inbox, "".into())
        .await
        .unwrap();
    client.flush().await.unwrap();
    let mut states = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(400);
    while let Ok(Some(m)) = tokio::time::timeout_at(deadline, replies.next()).await {
        let info: async_nats::service::Info = serde_json::from_slice(&m.payload).unwrap();
        states.push(info.metadata.get("state").cloned().unwrap_or_default());
    }
    states.sort();
    states
}

async fn wait_for_states(server: &NatsServer, want: &[&str]) {
    eventually_async(
        &format!("the spawner instances report {want:?}"),
        Duration::from_secs(10),
        || async { (states(server).await == want).then_some(()) },
    )
    .await;
}

/// A spawn refused because state is lost: 503 with the rule `state_lost`.
async fn assert_writes_refused(team: &Team, name: &str) {
    let e = team
        .try_spawn(root(name, Role::Developer, 100))
        .await
        .expect_err("a write while state is lost");
    assert_eq!(e.kind(), ErrorKind::Rejected(ErrorCode::Unavailable), "{e}");
    assert_eq!(e.rule(), Some("state_lost"), "{e}");
}

fn record(r: &guild_sdk::audit::Exported) -> AuditRecord {
    serde_json::from_str(&r.record).unwrap()
}

async fn audit_kinds(team: &Team) -> Vec<AuditKind> {
    guild_sdk::audit::export(team.operator())
        .await
        .unwrap()
        .iter()
        .map(|r| record(r).entry.kind)
        .collect()
}

#[tokio::test]
async fn a_purged_journal_degrades_the_service_until_the_operator_accepts_the_loss() {
    let (server, instance, team) = setup(6, 100_000).await;
    team.spawn(root("lead", Role::Orchestrator, 5_000)).await;
    team.spawn(root("dev", Role::Developer, 1_000).parent(id("lead")))
        .await;
    instance.stop().await;

    // Someone with the keys purges the journal; no snapshot covers what it held.
    let admin = server.connect_admin().await;
    let js = async_nats::jetstream::new(admin.clone());
    let mut lost_events = admin
        .subscribe("guild.evt.spawner.state_lost.>")
        .await
        .unwrap();
    js.get_stream("GUILD_JOURNAL_SPAWNER")
        .await
        .unwrap()
        .purge()
        .await
        .unwrap();
    let purged_at = journal_sequence(&server).await;

    // Two instances come up on it: both start, both say degraded.
    let a = Instance::start(&server, config(6, 100_000)).await;
    let b = Instance::start(&server, config(6, 100_000)).await;
    wait_for_instances(team.operator(), 2).await;
    wait_for_states(&server, &["degraded", "degraded"]).await;

    // Reads are served (wait_for_instances called get_stats); writes are refused and
    // write nothing, not even the pool the journal no longer has.
    assert_writes_refused(&team, "newcomer").await;
    assert_eq!(journal_sequence(&server).await, purged_at);

    // The loss is announced, once per loss whichever instance saw it (the event id).
    let event = tokio::time::timeout(Duration::from_secs(10), lost_events.next())
        .await
        .expect("a state_lost event")
        .unwrap();
    let event: serde_json::Value = serde_json::from_slice(&event.payload).unwrap();
    assert_eq!(event["service"], "spawner");
    assert_eq!(event["lost"]["what"], "journal");

    // An agent may not accept it, and the operator must say so in as many words.
    let lead = team.agent(&id("lead"));
    assert!(lead.recover(Service::Spawner).await.is_err());
    let refused = team
        .operator()
        .client()
        .request(
            guild_wire::subject::request(Service::Spawner, "recover", &Principal::Operator),
            "{}".into(),
        )
        .await
        .unwrap();
    let refused: serde_json::Value = serde_json::from_slice(&refused.payload).unwrap();
    assert_eq!(refused["error"]["rule"], "loss_not_accepted", "{refused}");
    assert_eq!(states(&server).await, ["degraded", "degraded"]);

    // The operator accepts it: both instances resume (one heard it, the other notices).
    let recovered = team.operator().recover(Service::Spawner).await.unwrap();
    assert!(
        matches!(&recovered.lost[..], [Lost::Journal { journal, from: 1, to }]
            if journal == "spawner" && *to == purged_at),
        "{recovered:?}"
    );
    wait_for_states(&server, &["ok", "ok"]).await;
    assert!(audit_kinds(&team).await.contains(&AuditKind::Recovery));

    // Writes resume, with the pool at its configured size again.
    team.spawn(root("newcomer", Role::Developer, 100)).await;
    let stats = team.operator().spawner().get_stats().await.unwrap();
    assert_eq!(stats.tokens.pool_total, 100_000, "{stats:?}");

    // Accepted is accepted: a restart does not report it again.
    a.stop().await;
    b.stop().await;
    let c = Instance::start(&server, config(6, 100_000)).await;
    wait_for_instances(team.operator(), 1).await;
    wait_for_states(&server, &["ok"]).await;
    c.stop().await;
}

/// Waits until the spawner's journal records how far it saw the audit log reach (the
/// settle loop's upkeep); returns the log's last sequence.
async fn audit_head_recorded(js: &async_nats::jetstream::Context) -> u64 {
    let appended = js
        .get_stream(AUDIT_STREAM)
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap()
        .state
        .last_sequence;
    assert!(appended > 0);
    let meta = js
        .get_key_value(guild_wire::store::journal_bucket("spawner"))
        .await
        .unwrap();
    eventually_async(
        "the journal records the audit head",
        Duration::from_secs(10),
        || async {
            let head = meta.get("audit.head").await.ok()??;
            (String::from_utf8_lossy(&head).parse::<u64>().ok()? >= appended).then_some(())
        },
    )
    .await;
    appended
}

#[tokio::test]
async fn a_deleted_audit_stream_is_a_loss_not_a_fresh_chain() {
    let (server, instance, team) = setup(6, 100_000).await;
    team.spawn(root("lead", Role::Orchestrator, 5_000)).await;
    let js = async_nats::jetstream::new(server.connect_admin().await);
    let appended = audit_head_recorded(&js).await;
    instance.stop().await;

    js.delete_stream(AUDIT_STREAM).await.unwrap();
    let instance = Instance::start(&server, config(6, 100_000)).await;
    wait_for_instances(team.operator(), 1).await;
    wait_for_states(&server, &["degraded"]).await;
    // Not recreated behind the operator's back, and no write goes through.
    assert!(js.get_stream(AUDIT_STREAM).await.is_err());
    assert_writes_refused(&team, "dev").await;
    assert!(js.get_stream(AUDIT_STREAM).await.is_err());

    let recovered = team.operator().recover(Service::Spawner).await.unwrap();
    assert!(
        matches!(&recovered.lost[..], [Lost::Audit { from: 1, to }] if *to >= appended),
        "{recovered:?}"
    );
    wait_for_states(&server, &["ok"]).await;
    // A new chain, which begins with the operator's acceptance and verifies.
    let records = guild_sdk::audit::export(team.operator()).await.unwrap();
    assert_eq!(record(&records[0]).entry.kind, AuditKind::Recovery);
    assert_eq!(record(&records[0]).entry.actor, Principal::Operator);
    let keys = guild_sdk::audit::keys(team.operator()).await.unwrap();
    let report = guild_sdk::audit::verify(&records, Some(&keys));
    assert!(report.ok, "{report:?}");
    team.spawn(root("dev", Role::Developer, 100)).await;

    // The new chain is shorter than the old head: a restart must not call that a loss.
    instance.stop().await;
    let instance = Instance::start(&server, config(6, 100_000)).await;
    wait_for_instances(team.operator(), 1).await;
    wait_for_states(&server, &["ok"]).await;
    instance.stop().await;
}

/// A log shorter than the journal recorded (deleted and made again behind Guild's back)
/// stays a loss until the operator accepts it. Before, the settle loop's upkeep took the
/// stream answering again for a recovery, and writes resumed on the next sweep.
#[tokio::test]
async fn a_shorter_audit_log_stays_a_loss_until_the_operator_accepts_it() {
    let (server, instance, team) = setup(6, 100_000).await;
    team.spawn(root("lead", Role::Orchestrator, 5_000)).await;
    let js = async_nats::jetstream::new(server.connect_admin().await);
    audit_head_recorded(&js).await;
    instance.stop().await;

    js.delete_stream(AUDIT_STREAM).await.unwrap();
    guild_store::provision::audit_stream(&js, guild_store::Durability::default())
        .await
        .unwrap();
    let instance = Instance::start(&server, config(6, 100_000)).await;
    wait_for_instances(team.operator(), 1).await;
    wait_for_states(&server, &["degraded"]).await;
    // Many sweeps later (every few hundred milliseconds), still a loss.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(states(&server).await, ["degraded"]);
    assert_writes_refused(&team, "dev").await;

    team.operator().recover(Service::Spawner).await.unwrap();
    wait_for_states(&server, &["ok"]).await;
    team.spawn(root("dev", Role::Developer, 100)).await;
    instance.stop().await;
}
