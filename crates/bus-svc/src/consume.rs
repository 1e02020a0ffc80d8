//! `consume`: the next message of the caller's inbox, waiting for one up to a timeout.
//!
//! A consume that finds nothing records a wait (`Waiting`) in the journal. Whichever
//! instance then accepts a message for that inbox delivers it to the wait in the same
//! append, and the instance holding the request learns of it as it folds the entry: the
//! fold hands the delivery to the waiting request through [`Wakers`]. While it waits the
//! request also looks again every sweep (a delivery's ack window may run out, a delay may
//! pass); when its time is up it leaves (`Left`), which settles the race with a sender: if
//! a message reached it first, the request answers with that instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use guild_domain::message::{Command, CopyState, Delivery, OfficeRecord, PostOffice, Wait};
use guild_domain::{Principal, Rejection};
use guild_telemetry::KeyValue;
use guild_telemetry::trace::SpanExt;
use guild_wire::ErrorBody;
use guild_wire::api::bus::Consumed;
use tokio::sync::oneshot;

use crate::{Bus, MAX_CONSUME_WAIT};

/// The waiting consume requests of this instance, by wait id.
#[derive(Clone, Default)]
pub(crate) struct Wakers {
    waiting: Arc<Mutex<HashMap<String, oneshot::Sender<Delivery>>>>,
}

impl Wakers {
    fn register(&self, id: &str) -> oneshot::Receiver<Delivery> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut w) = self.waiting.lock() {
            w.insert(id.to_owned(), tx);
        }
        rx
    }

    fn forget(&self, id: &str) {
        if let Ok(mut w) = self.waiting.lock() {
            w.remove(id);
        }
    }

    fn wake(&self, id: &str, delivery: impl FnOnce() -> Option<Delivery>) {
        let tx = self.waiting.lock().ok().and_then(|mut w| w.remove(id));
        if let Some(tx) = tx
            && let Some(d) = delivery()
        {
            let _ = tx.send(d);
        }
    }

    /// Folds a record into the office, first handing any delivery it makes to a waiting
    /// request of this instance.
    pub(crate) fn fold(&self, office: &mut PostOffice, record: OfficeRecord) {
        match &record {
            OfficeRecord::Posted(p) => {
                for c in &p.copies {
                    if let CopyState::InFlight {
                        waiter: Some(w), ..
                    } = &c.state
                    {
                        self.wake(w, || Some(c.delivery(&p.message)));
                    }
                }
            }
            OfficeRecord::Copy { message_id, copy } => {
                if let CopyState::InFlight {
                    waiter: Some(w), ..
                } = &copy.state
                {
                    self.wake(w, || {
                        Some(copy.delivery(&office.message(message_id)?.message))
                    });
                }
            }
            _ => {}
        }
        office.apply(record);
    }
}

/// A consume's answer. The request's span (SERVER, in the consumer's trace) links to the
/// message's creation context, and a first delivery's latency is recorded.
fn handed_over(delivery: Option<Delivery>) -> Consumed {
    if let Some(d) = &delivery {
        let m = &d.message;
        let span = tracing::Span::current();
        if let Some(tp) = &m.traceparent {
            span.link_traceparent(tp);
        }
        span.attr("messaging.message.id", m.id.as_str());
        span.attr("guild.message.type", m.kind.as_str());
        span.attr("guild.message.priority", m.priority.as_str());
        span.attr("guild.delivery.attempt", d.attempt);
        if d.attempt == 1 {
            let latency = guild_service::now().millis_since(m.created_at) as f64 / 1000.0;
            guild_telemetry::metrics::instruments()
                .message_latency
                .record(
                    latency,
                    &[
                        KeyValue::new("guild.message.type", m.kind.as_str()),
                        KeyValue::new("guild.message.priority", m.priority.as_str()),
                    ],
                );
        }
    }
    Consumed { delivery }
}

