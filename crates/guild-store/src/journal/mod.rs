//! A service's state as a replicated journal.
//!
//! Every change a service commits is one message on its journal stream
//! (`GUILD_JOURNAL_<NAME>`, subject `guild.journal.<name>`): the records the decision saved,
//! plus the events and audit entries it produced. Each append carries
//! `Nats-Expected-Last-Sequence` = the last entry the writer had folded in, so an append
//! lands only on top of the state it was decided from: however many instances write, the
//! journal is one serial history and no update is lost. Every instance folds the journal,
//! in order, into its in-memory state; a restarted instance (or nats-server) replays it.
//!
//! One message per change keeps a multi-record change atomic at the cost of one JetStream
//! publish, instead of an atomic batch (which the server syncs to disk on commit).
//!
//! * Publishing ([`publishing`]): the writer publishes an entry's events and audit entries
//!   right after the append; writer cursors make sure a dead writer's are published by
//!   someone else, once.
//! * Snapshots ([`snapshot`]): now and then an instance stores the whole state at a
//!   sequence (the records that rebuild it) in the journal's object store, and the journal
//!   is trimmed before it, so start-up replays the snapshot and a short tail.

mod follow;
pub mod publishing;
pub mod snapshot;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishErrorKind, object_store, stream};
use bytes::Bytes;
use guild_wire::audit::AuditEntry;
use guild_wire::header;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::bucket::Bucket;
use crate::publisher::OutboxMessage;
use crate::{Durability, Error};
use publishing::Pending;

/// What journal records must be.
pub trait Record: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}
impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> Record for T {}

type Initial<S> = Box<dyn Fn() -> S + Send + Sync>;
pub(crate) type Fold<S, R> = Box<dyn Fn(&mut S, R) + Send + Sync>;
type Records<S, R> = Box<dyn Fn(&S) -> Vec<Arc<R>> + Send + Sync>;

/// How a state is built from records and taken apart into them again.
pub struct Spec<S, R> {
    /// The empty state.
    pub initial: Initial<S>,
    /// Folds one saved record in.
    pub fold: Fold<S, R>,
    /// The records that rebuild the state from empty, in the order they are to be folded
    /// (for snapshots). Taken under the state's read lock and written out after it is
    /// released, so a state that keeps its records shared hands them over in
    /// milliseconds however large it is.
    pub records: Records<S, R>,
}

impl<S, R> Spec<S, R> {
    /// A spec from its three functions.
    pub fn new(
        initial: impl Fn() -> S + Send + Sync + 'static,
        fold: impl Fn(&mut S, R) + Send + Sync + 'static,
        records: impl Fn(&S) -> Vec<Arc<R>> + Send + Sync + 'static,
    ) -> Self {
        Self {
            initial: Box::new(initial),
            fold: Box::new(fold),
            records: Box::new(records),
        }
    }
}

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

struct Shared<S> {
    state: S,
    /// The last journal sequence folded in.
    applied: u64,
    /// Entries whose events or audit entries may not be published yet.
    pending: BTreeMap<u64, Pending>,
    /// What this instance published of its own entries.
    published_own: BTreeSet<u64>,
    /// After a snapshot is loaded: the journal's first sequence and the snapshot's. The
    /// entries between are in the state already, but their events may be unpublished (a
    /// writer died just before the snapshot), so the follower reads them once more for that.
    rescan: Option<(u64, u64)>,
}

