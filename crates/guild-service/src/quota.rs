//! A request-rate quota per principal: an authenticated agent in a loop cannot saturate a
//! service. A token bucket per agent (and for the observer), per instance: `rate` requests
//! a second on average, bursts of up to twice that. Services and the operator are not
//! limited (they are Guild, and the person running it).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use guild_domain::Principal;
use guild_wire::{ErrorBody, ErrorCode};

/// The buckets of one service instance.
pub(crate) struct Quota {
    /// Requests a second a principal may make on average; 0 is no limit.
    rate: f64,
    /// Each principal's bucket: tokens left, and when it was last filled.
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

/// Buckets kept before idle ones are dropped (an idle bucket is full anyway).
const PRUNE_ABOVE: usize = 4_096;

impl Quota {
    pub(crate) fn new(rate: u32) -> Self {
        Self {
            rate: f64::from(rate),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn burst(&self) -> f64 {
        (self.rate * 2.0).max(1.0)
    }

    /// Takes one request from `by`'s bucket, or refuses with `rate_limited`.
    pub(crate) fn admit(&self, by: &Principal, now: Instant) -> Result<(), ErrorBody> {
        if self.rate <= 0.0 || by.is_privileged() {
            return Ok(());
        }
        let burst = self.burst();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            let rate = self.rate;
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.saturating_duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = buckets.entry(by.token().to_owned()).or_insert((burst, now));
        *tokens =
            (*tokens + now.saturating_duration_since(*at).as_secs_f64() * self.rate).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            return Ok(());
        }
        let wait_ms = ((1.0 - *tokens) / self.rate * 1000.0).ceil();
        Err(ErrorBody::new(
            ErrorCode::RateLimited,
            "rate_limited",
            format!(
                "{by} sends more than {} requests a second to this instance; retry in about \
                 {wait_ms} ms (GUILD_MAX_REQUESTS_PER_SECOND)",
                self.rate
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_then_refilled() {
        let q = Quota::new(10);
        let a = Principal::from_token("a").unwrap_or(Principal::Observer);
        let t0 = Instant::now();
        for _ in 0..20 {
            assert!(q.admit(&a, t0).is_ok());
        }
        let e = q.admit(&a, t0).unwrap_err();
        assert_eq!(
            (e.code, e.rule.as_str()),
            (ErrorCode::RateLimited, "rate_limited")
        );
        // Another agent has its own bucket; the operator and services are not limited.
        let b = Principal::from_token("b").unwrap_or(Principal::Observer);
        assert!(q.admit(&b, t0).is_ok());
        for _ in 0..100 {
            assert!(q.admit(&Principal::Operator, t0).is_ok());
        }
        // A tenth of a second refills one request.
        assert!(q.admit(&a, t0 + Duration::from_millis(110)).is_ok());
        assert!(q.admit(&a, t0 + Duration::from_millis(110)).is_err());
    }

    #[test]
    fn zero_is_no_limit() {
        let q = Quota::new(0);
        let a = Principal::from_token("a").unwrap_or(Principal::Observer);
        let t0 = Instant::now();
        assert!((0..10_000).all(|_| q.admit(&a, t0).is_ok()));
    }
}
