//! Which credentials the broker lets in: none, garbage, another Guild's, a terminated
//! agent's (also after the server restarts), replaced ones; and that no credential ever
//! lands in a stream.

use std::time::Duration;

use async_nats::ConnectErrorKind;
use futures_util::StreamExt;
use guild_auth::Credentials;
use guild_auth::claims::AgentLimits;
use guild_domain::Principal;
use guild_domain::agent::{PublicKey, Role, SpawnRequest};
use guild_sdk::ErrorKind;
use guild_testkit::{NatsServer, eventually_async};
use guild_wire::ErrorCode;
use guild_wire::store;
use serde_json::json;

use crate::broker::{Guild, Raw, WITHIN, assert_connect_refused, creds_of, id, messages_after};

fn prefix(agent: &str) -> String {
    guild_wire::subject::inbox_prefix(&Principal::Agent(id(agent)))
}

/// Waits until connecting with `creds` is refused (a revocation reaches the server
/// within moments of the change that made it).
async fn eventually_refused(server: &NatsServer, creds: &str, prefix: &str) {
    eventually_async("the credentials are refused", WITHIN, || async {
        match Raw::connect(server, creds, prefix).await {
            Err(e) if e.kind() == ConnectErrorKind::AuthorizationViolation => Some(()),
            Err(e) => panic!("refused, but not as an authorization violation: {e}"),
            Ok(_) => None,
        }
    })
    .await;
}

#[tokio::test]
async fn a_connection_without_credentials_is_refused() {
    let server = NatsServer::start();
    let e = async_nats::ConnectOptions::new()
        .connect(server.url())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ConnectErrorKind::AuthorizationViolation, "{e}");
    // Nor with a user and password, or a token, the server knows nothing of.
    let e = async_nats::ConnectOptions::with_user_and_password("operator".into(), "guild".into())
        .connect(server.url())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ConnectErrorKind::AuthorizationViolation, "{e}");
    let e = async_nats::ConnectOptions::with_token("operator".into())
        .connect(server.url())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ConnectErrorKind::AuthorizationViolation, "{e}");
}

#[tokio::test]
async fn a_connection_with_garbage_credentials_is_refused() {
    let g = Guild::start().await;
    let a = Credentials::parse(&creds_of(&g.a)).unwrap();
    let b = Credentials::parse(&creds_of(&g.b)).unwrap();
    let fresh = Credentials::generate(|pk| Ok(pk.to_owned())).unwrap();
    // A's JWT with someone else's seed: the nonce is signed by the wrong key.
    let stolen_jwt = Credentials {
        jwt: a.jwt.clone(),
        seed: b.seed.clone(),
    };
    // A JWT that is no JWT.
    let garbage = Credentials {
        jwt: "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.garbage.garbage".into(),
        seed: fresh.seed.clone(),
    };
    // A's JWT with its payload altered (another name), the signature kept.
    let mut parts: Vec<String> = a.jwt.split('.').map(str::to_owned).collect();
    parts[1].replace_range(10..14, "AAAA");
    let altered = Credentials {
        jwt: parts.join("."),
        seed: a.seed.clone(),
    };
    // Credentials another Guild minted, for an agent named `a`.
    let other = guild_auth::Keys::generate()
        .issue(AgentLimits::default())
        .unwrap();
    let foreign = guild_auth::Custodian::new(other.custodian.clone(), AgentLimits::default())
        .unwrap()
        .generate_agent(&id("a"))
        .unwrap();
    let foreign_operator = other.creds_of(&Principal::Operator).unwrap().clone();
    for (what, creds, p) in [
        ("a stolen JWT", stolen_jwt, prefix("a")),
        ("a garbage JWT", garbage, prefix("a")),
        ("an altered JWT", altered, prefix("a")),
        ("another Guild's agent", foreign, prefix("a")),
        (
            "another Guild's operator",
            foreign_operator,
            "_INBOX.operator".into(),
        ),
    ] {
        match Raw::connect(&g.server, &creds.to_creds(), &p).await {
            Ok(raw) => panic!("{what}: accepted ({:?})", raw.events()),
            Err(e) => assert_eq!(
                e.kind(),
                ConnectErrorKind::AuthorizationViolation,
                "{what}: {e}"
            ),
        }
    }
    // The real ones still work.
    Raw::connect(&g.server, &a.to_creds(), &prefix("a"))
        .await
        .unwrap();
    g.stop().await;
}

