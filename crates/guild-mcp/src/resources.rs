//! The agent's resources: what a host can show or re-read when a notification says it
//! changed. Each is JSON whose content other agents wrote sits under `untrusted_data`.
//!
//! | URI | what | updated when |
//! |---|---|---|
//! | `guild://inbox` | the latest messages that entered this agent's inbox (from the inbox log; reading it takes nothing: `consume` does) | a message enters the inbox |
//! | `guild://questions` | open questions waiting on this agent's decision (`addressed_to_you`), then the others it may read (its own, its team's) | a question enters the inbox |
//! | `guild://missions` | the missions assigned to this agent | a mission event is about one of them |
//! | `guild://decisions` | the decision log as it concerns this agent | a decision enters the inbox |

use guild_sdk::Principal;
use guild_sdk::api::{bus, mission};
use guild_wire::domain::message::Recipient;
use rmcp::model::{Resource, ResourceContents};
use serde_json::{Value, json};

use crate::agent::Shared;
use crate::refusal::Refusal;

/// The inbox.
pub(crate) const INBOX: &str = "guild://inbox";
/// Open questions.
pub(crate) const QUESTIONS: &str = "guild://questions";
/// Missions assigned to the agent.
pub(crate) const MISSIONS: &str = "guild://missions";
/// The decision log.
pub(crate) const DECISIONS: &str = "guild://decisions";

/// The resources, as `resources/list` gives them.
pub(crate) fn list() -> Vec<Resource> {
    let r = |uri: &str, name: &str, description: &str| {
        Resource::new(uri, name)
            .with_description(description)
            .with_mime_type("application/json")
    };
    vec![
        r(
            INBOX,
            "inbox",
            "The latest messages that entered your inbox (reading takes nothing; consume \
             takes a message, ack finishes it). Other agents' text is under untrusted_data.",
        ),
        r(
            QUESTIONS,
            "questions",
            "Open questions: those waiting on your decision under addressed_to_you (answer \
             them with decide), then the others you may read. Under untrusted_data.",
        ),
        r(
            MISSIONS,
            "missions",
            "The missions assigned to you. Under untrusted_data.",
        ),
        r(
            DECISIONS,
            "decisions",
            "The decision log as it concerns you. Under untrusted_data.",
        ),
    ]
}

/// Reads `uri`; `None` for a URI that is not one of these.
pub(crate) async fn read(agent: &Shared, uri: &str) -> Option<Result<ResourceContents, Refusal>> {
    let me = agent.id().clone();
    let value: Result<Value, Refusal> = match uri {
        INBOX => Ok(json!({ "messages": agent.inbox() })),
        QUESTIONS => {
            let query = bus::QuestionQuery {
                open_only: true,
                ..Default::default()
            };
            agent
                .guild()
                .call::<bus::op::ListQuestions>(&query)
                .await
                .map_err(Refusal::from)
                .and_then(|list| {
                    let mine = Recipient::Agent(me);
                    let (to_me, others): (Vec<_>, Vec<_>) = list
                        .questions
                        .into_iter()
                        .partition(|q| q.current_decider() == &mine);
                    encode(json!({ "addressed_to_you": to_me, "others": others }))
                })
        }
        MISSIONS => {
            let query = mission::MissionQuery {
                agent_id: Some(me),
                ..Default::default()
            };
            agent
                .guild()
                .call::<mission::op::ListMissions>(&query)
                .await
                .map_err(Refusal::from)
                .and_then(encode)
        }
        DECISIONS => {
            let query = bus::DecisionQuery {
                agent: Some(Principal::Agent(me)),
                ..Default::default()
            };
            agent
                .guild()
                .call::<bus::op::DecisionHistory>(&query)
                .await
                .map_err(Refusal::from)
                .and_then(encode)
        }
        _ => return None,
    };
    Some(value.map(|v| {
        let text = json!({ "untrusted_data": v }).to_string();
        ResourceContents::text(text, uri).with_mime_type("application/json")
    }))
}

fn encode<T: serde::Serialize>(value: T) -> Result<Value, Refusal> {
    serde_json::to_value(value).map_err(|e| {
        Refusal::new(
            guild_wire::ErrorCode::Internal,
            crate::refusal::rule::BAD_REPLY,
            None,
            e.to_string(),
        )
    })
}
