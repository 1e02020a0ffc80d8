//! Where Guild keeps things in JetStream: stream and bucket names, KV keys, and the
//! settings the contract fixes. The services create what they need at start-up, whichever
//! starts first.

use std::time::Duration;

use guild_domain::agent::Record;
use guild_domain::{AgentId, MessageId, MissionId};

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

/// Agents' inboxes (`guild.inbox.>`).
pub const INBOX_STREAM: &str = "GUILD_INBOX";
/// Messages moved out of inboxes by the retention window (the seed's "old messages archived").
pub const ARCHIVE_STREAM: &str = "GUILD_ARCHIVE";

/// spawner-svc's state: agents, the pool, mission ledgers.
pub const SPAWNER_BUCKET: &str = "guild_spawner";
/// mission-svc's state: missions and the graph clock.
pub const MISSION_BUCKET: &str = "guild_missions";
/// bus-svc's state: questions, message index, counters.
pub const BUS_BUCKET: &str = "guild_bus";

/// `agent.<id>`.
pub fn agent_key(id: &AgentId) -> String {
    format!("agent.{id}")
}
/// The global pool.
pub const POOL_KEY: &str = "pool";
/// The parallelization-efficiency integral.
pub const EFFICIENCY_KEY: &str = "efficiency";
/// `ledger.<mission>`.
pub fn ledger_key(id: &MissionId) -> String {
    format!("ledger.{id}")
}

/// The key a spawner record is stored under.
pub fn spawner_key(record: &Record) -> String {
    match record {
        Record::Agent(a) => agent_key(&a.id),
        Record::Pool(_) => POOL_KEY.into(),
        Record::Ledger(l) => ledger_key(&l.mission_id),
        Record::Efficiency(_) => EFFICIENCY_KEY.into(),
    }
}

/// `mission.<id>`.
pub fn mission_key(id: &MissionId) -> String {
    format!("mission.{id}")
}
/// Written by every dependency change, so two changes that together would close a cycle
/// cannot both commit.
pub const GRAPH_KEY: &str = "graph";

/// `question.<id>`.
pub fn question_key(id: &MessageId) -> String {
    format!("question.{id}")
}
/// `msg.<id>`: who sent a message and what it was, for replies.
pub fn message_key(id: &MessageId) -> String {
    format!("msg.{id}")
}

/// `outbox.<id>`: events and audit entries written atomically with a state change and
/// published after it (see ARCHITECTURE.md, "Nothing lost").
pub fn outbox_key(id: &str) -> String {
    format!("outbox.{id}")
}
/// The prefix of outbox keys.
pub const OUTBOX_PREFIX: &str = "outbox.";
