//! Reacting to other services' events: a durable consumer on `GUILD_EVENTS` shared by
//! every instance of a service, so each event is handled once, and none is missed while
//! the service was down.
//!
//! Each event is processed in a CONSUMER span `process guild.evt.<service>.<event>.{about}`
//! whose parent is the event's `traceparent` (the change that published it), so what the
//! reaction does (a retry, an alert, an assignment) lands in the same trace; it links to
//! nothing else, as the consumer loop has no span of its own.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer, consumer::pull};
use futures_util::StreamExt;
use guild_telemetry::trace::SpanExt;
use tokio::sync::watch;
use tracing::Instrument;

/// Handles the events on `filter_subjects` through durable consumer `name` until `stop`
/// changes. An event `handle` fails is given back and comes again a second later; the
/// consumer is re-opened (with backoff) when it breaks or the stream is not there yet.
pub async fn react<F, Fut>(
    js: jetstream::Context,
    name: &str,
    filter_subjects: Vec<String>,
    mut stop: watch::Receiver<bool>,
    mut handle: F,
) where
    F: FnMut(jetstream::Message) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut backoff = Duration::from_millis(100);
    loop {
        let opened = async {
            let stream = js.get_stream(guild_wire::store::EVENTS_STREAM).await?;
            let c = stream
                .get_or_create_consumer(
                    name,
                    pull::Config {
                        durable_name: Some(name.into()),
                        filter_subjects: filter_subjects.clone(),
                        ack_policy: consumer::AckPolicy::Explicit,
                        ack_wait: Duration::from_secs(30),
                        deliver_policy: consumer::DeliverPolicy::All,
                        ..Default::default()
                    },
                )
                .await?;
            c.messages().await.map_err(async_nats::Error::from)
        };
        let mut messages = match opened.await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(consumer = name, error = %e, "cannot follow events yet; retrying");
                tokio::select! {
                    _ = stop.changed() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        loop {
            let next = tokio::select! {
                _ = stop.changed() => return,
                next = messages.next() => next,
            };
            let Some(Ok(msg)) = next else { break };
            // Processing joins the trace of the change that published the event.
            let span = if guild_telemetry::trace::enabled() {
                guild_telemetry::trace::consumer(
                    msg.subject.as_str(),
                    &guild_wire::subject::event_template(msg.subject.as_str()),
                    Some(name),
                    guild_telemetry::trace::traceparent_in(msg.headers.as_ref()),
                )
            } else {
                tracing::Span::none()
            };
            let outcome = match handle(msg.clone()).instrument(span.clone()).await {
                Ok(()) => msg.ack().await,
                Err(e) => {
                    span.fail(&e);
                    tracing::warn!(consumer = name, subject = %msg.subject, error = %e, "event not handled yet; will retry");
                    msg.ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                        .await
                }
            };
            if let Err(e) = outcome {
                tracing::warn!(consumer = name, error = %e, "could not acknowledge an event");
            }
        }
    }
}

/// What a reaction does with an event it cannot read (a newer writer's form, or a broken
/// one): logged with its cause, counted (`guild.errors{what="event_unreadable"}`), and
/// acknowledged, since it would fail the same way each time it came again.
pub fn skip_unreadable(consumer: &str, msg: &jetstream::Message, error: &dyn std::fmt::Display) {
    tracing::warn!(consumer, subject = %msg.subject, error = %error, "unreadable event skipped");
    guild_telemetry::metrics::count_error("event_unreadable");
}
