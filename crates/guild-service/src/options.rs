//! Options every service takes.

use std::time::Duration;

use guild_store::Durability;
use guild_telemetry::LogFormat;
use guild_wire::payload::DEFAULT_MAX_PAYLOAD;

/// Connection, durability, limits and logging: shared by all three services.
#[derive(clap::Args, Clone, Debug)]
pub struct CommonOptions {
    /// Where NATS is and the service's own credentials (the nats CLI's names).
    #[command(flatten)]
    pub nats: guild_sdk::connect::Args,

    /// Replicas of Guild's streams and buckets: 1 on a single server, 3 in a cluster.
    #[arg(long, env = "GUILD_REPLICAS", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub replicas: u8,

    /// Largest request or message body accepted, in bytes.
    #[arg(long, env = "GUILD_MAX_PAYLOAD", default_value_t = DEFAULT_MAX_PAYLOAD)]
    pub max_payload: usize,

    /// The audit stream's size limit in bytes; -1 is unlimited. When reached, audited
    /// operations are refused rather than old records dropped.
    #[arg(long, env = "GUILD_AUDIT_MAX_BYTES", default_value_t = -1, allow_hyphen_values = true)]
    pub audit_max_bytes: i64,

    /// Requests one instance handles at once, waiting consumers included; more wait their
    /// turn.
    #[arg(long, env = "GUILD_MAX_IN_FLIGHT", default_value_t = 1024)]
    pub max_in_flight: usize,

    /// Requests a second one agent (or the observer) may send to this instance on average,
    /// in bursts of up to twice that; more are refused with rate_limited. 0 is no limit.
    #[arg(long, env = "GUILD_MAX_REQUESTS_PER_SECOND", default_value_t = 200)]
    pub max_requests_per_second: u32,

    /// How long identical refusals are counted rather than each audited: the first is
    /// recorded at once, one more record carries the count when the window closes.
    #[arg(long, env = "GUILD_REFUSAL_WINDOW", default_value = "60s", value_parser = parse_duration)]
    pub refusal_window: Duration,

    /// Journal entries between state snapshots; 0 never snapshots (a new instance then
    /// replays the whole journal at start-up).
    #[arg(long, env = "GUILD_SNAPSHOT_EVERY", default_value_t = 50_000)]
    pub snapshot_every: u64,

    /// Log format: text or json (filter with RUST_LOG, default info).
    #[arg(long, env = "GUILD_LOG_FORMAT", default_value = "text", value_parser = parse_log_format)]
    pub log_format: LogFormat,

    /// Run without credentials against a NATS server that authenticates nobody: any
    /// client can act as anyone, audit records are unsigned, and spawner-svc mints no
    /// agent credentials. A flag only (never an environment variable), warned about at
    /// every start; for a throwaway local test, never anything shared.
    #[arg(long)]
    pub insecure: bool,

    /// Instead of serving: ask NATS whether an instance of this service answers (a NATS
    /// micro ping), then exit 0 if one did, 1 if none did. For container health checks.
    // A flag only, no environment variable: set in a container's environment it would
    // stop the service from ever serving.
    #[arg(long)]
    pub health_check: bool,
}

impl Default for CommonOptions {
    fn default() -> Self {
        Self {
            nats: guild_sdk::connect::Args {
                url: guild_sdk::connect::DEFAULT_URL.into(),
                ..Default::default()
            },
            replicas: 1,
            max_payload: DEFAULT_MAX_PAYLOAD,
            audit_max_bytes: -1,
            snapshot_every: 50_000,
            max_in_flight: 1024,
            max_requests_per_second: 200,
            refusal_window: crate::refusals::DEFAULT_WINDOW,
            log_format: LogFormat::Text,
            insecure: false,
            health_check: false,
        }
    }
}

