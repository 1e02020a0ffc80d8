//! The building blocks against a real nats-server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use async_nats::jetstream;
use bytes::Bytes;
use futures_util::TryStreamExt;
use guild_domain::{Principal, Timestamp};
use guild_store::{
    AuditLog, Bucket, Durability, Error, Expect, Journal, OutboxMessage, Publisher, Spec, Write,
};
use guild_testkit::{NatsServer, eventually_async};
use guild_wire::audit::{AuditEntry, AuditKind};

fn w(key: &str, value: &str, expect: Expect) -> Write {
    Write {
        key: key.into(),
        value: Bytes::from(value.to_owned()),
        expect,
    }
}

async fn bucket(server: &NatsServer, name: &str) -> (jetstream::Context, Bucket) {
    let js = jetstream::new(server.connect_admin().await);
    let b = Bucket::open(&js, name, Durability::default())
        .await
        .unwrap();
    (js, b)
}

#[tokio::test]
async fn a_batch_commits_every_key_or_none() {
    let server = NatsServer::start();
    let (_, b) = bucket(&server, "t").await;
    let revs = b
        .commit(&[
            w("a", "1", Expect::Absent),
            w("b", "1", Expect::Absent),
            w("c", "1", Expect::Absent),
        ])
        .await
        .unwrap();
    assert_eq!(revs, vec![1, 2, 3]);
    // One stale expectation refuses the whole batch.
    let err = b
        .commit(&[
            w("a", "2", Expect::Revision(1)),
            w("b", "2", Expect::Revision(99)),
            w("c", "2", Expect::Revision(3)),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict), "{err}");
    for k in ["a", "b", "c"] {
        assert_eq!(
            b.get(k).await.unwrap().unwrap().value.as_ref(),
            b"1",
            "{k} unchanged"
        );
    }
    // Creating a key that exists conflicts, alone or in a batch.
    assert!(matches!(
        b.commit(&[w("a", "x", Expect::Absent)]).await,
        Err(Error::Conflict)
    ));
    assert!(matches!(
        b.commit(&[w("d", "x", Expect::Absent), w("a", "x", Expect::Absent)])
            .await,
        Err(Error::Conflict)
    ));
    assert!(b.get("d").await.unwrap().is_none(), "no half-made batch");
    let revs = b
        .commit(&[
            w("a", "2", Expect::Revision(1)),
            w("b", "2", Expect::Revision(2)),
        ])
        .await
        .unwrap();
    assert_eq!(revs.len(), 2);
    assert_eq!(b.get("b").await.unwrap().unwrap().revision, revs[1]);
}

