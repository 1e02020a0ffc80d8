//! A service's state as a replicated journal.
//!
//! Every change a service commits is one message on its journal stream
//! (`GUILD_JOURNAL_<NAME>`, subject `guild.journal.<name>`): the records the decision saved,
//! plus the events and audit entries it produced. Each append carries
//! `Nats-Expected-Last-Sequence` = the last entry the writer had folded in, so an append
//! lands only on top of the state it was decided from: however many instances write, the
//! journal is one serial history and no update is lost. Every instance folds the journal,
//! in order, into its in-memory state (through its fold function); a restarted instance (or nats-server)
//! replays it.
//!
//! One message per change keeps a multi-record change atomic at the cost of one JetStream
//! publish, instead of an atomic batch (which the server syncs to disk on commit).
//!
//! Publishing: the writer publishes an entry's events and audit entries right after the
//! append. Each writer keeps a cursor (`cursor.<writer>` in the journal's KV bucket): every
//! entry of its up to the cursor is published. An entry older than the grace period and
//! past its writer's cursor (the writer died before publishing) is published by whichever
//! instance sees it, with the same de-duplication ids, so it is stored once.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, context::PublishErrorKind, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use guild_wire::audit::AuditEntry;
use guild_wire::header;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::bucket::{Bucket, Expect, Write};
use crate::publisher::{OutboxMessage, Publisher};
use crate::{Durability, Error};

/// What journal records must be.
pub trait Record: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}
impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> Record for T {}

type FoldFn<S, R> = Box<dyn Fn(&mut S, R) + Send + Sync>;

/// One journal message: a committed change.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound = "R: Serialize + DeserializeOwned")]
pub struct Entry<R> {
    /// The records saved.
    pub records: Vec<R>,
    /// Events to publish.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<OutboxMessage>,
    /// Audit entries to append.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audit: Vec<AuditEntry>,
    /// The instance that wrote it.
    pub writer: String,
    /// When, in ms since the epoch.
    pub at_ms: u64,
}

impl<R> Entry<R> {
    fn has_outbox(&self) -> bool {
        !self.events.is_empty() || !self.audit.is_empty()
    }
}

/// An entry's publishable part, kept until its writer's cursor passes it.
#[derive(Clone, Debug)]
struct Pending {
    writer: String,
    at_ms: u64,
    events: Vec<OutboxMessage>,
    audit: Vec<AuditEntry>,
}

struct Shared<S> {
    state: S,
    /// The last journal sequence folded in.
    applied: u64,
    /// Entries whose events or audit entries may not be published yet.
    pending: BTreeMap<u64, Pending>,
    /// What this instance published of its own entries.
    published_own: std::collections::BTreeSet<u64>,
}

struct Inner<S, R> {
    name: String,
    subject: String,
    writer: String,
    js: jetstream::Context,
    stream: stream::Stream,
    /// Writer cursors and other journal metadata.
    meta: Bucket,
    shared: RwLock<Shared<S>>,
    /// Folds one saved record into the state.
    fold: FoldFn<S, R>,
    /// False for a read-only follower, which keeps nothing to publish.
    writer_role: bool,
    applied_tx: watch::Sender<u64>,
    /// The follower task, stopped when the last handle goes.
    task: std::sync::Mutex<Option<tokio::task::AbortHandle>>,
}

impl<S, R> Drop for Inner<S, R> {
    fn drop(&mut self) {
        if let Some(t) = self.task.lock().ok().and_then(|mut t| t.take()) {
            t.abort();
        }
    }
}

/// A replicated state `S` built by folding records `R` in journal order. Cheap to clone.
pub struct Journal<S, R> {
    inner: Arc<Inner<S, R>>,
}

