//! Bounded polling: wait for a condition instead of sleeping for a guessed time.

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` every 10 ms until it returns `Some`, and returns that. Panics after
/// `timeout` with `what`, so a test that waits for something that never happens fails
/// with a message instead of hanging.
pub async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    eventually_async(what, timeout, || std::future::ready(check())).await
}

/// [`eventually`] with an async check.
pub async fn eventually_async<T, F>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> F,
) -> T
where
    F: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
