//! The one append function for the audit log.
//!
//! Appends are serialized by the stream itself: each carries
//! `Nats-Expected-Last-Sequence` (the position it extends) and `Nats-Msg-Id` (the entry's
//! id). A writer that lost a race re-reads the head and tries again on top of it, so the
//! chain never forks, whatever number of writers (two bus-svc instances, spawner-svc,
//! mission-svc). A retry after a timeout is recognised by its id and not stored twice.
//!
//! Each record is signed by the service that appends it ([`Signer`]): the record names the
//! service and its key, the `Guild-Signature` header carries the Ed25519 signature over the
//! record's stored bytes. The services' public keys are kept in the `guild_audit_keys`
//! bucket ([`AuditLog::register`], [`AuditLog::keys`]), so a verifier can tell a record a
//! service signed from one someone else wrote.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishErrorKind, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use guild_wire::audit::{
    self, AuditEntry, AuditKey, AuditKeys, AuditKind, AuditRecord, GENESIS_HASH, SIGNATURE_HEADER,
    SignedBy, Stored, VerifyReport,
};
use guild_wire::domain::Service;
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

/// The key a service signs its audit records with: its own NATS identity's nkey.
#[derive(Clone)]
pub struct Signer {
    service: Service,
    key: Arc<nkeys::KeyPair>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("service", &self.service)
            .field("key", &self.key.public_key())
            .finish()
    }
}

impl Signer {
    /// `service` signing with the key of `seed` (an nkey seed, `SU...`).
    pub fn new(service: Service, seed: &str) -> Result<Self, Error> {
        let key = nkeys::KeyPair::from_seed(seed)
            .map_err(|e| Error::Refused(format!("the audit signing key: {e}")))?;
        Ok(Self {
            service,
            key: Arc::new(key),
        })
    }

    /// Who signs, as a record names it.
    pub fn signed_by(&self) -> SignedBy {
        SignedBy {
            service: self.service,
            key: self.key.public_key(),
        }
    }
}

/// The audit log. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AuditLog {
    js: jetstream::Context,
    /// The last (sequence, hash) this process saw: appends from one process go one at a
    /// time, and usually need no read of the head first.
    head: Arc<Mutex<Option<Head>>>,
    /// Signs every record this process appends (`None` only without authentication).
    signer: Option<Signer>,
    /// Audit records found missing (the stream deleted, or shorter than this service saw).
    health: crate::Health,
    /// The highest sequence this process knows the log reached: its own appends, and what
    /// its journal recorded before it started.
    seen: Arc<std::sync::atomic::AtomicU64>,
}

/// The bucket of the services' audit keys (`<service>.<public key>`).
pub use guild_wire::store::AUDIT_KEYS_BUCKET as KEYS_BUCKET;

impl AuditLog {
    /// Opens (creating if needed) the audit stream.
    pub async fn open(js: &jetstream::Context, d: Durability) -> Result<Self, Error> {
        Self::open_guarded(js, d, 0).await
    }

    /// Opens the audit stream for a service whose journal recorded seeing it reach
    /// `head_seen`: a missing stream is created only when nothing was ever seen (a first
    /// start); otherwise it, or a stream shorter than `head_seen`, is a loss, reported in
    /// [`health`](Self::health) and never papered over with an empty chain.
    pub async fn open_guarded(
        js: &jetstream::Context,
        d: Durability,
        head_seen: u64,
    ) -> Result<Self, Error> {
        let health = crate::Health::default();
        match find_stream(js, FIND_PATIENCE).await? {
            Some(s) => {
                let last = s.cached_info().state.last_sequence;
                if last < head_seen {
                    health.report(crate::Lost::Audit {
                        from: last + 1,
                        to: head_seen,
                    });
                }
            }
            None if head_seen > 0 => {
                health.report(crate::Lost::Audit {
                    from: 1,
                    to: head_seen,
                });
            }
            None => {
                crate::provision::audit_stream(js, d).await?;
            }
        }
        Ok(Self {
            js: js.clone(),
            head: Arc::new(Mutex::new(None)),
            signer: None,
            health,
            seen: Arc::new(std::sync::atomic::AtomicU64::new(head_seen)),
        })
    }

    /// What this log found missing.
    pub fn health(&self) -> &crate::Health {
        &self.health
    }

