//! Header names Guild reads and writes. NATS header names are case-sensitive; these are
//! the exact spellings.

/// A message's priority on inbox subjects: `CRITICAL`, `HIGH`, `NORMAL` or `LOW`. It always
/// agrees with the subject's priority token, which is what NATS routes on.
pub const PRIORITY: &str = "Guild-Priority";
/// A message's type: `request`, `question`, `alert`, `handoff`, `decision`, `reply`.
pub const MESSAGE_TYPE: &str = "Guild-Message-Type";
/// A message's id.
pub const MESSAGE_ID: &str = "Guild-Message-Id";
/// Who sent it (agent id or `operator`).
pub const FROM: &str = "Guild-From";
/// The wire schema version of the payload.
pub const SCHEMA: &str = "Guild-Schema";
/// JetStream's de-duplication id.
pub const NATS_MSG_ID: &str = "Nats-Msg-Id";
/// W3C trace context (`00-<trace id>-<span id>-<flags>`), when traces are exported. On a
/// request: the caller's span, which the service's handling span takes as parent. On an
/// inbox log entry: the message's creation context (also stored in the message as
/// `traceparent`, so a `consume` reply carries it). On an event: the span of the change
/// that produced it. On an audit record: the span that appended it. Lowercase: NATS header
/// names are case-sensitive.
pub const TRACEPARENT: &str = "traceparent";
/// W3C trace state, beside [`TRACEPARENT`] when the trace has any.
pub const TRACESTATE: &str = "tracestate";
/// NATS micro: the error text of a failed request (ADR-32).
pub const SERVICE_ERROR: &str = "Nats-Service-Error";
/// NATS micro: the numeric error code of a failed request (ADR-32).
pub const SERVICE_ERROR_CODE: &str = "Nats-Service-Error-Code";
