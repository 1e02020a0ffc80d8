//! Guild's logging and tracing set-up.
//!
//! Every binary calls [`init`] once, first thing: logs go to stderr through `tracing`,
//! filtered by `RUST_LOG` (default `info`), as text or, with `GUILD_LOG_FORMAT=json`, as
//! one JSON object per line.
//!
//! ```no_run
//! guild_telemetry::init("spawner-svc", guild_telemetry::LogFormat::from_env());
//! tracing::info!(agents = 3, "spawner ready");
//! ```

use std::str::FromStr;

use tracing_subscriber::EnvFilter;

/// How logs are written.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("GUILD_LOG_FORMAT: {other:?} is not text or json")),
        }
    }
}

impl LogFormat {
    /// `GUILD_LOG_FORMAT`, or text when unset or unreadable.
    pub fn from_env() -> Self {
        std::env::var("GUILD_LOG_FORMAT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_default()
    }
}

/// Installs the global subscriber for `service`. Calling it again is harmless.
pub fn init(service: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    if installed.is_ok() {
        tracing::debug!(service, "logging ready");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_and_name_the_variable_when_wrong() {
        assert_eq!("JSON".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert_eq!("".parse::<LogFormat>().unwrap(), LogFormat::Text);
        assert!(
            "xml"
                .parse::<LogFormat>()
                .unwrap_err()
                .contains("GUILD_LOG_FORMAT")
        );
    }
}