impl<S, R> Clone for Journal<S, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<S: Send + Sync + 'static, R: Record> Journal<S, R> {
    /// Opens (creating if needed) journal `name` for writing, replays it into `initial`
    /// through `fold`, and keeps following it. Returns once everything appended before the
    /// call is in.
    pub async fn open(
        js: &jetstream::Context,
        name: &str,
        initial: S,
        fold: impl Fn(&mut S, R) + Send + Sync + 'static,
        d: Durability,
    ) -> Result<Self, Error> {
        Self::start(js, name, initial, Box::new(fold), d, true).await
    }

    /// Opens another service's journal read-only: its state, kept in step, for routing and
    /// authorization. A follower never appends or publishes.
    pub async fn follow(
        js: &jetstream::Context,
        name: &str,
        initial: S,
        fold: impl Fn(&mut S, R) + Send + Sync + 'static,
        d: Durability,
    ) -> Result<Self, Error> {
        Self::start(js, name, initial, Box::new(fold), d, false).await
    }

    async fn start(
        js: &jetstream::Context,
        name: &str,
        initial: S,
        fold: FoldFn<S, R>,
        d: Durability,
        writer: bool,
    ) -> Result<Self, Error> {
        let subject = guild_wire::store::journal_subject(name);
        let stream = crate::provision::ensure_stream(
            js,
            stream::Config {
                name: guild_wire::store::journal_stream(name),
                description: Some(format!(
                    "Guild {name} state: one message per committed change"
                )),
                subjects: vec![subject.clone()],
                storage: stream::StorageType::File,
                retention: stream::RetentionPolicy::Limits,
                discard: stream::DiscardPolicy::New,
                deny_delete: true,
                allow_direct: true,
                duplicate_window: guild_wire::store::AUDIT_DUPLICATE_WINDOW,
                num_replicas: d.replicas,
                ..Default::default()
            },
        )
        .await?;
        let meta = Bucket::open(js, &format!("guild_{name}_journal"), d).await?;
        let (applied_tx, _) = watch::channel(0);
        let inner = Arc::new(Inner {
            name: name.to_owned(),
            subject,
            writer: uuid::Uuid::new_v4().simple().to_string(),
            js: js.clone(),
            stream,
            meta,
            shared: RwLock::new(Shared {
                state: initial,
                applied: 0,
                pending: BTreeMap::new(),
                published_own: Default::default(),
            }),
            fold,
            writer_role: writer,
            applied_tx,
            task: std::sync::Mutex::new(None),
        });
        let task = tokio::spawn(follow(Arc::downgrade(&inner)));
        if let Ok(mut t) = inner.task.lock() {
            *t = Some(task.abort_handle());
        }
        let journal = Self { inner };
        journal.sync().await?;
        Ok(journal)
    }

    /// The journal's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Reads the state.
    pub fn read<T>(&self, f: impl FnOnce(&S) -> T) -> T {
        let g = self.inner.shared.read().unwrap_or_else(|p| p.into_inner());
        f(&g.state)
    }

    /// Reads the state together with the sequence it reflects, under one lock: a plan
    /// made here is appended with that sequence as its condition.
    pub fn plan<T>(&self, f: impl FnOnce(&S) -> T) -> (u64, T) {
        let g = self.inner.shared.read().unwrap_or_else(|p| p.into_inner());
        (g.applied, f(&g.state))
    }

    /// The last sequence folded in.
    pub fn applied(&self) -> u64 {
        self.inner
            .shared
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .applied
    }

    /// Waits until every entry appended before the call is folded in (one round trip for
    /// the journal's last sequence).
    pub async fn sync(&self) -> Result<(), Error> {
        let last = self
            .inner
            .stream
            .get_info()
            .await
            .map_err(Error::unavailable)?
            .state
            .last_sequence;
        self.wait_for(last).await
    }

    /// Waits until an entry after `seq` is folded in: after a conflict, the entry that
    /// won is on its way through the feed, and no round trip is needed to learn of it.
    pub async fn wait_past(&self, seq: u64) -> Result<(), Error> {
        self.wait_for(seq + 1).await
    }

    async fn wait_for(&self, seq: u64) -> Result<(), Error> {
        let mut rx = self.inner.applied_tx.subscribe();
        match tokio::time::timeout(Duration::from_secs(15), rx.wait_for(|&a| a >= seq)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(Error::Unavailable(format!(
                "journal {} did not reach sequence {seq}",
                self.inner.name
            ))),
        }
    }

    /// Appends `records` (and what to publish) on top of sequence `expected`, and folds
    /// them in. [`Error::Conflict`] means another instance appended first: sync and plan
    /// again. Returns the entry's sequence.
    pub async fn append(
        &self,
        expected: u64,
        records: Vec<R>,
        events: Vec<OutboxMessage>,
        audit: Vec<AuditEntry>,
        at_ms: u64,
    ) -> Result<u64, Error> {
        if !self.inner.writer_role {
            return Err(Error::Refused(format!(
                "journal {} is followed read-only",
                self.inner.name
            )));
        }
        let entry = Entry {
            records,
            events,
            audit,
            writer: self.inner.writer.clone(),
            at_ms,
        };
        let body =
            Bytes::from(serde_json::to_vec(&entry).map_err(|e| Error::Refused(e.to_string()))?);
        let msg_id = uuid::Uuid::new_v4().simple().to_string();
        let mut attempt = 0;
        let seq = loop {
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Expected-Last-Sequence", expected.to_string().as_str());
            headers.insert(header::NATS_MSG_ID, msg_id.as_str());
            let ack = match self
                .inner
                .js
                .publish_with_headers(self.inner.subject.clone(), headers, body.clone())
                .await
            {
                Ok(f) => f.await,
                Err(e) => Err(e),
            };
            match ack {
                Ok(ack) => break ack.sequence,
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                    return Err(Error::Conflict);
                }
                // The outcome is unknown: the same id again is recognised if it landed.
                Err(e) if e.kind() == PublishErrorKind::TimedOut && attempt < 3 => attempt += 1,
                Err(e) => return Err(Error::unavailable(e)),
            }
        };
        // The follower may have folded it in already; whoever comes second skips it.
        fold_into(&self.inner, seq, entry);
        Ok(seq)
    }

    /// Publishes entry `seq`'s events and audit entries (after this instance appended it).
    /// Returns the audit sequences.
    pub async fn publish(&self, seq: u64, publisher: &Publisher) -> Result<Vec<u64>, Error> {
        let pending = self
            .inner
            .shared
            .read()
            .ok()
            .and_then(|g| g.pending.get(&seq).cloned());
        let Some(p) = pending else {
            return Ok(Vec::new());
        };
        let seqs = publisher.publish(&p.events, &p.audit).await?;
        if let Ok(mut g) = self.inner.shared.write() {
            g.published_own.insert(seq);
        }
        Ok(seqs)
    }

    /// Background duty of every instance, called every few hundred milliseconds: moves
    /// this writer's cursor past what it published, and publishes entries of writers that
    /// left them unpublished for longer than `grace` (they died). Returns how many entries
    /// it published for others.
    pub async fn settle(
        &self,
        publisher: &Publisher,
        now_ms: u64,
        grace: Duration,
    ) -> Result<usize, Error> {
        // 1. This writer's cursor: the highest of its entries such that all of its entries
        //    up to it are published.
        let (mine, others) = {
            let g = self.inner.shared.read().unwrap_or_else(|p| p.into_inner());
            let mut cursor = None;
            for (seq, _) in g
                .pending
                .iter()
                .filter(|(_, p)| p.writer == self.inner.writer)
            {
                if g.published_own.contains(seq) {
                    cursor = Some(*seq);
                } else {
                    break;
                }
            }
            let late: Vec<(u64, Pending)> = g
                .pending
                .iter()
                .filter(|(_, p)| {
                    p.writer != self.inner.writer
                        && now_ms.saturating_sub(p.at_ms) > grace.as_millis() as u64
                })
                .map(|(s, p)| (*s, p.clone()))
                .collect();
            (cursor, late)
        };
        if let Some(c) = mine {
            self.advance_cursor(&self.inner.writer.clone(), c).await?;
        }
        // 2. Other writers' late entries: trust their cursor first, then publish the rest.
        let mut published = 0;
        let mut by_writer: BTreeMap<String, Vec<(u64, Pending)>> = BTreeMap::new();
        for (s, p) in others {
            by_writer.entry(p.writer.clone()).or_default().push((s, p));
        }
        for (writer, entries) in by_writer {
            let cursor = self.cursor(&writer).await?;
            let mut last = None;
            for (seq, p) in entries {
                if seq > cursor {
                    tracing::info!(journal = %self.inner.name, seq, writer = %writer, "publishing an entry its writer left unpublished");
                    publisher.publish(&p.events, &p.audit).await?;
                    published += 1;
                }
                last = Some(seq);
            }
            if let Some(l) = last {
                self.advance_cursor(&writer, l).await?;
            }
        }
        Ok(published)
    }

    async fn cursor(&self, writer: &str) -> Result<u64, Error> {
        let e = self.inner.meta.get(&format!("cursor.{writer}")).await?;
        Ok(
            e.and_then(|e| std::str::from_utf8(&e.value).ok()?.parse().ok())
                .unwrap_or(0),
        )
    }

    /// Moves `writer`'s cursor forward to `to` (never back), and forgets what it covers.
    async fn advance_cursor(&self, writer: &str, to: u64) -> Result<(), Error> {
        let key = format!("cursor.{writer}");
        for _ in 0..5 {
            let current = self.inner.meta.get(&key).await?;
            let (have, expect) = match &current {
                Some(e) => (
                    std::str::from_utf8(&e.value)
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                    Expect::Revision(e.revision),
                ),
                None => (0, Expect::Absent),
            };
            if have < to {
                let w = Write {
                    key: key.clone(),
                    value: Bytes::from(to.to_string()),
                    expect,
                };
                match self.inner.meta.commit(&[w]).await {
                    Ok(_) => {}
                    Err(Error::Conflict) => continue,
                    Err(e) => return Err(e),
                }
            }
            let covered = have.max(to);
            if let Ok(mut g) = self.inner.shared.write() {
                g.pending
                    .retain(|s, p| !(p.writer == writer && *s <= covered));
                g.published_own.retain(|s| *s > covered);
            }
            return Ok(());
        }
        Ok(())
    }
}

