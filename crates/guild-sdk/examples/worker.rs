//! A worker agent: heartbeats, consumes its inbox, does each assigned mission under its
//! token budget, and answers questions. Ctrl-C stops it.
//!
//! ```sh
//! cargo run -p guild-sdk --example worker -- <agent-id>
//! ```
//! The agent must exist (the orchestrator example spawns one and prints its id).

// An example prints for the person running it.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use guild_sdk::domain::AgentId;
use guild_sdk::domain::message::MessageType;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> Result<()> {
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let Some(id) = std::env::args().nth(1) else {
        eprintln!(
            "usage: worker <agent-id>  (the orchestrator example spawns one and prints its id)"
        );
        std::process::exit(2);
    };
    let guild = guild_sdk::connect(&url).await?;
    let me = guild.agent(AgentId::new(id)?);
    me.start_heartbeats(Duration::from_secs(5)).await?;
    println!("{} is up; waiting for work (Ctrl-C stops)", me.id());
    loop {
        let next = tokio::select! {
            next = me.next_message(Duration::from_secs(20)) => next?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let Some(delivery) = next else { continue };
        let message = &delivery.message;
        println!(
            "{} from {}: {}",
            message.kind, message.from, message.subject
        );
        match (message.kind, &message.task_id) {
            (MessageType::Request, Some(task)) => {
                // The "thinking": reserve an estimate, report what was really used.
                let summary = me
                    .work(2_000, Some(task), || async {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        Ok::<_, String>(("three services over NATS".to_owned(), 1_200))
                    })
                    .await?;
                me.missions()
                    .mark_complete(task, serde_json::json!({ "summary": summary }), Some(0.9))
                    .await?;
                me.bus()
                    .reply(
                        &message.id,
                        serde_json::json!({ "summary": summary }),
                        false,
                    )
                    .await?;
            }
            (MessageType::Question, _) => {
                me.bus()
                    .reply(&message.id, serde_json::json!({ "answer": "yes" }), false)
                    .await?;
            }
            _ => {}
        }
        me.bus().ack(&delivery.delivery_id).await?;
    }
}
