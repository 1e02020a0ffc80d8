//! An orchestrator: spawns a worker under itself, gives it a mission, waits for the result.
//!
//! With Guild running (`guild dev`), in one shell, as the operator:
//!
//! ```sh
//! NATS_CREDS=.guild/creds/operator.creds cargo run -p guild-sdk --example orchestrator
//! ```
//!
//! and, when it asks, in another, as the worker it spawned (whose credentials it saved):
//!
//! ```sh
//! NATS_CREDS=.guild/creds/example-worker-<pid>.creds cargo run -p guild-sdk --example worker
//! ```

// An example prints for the person running it.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use guild_sdk::MessageType;
use guild_sdk::NewMission;
use guild_sdk::{AgentId, MissionId, Phase};
use guild_sdk::{AgentStatus, Role, SpawnRequest};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> Result<()> {
    let guild = guild_sdk::connect(&guild_sdk::NatsOptions::from_env()?).await?;
    let run = std::process::id();
    let me = AgentId::new(format!("example-orchestrator-{run}"))?;
    // Ids are never reused (terminated agents stay for lineage): one per run.
    let worker = AgentId::new(format!("example-worker-{run}"))?;

    // The operator spawns the orchestrator; the orchestrator spawns its worker.
    // Each agent connects with the credentials Guild minted for it at spawn.
    let spawned = guild
        .spawner()
        .spawn(SpawnRequest::new(me.clone(), Role::Orchestrator, 20_000))
        .await?;
    let orchestrator = guild
        .connect_agent(
            spawned
                .credentials
                .as_ref()
                .ok_or("Guild minted no credentials")?,
        )
        .await?
        .agent()?;
    orchestrator
        .start_heartbeats(Duration::from_secs(5))
        .await?;
    let child = orchestrator
        .spawner()
        .spawn(SpawnRequest::new(worker.clone(), Role::Developer, 5_000).parent(me.clone()))
        .await?;
    // The worker's credentials are the orchestrator's to hand over: a file only we read.
    let creds = child
        .credentials
        .as_ref()
        .and_then(|c| c.creds.clone())
        .ok_or("Guild minted no credentials")?;
    let file = std::path::PathBuf::from(format!(".guild/creds/{worker}.creds"));
    guild_auth::write_secret(&file, &creds)?;
    println!(
        "spawned {worker}; start it within the heartbeat window (30 s by default): \
         NATS_CREDS={} cargo run -p guild-sdk --example worker",
        file.display()
    );

    // A mission for it, once it is up (its first heartbeat makes it ACTIVE).
    let mission = MissionId::new(format!("example-mission-{run}"))?;
    let mut m = NewMission::new(mission.clone(), "Summarize the design", Phase::DEVELOPMENT);
    m.token_budget = 3_000;
    orchestrator.missions().create_mission(&m).await?;
    loop {
        if orchestrator.spawner().get(&worker).await?.status != AgentStatus::Pending {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    orchestrator
        .missions()
        .assign_mission(&mission, Some(&worker))
        .await?;
    orchestrator
        .bus()
        .request(&guild_sdk::api::bus::SendRequest {
            to: worker.clone(),
            subject: "Summarize the design".into(),
            payload: serde_json::json!({ "doc": "ARCHITECTURE.md" }),
            priority: None,
            task_id: Some(mission.clone()),
            message_id: None,
        })
        .await?;

    // Its reply comes to this agent's inbox.
    let reply = loop {
        if let Some(d) = orchestrator
            .bus()
            .consume(Duration::from_secs(20), &[MessageType::Reply])
            .await?
        {
            orchestrator.bus().ack(&d.delivery_id).await?;
            break d;
        }
    };
    println!("{} replied: {}", reply.message.from, reply.message.payload);
    let done = orchestrator.missions().get_mission(&mission).await?;
    println!("mission {} is {}", done.id, done.status);
    orchestrator
        .spawner()
        .terminate(&guild_sdk::Terminate::new(&worker, false))
        .await?;
    guild
        .spawner()
        .terminate(&guild_sdk::Terminate::new(&me, false))
        .await?;
    Ok(())
}
