//! What binds an operation to the code that serves it. Each service's `operations!`
//! declaration generates, beside its marker types and its `OPS` table, a `Handler` trait
//! with one method per operation (its typed request in, its typed response out) and
//! `Routes`, which implements [`Router`] for any `Handler`: a service that lacks a method
//! for one of its operations, or has one for no operation, does not compile.

use std::fmt;
use std::future::Future;

use guild_domain::{Principal, Rejection};

use crate::subject::Service;
use crate::{ErrorBody, ErrorCode};

/// Why a handler did not answer with its response. A rule's refusal stays a
/// [`Rejection`] until the router encodes the reply, so code between the domain and the
/// wire can tell one refusal from another by its variant, never by its rule's name.
#[derive(Debug)]
pub enum Failure {
    /// A rule of the domain refused.
    Rejected(Rejection),
    /// Anything else, already as the wire says it: bad input, storage, another service's
    /// answer.
    Body(ErrorBody),
}

impl From<Rejection> for Failure {
    fn from(r: Rejection) -> Self {
        Self::Rejected(r)
    }
}

impl From<ErrorBody> for Failure {
    fn from(e: ErrorBody) -> Self {
        Self::Body(e)
    }
}

impl From<Failure> for ErrorBody {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Rejected(r) => ErrorBody::from(&r),
            Failure::Body(e) => e,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected(r) => ErrorBody::from(r).fmt(f),
            Self::Body(e) => e.fmt(f),
        }
    }
}

/// Serves one service's operations: decodes the body by the operation's request type,
/// calls its handler method, encodes the reply. The runtime (`guild_service::serve`)
/// calls it for every operation but `recover`, which it serves itself.
pub trait Router: Send + Sync + 'static {
    /// The service routed.
    const SERVICE: Service;

    /// Answers `op` asked by `by` with `body`: the encoded response, or the error reply.
    fn route(
        &self,
        op: &str,
        by: Principal,
        body: &[u8],
    ) -> impl Future<Output = Result<Vec<u8>, ErrorBody>> + Send;
}

/// The one answer to an operation `service` does not have (404 `unknown_operation`).
pub fn unknown_operation(service: Service, op: &str) -> ErrorBody {
    ErrorBody::new(
        ErrorCode::NotFound,
        "unknown_operation",
        format!("{op} is not an operation of {}", service.micro_name()),
    )
}
