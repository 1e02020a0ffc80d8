//! The quotas an agent's credentials carry besides their permissions.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use guild_domain::AgentId;
use guild_domain::agent::{Role, SpawnRequest};
use guild_testkit::{NatsServer, eventually_async};

/// One more connection than the limit: the newest is closed by the custodian, the others
/// keep working, and closing one frees its place.
#[tokio::test]
async fn connections_past_an_agents_limit_are_closed() {
    let server = NatsServer::start();
    let (services, team) = crate::common::start_in_process(&server).await;
    let spawned = team
        .spawn(SpawnRequest::new(
            AgentId::new("busy").unwrap(),
            Role::Developer,
            1_000,
        ))
        .await;
    let creds = spawned.credentials.clone().unwrap().creds.unwrap();
    let limit = guild_auth::claims::DEFAULT_AGENT_CONNECTIONS as usize;
    // Team::spawn opened the agent's first connection; open the rest up to the limit.
    let connect = |disconnects: Arc<AtomicUsize>| {
        let creds = creds.clone();
        let url = server.url();
        async move {
            async_nats::ConnectOptions::with_credentials(&creds)
                .unwrap()
                .custom_inbox_prefix("_INBOX.agent.busy")
                .max_reconnects(Some(1))
                .event_callback(move |event| {
                    let disconnects = disconnects.clone();
                    async move {
                        if matches!(event, async_nats::Event::Disconnected) {
                            disconnects.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
                .connect(url)
                .await
                .unwrap()
        }
    };
    let kept = Arc::new(AtomicUsize::new(0));
    let mut within = Vec::new();
    for _ in 1..limit {
        within.push(connect(kept.clone()).await);
    }
    let past = Arc::new(AtomicUsize::new(0));
    let newest = connect(past.clone()).await;
    eventually_async(
        "the connection past the limit is closed",
        Duration::from_secs(10),
        || async { (past.load(Ordering::SeqCst) > 0).then_some(()) },
    )
    .await;
    // The ones within the limit were left alone and still work.
    assert_eq!(kept.load(Ordering::SeqCst), 0);
    for c in &within {
        c.flush().await.unwrap();
    }
    // After one within the limit closes, a new connection stays: the next one past the
    // limit is closed and it is not (the custodian handles connects in order, so once
    // the probe was closed the replacement's turn has come and gone).
    drop(within.pop());
    drop(newest);
    let replacement = eventually_async(
        "a connection within the limit again stays open",
        Duration::from_secs(20),
        || async {
            let stayed = Arc::new(AtomicUsize::new(0));
            let replacement = connect(stayed.clone()).await;
            let probed = Arc::new(AtomicUsize::new(0));
            let _probe = connect(probed.clone()).await;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while probed.load(Ordering::SeqCst) == 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (probed.load(Ordering::SeqCst) > 0 && stayed.load(Ordering::SeqCst) == 0)
                .then_some(replacement)
        },
    )
    .await;
    replacement.flush().await.unwrap();
    services.stop().await;
}