    /// The highest sequence this process knows the log reached.
    pub fn seen(&self) -> u64 {
        self.seen.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Starts a new chain after the operator accepted the loss of the old one's records:
    /// creates the stream when it is gone, and forgets the loss.
    pub async fn accept_loss(&self, d: Durability) -> Result<(), Error> {
        crate::provision::audit_stream(&self.js, d).await?;
        *self.head.lock().await = None;
        let last = self.stream().await?.cached_info().state.last_sequence;
        self.seen.store(last, std::sync::atomic::Ordering::Relaxed);
        self.health.clear();
        Ok(())
    }

    /// Clears a loss that is over: the stream answers again and reaches `head_recorded`
    /// (how far the service's journal records the log reaching; another instance's
    /// `recover` records the new chain's head there). Returns whether it did, so the
    /// caller records the new chain's head in place of the old.
    pub async fn refresh_loss(&self, head_recorded: u64) -> Result<bool, Error> {
        if self.health.lost().is_empty() {
            return Ok(false);
        }
        let Ok(stream) = self.js.get_stream(guild_wire::store::AUDIT_STREAM).await else {
            return Ok(false);
        };
        // Back reaching the head the service's journal records: the loss was a stream
        // that did not answer, or the operator accepted it (`recover` records the new
        // chain's head there). A log still shorter stays a loss until the operator says so.
        if stream.cached_info().state.last_sequence < head_recorded {
            return Ok(false);
        }
        *self.head.lock().await = None;
        self.seen.store(
            stream.cached_info().state.last_sequence,
            std::sync::atomic::Ordering::Relaxed,
        );
        self.health.clear();
        Ok(true)
    }

    async fn stream(&self) -> Result<stream::Stream, Error> {
        self.js
            .get_stream(guild_wire::store::AUDIT_STREAM)
            .await
            .map_err(|e| Error::unavailable(format!("the audit stream: {e}")))
    }

    /// The same log, signing what it appends with `signer`.
    pub fn signed_by(mut self, signer: Signer) -> Self {
        self.signer = Some(signer);
        self
    }

    /// Records the signer's public key in the key history (idempotent): verification
    /// accepts a service's records signed by a key listed for it.
    pub async fn register(&self, d: Durability) -> Result<(), Error> {
        let Some(signer) = &self.signer else {
            return Ok(());
        };
        let kv = crate::provision::bucket(&self.js, KEYS_BUCKET, d).await?;
        let by = signer.signed_by();
        let key = format!("{}.{}", by.service.token(), by.key);
        let value = serde_json::to_vec(&AuditKey {
            service: by.service,
            public_key: by.key.clone(),
        })
        .map_err(|e| Error::Refused(e.to_string()))?;
        match kv.create(&key, value.into()).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == jetstream::kv::CreateErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(Error::unavailable(format!("register the audit key: {e}"))),
        }
    }

    /// The key history the services registered.
    pub async fn keys(&self) -> Result<AuditKeys, Error> {
        let kv = match self.js.get_key_value(KEYS_BUCKET).await {
            Ok(kv) => kv,
            // No service has registered a key: nothing is signed.
            Err(_) => return Ok(AuditKeys::default()),
        };
        let mut keys = AuditKeys::default();
        let mut names = kv.keys().await.map_err(Error::unavailable)?;
        while let Some(name) = names.next().await {
            let name = name.map_err(Error::unavailable)?;
            if let Some(value) = kv.get(&name).await.map_err(Error::unavailable)? {
                let key: AuditKey = serde_json::from_slice(&value).map_err(|e| Error::Corrupt {
                    key: name.clone(),
                    reason: e.to_string(),
                })?;
                keys.keys.push(key);
            }
        }
        Ok(keys)
    }

