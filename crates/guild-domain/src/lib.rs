//! Guild's rules, pure.
//!
//! Everything the seed (`agent-collaboration-layer.md`) says an agent spawner, a
//! consultation bus and a mission manager must do, as data and functions: no IO, no clock,
//! no randomness. Time and ids come in as arguments, so every rule can be tested by
//! calling it.
//!
//! * [`agent`]: roles, statuses, the authority matrix, spawn admission, token budgets,
//!   liveness. [`agent::Registry`] holds the state.
//! * [`message`]: message types and priorities, routing, delivery order, decisions.
//! * [`mission`]: the mission lifecycle, the dependency graph, parallel groups, retries,
//!   quality gates. [`mission::Board`] holds the state.
//! * [`allocation`]: the rule between the two for an agent's allocation to a mission.
//!
//! Each state holder answers a command in two steps, "decide, then do": `decide(&self,
//! by, command, now)` returns the [`Effect`]s (records to save, events to publish) or a
//! [`Rejection`]; the service saves the records atomically and then `apply`s them. A
//! refused command changes nothing.
//!
//! ```
//! use guild_domain::agent::{Command, Limits, Mode, Registry, Role, SpawnRequest};
//! use guild_domain::{AgentId, Effect, Principal, Timestamp};
//!
//! let now = Timestamp::from_millis(1_000);
//! let mut registry = Registry::new(Mode::Safe.limits(), now);
//! let spawn = Command::Spawn(SpawnRequest {
//!     id: AgentId::new("orchestrator-1")?,
//!     role: Role::Orchestrator,
//!     capabilities: vec![],
//!     parent_id: None,
//!     token_budget: 50_000,
//!     authority: None,
//!     public_key: None,
//! });
//! let effects = registry.decide(&Principal::Operator, &spawn, now)?;
//! for effect in effects {
//!     if let Effect::Save(record) = effect {
//!         registry.apply(record);
//!     }
//! }
//! assert_eq!(registry.pool().free, 150_000);
//! # Ok::<(), guild_domain::Rejection>(())
//! ```

#![deny(missing_docs)]

pub mod agent;
pub mod allocation;
pub mod audit;
mod error;
mod id;
pub mod message;
pub mod mission;
mod phase;
mod set;
mod time;

pub use error::{FollowedRule, Rejection, RejectionKind};
pub use id::{
    AgentId, MAX_ID_LEN, MessageId, MissionId, OBSERVER_TOKEN, OPERATOR_TOKEN, Principal,
    ReservationId, Service, validate_token,
};
pub use phase::{Phase, PhaseNames, PhaseScope};
pub use set::SmallSet;
pub use time::Timestamp;

/// What a decision asks its service to do: save a record (all of one decision's records
/// atomically), publish an event once they are saved, or keep a fact in the audit log.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect<R, E> {
    /// Save this record.
    Save(R),
    /// Publish this event.
    Emit(E),
    /// Append this record to the audit log (with the saved records, in the same entry).
    Audit(Box<audit::Audit>),
}

impl<R, E: audit::Audited> Effect<R, E> {
    /// Events `by` caused, as effects: each published, a governance one audited as well.
    pub fn announced(by: &Principal, events: impl IntoIterator<Item = E>) -> Vec<Self> {
        let mut out = Vec::new();
        for e in events {
            let audit = e.audit_by(by);
            out.push(Effect::Emit(e));
            out.extend(audit.map(|a| Effect::Audit(Box::new(a))));
        }
        out
    }
}