#[tokio::test]
async fn a_terminated_agents_credentials_are_refused_and_its_connections_closed() {
    let g = Guild::start().await;
    let creds = creds_of(&g.a);
    let raw = g.raw_a().await;
    let sdk = g.sdk("a");
    sdk.spawner().heartbeat(None).await.unwrap();
    g.operator()
        .spawner()
        .terminate(&guild_sdk::Terminate::new(&id("a"), false))
        .await
        .unwrap();
    // The live connections are closed ...
    raw.expect_disconnected().await;
    eventually_async("A's SDK connection is closed", WITHIN, || {
        let state = sdk.client().connection_state();
        std::future::ready((state != async_nats::connection::State::Connected).then_some(()))
    })
    .await;
    // ... a new one is refused, and the SDK's reconnection too.
    eventually_refused(&g.server, &creds, &prefix("a")).await;
    assert_connect_refused(&g.server, &creds, &prefix("a")).await;
    let e = g
        .operator()
        .connect_agent(g.a.credentials.as_ref().unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transport, "{e}");
    assert!(
        sdk.client().connection_state() != async_nats::connection::State::Connected,
        "A's SDK connection came back"
    );
    // B's are untouched.
    g.sdk("b").spawner().heartbeat(None).await.unwrap();
    g.stop().await;
}

/// With the services stopped, only what the server stored (the account JWT carrying the
/// revocation, in its resolver folder) can refuse the terminated agent after a crash.
#[tokio::test]
async fn a_terminated_agents_credentials_stay_refused_after_the_server_restarts() {
    let mut g = Guild::start().await;
    let creds = creds_of(&g.a);
    g.operator()
        .spawner()
        .terminate(&guild_sdk::Terminate::new(&id("a"), false))
        .await
        .unwrap();
    eventually_refused(&g.server, &creds, &prefix("a")).await;
    g.services.take().unwrap().stop().await;
    g.server.restart();
    assert_connect_refused(&g.server, &creds, &prefix("a")).await;
    Raw::agent(&g.server, &g.b).await;
    // The services come back; it stays refused.
    let (services, team) = crate::common::start_in_process(&g.server).await;
    assert_connect_refused(&g.server, &creds, &prefix("a")).await;
    let b = team.join(&g.b).await.unwrap();
    b.spawner().heartbeat(None).await.unwrap();
    services.stop().await;
}

/// The same, with the services running through the crash: they reconnect and answer
/// again, and the terminated agent is still refused.
#[tokio::test]
async fn a_terminated_agents_credentials_stay_refused_while_the_services_reconnect() {
    let mut g = Guild::start().await;
    let creds = creds_of(&g.a);
    g.operator()
        .spawner()
        .terminate(&guild_sdk::Terminate::new(&id("a"), false))
        .await
        .unwrap();
    eventually_refused(&g.server, &creds, &prefix("a")).await;
    g.server.restart();
    assert_connect_refused(&g.server, &creds, &prefix("a")).await;
    eventually_async(
        "the services answer again",
        Duration::from_secs(30),
        || async {
            let op = g.operator();
            op.spawner().get_stats().await.ok()?;
            op.bus().get_message_stats().await.ok()?;
            op.missions().get_statistics().await.ok()
        },
    )
    .await;
    assert_connect_refused(&g.server, &creds, &prefix("a")).await;
    let b = g.team.join(&g.b).await.unwrap();
    b.spawner().heartbeat(None).await.unwrap();
    g.stop().await;
}

/// `lead` (an orchestrator) and its child `c`.
async fn with_a_child() -> (Guild, String) {
    let g = Guild::start().await;
    g.team
        .spawn(SpawnRequest::new(id("lead"), Role::Orchestrator, 5_000))
        .await;
    let c = g
        .team
        .spawn(SpawnRequest::new(id("c"), Role::Developer, 100).parent(id("lead")))
        .await;
    (g, creds_of(&c))
}

