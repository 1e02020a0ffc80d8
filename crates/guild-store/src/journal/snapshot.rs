//! Snapshots: the whole state at a sequence, so start-up does not replay all history.
//!
//! When the journal has grown by `Durability::snapshot_every` entries since the last
//! snapshot, the instance whose settle loop notices takes the records that rebuild its
//! state (under the read lock, so they reflect exactly one sequence; the state hands them
//! over shared), serializes them once the lock is released, stores them as an
//! object `state-<seq>` in the object store `guild_<name>_snapshots`, and points the
//! `snapshot` key of the journal's KV bucket at it with a conditional write (two instances
//! racing: one wins, the other deletes its object). The journal is then trimmed before
//! the snapshot, leaving a margin for followers that lag, and never past an entry whose
//! events may still be unpublished. Loading reads the pointer, the object, folds the
//! records into an empty state, and follows the journal from the next sequence.

use std::sync::Arc;

use async_nats::jetstream::{self, object_store};
use bytes::Bytes;
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use super::{Inner, Journal, Record};
use crate::bucket::{Expect, Write};
use crate::{Durability, Error};

/// The pointer to the latest snapshot.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Pointer {
    seq: u64,
    object: String,
}

const POINTER: &str = "snapshot";

/// Creates (or finds) the snapshot store of journal `name`.
pub(super) async fn store(
    js: &jetstream::Context,
    name: &str,
    d: Durability,
) -> Result<object_store::ObjectStore, Error> {
    let bucket = format!("guild_{name}_snapshots");
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
        // The records are taken under the read lock, so they reflect exactly one sequence;
        // folds wait only for that, not for the writing, which at 100,000 missions takes a
        // fifth of a second and runs on a blocking thread.
        let (seq, taken, first_pending) = {
            let g = inner.shared.read().unwrap_or_else(|e| e.into_inner());
            let taken = (inner.spec.records)(&g.state);
            (g.applied, taken, g.pending.keys().next().copied())
        };
        let records = taken.len();
        let bytes = tokio::task::spawn_blocking(move || write_records(&taken))
            .await
            .map_err(|e| Error::Refused(format!("snapshot writer: {e}")))??;
        let object = format!("state-{seq}");
        inner
            .snapshots
            .put(object.as_str(), &mut bytes.as_slice())
            .await
            .map_err(|e| Error::unavailable(format!("store snapshot {object}: {e}")))?;
        let expect = previous
            .as_ref()
            .map_or(Expect::Absent, |(_, rev)| Expect::Revision(*rev));
        let value = Bytes::from(
            serde_json::to_vec(&Pointer {
                seq,
                object: object.clone(),
            })
            .unwrap_or_default(),
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
                let _ = inner.snapshots.delete(&object).await;
                return Ok(seq);
            }
            Err(e) => return Err(e),
        }
        if let Some((old, _)) = previous {
            let _ = inner.snapshots.delete(&old).await;
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
        tracing::info!(journal = %inner.name, seq, records, bytes = bytes.len(), trimmed_before = keep_from, "snapshot taken");
        Ok(seq)
    }
}

/// Records as one JSON array.
fn write_records<R: Record>(records: &[Arc<R>]) -> Result<Vec<u8>, Error> {
    let mut bytes = b"[".to_vec();
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            bytes.push(b',');
        }
        serde_json::to_writer(&mut bytes, r.as_ref())
            .map_err(|e| Error::Refused(format!("snapshot record: {e}")))?;
    }
    bytes.push(b']');
    Ok(bytes)
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
