//! Guild's durable building blocks on JetStream, shared by the three services.
//!
//! * [`Bucket`]: a KV bucket with conditional writes, one key or several at once
//!   (JetStream atomic batches with a per-key expected revision). This is how an operation
//!   touching several keys stays atomic however many service instances run.
//! * [`View`]: an in-memory state folded from a bucket's change feed, with a read fence
//!   ([`View::sync`]) and read-your-writes for the instance's own commits.
//! * [`Outbox`]: events and audit entries written atomically with the state change that
//!   caused them, then published; a sweeper publishes what a crashed writer left.
//! * [`AuditLog`]: the one append function for the hash-chained audit stream, safe with
//!   any number of writers.
//! * [`provision`]: creates the streams and buckets, whichever service starts first.
//!
//! A service's write path is always the same: read its [`View`], let the domain decide,
//! [`Bucket::commit`] the records with the revisions it read plus an outbox entry, apply
//! them to the view, flush the outbox. On [`Error::Conflict`] it syncs the view and
//! decides again.

mod audit;
mod bucket;
mod error;
mod outbox;
pub mod provision;
mod view;

pub use audit::AuditLog;
pub use bucket::{Bucket, Entry, Expect, Write};
pub use error::Error;
pub use outbox::{Outbox, OutboxEntry, OutboxMessage};
pub use provision::Durability;
pub use view::{Change, Revisions, View};
