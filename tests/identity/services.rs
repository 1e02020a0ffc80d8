//! The services' rows of the permission table: each service's credentials are its own
//! and distinct. A service publishes on its own journal, events and audit kinds only,
//! serves only its own requests, and deletes no stream; the broker refuses the rest.

use guild_domain::{Principal, Service};
use guild_wire::store;

use crate::broker::Guild;

fn service(s: Service) -> Principal {
    Principal::Service(s)
}

#[tokio::test]
async fn a_service_never_publishes_on_another_services_journal() {
    let g = Guild::start().await;
    for (who, other) in [
        (Service::Bus, "guild.journal.spawner"),
        (Service::Mission, "guild.journal.bus"),
        (Service::Spawner, "guild.journal.mission"),
    ] {
        let raw = g.raw_as(&service(who)).await;
        let marks = g.marks().await;
        raw.publish_refused(other, br#"{"records":[]}"#.to_vec())
            .await;
        marks.assert_unchanged(&g.admin_js().await).await;
    }
    g.stop().await;
}

#[tokio::test]
async fn a_service_never_appends_another_services_audit_kind_or_events() {
    let g = Guild::start().await;
    // A decision is bus-svc's to record; a spawn is the spawner's.
    let mission = g.raw_as(&service(Service::Mission)).await;
    let marks = g.marks().await;
    mission
        .publish_refused("guild.audit.decision.q1", b"{}".to_vec())
        .await;
    mission
        .publish_refused("guild.evt.spawner.spawned.ghost", b"{}".to_vec())
        .await;
    let bus = g.raw_as(&service(Service::Bus)).await;
    bus.publish_refused("guild.audit.spawn.ghost", b"{}".to_vec())
        .await;
    marks.assert_unchanged(&g.admin_js().await).await;
    g.stop().await;
}

#[tokio::test]
async fn a_service_never_serves_another_services_requests() {
    let g = Guild::start().await;
    let spawner = g.raw_as(&service(Service::Spawner)).await;
    spawner.subscribe_refused("guild.bus.v1.>", None).await;
    spawner
        .subscribe_refused("guild.mission.v1.create_mission.*", Some("guild-mission"))
        .await;
    g.stop().await;
}

#[tokio::test]
async fn no_service_may_delete_or_purge_what_is_not_its_own() {
    let g = Guild::start().await;
    let js = g.admin_js().await;
    let marks = g.marks().await;
    for s in Service::ALL {
        let raw = g.raw_as(&service(s)).await;
        raw.publish_refused(
            &format!("$JS.API.STREAM.DELETE.{}", store::AUDIT_STREAM),
            Vec::new(),
        )
        .await;
        raw.publish_refused(
            &format!("$JS.API.STREAM.PURGE.{}", store::AUDIT_STREAM),
            Vec::new(),
        )
        .await;
        let other = if s == Service::Bus {
            "GUILD_JOURNAL_SPAWNER"
        } else {
            "GUILD_JOURNAL_BUS"
        };
        raw.publish_refused(&format!("$JS.API.STREAM.PURGE.{other}"), Vec::new())
            .await;
    }
    for stream in [
        store::AUDIT_STREAM,
        "GUILD_JOURNAL_SPAWNER",
        "GUILD_JOURNAL_BUS",
    ] {
        assert!(js.get_stream(stream).await.is_ok(), "{stream} is gone");
    }
    marks.assert_unchanged(&js).await;
    g.stop().await;
}