#[tokio::test]
async fn reissued_credentials_replace_the_old_ones() {
    let (g, first) = with_a_child().await;
    let live = Raw::connect(&g.server, &first, &prefix("c")).await.unwrap();
    // By the parent.
    let second = g
        .sdk("lead")
        .spawner()
        .issue_credentials(&id("c"), None)
        .await
        .unwrap();
    let second_creds = creds_of(&second);
    assert_ne!(second_creds, first);
    eventually_refused(&g.server, &first, &prefix("c")).await;
    live.expect_disconnected().await;
    let c = g.team.join(&second).await.unwrap();
    c.spawner().heartbeat(None).await.unwrap();
    // By the operator.
    let third = g
        .operator()
        .spawner()
        .issue_credentials(&id("c"), None)
        .await
        .unwrap();
    let third_creds = creds_of(&third);
    eventually_refused(&g.server, &second_creds, &prefix("c")).await;
    assert_connect_refused(&g.server, &first, &prefix("c")).await;
    let c = g.team.join(&third).await.unwrap();
    c.spawner().heartbeat(None).await.unwrap();
    // For a public key: the reply carries the JWT alone, and with the seed kept here it
    // connects; the bundle before is refused.
    let kept = Credentials::generate(|pk| Ok(pk.to_owned())).unwrap();
    let fourth = g
        .operator()
        .spawner()
        .issue_credentials(&id("c"), Some(PublicKey::new(kept.jwt.clone()).unwrap()))
        .await
        .unwrap();
    let minted = fourth.credentials.unwrap();
    assert!(minted.creds.is_none());
    let fourth_creds = Credentials {
        jwt: minted.jwt,
        seed: kept.seed,
    }
    .to_creds();
    eventually_refused(&g.server, &third_creds, &prefix("c")).await;
    Raw::connect(&g.server, &fourth_creds, &prefix("c"))
        .await
        .unwrap();
    g.stop().await;
}

#[tokio::test]
async fn an_unrelated_agent_cannot_reissue_credentials() {
    let (g, first) = with_a_child().await;
    let key = g
        .operator()
        .spawner()
        .get(&id("c"))
        .await
        .unwrap()
        .credential_key;
    let e = g
        .sdk("b")
        .spawner()
        .issue_credentials(&id("c"), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected(ErrorCode::Forbidden), "{e}");
    assert_eq!(e.rule(), Some("forbidden_action"));
    // Nor may the child re-issue its parent's, or its own.
    for (by, of) in [("c", "lead"), ("c", "c")] {
        let e = g
            .sdk(by)
            .spawner()
            .issue_credentials(&id(of), None)
            .await
            .unwrap_err();
        assert_eq!(
            e.kind(),
            ErrorKind::Rejected(ErrorCode::Forbidden),
            "{by} for {of}: {e}"
        );
    }
    // Nothing was revoked: the same key, none revoked, the credentials still let C in.
    let c = g.operator().spawner().get(&id("c")).await.unwrap();
    assert_eq!(c.credential_key, key);
    assert!(c.revoked_keys.is_empty(), "{:?}", c.revoked_keys);
    Raw::connect(&g.server, &first, &prefix("c")).await.unwrap();
    g.stop().await;
}

/// Ids are never reused: a terminated agent stays in the registry, so spawning its id
/// again is refused, and its credentials stay refused.
#[tokio::test]
async fn a_terminated_id_cannot_be_spawned_again_and_its_credentials_stay_refused() {
    let (g, first) = with_a_child().await;
    g.sdk("lead")
        .spawner()
        .terminate(&guild_sdk::Terminate::new(&id("c"), false))
        .await
        .unwrap();
    eventually_refused(&g.server, &first, &prefix("c")).await;
    for by in [g.sdk("lead"), g.operator().clone()] {
        let mut again = SpawnRequest::new(id("c"), Role::Developer, 100);
        if by.principal() != &Principal::Operator {
            again = again.parent(id("lead"));
        }
        let e = by.spawner().spawn(again).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Rejected(ErrorCode::Conflict), "{e}");
        assert_eq!(e.rule(), Some("agent_exists"));
    }
    assert_connect_refused(&g.server, &first, &prefix("c")).await;
    g.stop().await;
}

