//! Roles and capabilities: what kind of agent this is and what it can do.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Rejection;

/// The seed's nine roles. `Specialist` carries its specialty (`specialist:market-analyst`).
/// On the wire a role is a lowercase string; input also accepts the seed's upper case.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Master coordinator.
    Orchestrator,
    /// Business strategist.
    Business,
    /// Solution architect.
    Architect,
    /// Development lead or developer.
    Developer,
    /// QA engineer.
    Qa,
    /// DevOps engineer.
    Devops,
    /// Security auditor.
    Security,
    /// Generic support.
    Support,
    /// A dynamic role spawned as needed, named by its specialty.
    Specialist(String),
}

const FIXED: [(&str, Role); 8] = [
    ("orchestrator", Role::Orchestrator),
    ("business", Role::Business),
    ("architect", Role::Architect),
    ("developer", Role::Developer),
    ("qa", Role::Qa),
    ("devops", Role::Devops),
    ("security", Role::Security),
    ("support", Role::Support),
];

impl Role {
    /// Parses `developer`, `DEVELOPER` or `specialist:market-analyst`.
    pub fn parse(text: &str) -> Result<Self, Rejection> {
        let text = text.trim();
        let lower = text.to_ascii_lowercase();
        if let Some((_, role)) = FIXED.iter().find(|(name, _)| *name == lower) {
            return Ok(role.clone());
        }
        if let Some(specialty) = lower.strip_prefix("specialist:") {
            validate_name("role", specialty)?;
            return Ok(Self::Specialist(specialty.to_owned()));
        }
        Err(Rejection::invalid(
            "role",
            format!(
                "{text:?} is not a role (orchestrator, business, architect, developer, qa, \
                 devops, security, support, or specialist:<specialty>)"
            ),
        ))
    }

    /// The role's family name without the specialty (`specialist` for any specialist).
    pub fn family(&self) -> &str {
        match self {
            Self::Specialist(_) => "specialist",
            fixed => FIXED
                .iter()
                .find(|(_, r)| r == fixed)
                .map_or("specialist", |(n, _)| n),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Specialist(s) => write!(f, "specialist:{s}"),
            fixed => f.write_str(fixed.family()),
        }
    }
}

impl Serialize for Role {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Role::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for Role {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Role".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "orchestrator, business, architect, developer, qa, devops, security, support, or specialist:<specialty> (lowercase; input also accepts upper case).",
            "type": "string",
            "pattern": "^(orchestrator|business|architect|developer|qa|devops|security|support|specialist:[a-z0-9_.-]{1,64})$"
        })
    }
}

/// Validates a lowercase name: capability names, specialties, tool action names.
pub(crate) fn validate_name(field: &str, name: &str) -> Result<(), Rejection> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        });
    if ok {
        Ok(())
    } else {
        Err(Rejection::invalid(
            field,
            format!("{name:?} must be 1-64 of a-z 0-9 - _ . (lowercase)"),
        ))
    }
}

/// Something an agent can do, with optional parameters: `{"name": "python",
/// "params": {"version": "3.11"}}`. `find_available_agents` matches on names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Capability {
    /// Lowercase name (a-z 0-9 - _ .).
    pub name: String,
    /// Free-form parameters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, serde_json::Value>,
}

impl Capability {
    /// A capability with no parameters.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            params: BTreeMap::new(),
        }
    }

    /// Checks the name.
    pub fn validate(&self) -> Result<(), Rejection> {
        validate_name("capabilities", &self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_nine_roles() {
        for name in [
            "ORCHESTRATOR",
            "business",
            "Architect",
            "developer",
            "qa",
            "devops",
            "security",
            "support",
        ] {
            let role = Role::parse(name).unwrap();
            assert_eq!(role.to_string(), name.to_ascii_lowercase());
        }
        let s = Role::parse("SPECIALIST:market-analyst").unwrap();
        assert_eq!(s, Role::Specialist("market-analyst".into()));
        assert_eq!(s.family(), "specialist");
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            "\"specialist:market-analyst\""
        );
    }

    #[test]
    fn rejects_unknown_roles_naming_the_field() {
        for bad in ["wizard", "specialist:", "specialist:Bad Name", ""] {
            let err = Role::parse(bad).unwrap_err();
            assert_eq!(err.field(), Some("role"), "{bad:?}");
        }
    }

    #[test]
    fn capability_names_are_checked() {
        assert!(Capability::named("python").validate().is_ok());
        assert!(Capability::named("Python 3").validate().is_err());
        let c: Capability =
            serde_json::from_str(r#"{"name":"python","params":{"version":"3.11"}}"#).unwrap();
        assert_eq!(c.params["version"], "3.11");
        assert!(serde_json::from_str::<Capability>(r#"{"name":"x","extra":1}"#).is_err());
    }
}
