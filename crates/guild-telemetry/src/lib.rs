//! Guild's logging, tracing and metrics set-up, and trace context carried in NATS headers.
//!
//! Every binary calls [`init`] once, first thing, and [`shutdown`] last:
//!
//! * **Logs** go to stderr through `tracing`, filtered by `RUST_LOG` (default `info`), as
//!   text or, with `GUILD_LOG_FORMAT=json`, one JSON object per line.
//! * **Traces and metrics** are exported by OTLP/HTTP when the standard `OTEL_*` variables
//!   name an endpoint ([`ENV_HELP`] lists what is read; [`Otlp::from_vars`] is the rule).
//!   When none is set no exporter exists, no OpenTelemetry layer is installed, and Guild's
//!   spans ([`trace`]) are disabled spans: creating one is an atomic load.
//! * [`trace`]: spans after the OpenTelemetry messaging conventions, and W3C
//!   `traceparent`/`tracestate` in NATS headers ([`trace::inject`], [`trace::server`]) or
//!   stored with a message ([`trace::SpanExt::traceparent`], [`trace::consumer`]).
//! * [`metrics`]: the seed's performance metrics as OpenTelemetry instruments.
//!
//! ```no_run
//! guild_telemetry::init("spawner-svc", guild_telemetry::LogFormat::from_env());
//! tracing::info!(agents = 3, "spawner ready");
//! guild_telemetry::shutdown(); // exports what is left
//! ```
//!
//! ## Why an exporter of our own
//!
//! `opentelemetry-otlp` 0.33 with `http-json` needs an HTTP client: its `hyper-client`
//! feature adds about 20 crates the workspace did not have (hyper, h2, http, prost,
//! prost-derive, opentelemetry-proto with its generated code, tower-service, ...), and its
//! default blocking `reqwest` client more; the gRPC transport adds tonic on top. The SDK's
//! batch span processor and periodic metric reader already run on threads of their own
//! and wait for each export, so a blocking POST over `std::net::TcpStream` is all an
//! exporter needs: `otlp.rs`, a few hundred lines of JSON mapping, plain `http://` only (a
//! collector beside the service does TLS). Every OTLP/HTTP receiver (the OpenTelemetry
//! Collector, Jaeger, Tempo) accepts `application/json` on `/v1/traces` and `/v1/metrics`.
//! What this crate adds to the build: `opentelemetry`, `opentelemetry_sdk` and
//! `tracing-opentelemetry` (and their few small dependencies), no async runtime feature.

mod config;
pub mod metrics;
mod otlp;
pub mod trace;

use std::str::FromStr;
use std::sync::Mutex;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{Level, Metadata};
use tracing_subscriber::layer::{Context, Filter, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub use config::{ENV_HELP, Endpoint, Otlp};
pub use opentelemetry::KeyValue;

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

/// The exporting pipelines, kept to flush and shut down.
struct Providers {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
}

/// What [`init_with`] installed; taken by [`shutdown`].
static PROVIDERS: Mutex<Option<Providers>> = Mutex::new(None);

/// Installs the global subscriber for `service`, exporting to where the `OTEL_*`
/// variables say (nowhere when they name no endpoint). Calling it again is harmless.
pub fn init(service: &str, format: LogFormat) {
    init_logging_at(service, format, "info");
}

/// [`init`] with another log level than `info` when `RUST_LOG` is unset: a command-line
/// tool that runs services in its own process (`guild dev`) keeps its output for people.
pub fn init_logging_at(service: &str, format: LogFormat, default_filter: &str) {
    match Otlp::from_env(service) {
        Ok(otlp) => {
            install(service, format, otlp, default_filter);
        }
        Err(e) => {
            install(service, format, None, default_filter);
            tracing::warn!(error = %e, "OpenTelemetry export is off: its configuration is not usable");
        }
    }
}

/// [`init`] with the export configuration given rather than read from the environment
/// (tests point it at a receiver of their own). Returns whether this call installed the
/// subscriber (false when one was there already: nothing changes then).
pub fn init_with(service: &str, format: LogFormat, otlp: Option<Otlp>) -> bool {
    install(service, format, otlp, "info")
}

fn install(service: &str, format: LogFormat, otlp: Option<Otlp>, default_filter: &str) -> bool {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let logs = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
    }
    .with_filter(filter)
    .boxed();
    let mut layers = vec![logs];
    let providers = otlp.as_ref().map(|o| {
        let (p, l) = pipelines(o);
        layers.extend(l);
        p
    });
    let installed = tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .is_ok();
    if !installed {
        if let Some(p) = providers {
            stop(p);
        }
        return false;
    }
    if let Some(p) = providers {
        trace::set_enabled(p.tracer.is_some());
        if let Some(m) = &p.meter {
            opentelemetry::global::set_meter_provider(m.clone());
        }
        *PROVIDERS.lock().unwrap_or_else(|p| p.into_inner()) = Some(p);
    }
    if let Some(o) = &otlp {
        tracing::info!(
            service,
            service_name = %o.service_name,
            traces = %o.traces.as_ref().map(ToString::to_string).unwrap_or_else(|| "off".into()),
            metrics = %o.metrics.as_ref().map(ToString::to_string).unwrap_or_else(|| "off".into()),
            "exporting telemetry by OTLP/HTTP"
        );
    } else {
        tracing::debug!(service, "logging ready; no telemetry export");
    }
    true
}

