//! Guild's durable building blocks on JetStream, shared by the three services.
//!
//! * [`Journal`]: a service's state as a replicated journal: every committed change is
//!   one conditional append (`Nats-Expected-Last-Sequence`), so a change touching many
//!   records is atomic and instances never lose each other's updates; every instance
//!   folds the journal into its in-memory state.
//! * [`Publisher`]: publishes a change's events and audit entries, idempotently; the
//!   journal makes sure a crashed writer's are published by someone.
//! * [`AuditLog`]: the one append function for the hash-chained audit stream, safe with
//!   any number of writers.
//! * [`Bucket`]: a KV bucket with conditional writes, one key or several at once
//!   (JetStream atomic batches), for small metadata.
//! * [`provision`]: creates the streams and buckets, whichever service starts first.
//! * [`Health`]: what a store found missing ([`Lost`]), and the rule for it.
//!
//! A service's write path: plan from its [`Journal`]'s state (the domain decides),
//! [`Journal::append`] the saved records on top of the sequence the plan read, publish.
//! On [`Error::Conflict`] it syncs and decides again.

mod audit;
mod bucket;
mod error;
mod health;
pub mod journal;
pub mod provision;
mod publisher;

pub use audit::{AuditLog, KEYS_BUCKET, Signer, StoredRecord};
pub use bucket::{Bucket, Entry, Expect, Write};
pub use error::Error;
pub use health::{Health, Lost};
pub use journal::{Journal, Record, Spec};
pub use provision::Durability;
pub use publisher::{OutboxMessage, Publisher};
