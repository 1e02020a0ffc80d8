//! The one rule for what a refusal leaves behind (ARCHITECTURE.md, "Refusals"): a refusal
//! worth recording (an authority denial) is audited, but a flood of the same refusal must
//! not become an unbounded audit log (the stream is kept for good and cannot be purged).
//! So within a window, the first refusal of a kind by one principal about one thing is
//! recorded as it happens; the identical ones after it are only counted, and when the
//! window closes one record carries the count. N identical refusals add at most two
//! records per window per instance, however large N is.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::Duration;

use guild_domain::Timestamp;
use guild_wire::audit::{AuditEntry, AuditKind};

use crate::Outgoing;

/// The window by default (`--refusal-window`).
pub(crate) const DEFAULT_WINDOW: Duration = Duration::from_secs(60);

/// Distinct refusals remembered at once; past it, every window is closed early.
const CAPACITY: usize = 4_096;

/// What makes two refusals the same: the kind, who, about what, and what was said (its
/// data without the time it happened).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    kind: AuditKind,
    actor: String,
    about: String,
    what: u64,
}

impl Key {
    fn of(entry: &AuditEntry) -> Self {
        let mut data = entry.data.clone();
        if let Some(map) = data.as_object_mut() {
            map.remove("at");
        }
        let mut h = DefaultHasher::new();
        data.to_string().hash(&mut h);
        Self {
            kind: entry.kind,
            actor: entry.actor.to_string(),
            about: entry.about.clone(),
            what: h.finish(),
        }
    }
}

#[derive(Debug)]
struct Window {
    opened: Timestamp,
    /// Identical refusals after the first, not recorded yet.
    repeats: u64,
    /// The last of them.
    last: AuditEntry,
}

/// The windows of one service instance.
#[derive(Debug)]
pub(crate) struct Refusals {
    window: Duration,
    open: Mutex<HashMap<Key, Window>>,
}

impl Refusals {
    pub(crate) fn new(window: Duration) -> Self {
        Self {
            window,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// What of a refusal's `out` to publish now: its audit entries that open a window
    /// (and its events when any did, or when it has no audit entry); `None` when every
    /// entry repeats one recorded in its window.
    pub(crate) fn admit(&self, out: &Outgoing, now: Timestamp) -> Option<Outgoing> {
        if out.audit.is_empty() {
            return Some(out.clone());
        }
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let mut admitted = Vec::new();
        for entry in &out.audit {
            match open.get_mut(&Key::of(entry)) {
                Some(w) => {
                    w.repeats += 1;
                    w.last = entry.clone();
                }
                None => {
                    if open.len() >= CAPACITY {
                        // Rare (thousands of distinct refusals in one window): those
                        // windows are lost count of rather than memory growing.
                        tracing::warn!(
                            open = open.len(),
                            "too many distinct refusals at once: their windows restart"
                        );
                        open.clear();
                    }
                    open.insert(
                        Key::of(entry),
                        Window {
                            opened: now,
                            repeats: 0,
                            last: entry.clone(),
                        },
                    );
                    admitted.push(entry.clone());
                }
            }
        }
        if admitted.is_empty() {
            return None;
        }
        let mut kept = out.clone();
        kept.audit = admitted;
        Some(kept)
    }

    /// Closes the windows older than the window's length; returns one record per window
    /// that counted repeats: the last repeat, its data wrapped with the count.
    pub(crate) fn close_due(&self, now: Timestamp) -> Vec<AuditEntry> {
        let window = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let mut due = Vec::new();
        open.retain(|_, w| {
            if now.as_millis().saturating_sub(w.opened.as_millis()) < window {
                return true;
            }
            if w.repeats > 0 {
                let mut entry = w.last.clone();
                entry.id = format!("{}-repeated-{}", entry.id, w.repeats);
                entry.data = serde_json::json!({
                    "repeated": w.repeats,
                    "since": w.opened.as_millis(),
                    "until": w.last.at.as_millis(),
                    "last": w.last.data,
                });
                due.push(entry);
            }
            false
        });
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use guild_domain::Principal;

    fn denial(at: u64, reason: &str) -> Outgoing {
        let mut out = Outgoing::new(Timestamp::from_millis(at));
        out.audit(
            AuditKind::Denial,
            &Principal::Agent(
                guild_domain::AgentId::new("junk").unwrap_or_else(|_| unreachable!()),
            ),
            "junk",
            None,
            &serde_json::json!({ "action": "spawn", "reason": reason, "at": at }),
        );
        out.event(
            "guild.evt.spawner.authority_denied.junk".into(),
            &serde_json::json!({}),
        );
        out
    }

    #[test]
    fn a_flood_of_one_refusal_is_two_records_per_window() {
        let r = Refusals::new(Duration::from_millis(1_000));
        let first = r.admit(&denial(0, "no"), Timestamp::from_millis(0));
        assert_eq!(first.map(|o| (o.audit.len(), o.events.len())), Some((1, 1)));
        for t in 1..6_000 {
            assert!(
                r.admit(&denial(t / 10, "no"), Timestamp::from_millis(t / 10))
                    .is_none()
            );
        }
        // Not yet closed.
        assert!(r.close_due(Timestamp::from_millis(999)).is_empty());
        let closed = r.close_due(Timestamp::from_millis(1_000));
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].data["repeated"], 5_999);
        assert_eq!(closed[0].data["last"]["reason"], "no");
        // The next one opens a new window and is recorded again.
        assert!(
            r.admit(&denial(1_001, "no"), Timestamp::from_millis(1_001))
                .is_some()
        );
    }

    #[test]
    fn different_refusals_are_each_recorded() {
        let r = Refusals::new(Duration::from_secs(60));
        assert!(
            r.admit(&denial(0, "no"), Timestamp::from_millis(0))
                .is_some()
        );
        assert!(
            r.admit(&denial(1, "other"), Timestamp::from_millis(1))
                .is_some()
        );
        // A window with nothing repeated closes without a record.
        assert!(r.close_due(Timestamp::from_millis(120_000)).is_empty());
    }
}