/// Folds entry `seq` in if it is the next one.
fn fold_into<S, R>(inner: &Inner<S, R>, seq: u64, entry: Entry<R>) -> bool {
    let mut g = inner.shared.write().unwrap_or_else(|p| p.into_inner());
    if seq <= g.applied {
        return false;
    }
    if seq != g.applied + 1 {
        // Entries are never deleted, so a gap means the stream was tampered with.
        tracing::error!(journal = %inner.name, expected = g.applied + 1, got = seq, "journal gap; folding on");
    }
    let has_outbox = entry.has_outbox();
    let Entry {
        records,
        events,
        audit,
        writer,
        at_ms,
    } = entry;
    for r in records {
        (inner.fold)(&mut g.state, r);
    }
    if has_outbox && inner.writer_role {
        g.pending.insert(
            seq,
            Pending {
                writer,
                at_ms,
                events,
                audit,
            },
        );
    }
    g.applied = seq;
    drop(g);
    inner.applied_tx.send_replace(seq);
    true
}

/// Loads writer cursors so replayed entries that were published are not kept pending.
async fn load_cursors<S, R>(inner: &Inner<S, R>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    if let Ok(keys) = inner.meta.keys_with_prefix("cursor.").await {
        for k in keys {
            if let Ok(Some(e)) = inner.meta.get(&k).await
                && let Some(v) = std::str::from_utf8(&e.value)
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
            {
                out.insert(k.trim_start_matches("cursor.").to_owned(), v);
            }
        }
    }
    out
}

