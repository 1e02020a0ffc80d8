//! Calling Guild under faults: a call whose answer does not come (a killed or paused
//! instance, nats-server restarting) is tried again with the same ids until an answer
//! comes or patience runs out. Only an answer counts; a write whose every attempt went
//! unanswered is recorded as unknown, never as done.

use std::future::Future;
use std::time::{Duration, Instant};

use guild_sdk::{Error, ErrorKind};
use guild_wire::ErrorCode;

/// How long one attempt waits for its reply.
pub(crate) const ATTEMPT: Duration = Duration::from_secs(3);

/// How long a write keeps being tried before it is given up as unknown: longer than a
/// service restart or a nats-server restart takes here.
pub(crate) const PATIENCE: Duration = Duration::from_secs(25);

/// What a call came to.
#[derive(Debug)]
pub(crate) enum Outcome<T> {
    /// Answered.
    Done(T),
    /// Refused for good (a rule, the broker); `after_silence` when an earlier attempt
    /// went unanswered, so the refusal may be about that attempt having landed (an id
    /// that exists already, a reservation gone).
    Refused { error: Error, after_silence: bool },
    /// No answer in time, after every attempt (the last attempt's error, for debugging).
    Unknown(#[allow(dead_code)] Error),
}

/// Whether an error says nothing about the outcome and another attempt may help.
pub(crate) fn retryable(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::TimedOut
            | ErrorKind::NoResponders
            | ErrorKind::Transport
            | ErrorKind::Decode
            | ErrorKind::Rejected(ErrorCode::Unavailable)
            | ErrorKind::Rejected(ErrorCode::RateLimited)
            | ErrorKind::Rejected(ErrorCode::Internal)
    )
}

/// Whether the error leaves the outcome unknown (the request may have been applied).
fn silent(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::TimedOut | ErrorKind::Transport | ErrorKind::Decode
    )
}

/// Calls `f` until it answers, for at most `patience`.
pub(crate) async fn settle<T, F, Fut>(patience: Duration, mut f: F) -> Outcome<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let deadline = Instant::now() + patience;
    let mut pause = Duration::from_millis(100);
    let mut after_silence = false;
    loop {
        match f().await {
            Ok(v) => return Outcome::Done(v),
            Err(e) if retryable(&e) => {
                after_silence |= silent(&e);
                if Instant::now() >= deadline {
                    return Outcome::Unknown(e);
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            Err(error) => {
                return Outcome::Refused {
                    error,
                    after_silence,
                };
            }
        }
    }
}

/// The rule of a refusal, or the error kind for the broker's.
pub(crate) fn rule_of(e: &Error) -> String {
    match e.rule() {
        Some(r) => r.to_owned(),
        None => format!("{:?}", e.kind()).to_lowercase(),
    }
}
