//! A worker agent: heartbeats, consumes its inbox, does each assigned mission under its
//! token budget, and answers questions. Ctrl-C stops it.
//!
//! ```sh
//! NATS_CREDS=.guild/creds/<agent-id>.creds cargo run -p guild-sdk --example worker
//! ```
//! The agent must exist: the orchestrator example spawns one and saves its credentials.

// An example prints for the person running it.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use guild_sdk::MessageType;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> Result<()> {
    // Who it is comes from its credentials (NATS_CREDS), which only it can use.
    let guild = guild_sdk::connect(&guild_sdk::NatsOptions::from_env()?).await?;
    let me = guild.agent()?;
    me.start_heartbeats(Duration::from_secs(5)).await?;
    println!("{} is up; waiting for work (Ctrl-C stops)", me.id());
    let bus = me.bus();
    loop {
        let next = tokio::select! {
            next = bus.consume(Duration::from_secs(20), &[]) => next?,
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
