//! An in-memory state folded from a bucket's change feed.
//!
//! Every instance of a service keeps its whole state in memory (the registry, the mission
//! board) by watching its bucket: first the latest value of every key, then every change,
//! from whichever instance it comes. Decisions read the view; their writes are conditional
//! on the revisions the view holds, so a stale view costs a retry, never a lost update.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use async_nats::jetstream::kv;
use futures_util::StreamExt;
use tokio::sync::watch;

use crate::Error;
use crate::bucket::{Bucket, Expect, Write};

/// One change to fold in.
#[derive(Clone, Copy, Debug)]
pub enum Change<'a> {
    /// `key` now holds `value`.
    Put {
        /// The key.
        key: &'a str,
        /// Its value.
        value: &'a [u8],
    },
    /// `key` was deleted.
    Delete {
        /// The key.
        key: &'a str,
    },
}

type Fold<S> = Box<dyn Fn(&mut S, Change<'_>) + Send + Sync>;

struct State<S> {
    value: S,
    /// Each key's revision in the view: older changes arriving late are ignored.
    revisions: Revisions,
}

/// The revision of every key a view holds.
#[derive(Debug, Default)]
pub struct Revisions(HashMap<String, u64>);

impl Revisions {
    /// The condition for writing `key` on top of this revision: `Absent` for a key the
    /// view has never seen.
    pub fn expect(&self, key: &str) -> Expect {
        self.0
            .get(key)
            .map_or(Expect::Absent, |&r| Expect::Revision(r))
    }
}

struct Inner<S> {
    bucket: Bucket,
    state: RwLock<State<S>>,
    fold: Fold<S>,
    /// The highest bucket revision folded in; `sync` waits on it.
    applied: watch::Sender<u64>,
    /// The watch task, stopped when the last handle to the view goes.
    task: std::sync::Mutex<Option<tokio::task::AbortHandle>>,
}

impl<S> Drop for Inner<S> {
    fn drop(&mut self) {
        if let Ok(mut t) = self.task.lock()
            && let Some(t) = t.take()
        {
            t.abort();
        }
    }
}

/// A state kept in step with a bucket. Cheap to clone (a handle).
pub struct View<S> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for View<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<S: Send + Sync + 'static> View<S> {
    /// Loads the bucket into `initial` through `fold`, then keeps folding changes in the
    /// background. Returns once everything written before the call is in.
    pub async fn open(
        bucket: Bucket,
        initial: S,
        fold: impl Fn(&mut S, Change<'_>) + Send + Sync + 'static,
    ) -> Result<Self, Error> {
        let fence = bucket.last_revision().await?;
        let (applied, _) = watch::channel(0);
        let inner = Arc::new(Inner {
            bucket: bucket.clone(),
            state: RwLock::new(State {
                value: initial,
                revisions: Revisions::default(),
            }),
            fold: Box::new(fold),
            applied,
            task: std::sync::Mutex::new(None),
        });
        let task = tokio::spawn(follow(Arc::downgrade(&inner), bucket));
        if let Ok(mut t) = inner.task.lock() {
            *t = Some(task.abort_handle());
        }
        let view = Self { inner };
        view.wait_for(fence).await?;
        Ok(view)
    }

    /// Reads the state.
    pub fn read<R>(&self, f: impl FnOnce(&S) -> R) -> R {
        let guard = self.inner.state.read().unwrap_or_else(|p| p.into_inner());
        f(&guard.value)
    }

    /// The condition for writing `key` on top of what the view holds.
    pub fn expect(&self, key: &str) -> Expect {
        let guard = self.inner.state.read().unwrap_or_else(|p| p.into_inner());
        guard.revisions.expect(key)
    }

    /// Reads the state and the revisions it was built from under one lock, so a decision
    /// and the conditions of its writes always agree.
    pub fn plan<R>(&self, f: impl FnOnce(&S, &Revisions) -> R) -> R {
        let guard = self.inner.state.read().unwrap_or_else(|p| p.into_inner());
        f(&guard.value, &guard.revisions)
    }

    /// The bucket behind the view.
    pub fn bucket(&self) -> &Bucket {
        &self.inner.bucket
    }

    /// Waits until every write acknowledged before this call is folded in: one round trip
    /// for the bucket's last revision, then usually no wait at all.
    pub async fn sync(&self) -> Result<(), Error> {
        let fence = self.inner.bucket.last_revision().await?;
        self.wait_for(fence).await
    }

    async fn wait_for(&self, revision: u64) -> Result<(), Error> {
        let mut rx = self.inner.applied.subscribe();
        let wait = rx.wait_for(|&applied| applied >= revision);
        match tokio::time::timeout(Duration::from_secs(10), wait).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(Error::Unavailable(format!(
                "the view of {} did not reach revision {revision}",
                self.inner.bucket.name()
            ))),
        }
    }

    /// Folds in this instance's own committed writes at once (read-your-writes), without
    /// waiting for them to come round the change feed.
    pub fn apply_committed(&self, writes: &[Write], revisions: &[u64]) {
        for (w, &rev) in writes.iter().zip(revisions) {
            apply(&self.inner, &w.key, rev, Some(&w.value));
        }
    }
}

/// Folds one change in unless the view already holds a newer revision of the key.
fn apply<S>(inner: &Inner<S>, key: &str, revision: u64, value: Option<&[u8]>) {
    let mut guard = inner.state.write().unwrap_or_else(|p| p.into_inner());
    if guard
        .revisions
        .0
        .get(key)
        .is_some_and(|&have| have >= revision)
    {
        return;
    }
    guard.revisions.0.insert(key.to_owned(), revision);
    let change = match value {
        Some(value) => Change::Put { key, value },
        None => Change::Delete { key },
    };
    (inner.fold)(&mut guard.value, change);
    drop(guard);
    inner.applied.send_if_modified(|a| {
        if revision > *a {
            *a = revision;
            true
        } else {
            false
        }
    });
}

/// Follows the bucket's change feed for as long as the view lives, re-opening the watch
/// after a broken connection from the last revision folded in.
async fn follow<S>(view: Weak<Inner<S>>, bucket: Bucket) {
    let mut from: Option<u64> = None;
    let mut backoff = Duration::from_millis(50);
    loop {
        let watch = match from {
            None => bucket.kv().watch_with_history(">").await,
            Some(rev) => bucket.kv().watch_all_from_revision(rev + 1).await,
        };
        match watch {
            Ok(mut entries) => {
                while let Some(next) = entries.next().await {
                    let Some(inner) = view.upgrade() else { return };
                    match next {
                        Ok(e) => {
                            let value =
                                (e.operation == kv::Operation::Put).then_some(e.value.as_ref());
                            apply(&inner, &e.key, e.revision, value);
                            from = Some(from.map_or(e.revision, |f| f.max(e.revision)));
                            backoff = Duration::from_millis(50);
                        }
                        Err(err) => {
                            tracing::warn!(bucket = bucket.name(), error = %err, "change feed broke; re-opening");
                            break;
                        }
                    }
                }
            }
            Err(err) => {
                tracing::warn!(bucket = bucket.name(), error = %err, "could not watch; retrying")
            }
        }
        if view.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}
