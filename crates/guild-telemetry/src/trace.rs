//! Spans that follow the OpenTelemetry messaging conventions, and W3C trace context
//! (`traceparent`, `tracestate`) carried in NATS headers or stored with a message.
//!
//! Every span here is a `tracing` span at DEBUG level with target `guild`, named for
//! OpenTelemetry by its `otel.name` field (`request guild.bus.v1.ask_question.{principal}`).
//! When nothing is exported the constructors return [`Span::none`] after one atomic load,
//! and the [`SpanExt`] methods return at once: no attribute is formatted, no header written.
//!
//! | span | kind | parent | link |
//! |---|---|---|---|
//! | [`client`]: a request (`request <subject template>`) | CLIENT | the caller's current span | |
//! | [`server`]: its handling (`process <subject template>`) | SERVER | the request's `traceparent` | |
//! | [`producer`]: a message or audit entry made (`create`, `publish`) | PRODUCER | current | |
//! | [`consumer`]: one message or event processed (`process`) | CONSUMER | the message's creation context | the span it was received in |

use std::sync::atomic::{AtomicBool, Ordering};

use async_nats::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, Status, TraceContextExt};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Whether an OpenTelemetry layer is installed (spans are exported).
static ENABLED: AtomicBool = AtomicBool::new(false);

pub(crate) fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Release);
}

/// Whether spans are exported. Code that would compute something only for a span asks
/// this first.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The target of Guild's spans; the exporting layer takes DEBUG spans of this target.
pub const TARGET: &str = "guild";

/// An OpenTelemetry span kind.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Waits for a remote answer (a request).
    Client,
    /// Answers a request.
    Server,
    /// Creates a message or an entry others consume.
    Producer,
    /// Processes a message or an event.
    Consumer,
    /// Anything else.
    Internal,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Client => "client",
            Kind::Server => "server",
            Kind::Producer => "producer",
            Kind::Consumer => "consumer",
            Kind::Internal => "internal",
        }
    }
}

/// A span named `name` for OpenTelemetry, a child of the current span; disabled when
/// nothing is exported.
pub fn span(kind: Kind, name: &str) -> Span {
    if !enabled() {
        return Span::none();
    }
    tracing::debug_span!(target: TARGET, "guild", otel.name = name, otel.kind = kind.as_str())
}

/// A span with the messaging attributes: `messaging.system = nats`, the operation's type
/// and name, the subject and its template (what the span is named after).
fn messaging(
    kind: Kind,
    op_type: &'static str,
    op_name: &'static str,
    subject: Option<&str>,
    template: &str,
) -> Span {
    if !enabled() {
        return Span::none();
    }
    let s = span(kind, &format!("{op_name} {template}"));
    s.attr("messaging.system", "nats");
    s.attr("messaging.operation.type", op_type);
    s.attr("messaging.operation.name", op_name);
    if let Some(subject) = subject {
        s.attr("messaging.destination.name", subject);
    }
    s.attr("messaging.destination.template", template);
    s
}

/// A request's subject template: the last token (the principal) as `{principal}`.
pub fn request_template(subject: &str) -> String {
    match subject.rsplit_once('.') {
        Some((head, _)) => format!("{head}.{{principal}}"),
        None => subject.to_owned(),
    }
}

/// The CLIENT span of a request on `subject` (`request <template>`): enter it, then
/// [`inject`] its context into the request's headers.
pub fn client(subject: &str) -> Span {
    if !enabled() {
        return Span::none();
    }
    messaging(
        Kind::Client,
        "send",
        "request",
        Some(subject),
        &request_template(subject),
    )
}

/// The SERVER span handling a request on `subject` in queue group `group`, a child of the
/// caller's span when the request carries `traceparent` (a root otherwise).
pub fn server(subject: &str, group: &str, headers: Option<&HeaderMap>) -> Span {
    if !enabled() {
        return Span::none();
    }
    let s = messaging(
        Kind::Server,
        "process",
        "process",
        Some(subject),
        &request_template(subject),
    );
    s.attr("messaging.consumer.group.name", group);
    // The remote caller, or nothing: never the ambient span of the serving task.
    let _ = s.set_parent(extract(headers));
    s
}

