//! The write path every service follows: plan from the journal's state (the domain
//! decides), append the saved records with what to publish as one journal entry on top of
//! the sequence the plan read, publish. On a conflict (another instance appended first)
//! the journal is synced and the plan made again; so is a refusal, once, before it is
//! answered.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use guild_domain::{MissionId, Principal, Timestamp};
use guild_store::{Error, Journal, OutboxMessage, Publisher, Record};
use guild_wire::ErrorBody;
use guild_wire::api::Failure;
use guild_wire::audit::{AuditEntry, AuditKind};
use serde::Serialize;
use tracing::Instrument;

/// How many times a plan is re-made after conflicts before the request gives up.
const MAX_ATTEMPTS: usize = 64;

/// Events and audit entries a decision produced, with stable ids for de-duplication.
#[derive(Clone, Debug)]
pub struct Outgoing {
    id: String,
    pub(crate) at: Timestamp,
    pub(crate) events: Vec<OutboxMessage>,
    pub(crate) audit: Vec<AuditEntry>,
    /// The first payload that did not serialize: such a set is never committed or
    /// published (a `null` in its place would enter the hash chain), and the request that
    /// made it fails as `internal`, naming it.
    unserializable: Option<String>,
}

impl Outgoing {
    /// An empty set, stamped `now`.
    pub fn new(now: Timestamp) -> Self {
        Self {
            id: uuid::Uuid::new_v4().simple().to_string(),
            at: now,
            events: Vec::new(),
            audit: Vec::new(),
            unserializable: None,
        }
    }

    /// `payload` as JSON, or `Null` with the failure kept for [`check`](Self::check).
    fn value(&mut self, what: &str, payload: &impl Serialize) -> serde_json::Value {
        serde_json::to_value(payload).unwrap_or_else(|e| {
            self.unserializable
                .get_or_insert_with(|| format!("{what} did not serialize: {e}"));
            serde_json::Value::Null
        })
    }

    /// Fails when a payload did not serialize: logged with its cause, counted, and
    /// answered as `internal`.
    pub fn check(&self) -> Result<(), ErrorBody> {
        match &self.unserializable {
            None => Ok(()),
            Some(why) => {
                tracing::error!(error = %why, "a change's event or audit entry did not serialize; nothing is committed");
                guild_telemetry::metrics::count_error("payload_unserializable");
                Err(ErrorBody::internal(why.clone()))
            }
        }
    }

    /// Adds an event published on `subject`.
    pub fn event(&mut self, subject: String, payload: &impl Serialize) {
        self.event_with_headers(subject, payload, Vec::new());
    }

    /// Adds an event with a de-duplication id of the caller's (the same fact published by
    /// several instances is stored once).
    pub fn event_with_id(&mut self, subject: String, payload: &impl Serialize, id: String) {
        self.event_with_headers(subject, payload, Vec::new());
        if let Some(last) = self.events.last_mut() {
            last.id = id;
        }
    }