#[tokio::test]
async fn compare_and_set_loses_no_update_under_contention() {
    let server = NatsServer::start();
    let (_, b) = bucket(&server, "counter").await;
    b.commit(&[w("n", "0", Expect::Absent)]).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        // Each task on its own connection, like separate service instances.
        let (_, b) = bucket(&server, "counter").await;
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                loop {
                    let cur = b.get("n").await.unwrap().unwrap();
                    let n: u64 = std::str::from_utf8(&cur.value).unwrap().parse().unwrap();
                    // Two keys in one batch: the counter and a marker, both conditional.
                    match b
                        .commit(&[
                            w("n", &(n + 1).to_string(), Expect::Revision(cur.revision)),
                            w(&format!("seen.{n}"), "x", Expect::Absent),
                        ])
                        .await
                    {
                        Ok(_) => break,
                        Err(Error::Conflict) => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(b.get("n").await.unwrap().unwrap().value.as_ref(), b"40");
    assert_eq!(b.keys_with_prefix("seen.").await.unwrap().len(), 40);
}

fn entry(id: &str) -> AuditEntry {
    AuditEntry {
        id: id.into(),
        kind: AuditKind::Spawn,
        actor: Principal::Operator,
        about: "agent-1".into(),
        mission_id: None,
        at: Timestamp(1),
        data: serde_json::json!({"id": id}),
        trace_id: None,
    }
}

#[tokio::test]
async fn the_audit_stream_denies_deletes_and_purges() {
    let server = NatsServer::start();
    let js = jetstream::new(server.connect_admin().await);
    let log = AuditLog::open(&js, Durability::default()).await.unwrap();
    log.append(&entry("e1")).await.unwrap();
    let mut stream = js.get_stream("GUILD_AUDIT").await.unwrap();
    let config = stream.info().await.unwrap().config.clone();
    assert!(config.deny_delete && config.deny_purge && !config.allow_rollup);
    assert_eq!(config.discard, jetstream::stream::DiscardPolicy::New);
    assert_eq!(config.storage, jetstream::stream::StorageType::File);
    assert!(stream.delete_message(1).await.is_err(), "delete refused");
    assert!(stream.purge().await.is_err(), "purge refused");
    assert!(log.verify().await.unwrap().ok);
}

#[tokio::test]
async fn concurrent_writers_leave_one_valid_chain() {
    let server = NatsServer::start();
    let mut writers = Vec::new();
    for w in 0..3 {
        let js = jetstream::new(server.connect_admin().await);
        let log = AuditLog::open(&js, Durability::default()).await.unwrap();
        writers.push(tokio::spawn(async move {
            for i in 0..40 {
                log.append(&entry(&format!("w{w}-{i}"))).await.unwrap();
            }
        }));
    }
    for t in writers {
        t.await.unwrap();
    }
    let js = jetstream::new(server.connect_admin().await);
    let log = AuditLog::open(&js, Durability::default()).await.unwrap();
    let report = log.verify().await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, 120);
}

#[tokio::test]
async fn a_retried_append_is_stored_once_and_the_chain_survives_a_restart() {
    let mut server = NatsServer::start();
    {
        let js = jetstream::new(server.connect_admin().await);
        let a = AuditLog::open(&js, Durability::default()).await.unwrap();
        let b = AuditLog::open(&js, Durability::default()).await.unwrap();
        let s1 = a.append(&entry("same")).await.unwrap();
        a.append(&entry("other")).await.unwrap();
        // b has never seen the head: it re-reads, and the id is recognised.
        let s2 = b.append(&entry("same")).await.unwrap();
        assert_eq!(s1, s2);
    }
    server.restart();
    let js = jetstream::new(server.connect_admin().await);
    let log = AuditLog::open(&js, Durability::default()).await.unwrap();
    log.append(&entry("after-restart")).await.unwrap();
    let report = log.verify().await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, 3);
}

/// A counter state: the sum of appended numbers, and how many.
#[derive(Default)]
struct Sum {
    total: u64,
    count: u64,
}

fn add(s: &mut Sum, n: u64) {
    s.total += n;
    s.count += 1;
}

/// A snapshot of a sum: one record per unit would be silly; the total and count as two
/// records that rebuild it (count - 1 zeros after the total).
fn records(s: &Sum) -> Vec<std::sync::Arc<u64>> {
    let zeros = (1..s.count).map(|_| std::sync::Arc::new(0));
    std::iter::once(std::sync::Arc::new(s.total))
        .chain(zeros)
        .collect()
}

fn spec() -> Spec<Sum, u64> {
    Spec::new(Sum::default, add, records)
}

async fn journal(server: &NatsServer) -> (jetstream::Context, Journal<Sum, u64>) {
    let js = jetstream::new(server.connect_admin().await);
    let j = Journal::open(&js, "test", spec(), Durability::default())
        .await
        .unwrap();
    (js, j)
}

/// Appends `n` on top of whatever the journal holds, retrying on conflicts.
async fn append_retrying(j: &Journal<Sum, u64>, n: u64) -> u64 {
    loop {
        let (seq, ()) = j.plan(|_| ());
        match j.append(seq, vec![n], vec![], vec![], 0).await {
            Ok(s) => return s,
            Err(Error::Conflict) => j.sync().await.unwrap(),
            Err(e) => panic!("{e}"),
        }
    }
}