/// A PRODUCER span: `create` a message (its context becomes the message's creation
/// context) or `publish` an entry on `subject` (`template` names the span). A message
/// whose subject is known only once routed sets `messaging.destination.name` then.
pub fn producer(op_name: &'static str, subject: Option<&str>, template: &str) -> Span {
    if !enabled() {
        return Span::none();
    }
    let op_type = if op_name == "create" {
        "create"
    } else {
        "send"
    };
    messaging(Kind::Producer, op_type, op_name, subject, template)
}

/// The CONSUMER span processing one message or event on `subject`: its parent is the
/// message's creation context `traceparent` (so the processing joins the sender's trace),
/// and it links to the span current now (the receive, or the consumer's own loop).
/// Without a creation context it is a child of the current span.
pub fn consumer(
    subject: &str,
    template: &str,
    group: Option<&str>,
    traceparent: Option<&str>,
) -> Span {
    if !enabled() {
        return Span::none();
    }
    let ambient = Span::current().context().span().span_context().clone();
    let s = messaging(
        Kind::Consumer,
        "process",
        "process",
        Some(subject),
        template,
    );
    if let Some(g) = group {
        s.attr("messaging.consumer.group.name", g);
    }
    if let Some(tp) = traceparent
        && s.parent_traceparent(tp)
        && ambient.is_valid()
    {
        s.add_link(ambient);
    }
    s
}

/// A value a span attribute can take.
pub trait AttrValue {
    /// The OpenTelemetry value.
    fn into_value(self) -> opentelemetry::Value;
}

impl AttrValue for &str {
    fn into_value(self) -> opentelemetry::Value {
        self.to_owned().into()
    }
}
impl AttrValue for String {
    fn into_value(self) -> opentelemetry::Value {
        self.into()
    }
}
impl AttrValue for &String {
    fn into_value(self) -> opentelemetry::Value {
        self.clone().into()
    }
}
impl AttrValue for bool {
    fn into_value(self) -> opentelemetry::Value {
        self.into()
    }
}
impl AttrValue for i64 {
    fn into_value(self) -> opentelemetry::Value {
        self.into()
    }
}
impl AttrValue for u64 {
    fn into_value(self) -> opentelemetry::Value {
        i64::try_from(self).unwrap_or(i64::MAX).into()
    }
}
impl AttrValue for u32 {
    fn into_value(self) -> opentelemetry::Value {
        i64::from(self).into()
    }
}
impl AttrValue for f64 {
    fn into_value(self) -> opentelemetry::Value {
        self.into()
    }
}

