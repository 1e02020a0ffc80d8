//! A KV bucket with conditional writes of one key or many at once.
//!
//! Every write names the revision it expects (or that the key must not exist). One key is
//! written with the KV API's compare-and-set. Several keys are written as one JetStream
//! atomic batch (ADR-50) in which every message carries its own
//! `Nats-Expected-Last-Subject-Sequence`: the server commits all of them or none, and
//! refuses the batch if any key moved. This is Guild's multi-key building block: a spawn
//! (child, parent, pool, outbox), a completion (the mission and all its dependents) or a
//! dependency (both missions and the graph clock) is one atomic step however many service
//! instances run. On file storage the server syncs a committed batch to disk.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, kv, stream};
use bytes::Bytes;
use serde::Deserialize;

use crate::Error;

/// What a write expects of the key's current revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The key must not exist.
    Absent,
    /// The key must be at this revision.
    Revision(u64),
    /// No condition (for keys no one else writes, such as outbox entries being cleared).
    Any,
}

/// One key to write.
#[derive(Clone, Debug, PartialEq)]
pub struct Write {
    /// The key.
    pub key: String,
    /// The new value.
    pub value: Bytes,
    /// The condition.
    pub expect: Expect,
}

/// A value and its revision.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// Its revision (the stream sequence of the write).
    pub revision: u64,
    /// Its value.
    pub value: Bytes,
}

/// A KV bucket of one service's state.
#[derive(Clone, Debug)]
pub struct Bucket {
    name: String,
    kv: kv::Store,
    /// The bucket's stream, for its last sequence (a read fence).
    stream: stream::Stream,
    client: async_nats::Client,
    timeout: Duration,
}

#[derive(Deserialize)]
struct PubAck {
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    error: Option<ApiError>,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    err_code: u64,
    #[serde(default)]
    description: String,
}

/// JetStream's "wrong last sequence" error code.
const WRONG_LAST_SEQUENCE: u64 = 10071;

impl Bucket {
    /// Opens (creating if needed) the bucket `name`.
    pub async fn open(
        js: &jetstream::Context,
        name: &str,
        d: crate::Durability,
    ) -> Result<Self, Error> {
        let kv = crate::provision::bucket(js, name, d).await?;
        let stream = js
            .get_stream(guild_wire::subject::js::kv_stream(name))
            .await
            .map_err(Error::unavailable)?;
        Ok(Self {
            name: name.into(),
            kv,
            stream,
            client: js.client(),
            timeout: Duration::from_secs(5),
        })
    }

    /// Opens bucket `name`, which its owner made, without changing it (a follower of
    /// another service's journal may read its bucket, not configure it): waits until it
    /// exists.
    pub async fn open_existing(js: &jetstream::Context, name: &str) -> Result<Self, Error> {
        let stream =
            crate::provision::wait_for_stream(js, &guild_wire::subject::js::kv_stream(name))
                .await?;
        let kv = js.get_key_value(name).await.map_err(Error::unavailable)?;
        Ok(Self {
            name: name.into(),
            kv,
            stream,
            client: js.client(),
            timeout: Duration::from_secs(5),
        })
    }

    /// The bucket's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The underlying KV store.
    pub fn kv(&self) -> &kv::Store {
        &self.kv
    }

    /// The latest value of `key`, read from the stream leader's direct get.
    pub async fn get(&self, key: &str) -> Result<Option<Entry>, Error> {
        match self.kv.entry(key).await.map_err(Error::unavailable)? {
            Some(e) if e.operation == kv::Operation::Put => Ok(Some(Entry {
                key: e.key,
                revision: e.revision,
                value: e.value,
            })),
            _ => Ok(None),
        }
    }

    /// The sequence of the bucket's latest write: a read fence (a view that has applied
    /// this revision has seen every write acknowledged before the call).
    pub async fn last_revision(&self) -> Result<u64, Error> {
        let info = self.stream.get_info().await.map_err(Error::unavailable)?;
        Ok(info.state.last_sequence)
    }

