//! What only the operator may do, tried by an agent two ways: on the operator's subject
//! (the broker refuses the publish), and on the agent's own subject, where the service
//! answers with its typed refusal and writes nothing.

use guild_domain::agent::{Role, SpawnRequest};
use guild_sdk::ErrorKind;
use guild_wire::ErrorCode;
use guild_wire::api::Recover;
use guild_wire::subject::Service;

use crate::broker::{Guild, id};

#[tokio::test]
async fn an_agent_cannot_call_recover_on_the_operators_subject() {
    let g = Guild::start().await;
    let js = g.admin_js().await;
    let raw = g.raw_a().await;
    let recovers = [
        ("guild-spawner", "guild.spawner.v1.recover.operator"),
        ("guild-bus", "guild.bus.v1.recover.operator"),
        ("guild-mission", "guild.mission.v1.recover.operator"),
    ];
    let mut counts = Vec::new();
    for (micro, _) in recovers {
        counts.push(g.stats_count(micro, "recover").await);
    }
    let marks = g.marks().await;
    let body = serde_json::to_vec(&Recover { accept_loss: true }).unwrap();
    for (_, subject) in recovers {
        raw.publish_refused(subject, body.clone()).await;
    }
    for ((micro, _), before) in recovers.iter().zip(counts) {
        assert_eq!(g.stats_count(micro, "recover").await, before, "{micro}");
    }
    marks.assert_unchanged(&js).await;
    g.stop().await;
}

#[tokio::test]
async fn a_root_spawn_by_an_agent_is_refused_by_the_spawner_and_writes_nothing() {
    let g = Guild::start().await;
    let js = g.admin_js().await;
    let pool = g.operator().spawner().get_stats().await.unwrap().tokens;
    let marks = g.marks().await;
    let spawns = g.stats_count("guild-spawner", "spawn").await;
    // No parent: carved from the global pool, which only the operator may do.
    let e = g
        .sdk("a")
        .spawner()
        .spawn(SpawnRequest::new(id("rogue"), Role::Orchestrator, 50_000))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected(ErrorCode::Forbidden), "{e}");
    assert_eq!(e.rule(), Some("root_spawn_requires_operator"), "{e}");
    // On the wire: `Nats-Service-Error-Code: 403`, the rule in the body.
    let body = SpawnRequest::new(id("rogue"), Role::Orchestrator, 50_000);
    let reply = g
        .sdk("a")
        .client()
        .request(
            "guild.spawner.v1.spawn.a",
            serde_json::to_vec(&body).unwrap().into(),
        )
        .await
        .unwrap();
    let code = reply
        .headers
        .as_ref()
        .and_then(|h| h.get(guild_wire::header::SERVICE_ERROR_CODE))
        .map(|v| v.as_str().to_owned());
    assert_eq!(code.as_deref(), Some("403"));
    let v: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(v["error"]["rule"], "root_spawn_requires_operator", "{v}");
    // Both reached the spawner (this is Guild's refusal, not the broker's) ...
    assert_eq!(g.stats_count("guild-spawner", "spawn").await, spawns + 2);
    // ... which wrote nothing.
    marks.assert_unchanged(&js).await;
    let e = g.operator().spawner().get(&id("rogue")).await.unwrap_err();
    assert_eq!(e.rule(), Some("unknown_agent"));
    let after = g.operator().spawner().get_stats().await.unwrap().tokens;
    assert_eq!(
        serde_json::to_value(after).unwrap(),
        serde_json::to_value(pool).unwrap()
    );
    g.stop().await;
}

#[tokio::test]
async fn recover_by_an_agent_is_refused_by_each_service_and_writes_nothing() {
    let g = Guild::start().await;
    let js = g.admin_js().await;
    let marks = g.marks().await;
    for service in Service::ALL {
        let e = g.sdk("a").recover(service).await.unwrap_err();
        assert_eq!(
            e.kind(),
            ErrorKind::Rejected(ErrorCode::Forbidden),
            "{service:?}: {e}"
        );
        assert_eq!(e.rule(), Some("forbidden_action"), "{e}");
    }
    marks.assert_unchanged(&js).await;
    g.stop().await;
}
