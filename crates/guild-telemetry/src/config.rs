//! Where telemetry goes: the standard `OTEL_*` variables read as a pure step, so the
//! rules are tested without touching the process environment.

use std::time::Duration;

/// The `OTEL_*` variables Guild reads or the OpenTelemetry SDK honours, for a binary's
/// `--help` (the services' `after_help`). A deployment may set exactly these.
pub const ENV_HELP: &str = "\
OpenTelemetry (optional; with no endpoint set nothing is exported and no exporter runs):
  OTEL_EXPORTER_OTLP_ENDPOINT          OTLP/HTTP base URL, e.g. http://otel-collector:4318
                                       (traces to /v1/traces, metrics to /v1/metrics)
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT   full URL for traces (overrides the base URL)
  OTEL_EXPORTER_OTLP_METRICS_ENDPOINT  full URL for metrics (overrides the base URL)
  OTEL_EXPORTER_OTLP_HEADERS           extra request headers: key=value,key2=value2
  OTEL_EXPORTER_OTLP_TIMEOUT           export timeout in milliseconds (default 10000)
  OTEL_EXPORTER_OTLP_PROTOCOL          http/json, the only encoding Guild sends
  OTEL_SERVICE_NAME                    service.name (default: the binary's name)
  OTEL_RESOURCE_ATTRIBUTES             more resource attributes: key=value,key2=value2
  OTEL_TRACES_SAMPLER                  sampler (default parentbased_always_on)
  OTEL_TRACES_SAMPLER_ARG              the ratio of the *traceidratio samplers
  OTEL_TRACES_EXPORTER                 `none` turns traces off
  OTEL_METRICS_EXPORTER                `none` turns metrics off
  OTEL_METRIC_EXPORT_INTERVAL          milliseconds between metric exports (default 60000)
  OTEL_BSP_SCHEDULE_DELAY              milliseconds between span exports (default 5000)
  OTEL_SDK_DISABLED                    `true` turns OpenTelemetry off
Logs:
  RUST_LOG                             log filter (default info)";

/// An OTLP/HTTP endpoint: a plain `http://` URL (TLS is left to a collector beside the
/// service).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or address, as given (IPv6 without brackets).
    pub host: String,
    /// Port (80 when the URL names none).
    pub port: u16,
    /// Request path, starting with `/`.
    pub path: String,
}

impl Endpoint {
    /// Parses `http://host[:port][/path]`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            if url.starts_with("https://") {
                format!("{url}: only http:// endpoints are supported (put a collector beside the service for TLS)")
            } else {
                format!("{url}: not an http:// URL")
            }
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{url}: unclosed [ in the host"))?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(format!("{url}: no host"));
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| format!("{url}: bad port {p:?}"))?,
            None => 80,
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        })
    }

    /// The base URL `url` with a signal's path (`v1/traces`) appended, as the OTLP
    /// specification says for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn base_with(url: &str, signal_path: &str) -> Result<Self, String> {
        let mut e = Self::parse(url)?;
        if !e.path.ends_with('/') {
            e.path.push('/');
        }
        e.path.push_str(signal_path);
        Ok(e)
    }

    /// The `Host` header's value.
    pub(crate) fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.authority(), self.path)
    }
}

/// Where and how to export traces and metrics by OTLP/HTTP with JSON encoding.
#[derive(Clone, Debug, PartialEq)]
pub struct Otlp {
    /// The `service.name` resource attribute.
    pub service_name: String,
    /// Where spans go; `None` exports none.
    pub traces: Option<Endpoint>,
    /// Where metrics go; `None` exports none.
    pub metrics: Option<Endpoint>,
    /// Extra request headers (authentication for a hosted collector).
    pub headers: Vec<(String, String)>,
    /// How long one export may take.
    pub timeout: Duration,
    /// Time between metric exports; `None` leaves it to the SDK
    /// (`OTEL_METRIC_EXPORT_INTERVAL`, default 60 s).
    pub metric_interval: Option<Duration>,
}

impl Otlp {
    /// Both signals to the collector at base URL `url` (`http://127.0.0.1:4318`), as
    /// `service`: what a test gives [`crate::init_with`] instead of the environment.
    pub fn to(url: &str, service: &str) -> Result<Self, String> {
        Ok(Self {
            service_name: service.to_owned(),
            traces: Some(Endpoint::base_with(url, "v1/traces")?),
            metrics: Some(Endpoint::base_with(url, "v1/metrics")?),
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            metric_interval: None,
        })
    }

    /// Reads the process environment (see [`ENV_HELP`]); `Ok(None)` when nothing is to
    /// be exported.
    pub fn from_env(default_service: &str) -> Result<Option<Self>, String> {
        Self::from_vars(default_service, |k| std::env::var(k).ok())
    }

