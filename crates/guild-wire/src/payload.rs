//! The payload limit: one figure, configurable per deployment.

use crate::error::{ErrorBody, ErrorCode};

/// The default limit on a request or message body: 256 KiB, a quarter of nats-server's
/// default `max_payload` (1 MiB), so a message plus Guild's envelope always fits.
pub const DEFAULT_MAX_PAYLOAD: usize = 256 * 1024;

/// Refuses a body longer than `limit` bytes, naming the rule and both figures.
pub fn check_size(len: usize, limit: usize) -> Result<(), ErrorBody> {
    if len <= limit {
        Ok(())
    } else {
        Err(ErrorBody::new(
            ErrorCode::BadRequest,
            "payload_too_large",
            format!("the body is {len} bytes; the limit is {limit} (GUILD_MAX_PAYLOAD)"),
        ))
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
}
