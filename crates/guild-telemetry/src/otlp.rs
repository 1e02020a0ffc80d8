//! A small OTLP/HTTP exporter with JSON encoding: spans and metrics posted to
//! `/v1/traces` and `/v1/metrics` over a plain TCP connection.
//!
//! The SDK's batch span processor and periodic metric reader each run on a thread of
//! their own and wait for an export to finish, so the exporter does its IO blocking, with
//! `std::net`, on that thread: no async runtime, no HTTP client crate. One connection per
//! export (`Connection: close`): exports are seconds apart.
//!
//! The JSON follows the OTLP/JSON mapping of the protobuf messages: lowerCamelCase field
//! names, trace and span ids as hex, 64-bit integers as strings, enums as numbers.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanContext, SpanKind, Status};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::{
    AggregatedMetrics, Metric, MetricData, ResourceMetrics, ScopeMetrics,
};
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use serde_json::{Value as Json, json};

use crate::config::Endpoint;

/// Posts JSON bodies to one endpoint.
#[derive(Debug)]
pub(crate) struct Client {
    endpoint: Endpoint,
    headers: Vec<(String, String)>,
    timeout: Duration,
    /// Whether the last export failed: a failure is logged when it starts, not on every
    /// export while the collector stays away.
    failing: Mutex<bool>,
}

impl Client {
    pub(crate) fn new(
        endpoint: Endpoint,
        headers: Vec<(String, String)>,
        timeout: Duration,
    ) -> Self {
        Self {
            endpoint,
            headers,
            timeout,
            failing: Mutex::new(false),
        }
    }

    fn post(&self, body: &[u8]) -> OTelSdkResult {
        let result = self.try_post(body);
        let mut failing = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        match &result {
            Err(e) if !*failing => {
                tracing::warn!(endpoint = %self.endpoint, error = %e, "telemetry export failed; dropping data until the collector answers")
            }
            Ok(()) if *failing => {
                tracing::info!(endpoint = %self.endpoint, "telemetry export works again")
            }
            _ => {}
        }
        *failing = result.is_err();
        result.map_err(OTelSdkError::InternalFailure)
    }

    fn try_post(&self, body: &[u8]) -> Result<(), String> {
        let e = &self.endpoint;
        let addrs = (e.host.as_str(), e.port)
            .to_socket_addrs()
            .map_err(|err| format!("cannot resolve {}: {err}", e.host))?;
        let mut last = format!("{} resolves to no address", e.host);
        let mut stream = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(err) => last = format!("cannot connect to {addr}: {err}"),
            }
        }
        let mut stream = stream.ok_or(last)?;
        stream
            .set_write_timeout(Some(self.timeout))
            .and_then(|()| stream.set_read_timeout(Some(self.timeout)))
            .map_err(|err| err.to_string())?;
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: guild-telemetry/{}\r\n",
            e.path,
            e.authority(),
            body.len(),
            env!("CARGO_PKG_VERSION"),
        );
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(body))
            .and_then(|()| stream.flush())
            .map_err(|err| format!("while sending to {e}: {err}"))?;
        // The status line and headers are all an exporter needs.
        let mut response = Vec::with_capacity(512);
        let mut buf = [0u8; 512];
        while !response.windows(4).any(|w| w == b"\r\n\r\n") && response.len() < 16 * 1024 {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => response.extend_from_slice(&buf[..n]),
                Err(err) => return Err(format!("while reading {e}'s answer: {err}")),
            }
        }
        let text = String::from_utf8_lossy(&response);
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| format!("{e} answered something that is not HTTP"))?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            let line = text.lines().next().unwrap_or_default();
            Err(format!("{e} answered {line}"))
        }
    }
}

/// Spans to an OTLP/HTTP receiver.
#[derive(Debug)]
pub(crate) struct Spans {
    client: Client,
    resource: Json,
}

impl Spans {
    pub(crate) fn new(client: Client) -> Self {
        Self {
            client,
            resource: json!({"attributes": []}),
        }
    }
}

impl SpanExporter for Spans {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        // The batch processor waits on its own thread: doing the IO here is what it wants.
        let result = if batch.is_empty() {
            Ok(())
        } else {
            let body = traces_body(&self.resource, &batch);
            self.client.post(body.to_string().as_bytes())
        };
        std::future::ready(result)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource_json(resource);
    }
}

