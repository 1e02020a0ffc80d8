//! The building blocks against a real nats-server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream;
use bytes::Bytes;
use guild_domain::{Principal, Timestamp};
use guild_store::{
    AuditLog, Bucket, Change, Durability, Error, Expect, Outbox, OutboxEntry, OutboxMessage, View,
    Write,
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
    let js = jetstream::new(server.connect().await);
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

fn fold(state: &mut BTreeMap<String, String>, change: Change<'_>) {
    match change {
        Change::Put { key, value } => {
            state.insert(key.into(), String::from_utf8_lossy(value).into());
        }
        Change::Delete { key } => {
            state.remove(key);
        }
    }
}

#[tokio::test]
async fn views_follow_writes_from_any_instance_and_survive_a_server_restart() {
    let mut server = NatsServer::start();
    let (_, b1) = bucket(&server, "v").await;
    b1.commit(&[w("before", "1", Expect::Absent)])
        .await
        .unwrap();
    let v1 = View::open(b1.clone(), BTreeMap::new(), fold).await.unwrap();
    assert_eq!(
        v1.read(|s| s.get("before").cloned()),
        Some("1".into()),
        "loaded at open"
    );
    let (_, b2) = bucket(&server, "v").await;
    let v2 = View::open(b2.clone(), BTreeMap::new(), fold).await.unwrap();
    // A write through instance 2 reaches view 1; sync() is the fence.
    let writes = [w("k", "from-2", Expect::Absent)];
    let revs = b2.commit(&writes).await.unwrap();
    v2.apply_committed(&writes, &revs);
    assert_eq!(
        v2.read(|s| s.get("k").cloned()),
        Some("from-2".into()),
        "read-your-writes"
    );
    v1.sync().await.unwrap();
    assert_eq!(v1.read(|s| s.get("k").cloned()), Some("from-2".into()));
    assert_eq!(v1.expect("k"), Expect::Revision(revs[0]));
    assert_eq!(v1.expect("nope"), Expect::Absent);
    b2.delete("k").await.unwrap();
    v1.sync().await.unwrap();
    assert_eq!(v1.read(|s| s.get("k").cloned()), None);

    server.restart();
    // The change feed re-opens by itself; writes after the restart still arrive.
    let b3 = eventually_async("a client after restart", Duration::from_secs(10), || {
        let server = &server;
        async move {
            let js = jetstream::new(server.connect().await);
            Bucket::open(&js, "v", Durability::default()).await.ok()
        }
    })
    .await;
    b3.commit(&[w("after", "restart", Expect::Absent)])
        .await
        .unwrap();
    eventually_async(
        "view 1 sees the write after the restart",
        Duration::from_secs(15),
        || {
            let v1 = v1.clone();
            async move {
                let _ = v1.sync().await;
                v1.read(|s| s.get("after").cloned())
            }
        },
    )
    .await;
    assert_eq!(v1.read(|s| s.get("before").cloned()), Some("1".into()));
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
    let js = jetstream::new(server.connect().await);
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
        let js = jetstream::new(server.connect().await);
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
    let js = jetstream::new(server.connect().await);
    let log = AuditLog::open(&js, Durability::default()).await.unwrap();
    let report = log.verify().await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, 120);
}

#[tokio::test]
async fn a_retried_append_is_stored_once_and_the_chain_survives_a_restart() {
    let mut server = NatsServer::start();
    {
        let js = jetstream::new(server.connect().await);
        let a = AuditLog::open(&js, Durability::default()).await.unwrap();
        let b = AuditLog::open(&js, Durability::default()).await.unwrap();
        let s1 = a.append(&entry("same")).await.unwrap();
        a.append(&entry("other")).await.unwrap();
        // b has never seen the head: it re-reads, and the id is recognised.
        let s2 = b.append(&entry("same")).await.unwrap();
        assert_eq!(s1, s2);
    }
    server.restart();
    let js = jetstream::new(server.connect().await);
    let log = AuditLog::open(&js, Durability::default()).await.unwrap();
    log.append(&entry("after-restart")).await.unwrap();
    let report = log.verify().await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, 3);
}

#[tokio::test]
async fn the_outbox_publishes_once_even_when_the_writer_dies_before_flushing() {
    let server = NatsServer::start();
    let js = jetstream::new(server.connect().await);
    let audit = AuditLog::open(&js, Durability::default()).await.unwrap();
    guild_store::provision::events_stream(&js, Durability::default())
        .await
        .unwrap();
    let (_, b) = bucket(&server, "o").await;
    let outbox = Outbox::new(b.clone(), js.clone(), audit.clone());
    let e = OutboxEntry {
        id: "op-1".into(),
        created_at_ms: 1_000,
        events: vec![OutboxMessage {
            subject: "guild.evt.spawner.spawned.a1".into(),
            payload: serde_json::json!({"event": "spawned"}),
            id: "op-1-0".into(),
            headers: vec![],
        }],
        audit: vec![entry("op-1-audit")],
    };
    // State and outbox in one commit; the "writer" dies before flushing.
    b.commit(&[w("agent.a1", "{}", Expect::Absent), e.write()])
        .await
        .unwrap();
    assert_eq!(
        outbox.sweep(2_000, Duration::from_secs(5)).await.unwrap(),
        0,
        "young entries are the writer's"
    );
    assert_eq!(
        outbox.sweep(10_000, Duration::from_secs(5)).await.unwrap(),
        1
    );
    assert!(b.keys_with_prefix("outbox.").await.unwrap().is_empty());
    // Flushing again (a sweeper racing the writer) stores nothing new.
    outbox.flush(&e).await.unwrap();
    let mut events = js.get_stream("GUILD_EVENTS").await.unwrap();
    assert_eq!(events.info().await.unwrap().state.messages, 1);
    let report = audit.verify().await.unwrap();
    assert_eq!((report.ok, report.records), (true, 1));
}
