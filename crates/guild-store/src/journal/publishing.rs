//! Publishing what journal entries carry, exactly once in effect.
//!
//! The writer publishes an entry's events and audit entries right after the append. Each
//! writer keeps a cursor (`cursor.<writer>` in the journal's KV bucket): every entry of
//! its up to the cursor is published. An entry past its writer's cursor for longer than
//! the grace period (the writer died before publishing) is published by whichever
//! instance sees it, with the same de-duplication ids, so it is stored once.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use guild_wire::audit::AuditEntry;

use super::{Inner, Journal, Record};
use crate::Error;
use crate::bucket::{Expect, Write};
use crate::publisher::{OutboxMessage, Publisher};

/// An entry's publishable part, kept until its writer's cursor passes it.
#[derive(Clone, Debug)]
pub(super) struct Pending {
    pub(super) writer: String,
    pub(super) at_ms: u64,
    pub(super) events: Vec<OutboxMessage>,
    pub(super) audit: Vec<AuditEntry>,
}

impl<S: Send + Sync + 'static, R: Record> Journal<S, R> {
    /// Publishes entry `seq`'s events and audit entries (after this instance appended it,
    /// before it answers). Audit entries are appended before this returns, and their
    /// sequences returned: a caller reads its own audit records back. Events are sent
    /// before it returns, on the connection the answer will take, and when the entry has
    /// no audit entries their storage is confirmed in the background: events are
    /// asynchronous by nature, and should that part fail the entry stays past this
    /// writer's cursor and a sweep publishes it.
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
        if !p.audit.is_empty() {
            let seqs = publisher.publish(&p.events, &p.audit).await?;
            self.published(seq);
            return Ok(seqs);
        }
        let sent = publisher.send(&p.events).await?;
        let journal = self.clone();
        tokio::spawn(async move {
            match sent.stored().await {
                Ok(()) => journal.published(seq),
                Err(e) => tracing::warn!(seq, error = %e, "publishing deferred to the sweeper"),
            }
        });
        Ok(Vec::new())
    }

    /// How many of this writer's entries have events or audit entries not yet confirmed
    /// stored (publishing in the background, or failed and waiting for a sweep).
    pub fn unpublished(&self) -> usize {
        let g = self.inner.shared.read().unwrap_or_else(|p| p.into_inner());
        g.pending
            .iter()
            .filter(|(seq, p)| p.writer == self.inner.writer && !g.published_own.contains(seq))
            .count()
    }

    fn published(&self, seq: u64) {
        if let Ok(mut g) = self.inner.shared.write() {
            g.published_own.insert(seq);
        }
    }

    /// Background duty of every instance, called every few hundred milliseconds: moves
    /// this writer's cursor past what it published, publishes entries left unpublished for
    /// longer than `grace` (their writer died, or this writer's publishing failed), and
    /// takes a snapshot when one is due. Returns how many entries it published late, or
    /// the first failure once everything else it could do is done.
    pub async fn settle(
        &self,
        publisher: &Publisher,
        now_ms: u64,
        grace: Duration,
    ) -> Result<usize, Error> {
        let (mine, late) = {
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
            // Late: another writer's entry past the grace (it died), or one of this
            // writer's own whose publishing failed.
            let late: Vec<(u64, Pending)> = g
                .pending
                .iter()
                .filter(|(seq, p)| {
                    now_ms.saturating_sub(p.at_ms) > grace.as_millis() as u64
                        && (p.writer != self.inner.writer || !g.published_own.contains(seq))
                })
                .map(|(s, p)| (*s, p.clone()))
                .collect();
            (cursor, late)
        };
        if let Some(c) = mine {
            advance_cursor(&self.inner, &self.inner.writer, c).await?;
        }
        let mut published = 0;
        let mut by_writer: BTreeMap<String, Vec<(u64, Pending)>> = BTreeMap::new();
        for (s, p) in late {
            by_writer.entry(p.writer.clone()).or_default().push((s, p));
        }
        if let Some(own) = by_writer.remove(&self.inner.writer) {
            // Another instance may have published them, taking this writer for dead: its
            // cursor says so. The rest are published now; the cursor passes them on the
            // next sweep. One that still fails is tried again then, and does not stop
            // the sweep.
            let cursor = cursor(&self.inner, &self.inner.writer).await?;
            for (seq, p) in own {
                if seq > cursor {
                    tracing::info!(journal = %self.inner.name, seq, "publishing an entry whose publishing failed");
                    if let Err(e) = publisher.publish(&p.events, &p.audit).await {
                        tracing::warn!(journal = %self.inner.name, seq, error = %e, "still unpublished; retrying next sweep");
                        continue;
                    }
                    published += 1;
                }
                self.published(seq);
            }
        }
        // One writer's entry the streams refuse (a stream unavailable for a while, an id
        // JetStream still holds as in process) must not hold back the others: each is
        // tried, the first failure is answered once the sweep is done, and a writer's
        // cursor moves only up to its first entry not yet published.
        let mut failed = None;
        for (writer, entries) in by_writer {
            // Trust the writer's own cursor first: it may only have been slow to say so.
            let cursor = match cursor(&self.inner, &writer).await {
                Ok(c) => c,
                Err(e) => {
                    failed.get_or_insert(e);
                    continue;
                }
            };
            let mut contiguous = true;
            let mut last = None;
            for (seq, p) in entries {
                if seq > cursor {
                    tracing::info!(journal = %self.inner.name, seq, writer = %writer, "publishing an entry its writer left unpublished");
                    if let Err(e) = publisher.publish(&p.events, &p.audit).await {
                        tracing::warn!(journal = %self.inner.name, seq, writer = %writer, error = %e, "still unpublished; retrying next sweep");
                        contiguous = false;
                        failed.get_or_insert(e);
                        continue;
                    }
                    published += 1;
                }
                if contiguous {
                    last = Some(seq);
                }
            }
            if let Some(l) = last
                && let Err(e) = advance_cursor(&self.inner, &writer, l).await
            {
                failed.get_or_insert(e);
            }
        }
        self.snapshot_if_due().await?;
        match failed {
            Some(e) => Err(e),
            None => Ok(published),
        }
    }
}