    /// Appends `entry` and returns its sequence.
    pub async fn append(&self, entry: &AuditEntry) -> Result<u64, Error> {
        if let Some(lost) = self.health.lost().first() {
            return Err(Error::Unavailable(format!(
                "{lost} are missing: nothing is appended until the operator recovers"
            )));
        }
        let mut head = self.head.lock().await;
        for attempt in 0..MAX_ATTEMPTS {
            let h = match head.clone() {
                Some(h) => h,
                None => self.read_head().await?,
            };
            let record = AuditRecord::chain(
                entry.clone(),
                h.seq + 1,
                h.hash.clone(),
                self.signer.as_ref().map(Signer::signed_by),
            );
            let bytes = record.to_bytes();
            let mut headers = HeaderMap::new();
            headers.insert(header::NATS_MSG_ID, entry.id.as_str());
            if let Some(signer) = &self.signer {
                let sig = audit::sign(&bytes, &signer.key).map_err(Error::Refused)?;
                headers.insert(SIGNATURE_HEADER, sig.as_str());
            }
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
                    self.seen
                        .fetch_max(ack.sequence, std::sync::atomic::Ordering::Relaxed);
                    return Ok(ack.sequence);
                }
                Err(e) if e.kind() == PublishErrorKind::StreamNotFound => {
                    // No responders: in a cluster electing the stream's leader (a node
                    // restarting), that says nothing. Only JetStream saying the stream
                    // does not exist is a loss (deleted under a running Guild), and never
                    // a stream to recreate.
                    *head = None;
                    // Asked once: the append holds the head, and its caller retries.
                    if matches!(find_stream(&self.js, Duration::ZERO).await, Ok(None)) {
                        self.health.report(crate::Lost::Audit {
                            from: 1,
                            to: self.seen().max(1),
                        });
                        return Err(Error::Unavailable("the audit stream is gone".into()));
                    }
                    return Err(Error::Unavailable(
                        "the audit stream did not answer (its cluster may be electing a leader); retry".into(),
                    ));
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
        let stream = self.stream().await?;
        let seq = stream.cached_info().state.last_sequence;
        if seq == 0 {
            return Ok(Head {
                seq: 0,
                hash: GENESIS_HASH.into(),
            });
        }
        let msg = stream.direct_get(seq).await.map_err(Error::unavailable)?;
        Ok(Head {
            seq,
            hash: audit::hash_hex(&msg.payload),
        })
    }

    /// Every stored record, in order, as `(sequence, bytes)`.
    pub async fn read_all(&self) -> Result<Vec<(u64, Bytes)>, Error> {
        Ok(self
            .read_signed(&[])
            .await?
            .into_iter()
            .map(|r| (r.seq, r.bytes))
            .collect())
    }

    /// The stored records of the given kinds (all when empty), in order, as
    /// `(sequence, bytes)`. Only those records cross the wire: the kind is a subject token.
    pub async fn read(&self, kinds: &[AuditKind]) -> Result<Vec<(u64, Bytes)>, Error> {
        Ok(self
            .read_signed(kinds)
            .await?
            .into_iter()
            .map(|r| (r.seq, r.bytes))
            .collect())
    }

    /// [`read`](Self::read), with each record's signature.
    pub async fn read_signed(&self, kinds: &[AuditKind]) -> Result<Vec<StoredRecord>, Error> {
        let filter_subjects = kinds
            .iter()
            .map(|k| guild_wire::subject::audit(k.as_str(), "*"))
            .collect();
        let mut consumer = self
            .stream()
            .await?
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
            out.push(StoredRecord {
                seq: info.stream_sequence,
                bytes: m.payload.clone(),
                signature: m
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(SIGNATURE_HEADER))
                    .map(|v| v.as_str().to_owned()),
            });
            // Records appended after the read began are left for the next read.
            if info.pending == 0 || out.len() as u64 >= pending {
                break;
            }
        }
        Ok(out)
    }

    /// Re-reads the whole chain and checks it, and every signature against the key
    /// history.
    pub async fn verify(&self) -> Result<VerifyReport, Error> {
        let keys = self.keys().await?;
        let records = self.read_signed(&[]).await?;
        Ok(audit::verify(
            records.iter().map(StoredRecord::as_stored),
            Some(&keys),
        ))
    }
}

/// A record read back: its sequence, its stored bytes, its signature.
#[derive(Clone, Debug)]
pub struct StoredRecord {
    /// The stream sequence.
    pub seq: u64,
    /// The stored bytes.
    pub bytes: Bytes,
    /// The `Guild-Signature` header.
    pub signature: Option<String>,
}

impl StoredRecord {
    /// As the verifier takes it.
    pub fn as_stored(&self) -> Stored<'_> {
        Stored {
            seq: self.seq,
            bytes: &self.bytes,
            signature: self.signature.as_deref(),
        }
    }
}

/// The audit stream, or None when JetStream says it does not exist. Other failures (a
/// timeout, no responders while a cluster elects leaders) are asked again for `patience`:
/// they say nothing about the stream, and taking them for its absence would report a loss.
async fn find_stream(
    js: &jetstream::Context,
    patience: Duration,
) -> Result<Option<stream::Stream>, Error> {
    use jetstream::context::GetStreamErrorKind;
    let mut backoff = Duration::from_millis(100);
    let deadline = std::time::Instant::now() + patience;
    loop {
        match js.get_stream(guild_wire::store::AUDIT_STREAM).await {
            Ok(s) => return Ok(Some(s)),
            Err(e)
                if matches!(e.kind(), GetStreamErrorKind::JetStream(ref j)
                if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
            {
                return Ok(None);
            }
            Err(e) if std::time::Instant::now() >= deadline => {
                return Err(Error::unavailable(format!("the audit stream: {e}")));
            }
            Err(e) => {
                tracing::debug!(error = %e, "the audit stream did not answer; asking again");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// How long [`find_stream`] asks at start-up before it gives up.
const FIND_PATIENCE: Duration = Duration::from_secs(30);