/// Trace context on `tracing` spans; every method returns at once on a disabled span.
pub trait SpanExt {
    /// Sets attribute `key`.
    fn attr(&self, key: &'static str, value: impl AttrValue);
    /// Sets attribute `key` to `value()`, computed only when the span is exported.
    fn attr_with<V: AttrValue>(&self, key: &'static str, value: impl FnOnce() -> V);
    /// Marks the span failed with `message`.
    fn fail(&self, message: &str);
    /// Makes the span a child of a stored `traceparent`; false when it does not parse.
    fn parent_traceparent(&self, traceparent: &str) -> bool;
    /// Links the span to a stored `traceparent`.
    fn link_traceparent(&self, traceparent: &str);
    /// The span's context as a `traceparent` value.
    fn traceparent(&self) -> Option<String>;
    /// The span's trace id (32 hex digits).
    fn trace_id(&self) -> Option<String>;
}

impl SpanExt for Span {
    fn attr(&self, key: &'static str, value: impl AttrValue) {
        if !self.is_disabled() {
            self.set_attribute(key, value.into_value());
        }
    }

    fn attr_with<V: AttrValue>(&self, key: &'static str, value: impl FnOnce() -> V) {
        if !self.is_disabled() {
            self.set_attribute(key, value().into_value());
        }
    }

    fn fail(&self, message: &str) {
        if !self.is_disabled() {
            self.set_status(Status::error(message.to_owned()));
        }
    }

    fn parent_traceparent(&self, traceparent: &str) -> bool {
        if self.is_disabled() {
            return false;
        }
        let cx = extract_traceparent(traceparent);
        if !cx.span().span_context().is_valid() {
            return false;
        }
        self.set_parent(cx).is_ok()
    }

    fn link_traceparent(&self, traceparent: &str) {
        if self.is_disabled() {
            return;
        }
        let cx = extract_traceparent(traceparent);
        let sc = cx.span().span_context().clone();
        if sc.is_valid() {
            self.add_link(sc);
        }
    }

    fn traceparent(&self) -> Option<String> {
        if self.is_disabled() {
            return None;
        }
        traceparent_of(self.context().span().span_context())
    }

    fn trace_id(&self) -> Option<String> {
        if self.is_disabled() {
            return None;
        }
        let cx = self.context();
        let sc = cx.span().span_context().clone();
        sc.is_valid().then(|| sc.trace_id().to_string())
    }
}

fn traceparent_of(sc: &SpanContext) -> Option<String> {
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}

/// The current span's context as a `traceparent` value (what a stored message or event
/// carries); `None` when nothing is exported.
pub fn current_traceparent() -> Option<String> {
    if !enabled() {
        return None;
    }
    Span::current().traceparent()
}

/// The current span's trace id; `None` when nothing is exported.
pub fn current_trace_id() -> Option<String> {
    if !enabled() {
        return None;
    }
    Span::current().trace_id()
}

/// Writes the current span's context into `headers` (`traceparent`, and `tracestate`
/// when there is one). Nothing when nothing is exported.
pub fn inject(headers: &mut HeaderMap) {
    if !enabled() {
        return;
    }
    let cx = Span::current().context();
    TraceContextPropagator::new().inject_context(&cx, &mut NatsInjector(headers));
}

/// The `traceparent` value in `headers`, if any.
pub fn traceparent_in(headers: Option<&HeaderMap>) -> Option<&str> {
    headers?.get("traceparent").map(|v| v.as_str())
}

fn extract(headers: Option<&HeaderMap>) -> opentelemetry::Context {
    match headers {
        Some(h) => TraceContextPropagator::new().extract(&NatsExtractor(h)),
        None => opentelemetry::Context::new(),
    }
}

fn extract_traceparent(traceparent: &str) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&One(traceparent))
}

/// Writes trace context into NATS headers.
struct NatsInjector<'a>(&'a mut HeaderMap);

impl Injector for NatsInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // The propagator's keys are the fixed lowercase W3C names, valid header names.
        if let Ok(name) = async_nats::HeaderName::try_from(key) {
            self.0.insert(name, value.as_str());
        }
    }
}

/// Reads trace context from NATS headers (names are case-sensitive: `traceparent`).
struct NatsExtractor<'a>(&'a HeaderMap);

impl Extractor for NatsExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_ref()).collect()
    }
}

/// A stored `traceparent` alone.
struct One<'a>(&'a str);

impl Extractor for One<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key == "traceparent").then_some(self.0)
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent"]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_templates_hide_the_principal() {
        assert_eq!(
            request_template("guild.bus.v1.consume.dev-1"),
            "guild.bus.v1.consume.{principal}"
        );
        assert_eq!(request_template("plain"), "plain");
    }

    #[test]
    fn traceparent_round_trips_through_headers() {
        let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let mut h = HeaderMap::new();
        h.insert("traceparent", tp);
        let cx = extract(Some(&h));
        let sc = cx.span().span_context().clone();
        assert!(sc.is_remote());
        assert_eq!(traceparent_of(&sc).as_deref(), Some(tp));
        assert_eq!(traceparent_in(Some(&h)), Some(tp));
        let mut out = HeaderMap::new();
        TraceContextPropagator::new().inject_context(&cx, &mut NatsInjector(&mut out));
        assert_eq!(out.get("traceparent").map(|v| v.as_str()), Some(tp));
        assert!(
            !extract_traceparent("garbage")
                .span()
                .span_context()
                .is_valid()
        );
    }

    #[test]
    fn disabled_spans_cost_nothing_and_carry_nothing() {
        // No layer installed in unit tests.
        assert!(span(Kind::Server, "x").is_disabled());
        assert_eq!(current_traceparent(), None);
        let mut h = HeaderMap::new();
        inject(&mut h);
        assert!(h.iter().next().is_none());
    }
}
