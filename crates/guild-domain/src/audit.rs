//! The audit log as the domain decides it: which facts are kept for good, of what kind,
//! about whom, with what data. A decision returns an [`Effect::Audit`](crate::Effect::Audit)
//! for each; the service appends it to the hash chain (`guild-wire` holds the record's
//! format and the chain, `guild-store` the append).

use serde::{Deserialize, Serialize};

use crate::id::{MissionId, Principal, Service};
use crate::message::DecisionRecord;

/// What a record is about.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// A decision on a question.
    Decision,
    /// The same approver's second call completed a decision (rationale, impact).
    DecisionCompleted,
    /// A decision replaced by someone who may override.
    DecisionOverride,
    /// An undecided question escalated.
    Escalation,
    /// A conflict escalated instead of the last writer winning.
    Conflict,
    /// An agent spawned.
    Spawn,
    /// An agent terminated (including heartbeat expiry).
    Terminate,
    /// An action refused by the authority matrix.
    Denial,
    /// Budget moved between agents.
    Reallocation,
    /// A mission created, completed, failed, cancelled, or a phase completed.
    Mission,
    /// An agent given new credentials (its old ones revoked).
    Credentials,
    /// A scaling policy set or dropped, or a change it made (with the load it saw), or a
    /// scale-up a rule held short.
    Scaling,
    /// The operator accepted lost state (journal entries or audit records gone).
    Recovery,
}

impl AuditKind {
    /// The subject token.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditKind::Decision => "decision",
            AuditKind::DecisionCompleted => "decision_completed",
            AuditKind::DecisionOverride => "decision_override",
            AuditKind::Escalation => "escalation",
            AuditKind::Conflict => "conflict",
            AuditKind::Spawn => "spawn",
            AuditKind::Terminate => "terminate",
            AuditKind::Denial => "denial",
            AuditKind::Reallocation => "reallocation",
            AuditKind::Mission => "mission",
            AuditKind::Credentials => "credentials",
            AuditKind::Scaling => "scaling",
            AuditKind::Recovery => "recovery",
        }
    }

    /// Every kind.
    pub const ALL: [AuditKind; 13] = [
        AuditKind::Decision,
        AuditKind::DecisionCompleted,
        AuditKind::DecisionOverride,
        AuditKind::Escalation,
        AuditKind::Conflict,
        AuditKind::Spawn,
        AuditKind::Terminate,
        AuditKind::Denial,
        AuditKind::Reallocation,
        AuditKind::Mission,
        AuditKind::Credentials,
        AuditKind::Scaling,
        AuditKind::Recovery,
    ];

    /// The services allowed to append records of this kind: the broker refuses the others
    /// (`access`), and verification reports a record signed by anyone else.
    pub const fn appended_by(self) -> &'static [Service] {
        match self {
            AuditKind::Decision
            | AuditKind::DecisionCompleted
            | AuditKind::DecisionOverride
            | AuditKind::Escalation
            | AuditKind::Conflict => &[Service::Bus],
            AuditKind::Spawn
            | AuditKind::Terminate
            | AuditKind::Reallocation
            | AuditKind::Credentials
            | AuditKind::Scaling => &[Service::Spawner],
            AuditKind::Mission => &[Service::Mission],
            AuditKind::Denial | AuditKind::Recovery => {
                &[Service::Spawner, Service::Bus, Service::Mission]
            }
        }
    }

    /// Whether the record carries a [`DecisionRecord`].
    pub const fn is_decision(self) -> bool {
        matches!(
            self,
            AuditKind::Decision | AuditKind::DecisionCompleted | AuditKind::DecisionOverride
        )
    }
}

/// An audit record a decision asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct Audit {
    /// What it is about.
    pub kind: AuditKind,
    /// Who acted.
    pub actor: Principal,
    /// The agent, mission or question concerned (a subject token).
    pub about: String,
    /// The mission concerned, when there is one.
    pub mission_id: Option<MissionId>,
    /// What the record carries.
    pub data: AuditData,
}

/// What an audit record carries, kept typed until the service writes it: it serializes as
/// the value it holds, nothing around it (the record's bytes, and so the hash chain, are
/// those of the value).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AuditData {
    /// A spawner governance event.
    Spawner(crate::agent::Event),
    /// A mission outcome.
    Mission(crate::mission::Event),
    /// A decision on a question.
    Decision(DecisionRecord),
    /// The facts of an escalation or a conflict, as the bus records them.
    Facts(serde_json::Value),
}

/// An event that may be a governance fact: its audit record, `by` having caused it.
pub trait Audited {
    /// The audit record the event makes, if the audit log keeps it.
    fn audit_by(&self, by: &Principal) -> Option<Audit>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_spelled_as_their_subject_tokens() {
        for k in AuditKind::ALL {
            let json = serde_json::to_value(k).unwrap();
            assert_eq!(json, serde_json::Value::String(k.as_str().into()));
        }
        let mut tokens: Vec<&str> = AuditKind::ALL.iter().map(|k| k.as_str()).collect();
        tokens.sort_unstable();
        tokens.dedup();
        assert_eq!(
            tokens.len(),
            AuditKind::ALL.len(),
            "every kind has its own token"
        );
    }

    #[test]
    fn data_serializes_as_the_value_it_holds() {
        let facts = serde_json::json!({"question": "q-1", "level": 2});
        assert_eq!(
            serde_json::to_value(AuditData::Facts(facts.clone())).unwrap(),
            facts
        );
        let event = crate::mission::Event::PhaseCompleted {
            phase: crate::Phase::DEVELOPMENT,
            missions: 3,
            at: crate::Timestamp::from_millis(5),
        };
        assert_eq!(
            serde_json::to_value(AuditData::Mission(event.clone())).unwrap(),
            serde_json::to_value(event).unwrap()
        );
    }
}
