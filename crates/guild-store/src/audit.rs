//! The one append function for the audit log.
//!
//! Appends are serialized by the stream itself: each carries
//! `Nats-Expected-Last-Sequence` (the position it extends) and `Nats-Msg-Id` (the entry's
//! id). A writer that lost a race re-reads the head and tries again on top of it, so the
//! chain never forks, whatever number of writers (two bus-svc instances, spawner-svc,
//! mission-svc). A retry after a timeout is recognised by its id and not stored twice.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishErrorKind, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use guild_wire::audit::{self, AuditEntry, AuditKind, AuditRecord, GENESIS_HASH, VerifyReport};
use guild_wire::header;
use tokio::sync::Mutex;

use crate::{Durability, Error};

/// How many times an append re-reads the head after losing a race before giving up.
const MAX_ATTEMPTS: usize = 200;

#[derive(Clone, Debug)]
struct Head {
    seq: u64,
    hash: String,
}

/// The audit log. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AuditLog {
    js: jetstream::Context,
    stream: stream::Stream,
    /// The last (sequence, hash) this process saw: appends from one process go one at a
    /// time, and usually need no read of the head first.
    head: Arc<Mutex<Option<Head>>>,
}

impl AuditLog {
    /// Opens (creating if needed) the audit stream.
    pub async fn open(js: &jetstream::Context, d: Durability) -> Result<Self, Error> {
        let stream = crate::provision::audit_stream(js, d).await?;
        Ok(Self {
            js: js.clone(),
            stream,
            head: Arc::new(Mutex::new(None)),
        })
    }

    /// Appends `entry` and returns its sequence.
    pub async fn append(&self, entry: &AuditEntry) -> Result<u64, Error> {
        let mut head = self.head.lock().await;
        for attempt in 0..MAX_ATTEMPTS {
            let h = match head.clone() {
                Some(h) => h,
                None => self.read_head().await?,
            };
            let record = AuditRecord::chain(entry.clone(), h.seq + 1, h.hash.clone());
            let bytes = record.to_bytes();
            let mut headers = HeaderMap::new();
            headers.insert(header::NATS_MSG_ID, entry.id.as_str());
            headers.insert("Nats-Expected-Last-Sequence", h.seq.to_string().as_str());
            // The appending span's context, when traces are exported.
            guild_telemetry::trace::inject(&mut headers);
            let sent = self
                .js
                .publish_with_headers(record.subject(), headers, Bytes::from(bytes.clone()))
                .await;
            let ack = match sent {
                Ok(future) => future.await,
                Err(e) => Err(e),
            };
            match ack {
                Ok(ack) if ack.duplicate => {
                    // Stored before (a retry after a lost ack); the head moved on since.
                    *head = None;
                    return Ok(ack.sequence);
                }
                Ok(ack) => {
                    *head = Some(Head {
                        seq: ack.sequence,
                        hash: audit::hash_hex(&bytes),
                    });
                    return Ok(ack.sequence);
                }
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                    *head = None;
                    // Another writer extended the chain; back off a little so several
                    // writers spread out instead of colliding in lockstep.
                    if attempt > 2 {
                        tokio::time::sleep(Duration::from_micros(50 * attempt as u64)).await;
                    }
                }
                Err(e) if e.kind() == PublishErrorKind::TimedOut => {
                    // Unknown outcome: the same id retried is de-duplicated if it landed.
                    *head = None;
                }
                Err(e) => return Err(Error::Refused(format!("audit append: {e}"))),
            }
        }
        Err(Error::Unavailable(
            "audit append kept losing races; retry".into(),
        ))
    }

    async fn read_head(&self) -> Result<Head, Error> {
        let info = self.stream.get_info().await.map_err(Error::unavailable)?;
        let seq = info.state.last_sequence;
        if seq == 0 {
            return Ok(Head {
                seq: 0,
                hash: GENESIS_HASH.into(),
            });
        }
        let msg = self
            .stream
            .direct_get(seq)
            .await
            .map_err(Error::unavailable)?;
        Ok(Head {
            seq,
            hash: audit::hash_hex(&msg.payload),
        })
    }

    /// Every stored record, in order, as `(sequence, bytes)`.
    pub async fn read_all(&self) -> Result<Vec<(u64, Bytes)>, Error> {
        self.read(&[]).await
    }

    /// The stored records of the given kinds (all when empty), in order, as
    /// `(sequence, bytes)`. Only those records cross the wire: the kind is a subject token.
    pub async fn read(&self, kinds: &[AuditKind]) -> Result<Vec<(u64, Bytes)>, Error> {
        let filter_subjects = kinds
            .iter()
            .map(|k| guild_wire::subject::audit(k.as_str(), "*"))
            .collect();
        let mut consumer = self
            .stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                deliver_policy: jetstream::consumer::DeliverPolicy::All,
                filter_subjects,
                ..Default::default()
            })
            .await
            .map_err(Error::unavailable)?;
        let pending = consumer
            .info()
            .await
            .map_err(Error::unavailable)?
            .num_pending;
        let mut out = Vec::with_capacity(pending as usize);
        if pending == 0 {
            return Ok(out);
        }
        let mut messages = consumer.messages().await.map_err(Error::unavailable)?;
        while let Some(next) = messages.next().await {
            let m = next.map_err(Error::unavailable)?;
            let info = m.info().map_err(Error::unavailable)?;
            out.push((info.stream_sequence, m.payload.clone()));
            // Records appended after the read began are left for the next read.
            if info.pending == 0 || out.len() as u64 >= pending {
                break;
            }
        }
        Ok(out)
    }

    /// Re-reads the whole chain and checks it.
    pub async fn verify(&self) -> Result<VerifyReport, Error> {
        let records = self.read_all().await?;
        Ok(audit::verify(records.iter().map(|(s, b)| (*s, b.as_ref()))))
    }

    /// The stream, for tests and operators.
    pub fn stream(&self) -> &stream::Stream {
        &self.stream
    }
}