/// Keeps what an entry already in the state (from a snapshot) still has to publish.
pub(super) fn adopt<S, R>(inner: &Inner<S, R>, seq: u64, entry: super::Entry<R>) {
    if !inner.writer_role || (entry.events.is_empty() && entry.audit.is_empty()) {
        return;
    }
    let mut g = inner.shared.write().unwrap_or_else(|p| p.into_inner());
    let super::Entry {
        events,
        audit,
        writer,
        at_ms,
        ..
    } = entry;
    g.pending.entry(seq).or_insert(Pending {
        writer,
        at_ms,
        events,
        audit,
    });
}

async fn cursor<S, R>(inner: &Inner<S, R>, writer: &str) -> Result<u64, Error> {
    let key = format!("cursor.{writer}");
    match inner.meta.get(&key).await? {
        Some(e) => super::parse_seq(&key, &e.value),
        None => Ok(0),
    }
}

/// Moves `writer`'s cursor forward to `to` (never back), and forgets what it covers.
async fn advance_cursor<S, R>(inner: &Inner<S, R>, writer: &str, to: u64) -> Result<(), Error> {
    let key = format!("cursor.{writer}");
    for _ in 0..CURSOR_ATTEMPTS {
        let current = inner.meta.get(&key).await?;
        let (have, expect) = match &current {
            Some(e) => (
                super::parse_seq(&key, &e.value)?,
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
            match inner.meta.commit(&[w]).await {
                Ok(_) => {}
                Err(Error::Conflict) => continue,
                Err(e) => return Err(e),
            }
        }
        let covered = have.max(to);
        if let Ok(mut g) = inner.shared.write() {
            g.pending
                .retain(|s, p| !(p.writer == writer && *s <= covered));
            g.published_own.retain(|s| *s > covered);
        }
        return Ok(());
    }
    // The entries stay pending and are published (de-duplicated) again by a later sweep;
    // the caller says so in its log.
    Err(Error::Conflict)
}

/// How often a cursor write is tried against other writers moving it at the same time.
const CURSOR_ATTEMPTS: usize = 5;

/// Every writer's cursor, so replayed entries that were published are not kept pending.
pub(super) async fn load_cursors<S, R>(
    inner: &Inner<S, R>,
) -> Result<BTreeMap<String, u64>, Error> {
    let mut out = BTreeMap::new();
    for k in inner.meta.keys_with_prefix("cursor.").await? {
        // A key removed since it was listed has nothing to say.
        if let Some(e) = inner.meta.get(&k).await? {
            let v = super::parse_seq(&k, &e.value)?;
            out.insert(k.trim_start_matches("cursor.").to_owned(), v);
        }
    }
    Ok(out)
}
