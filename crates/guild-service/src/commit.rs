//! The write path every service follows: plan from the view (the domain decides), commit
//! the writes and an outbox entry atomically, fold them into the view, publish. On a
//! conflict the view is synced and the plan made again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use guild_domain::{MissionId, Principal, Timestamp};
use guild_store::{Error, Outbox, OutboxEntry, OutboxMessage, Revisions, View, Write};
use guild_wire::ErrorBody;
use guild_wire::audit::{AuditEntry, AuditKind};
use serde::Serialize;

/// How many times a plan is re-made after conflicts before the request gives up.
const MAX_ATTEMPTS: usize = 64;

/// Events and audit entries a decision produced, collected for the outbox.
#[derive(Clone, Debug)]
pub struct Outgoing {
    entry: OutboxEntry,
}

impl Outgoing {
    /// An empty set, stamped `now`.
    pub fn new(now: Timestamp) -> Self {
        Self {
            entry: OutboxEntry {
                id: uuid::Uuid::new_v4().simple().to_string(),
                created_at_ms: now.as_millis(),
                events: Vec::new(),
                audit: Vec::new(),
            },
        }
    }

    /// Adds an event published on `subject`.
    pub fn event(&mut self, subject: String, payload: &impl Serialize) {
        let id = format!("{}-e{}", self.entry.id, self.entry.events.len());
        let payload = serde_json::to_value(payload).unwrap_or_default();
        self.entry.events.push(OutboxMessage {
            subject,
            payload,
            id,
            headers: Vec::new(),
        });
    }

    /// Adds an audit entry.
    pub fn audit(
        &mut self,
        kind: AuditKind,
        actor: &Principal,
        about: &str,
        mission_id: Option<MissionId>,
        data: &impl Serialize,
    ) {
        let id = format!("{}-a{}", self.entry.id, self.entry.audit.len());
        self.entry.audit.push(AuditEntry {
            id,
            kind,
            actor: actor.clone(),
            about: about.to_owned(),
            mission_id,
            at: Timestamp::from_millis(self.entry.created_at_ms),
            data: serde_json::to_value(data).unwrap_or_default(),
            trace_id: None,
        });
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.entry.is_empty()
    }

    /// The outbox entry.
    pub fn entry(&self) -> &OutboxEntry {
        &self.entry
    }
}

/// A plan: the writes (each conditional on the revision the plan read), what to publish,
/// and what to answer.
#[derive(Debug)]
pub struct Planned<T> {
    /// Writes to commit atomically.
    pub writes: Vec<Write>,
    /// Events and audit entries.
    pub outgoing: Outgoing,
    /// The answer, once committed.
    pub result: T,
}

/// A refusal, and the facts worth publishing about it (an authority denial is audited).
#[derive(Debug)]
pub struct Refused {
    /// The error to answer.
    pub error: ErrorBody,
    /// Events and audit entries to publish anyway.
    pub outgoing: Option<Box<Outgoing>>,
}

impl From<ErrorBody> for Refused {
    fn from(error: ErrorBody) -> Self {
        Self {
            error,
            outgoing: None,
        }
    }
}

impl From<guild_domain::Rejection> for Refused {
    fn from(r: guild_domain::Rejection) -> Self {
        ErrorBody::from(&r).into()
    }
}

/// A committed plan's answer, and the audit sequences its entries got.
#[derive(Debug)]
pub struct Committed<T> {
    /// The answer.
    pub result: T,
    /// Audit sequences, in the order the plan added them (empty if publishing is left to
    /// the sweeper).
    pub audit_seqs: Vec<u64>,
}

/// Failure injection for tests of crash recovery: the next commit stops right after the
/// atomic write, before the outbox is published or the view updated, as if the process had
/// died there.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    crash_after_commit: Arc<AtomicBool>,
}

impl Faults {
    /// Arms the crash for the next commit.
    pub fn crash_after_next_commit(&self) {
        self.crash_after_commit.store(true, Ordering::SeqCst);
    }

    fn take_crash(&self) -> bool {
        self.crash_after_commit.swap(false, Ordering::SeqCst)
    }
}

/// A service's state: its view of its bucket, the outbox over that bucket, and the write
/// path. Cheap to clone.
pub struct State<S> {
    /// The state in memory, kept in step with the bucket.
    pub view: View<S>,
    /// Publishes what commits produce.
    pub outbox: Outbox,
    /// Failure injection (tests only arm it).
    pub faults: Faults,
}

impl<S> Clone for State<S> {
    fn clone(&self) -> Self {
        Self {
            view: self.view.clone(),
            outbox: self.outbox.clone(),
            faults: self.faults.clone(),
        }
    }
}

impl<S: Send + Sync + 'static> State<S> {
    /// Runs the write path. `plan` reads the state and revisions under one lock and must
    /// be pure: it may run several times.
    pub async fn commit<T>(
        &self,
        plan: impl FnMut(&S, &Revisions) -> Result<Planned<T>, Refused>,
    ) -> Result<Committed<T>, ErrorBody> {
        commit(&self.view, &self.outbox, &self.faults, plan).await
    }

    /// Reads the state after syncing the view: the answer reflects every write
    /// acknowledged before the call.
    pub async fn read<R>(&self, f: impl FnOnce(&S) -> R) -> Result<R, ErrorBody> {
        self.view.sync().await.map_err(|e| ErrorBody::from(&e))?;
        Ok(self.view.read(f))
    }
}

async fn commit<S, T>(
    view: &View<S>,
    outbox: &Outbox,
    faults: &Faults,
    mut plan: impl FnMut(&S, &Revisions) -> Result<Planned<T>, Refused>,
) -> Result<Committed<T>, ErrorBody>
where
    S: Send + Sync + 'static,
{
    for _ in 0..MAX_ATTEMPTS {
        let planned = match view.plan(&mut plan) {
            Ok(p) => p,
            Err(refused) => {
                if let Some(out) = refused.outgoing.filter(|o| !o.is_empty())
                    && let Err(e) = outbox.publish(out.entry()).await
                {
                    tracing::warn!(error = %e, "could not publish a refusal's events");
                }
                return Err(refused.error);
            }
        };
        let Planned {
            mut writes,
            outgoing,
            result,
        } = planned;
        let has_outbox = !outgoing.is_empty();
        if writes.is_empty() && !has_outbox {
            return Ok(Committed {
                result,
                audit_seqs: Vec::new(),
            });
        }
        if has_outbox {
            writes.push(outgoing.entry().write());
        }
        match view.bucket().commit(&writes).await {
            Ok(revisions) => {
                if faults.take_crash() {
                    return Err(ErrorBody::unavailable("injected crash after commit"));
                }
                view.apply_committed(&writes, &revisions);
                let audit_seqs = if has_outbox {
                    match outbox.flush(outgoing.entry()).await {
                        Ok(seqs) => seqs,
                        Err(e) => {
                            // Committed; the sweeper publishes what this could not.
                            tracing::warn!(outbox = %outgoing.entry().id, error = %e, "publishing deferred to the sweeper");
                            Vec::new()
                        }
                    }
                } else {
                    Vec::new()
                };
                return Ok(Committed { result, audit_seqs });
            }
            Err(Error::Conflict) => {
                view.sync().await.map_err(|e| ErrorBody::from(&e))?;
            }
            Err(e) => return Err(ErrorBody::from(&e)),
        }
    }
    Err(ErrorBody::new(
        guild_wire::ErrorCode::Conflict,
        "contention",
        format!("the state kept changing under this request ({MAX_ATTEMPTS} attempts); retry"),
    ))
}
