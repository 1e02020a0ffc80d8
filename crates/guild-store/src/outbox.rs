//! The transactional outbox: what a state change must tell the world is written in the
//! same atomic step as the change (an `outbox.<id>` key in the service's bucket), then
//! published: events to the events stream, audit entries to the audit log. If the writer
//! dies in between, the sweeper of any instance publishes the entry later. Publishing is
//! idempotent (every event and audit entry carries a stable id that JetStream
//! de-duplicates), so an entry published twice is stored once.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream;
use bytes::Bytes;
use guild_wire::audit::AuditEntry;
use guild_wire::{header, store};
use serde::{Deserialize, Serialize};

use crate::bucket::{Bucket, Expect, Write};
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

/// What one state change must publish.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// Unique id (also the key suffix).
    pub id: String,
    /// When it was written, in ms since the epoch (the sweeper leaves young entries to
    /// their writer).
    pub created_at_ms: u64,
    /// Events.
    #[serde(default)]
    pub events: Vec<OutboxMessage>,
    /// Audit entries.
    #[serde(default)]
    pub audit: Vec<AuditEntry>,
}

impl OutboxEntry {
    /// Whether there is nothing to publish.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.audit.is_empty()
    }

    /// The write that stores it (in the same commit as the state change).
    pub fn write(&self) -> Write {
        Write {
            key: store::outbox_key(&self.id),
            value: Bytes::from(serde_json::to_vec(self).unwrap_or_default()),
            expect: Expect::Absent,
        }
    }
}

/// Publishes outbox entries of one bucket.
#[derive(Clone, Debug)]
pub struct Outbox {
    bucket: Bucket,
    js: jetstream::Context,
    audit: AuditLog,
}

impl Outbox {
    /// An outbox over `bucket`, publishing through `js` and `audit`.
    pub fn new(bucket: Bucket, js: jetstream::Context, audit: AuditLog) -> Self {
        Self { bucket, js, audit }
    }

    /// The audit log it appends to.
    pub fn audit_log(&self) -> &AuditLog {
        &self.audit
    }

    /// Publishes `entry` and removes it. Returns the audit sequence of each audit entry.
    pub async fn flush(&self, entry: &OutboxEntry) -> Result<Vec<u64>, Error> {
        let seqs = self.publish(entry).await?;
        self.bucket.delete(&store::outbox_key(&entry.id)).await?;
        Ok(seqs)
    }

    /// Publishes `entry` without an outbox key behind it: for facts with no state change
    /// to go with them, such as an authority denial.
    pub async fn publish(&self, entry: &OutboxEntry) -> Result<Vec<u64>, Error> {
        for m in &entry.events {
            let mut headers = HeaderMap::new();
            headers.insert(header::NATS_MSG_ID, m.id.as_str());
            headers.insert(
                header::SCHEMA,
                guild_wire::SCHEMA_VERSION.to_string().as_str(),
            );
            for (k, v) in &m.headers {
                if let Ok(name) = async_nats::HeaderName::try_from(k.as_str()) {
                    headers.insert(name, v.as_str());
                }
            }
            let body = Bytes::from(serde_json::to_vec(&m.payload).unwrap_or_default());
            let ack = self
                .js
                .publish_with_headers(m.subject.clone(), headers, body)
                .await
                .map_err(Error::unavailable)?;
            ack.await.map_err(Error::unavailable)?;
        }
        let mut seqs = Vec::with_capacity(entry.audit.len());
        for a in &entry.audit {
            seqs.push(self.audit.append(a).await?);
        }
        Ok(seqs)
    }

    /// Publishes every entry older than `grace` (left by a writer that died before it
    /// flushed). Returns how many it published.
    pub async fn sweep(&self, now_ms: u64, grace: Duration) -> Result<usize, Error> {
        let mut flushed = 0;
        for key in self.bucket.keys_with_prefix(store::OUTBOX_PREFIX).await? {
            let Some(e) = self.bucket.get(&key).await? else {
                continue;
            };
            let entry: OutboxEntry = match serde_json::from_slice(&e.value) {
                Ok(entry) => entry,
                Err(err) => {
                    tracing::error!(key = %key, error = %err, "unreadable outbox entry left in place");
                    continue;
                }
            };
            if now_ms.saturating_sub(entry.created_at_ms) < grace.as_millis() as u64 {
                continue;
            }
            tracing::info!(outbox = %entry.id, "publishing an outbox entry a writer left behind");
            self.flush(&entry).await?;
            flushed += 1;
        }
        Ok(flushed)
    }
}
