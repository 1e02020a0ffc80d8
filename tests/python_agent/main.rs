//! An agent written in Python with nats-py, from the subject catalogue alone, takes part
//! in Guild: it asks a question, receives the decision, consumes and acks a message.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

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
        .request(
            &py,
            "Code review needed",
            json!({"code_path": "backend/app.py"}),
        )
        .await
        .unwrap();

    // The orchestrator answers whatever the Python agent asks, the seed's way.
    let answering = tokio::spawn(async move {
        let asked = as_orch
            .bus()
            .consume_types(Duration::from_secs(20), &[MessageType::Question])
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
