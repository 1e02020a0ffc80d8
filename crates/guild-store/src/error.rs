//! What can go wrong talking to JetStream.

use guild_wire::ErrorBody;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A conditional write found a newer revision than the one it expected: someone else
    /// wrote first. Re-read and decide again.
    #[error("write conflict: a key changed since it was read")]
    Conflict,
    /// JetStream did not answer in time, or the connection is down. The outcome of a write
    /// that timed out is unknown.
    #[error("jetstream unavailable: {0}")]
    Unavailable(String),
    /// JetStream refused the request for a reason retrying will not fix.
    #[error("jetstream refused: {0}")]
    Refused(String),
    /// Stored bytes are not what they should be.
    #[error("stored value for {key} is unreadable: {reason}")]
    Corrupt {
        /// Where.
        key: String,
        /// Why.
        reason: String,
    },
}

impl Error {
    pub(crate) fn unavailable(e: impl std::fmt::Display) -> Self {
        Error::Unavailable(e.to_string())
    }
}

impl From<&Error> for ErrorBody {
    fn from(e: &Error) -> Self {
        match e {
            Error::Conflict => ErrorBody::new(
                guild_wire::ErrorCode::Conflict,
                "write_conflict",
                "the state changed while the request was handled; retry",
            ),
            Error::Unavailable(why) => {
                ErrorBody::unavailable(format!("JetStream did not answer ({why})"))
            }
            Error::Refused(why) | Error::Corrupt { reason: why, .. } => ErrorBody::internal(why),
        }
    }
}