    /// Reads the variables through `get`: `Ok(None)` when no endpoint is set, OpenTelemetry
    /// is disabled, or both signals' exporters are `none`.
    pub fn from_vars(
        default_service: &str,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, String> {
        let var = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        if let Some(p) = var("OTEL_EXPORTER_OTLP_PROTOCOL")
            && p != "http/json"
        {
            return Err(format!(
                "OTEL_EXPORTER_OTLP_PROTOCOL={p}: Guild exports http/json only (every OTLP/HTTP receiver accepts it)"
            ));
        }
        let off = |k: &str| var(k).is_some_and(|v| v.eq_ignore_ascii_case("none"));
        let base = var("OTEL_EXPORTER_OTLP_ENDPOINT");
        let signal = |own: &str, path: &str| -> Result<Option<Endpoint>, String> {
            match (var(own), &base) {
                (Some(url), _) => Endpoint::parse(&url)
                    .map(Some)
                    .map_err(|e| format!("{own}: {e}")),
                (None, Some(url)) => Endpoint::base_with(url, path)
                    .map(Some)
                    .map_err(|e| format!("OTEL_EXPORTER_OTLP_ENDPOINT: {e}")),
                (None, None) => Ok(None),
            }
        };
        let traces = if off("OTEL_TRACES_EXPORTER") {
            None
        } else {
            signal("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "v1/traces")?
        };
        let metrics = if off("OTEL_METRICS_EXPORTER") {
            None
        } else {
            signal("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "v1/metrics")?
        };
        if traces.is_none() && metrics.is_none() {
            return Ok(None);
        }
        let headers = match var("OTEL_EXPORTER_OTLP_HEADERS") {
            Some(h) => parse_pairs(&h).map_err(|e| format!("OTEL_EXPORTER_OTLP_HEADERS: {e}"))?,
            None => Vec::new(),
        };
        let timeout = match var("OTEL_EXPORTER_OTLP_TIMEOUT") {
            Some(ms) => Duration::from_millis(ms.parse().map_err(|_| {
                format!("OTEL_EXPORTER_OTLP_TIMEOUT: {ms:?} is not a number of milliseconds")
            })?),
            None => Duration::from_secs(10),
        };
        Ok(Some(Self {
            service_name: var("OTEL_SERVICE_NAME").unwrap_or_else(|| default_service.to_owned()),
            traces,
            metrics,
            headers,
            timeout,
            metric_interval: None,
        }))
    }
}

/// `key=value,key2=value2`, values percent-decoded as the specification says.
fn parse_pairs(s: &str) -> Result<Vec<(String, String)>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| format!("{p:?} is not key=value"))?;
            let k = k.trim();
            let valid = !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !valid {
                return Err(format!("{k:?} is not a header name"));
            }
            Ok((k.to_owned(), percent_decode(v.trim())))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    // Header values cannot hold control characters.
    String::from_utf8_lossy(&out)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<Option<Otlp>, String> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Otlp::from_vars("bus-svc", |k| m.get(k).cloned())
    }

    #[test]
    fn nothing_is_exported_without_an_endpoint() {
        assert_eq!(read(&[]).unwrap(), None);
        assert_eq!(read(&[("OTEL_SERVICE_NAME", "x")]).unwrap(), None);
        assert_eq!(
            read(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_SDK_DISABLED", "TRUE")
            ])
            .unwrap(),
            None
        );
        assert_eq!(
            read(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_TRACES_EXPORTER", "none"),
                ("OTEL_METRICS_EXPORTER", "none"),
            ])
            .unwrap(),
            None
        );
    }

    #[test]
    fn the_base_endpoint_gets_signal_paths_and_signal_endpoints_win() {
        let o = read(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            (
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                "http://m:9000/custom",
            ),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "api-key=a%20b, x-tenant=guild",
            ),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(o.service_name, "bus-svc");
        assert_eq!(
            o.traces.unwrap().to_string(),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(o.metrics.unwrap().to_string(), "http://m:9000/custom");
        assert_eq!(
            o.headers,
            vec![
                ("api-key".to_owned(), "a b".to_owned()),
                ("x-tenant".to_owned(), "guild".to_owned())
            ]
        );
        assert_eq!(o.timeout, Duration::from_millis(2500));
        let base_path = read(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c/otlp/")])
            .unwrap()
            .unwrap();
        assert_eq!(base_path.traces.unwrap().path, "/otlp/v1/traces");
    }

    #[test]
    fn one_signal_can_be_turned_off() {
        let o = read(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_METRICS_EXPORTER", "none"),
            ("OTEL_SERVICE_NAME", "bus-a"),
        ])
        .unwrap()
        .unwrap();
        assert!(o.traces.is_some() && o.metrics.is_none());
        assert_eq!(o.service_name, "bus-a");
    }

    #[test]
    fn unsupported_settings_name_the_variable() {
        for (vars, expected) in [
            (
                vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4318")],
                "only http://",
            ),
            (
                vec![
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                    ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ],
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ),
            (
                vec![("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:x")],
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            ),
            (
                vec![
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
                    ("OTEL_EXPORTER_OTLP_HEADERS", "no-equals"),
                ],
                "OTEL_EXPORTER_OTLP_HEADERS",
            ),
        ] {
            let e = read(&vars).unwrap_err();
            assert!(e.contains(expected), "{e}");
        }
    }

    #[test]
    fn endpoints_parse_hosts_ports_and_ipv6() {
        let e = Endpoint::parse("http://[::1]:4318/v1/traces").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 4318));
        assert_eq!(e.authority(), "[::1]:4318");
        let e = Endpoint::parse("http://jaeger").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str()),
            ("jaeger", 80, "/")
        );
        assert!(Endpoint::parse("http://:80").is_err());
    }
}
