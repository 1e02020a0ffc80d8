//! Guild's wire contract: what crosses NATS, and nothing else.
//!
//! * [`subject`]: the subject builders, the only place a subject string is formatted.
//! * [`access`]: who may use which subject: the permission table the broker enforces.
//! * [`header`]: header names.
//! * [`api`]: request and reply types of every operation, tied together by [`api::Operation`].
//! * [`error`]: the error envelope, its small code set, and the one mapping from the
//!   domain's refusals.
//! * [`payload`]: the payload limit.
//! * [`audit`]: the audit record, its hash chain and its verifier.
//! * [`store`]: stream, bucket and key names.
//! * [`catalogue`]: the subject catalogue that `proto-schemas/README.md` is generated from.
//! * [`schemas`]: every wire type's JSON Schema, generated into `proto-schemas/`.
//!
//! ```
//! use guild_wire::api::{Operation, spawner::op::Spawn};
//! use guild_wire::subject;
//! use guild_domain::Principal;
//!
//! let by = Principal::Operator;
//! assert_eq!(subject::request(Spawn::SERVICE, Spawn::NAME, &by), "guild.spawner.v1.spawn.operator");
//! ```

#![deny(missing_docs)]

pub mod access;
pub mod api;
pub mod audit;
pub mod body;
pub mod catalogue;
pub mod error;
pub mod header;
pub mod payload;
pub mod schemas;
pub mod store;
pub mod subject;

pub use error::{ErrorBody, ErrorCode, ErrorReply};

/// The domain's types that appear on the wire, re-exported so clients need only this crate.
pub use guild_domain as domain;

/// The revision of the payload schemas (`Guild-Schema` header); they only grow within
/// `v1` of the subjects (proto-schemas/README.md, "Versions").
pub const SCHEMA_VERSION: u32 = 2;
