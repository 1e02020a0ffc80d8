//! The test kit proves itself against the real nats-server binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use futures_util::StreamExt;
use guild_testkit::{Cluster, NatsServer, ServerOptions, eventually, eventually_async};

#[tokio::test]
async fn starts_a_server_with_jetstream_on_a_free_port() {
    let a = NatsServer::start();
    let b = NatsServer::start();
    assert_ne!(a.port(), b.port(), "each test gets its own port");
    let js = jetstream::new(a.connect_admin().await);
    let info = js.query_account().await.expect("JetStream is enabled");
    assert_eq!(info.streams, 0);
}

#[tokio::test]
async fn a_published_message_survives_a_restart_on_the_same_store() {
    let mut server = NatsServer::start_with(ServerOptions {
        sync_always: true,
        ..Default::default()
    });
    let url = server.url();
    {
        let js = jetstream::new(server.connect_admin().await);
        js.create_stream(stream::Config {
            name: "S".into(),
            subjects: vec!["s.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
        js.publish("s.one", "kept".into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    server.restart();
    assert_eq!(server.url(), url, "a restart keeps the URL");
    let js = jetstream::new(server.connect_admin().await);
    let mut s = js.get_stream("S").await.unwrap();
    assert_eq!(s.info().await.unwrap().state.messages, 1);
    let msg = s.get_last_raw_message_by_subject("s.one").await.unwrap();
    assert_eq!(msg.payload.as_ref(), b"kept");
}

#[tokio::test]
async fn a_killed_server_refuses_clients_until_resumed() {
    let mut server = NatsServer::start();
    server.kill();
    assert!(
        async_nats::ConnectOptions::new()
            .connect(server.url())
            .await
            .is_err()
    );
    server.resume();
    let client = server.connect_admin().await;
    let mut sub = client.subscribe("x").await.unwrap();
    client.publish("x", "y".into()).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.payload.as_ref(), b"y");
}

#[tokio::test]
async fn eventually_waits_for_a_condition_and_returns_its_value() {
    let server = NatsServer::start();
    let client = server.connect_admin().await;
    let js = jetstream::new(client.clone());
    js.create_stream(stream::Config {
        name: "E".into(),
        subjects: vec!["e".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let publisher = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        client.publish("e", "late".into()).await.unwrap();
        client.flush().await.unwrap();
    });
    let count = guild_testkit::eventually_async("the late message", Duration::from_secs(5), || {
        let js = js.clone();
        async move {
            let mut s = js.get_stream("E").await.ok()?;
            let n = s.info().await.ok()?.state.messages;
            (n == 1).then_some(n)
        }
    })
    .await;
    assert_eq!(count, 1);
    publisher.await.unwrap();
}

#[tokio::test]
#[should_panic(expected = "timed out after")]
async fn eventually_gives_up_with_a_message() {
    eventually(
        "something that never happens",
        Duration::from_millis(30),
        || None::<()>,
    )
    .await;
}

#[tokio::test]
async fn dropping_the_server_removes_its_store() {
    let server = NatsServer::start();
    let store = server.store_dir();
    let _ = server.connect_admin().await;
    assert!(store.parent().unwrap().exists());
    drop(server);
    assert!(!store.parent().unwrap().exists());
}

#[tokio::test]
async fn three_nodes_form_a_jetstream_cluster_with_replicated_streams() {
    let cluster = Cluster::start(3, ServerOptions::default()).await;
    let js = jetstream::new(cluster.connect_admin().await);
    let mut s = js
        .create_stream(stream::Config {
            name: "R3".into(),
            subjects: vec!["r3.>".into()],
            num_replicas: 3,
            ..Default::default()
        })
        .await
        .unwrap();
    js.publish("r3.a", "replicated".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let info = s.info().await.unwrap();
    let replicas = info.cluster.as_ref().map_or(0, |c| c.replicas.len());
    assert_eq!(replicas, 2, "a leader and two replicas");
    // Every node answers for the stream.
    for node in &cluster.nodes {
        let js = jetstream::new(node.connect_admin().await);
        let mut s = js.get_stream("R3").await.unwrap();
        assert_eq!(s.info().await.unwrap().state.messages, 1);
    }
}

/// Three nodes on hosts of their own: the stream leader's host is cut off, the other two
/// elect a new leader and take writes, and the healed node catches up with them.
#[tokio::test]
async fn a_node_cut_off_from_the_others_is_replaced_as_leader_and_catches_up_when_healed() {
    let cluster = Cluster::start_on_hosts(3, ServerOptions::default()).await;
    let js = jetstream::new(cluster.connect_admin().await);
    // Until the three have formed their meta group, placement finds "no suitable peers"
    // (a loaded machine showed it): ask again, the same stream each time.
    eventually_async("the stream created", Duration::from_secs(30), || {
        let js = js.clone();
        async move {
            js.get_or_create_stream(stream::Config {
                name: "R3".into(),
                subjects: vec!["r3.>".into()],
                num_replicas: 3,
                ..Default::default()
            })
            .await
            .ok()
        }
    })
    .await;
    // A replicated stream answers only once its group has a leader: a publish right after
    // the create can meet "stream not found" (CI saw it). Wait for the leader, then write.
    let leader = eventually_async("a leader", Duration::from_secs(10), || {
        cluster.stream_leader("R3")
    })
    .await;
    eventually_async("the first write stored", Duration::from_secs(10), || {
        let js = js.clone();
        async move { js.publish("r3.a", "before".into()).await.ok()?.await.ok() }
    })
    .await;
    cluster.partition(leader);
    let moved = eventually_async(
        "another node leads the stream",
        Duration::from_secs(30),
        || async {
            let now = cluster.stream_leader("R3").await?;
            (now != leader).then_some(now)
        },
    )
    .await;
    assert_ne!(moved, leader);
    // Writes go on through the two that still see each other (a client of the cut-off
    // node would learn of it only from its missed pings).
    let js = jetstream::new(cluster.nodes[moved].connect_admin().await);
    eventually_async(
        "a write during the partition",
        Duration::from_secs(30),
        || {
            let js = js.clone();
            async move { js.publish("r3.b", "during".into()).await.ok()?.await.ok() }
        },
    )
    .await;
    cluster.heal(leader);
    let healed = jetstream::new(cluster.nodes[leader].connect_admin().await);
    eventually_async(
        "the healed node has every message",
        Duration::from_secs(30),
        || {
            let healed = healed.clone();
            async move {
                let mut s = healed.get_stream("R3").await.ok()?;
                let info = s.info().await.ok()?;
                (info.state.messages == 2).then_some(())
            }
        },
    )
    .await;
}

#[tokio::test]
async fn authentication_is_on_and_credentials_are_pinned_to_their_identity() {
    use guild_auth::{Custodian, CustodianKeys, claims::AgentLimits};
    use guild_wire::domain::{AgentId, Principal};
    let server = NatsServer::start();
    // Anonymous: refused at connect.
    let anonymous = async_nats::ConnectOptions::new()
        .max_reconnects(Some(0))
        .connect(server.url())
        .await;
    assert!(anonymous.is_err(), "an anonymous connection was accepted");
    // The operator connects and may not touch JetStream beyond reading.
    let operator = server.connect_as(&Principal::Operator).await;
    let refused = tokio::time::timeout(
        Duration::from_millis(500),
        operator.request("$JS.API.STREAM.CREATE.X", "{}".into()),
    )
    .await;
    assert!(
        !matches!(refused, Ok(Ok(_))),
        "the operator created a stream"
    );
    // An agent minted by the custodian may publish only its own requests.
    let (custodian, _) = server.custodian_files();
    let custodian = Custodian::new(
        CustodianKeys::load(&custodian).unwrap(),
        AgentLimits::default(),
    )
    .unwrap();
    let dev = AgentId::new("dev-1").unwrap();
    let creds = custodian.generate_agent(&dev).unwrap();
    let agent = async_nats::ConnectOptions::with_credentials(&creds.to_creds())
        .unwrap()
        .custom_inbox_prefix(guild_wire::subject::inbox_prefix(&Principal::Agent(dev)))
        .connect(server.url())
        .await
        .unwrap_or_else(|e| panic!("{e}: {}", server.log()));
    let admin = server.connect_admin().await;
    let mut seen = admin.subscribe("guild.>").await.unwrap();
    // A round trip, so the subscription is in place before anything is published.
    admin.request("$JS.API.INFO", "".into()).await.unwrap();
    agent
        .publish("guild.bus.v1.request.dev-2", "forged".into())
        .await
        .unwrap();
    agent
        .publish("guild.bus.v1.request.dev-1", "own".into())
        .await
        .unwrap();
    agent.flush().await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), seen.next())
        .await
        .unwrap_or_else(|_| panic!("{}", server.log()))
        .unwrap();
    assert_eq!(first.subject.as_str(), "guild.bus.v1.request.dev-1");
}