impl CommonOptions {
    /// The durability settings for provisioning.
    pub fn durability(&self) -> Durability {
        Durability {
            replicas: usize::from(self.replicas),
            audit_max_bytes: self.audit_max_bytes,
            snapshot_every: self.snapshot_every,
        }
    }

    /// Checks what clap cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_payload < 1024 {
            return Err(format!(
                "--max-payload {} is below 1024 bytes",
                self.max_payload
            ));
        }
        if self.audit_max_bytes == 0 || self.audit_max_bytes < -1 {
            return Err("--audit-max-bytes must be -1 (unlimited) or positive".into());
        }
        if !(1..=65_536).contains(&self.max_in_flight) {
            return Err("--max-in-flight must be between 1 and 65536".into());
        }
        let n = &self.nats;
        let has_credentials = n.creds.is_some() || n.nkey.is_some() || n.user.is_some();
        match (has_credentials, self.insecure) {
            (false, false) => {
                return Err("no credentials: give the service its own with --creds \
                            (NATS_CREDS); `guild dev` makes them under .guild/keys, \
                            deploy/README.md says how elsewhere; --insecure runs without, \
                            against a server that authenticates nobody"
                    .into());
            }
            (true, true) => {
                return Err("--insecure runs without credentials: drop one or the other".into());
            }
            _ => {}
        }
        self.nats_options()?;
        Ok(())
    }

    /// The key `service` signs its audit records with: its own credentials' (`--creds`),
    /// which must be `service`'s. `None` without credentials (no authentication).
    pub fn signer(
        &self,
        service: guild_wire::subject::Service,
    ) -> Result<Option<guild_store::Signer>, String> {
        let Some(path) = &self.nats.creds else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--creds {}: {e}", path.display()))?;
        let creds = guild_auth::Credentials::parse(&text).map_err(|e| format!("--creds: {e}"))?;
        let name = creds.name().map_err(|e| format!("--creds: {e}"))?;
        let own = guild_domain::Principal::Service(service);
        if name != own.token() {
            return Err(format!(
                "--creds are {name}'s, not {own}'s: each service runs with its own"
            ));
        }
        guild_store::Signer::new(service, &creds.seed)
            .map(Some)
            .map_err(|e| e.to_string())
    }

    /// The connection options, checked (a service keeps retrying until NATS is up).
    pub fn nats_options(&self) -> Result<guild_sdk::NatsOptions, String> {
        let mut options = self.nats.clone().into_options()?;
        options.retry_initial_connect = true;
        Ok(options)
    }
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    s.parse()
}

/// Parses `500ms`, `30s`, `2m` or `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 500ms, 30s, 2m or 1h"))?;
    let scale: u64 = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => {
            return Err(format!(
                "{text:?} is not a duration like 500ms, 30s, 2m or 1h"
            ));
        }
    };
    let ms = n
        .checked_mul(scale)
        .ok_or_else(|| format!("{text:?} is longer than any duration Guild can wait"))?;
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("fast").is_err());
        assert!(
            parse_duration("18446744073709551615h")
                .unwrap_err()
                .contains("longer than"),
            "an overflow is an error, not a panic or a wrap"
        );
    }

    #[test]
    fn validation_names_the_option() {
        let mut o = CommonOptions::default();
        o.nats.creds = Some("spawner-svc.creds".into());
        assert!(o.validate().is_ok());
        o.max_payload = 10;
        assert!(o.validate().unwrap_err().contains("--max-payload"));
    }

    /// Secure by default: no credentials is a refusal naming the way out, and
    /// `--insecure` is the only way to run without.
    #[test]
    fn a_service_needs_credentials_unless_told_insecure() {
        let mut o = CommonOptions::default();
        let e = o.validate().unwrap_err();
        assert!(e.contains("--creds") && e.contains("--insecure"), "{e}");
        o.insecure = true;
        assert!(o.validate().is_ok());
        o.nats.creds = Some("bus-svc.creds".into());
        assert!(o.validate().unwrap_err().contains("--insecure"));
    }
}
