//! Snapshots: the whole state at a sequence, so start-up does not replay all history.
//!
//! When the journal has grown by `Durability::snapshot_every` entries since the last
//! snapshot, the instance whose settle loop notices takes the records that rebuild its
//! state (under the read lock, so they reflect exactly one sequence; the state hands them
//! over shared), serializes them once the lock is released, compressing as it goes (LZ4:
//! 48 MB of JSON for 100,000 missions stores as 7.5 MB), stores them a little at a time as
//! an object `state-<seq>` in the object store `guild_<name>_snapshots`, and points the
//! `snapshot` key of the journal's KV bucket at it with a conditional write (two instances
//! racing: one wins, the other deletes its object). The journal is then trimmed before
//! the snapshot, leaving a margin for followers that lag, and never past an entry whose
//! events may still be unpublished. Loading reads the pointer, the object, folds the
//! records into an empty state, and follows the journal from the next sequence.

use std::io::{Read, Write as _};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_nats::jetstream::{self, object_store};
use bytes::Bytes;
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use super::{Inner, Journal, Record};
use crate::bucket::{Expect, Write};
use crate::{Durability, Error};

/// The pointer to the latest snapshot.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Pointer {
    seq: u64,
    object: String,
    /// Absent in pointers written before snapshots were compressed.
    #[serde(default)]
    encoding: Encoding,
}

/// How a snapshot object's bytes hold its records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Encoding {
    /// One JSON array.
    #[default]
    Json,
    /// The JSON array as an LZ4 frame: about a seventh of the bytes for nats-server to
    /// store, which it does while answering requests.
    JsonLz4,
}

const POINTER: &str = "snapshot";

/// Finds the snapshot store of journal `name`, which its owner made (waits for it).
pub(super) async fn existing_store(
    js: &jetstream::Context,
    name: &str,
) -> Result<object_store::ObjectStore, Error> {
    let bucket = guild_wire::store::snapshot_bucket(name);
    crate::provision::wait_for_stream(js, &guild_wire::subject::js::object_stream(&bucket)).await?;
    js.get_object_store(&bucket)
        .await
        .map_err(|e| Error::unavailable(format!("{bucket}: {e}")))
}

/// Creates (or finds) the snapshot store of journal `name`.
pub(super) async fn store(
    js: &jetstream::Context,
    name: &str,
    d: Durability,
) -> Result<object_store::ObjectStore, Error> {
    let bucket = guild_wire::store::snapshot_bucket(name);
    match js.get_object_store(&bucket).await {
        Ok(s) => Ok(s),
        Err(_) => match js
            .create_object_store(object_store::Config {
                bucket: bucket.clone(),
                description: Some(format!("snapshots of the {name} journal")),
                num_replicas: d.replicas,
                ..Default::default()
            })
            .await
        {
            Ok(s) => Ok(s),
            // Another instance created it first.
            Err(create) => js
                .get_object_store(&bucket)
                .await
                .map_err(|_| Error::unavailable(format!("create {bucket}: {create}"))),
        },
    }
}

async fn pointer<S, R>(inner: &Inner<S, R>) -> Result<Option<(Pointer, u64)>, Error> {
    let Some(e) = inner.meta.get(POINTER).await? else {
        return Ok(None);
    };
    let p: Pointer = serde_json::from_slice(&e.value).map_err(|err| Error::Corrupt {
        key: POINTER.into(),
        reason: err.to_string(),
    })?;
    Ok(Some((p, e.revision)))
}

/// Replaces the state with the latest snapshot, if there is one newer than what is folded
/// in. Returns the sequence the state now reflects.
pub(super) async fn load<S, R: Record>(inner: &Inner<S, R>) -> Result<u64, Error> {
    let Some((p, _)) = pointer(inner).await? else {
        return Ok(inner.shared.read().map(|g| g.applied).unwrap_or(0));
    };
    if inner.shared.read().is_ok_and(|g| g.applied >= p.seq) {
        return Ok(p.seq);
    }
    let mut object = inner
        .snapshots
        .get(&p.object)
        .await
        .map_err(|e| Error::unavailable(format!("snapshot {}: {e}", p.object)))?;
    let mut bytes = Vec::new();
    object
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| Error::unavailable(format!("snapshot {}: {e}", p.object)))?;
    if p.encoding == Encoding::JsonLz4 {
        let mut json = Vec::new();
        lz4_flex::frame::FrameDecoder::new(bytes.as_slice())
            .read_to_end(&mut json)
            .map_err(|e| Error::Corrupt {
                key: p.object.clone(),
                reason: e.to_string(),
            })?;
        bytes = json;
    }
    let mut state = (inner.spec.initial)();
    let mut n = 0usize;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    Folding {
        state: &mut state,
        fold: &inner.spec.fold,
        count: &mut n,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end())
    .map_err(|e| Error::Corrupt {
        key: p.object.clone(),
        reason: e.to_string(),
    })?;
    drop(bytes);
    let first = inner
        .stream
        .get_info()
        .await
        .map_err(Error::unavailable)?
        .state
        .first_sequence;
    let mut g = inner.shared.write().unwrap_or_else(|e| e.into_inner());
    g.state = state;
    g.applied = p.seq;
    g.pending.retain(|s, _| *s > p.seq);
    g.rescan = Some((first, p.seq));
    drop(g);
    inner.applied_tx.send_replace(p.seq);
    tracing::info!(journal = %inner.name, seq = p.seq, records = n, "loaded snapshot");
    Ok(p.seq)
}