    /// Adds an event published on `subject` with headers of its own. It carries the
    /// current span's trace context (`traceparent`) unless `headers` has one, so whoever
    /// publishes it (this instance, or a sweeper after a crash) links it to the change.
    pub fn event_with_headers(
        &mut self,
        subject: String,
        payload: &impl Serialize,
        mut headers: Vec<(String, String)>,
    ) {
        if let Some(tp) = guild_telemetry::trace::current_traceparent()
            && !headers
                .iter()
                .any(|(k, _)| k == guild_wire::header::TRACEPARENT)
        {
            headers.push((guild_wire::header::TRACEPARENT.into(), tp));
        }
        let id = format!("{}-e{}", self.id, self.events.len());
        let payload = self.value(&format!("event {subject}"), payload);
        self.events.push(OutboxMessage {
            subject,
            payload,
            id,
            headers,
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
        let id = format!("{}-a{}", self.id, self.audit.len());
        let data = self.value(
            &format!("audit entry {} about {about}", kind.as_str()),
            data,
        );
        self.audit.push(AuditEntry {
            id,
            kind,
            actor: actor.clone(),
            about: about.to_owned(),
            mission_id,
            at: self.at,
            data,
            trace_id: guild_telemetry::trace::current_trace_id(),
        });
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.audit.is_empty()
    }
}

/// A plan: the records to save, what to publish, and what to answer.
#[derive(Debug)]
pub struct Planned<R, T> {
    /// Records to save, atomically.
    pub records: Vec<R>,
    /// Events and audit entries.
    pub outgoing: Outgoing,
    /// The answer, once committed.
    pub result: T,
}

/// A refusal, and the facts worth publishing about it (an authority denial is audited).
#[derive(Debug)]
pub struct Refused {
    /// The error to answer: a rule's refusal kept typed (`Failure::Rejected`) until the
    /// router encodes the reply.
    pub error: Failure,
    /// Events and audit entries to publish anyway.
    pub outgoing: Option<Box<Outgoing>>,
}

impl From<ErrorBody> for Refused {
    fn from(error: ErrorBody) -> Self {
        Self {
            error: Failure::Body(error),
            outgoing: None,
        }
    }
}

impl Refused {
    /// A refusal by `rejection`, with its denial record for the audit log when it is an
    /// authority refusal (`Rejection::denial`: the same record from every service,
    /// published under the refusal rule).
    pub fn denied(
        by: &guild_domain::Principal,
        rejection: &guild_domain::Rejection,
        target: Option<guild_domain::AgentId>,
    ) -> Self {
        let now = crate::now();
        let outgoing = rejection.denial(by, target, now).map(|event| {
            let mut out = Outgoing::new(now);
            out.audit(
                guild_wire::audit::AuditKind::Denial,
                by,
                event.about(),
                None,
                &event,
            );
            Box::new(out)
        });
        Self {
            error: Failure::Rejected(rejection.clone()),
            outgoing,
        }
    }
}

impl From<guild_domain::Rejection> for Refused {
    fn from(r: guild_domain::Rejection) -> Self {
        Self {
            error: Failure::Rejected(r),
            outgoing: None,
        }
    }
}

/// A committed plan's answer, and the audit sequences its entries got.
#[derive(Debug)]
pub struct Committed<T> {
    /// The answer.
    pub result: T,
    /// Audit sequences, in the order the plan added them (empty when publishing was left
    /// to another instance's sweep).
    pub audit_seqs: Vec<u64>,
}

/// Failure injection for tests of crash recovery: the next commit stops right after its
/// journal append, before anything is published, as if the process had died there.
/// Only tests arm it, through `run_with_faults`.
#[doc(hidden)]
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

/// A service's state: its journal, its publisher, and the write path. Cheap to clone.
/// Its parts are private: a read goes through [`read`](Self::read) (synced) or
/// [`read_local`](Self::read_local) (this instance's view, said so at the call).
pub struct State<S, R> {
    /// The replicated state.
    pub(crate) journal: Journal<S, R>,
    /// Publishes what commits produce.
    pub(crate) publisher: Publisher,
    /// Failure injection (tests only arm it).
    faults: Faults,
    /// The service this state belongs to (it names it in refusals and events).
    pub(crate) service: guild_domain::Service,
    /// Its streams' settings (a recovered audit log is created with them).
    pub(crate) durability: guild_store::Durability,
    /// What refusals leave behind, counted rather than repeated (`refusals.rs`).
    refusals: Arc<crate::refusals::Refusals>,
    /// One append in flight per instance: commits from one instance never conflict with
    /// each other, only with other instances'.
    commit_lock: Arc<tokio::sync::Mutex<()>>,
    /// Other services' journals this one's plans read (mission-svc reads the registry):
    /// synced too before a refusal is answered.
    followed: Vec<Arc<dyn Followed>>,
}

/// A journal a plan reads besides its own, synced before a refusal.
trait Followed: Send + Sync {
    fn sync(&self) -> futures_util::future::BoxFuture<'_, Result<(), Error>>;
}

impl<S: Send + Sync + 'static, R: Record> Followed for Journal<S, R> {
    fn sync(&self) -> futures_util::future::BoxFuture<'_, Result<(), Error>> {
        Box::pin(Journal::sync(self))
    }
}

impl<S, R> Clone for State<S, R> {
    fn clone(&self) -> Self {
        Self {
            journal: self.journal.clone(),
            publisher: self.publisher.clone(),
            faults: self.faults.clone(),
            service: self.service,
            durability: self.durability,
            refusals: self.refusals.clone(),
            commit_lock: self.commit_lock.clone(),
            followed: self.followed.clone(),
        }
    }
}