/// Found by the fault suite (cluster mode, seed 5005): when the node holding a follower's
/// feed died, the follower's connection (to another node) stayed up, and the ordered
/// consumer noticed only after missed idle heartbeats. Meanwhile reads were answered from
/// a stale view (mission-svc refused a completion from an agent spawned a moment earlier as
/// `unknown_agent`), and a sync gave up as stalled. A reader that sees the stream hold an
/// entry its feed does not bring has the feed opened anew.
#[tokio::test]
async fn a_sync_reopens_a_feed_that_brings_nothing() {
    let server = NatsServer::start();
    let (js, a) = journal(&server).await;
    let (_, b) = journal(&server).await;
    append_retrying(&a, 1).await;
    b.sync().await.unwrap();
    // The feeds bring nothing more (as when their node died) and no error says so: their
    // consumers are paused for longer than the test, the connection stays up.
    let stream = js.get_stream("GUILD_JOURNAL_TEST").await.unwrap();
    let names: Vec<String> = stream.consumer_names().try_collect().await.unwrap();
    assert!(!names.is_empty(), "the followers' feeds are consumers");
    let until = async_nats::datetime::add_std_duration(
        async_nats::datetime::now(),
        Duration::from_secs(3600),
    )
    .unwrap();
    for n in names {
        let paused = stream.pause_consumer(&n, until).await.unwrap();
        assert!(paused.paused);
    }
    append_retrying(&a, 2).await;
    b.sync()
        .await
        .expect("the feed is opened anew instead of stalling");
    assert_eq!(b.read(|s| s.total), 3);
}

