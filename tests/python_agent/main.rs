//! An agent written in Python with nats-py, from the subject catalogue alone, takes part
//! in Guild: it asks a question, receives the decision, consumes and acks a message. And
//! an operator written the same way, from proto-schemas/README.md alone, spawns agents on
//! `guild dev` with the operator's credentials and hands that agent its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;
#[path = "../readme/dev.rs"]
mod dev;

use std::path::PathBuf;
use std::time::Duration;

use guild_domain::AgentId;
use guild_domain::agent::{Role, SpawnRequest};
use guild_domain::message::MessageType;
use guild_testkit::NatsServer;
use serde_json::{Value, json};

#[tokio::test]
async fn a_python_agent_asks_gets_its_decision_and_acks_a_message() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".tools/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/bootstrap",
        python.display()
    );

    let server = NatsServer::start();
    let (services, team) = common::start_in_process(&server).await;
    let guild = team.operator();
    let orch = AgentId::new("orch").unwrap();
    let py = AgentId::new("py-agent").unwrap();
    team.spawn(SpawnRequest::new(orch.clone(), Role::Orchestrator, 50_000))
        .await;
    let as_orch = team.agent(&orch);
    as_orch.spawner().heartbeat(None).await.unwrap();
    // The orchestrator spawns the Python agent and hands it its credentials, as a file
    // only it reads: what the agent gets, it gets from the spawn reply.
    let spawned = as_orch
        .spawner()
        .spawn(SpawnRequest::new(py.clone(), Role::Developer, 5_000).parent(orch.clone()))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let creds_file = dir.path().join("py-agent.creds");
    guild_auth::write_secret(
        &creds_file,
        spawned
            .credentials
            .as_ref()
            .and_then(|c| c.creds.as_deref())
            .expect("the spawn reply carries the agent's credentials"),
    )
    .unwrap();
    as_orch
        .bus()
        .request(&guild_sdk::SendRequest::new(
            &py,
            "Code review needed",
            json!({"code_path": "backend/app.py"}),
        ))
        .await
        .unwrap();

    // The orchestrator answers whatever the Python agent asks, the seed's way.
    let answering = tokio::spawn(async move {
        let asked = as_orch
            .bus()
            .consume(Duration::from_secs(20), &[MessageType::Question])
            .await
            .unwrap()
            .expect("the Python agent's question");
        as_orch
            .bus()
            .reply(
                &asked.message.id,
                json!({"decision": "proceed", "reason": "budget allows"}),
                true,
            )
            .await
            .unwrap();
        as_orch.bus().ack(&asked.delivery_id).await.unwrap();
        asked.message.from
    });

    let out = tokio::process::Command::new(&python)
        .arg(root.join("tests/python_agent/agent.py"))
        .env("NATS_URL", server.url())
        .env("NATS_CREDS", &creds_file)
        .env("GUILD_AGENT_ID", py.as_str())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(seen["asked_to"], "orch");
    assert_eq!(seen["decision_type"], "decision");
    assert_eq!(seen["decision"], "proceed");
    assert_eq!(seen["request"], "Code review needed");
    assert_eq!(seen["request_priority"], "NORMAL");
    assert_eq!(seen["left"], Value::Null);
    assert_eq!(answering.await.unwrap().to_string(), "py-agent");
    let stats = guild.bus().get_message_stats().await.unwrap();
    assert_eq!(
        stats.queue_by_agent.get("py-agent"),
        None,
        "everything acknowledged"
    );
    assert_eq!(stats.decisions_recorded, 1);

    services.stop().await;
}

/// `guild dev` as a process; `guild_operator.py` finds the operator's credentials where
/// proto-schemas/README.md says `guild dev` writes them (`<GUILD_HOME>/creds`), spawns an
/// orchestrator and under it an agent over `guild.spawner.v1.spawn.operator`, writes each
/// one's credentials from its spawn reply to a 0600 file, and runs `agent.py` as the agent
/// while playing its orchestrator.
#[tokio::test]
async fn a_python_operator_spawns_on_guild_dev_and_its_agent_takes_part() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".tools/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/bootstrap",
        python.display()
    );
    let s = dev::Session::new();
    let mut guild_dev = s.start_dev("guild dev").await;
    let creds_dir = tempfile::tempdir().unwrap();

    let mut script = tokio::process::Command::new(&python);
    script
        .arg(root.join("tests/python_agent/guild_operator.py"))
        .env_clear()
        .env("GUILD_HOME", s.home())
        .env("NATS_URL", &s.url)
        .env("CREDS_DIR", creds_dir.path())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), script.output())
        .await
        .expect("guild_operator.py finishes within 2 minutes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.trim()).unwrap();

    // What the spawns returned: two agents, spawned by the operator, with credentials.
    let spawned = seen["spawned"].as_array().unwrap();
    assert_eq!(spawned.len(), 2, "{seen}");
    assert_eq!(spawned[0]["id"], "py-orch");
    assert_eq!(spawned[0]["parent_id"], Value::Null);
    assert_eq!(spawned[1]["id"], "py-agent");
    assert_eq!(spawned[1]["parent_id"], "py-orch");
    for a in spawned {
        assert_eq!(a["spawned_by"], "operator", "{a}");
        assert_eq!(a["status"], "PENDING", "{a}");
        assert!(a["public_key"].as_str().unwrap().starts_with('U'), "{a}");
    }
    for file in seen["creds_files"].as_array().unwrap() {
        let file = std::path::Path::new(file.as_str().unwrap());
        assert!(file.starts_with(creds_dir.path()), "{}", file.display());
        assert_eq!(dev::mode(file), 0o600, "{}", file.display());
    }
    assert_eq!(seen["orchestrator_status"], "ACTIVE");
    assert_eq!(seen["question_from"], "py-agent");

    // What agent.py saw, as in the test above.
    let agent = &seen["agent"];
    assert_eq!(agent["asked_to"], "py-orch");
    assert_eq!(agent["decision_type"], "decision");
    assert_eq!(agent["decision"], "proceed");
    assert_eq!(agent["request"], "Code review needed");
    assert_eq!(agent["request_priority"], "NORMAL");
    assert_eq!(agent["left"], Value::Null);

    // Guild's side, as the operator sees it: the agent heartbeated (ACTIVE), under its
    // orchestrator, and everything it was sent was acknowledged.
    let guild = s.operator().await;
    let profile = guild
        .spawner()
        .get(&AgentId::new("py-agent").unwrap())
        .await
        .unwrap();
    assert_eq!(profile.status, guild_domain::agent::AgentStatus::Active);
    assert!(profile.last_heartbeat_at.is_some());
    assert_eq!(
        profile
            .parent_id
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("py-orch")
    );
    let stats = guild.bus().get_message_stats().await.unwrap();
    assert_eq!(stats.queue_by_agent.get("py-agent"), None, "{stats:?}");
    assert_eq!(stats.decisions_recorded, 1);
    // And through the CLI, with the same folder.
    let shown = s
        .run("guild --json agent show py-agent", Duration::from_secs(60))
        .await;
    assert!(shown.status.success(), "{shown:?}");
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["status"], "ACTIVE", "{shown}");

    drop(guild);
    let status = guild_dev.interrupt().await;
    assert!(status.success(), "guild dev exited {status}");
}