struct Inner<S, R> {
    name: String,
    subject: String,
    writer: String,
    js: jetstream::Context,
    stream: stream::Stream,
    /// Writer cursors and the snapshot pointer.
    meta: Bucket,
    /// Snapshots of the state.
    snapshots: object_store::ObjectStore,
    durability: Durability,
    shared: RwLock<Shared<S>>,
    spec: Spec<S, R>,
    /// False for a read-only follower, which keeps nothing to publish and never snapshots.
    writer_role: bool,
    applied_tx: watch::Sender<u64>,
    /// What this journal found missing (entries removed with no snapshot covering them).
    health: crate::Health,
    /// The highest audit sequence recorded in the bucket (`audit.head`), so it is written
    /// only when it grows.
    audit_head: std::sync::atomic::AtomicU64,
    /// The follower task, stopped when the last handle goes.
    task: std::sync::Mutex<Option<tokio::task::AbortHandle>>,
    /// Asks the follower to open its feed anew: a reader waiting for an entry the stream
    /// holds saw no progress (the feed's consumer died with its node, and the ordered
    /// consumer would notice only after missed idle heartbeats).
    reopen: tokio::sync::Notify,
    /// When the feed last brought anything (ms since `born`), replayed entries included:
    /// a feed busy with a long rescan is not stalled.
    fed_at: std::sync::atomic::AtomicU64,
    born: std::time::Instant,
    /// Why the follower stopped for good: an entry it could not read. Folding past it would
    /// drift the state unseen, so the journal stays where it was and refuses to go on.
    failed: std::sync::OnceLock<String>,
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
    /// Opens (creating if needed) journal `name` for writing: loads its latest snapshot,
    /// replays the entries after it, and keeps following. Returns once everything appended
    /// before the call is folded in.
    pub async fn open(
        js: &jetstream::Context,
        name: &str,
        spec: Spec<S, R>,
        d: Durability,
    ) -> Result<Self, Error> {
        Self::start(js, name, spec, d, true).await
    }

    /// Opens another service's journal read-only: its state, kept in step, for routing and
    /// authorization. A follower never appends, publishes or snapshots.
    pub async fn follow(
        js: &jetstream::Context,
        name: &str,
        spec: Spec<S, R>,
        d: Durability,
    ) -> Result<Self, Error> {
        Self::start(js, name, spec, d, false).await
    }

    async fn start(
        js: &jetstream::Context,
        name: &str,
        spec: Spec<S, R>,
        d: Durability,
        writer: bool,
    ) -> Result<Self, Error> {
        let subject = guild_wire::store::journal_subject(name);
        if !writer {
            // The owner creates and configures its journal; a follower only reads it.
            let stream =
                crate::provision::wait_for_stream(js, &guild_wire::store::journal_stream(name))
                    .await?;
            let meta = Bucket::open_existing(js, &guild_wire::store::journal_bucket(name)).await?;
            let snapshots = snapshot::existing_store(js, name).await?;
            return Self::begin(js, name, subject, stream, meta, snapshots, spec, d, writer).await;
        }
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
        let meta = Bucket::open(js, &guild_wire::store::journal_bucket(name), d).await?;
        let snapshots = snapshot::store(js, name, d).await?;
        Self::begin(js, name, subject, stream, meta, snapshots, spec, d, writer).await
    }

