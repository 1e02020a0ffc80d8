//! Elicitation, for questions routed to the human operator only.
//!
//! A question between agents is answered by an agent, with the `decide` tool. A question
//! that reaches the operator (asked of it, or escalated to it because nobody above
//! decided in time) needs a human, and the human nearest to this agent is often the user
//! of its MCP host. When `guild mcp` was given the operator's connection
//! ([`crate::Agent::operator`]), each question *this agent* asked that enters the
//! operator's inbox is put to the host's user once, by elicitation (a choice and an
//! optional rationale), and the answer is recorded as the operator's decision: the same
//! `record_decision` call `guild decide` makes, audited the same. A user who declines or
//! dismisses it leaves the question open for the operator's other ways (`guild decide`).
//! Without the operator's connection, or with a host that does not support elicitation,
//! nothing is elicited.
//!
//! Other agents' questions that reach the operator are never put to this host's user:
//! they would be answering for a part of the team they cannot see.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use guild_sdk::{Message, MessageId, MessageType, Principal};
use guild_wire::subject;
use rmcp::service::ElicitationError;
use schemars::JsonSchema;
use serde::Deserialize;
use tracing::{info, warn};

use crate::agent::Shared;

/// How long the host's user has to answer before the question is left to the operator's
/// other ways.
const ANSWER_WITHIN: Duration = Duration::from_secs(30 * 60);

/// What the host's user is asked for.
#[derive(Debug, Deserialize, JsonSchema)]
struct OperatorAnswer {
    /// Your decision, as the operator (for example "approve", or the option you pick).
    choice: String,
    /// Why, for the decision log (optional).
    #[serde(default)]
    rationale: Option<String>,
}

rmcp::elicit_safe!(OperatorAnswer);

/// Starts watching the operator's inbox for this agent's questions, when the process has
/// the operator's connection.
pub(crate) async fn start(shared: &Arc<Shared>) -> Result<(), crate::Error> {
    let Some(operator) = &shared.operator else {
        return Ok(());
    };
    let inbox = operator
        .client()
        .subscribe(subject::inbox_all_levels(&Principal::Operator))
        .await
        .map_err(|e| crate::Error::Subscribe(e.to_string()))?;
    let me = Arc::downgrade(shared);
    tokio::spawn(async move {
        let mut inbox = inbox;
        while let Some(m) = inbox.next().await {
            let Some(shared) = me.upgrade() else { break };
            let Ok(message) = guild_wire::body::decode::<Message>(&m.payload) else {
                continue;
            };
            if let Some(question) = to_answer(&shared, &message) {
                tokio::spawn(ask(shared, question, message));
            }
        }
    });
    Ok(())
}

/// The question `message` (in the operator's inbox) asks the operator to decide, when it
/// is this agent's and was not put to the user yet: a question itself, or the escalation
/// of one (which names the original in `in_reply_to`).
fn to_answer(shared: &Shared, message: &Message) -> Option<MessageId> {
    if message.kind != MessageType::Question
        || !message.requires_decision
        || message.from != Principal::Agent(shared.id().clone())
    {
        return None;
    }
    let escalated = message.payload.get("escalated_question").is_some();
    let question = if escalated {
        message.in_reply_to.clone()?
    } else {
        message.id.clone()
    };
    let mut elicited = shared.elicited.lock().unwrap_or_else(|p| p.into_inner());
    elicited.insert(question.clone()).then_some(question)
}

/// Puts `question` to the first session whose host can elicit, and records the answer.
async fn ask(shared: Arc<Shared>, question: MessageId, message: Message) {
    let Some(operator) = shared.operator.clone() else {
        return;
    };
    let prompt = format!(
        "Guild: your agent {agent} asks the operator to decide, and you answer as the \
         operator.\n\nSubject: {subject}\n\nWhat the agent wrote (data, not instructions): \
         {payload}",
        agent = shared.id(),
        subject = message.subject,
        payload = message.payload,
    );
    for peer in shared.peers() {
        let answer = peer
            .elicit_with_timeout::<OperatorAnswer>(prompt.clone(), Some(ANSWER_WITHIN))
            .await;
        let answer = match answer {
            Ok(Some(a)) => a,
            Err(ElicitationError::CapabilityNotSupported) => continue,
            Ok(None) | Err(ElicitationError::NoContent) => {
                info!(%question, "the host's user gave no answer: left to the operator (guild decide)");
                return;
            }
            Err(ElicitationError::UserDeclined | ElicitationError::UserCancelled) => {
                info!(%question, "the host's user declined: left to the operator (guild decide)");
                return;
            }
            Err(e) => {
                warn!(%question, error = %e, "elicitation failed: left to the operator (guild decide)");
                guild_telemetry::metrics::count_error("mcp_elicitation_failed");
                return;
            }
        };
        let recorded = operator
            .bus()
            .record_decision(
                &question,
                &answer.choice,
                answer.rationale.as_deref(),
                serde_json::Value::Null,
            )
            .await;
        match recorded {
            Ok(_) => info!(%question, "the host's user decided as the operator"),
            // Decided meanwhile by someone else, for example: the refusal says so.
            Err(e) => {
                warn!(%question, error = %e, "the user's answer was not recorded");
                guild_telemetry::metrics::count_error("mcp_operator_answer_refused");
            }
        }
        return;
    }
    info!(%question, "no session can elicit: left to the operator (guild decide)");
}
