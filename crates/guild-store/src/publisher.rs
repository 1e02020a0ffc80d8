//! Publishing what a committed change produced: events to the events stream, entries to
//! the audit log. Every event and audit entry carries a stable id that JetStream
//! de-duplicates, so publishing an entry twice (its writer, then a sweeper) stores it once.
//!
//! Trace context: an event carries the `traceparent` it was given when the change was
//! planned (the change's span; [`OutboxMessage::headers`]), whoever publishes it. Each
//! audit append is a PRODUCER span of its own, whose context the stored record carries.

use async_nats::HeaderMap;
use async_nats::jetstream;
use bytes::Bytes;
use guild_telemetry::trace::{self, SpanExt};
use guild_wire::audit::AuditEntry;
use guild_wire::header;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::{AuditLog, Error};

/// An event to publish.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboxMessage {
    /// Its subject (`guild.evt...`).
    pub subject: String,
    /// Its JSON body.
    pub payload: serde_json::Value,
    /// Its de-duplication id.
    pub id: String,
    /// Trace context to carry (`traceparent`, `tracestate`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
}

/// Events sent to their stream, their acknowledgements not awaited yet.
#[must_use = "the events are stored only once `stored` says so"]
pub struct Sent {
    acks: Vec<jetstream::context::PublishAckFuture>,
}

impl Sent {
    /// Waits until the stream stored every event.
    pub async fn stored(self) -> Result<(), Error> {
        for ack in self.acks {
            ack.await.map_err(Error::unavailable)?;
        }
        Ok(())
    }
}

/// Publishes events and audit entries. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Publisher {
    js: jetstream::Context,
    audit: AuditLog,
}

impl Publisher {
    /// A publisher through `js` and `audit`.
    pub fn new(js: jetstream::Context, audit: AuditLog) -> Self {
        Self { js, audit }
    }

    /// The audit log.
    pub fn audit_log(&self) -> &AuditLog {
        &self.audit
    }

    /// Publishes `events` (all sent before any acknowledgement is awaited), then appends
    /// `audit`; returns the audit sequences.
    pub async fn publish(
        &self,
        events: &[OutboxMessage],
        audit: &[AuditEntry],
    ) -> Result<Vec<u64>, Error> {
        self.send(events).await?.stored().await?;
        self.append_audit(audit).await
    }

    /// Sends `events` without waiting for the stream to store them: what is sent on one
    /// connection reaches the server in order, so an answer sent after this follows them.
    pub async fn send(&self, events: &[OutboxMessage]) -> Result<Sent, Error> {
        let mut acks = Vec::with_capacity(events.len());
        for m in events {
            let mut headers = HeaderMap::new();
            headers.insert(header::NATS_MSG_ID, m.id.as_str());
            headers.insert(
                header::SCHEMA,
                guild_wire::SCHEMA_VERSION.to_string().as_str(),
            );
            for (k, v) in &m.headers {
                match async_nats::HeaderName::try_from(k.as_str()) {
                    Ok(name) => headers.insert(name, v.as_str()),
                    // Only trace context travels here: the event is worth more than the
                    // link, so it goes out without the header, and the loss is seen.
                    Err(e) => {
                        tracing::warn!(event = %m.id, header = %k, error = %e, "event header dropped: not a valid header name");
                        guild_telemetry::metrics::count_error("event_header_invalid");
                    }
                }
            }
            let body =
                Bytes::from(serde_json::to_vec(&m.payload).map_err(|e| {
                    Error::Refused(format!("event {} on {}: {e}", m.id, m.subject))
                })?);
            acks.push(
                self.js
                    .publish_with_headers(m.subject.clone(), headers, body)
                    .await
                    .map_err(Error::unavailable)?,
            );
        }
        Ok(Sent { acks })
    }

    /// Appends `audit` to the hash chain, one after another; returns their sequences.
    pub async fn append_audit(&self, audit: &[AuditEntry]) -> Result<Vec<u64>, Error> {
        let mut seqs = Vec::with_capacity(audit.len());
        for a in audit {
            // A PRODUCER span per append (`publish guild.audit.<kind>.{about}`), a child of
            // the change's span; the record carries its context in `traceparent`.
            let span = if trace::enabled() {
                let kind = a.kind.as_str();
                let s = trace::producer(
                    "publish",
                    Some(&guild_wire::subject::audit(kind, &a.about)),
                    &guild_wire::subject::audit_template(kind),
                );
                s.attr("messaging.message.id", a.id.as_str());
                s.attr("guild.audit.kind", kind);
                s
            } else {
                tracing::Span::none()
            };
            let appended = self.audit.append(a).instrument(span.clone()).await;
            match appended {
                Ok(seq) => {
                    span.attr("messaging.nats.sequence", seq);
                    seqs.push(seq);
                }
                Err(e) => {
                    span.fail(&e.to_string());
                    return Err(e);
                }
            }
        }
        Ok(seqs)
    }
}