    /// Loads the snapshot, starts following, and returns once in step.
    #[allow(clippy::too_many_arguments)]
    async fn begin(
        js: &jetstream::Context,
        name: &str,
        subject: String,
        stream: stream::Stream,
        meta: Bucket,
        snapshots: object_store::ObjectStore,
        spec: Spec<S, R>,
        d: Durability,
        writer: bool,
    ) -> Result<Self, Error> {
        let (applied_tx, _) = watch::channel(0);
        let inner = Arc::new(Inner {
            name: name.to_owned(),
            subject,
            writer: uuid::Uuid::new_v4().simple().to_string(),
            js: js.clone(),
            stream,
            meta,
            snapshots,
            durability: d,
            shared: RwLock::new(Shared {
                state: (spec.initial)(),
                applied: 0,
                pending: BTreeMap::new(),
                published_own: BTreeSet::new(),
                rescan: None,
            }),
            spec,
            writer_role: writer,
            applied_tx,
            health: crate::Health::default(),
            audit_head: std::sync::atomic::AtomicU64::new(0),
            task: std::sync::Mutex::new(None),
            reopen: tokio::sync::Notify::new(),
            fed_at: std::sync::atomic::AtomicU64::new(0),
            born: std::time::Instant::now(),
            failed: std::sync::OnceLock::new(),
        });
        snapshot::load(&inner).await?;
        check_gap(&inner).await?;
        let task = tokio::spawn(follow::follow(Arc::downgrade(&inner)));
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

    /// What this journal found missing.
    pub fn health(&self) -> &crate::Health {
        &self.inner.health
    }

    /// Why the journal stopped following, if it did: an entry it could not read
    /// ([`Error::Corrupt`]). The state stays as it was before that entry; [`sync`](Self::sync)
    /// and [`append`](Self::append) answer this error until the service is restarted on a
    /// repaired journal.
    pub fn failure(&self) -> Option<Error> {
        self.inner.failure()
    }

    /// Accepts the loss of the entries missing now (the operator's `recover`): they are
    /// not reported again, here or by any instance, and writes resume.
    pub async fn accept_loss(&self) -> Result<(), Error> {
        let first = self
            .inner
            .stream
            .get_info()
            .await
            .map_err(Error::unavailable)?
            .state
            .first_sequence;
        let through = first.saturating_sub(1);
        self.inner
            .meta
            .kv()
            .put(LOSS_ACCEPTED, through.to_string().into())
            .await
            .map_err(Error::unavailable)?;
        self.inner.health.clear();
        Ok(())
    }

    /// Clears a loss another instance's `recover` accepted.
    pub async fn refresh_loss(&self) -> Result<(), Error> {
        if self.inner.health.lost().is_empty() {
            return Ok(());
        }
        let first = self
            .inner
            .stream
            .get_info()
            .await
            .map_err(Error::unavailable)?
            .state
            .first_sequence;
        if accepted_through(&self.inner).await? + 1 >= first {
            self.inner.health.clear();
        }
        Ok(())
    }

    /// The highest audit sequence this service recorded seeing: a shorter audit log at
    /// start-up means audit records were lost.
    pub async fn audit_head(&self) -> Result<u64, Error> {
        let head = match self.inner.meta.get(AUDIT_HEAD).await? {
            Some(e) => parse_seq(AUDIT_HEAD, &e.value)?,
            None => 0,
        };
        self.inner
            .audit_head
            .fetch_max(head, std::sync::atomic::Ordering::Relaxed);
        Ok(head)
    }

    /// Records that the audit log reached `seq` (when it grew since the last record).
    pub async fn record_audit_head(&self, seq: u64) -> Result<(), Error> {
        use std::sync::atomic::Ordering;
        if seq <= self.inner.audit_head.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.inner
            .meta
            .kv()
            .put(AUDIT_HEAD, seq.to_string().into())
            .await
            .map_err(Error::unavailable)?;
        self.inner.audit_head.fetch_max(seq, Ordering::Relaxed);
        Ok(())
    }

    /// Records that the audit log now reaches `seq`, even below what was recorded: the
    /// operator accepted the old chain's loss and a new one began.
    pub async fn reset_audit_head(&self, seq: u64) -> Result<(), Error> {
        self.inner
            .meta
            .kv()
            .put(AUDIT_HEAD, seq.to_string().into())
            .await
            .map_err(Error::unavailable)?;
        self.inner
            .audit_head
            .store(seq, std::sync::atomic::Ordering::Relaxed);
        Ok(())
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
        let last = self.last_sequence().await?;
        self.wait_for(last).await
    }

    /// The journal's last sequence, from the stream. "No responders" is asked again for
    /// a moment: nats-server installs an account's JetStream API anew when the account's
    /// claims change (the revocations after a termination), and for that moment nothing
    /// answers a stream's info, though the stream is there (`guild demo` met it in CI).
    async fn last_sequence(&self) -> Result<u64, Error> {
        let deadline = tokio::time::Instant::now() + NO_RESPONDERS_PATIENCE;
        let mut pause = Duration::from_millis(25);
        loop {
            match self.inner.stream.get_info().await {
                Ok(info) => return Ok(info.state.last_sequence),
                Err(e)
                    if e.kind() == jetstream::context::RequestErrorKind::NoResponders
                        && tokio::time::Instant::now() < deadline =>
                {
                    tracing::debug!(journal = %self.inner.name, "no responder for the journal's info; asking again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(400));
                }
                Err(e) => return Err(Error::unavailable(e)),
            }
        }
    }

    /// Waits until an entry after `seq` is folded in: after a conflict, the entry that
    /// won is on its way through the feed, and no round trip is needed to learn of it.
    pub async fn wait_past(&self, seq: u64) -> Result<(), Error> {
        self.wait_for(seq + 1).await
    }

    /// Waits until sequence `seq` is folded in. Gives up only when the feed makes no
    /// progress for 15 s: replaying a long journal at start-up may take longer than that.
    async fn wait_for(&self, seq: u64) -> Result<(), Error> {
        let mut rx = self.inner.applied_tx.subscribe();
        loop {
            if let Some(e) = self.inner.failure() {
                return Err(e);
            }
            let before = *rx.borrow();
            if before >= seq {
                return Ok(());
            }
            // No progress for 15 s is a stall. Meanwhile, a feed that brought nothing at
            // all for a second (not even replayed entries) while the stream holds the
            // entry is opened anew from the last entry folded in.
            let mut progressed = false;
            for _ in 0..STALL_CHECKS {
                let step = tokio::time::timeout(
                    STALL_BEFORE_REOPEN,
                    rx.wait_for(|&a| a >= seq || a > before),
                )
                .await;
                match step {
                    Ok(r) => {
                        progressed = r.is_ok();
                        break;
                    }
                    Err(_) if self.inner.idle_for() >= STALL_BEFORE_REOPEN => {
                        tracing::info!(journal = %self.inner.name, applied = before, waiting_for = seq, "the journal feed is stalled; re-opening it");
                        self.inner.reopen.notify_one();
                    }
                    Err(_) => {}
                }
            }
            if let Some(e) = self.inner.failure() {
                return Err(e);
            }
            if !progressed {
                return Err(Error::Unavailable(format!(
                    "journal {} stalled at sequence {before} on the way to {seq}",
                    self.inner.name
                )));
            }
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
        if let Some(e) = self.inner.failure() {
            return Err(e);
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
}

impl<S, R> Inner<S, R> {
    /// Notes that the feed brought something.
    fn fed(&self) {
        self.fed_at.store(
            self.born.elapsed().as_millis() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// How long since the feed last brought anything.
    fn idle_for(&self) -> Duration {
        let fed = self.fed_at.load(std::sync::atomic::Ordering::Relaxed);
        self.born
            .elapsed()
            .saturating_sub(Duration::from_millis(fed))
    }

    fn failure(&self) -> Option<Error> {
        self.failed.get().map(|reason| Error::Corrupt {
            key: format!("journal {}", self.name),
            reason: reason.clone(),
        })
    }

    /// Stops the journal at entry `seq`, which cannot be read: logged with its cause,
    /// counted, and answered to every reader from now on.
    fn fail(&self, seq: u64, cause: &dyn std::fmt::Display) {
        let reason = format!("entry {seq} is unreadable ({cause}); the state stops before it");
        tracing::error!(journal = %self.name, seq, error = %cause, "unreadable journal entry: the journal stops following and refuses reads and writes");
        guild_telemetry::metrics::count_error("journal_entry_unreadable");
        // Reported as lost too, so the service says `degraded` and alerts the operator
        // through the one path for missing state (ARCHITECTURE.md, "Lost state").
        self.health.report(crate::Lost::Journal {
            journal: self.name.clone(),
            from: seq,
            to: seq,
        });
        if self.failed.set(reason).is_ok() {
            // Wakes whoever waits for the entry, to answer the failure.
            self.applied_tx.send_modify(|_| {});
        }
    }
}

/// Reads a sequence number stored under `key` in a journal's bucket.
pub(crate) fn parse_seq(key: &str, value: &[u8]) -> Result<u64, Error> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| Error::Corrupt {
            key: key.to_owned(),
            reason: format!(
                "not a sequence number: {:?}",
                String::from_utf8_lossy(value)
            ),
        })
}

/// How long a reader waits for the feed to bring an entry the stream holds before it
/// asks the follower to re-open the feed.
const STALL_BEFORE_REOPEN: Duration = Duration::from_secs(1);

/// How many of those a reader waits without progress before it calls the journal stalled.
const STALL_CHECKS: usize = 15;

/// How long [`Journal::sync`] asks again when nothing answers for the journal's stream.
const NO_RESPONDERS_PATIENCE: Duration = Duration::from_secs(3);

/// The bucket key holding the last journal sequence whose loss the operator accepted.
const LOSS_ACCEPTED: &str = "loss.accepted";
/// The bucket key holding the highest audit sequence this service saw appended.
const AUDIT_HEAD: &str = "audit.head";

async fn accepted_through<S, R>(inner: &Inner<S, R>) -> Result<u64, Error> {
    Ok(match inner.meta.get(LOSS_ACCEPTED).await? {
        Some(e) => parse_seq(LOSS_ACCEPTED, &e.value)?,
        None => 0,
    })
}

/// After the snapshot is loaded: entries between it and the journal's first one that are
/// gone (trimmed with no snapshot covering them, or purged) are a loss, reported unless
/// the operator accepted it. Either way the state continues from the journal's first
/// entry, so reads are served and the feed does not wait for entries that will not come.
async fn check_gap<S, R: Record>(inner: &Inner<S, R>) -> Result<(), Error> {
    let first = inner
        .stream
        .get_info()
        .await
        .map_err(Error::unavailable)?
        .state
        .first_sequence;
    let applied = |inner: &Inner<S, R>| inner.shared.read().map(|g| g.applied).unwrap_or(0);
    if first <= applied(inner) + 1 {
        return Ok(());
    }
    // Another instance may have snapshotted and trimmed since the snapshot was loaded: a
    // trim that `first` shows was preceded by its snapshot's pointer, so loading again
    // now covers it, and only what is still uncovered is lost.
    snapshot::load(inner).await?;
    let applied = applied(inner);
    if first <= applied + 1 {
        return Ok(());
    }
    let through = first - 1;
    if accepted_through(inner).await? < through {
        inner.health.report(crate::Lost::Journal {
            journal: inner.name.clone(),
            from: applied + 1,
            to: through,
        });
    }
    let mut g = inner.shared.write().unwrap_or_else(|p| p.into_inner());
    if g.applied < through {
        g.applied = through;
        drop(g);
        inner.applied_tx.send_replace(through);
    }
    Ok(())
}

/// Folds entry `seq` in if it is the next one; a later one means entries were trimmed
/// away under this instance, and the caller reloads from the snapshot.
fn fold_into<S, R>(inner: &Inner<S, R>, seq: u64, entry: Entry<R>) -> Folded {
    let mut g = inner.shared.write().unwrap_or_else(|p| p.into_inner());
    if seq <= g.applied {
        return Folded::Skipped;
    }
    if seq != g.applied + 1 {
        return Folded::Gap;
    }
    let Entry {
        records,
        events,
        audit,
        writer,
        at_ms,
    } = entry;
    for r in records {
        (inner.spec.fold)(&mut g.state, r);
    }
    if inner.writer_role && (!events.is_empty() || !audit.is_empty()) {
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
    Folded::Applied
}

/// What [`fold_into`] did.
#[derive(Debug, PartialEq, Eq)]
enum Folded {
    Applied,
    Skipped,
    Gap,
}