#[tokio::test]
async fn credentials_never_appear_in_guilds_streams() {
    let g = Guild::start().await;
    let op = g.operator();
    // Spawned with a public key (the reply carries the JWT only), re-issued both ways,
    // and messages in the inboxes.
    let kept = Credentials::generate(|pk| Ok(pk.to_owned())).unwrap();
    let mut req = SpawnRequest::new(id("k"), Role::Developer, 100);
    req.public_key = Some(PublicKey::new(kept.jwt.clone()).unwrap());
    let k = op.spawner().spawn(req).await.unwrap();
    let k_jwt = k.credentials.as_ref().unwrap().jwt.clone();
    assert!(k.credentials.as_ref().unwrap().creds.is_none());
    let a2 = op
        .spawner()
        .issue_credentials(&id("a"), None)
        .await
        .unwrap();
    let kept2 = Credentials::generate(|pk| Ok(pk.to_owned())).unwrap();
    let k2 = op
        .spawner()
        .issue_credentials(&id("k"), Some(PublicKey::new(kept2.jwt.clone()).unwrap()))
        .await
        .unwrap();
    op.bus()
        .request(&guild_sdk::SendRequest::new(
            &id("b"),
            "hello",
            json!({"n": 1}),
        ))
        .await
        .unwrap();
    g.sdk("b")
        .bus()
        .request(&guild_sdk::SendRequest::new(&id("k"), "hi k", json!({})))
        .await
        .unwrap();
    g.published("guild.audit.credentials.k", store::AUDIT_STREAM)
        .await;
    g.published("guild.audit.credentials.a", store::AUDIT_STREAM)
        .await;
    g.published(
        "guild.evt.spawner.credentials_issued.k",
        store::EVENTS_STREAM,
    )
    .await;
    g.published("guild.inbox.k.normal", store::INBOX_STREAM)
        .await;

    let mut secrets: Vec<(String, String)> = Vec::new();
    let mut bundle = |who: &str, creds: &str| {
        let c = Credentials::parse(creds).unwrap();
        let sig = c.jwt.rsplit('.').next().unwrap().to_owned();
        secrets.push((format!("{who}'s .creds"), creds.to_owned()));
        secrets.push((format!("{who}'s JWT"), c.jwt.clone()));
        secrets.push((format!("{who}'s JWT signature"), sig));
        secrets.push((format!("{who}'s seed"), c.seed));
    };
    bundle("a", &creds_of(&g.a));
    bundle("b", &creds_of(&g.b));
    bundle("a (re-issued)", &creds_of(&a2));
    let jwt_of = |who: &str, jwt: &str| {
        vec![
            (format!("{who}'s JWT"), jwt.to_owned()),
            (
                format!("{who}'s JWT signature"),
                jwt.rsplit('.').next().unwrap().to_owned(),
            ),
        ]
    };
    secrets.extend(jwt_of("k", &k_jwt));
    secrets.extend(jwt_of(
        "k (re-issued)",
        &k2.credentials.as_ref().unwrap().jwt,
    ));
    secrets.push(("k's seed".into(), kept.seed.clone()));
    for s in &secrets {
        assert!(s.1.len() >= 40, "{}", s.0);
    }

    // Every stream of Guild's account: journals, their buckets and snapshots, events,
    // audit, inboxes, the audit keys.
    let js = g.admin_js().await;
    let mut names = js.stream_names();
    let mut streams = Vec::new();
    while let Some(n) = names.next().await {
        streams.push(n.unwrap());
    }
    for wanted in [
        "GUILD_JOURNAL_SPAWNER",
        store::EVENTS_STREAM,
        store::AUDIT_STREAM,
        store::INBOX_STREAM,
    ] {
        assert!(streams.iter().any(|s| s == wanted), "{streams:?}");
    }
    let mut read = 0;
    for stream in &streams {
        for m in messages_after(&js, stream, 0).await {
            read += 1;
            let mut text = String::from_utf8_lossy(&m.payload).into_owned();
            for (name, values) in m.headers.iter() {
                text.push_str(name.as_ref());
                for v in values {
                    text.push_str(v.as_str());
                }
            }
            for (what, secret) in &secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "{what} is in {stream} #{} ({})",
                    m.sequence,
                    m.subject
                );
            }
        }
    }
    assert!(read > 10, "only {read} messages read");
    // The key the credentials are for is public, and is recorded.
    let k = op.spawner().get(&id("k")).await.unwrap();
    assert_eq!(
        k.credential_key.as_ref().map(|p| p.as_str()),
        Some(kept2.jwt.as_str())
    );
    g.stop().await;
}