/// Follows the journal for as long as the state lives, re-opening after a broken feed
/// from the last sequence folded in.
async fn follow<S, R: Record>(weak: Weak<Inner<S, R>>) {
    let mut backoff = Duration::from_millis(50);
    let mut cursors: Option<BTreeMap<String, u64>> = None;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        if cursors.is_none() {
            cursors = Some(load_cursors(&inner).await);
        }
        let start = inner.shared.read().map(|g| g.applied).unwrap_or(0) + 1;
        let opened = inner
            .stream
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: start,
                },
                ..Default::default()
            })
            .await;
        let mut messages = match opened {
            Ok(c) => match c.messages().await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(journal = %inner.name, error = %e, "could not read the journal; retrying");
                    drop(inner);
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            },
            Err(e) => {
                tracing::warn!(journal = %inner.name, error = %e, "could not follow the journal; retrying");
                drop(inner);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        drop(inner);
        while let Some(next) = messages.next().await {
            let Some(inner) = weak.upgrade() else { return };
            match next {
                Ok(m) => {
                    let Ok(info) = m.info() else { continue };
                    let seq = info.stream_sequence;
                    match serde_json::from_slice::<Entry<R>>(&m.payload) {
                        Ok(mut entry) => {
                            // Replayed entries a cursor already covers need no publishing.
                            if cursors
                                .as_ref()
                                .and_then(|c| c.get(&entry.writer))
                                .is_some_and(|&c| seq <= c)
                            {
                                entry.events.clear();
                                entry.audit.clear();
                            }
                            fold_into(&inner, seq, entry);
                        }
                        Err(e) => {
                            tracing::error!(journal = %inner.name, seq, error = %e, "unreadable journal entry skipped");
                            let mut g = inner.shared.write().unwrap_or_else(|p| p.into_inner());
                            if g.applied + 1 == seq {
                                g.applied = seq;
                            }
                            drop(g);
                            inner.applied_tx.send_replace(seq);
                        }
                    }
                    backoff = Duration::from_millis(50);
                }
                Err(e) => {
                    tracing::warn!(journal = %inner.name, error = %e, "journal feed broke; re-opening");
                    break;
                }
            }
        }
        if weak.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}
