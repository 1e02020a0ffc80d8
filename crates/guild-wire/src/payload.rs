//! The payload limit: one figure, configurable per deployment.

use crate::error::{ErrorBody, ErrorCode};

/// The default limit on a request or message body: 256 KiB, a quarter of nats-server's
/// default `max_payload` (1 MiB), so a message plus Guild's envelope always fits.
pub const DEFAULT_MAX_PAYLOAD: usize = 256 * 1024;

/// Refuses a body longer than `limit` bytes, naming the rule and both figures.
pub fn check_size(len: usize, limit: usize) -> Result<(), ErrorBody> {
    within(len, limit, "payload_too_large", || {
        format!("the body is {len} bytes; the limit is {limit} (GUILD_MAX_PAYLOAD)")
    })
}

/// Refuses to send a reply longer than nats-server's `max_payload`: it could not be
/// published, and the caller would wait for its timeout with no word why.
pub fn check_reply_size(len: usize, server_limit: usize) -> Result<(), ErrorBody> {
    within(len, server_limit, "reply_too_large", || {
        format!(
            "the reply would be {len} bytes; nats-server takes at most {server_limit} \
             (max_payload): ask for less (a smaller limit, or filters)"
        )
    })
}

fn within(
    len: usize,
    limit: usize,
    rule: &str,
    message: impl FnOnce() -> String,
) -> Result<(), ErrorBody> {
    if len <= limit {
        Ok(())
    } else {
        Err(ErrorBody::new(ErrorCode::BadRequest, rule, message()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_inclusive() {
        assert!(check_size(DEFAULT_MAX_PAYLOAD, DEFAULT_MAX_PAYLOAD).is_ok());
        let e = check_size(DEFAULT_MAX_PAYLOAD + 1, DEFAULT_MAX_PAYLOAD).unwrap_err();
        assert_eq!(e.rule, "payload_too_large");
    }

    #[test]
    fn a_reply_over_the_servers_limit_is_refused() {
        assert!(check_reply_size(1024, 1024).is_ok());
        assert_eq!(
            check_reply_size(1025, 1024).unwrap_err().rule,
            "reply_too_large"
        );
    }
}