/// Metrics to an OTLP/HTTP receiver, cumulative.
#[derive(Debug)]
pub(crate) struct Metrics {
    client: Client,
}

impl Metrics {
    pub(crate) fn new(client: Client) -> Self {
        Self { client }
    }
}

impl PushMetricExporter for Metrics {
    fn export(
        &self,
        metrics: &ResourceMetrics,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let body = metrics_body(metrics);
        let empty = body["resourceMetrics"][0]["scopeMetrics"]
            .as_array()
            .is_none_or(Vec::is_empty);
        let result = if empty {
            Ok(())
        } else {
            self.client.post(body.to_string().as_bytes())
        };
        std::future::ready(result)
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

fn nanos(t: SystemTime) -> String {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
        .to_string()
}

fn any_value(v: &Value) -> Json {
    match v {
        Value::Bool(b) => json!({"boolValue": b}),
        Value::I64(i) => json!({"intValue": i.to_string()}),
        Value::F64(f) => json!({"doubleValue": f}),
        Value::String(s) => json!({"stringValue": s.as_str()}),
        Value::Array(a) => {
            let values: Vec<Json> = match a {
                Array::Bool(v) => v.iter().map(|b| json!({"boolValue": b})).collect(),
                Array::I64(v) => v
                    .iter()
                    .map(|i| json!({"intValue": i.to_string()}))
                    .collect(),
                Array::F64(v) => v.iter().map(|f| json!({"doubleValue": f})).collect(),
                Array::String(v) => v
                    .iter()
                    .map(|s| json!({"stringValue": s.as_str()}))
                    .collect(),
                other => vec![json!({"stringValue": other.to_string()})],
            };
            json!({"arrayValue": {"values": values}})
        }
        other => json!({"stringValue": other.to_string()}),
    }
}

fn attributes<'a>(kvs: impl IntoIterator<Item = &'a KeyValue>) -> Json {
    Json::Array(
        kvs.into_iter()
            .map(|kv| json!({"key": kv.key.as_str(), "value": any_value(&kv.value)}))
            .collect(),
    )
}

fn resource_json(resource: &Resource) -> Json {
    let attrs: Vec<Json> = resource
        .iter()
        .map(|(k, v)| json!({"key": k.as_str(), "value": any_value(v)}))
        .collect();
    json!({"attributes": attrs})
}

fn scope_json(scope: &InstrumentationScope) -> Json {
    let mut s = json!({"name": scope.name()});
    if let Some(v) = scope.version() {
        s["version"] = json!(v);
    }
    s
}

fn kind(k: &SpanKind) -> u8 {
    match k {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

fn context_ids(cx: &SpanContext) -> (String, String) {
    (cx.trace_id().to_string(), cx.span_id().to_string())
}

fn span_json(s: &SpanData) -> Json {
    let (trace_id, span_id) = context_ids(&s.span_context);
    let status = match &s.status {
        Status::Unset => json!({}),
        Status::Ok => json!({"code": 1}),
        Status::Error { description } => json!({"code": 2, "message": description}),
    };
    let mut span = json!({
        "traceId": trace_id,
        "spanId": span_id,
        "name": s.name,
        "kind": kind(&s.span_kind),
        "startTimeUnixNano": nanos(s.start_time),
        "endTimeUnixNano": nanos(s.end_time),
        "attributes": attributes(&s.attributes),
        "status": status,
        "flags": u32::from(s.span_context.trace_flags().to_u8()) | 0x100,
    });
    let state = s.span_context.trace_state().header();
    if !state.is_empty() {
        span["traceState"] = json!(state);
    }
    if s.parent_span_id != opentelemetry::trace::SpanId::INVALID {
        span["parentSpanId"] = json!(s.parent_span_id.to_string());
        if s.parent_span_is_remote {
            // SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK | SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
            span["flags"] = json!(u32::from(s.span_context.trace_flags().to_u8()) | 0x300);
        }
    }
    if !s.events.is_empty() {
        span["events"] = Json::Array(
            s.events
                .iter()
                .map(|e| {
                    json!({
                        "timeUnixNano": nanos(e.timestamp),
                        "name": e.name,
                        "attributes": attributes(&e.attributes),
                    })
                })
                .collect(),
        );
    }
    if !s.links.is_empty() {
        span["links"] = Json::Array(
            s.links
                .iter()
                .map(|l| {
                    let (trace_id, span_id) = context_ids(&l.span_context);
                    json!({
                        "traceId": trace_id,
                        "spanId": span_id,
                        "attributes": attributes(&l.attributes),
                    })
                })
                .collect(),
        );
    }
    span
}

/// An `ExportTraceServiceRequest`: the spans grouped by instrumentation scope.
fn traces_body(resource: &Json, batch: &[SpanData]) -> Json {
    let mut scopes: Vec<(&InstrumentationScope, Vec<Json>)> = Vec::new();
    for s in batch {
        match scopes
            .iter_mut()
            .find(|(scope, _)| *scope == &s.instrumentation_scope)
        {
            Some((_, spans)) => spans.push(span_json(s)),
            None => scopes.push((&s.instrumentation_scope, vec![span_json(s)])),
        }
    }
    let scope_spans: Vec<Json> = scopes
        .into_iter()
        .map(|(scope, spans)| json!({"scope": scope_json(scope), "spans": spans}))
        .collect();
    json!({"resourceSpans": [{"resource": resource, "scopeSpans": scope_spans}]})
}

fn temporality(t: Temporality) -> u8 {
    match t {
        Temporality::Delta => 1,
        _ => 2,
    }
}

trait Number: Copy {
    /// `asDouble` / `asInt` (the latter as a string, being 64-bit).
    fn point(self) -> (&'static str, Json);
    fn as_f64(self) -> f64;
}

impl Number for f64 {
    fn point(self) -> (&'static str, Json) {
        ("asDouble", json!(self))
    }
    fn as_f64(self) -> f64 {
        self
    }
}

impl Number for u64 {
    fn point(self) -> (&'static str, Json) {
        ("asInt", json!(self.to_string()))
    }
    fn as_f64(self) -> f64 {
        self as f64
    }
}

impl Number for i64 {
    fn point(self) -> (&'static str, Json) {
        ("asInt", json!(self.to_string()))
    }
    fn as_f64(self) -> f64 {
        self as f64
    }
}

fn data_json<T: Number>(data: &MetricData<T>) -> Option<(&'static str, Json)> {
    match data {
        MetricData::Gauge(g) => {
            let points: Vec<Json> = g
                .data_points()
                .map(|p| {
                    let (field, value) = p.value().point();
                    let mut j = json!({
                        "attributes": attributes(p.attributes()),
                        "timeUnixNano": nanos(g.time()),
                    });
                    if let Some(start) = g.start_time() {
                        j["startTimeUnixNano"] = json!(nanos(start));
                    }
                    j[field] = value;
                    j
                })
                .collect();
            Some(("gauge", json!({"dataPoints": points})))
        }
        MetricData::Sum(s) => {
            let points: Vec<Json> = s
                .data_points()
                .map(|p| {
                    let (field, value) = p.value().point();
                    let mut j = json!({
                        "attributes": attributes(p.attributes()),
                        "startTimeUnixNano": nanos(s.start_time()),
                        "timeUnixNano": nanos(s.time()),
                    });
                    j[field] = value;
                    j
                })
                .collect();
            Some((
                "sum",
                json!({
                    "dataPoints": points,
                    "aggregationTemporality": temporality(s.temporality()),
                    "isMonotonic": s.is_monotonic(),
                }),
            ))
        }
        MetricData::Histogram(h) => {
            let points: Vec<Json> = h
                .data_points()
                .map(|p| {
                    let mut j = json!({
                        "attributes": attributes(p.attributes()),
                        "startTimeUnixNano": nanos(h.start_time()),
                        "timeUnixNano": nanos(h.time()),
                        "count": p.count().to_string(),
                        "sum": p.sum().as_f64(),
                        "bucketCounts": p.bucket_counts().map(|c| c.to_string()).collect::<Vec<_>>(),
                        "explicitBounds": p.bounds().collect::<Vec<_>>(),
                    });
                    if let Some(min) = p.min() {
                        j["min"] = json!(min.as_f64());
                    }
                    if let Some(max) = p.max() {
                        j["max"] = json!(max.as_f64());
                    }
                    j
                })
                .collect();
            Some((
                "histogram",
                json!({
                    "dataPoints": points,
                    "aggregationTemporality": temporality(h.temporality()),
                }),
            ))
        }
        // Guild records no exponential histograms.
        MetricData::ExponentialHistogram(_) => None,
    }
}

fn metric_json(m: &Metric) -> Option<Json> {
    let (field, data) = match m.data() {
        AggregatedMetrics::F64(d) => data_json(d)?,
        AggregatedMetrics::U64(d) => data_json(d)?,
        AggregatedMetrics::I64(d) => data_json(d)?,
    };
    let mut j = json!({"name": m.name(), "description": m.description(), "unit": m.unit()});
    j[field] = data;
    Some(j)
}

fn scope_metrics_json(s: &ScopeMetrics) -> Option<Json> {
    let metrics: Vec<Json> = s.metrics().filter_map(metric_json).collect();
    (!metrics.is_empty()).then(|| json!({"scope": scope_json(s.scope()), "metrics": metrics}))
}

/// An `ExportMetricsServiceRequest`.
fn metrics_body(m: &ResourceMetrics) -> Json {
    let scopes: Vec<Json> = m.scope_metrics().filter_map(scope_metrics_json).collect();
    json!({"resourceMetrics": [{"resource": resource_json(m.resource()), "scopeMetrics": scopes}]})
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::net::TcpListener;

    use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState};
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};

    use super::*;

    fn span(parent: u64) -> SpanData {
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(0x0af7651916cd43dd8448eb211c80319c_u128),
                SpanId::from(0xb7ad6b7169203331_u64),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::from(parent),
            parent_span_is_remote: true,
            span_kind: SpanKind::Server,
            name: Cow::Borrowed("process guild.bus.v1.ask_question.{principal}"),
            start_time: UNIX_EPOCH + Duration::from_nanos(1_000),
            end_time: UNIX_EPOCH + Duration::from_nanos(2_500),
            attributes: vec![
                KeyValue::new("messaging.system", "nats"),
                KeyValue::new("guild.tokens", 3000_i64),
            ],
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::error("refused"),
            instrumentation_scope: InstrumentationScope::builder("guild").build(),
        }
    }

    #[test]
    fn spans_follow_the_otlp_json_mapping() {
        let body = traces_body(&json!({"attributes": []}), &[span(0x00f067aa0ba902b7)]);
        let s = &body["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(s["traceId"], "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(s["spanId"], "b7ad6b7169203331");
        assert_eq!(s["parentSpanId"], "00f067aa0ba902b7");
        assert_eq!(s["kind"], 2);
        assert_eq!(s["startTimeUnixNano"], "1000");
        assert_eq!(s["attributes"][1]["value"]["intValue"], "3000");
        assert_eq!(s["status"]["code"], 2);
        assert_eq!(
            body["resourceSpans"][0]["scopeSpans"][0]["scope"]["name"],
            "guild"
        );
        let root = traces_body(&json!({}), &[span(0)]);
        assert!(root["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["parentSpanId"].is_null());
    }

    #[test]
    fn a_post_reports_the_receivers_status() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            for status in ["200 OK", "503 Service Unavailable"] {
                let (mut c, _) = listener.accept().unwrap();
                let mut got = Vec::new();
                let mut buf = [0u8; 1024];
                // Headers, then the 2-byte body.
                while !String::from_utf8_lossy(&got).ends_with("{}") {
                    let n = c.read(&mut buf).unwrap();
                    got.extend_from_slice(&buf[..n]);
                }
                c.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .unwrap();
                assert!(String::from_utf8_lossy(&got).starts_with("POST /v1/traces HTTP/1.1\r\n"));
            }
        });
        let client = Client::new(
            Endpoint::parse(&format!("http://127.0.0.1:{port}/v1/traces")).unwrap(),
            vec![("x-key".into(), "v".into())],
            Duration::from_secs(5),
        );
        assert!(client.try_post(b"{}").is_ok());
        assert!(client.try_post(b"{}").unwrap_err().contains("503"));
        server.join().unwrap();
    }
}
