//! The request baselines Guild's operations are measured against: a plain NATS
//! request/reply responder in the bench process that replies at once (echo), or that first
//! does the JetStream writes one Guild operation does, the way Guild does them (echo +
//! writes). No Guild code runs in between, so the difference is Guild's own cost.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use guild_sdk::{Principal, Timestamp};
use guild_store::{AuditLog, Durability};
use guild_wire::audit::{AuditEntry, AuditKind};

use crate::scenario::sequential;
use crate::stats::Samples;

/// Bytes of a journal entry: records, events and audit entries of one change, as JSON.
pub(crate) const JOURNAL_ENTRY: usize = 1_500;
/// Bytes of an event or inbox log entry.
const MESSAGE: usize = 300;
/// Bytes of a request and its reply.
const REQUEST: usize = 200;
/// Requests made, untimed, before the timed ones.
const WARM_UP: usize = 20;

/// The JetStream writes of one Guild operation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Writes {
    /// One journal append, conditional on the stream's last sequence and de-duplicated by
    /// id (`Journal::append`).
    pub(crate) journal: bool,
    /// Messages to a stream (events, inbox log entries), all sent before any
    /// acknowledgement is awaited (`Publisher::publish`).
    pub(crate) publish: usize,
    /// Entries appended to the audit chain one after another (`AuditLog::append`).
    pub(crate) audit: usize,
}

impl Writes {
    pub(crate) const NONE: Writes = Writes {
        journal: false,
        publish: 0,
        audit: 0,
    };
    /// A root spawn: the entry, the `spawned` event, the spawn's audit record.
    pub(crate) const SPAWN: Writes = Writes {
        journal: true,
        publish: 1,
        audit: 1,
    };
    /// A mission without dependencies: the entry, `created` and `ready`, one audit record.
    pub(crate) const CREATE_MISSION: Writes = Writes {
        journal: true,
        publish: 2,
        audit: 1,
    };
    /// A dependency added: the entry and `dependency_added`.
    pub(crate) const ADD_DEPENDENCY: Writes = Writes {
        journal: true,
        publish: 1,
        audit: 0,
    };
    /// A completion that releases one dependent: the entry, then `status_changed` and
    /// `completed` for the mission, `status_changed` and `ready` for its dependent, then
    /// the completion's audit record.
    pub(crate) const COMPLETE: Writes = Writes {
        journal: true,
        publish: 4,
        audit: 1,
    };
    /// A REQUEST nobody waits for: the entry and the inbox log entry.
    pub(crate) const SEND: Writes = Writes {
        journal: true,
        publish: 1,
        audit: 0,
    };

    /// "echo + journal append + 2 stream publishes + 1 audit append".
    pub(crate) fn describe(self) -> String {
        let mut parts = vec!["echo".to_owned()];
        if self.journal {
            parts.push("journal append".into());
        }
        if self.publish > 0 {
            parts.push(format!("{} stream publish(es)", self.publish));
        }
        if self.audit > 0 {
            parts.push(format!("{} audit append(s)", self.audit));
        }
        parts.join(" + ")
    }
}