impl<S: Send + Sync + 'static, R: Record> State<S, R> {
    /// `service`'s state over `journal`, publishing through `publisher`.
    pub fn new(
        service: guild_domain::Service,
        journal: Journal<S, R>,
        publisher: Publisher,
        durability: guild_store::Durability,
    ) -> Self {
        Self {
            journal,
            publisher,
            faults: Faults::default(),
            service,
            durability,
            refusals: Arc::new(crate::refusals::Refusals::new(
                crate::refusals::DEFAULT_WINDOW,
            )),
            commit_lock: Arc::new(tokio::sync::Mutex::new(())),
            followed: Vec::new(),
        }
    }

    /// The same state, whose plans also read `journal` (followed read-only): a refusal
    /// is decided again once both are in step, since a caller spawned a moment ago
    /// through another instance may be missing from this one's view.
    pub fn reading<S2: Send + Sync + 'static, R2: Record>(
        mut self,
        journal: Journal<S2, R2>,
    ) -> Self {
        self.followed.push(Arc::new(journal));
        self
    }

    /// The same state, with `faults` armed by a crash-recovery test.
    #[doc(hidden)]
    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// The same state, counting identical refusals over `window` (`--refusal-window`).
    pub fn with_refusal_window(mut self, window: std::time::Duration) -> Self {
        self.refusals = Arc::new(crate::refusals::Refusals::new(window));
        self
    }

    /// The settle loop's step: publishes what dead writers left, and the upkeep of
    /// [`maintain`](Self::maintain).
    pub async fn settle(&self, grace: std::time::Duration) -> Result<usize, guild_store::Error> {
        self.maintain().await;
        let counted = self.refusals.close_due(crate::now());
        if !counted.is_empty()
            && let Err(e) = self.publisher.publish(&[], &counted).await
        {
            tracing::warn!(error = %e, "could not record the count of repeated refusals");
        }
        self.journal
            .settle(&self.publisher, crate::now().as_millis(), grace)
            .await
    }

    /// Runs the write path. `plan` reads the state and must be pure: it may run several
    /// times.
    pub async fn commit<T>(
        &self,
        mut plan: impl FnMut(&S) -> Result<Planned<R, T>, Refused>,
    ) -> Result<Committed<T>, Failure> {
        let lost = self.lost();
        if !lost.is_empty() {
            return Err(crate::lost::state_lost(self.service, &lost).into());
        }
        let mut synced = false;
        for _ in 0..MAX_ATTEMPTS {
            let lock = self.commit_lock.lock().await;
            let (seq, planned) = self.journal.plan(&mut plan);
            let Planned {
                records,
                outgoing,
                result,
            } = match planned {
                Ok(p) => p,
                Err(_) if !synced => {
                    // A refusal may rest on a state behind the journal (an ack for a
                    // delivery made through another instance a moment ago): decided again
                    // once in step, so nothing is refused that the journal allows.
                    drop(lock);
                    synced = true;
                    if let Err(e) = self.journal.sync().await {
                        tracing::warn!(error = %e, "could not sync before a refusal");
                    }
                    for f in &self.followed {
                        if let Err(e) = f.sync().await {
                            tracing::warn!(error = %e, "could not sync a followed journal before a refusal");
                        }
                    }
                    continue;
                }
                Err(refused) => {
                    drop(lock);
                    if let Some(out) = refused.outgoing.filter(|o| !o.is_empty())
                        && let Err(e) = self.announce_refusal(&out).await
                    {
                        tracing::warn!(error = %e, "could not publish a refusal's events");
                    }
                    return Err(refused.error);
                }
            };
            outgoing.check()?;
            if records.is_empty() && outgoing.is_empty() {
                return Ok(Committed {
                    result,
                    audit_seqs: Vec::new(),
                });
            }
            let span = if guild_telemetry::trace::enabled() {
                let subject = guild_wire::store::journal_subject(self.journal.name());
                guild_telemetry::trace::producer("publish", Some(&subject), &subject)
            } else {
                tracing::Span::none()
            };
            let appended = self
                .journal
                .append(
                    seq,
                    records,
                    outgoing.events,
                    outgoing.audit,
                    outgoing.at.as_millis(),
                )
                .instrument(span)
                .await;
            drop(lock);
            match appended {
                Ok(entry) => {
                    if self.faults.take_crash() {
                        return Err(ErrorBody::unavailable("injected crash after commit").into());
                    }
                    let audit_seqs = match self.journal.publish(entry, &self.publisher).await {
                        Ok(seqs) => seqs,
                        Err(e) => {
                            // Committed; another sweep publishes what this could not.
                            tracing::warn!(entry, error = %e, "publishing deferred to the sweeper");
                            Vec::new()
                        }
                    };
                    return Ok(Committed { result, audit_seqs });
                }
                Err(Error::Conflict) => self
                    .journal
                    .wait_past(seq)
                    .await
                    .map_err(|e| ErrorBody::from(&e))?,
                Err(e) => return Err(ErrorBody::from(&e).into()),
            }
        }
        Err(ErrorBody::new(
            guild_wire::ErrorCode::Conflict,
            "contention",
            format!("the state kept changing under this request ({MAX_ATTEMPTS} attempts); retry"),
        )
        .into())
    }

    /// Publishes facts with no state change behind them (an authority denial).
    pub async fn announce(&self, outgoing: &Outgoing) -> Result<Vec<u64>, ErrorBody> {
        outgoing.check()?;
        self.publisher
            .publish(&outgoing.events, &outgoing.audit)
            .await
            .map_err(|e| ErrorBody::from(&e))
    }

    /// Publishes what a refusal leaves behind, by the one rule for it: the first of
    /// identical refusals within the window is recorded, the rest are counted
    /// (`refusals.rs`).
    pub async fn announce_refusal(&self, outgoing: &Outgoing) -> Result<Vec<u64>, ErrorBody> {
        match self.refusals.admit(outgoing, crate::now()) {
            Some(out) => self.announce(&out).await,
            None => Ok(Vec::new()),
        }
    }

    /// Reads the state after syncing: the answer reflects every change committed before
    /// the call, by any instance.
    pub async fn read<T>(&self, f: impl FnOnce(&S) -> T) -> Result<T, ErrorBody> {
        self.journal.sync().await.map_err(|e| ErrorBody::from(&e))?;
        Ok(self.journal.read(f))
    }

    /// Reads this instance's view as it is, without syncing: for background loops and
    /// gauges, which act on what this instance has seen (a request's answer uses
    /// [`read`](Self::read)).
    pub fn read_local<T>(&self, f: impl FnOnce(&S) -> T) -> T {
        self.journal.read(f)
    }

    /// Catches this instance's view up with the journal.
    pub async fn sync(&self) -> Result<(), guild_store::Error> {
        self.journal.sync().await
    }

    /// The audit log commits append to (a service reading its own records).
    pub fn audit_log(&self) -> &guild_store::AuditLog {
        self.publisher.audit_log()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// JSON has no map with tuple keys: serializing one fails.
    fn unserializable() -> std::collections::BTreeMap<(u8, u8), u8> {
        [((1, 2), 3)].into()
    }

    #[test]
    fn an_event_or_audit_payload_that_does_not_serialize_fails_the_change_instead_of_becoming_null()
    {
        let counted = guild_telemetry::metrics::errors_counted("payload_unserializable");
        let mut out = Outgoing::new(Timestamp(1));
        out.event(
            "guild.evt.test.happened.x".into(),
            &serde_json::json!({"ok": true}),
        );
        assert!(out.check().is_ok(), "a set that serialized is committed");
        out.audit(
            AuditKind::Denial,
            &Principal::Operator,
            "x",
            None,
            &unserializable(),
        );
        let e = out.check().unwrap_err();
        assert_eq!(e.code, guild_wire::ErrorCode::Internal);
        assert!(
            e.message.contains("audit entry"),
            "names what failed: {}",
            e.message
        );
        assert!(
            guild_telemetry::metrics::errors_counted("payload_unserializable") > counted,
            "counted"
        );
        let mut out = Outgoing::new(Timestamp(1));
        out.event("guild.evt.test.happened.x".into(), &unserializable());
        assert!(
            out.check()
                .unwrap_err()
                .message
                .contains("guild.evt.test.happened.x")
        );
    }
}
