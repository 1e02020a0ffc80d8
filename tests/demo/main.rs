//! End to end: a real nats-server, the three service binaries as their own processes, the
//! `guild demo` binary run against them; then the final state, checked through the SDK:
//! every mission COMPLETED, both decisions in a verified audit log, every temporary agent
//! terminated, and every token accounted for.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use guild_domain::agent::{AgentQuery, AgentStatus};
use guild_domain::mission::MissionStatus;
use guild_sdk::api::bus::DecisionQuery;
use guild_sdk::api::mission::MissionQuery;
use guild_testkit::{NatsServer, eventually_async, workspace_binary};
use guild_wire::audit::AuditKind;

/// A service process, killed when the test ends.
struct Service(std::process::Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts service binary `name` on `server`, with its own credentials (and the
/// custodian's keys for spawner-svc), as a deployment would.
fn start(name: &str, server: &NatsServer, env: &[(&str, &str)]) -> Service {
    let service = match name {
        "spawner-svc" => guild_domain::Service::Spawner,
        "mission-svc" => guild_domain::Service::Mission,
        _ => guild_domain::Service::Bus,
    };
    let mut cmd = Command::new(workspace_binary(name));
    cmd.env("NATS_URL", server.url())
        .env(
            "NATS_CREDS",
            server.creds_file(&guild_domain::Principal::Service(service)),
        )
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    if service == guild_domain::Service::Spawner {
        let (custodian, system) = server.custodian_files();
        cmd.env("GUILD_CUSTODIAN", custodian)
            .env("GUILD_SYSTEM_CREDS", system);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    Service(
        cmd.spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}")),
    )
}

#[tokio::test]
async fn the_demo_completes_the_seed_workflow_and_leaves_a_consistent_guild() {
    let server = NatsServer::start();
    let url = server.url();
    // The seed's aggressive mode: the demo's nine agents do not fit in safe mode's six.
    let _spawner = start("spawner-svc", &server, &[("GUILD_MODE", "aggressive")]);
    let _missions = start("mission-svc", &server, &[]);
    let _bus = start("bus-svc", &server, &[]);
    let guild = server.operator().await;
    let operator_creds = server.creds_file(&guild_domain::Principal::Operator);
    eventually_async("the services answer", Duration::from_secs(30), || async {
        guild.spawner().get_stats().await.ok()?;
        guild.missions().get_statistics().await.ok()?;
        guild.bus().get_message_stats().await.ok()
    })
    .await;
    let pool_before = guild.spawner().get_stats().await.unwrap().tokens;

    let demo = tokio::task::spawn_blocking({
        let url = url.clone();
        move || {
            Command::new(workspace_binary("guild"))
                .args(["demo", "--json"])
                .env("NATS_URL", &url)
                .env("NATS_CREDS", &operator_creds)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&demo.stderr);
    assert!(demo.status.success(), "guild demo failed:\n{stderr}");
    assert!(
        stderr.contains(&format!("using the Guild at {url}")),
        "{stderr}"
    );
    for step in 1..=7 {
        assert!(
            stderr.contains(&format!("== {step}. ")),
            "step {step} missing:\n{stderr}"
        );
    }
    let report: serde_json::Value = serde_json::from_slice(&demo.stdout).unwrap();
    assert_eq!(report["missions"].as_array().unwrap().len(), 7);

    // Every mission COMPLETED, each by the agent that ran it last.
    let missions = guild
        .missions()
        .list_missions(&MissionQuery::default())
        .await
        .unwrap();
    assert_eq!(missions.missions.len(), 7);
    for m in &missions.missions {
        assert_eq!(
            m.status,
            MissionStatus::Completed,
            "{} is {}",
            m.id,
            m.status
        );
        assert!(m.assigned_agent_id.is_some(), "{} has no agent", m.id);
    }

    // Two decisions, each made once and completed once, in an intact chain.
    let audit = guild.bus().verify_audit().await.unwrap();
    assert!(audit.ok, "{:?}", audit.problems);
    let decisions = guild
        .bus()
        .decision_history(&DecisionQuery::default())
        .await
        .unwrap();
    let mut kinds: BTreeMap<String, Vec<AuditKind>> = BTreeMap::new();
    for d in &decisions {
        kinds
            .entry(d.record.choice.clone())
            .or_default()
            .push(d.kind);
    }
    assert_eq!(
        kinds.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "Adding compatibility layer",
            "Use OAuth for Phase 1, add JWT in Phase 2"
        ]
    );
    for (choice, k) in &kinds {
        assert_eq!(
            k,
            &[AuditKind::Decision, AuditKind::DecisionCompleted],
            "{choice}"
        );
    }

    // Every agent terminated (the temporary ones by the orchestrator, then the
    // orchestrator itself), none failed.
    let agents = guild
        .spawner()
        .list(&AgentQuery {
            include_terminated: true,
            ..AgentQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(agents.len(), 9);
    assert_eq!(agents.iter().filter(|a| a.temporary).count(), 8);
    for a in &agents {
        assert_eq!(a.status, AgentStatus::Completed, "{} is {}", a.id, a.status);
    }

    // Budgets conserved: what the agents used left the pool, everything else came back.
    let stats = guild.spawner().get_stats().await.unwrap();
    let used: u64 = agents.iter().map(|a| a.budget.used).sum();
    assert!(used > 0);
    assert_eq!(stats.tokens.pool_total, pool_before.pool_total);
    assert_eq!(stats.tokens.reserved, 0);
    assert_eq!(
        stats.tokens.pool_free + used,
        stats.tokens.pool_total,
        "{:?}",
        stats.tokens
    );
    let by_mission: u64 = stats.tokens.used_by_mission.values().sum();
    assert_eq!(by_mission, used, "every token was charged to a mission");
}
