//! The task that keeps a state in step with its journal.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_nats::jetstream::consumer;
use futures_util::StreamExt;

use super::{Entry, Folded, Inner, Record, fold_into, publishing, snapshot};

/// How often the follower checks whether its connection was made anew.
const RECONNECT_CHECK: Duration = Duration::from_millis(100);

/// Which connection a client is on: the server's id and the client's id there, both new
/// after any reconnect.
fn connection_of(client: &async_nats::Client) -> (String, u64) {
    let info = client.server_info();
    (info.server_id, info.client_id)
}

/// Follows the journal for as long as the state lives: re-opens a broken feed from the
/// last sequence folded in, and reloads the snapshot when entries were trimmed away under
/// this instance (it lagged past the margin).
pub(super) async fn follow<S, R: Record>(weak: Weak<Inner<S, R>>) {
    let mut backoff = Duration::from_millis(50);
    let mut cursors: Option<BTreeMap<String, u64>> = None;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        if cursors.is_none() {
            match publishing::load_cursors(&inner).await {
                Ok(c) => cursors = Some(c),
                Err(e) => {
                    // Without them every replayed entry would be published again.
                    tracing::warn!(journal = %inner.name, error = %e, "could not read the writer cursors; retrying");
                    drop(inner);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            }
        }
        let (start, rescan_until) = {
            let mut g = inner.shared.write().unwrap_or_else(|p| p.into_inner());
            match g.rescan.take() {
                Some((first, until)) => (first.min(g.applied + 1), until),
                None => (g.applied + 1, 0),
            }
        };
        let opened = async {
            let c = inner
                .stream
                .create_consumer(consumer::pull::OrderedConfig {
                    deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                        start_sequence: start,
                    },
                    ..Default::default()
                })
                .await?;
            c.messages().await.map_err(async_nats::Error::from)
        };
        let mut messages = match opened.await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(journal = %inner.name, error = %e, "could not follow the journal; retrying");
                if rescan_until > 0 {
                    inner
                        .shared
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .rescan = Some((start, rescan_until));
                }
                drop(inner);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        // A reconnect (to a restarted server, say) is seen at once: the ordered consumer
        // would notice only after two missed idle heartbeats (30 s in async-nats).
        let client = inner.js.client();
        let opened_on = connection_of(&client);
        let weak_reopen = Arc::downgrade(&inner);
        drop(inner);
        let reopen = async move {
            match weak_reopen.upgrade() {
                Some(inner) => inner.reopen.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(reopen);
        // The next entry this feed would bring: where a rescan cut short resumes.
        let mut next_seq = start;
        let mut watch = tokio::time::interval(RECONNECT_CHECK);
        watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next = tokio::select! {
                next = messages.next() => next,
                () = &mut reopen => {
                    backoff = Duration::from_millis(50);
                    break;
                }
                _ = watch.tick() => {
                    if connection_of(&client) == opened_on {
                        continue;
                    }
                    if let Some(inner) = weak.upgrade() {
                        tracing::info!(journal = %inner.name, "reconnected; re-opening the journal feed");
                    }
                    backoff = Duration::from_millis(50);
                    break;
                }
            };
            let Some(next) = next else { break };
            let Some(inner) = weak.upgrade() else { return };
            let Ok(m) = next else {
                tracing::warn!(journal = %inner.name, "journal feed broke; re-opening");
                break;
            };
            let info = match m.info() {
                Ok(info) => info,
                Err(e) => {
                    // Its sequence is unknown: the feed is re-opened from the last one
                    // folded in, which delivers it again.
                    tracing::warn!(journal = %inner.name, error = %e, "journal message without stream metadata; re-opening the feed");
                    guild_telemetry::metrics::count_error("journal_message_without_info");
                    break;
                }
            };
            let seq = info.stream_sequence;
            next_seq = seq + 1;
            inner.fed();
            // This instance's own appends are folded as they are made: not parsed twice.
            if seq > rescan_until && inner.shared.read().is_ok_and(|g| seq <= g.applied) {
                continue;
            }
            let mut entry = match serde_json::from_slice::<Entry<R>>(&m.payload) {
                Ok(entry) => entry,
                Err(e) => {
                    // Skipping it would count it as applied and let the state drift
                    // unseen: the journal stops here, loudly, and answers the failure.
                    inner.fail(seq, &e);
                    return;
                }
            };
            // Replayed entries a cursor already covers need no publishing.
            if cursors
                .as_ref()
                .and_then(|c| c.get(&entry.writer))
                .is_some_and(|&c| seq <= c)
            {
                entry.events.clear();
                entry.audit.clear();
            }
            if seq <= rescan_until {
                publishing::adopt(&inner, seq, entry);
                continue;
            }
            if fold_into(&inner, seq, entry) == Folded::Gap {
                tracing::warn!(journal = %inner.name, seq, "entries were trimmed under this instance; reloading the snapshot");
                if let Err(e) = snapshot::load(&inner).await {
                    tracing::error!(journal = %inner.name, error = %e, "could not reload the snapshot");
                    tokio::time::sleep(backoff).await;
                } else if let Err(e) = super::check_gap(&inner).await {
                    tracing::warn!(journal = %inner.name, error = %e, "could not check the journal for a gap");
                }
                break;
            }
            backoff = Duration::from_millis(50);
        }
        // A feed broken (a reconnect, a stall, a gap) before the rescan was through: the
        // rest is read again by the next feed, or the events of entries before the
        // snapshot that their writer left unpublished would never be adopted.
        if rescan_until > 0
            && next_seq <= rescan_until
            && let Some(inner) = weak.upgrade()
        {
            let mut g = inner.shared.write().unwrap_or_else(|p| p.into_inner());
            if g.rescan.is_none() {
                g.rescan = Some((next_seq, rescan_until));
            }
        }
        if weak.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}
