//! Where Guild keeps things in JetStream: stream names and the settings the contract
//! fixes. The services create what they need at start-up, whichever starts first.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The audit log: file storage, limits retention, discard new, deletes and purges denied,
/// de-duplication by record id (nats.md §8).
pub const AUDIT_STREAM: &str = "GUILD_AUDIT";
/// How long JetStream remembers a record id to drop a retried append: longer than any
/// writer's retry horizon.
pub const AUDIT_DUPLICATE_WINDOW: Duration = Duration::from_secs(600);

/// Events of all services (`guild.evt.>`), kept for reactors that were down.
pub const EVENTS_STREAM: &str = "GUILD_EVENTS";
/// How long events are kept.
pub const EVENTS_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// The services' audit signing keys, one key per `<service>.<public key>`: the key
/// history verification reads.
pub const AUDIT_KEYS_BUCKET: &str = "guild_audit_keys";

/// The inbox log (`guild.inbox.<owner>.<priority>`): every message as it entered each
/// inbox, the priority in the subject. The bus's queues live in its journal; this log is
/// what NATS-native readers subscribe to, and where archived messages stay readable.
pub const INBOX_STREAM: &str = "GUILD_INBOX";
/// How long the inbox log keeps a message unless configured otherwise.
pub const INBOX_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

/// A service's journal: one message per committed change (`GUILD_JOURNAL_<NAME>`, subject
/// `guild.journal.<name>`). The spawner's holds agents, the pool and mission ledgers.
pub fn journal_stream(name: &str) -> String {
    format!("GUILD_JOURNAL_{}", name.to_ascii_uppercase())
}

/// The subject of a service's journal.
pub fn journal_subject(name: &str) -> String {
    format!("guild.journal.{name}")
}

/// The KV bucket beside a journal: writer cursors and the snapshot pointer.
pub fn journal_bucket(name: &str) -> String {
    format!("guild_{name}_journal")
}

/// The object store holding a journal's snapshots.
pub fn snapshot_bucket(name: &str) -> String {
    format!("guild_{name}_snapshots")
}

/// The journal of a service: its name (`spawner`, `bus`, `mission`).
pub const fn journal_of(service: crate::subject::Service) -> &'static str {
    service.token()
}

/// Something missing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum Lost {
    /// Journal entries `from..=to` are gone and no snapshot covers them.
    Journal {
        /// The journal (`spawner`, `bus`, `mission`).
        journal: String,
        /// The first missing sequence.
        from: u64,
        /// The last missing sequence.
        to: u64,
    },
    /// Audit records `from..=to` are gone (the stream was deleted, or is shorter than
    /// what this service saw appended).
    Audit {
        /// The first missing sequence.
        from: u64,
        /// The last missing sequence.
        to: u64,
    },
}

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lost::Journal { journal, from, to } => {
                write!(f, "journal {journal} entries {from}-{to}")
            }
            Lost::Audit { from, to } => write!(f, "audit records {from}-{to}"),
        }
    }
}