/// The layer type the exporting pipeline adds to the registry.
type OtelLayer = Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>;

fn pipelines(o: &Otlp) -> (Providers, Option<OtelLayer>) {
    let resource = Resource::builder()
        .with_service_name(o.service_name.clone())
        .build();
    let client = |e: &Endpoint| otlp::Client::new(e.clone(), o.headers.clone(), o.timeout);
    let tracer = o.traces.as_ref().map(|e| {
        SdkTracerProvider::builder()
            .with_batch_exporter(otlp::Spans::new(client(e)))
            .with_resource(resource.clone())
            .build()
    });
    let layer = tracer.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("guild"))
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_context_activation(false)
            .with_filter(Exported)
            .boxed()
    });
    let meter = o.metrics.as_ref().map(|e| {
        let mut reader = PeriodicReader::builder(otlp::Metrics::new(client(e)));
        if let Some(i) = o.metric_interval {
            reader = reader.with_interval(i);
        }
        SdkMeterProvider::builder()
            .with_reader(reader.build())
            .with_resource(resource)
            .build()
    });
    (Providers { tracer, meter }, layer)
}

/// What the exporting layer sees: Guild's spans (target `guild`, DEBUG and up), and
/// warnings and errors as events on them. A static decision per call site, so everything
/// else costs nothing more than without the layer.
struct Exported;

impl Exported {
    fn wanted(meta: &Metadata<'_>) -> bool {
        if meta.is_span() {
            meta.target() == trace::TARGET && *meta.level() <= Level::DEBUG
        } else {
            *meta.level() <= Level::WARN
        }
    }
}

impl<S> Filter<S> for Exported {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        Self::wanted(meta)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if Self::wanted(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::DEBUG)
    }
}

/// Exports every finished span and the current metrics now, waiting for the receiver.
/// Blocks the calling thread; nothing to do when nothing is exported.
pub fn flush() {
    let guard = PROVIDERS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(p) = guard.as_ref() {
        if let Some(t) = &p.tracer
            && let Err(e) = t.force_flush()
        {
            tracing::debug!(error = %e, "span flush failed");
        }
        if let Some(m) = &p.meter
            && let Err(e) = m.force_flush()
        {
            tracing::debug!(error = %e, "metric flush failed");
        }
    }
}

/// Exports what is left and stops the exporters: a binary's last call. Spans made after
/// it are not exported.
pub fn shutdown() {
    let taken = PROVIDERS.lock().unwrap_or_else(|p| p.into_inner()).take();
    trace::set_enabled(false);
    if let Some(p) = taken {
        stop(p);
    }
}

fn stop(p: Providers) {
    if let Some(t) = p.tracer {
        let _ = t.shutdown();
    }
    if let Some(m) = p.meter {
        let _ = m.shutdown();
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

    #[test]
    fn the_exporting_layer_takes_guild_spans_and_warnings_only() {
        use tracing::callsite::Identifier;
        use tracing::field::FieldSet;
        use tracing::metadata::Kind;
        struct Cs;
        impl tracing::callsite::Callsite for Cs {
            fn set_interest(&self, _: Interest) {}
            fn metadata(&self) -> &Metadata<'_> {
                unreachable!()
            }
        }
        static CS: Cs = Cs;
        let meta = |target, level, kind| {
            Metadata::new(
                "m",
                target,
                level,
                None,
                None,
                None,
                FieldSet::new(&[], Identifier(&CS)),
                kind,
            )
        };
        assert!(Exported::wanted(&meta("guild", Level::DEBUG, Kind::SPAN)));
        assert!(!Exported::wanted(&meta("guild", Level::TRACE, Kind::SPAN)));
        assert!(!Exported::wanted(&meta(
            "async_nats",
            Level::INFO,
            Kind::SPAN
        )));
        assert!(Exported::wanted(&meta("bus_svc", Level::WARN, Kind::EVENT)));
        assert!(!Exported::wanted(&meta(
            "bus_svc",
            Level::INFO,
            Kind::EVENT
        )));
    }
}
