//! What a model gets back when a tool cannot do what it asked: a tool error (`isError`)
//! carrying Guild's error body (code, rule, field, message) and one sentence saying what
//! to do next. Never a protocol error: a host shows a protocol error to nobody, and the
//! model could not act on it.

use guild_sdk::ErrorKind;
use guild_wire::{ErrorBody, ErrorCode};
use rmcp::model::{CallToolResult, ContentBlock};
use serde::Serialize;

/// Rules of `guild mcp`'s own, for what fails before or around a call to Guild (Guild's
/// own refusals keep the rule the service named).
pub(crate) mod rule {
    /// The service gave no reply in time: the outcome of a write is unknown.
    pub(crate) const TIMED_OUT: &str = "timed_out";
    /// No service instance answers, or the connection is down.
    pub(crate) const UNAVAILABLE: &str = "unavailable";
    /// The broker refused the call itself (credentials revoked, or not allowed).
    pub(crate) const PERMISSION_DENIED: &str = "permission_denied";
    /// The reply could not be read.
    pub(crate) const BAD_REPLY: &str = "bad_reply";
    /// The tool's arguments are not what its input schema says.
    pub(crate) const BAD_ARGUMENTS: &str = "bad_arguments";
    /// No tool of that name (or not one this agent is offered).
    pub(crate) const UNKNOWN_TOOL: &str = "unknown_tool";
}

/// A refused or failed tool call, as the model sees it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Refusal {
    /// Guild's error body: `code`, `rule`, `field`, `message`.
    pub(crate) error: ErrorBody,
    /// What to do next, for a model.
    pub(crate) next: String,
}

impl Refusal {
    /// A refusal with Guild's body; `next` from its code.
    pub(crate) fn from_body(error: ErrorBody) -> Self {
        let next = next_step(error.code, error.field.as_deref()).to_owned();
        Self { error, next }
    }

    /// A refusal of `guild mcp`'s own.
    pub(crate) fn new(code: ErrorCode, rule: &str, field: Option<&str>, message: String) -> Self {
        let mut error = ErrorBody::new(code, rule, message);
        error.field = field.map(str::to_owned);
        Self::from_body(error)
    }

    /// The tool error the host receives.
    pub(crate) fn into_result(self) -> CallToolResult {
        let value = serde_json::to_value(&self).unwrap_or_else(|e| {
            serde_json::json!({ "error": { "code": "internal", "rule": "internal", "message": e.to_string() } })
        });
        let text = format!(
            "refused: {} (rule {}{}). {}",
            self.error.message,
            self.error.rule,
            self.error
                .field
                .as_deref()
                .map(|f| format!(", field {f}"))
                .unwrap_or_default(),
            self.next
        );
        let mut result = CallToolResult::error(vec![ContentBlock::text(text)]);
        result.structured_content = Some(value);
        result
    }
}

impl From<guild_sdk::Error> for Refusal {
    fn from(e: guild_sdk::Error) -> Self {
        let (code, rule) = match e.kind() {
            ErrorKind::Rejected(_) => return Self::from_body(e.into_body()),
            ErrorKind::TimedOut => (ErrorCode::Unavailable, rule::TIMED_OUT),
            ErrorKind::NoResponders | ErrorKind::Transport => {
                (ErrorCode::Unavailable, rule::UNAVAILABLE)
            }
            ErrorKind::PermissionDenied => (ErrorCode::Forbidden, rule::PERMISSION_DENIED),
            ErrorKind::Decode => (ErrorCode::Internal, rule::BAD_REPLY),
            _ => (ErrorCode::Internal, rule::UNAVAILABLE),
        };
        Self::new(code, rule, None, e.to_string())
    }
}

/// One sentence per error code: what a model can do about it.
fn next_step(code: ErrorCode, field: Option<&str>) -> &'static str {
    match (code, field) {
        (ErrorCode::BadRequest, Some(_)) => {
            "Fix the named field (the tool's input schema says what it takes) and call again."
        }
        (ErrorCode::BadRequest, None) => "Fix the arguments and call again.",
        (ErrorCode::NotFound, _) => {
            "Check the id: list what exists (list_agents, list_missions, consume) and use one of those."
        }
        (ErrorCode::Conflict, _) => {
            "The state moved on: read it again (my_status, get_mission, check_ready) before retrying."
        }
        (ErrorCode::Forbidden, _) => {
            "This is outside your authority: do not retry; ask your orchestrator (ask_question) to do it or to decide."
        }
        (ErrorCode::BudgetExceeded, _) => {
            "Your tokens do not cover it: reserve less, finish with what you have, or ask your orchestrator for budget (ask_question)."
        }
        (ErrorCode::RateLimited, _) => "Too many calls: wait a moment, then call again.",
        (ErrorCode::Unavailable, _) => {
            "Guild did not answer: wait and call again; for a write, read the state first (it may have happened)."
        }
        _ => "Guild failed internally: report it (raise_alert) and carry on with other work.",
    }
}