    /// Deletes `key` (an outbox entry once published).
    pub async fn delete(&self, key: &str) -> Result<(), Error> {
        self.kv.delete(key).await.map_err(Error::unavailable)
    }

    /// Keys starting with `prefix`.
    pub async fn keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>, Error> {
        use futures_util::TryStreamExt;
        let keys = self.kv.keys().await.map_err(Error::unavailable)?;
        let all: Vec<String> = keys.try_collect().await.map_err(Error::unavailable)?;
        Ok(all.into_iter().filter(|k| k.starts_with(prefix)).collect())
    }

    /// Writes every key in `writes` or none of them, returning their new revisions in order.
    /// [`Error::Conflict`] means some key was not at its expected revision.
    pub async fn commit(&self, writes: &[Write]) -> Result<Vec<u64>, Error> {
        match writes {
            [] => Ok(Vec::new()),
            [one] => self.commit_one(one).await.map(|r| vec![r]),
            many => self.commit_batch(many).await,
        }
    }

    async fn commit_one(&self, w: &Write) -> Result<u64, Error> {
        match w.expect {
            Expect::Absent => {
                self.kv
                    .create(&w.key, w.value.clone())
                    .await
                    .map_err(|e| match e.kind() {
                        kv::CreateErrorKind::AlreadyExists => Error::Conflict,
                        _ => Error::unavailable(e),
                    })
            }
            Expect::Revision(r) => self
                .kv
                .update(&w.key, w.value.clone(), r)
                .await
                .map_err(|e| match e.kind() {
                    kv::UpdateErrorKind::WrongLastRevision => Error::Conflict,
                    _ => Error::unavailable(e),
                }),
            Expect::Any => self
                .kv
                .put(&w.key, w.value.clone())
                .await
                .map_err(Error::unavailable),
        }
    }

    async fn commit_batch(&self, writes: &[Write]) -> Result<Vec<u64>, Error> {
        if writes.len() > 1000 {
            return Err(Error::Refused(format!(
                "{} keys in one batch; JetStream allows 1000",
                writes.len()
            )));
        }
        let batch_id = uuid::Uuid::new_v4().simple().to_string();
        let last = writes.len() - 1;
        for (i, w) in writes.iter().enumerate() {
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Batch-Id", batch_id.as_str());
            headers.insert("Nats-Batch-Sequence", (i + 1).to_string().as_str());
            match w.expect {
                Expect::Absent => headers.insert("Nats-Expected-Last-Subject-Sequence", "0"),
                Expect::Revision(r) => headers.insert(
                    "Nats-Expected-Last-Subject-Sequence",
                    r.to_string().as_str(),
                ),
                Expect::Any => {}
            }
            let subject = format!("$KV.{}.{}", self.name, w.key);
            if i < last {
                // The server acknowledges the batch as a whole on commit; intermediate
                // messages need no reply, and one connection keeps them in order.
                self.client
                    .publish_with_headers(subject, headers, w.value.clone())
                    .await
                    .map_err(Error::unavailable)?;
                continue;
            }
            headers.insert("Nats-Batch-Commit", "1");
            let request = self
                .client
                .request_with_headers(subject, headers, w.value.clone());
            let reply = tokio::time::timeout(self.timeout, request)
                .await
                .map_err(|_| Error::Unavailable("batch commit timed out; outcome unknown".into()))?
                .map_err(Error::unavailable)?;
            let ack: PubAck = serde_json::from_slice(&reply.payload)
                .map_err(|e| Error::Refused(format!("unreadable batch ack: {e}")))?;
            if let Some(err) = ack.error {
                return Err(if err.err_code == WRONG_LAST_SEQUENCE {
                    Error::Conflict
                } else {
                    Error::Refused(format!(
                        "batch refused ({}): {}",
                        err.err_code, err.description
                    ))
                });
            }
            let first = ack.seq - last as u64;
            return Ok((0..writes.len() as u64).map(|k| first + k).collect());
        }
        Err(Error::Refused("empty batch".into()))
    }
}
