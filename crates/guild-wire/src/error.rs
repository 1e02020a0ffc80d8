//! The error envelope: one small set of codes, one mapping from domain refusals.

use std::fmt;

use guild_domain::{Rejection, RejectionKind};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What went wrong, coarsely; every reply error has one.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The request is malformed or breaks a rule about its own content.
    BadRequest,
    /// Something it names does not exist.
    NotFound,
    /// The current state does not allow it (try again after it changes).
    Conflict,
    /// The authority matrix does not allow it.
    Forbidden,
    /// A token budget is short.
    BudgetExceeded,
    /// A dependency (NATS, JetStream, another service) is not answering; retry later.
    Unavailable,
    /// The caller sends faster than its quota allows; slow down and retry.
    RateLimited,
    /// A bug: the service could not handle a valid request.
    Internal,
}

impl ErrorCode {
    /// The numeric code carried in `Nats-Service-Error-Code`, HTTP-like.
    pub const fn status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::Forbidden => 403,
            ErrorCode::BudgetExceeded => 402,
            ErrorCode::Unavailable => 503,
            ErrorCode::RateLimited => 429,
            ErrorCode::Internal => 500,
        }
    }

    /// The code for a numeric status, for clients reading only the header.
    pub const fn from_status(status: u16) -> Self {
        match status {
            400 => ErrorCode::BadRequest,
            404 => ErrorCode::NotFound,
            409 => ErrorCode::Conflict,
            403 => ErrorCode::Forbidden,
            402 => ErrorCode::BudgetExceeded,
            503 => ErrorCode::Unavailable,
            429 => ErrorCode::RateLimited,
            _ => ErrorCode::Internal,
        }
    }

    /// The snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::BudgetExceeded => "budget_exceeded",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of every error reply: `{"error": {...}}`. A successful reply never has a
/// top-level `error` field, so a client can tell them apart without headers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorReply {
    /// The error.
    pub error: ErrorBody,
}

/// What failed, which rule, which field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ErrorBody {
    /// The coarse category.
    pub code: ErrorCode,
    /// The rule broken, a stable snake_case name (`agent_limit_reached`,
    /// `dependency_cycle`, `payload_too_large`, ...).
    pub rule: String,
    /// The request field at fault, when one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// A sentence for people: what failed and, where it helps, what to do.
    pub message: String,
}

impl ErrorBody {
    /// An error of `code` for `rule`.
    pub fn new(code: ErrorCode, rule: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            rule: rule.to_owned(),
            field: None,
            message: message.into(),
        }
    }

    /// Names the field at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// A request body that is not the JSON the operation takes.
    pub fn malformed(err: &serde_json::Error) -> Self {
        // serde_json names the unknown or missing field in its message.
        let field = field_from_serde(&err.to_string());
        let e = Self::new(
            ErrorCode::BadRequest,
            "malformed_json",
            format!("the request body is not valid: {err}"),
        );
        match field {
            Some(f) => e.with_field(f),
            None => e,
        }
    }

    /// A dependency is not answering.
    pub fn unavailable(what: impl fmt::Display) -> Self {
        Self::new(
            ErrorCode::Unavailable,
            "unavailable",
            format!("{what}; retry shortly"),
        )
    }

    /// A bug.
    pub fn internal(what: impl fmt::Display) -> Self {
        Self::new(ErrorCode::Internal, "internal", what.to_string())
    }
}

/// The one mapping from domain refusals to the wire.
impl From<&Rejection> for ErrorBody {
    fn from(r: &Rejection) -> Self {
        let code = match r.kind() {
            RejectionKind::Invalid => ErrorCode::BadRequest,
            RejectionKind::NotFound => ErrorCode::NotFound,
            RejectionKind::Conflict => ErrorCode::Conflict,
            RejectionKind::Forbidden => ErrorCode::Forbidden,
            RejectionKind::BudgetExceeded => ErrorCode::BudgetExceeded,
        };
        let body = Self::new(code, r.rule(), r.to_string());
        match r.field() {
            Some(f) => body.with_field(f),
            None => body,
        }
    }
}

impl From<Rejection> for ErrorBody {
    fn from(r: Rejection) -> Self {
        Self::from(&r)
    }
}

fn field_from_serde(message: &str) -> Option<String> {
    for marker in ["unknown field `", "missing field `", "duplicate field `"] {
        if let Some(rest) = message.split(marker).nth(1) {
            return rest.split('`').next().map(str::to_owned);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use guild_domain::AgentId;

    #[test]
    fn rejections_map_to_codes_with_rule_and_field() {
        let r = Rejection::AgentLimitReached { live: 6, max: 6 };
        let e = ErrorBody::from(&r);
        assert_eq!(
            (e.code, e.rule.as_str(), e.field),
            (ErrorCode::Conflict, "agent_limit_reached", None)
        );
        let r = Rejection::invalid("priority", "11 is outside 1 to 10");
        let e = ErrorBody::from(r);
        assert_eq!(
            (e.code, e.field.as_deref()),
            (ErrorCode::BadRequest, Some("priority"))
        );
        let r = Rejection::BudgetExhausted {
            id: AgentId::new("qa").unwrap(),
        };
        assert_eq!(ErrorBody::from(r).code.status(), 402);
    }

    #[test]
    fn malformed_json_names_the_field() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct T {
            a: u32,
        }
        let err = serde_json::from_str::<T>(r#"{"a": 1, "b": 2}"#).unwrap_err();
        assert_eq!(ErrorBody::malformed(&err).field.as_deref(), Some("b"));
        let err = serde_json::from_str::<T>("{}").unwrap_err();
        assert_eq!(ErrorBody::malformed(&err).field.as_deref(), Some("a"));
    }

    #[test]
    fn statuses_round_trip() {
        for c in [
            ErrorCode::BadRequest,
            ErrorCode::NotFound,
            ErrorCode::Conflict,
            ErrorCode::Forbidden,
            ErrorCode::BudgetExceeded,
            ErrorCode::Unavailable,
            ErrorCode::RateLimited,
            ErrorCode::Internal,
        ] {
            assert_eq!(ErrorCode::from_status(c.status()), c);
        }
    }
}