/// What one look at a wait found.
enum Look {
    /// A delivery, to answer with (boxed: it is large, the other answers are not).
    Delivered(Box<Delivery>),
    /// Nothing yet; keep waiting.
    Wait,
    /// Time is up (or the wait was served elsewhere and the fold has the delivery).
    Done,
}

impl Bus {
    /// The seed's `consume(agent, timeout)`.
    pub(crate) async fn consume(
        &self,
        owner: Principal,
        timeout_ms: u64,
        kinds: Vec<guild_domain::message::MessageType>,
    ) -> Result<Consumed, ErrorBody> {
        if timeout_ms > MAX_CONSUME_WAIT.as_millis() as u64 {
            return Err(ErrorBody::from(Rejection::invalid(
                "timeout_ms",
                format!(
                    "at most {} ms; consume again to wait longer",
                    MAX_CONSUME_WAIT.as_millis()
                ),
            )));
        }
        self.check_inbox_owner(&owner).await?;
        let wait_id = uuid::Uuid::new_v4().simple().to_string();
        let wakers = self.wakers();
        let mut woken = wakers.register(&wait_id);
        let now = guild_service::now();
        let until = now.plus_millis(timeout_ms);
        let consume = Command::Consume {
            kinds,
            wait: (timeout_ms > 0).then(|| Wait {
                id: wait_id.clone(),
                until,
            }),
        };
        let mut synced = false;
        let first = loop {
            let first = self
                .execute(&owner, &consume, now, |_, told| Ok(told.delivered))
                .await;
            match first {
                // A poll that found nothing appended nothing, so no conflict told it its
                // state was behind: it looks once more in step with the journal, and so
                // sees every message acknowledged before it started (a wait's append
                // would have conflicted instead).
                Ok(c) if c.result.is_none() && timeout_ms == 0 && !synced => {
                    synced = true;
                    if let Err(e) = self.state().sync().await {
                        wakers.forget(&wait_id);
                        return Err(ErrorBody::from(&e));
                    }
                }
                Ok(c) => break c.result,
                Err(e) => {
                    wakers.forget(&wait_id);
                    return Err(e.into());
                }
            }
        };
        if first.is_some() || timeout_ms == 0 {
            wakers.forget(&wait_id);
            return Ok(handed_over(first));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
        let sweep = self.config().sweep_every;
        let mut stopping = self.stopping();
        loop {
            let next_look = (tokio::time::Instant::now() + sweep).min(deadline);
            tokio::select! {
                biased;
                delivered = &mut woken => {
                    return Ok(handed_over(delivered.ok()));
                }
                _ = stopping.changed() => {}
                () = tokio::time::sleep_until(next_look) => {}
            }
            let stop = *stopping.borrow();
            match self.look(&owner, &wait_id, stop).await? {
                Look::Delivered(d) => {
                    wakers.forget(&wait_id);
                    return Ok(handed_over(Some(*d)));
                }
                Look::Wait => {}
                Look::Done => {
                    // If a sender served the wait, its fold has the delivery for us.
                    let late = tokio::time::timeout(Duration::from_millis(50), &mut woken).await;
                    wakers.forget(&wait_id);
                    return Ok(handed_over(late.ok().and_then(Result::ok)));
                }
            }
        }
    }

    /// Looks at wait `id` once: serves it if something became deliverable, ends it when
    /// its time is up (or the service is stopping).
    async fn look(&self, owner: &Principal, id: &str, stop: bool) -> Result<Look, ErrorBody> {
        let revisit = Command::Revisit {
            waiter: id.to_owned(),
            stopping: stop,
        };
        // A wait gone (served elsewhere, or ended) is done; one that saved its end is done.
        let committed = self
            .execute(owner, &revisit, guild_service::now(), |office, told| {
                Ok(match told.delivered {
                    Some(d) => Look::Delivered(Box::new(d)),
                    None if told.saved > 0 || office.waiter(id).is_none() => Look::Done,
                    None => Look::Wait,
                })
            })
            .await?;
        Ok(committed.result)
    }
}
