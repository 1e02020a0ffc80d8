//! Identifiers. Every id Guild hands out is a valid single NATS subject token and a valid
//! JetStream KV key, so it can be placed in subjects (`guild.inbox.<agent>.high`) and keys
//! without escaping, and per-agent credentials can pin identity to it at the broker.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::Rejection;

/// Longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// The subject token that stands for the human operator (CLI user) instead of an agent.
pub const OPERATOR_TOKEN: &str = "operator";

/// The subject token of the read-only observer (a dashboard's viewers, `verify` from
/// outside): it may call the read operations and nothing else.
pub const OBSERVER_TOKEN: &str = "observer";

/// A Guild service, as a principal acting on its own account (a heartbeat window
/// expiring, a mission retried after its agent was lost) and as a name on the wire.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// Agent lifecycle, authority, budgets.
    Spawner,
    /// Messages, decisions, the audit log.
    Bus,
    /// Missions and their dependencies.
    Mission,
}

impl Service {
    /// All three.
    pub const ALL: [Service; 3] = [Service::Spawner, Service::Bus, Service::Mission];

    /// The subject token: `spawner`, `bus`, `mission`.
    pub const fn token(self) -> &'static str {
        match self {
            Service::Spawner => "spawner",
            Service::Bus => "bus",
            Service::Mission => "mission",
        }
    }

    /// The principal token of the service acting on its own account: `service:<name>`.
    /// No agent id can contain `:`, so no agent can pass for a service.
    pub const fn principal_token(self) -> &'static str {
        match self {
            Service::Spawner => "service:spawner",
            Service::Bus => "service:bus",
            Service::Mission => "service:mission",
        }
    }

    /// The NATS micro service name (`$SRV.INFO.<name>`).
    pub const fn micro_name(self) -> &'static str {
        match self {
            Service::Spawner => "guild-spawner",
            Service::Bus => "guild-bus",
            Service::Mission => "guild-mission",
        }
    }

    /// The queue group instances share, so requests are load-balanced across them.
    pub const fn queue_group(self) -> &'static str {
        self.micro_name()
    }

    /// The service named by `token` (`spawner`, `bus`, `mission`).
    pub fn from_token(token: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.token() == token)
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.token())
    }
}

/// Checks that `value` is a usable id: 1 to 64 ASCII letters, digits, `-` or `_`.
///
/// `field` names the input in the rejection, so a caller learns which field was wrong.
pub fn validate_token(field: &str, value: &str) -> Result<(), Rejection> {
    let ok = !value.is_empty()
        && value.len() <= MAX_ID_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Rejection::InvalidId {
            field: field.to_owned(),
            value: truncate(value),
        })
    }
}

fn truncate(value: &str) -> String {
    value.chars().take(80).collect()
}

macro_rules! token_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        // Clones share one string: an id is held by its record, the indexes and every
        // record that refers to it, and at 100,000 missions the copies add up.
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
        #[cfg_attr(feature = "schema", schemars(transparent))]
        pub struct $name(
            #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^[A-Za-z0-9_-]{1,64}$"), with = "String"))]
            Arc<str>,
        );

        impl $name {
            /// Validates and wraps an id.
            pub fn new(value: impl Into<String>) -> Result<Self, Rejection> {
                let value = value.into();
                validate_token($field, &value)?;
                Self::check_reserved(&value)?;
                Ok(Self(value.into()))
            }

            /// The id as a string (also its subject token and KV key part).
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::new(raw).map_err(serde::de::Error::custom)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = Rejection;
            fn try_from(value: &str) -> Result<Self, Rejection> {
                Self::new(value)
            }
        }
    };
}

token_id!(
    /// An agent's id, for example `dev-lead-1`.
    AgentId, "agent_id"
);
token_id!(
    /// A mission's id, for example `M-006-phase-2`.
    MissionId, "mission_id"
);
token_id!(
    /// A bus message's id; also its JetStream de-duplication id.
    MessageId, "message_id"
);

token_id!(
    /// A token reservation's id, chosen by the caller so a retried reserve is recognised.
    ReservationId, "reservation_id"
);

impl ReservationId {
    fn check_reserved(_: &str) -> Result<(), Rejection> {
        Ok(())
    }
}

impl AgentId {
    fn check_reserved(value: &str) -> Result<(), Rejection> {
        if value == OPERATOR_TOKEN || value == OBSERVER_TOKEN {
            return Err(Rejection::ReservedId {
                value: value.to_owned(),
            });
        }
        Ok(())
    }
}

impl MissionId {
    fn check_reserved(_: &str) -> Result<(), Rejection> {
        Ok(())
    }
}

impl MessageId {
    fn check_reserved(_: &str) -> Result<(), Rejection> {
        Ok(())
    }
}

/// Who performs an operation: an agent, the operator, the read-only observer, or a
/// service acting on its own account. The broker pins each to its credentials: an agent
/// can only call as itself, and only services can call as `service:<name>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Principal {
    /// The human operator (the CLI and the people behind it).
    Operator,
    /// Reads everything, changes nothing.
    Observer,
    /// A Guild service acting on its own account, recorded as `service:<name>`.
    Service(Service),
    /// An agent.
    Agent(AgentId),
}

