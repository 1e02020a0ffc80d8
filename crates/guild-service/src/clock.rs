//! The one place services read the clock; the domain takes the result as an argument.

use std::time::{SystemTime, UNIX_EPOCH};

use guild_domain::Timestamp;

/// Now, in milliseconds since the Unix epoch.
pub fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Timestamp::from_millis(ms)
}