impl<S: Send + Sync + 'static, R: Record> Journal<S, R> {
    /// Takes a snapshot when the journal grew by the configured number of entries since
    /// the last one; returns its sequence when it took one.
    pub async fn snapshot_if_due(&self) -> Result<Option<u64>, Error> {
        let inner = &self.inner;
        let every = inner.durability.snapshot_every;
        if !inner.writer_role || every == 0 {
            return Ok(None);
        }
        let applied = self.applied();
        let current = pointer(inner).await?;
        let last = current.as_ref().map_or(0, |(p, _)| p.seq);
        if applied < last + every {
            return Ok(None);
        }
        self.snapshot(current.map(|(p, rev)| (p.object, rev)))
            .await
            .map(Some)
    }

    /// Takes a snapshot now.
    async fn snapshot(&self, previous: Option<(String, u64)>) -> Result<u64, Error> {
        let inner = &self.inner;
        let started = std::time::Instant::now();
        // The records are taken under the read lock, so they reflect exactly one sequence;
        // folds wait only for that (about 2 ms at 100,000 missions), not for the writing.
        let (seq, taken, first_pending) = {
            let g = inner.shared.read().unwrap_or_else(|e| e.into_inner());
            let taken = (inner.spec.records)(&g.state);
            (g.applied, taken, g.pending.keys().next().copied())
        };
        let records = taken.len();
        let object = format!("state-{seq}");
        let bytes = store_compressed(&inner.snapshots, &object, taken).await?;
        let expect = previous
            .as_ref()
            .map_or(Expect::Absent, |(_, rev)| Expect::Revision(*rev));
        let value = Bytes::from(
            serde_json::to_vec(&Pointer {
                seq,
                object: object.clone(),
                encoding: Encoding::JsonLz4,
            })
            .map_err(|e| Error::Refused(format!("snapshot pointer: {e}")))?,
        );
        match inner
            .meta
            .commit(&[Write {
                key: POINTER.into(),
                value,
                expect,
            }])
            .await
        {
            Ok(_) => {}
            Err(Error::Conflict) => {
                // Another instance snapshotted first; ours is not needed.
                discard(inner, &object).await;
                return Ok(seq);
            }
            Err(e) => return Err(e),
        }
        if let Some((old, _)) = previous {
            discard(inner, &old).await;
        }
        // Trim before the snapshot, keeping a margin for lagging followers and every entry
        // whose events may be unpublished.
        let margin = inner.durability.snapshot_every / 10;
        let mut keep_from = seq.saturating_sub(margin);
        if let Some(p) = first_pending {
            keep_from = keep_from.min(p);
        }
        if keep_from > 1 {
            inner
                .stream
                .purge()
                .sequence(keep_from)
                .await
                .map_err(|e| Error::unavailable(format!("trim journal {}: {e}", inner.name)))?;
        }
        tracing::info!(journal = %inner.name, seq, records, bytes, trimmed_before = keep_from, took_ms = started.elapsed().as_millis() as u64, "snapshot taken");
        Ok(seq)
    }
}

/// Deletes snapshot object `object`, which no pointer names. A failure costs only its
/// space, so it is logged and counted rather than failing the snapshot.
async fn discard<S, R>(inner: &Inner<S, R>, object: &str) {
    if let Err(e) = inner.snapshots.delete(object).await {
        tracing::warn!(journal = %inner.name, object, error = %e, "could not delete an unused snapshot");
        guild_telemetry::metrics::count_error("snapshot_not_deleted");
    }
}

/// Serializes and compresses `records` on a blocking thread, off the runtime that
/// answers requests, and stores them as object `object`; returns the size stored.
async fn store_compressed<R: Record>(
    store: &object_store::ObjectStore,
    object: &str,
    records: Vec<Arc<R>>,
) -> Result<usize, Error> {
    let bytes = tokio::task::spawn_blocking(move || write_compressed(&records))
        .await
        .map_err(|e| Error::Refused(format!("snapshot writer: {e}")))??;
    store
        .put(object, &mut Paced::new(&bytes))
        .await
        .map_err(|e| Error::unavailable(format!("store snapshot {object}: {e}")))?;
    Ok(bytes.len())
}

