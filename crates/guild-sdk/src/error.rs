//! Errors callers can branch on.

use std::fmt;

use guild_wire::{ErrorBody, ErrorCode};

/// What kind of failure an [`Error`] is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The service refused the request; [`Error::body`] has the code, rule and field.
    Rejected(ErrorCode),
    /// No instance of the service is running.
    NoResponders,
    /// No answer in time (the outcome of a write is then unknown).
    TimedOut,
    /// The connection to NATS failed.
    Transport,
    /// The NATS server refused the call itself: these credentials may not publish on its
    /// subject (acting as someone else, or an operation the identity may not call).
    PermissionDenied,
    /// The reply could not be read (a version mismatch?).
    Decode,
}

/// A failed call.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    operation: &'static str,
    /// Boxed: the error travels in every `Result` the SDK returns.
    body: Option<Box<ErrorBody>>,
    detail: String,
}

impl Error {
    pub(crate) fn rejected(operation: &'static str, body: ErrorBody) -> Self {
        Self {
            kind: ErrorKind::Rejected(body.code),
            operation,
            detail: body.message.clone(),
            body: Some(Box::new(body)),
        }
    }

    /// An error of `kind` in `operation` (for code that builds on the SDK).
    pub fn new(kind: ErrorKind, operation: &'static str, detail: impl Into<String>) -> Self {
        Self {
            kind,
            operation,
            body: None,
            detail: detail.into(),
        }
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The service's error, for [`ErrorKind::Rejected`].
    pub fn body(&self) -> Option<&ErrorBody> {
        self.body.as_deref()
    }

    /// The rule broken (`agent_limit_reached`, ...), for a refusal.
    pub fn rule(&self) -> Option<&str> {
        self.body.as_ref().map(|b| b.rule.as_str())
    }

    /// The request field at fault, for a refusal that names one.
    pub fn field(&self) -> Option<&str> {
        self.body.as_ref().and_then(|b| b.field.as_deref())
    }

    /// The operation that failed.
    pub fn operation(&self) -> &'static str {
        self.operation
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kind, &self.body) {
            (ErrorKind::Rejected(code), Some(b)) => {
                write!(f, "{}: {code} ({}", self.operation, b.rule)?;
                if let Some(field) = &b.field {
                    write!(f, ", field {field}")?;
                }
                write!(f, "): {}", b.message)
            }
            (ErrorKind::NoResponders, _) => write!(
                f,
                "{}: {}; is it running? (`guild dev` starts everything locally)",
                self.operation, self.detail
            ),
            (ErrorKind::TimedOut, _) => write!(f, "{}: timed out: {}", self.operation, self.detail),
            _ => write!(f, "{}: {}", self.operation, self.detail),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// The error to pass on when a service calls another on a client's behalf: a refusal
    /// as it came, anything else as `unavailable` naming the service.
    pub fn into_body(self) -> ErrorBody {
        match (self.kind, self.body) {
            (ErrorKind::Rejected(_), Some(body)) => *body,
            (ErrorKind::Decode, _) => {
                ErrorBody::internal(format!("{}: {}", self.operation, self.detail))
            }
            (_, _) => ErrorBody::unavailable(format!("{}: {}", self.operation, self.detail)),
        }
    }
}