/// A responder on its own subject, stopped when dropped.
pub(crate) struct Responder {
    subject: String,
    /// Where it publishes its events.
    events: String,
    writes: Writes,
    /// The task answering requests.
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Responder {
    /// Starts a responder named `name` (letters and digits) that does `writes` before
    /// each reply, one request at a time as a service instance's appends are.
    pub(crate) async fn start(
        client: &async_nats::Client,
        name: &str,
        writes: Writes,
    ) -> anyhow::Result<Self> {
        let js = jetstream::new(client.clone());
        let d = Durability::default();
        let journal = format!("bench.raw.journal.{name}");
        if writes.journal {
            // The same settings as a service journal's stream.
            guild_store::provision::ensure_stream(
                &js,
                stream::Config {
                    name: format!("BENCH_RAW_JOURNAL_{}", name.to_uppercase()),
                    subjects: vec![journal.clone()],
                    storage: stream::StorageType::File,
                    discard: stream::DiscardPolicy::New,
                    deny_delete: true,
                    allow_direct: true,
                    duplicate_window: guild_wire::store::AUDIT_DUPLICATE_WINDOW,
                    ..Default::default()
                },
            )
            .await?;
        }
        if writes.publish > 0 {
            guild_store::provision::events_stream(&js, d).await?;
        }
        let audit = if writes.audit > 0 {
            Some(AuditLog::open(&js, d).await?)
        } else {
            None
        };
        let subject = format!("bench.raw.{name}");
        let mut requests = client.subscribe(subject.clone()).await?;
        let replier = client.clone();
        let events = format!("guild.evt.bench.raw.{name}");
        let events_subject = events.clone();
        let task = tokio::spawn(async move {
            let mut last = 0u64;
            let mut i = 0u64;
            while let Some(m) = requests.next().await {
                i += 1;
                let done = perform(&js, writes, &journal, &events, audit.as_ref(), last, i).await;
                match done {
                    Ok(seq) => last = seq,
                    Err(e) => {
                        // Dropping the subscription fails the waiting request at once.
                        eprintln!("guild-bench: the raw responder's writes failed: {e:#}");
                        return;
                    }
                }
                if let Some(reply) = m.reply {
                    let _ = replier.publish(reply, m.payload).await;
                }
            }
        });
        Ok(Self {
            subject,
            events: events_subject,
            writes,
            task,
        })
    }

    /// Times `n` round trips, one after another, after a warm-up.
    pub(crate) async fn measure(
        &self,
        client: &async_nats::Client,
        n: usize,
    ) -> anyhow::Result<Samples> {
        let body = Bytes::from(vec![b'x'; REQUEST]);
        let call = |_| {
            let body = body.clone();
            async move {
                tokio::time::timeout(
                    Duration::from_secs(30),
                    client.request(self.subject.clone(), body),
                )
                .await??;
                anyhow::Ok(())
            }
        };
        sequential(WARM_UP, call).await?;
        sequential(n, call).await
    }

    /// Times `n` requests, one after another after a warm-up, from sending each until
    /// the last of its events arrives at a subscriber (as Guild's readiness is timed to
    /// the `ready` event, the last a completion publishes). The reply, which follows the
    /// audit append, is awaited alongside. Each request is sent after `idle` with nothing
    /// to do.
    pub(crate) async fn measure_until_last_event(
        &self,
        client: &async_nats::Client,
        n: usize,
        idle: Duration,
    ) -> anyhow::Result<Samples> {
        anyhow::ensure!(self.writes.publish > 0, "the responder publishes no events");
        let mut events = client.subscribe(self.events.clone()).await?;
        client.flush().await?;
        let body = Bytes::from(vec![b'x'; REQUEST]);
        let mut samples = Samples::with_capacity(n);
        for i in 0..WARM_UP + n {
            if !idle.is_zero() {
                tokio::time::sleep(idle).await;
            }
            let t = std::time::Instant::now();
            let request = client.request(self.subject.clone(), body.clone());
            let last_event = async {
                for _ in 0..self.writes.publish {
                    tokio::time::timeout(Duration::from_secs(30), events.next())
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("the event subscription ended"))?;
                }
                anyhow::Ok(t.elapsed())
            };
            let (replied, at) = tokio::join!(request, last_event);
            replied?;
            if i >= WARM_UP {
                samples.push(at?);
            }
        }
        Ok(samples)
    }
}

/// One request's writes; returns the journal's new last sequence (`last` without one).
async fn perform(
    js: &jetstream::Context,
    writes: Writes,
    journal: &str,
    events: &str,
    audit: Option<&AuditLog>,
    last: u64,
    i: u64,
) -> anyhow::Result<u64> {
    let mut seq = last;
    if writes.journal {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Expected-Last-Sequence", last.to_string().as_str());
        headers.insert("Nats-Msg-Id", format!("raw-j{i}").as_str());
        seq = js
            .publish_with_headers(
                journal.to_owned(),
                headers,
                Bytes::from(vec![b'x'; JOURNAL_ENTRY]),
            )
            .await?
            .await?
            .sequence;
    }
    let mut acks = Vec::with_capacity(writes.publish);
    for e in 0..writes.publish {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("raw-{events}-{i}-{e}").as_str());
        acks.push(
            js.publish_with_headers(events.to_owned(), headers, Bytes::from(vec![b'x'; MESSAGE]))
                .await?,
        );
    }
    for ack in acks {
        ack.await?;
    }
    if let Some(log) = audit {
        for a in 0..writes.audit {
            log.append(&AuditEntry {
                id: format!("raw-{events}-{i}-a{a}"),
                kind: AuditKind::Spawn,
                actor: Principal::Operator,
                about: format!("raw{i}"),
                mission_id: None,
                at: Timestamp::from_millis(0),
                data: serde_json::json!({ "i": i }),
                trace_id: None,
            })
            .await?;
        }
    }
    Ok(seq)
}