/// Bytes handed to the object store per read, and so per stored chunk.
const PIECE: usize = 32 * 1024;
/// The pause before each piece after the first.
const PAUSE: Duration = Duration::from_millis(1);

/// Hands a snapshot to the object store `PIECE` bytes at a time with a pause before each.
/// The store sends each read as one chunk and waits for it to be stored; unpaced, that
/// kept nats-server busy with nothing else for as long as it lasted, and requests answered
/// meanwhile took 1-2 ms instead of 0.3 (measured at 100,000 missions). Paced, a 7 MB
/// snapshot takes about half a second to store, and requests hardly notice.
struct Paced<'a> {
    rest: &'a [u8],
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<'a> Paced<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            rest: bytes,
            pause: None,
        }
    }
}

impl AsyncRead for Paced<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Some(pause) = self.pause.as_mut() {
            std::task::ready!(pause.as_mut().poll(cx));
        }
        let n = PIECE.min(self.rest.len()).min(buf.remaining());
        let (now, later) = self.rest.split_at(n);
        buf.put_slice(now);
        self.rest = later;
        self.pause = Some(Box::pin(tokio::time::sleep(PAUSE)));
        Poll::Ready(Ok(()))
    }
}

/// Records written between two yields of the CPU: some 40 microseconds of writing, about as
/// long as a request's thread that wakes on the writer's core then waits. Every 256 records
/// (half a millisecond) left requests answered during a snapshot at 1-2 ms instead of 0.3.
const YIELD_EVERY: usize = 16;

/// Records as one JSON array, compressed as an LZ4 frame as it is written. Writing takes
/// about 0.4 s at 100,000 missions, and the scheduler lets a thread that holds a core run
/// on for a slice of a millisecond or more even when a request's thread wakes on it; so the
/// writer yields the core every [`YIELD_EVERY`] records, which costs next to nothing when
/// nothing waits.
fn write_compressed<R: Record>(records: &[Arc<R>]) -> Result<Vec<u8>, Error> {
    let failed = |e: std::io::Error| Error::Refused(format!("snapshot: {e}"));
    let mut out = lz4_flex::frame::FrameEncoder::new(Vec::new());
    out.write_all(b"[").map_err(failed)?;
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            out.write_all(b",").map_err(failed)?;
        }
        if i % YIELD_EVERY == 0 {
            std::thread::yield_now();
        }
        serde_json::to_writer(&mut out, r.as_ref())
            .map_err(|e| Error::Refused(format!("snapshot record: {e}")))?;
    }
    out.write_all(b"]").map_err(failed)?;
    out.finish()
        .map_err(|e| Error::Refused(format!("snapshot: {e}")))
}

/// Folds a snapshot's records into a state as they are parsed, so loading never holds
/// the records and the state at once.
struct Folding<'a, S, R> {
    state: &'a mut S,
    fold: &'a super::Fold<S, R>,
    count: &'a mut usize,
}

impl<'de, S, R: Record> DeserializeSeed<'de> for Folding<'_, S, R> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, S, R: Record> Visitor<'de> for Folding<'_, S, R> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of journal records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(r) = seq.next_element::<R>()? {
            (self.fold)(self.state, r);
            *self.count += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pointer_written_before_compression_reads_as_plain_json() {
        let p: Pointer = serde_json::from_str(r#"{"seq":5,"object":"state-5"}"#).unwrap();
        assert_eq!(p.encoding, Encoding::Json);
        let p: Pointer =
            serde_json::from_str(r#"{"seq":5,"object":"state-5","encoding":"json_lz4"}"#).unwrap();
        assert_eq!(p.encoding, Encoding::JsonLz4);
    }

    #[tokio::test(start_paused = true)]
    async fn paced_reading_hands_over_every_byte_a_piece_at_a_time() {
        let bytes: Vec<u8> = (0..PIECE * 3 + 100).map(|i| i as u8).collect();
        let mut paced = Paced::new(&bytes);
        let (mut read, mut pieces) = (Vec::new(), 0);
        let start = tokio::time::Instant::now();
        loop {
            let mut buf = vec![0; PIECE * 2];
            let n = paced.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            assert!(n <= PIECE);
            read.extend_from_slice(&buf[..n]);
            pieces += 1;
        }
        assert_eq!(read, bytes);
        assert_eq!(pieces, 4);
        assert!(
            start.elapsed() >= PAUSE * 4,
            "paused before each read after the first"
        );
    }
}
