//! Delivery: what a consumer is handed next, waits, posting a message, acks and naks.

use super::*;
use crate::Rejection;
use crate::id::{MessageId, Principal};
use crate::message::{Message, MessageType, QuestionState, Recipient, Routed};
use crate::time::Timestamp;

impl PostOffice {
    // ---- delivery ---------------------------------------------------------------------

    /// The first deliverable copy of each priority in `owner`'s inbox (of `kinds`, when
    /// given), with its age.
    fn firsts(
        &self,
        owner: &Principal,
        now: Timestamp,
        kinds: &[MessageType],
    ) -> [Option<(&MessageId, Timestamp)>; 4] {
        let mut out = [None; 4];
        let Some(inbox) = self.inboxes.get(owner) else {
            return out;
        };
        for (rank, level) in inbox.levels.iter().enumerate() {
            out[rank] = level.values().find_map(|id| {
                let p = self.messages.get(id)?;
                let c = p.copy_for(owner)?;
                let wanted = kinds.is_empty() || kinds.contains(&p.message.kind);
                (wanted && deliverable(c, now)).then_some((id, p.message.created_at))
            });
        }
        out
    }

    /// What `owner` should be handed next: highest priority first, first in first out
    /// within a priority, except where the anti-starvation rule serves a lower priority
    /// that waited too long. `extra` is a message being posted in the same decision.
    fn pick<'a>(
        &'a self,
        owner: &Principal,
        now: Timestamp,
        kinds: &[MessageType],
        extra: Option<&'a Message>,
    ) -> Option<&'a MessageId> {
        let mut firsts = self.firsts(owner, now, kinds);
        if let Some(m) = extra.filter(|m| kinds.is_empty() || kinds.contains(&m.kind)) {
            let slot = &mut firsts[m.priority.rank()];
            if slot.is_none() {
                *slot = Some((&m.id, m.created_at));
            }
        }
        let oldest = firsts.map(|f| f.map(|(_, t)| t));
        let p = next_priority(&oldest, now, &self.config.starvation)?;
        firsts[p.rank()].map(|(id, _)| id)
    }

    fn deliver(
        &self,
        message: &Message,
        copy: &Copy,
        waiter: Option<&str>,
        now: Timestamp,
    ) -> (Copy, Delivery) {
        let next = Copy {
            owner: copy.owner.clone(),
            pos: copy.pos,
            attempts: copy.attempts + 1,
            state: CopyState::InFlight {
                until: now.plus_millis(self.config.ack_wait_ms),
                waiter: waiter.map(str::to_owned),
            },
        };
        let delivery = next.delivery(message);
        (next, delivery)
    }

    /// The seed's `consume`: hands `owner` its next message (of `kinds`, when given; the
    /// others stay queued for other consumers), or `None` when nothing is deliverable now.
    pub fn consume(
        &self,
        owner: &Principal,
        now: Timestamp,
        kinds: &[MessageType],
    ) -> Option<(OfficeRecord, Delivery)> {
        let id = self.pick(owner, now, kinds, None)?;
        let p = self.messages.get(id)?;
        let (copy, delivery) = self.deliver(&p.message, p.copy_for(owner)?, None, now);
        Some((
            OfficeRecord::Copy {
                message_id: id.clone(),
                copy,
            },
            delivery,
        ))
    }

    /// Registers a consume call that found nothing and will wait until `until` for a
    /// message (of `kinds`, when given).
    pub fn wait(
        &self,
        owner: &Principal,
        waiter: String,
        until: Timestamp,
        kinds: Vec<MessageType>,
    ) -> OfficeRecord {
        OfficeRecord::Waiting(Waiter {
            id: waiter,
            owner: owner.clone(),
            pos: self.totals.next_pos,
            until,
            kinds,
        })
    }

    /// Serves waiter `id` if a message became deliverable for it (a delivery's ack window
    /// ran out, or a delay passed), or ends it when its time is up. `None`: keep waiting.
    pub fn revisit(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Option<(Vec<OfficeRecord>, Option<Delivery>)> {
        let w = self.waiters.get(id)?;
        let left = OfficeRecord::Left {
            waiter: id.to_owned(),
        };
        if let Some(mid) = self.pick(&w.owner, now, &w.kinds, None)
            && let Some(p) = self.messages.get(mid)
            && let Some(c) = p.copy_for(&w.owner)
        {
            let (copy, delivery) = self.deliver(&p.message, c, Some(id), now);
            let record = OfficeRecord::Copy {
                message_id: mid.clone(),
                copy,
            };
            return Some((vec![record, left], Some(delivery)));
        }
        (w.until <= now).then(|| (vec![left], None))
    }

    /// Stores a routed message. Waiting consumers of its recipients are served in the
    /// same step: each gets what it would have consumed next, which is this message unless
    /// something ahead of it in that inbox became deliverable meanwhile.
    pub fn post(&self, routed: Routed, now: Timestamp) -> Post {
        let Routed {
            message,
            recipients,
        } = routed;
        let mut owners: Vec<Principal> =
            recipients.iter().filter_map(Recipient::principal).collect();
        owners.sort();
        owners.dedup();
        let mut next_pos = self.totals.next_pos;
        let mut copies: Vec<Copy> = owners
            .into_iter()
            .map(|owner| {
                next_pos += 1;
                Copy {
                    owner,
                    pos: next_pos - 1,
                    attempts: 0,
                    state: CopyState::Queued { not_before: None },
                }
            })
            .collect();
        let mut records = Vec::new();
        let mut served = Vec::new();
        for copy in &mut copies {
            // The longest-waiting consumer with something to take: this message, or one
            // ahead of it in the inbox.
            let Some((waiter, pick)) = self.inboxes.get(&copy.owner).and_then(|i| {
                i.waiters.values().find_map(|id| {
                    let w = self.waiters.get(id).filter(|w| w.until > now)?;
                    Some((id, self.pick(&copy.owner, now, &w.kinds, Some(&message))?))
                })
            }) else {
                continue;
            };
            if *pick == message.id {
                let (next, d) = self.deliver(&message, copy, Some(waiter), now);
                *copy = next;
                served.push((waiter.clone(), d));
            } else {
                let Some((p, c)) = self
                    .messages
                    .get(pick)
                    .and_then(|p| Some((p, p.copy_for(&copy.owner)?)))
                else {
                    continue;
                };
                let (next, d) = self.deliver(&p.message, c, Some(waiter), now);
                records.push(OfficeRecord::Copy {
                    message_id: pick.clone(),
                    copy: next,
                });
                served.push((waiter.clone(), d));
            }
            records.push(OfficeRecord::Left {
                waiter: waiter.clone(),
            });
        }
        let mut all = vec![OfficeRecord::Posted(Posted {
            message: message.clone(),
            copies,
        })];
        if message.kind == MessageType::Question {
            all.push(OfficeRecord::Question(Box::new(QuestionState::asked(
                message.clone(),
            ))));
        }
        all.extend(records);
        Post {
            records: all,
            message,
            recipients,
            served,
        }
    }

    /// Looks up a delivery of `owner`'s: the message and its copy.
    fn delivery(&self, owner: &Principal, id: &str) -> Result<(&Posted, &Copy, u32), Rejection> {
        let unknown = || Rejection::UnknownDelivery { id: id.to_owned() };
        let (mid, token, attempt) = parse_delivery(id).ok_or_else(unknown)?;
        if token != owner.token() {
            return Err(Rejection::NotYours {
                actor: owner.to_string(),
                action: "ack",
                reason: format!("delivery {id} went to {token}, not to you"),
            });
        }
        let p = self.messages.get(&mid).ok_or_else(unknown)?;
        let c = p.copy_for(owner).ok_or_else(unknown)?;
        if attempt == 0 || attempt > c.attempts {
            return Err(unknown());
        }
        Ok((p, c, attempt))
    }

    /// Acknowledges a delivery: done, never delivered again. Acknowledging twice, or an
    /// earlier attempt of a redelivered message, is not an error.
    pub fn ack(
        &self,
        owner: &Principal,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<OfficeRecord>, Rejection> {
        let (p, c, _) = self.delivery(owner, id)?;
        if matches!(c.state, CopyState::Acked { .. }) {
            return Ok(None);
        }
        Ok(Some(OfficeRecord::Copy {
            message_id: p.message.id.clone(),
            copy: Copy {
                state: CopyState::Acked { at: now },
                ..c.clone()
            },
        }))
    }

    /// Gives a delivery back: it is delivered again after `delay_ms`.
    pub fn nak(
        &self,
        owner: &Principal,
        id: &str,
        delay_ms: u64,
        now: Timestamp,
    ) -> Result<Option<OfficeRecord>, Rejection> {
        if delay_ms > MAX_NAK_DELAY_MS {
            return Err(Rejection::invalid(
                "delay_ms",
                format!("at most {MAX_NAK_DELAY_MS} ms (an hour)"),
            ));
        }
        let (p, c, attempt) = self.delivery(owner, id)?;
        match c.state {
            CopyState::Acked { .. } => Err(Rejection::invalid(
                "delivery_id",
                format!("delivery {id} was acknowledged; it cannot be given back"),
            )),
            // A stale attempt, or given back already: nothing to do.
            _ if attempt < c.attempts => Ok(None),
            CopyState::Queued { .. } => Ok(None),
            CopyState::InFlight { .. } => Ok(Some(OfficeRecord::Copy {
                message_id: p.message.id.clone(),
                copy: Copy {
                    state: CopyState::Queued {
                        not_before: (delay_ms > 0).then(|| now.plus_millis(delay_ms)),
                    },
                    ..c.clone()
                },
            })),
        }
    }
}