#[tokio::test]
async fn instances_appending_at_once_lose_no_update_and_agree() {
    let server = NatsServer::start();
    let (_, a) = journal(&server).await;
    let (_, b) = journal(&server).await;
    let mut tasks = Vec::new();
    for (j, base) in [(a.clone(), 0u64), (b.clone(), 1000)] {
        tasks.push(tokio::spawn(async move {
            for i in 1..=25 {
                append_retrying(&j, base + i).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let want = (1..=25).sum::<u64>() + (1001..=1025).sum::<u64>();
    for j in [&a, &b] {
        j.sync().await.unwrap();
        assert_eq!(j.read(|s| (s.total, s.count)), (want, 50));
    }
    // A stale plan is refused.
    assert!(matches!(
        a.append(1, vec![5], vec![], vec![], 0).await,
        Err(Error::Conflict)
    ));
}

#[tokio::test]
async fn a_journal_replays_after_a_server_restart_and_keeps_going() {
    let mut server = NatsServer::start_with(guild_testkit::ServerOptions {
        sync_always: true,
        ..Default::default()
    });
    {
        let (_, j) = journal(&server).await;
        for n in 1..=10 {
            append_retrying(&j, n).await;
        }
    }
    server.restart();
    let (_, j) = eventually_async("the journal reopens", Duration::from_secs(10), || {
        let server = &server;
        async move {
            let js = jetstream::new(server.connect_admin().await);
            Journal::open(&js, "test", spec(), Durability::default())
                .await
                .ok()
                .map(|j| (js, j))
        }
    })
    .await;
    assert_eq!(j.read(|s| (s.total, s.count)), (55, 10));
    append_retrying(&j, 45).await;
    assert_eq!(j.read(|s| s.total), 100);
}

#[tokio::test]
async fn an_unreadable_journal_entry_stops_the_follower_loudly_instead_of_being_skipped() {
    let server = NatsServer::start();
    let (js, writer) = journal(&server).await;
    let (_, reader) = journal(&server).await;
    append_retrying(&writer, 5).await;
    // Someone (a broken writer, a restored backup) put bytes that are no entry.
    let bad = js
        .publish(
            guild_wire::store::journal_subject("test"),
            Bytes::from_static(b"{not an entry"),
        )
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence;
    // An entry after it must not be folded over the hole.
    writer.append(bad, vec![7], vec![], vec![], 0).await.ok();
    let failed = eventually_async("the reader stops", Duration::from_secs(10), || async {
        reader.failure()
    })
    .await;
    assert!(
        matches!(&failed, Error::Corrupt { reason, .. } if reason.contains(&format!("entry {bad}"))),
        "the failure names the entry: {failed}"
    );
    assert!(
        matches!(reader.sync().await, Err(Error::Corrupt { .. })),
        "readers get the error"
    );
    assert!(
        matches!(
            reader
                .append(reader.applied(), vec![1], vec![], vec![], 0)
                .await,
            Err(Error::Corrupt { .. })
        ),
        "writes are refused"
    );
    assert_eq!(
        reader.read(|s| (s.total, s.count)),
        (5, 1),
        "the state stops before the entry"
    );
    assert_eq!(
        reader.applied(),
        bad - 1,
        "its sequence is not counted as applied"
    );
    assert!(guild_telemetry::metrics::errors_counted("journal_entry_unreadable") >= 1);
    assert_eq!(
        reader.health().lost(),
        vec![guild_store::Lost::Journal {
            journal: "test".into(),
            from: bad,
            to: bad
        }],
        "the journal reports itself degraded"
    );
}

/// The audit log, the events stream and a publisher to both, on `server`.
async fn publishing(server: &NatsServer) -> (jetstream::Context, AuditLog, Publisher) {
    let js = jetstream::new(server.connect_admin().await);
    let audit = AuditLog::open(&js, Durability::default()).await.unwrap();
    guild_store::provision::events_stream(&js, Durability::default())
        .await
        .unwrap();
    let publisher = Publisher::new(js.clone(), audit.clone());
    (js, audit, publisher)
}

fn event(id: &str) -> OutboxMessage {
    OutboxMessage {
        subject: format!("guild.evt.spawner.spawned.{id}"),
        payload: serde_json::json!({"event": "spawned"}),
        id: id.into(),
        headers: vec![],
    }
}

#[tokio::test]
async fn a_dead_writers_entry_is_published_once_by_another_instance() {
    let server = NatsServer::start();
    let (js, audit, publisher) = publishing(&server).await;
    {
        // Writer A appends and "dies" before publishing.
        let (_, a) = journal(&server).await;
        a.append(0, vec![1], vec![event("ev-1")], vec![entry("au-1")], 1_000)
            .await
            .unwrap();
    }
    let (_, b) = journal(&server).await;
    assert_eq!(
        b.settle(&publisher, 1_500, Duration::from_secs(5))
            .await
            .unwrap(),
        0,
        "not late yet"
    );
    assert_eq!(
        b.settle(&publisher, 10_000, Duration::from_secs(5))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        b.settle(&publisher, 20_000, Duration::from_secs(5))
            .await
            .unwrap(),
        0,
        "the cursor moved past it"
    );
    // B's own entries are published by B and its cursor moves.
    let seq = b
        .append(1, vec![2], vec![event("ev-2")], vec![entry("au-2")], 20_000)
        .await
        .unwrap();
    let seqs = b.publish(seq, &publisher).await.unwrap();
    assert_eq!(seqs.len(), 1);
    b.settle(&publisher, 21_000, Duration::from_secs(5))
        .await
        .unwrap();
    // A third instance replaying everything finds nothing left to publish.
    let (_, c) = journal(&server).await;
    assert_eq!(
        c.settle(&publisher, 99_000, Duration::from_secs(5))
            .await
            .unwrap(),
        0
    );
    let mut events = js.get_stream("GUILD_EVENTS").await.unwrap();
    assert_eq!(events.info().await.unwrap().state.messages, 2);
    let report = audit.verify().await.unwrap();
    assert_eq!((report.ok, report.records), (true, 2));
}

/// Found by the fault suite (cluster mode, `just chaos-ci`): a sweep stopped at the first
/// late entry the streams refused, so every entry after it, of that writer and of the
/// writers sorted after it, stayed unpublished for as long as the refusal lasted.
#[tokio::test]
async fn an_entry_the_streams_refuse_does_not_hold_back_the_late_entries_after_it() {
    let server = NatsServer::start();
    let (js, _audit, publisher) = publishing(&server).await;
    let refused = OutboxMessage {
        // No stream captures it: every publish of it fails.
        subject: "guild.unstored.x".into(),
        payload: serde_json::json!({}),
        id: "ev-refused".into(),
        headers: vec![],
    };
    {
        let (_, a) = journal(&server).await;
        a.append(0, vec![1], vec![refused], vec![], 1_000)
            .await
            .unwrap();
        a.append(1, vec![2], vec![event("ev-after")], vec![], 1_000)
            .await
            .unwrap();
    }
    let (_, b) = journal(&server).await;
    let grace = Duration::from_secs(5);
    assert!(
        b.settle(&publisher, 10_000, grace).await.is_err(),
        "the refusal is answered"
    );
    let mut events = js.get_stream("GUILD_EVENTS").await.unwrap();
    assert_eq!(
        events.info().await.unwrap().state.messages,
        1,
        "the entry after the refused one is published all the same"
    );
    // The cursor stays before the refused entry: the next sweep tries it again, and the
    // one after it is not stored twice.
    assert!(b.settle(&publisher, 20_000, grace).await.is_err());
    assert_eq!(events.info().await.unwrap().state.messages, 1);
}

fn snapshotting(every: u64) -> Durability {
    Durability {
        snapshot_every: every,
        ..Durability::default()
    }
}

async fn journal_with(server: &NatsServer, d: Durability) -> Journal<Sum, u64> {
    let js = jetstream::new(server.connect_admin().await);
    Journal::open(&js, "test", spec(), d).await.unwrap()
}

async fn first_sequence(js: &jetstream::Context) -> u64 {
    let mut s = js.get_stream("GUILD_JOURNAL_TEST").await.unwrap();
    s.info().await.unwrap().state.first_sequence
}

#[tokio::test]
async fn a_snapshot_trims_the_journal_and_a_new_instance_starts_from_it() {
    let server = NatsServer::start();
    let js = jetstream::new(server.connect_admin().await);
    let audit = AuditLog::open(&js, Durability::default()).await.unwrap();
    let publisher = Publisher::new(js.clone(), audit);
    let d = snapshotting(20);
    let a = journal_with(&server, d).await;
    for n in 1..=15 {
        append_retrying(&a, n).await;
    }
    assert_eq!(a.snapshot_if_due().await.unwrap(), None, "not due yet");
    for n in 16..=50 {
        append_retrying(&a, n).await;
    }
    a.settle(&publisher, 0, Duration::from_secs(5))
        .await
        .unwrap();
    // Trimmed up to the snapshot, less a margin of a tenth of the interval.
    assert_eq!(first_sequence(&js).await, 48);

    let b = journal_with(&server, d).await;
    assert_eq!(b.read(|s| (s.total, s.count)), ((1..=50).sum(), 50));
    append_retrying(&b, 1000).await;
    a.sync().await.unwrap();
    assert_eq!(a.read(|s| s.total), b.read(|s| s.total));

    // The next snapshot replaces the first one.
    for n in 1..=20 {
        append_retrying(&b, n).await;
    }
    assert_eq!(b.snapshot_if_due().await.unwrap(), Some(71));
    assert_eq!(first_sequence(&js).await, 69);
    let c = journal_with(&server, d).await;
    assert_eq!(c.read(|s| s.count), 71);
    let objects = js.get_object_store("guild_test_snapshots").await.unwrap();
    let old = objects.info("state-50").await;
    assert!(old.is_ok_and(|i| i.deleted), "old snapshot deleted");
    assert!(!objects.info("state-71").await.unwrap().deleted);
    let pointer = js.get_key_value("guild_test_journal").await.unwrap();
    let pointer = pointer.get("snapshot").await.unwrap().unwrap();
    let pointer: serde_json::Value = serde_json::from_slice(&pointer).unwrap();
    assert_eq!(pointer["encoding"], "json_lz4", "stored compressed");
}

#[tokio::test]
async fn a_snapshot_stored_before_compression_still_loads() {
    let server = NatsServer::start();
    let js = jetstream::new(server.connect_admin().await);
    let a = journal_with(&server, snapshotting(1_000)).await;
    for n in 1..=5 {
        append_retrying(&a, n).await;
    }
    // A plain JSON snapshot at sequence 5 whose total differs from the journal's, so the
    // state shows which one was read.
    let objects = js.get_object_store("guild_test_snapshots").await.unwrap();
    objects
        .put("state-5", &mut b"[1000,0,0,0,0]".as_slice())
        .await
        .unwrap();
    let meta = js.get_key_value("guild_test_journal").await.unwrap();
    meta.put("snapshot", r#"{"seq":5,"object":"state-5"}"#.into())
        .await
        .unwrap();
    append_retrying(&a, 6).await;

    let b = journal_with(&server, snapshotting(1_000)).await;
    assert_eq!(b.read(|s| (s.total, s.count)), (1006, 6));
}

#[tokio::test]
async fn an_entry_left_unpublished_before_a_snapshot_is_still_published() {
    let server = NatsServer::start();
    let (js, _, publisher) = publishing(&server).await;
    let d = snapshotting(20);
    {
        // A appends an entry with an event and dies before publishing it.
        let a = journal_with(&server, d).await;
        a.append(0, vec![1], vec![event("ev-1")], vec![], 1_000)
            .await
            .unwrap();
    }
    {
        // B snapshots past it before its grace is over, then dies too.
        let b = journal_with(&server, d).await;
        for n in 2..=30 {
            append_retrying(&b, n).await;
        }
        b.settle(&publisher, 1_500, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(b.snapshot_if_due().await.unwrap(), None, "B snapshotted");
        assert_eq!(
            first_sequence(&js).await,
            1,
            "not trimmed past the pending entry"
        );
    }
    // C starts from the snapshot and still publishes A's entry.
    let c = journal_with(&server, d).await;
    assert_eq!(c.read(|s| s.count), 30);
    let published = eventually_async("C adopts the entry", Duration::from_secs(5), || {
        let (c, publisher) = (&c, &publisher);
        async move {
            let n = c
                .settle(publisher, 10_000, Duration::from_secs(5))
                .await
                .unwrap();
            (n > 0).then_some(n)
        }
    })
    .await;
    assert_eq!(published, 1);
    let mut events = js.get_stream("GUILD_EVENTS").await.unwrap();
    assert_eq!(events.info().await.unwrap().state.messages, 1);
}

#[tokio::test]
async fn a_writers_own_unpublished_entry_is_published_by_its_sweep_once() {
    let server = NatsServer::start();
    let (js, _, publisher) = publishing(&server).await;
    let (_, a) = journal(&server).await;
    // Its publishing failed (never called); the writer lives on.
    a.append(0, vec![1], vec![event("ev-1")], vec![], 1_000)
        .await
        .unwrap();
    let grace = Duration::from_secs(5);
    assert_eq!(
        a.settle(&publisher, 1_500, grace).await.unwrap(),
        0,
        "not late yet"
    );
    assert_eq!(a.settle(&publisher, 10_000, grace).await.unwrap(), 1);
    // Published in the background: stored once the acknowledgement comes.
    let seq = a
        .append(1, vec![2], vec![event("ev-2")], vec![], 10_000)
        .await
        .unwrap();
    assert!(
        a.publish(seq, &publisher).await.unwrap().is_empty(),
        "no audit entries"
    );
    let a = &a;
    eventually_async(
        "the background publishing is confirmed",
        Duration::from_secs(5),
        || async { (a.unpublished() == 0).then_some(()) },
    )
    .await;
    let stored = || async {
        let mut events = js.get_stream("GUILD_EVENTS").await.ok()?;
        Some(events.info().await.ok()?.state.messages)
    };
    assert_eq!(stored().await, Some(2));
    for now in [20_000, 30_000] {
        assert_eq!(
            a.settle(&publisher, now, grace).await.unwrap(),
            0,
            "published once"
        );
    }
    // An entry whose publishing failed, published by another instance that took this
    // writer for dead: its sweep finds its cursor moved and publishes nothing more.
    let (_, b) = journal(&server).await;
    a.append(2, vec![3], vec![event("ev-3")], vec![], 40_000)
        .await
        .unwrap();
    assert_eq!(a.unpublished(), 1);
    let b = &b;
    eventually_async("b has the entry", Duration::from_secs(5), || async {
        (b.read(|s| s.count) == 3).then_some(())
    })
    .await;
    assert_eq!(b.settle(&publisher, 50_000, grace).await.unwrap(), 1);
    assert_eq!(a.settle(&publisher, 50_000, grace).await.unwrap(), 0);
    assert_eq!(a.unpublished(), 0);
    // A new instance replaying everything finds nothing left to publish.
    let (_, c) = journal(&server).await;
    assert_eq!(c.settle(&publisher, 99_000, grace).await.unwrap(), 0);
    assert_eq!(stored().await, Some(3));
}