impl Principal {
    /// Parses a subject token: `operator`, `observer`, `service:<name>` or an agent id.
    pub fn from_token(token: &str) -> Result<Self, Rejection> {
        if token == OPERATOR_TOKEN {
            Ok(Self::Operator)
        } else if token == OBSERVER_TOKEN {
            Ok(Self::Observer)
        } else if let Some(service) = Service::ALL
            .into_iter()
            .find(|s| s.principal_token() == token)
        {
            Ok(Self::Service(service))
        } else {
            AgentId::new(token).map(Self::Agent)
        }
    }

    /// The subject token for this principal.
    pub fn token(&self) -> &str {
        match self {
            Self::Operator => OPERATOR_TOKEN,
            Self::Observer => OBSERVER_TOKEN,
            Self::Service(s) => s.principal_token(),
            Self::Agent(id) => id.as_str(),
        }
    }

    /// The agent id, when the principal is an agent.
    pub fn agent(&self) -> Option<&AgentId> {
        match self {
            Self::Agent(id) => Some(id),
            _ => None,
        }
    }

    /// Whether this principal stands above every agent: the operator, or a service acting
    /// on its own account (which does what the rules make it do, for everyone).
    pub fn is_privileged(&self) -> bool {
        matches!(self, Self::Operator | Self::Service(_))
    }

    /// Whether this principal may call an operation: the observer only reads.
    pub fn may_call(&self, operation: &str, read_only: bool) -> Result<(), Rejection> {
        if read_only || !matches!(self, Self::Observer) {
            return Ok(());
        }
        Err(Rejection::ObserverReadOnly {
            operation: operation.to_owned(),
        })
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.token())
    }
}

impl Serialize for Principal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.token())
    }
}

impl<'de> Deserialize<'de> for Principal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::from_token(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for Principal {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Principal".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An agent id, \"operator\" for the human operator, \"observer\" for the read-only observer, or \"service:<name>\" for a service acting on its own account.",
            "type": "string",
            "pattern": "^([A-Za-z0-9_-]{1,64}|service:(spawner|bus|mission))$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_seed_style_ids() {
        for id in [
            "dev-lead-1",
            "orchestrator-1",
            "qa_engineer_2",
            "M-006-phase-2",
            "a",
        ] {
            assert!(validate_token("id", id).is_ok(), "{id}");
        }
    }

    #[test]
    fn rejects_ids_that_are_not_one_subject_token() {
        let long = "x".repeat(MAX_ID_LEN + 1);
        for id in [
            "",
            "a.b",
            "a*",
            ">",
            "a b",
            "tab\t",
            "é",
            long.as_str(),
            "a/b",
        ] {
            let err = validate_token("agent_id", id).unwrap_err();
            assert_eq!(err.rule(), "invalid_id", "{id:?}");
            assert_eq!(err.field(), Some("agent_id"));
        }
    }

    #[test]
    fn operator_is_reserved_for_the_human() {
        assert_eq!(AgentId::new("operator").unwrap_err().rule(), "reserved_id");
        assert_eq!(AgentId::new("observer").unwrap_err().rule(), "reserved_id");
        assert_eq!(
            Principal::from_token("operator").unwrap(),
            Principal::Operator
        );
        let agent = Principal::from_token("dev-1").unwrap();
        assert_eq!(agent.agent().map(AgentId::as_str), Some("dev-1"));
    }

    #[test]
    fn services_have_principal_tokens_no_agent_can_have() {
        for s in Service::ALL {
            let p = Principal::from_token(s.principal_token()).unwrap();
            assert_eq!(p, Principal::Service(s));
            assert_eq!(p.token(), s.principal_token());
            assert!(AgentId::new(s.principal_token()).is_err());
            assert!(p.is_privileged());
        }
        assert_eq!(
            Principal::from_token("observer").unwrap(),
            Principal::Observer
        );
        assert!(!Principal::Observer.is_privileged());
        assert!(Principal::from_token("service:nope").is_err());
    }

    #[test]
    fn the_observer_only_reads() {
        assert!(Principal::Observer.may_call("get", true).is_ok());
        let e = Principal::Observer.may_call("spawn", false).unwrap_err();
        assert_eq!(e.rule(), "observer_read_only");
        assert!(Principal::Operator.may_call("spawn", false).is_ok());
    }

    #[test]
    fn an_overlong_id_is_quoted_shortened_in_the_error() {
        let long = "y".repeat(500);
        let Rejection::InvalidId { value, .. } = validate_token("agent_id", &long).unwrap_err()
        else {
            panic!("wrong rejection")
        };
        assert_eq!(value, "y".repeat(80));
    }

    #[test]
    fn deserializing_validates() {
        assert!(serde_json::from_str::<AgentId>("\"ok-1\"").is_ok());
        assert!(serde_json::from_str::<AgentId>("\"not.ok\"").is_err());
        assert!(serde_json::from_str::<Principal>("\"operator\"").is_ok());
    }
}
