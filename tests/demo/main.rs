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
/// A service process and the file its log goes to.
struct Service(std::process::Child, tempfile::NamedTempFile);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Service {
    fn log(&self) -> String {
        std::fs::read_to_string(self.1.path()).unwrap_or_default()
    }
}

/// Whether `text` holds a credential: a user JWT (its header, base64url), an nkey seed
/// (`S` then the key type, 58 characters of base32), or a `.creds` bundle's markers.
fn holds_credentials(text: &str) -> Option<String> {
    if let Some(at) = text.find("eyJ0eXAiOiJKV1Qi") {
        return Some(text[at..].chars().take(40).collect());
    }
    if text.contains("NATS USER JWT") || text.contains("USER NKEY SEED") {
        return Some("a .creds bundle".into());
    }
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .find(|w| {
            w.len() == 58
                && w.starts_with('S')
                && w.chars()
                    .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c))
        })
        .map(str::to_owned)
}

/// Starts service binary `name` on `server`, with its own credentials (and the
/// custodian's keys for spawner-svc), as a deployment would.
fn start(name: &str, server: &NatsServer, env: &[(&str, &str)]) -> Service {
    let service = match name {
        "spawner-svc" => guild_domain::Service::Spawner,
        "mission-svc" => guild_domain::Service::Mission,
        _ => guild_domain::Service::Bus,
    };
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = Command::new(workspace_binary(name));
    cmd.env("NATS_URL", server.url())
        .env(
            "NATS_CREDS",
            server.creds_file(&guild_domain::Principal::Service(service)),
        )
        // Everything Guild logs, to check that no credential is among it.
        .env("RUST_LOG", "warn,spawner_svc=debug,bus_svc=debug,mission_svc=debug,guild_service=debug,guild_store=debug,guild_sdk=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap());
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
        log,
    )
}

#[tokio::test]
async fn the_demo_completes_the_seed_workflow_and_leaves_a_consistent_guild() {
    let server = NatsServer::start();
    let url = server.url();
    // The seed's aggressive mode: the demo's nine agents do not fit in safe mode's six.
    let spawner = start("spawner-svc", &server, &[("GUILD_MODE", "aggressive")]);
    let missions_svc = start("mission-svc", &server, &[]);
    let bus = start("bus-svc", &server, &[]);
    let guild = server.operator().await;
    let operator_creds = server.creds_file(&guild_domain::Principal::Operator);
    eventually_async("the services answer", Duration::from_secs(60), || async {
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

    // The check would see one (the operator's own credentials, JWT and seed).
    let creds =
        std::fs::read_to_string(server.creds_file(&guild_domain::Principal::Operator)).unwrap();
    let jwt = creds
        .lines()
        .find(|l| l.starts_with("eyJ"))
        .unwrap()
        .to_owned();
    let seed = creds
        .lines()
        .find(|l| l.starts_with("SU"))
        .unwrap()
        .to_owned();
    for sample in [&creds, &jwt, &format!("key={seed},")] {
        assert!(holds_credentials(sample).is_some(), "{sample}");
    }
    // Nine agents got credentials; none of them is in any log, the demo's report, its
    // progress, or the services' logs.
    for (what, text) in [
        (
            "the demo's report",
            String::from_utf8_lossy(&demo.stdout).into_owned(),
        ),
        ("the demo's progress", stderr.into_owned()),
        ("spawner-svc's log", spawner.log()),
        ("mission-svc's log", missions_svc.log()),
        ("bus-svc's log", bus.log()),
    ] {
        assert_eq!(holds_credentials(&text), None, "a credential in {what}");
    }
}
