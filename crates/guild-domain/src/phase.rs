//! Project phases, numbered as in the seed: its workflow starts with phase −1 (research)
//! and phase 0 (planning), its developer is scoped to phases "4" and "5", and development
//! missions are phase 5. On the wire a phase is its number as a string (`"-1"`, `"5"`), the
//! form the seed uses in `scoped_to_phases`; names are for people and are configurable.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Rejection;

/// A phase number, −1 to 7.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Phase(i8);

impl Phase {
    /// −1: market and technical research.
    pub const RESEARCH: Phase = Phase(-1);
    /// 0: planning.
    pub const PLANNING: Phase = Phase(0);
    /// 1: requirements.
    pub const REQUIREMENTS: Phase = Phase(1);
    /// 2: architecture.
    pub const ARCHITECTURE: Phase = Phase(2);
    /// 3: design.
    pub const DESIGN: Phase = Phase(3);
    /// 4: foundation.
    pub const FOUNDATION: Phase = Phase(4);
    /// 5: development.
    pub const DEVELOPMENT: Phase = Phase(5);
    /// 6: testing.
    pub const TESTING: Phase = Phase(6);
    /// 7: deployment.
    pub const DEPLOYMENT: Phase = Phase(7);

    /// The lowest phase number.
    pub const MIN: i8 = -1;
    /// The highest phase number.
    pub const MAX: i8 = 7;

    /// Every phase, in order.
    pub fn all() -> impl Iterator<Item = Phase> {
        (Self::MIN..=Self::MAX).map(Phase)
    }

    /// A phase from its number.
    pub fn new(number: i8) -> Result<Self, Rejection> {
        if (Self::MIN..=Self::MAX).contains(&number) {
            Ok(Self(number))
        } else {
            Err(Rejection::invalid(
                "phase",
                format!("{number} is not a phase (-1 to 7)"),
            ))
        }
    }

    /// The phase number.
    pub const fn number(self) -> i8 {
        self.0
    }

    /// The default name (`research`, `planning`, ..., `deployment`).
    pub const fn default_name(self) -> &'static str {
        match self.0 {
            -1 => "research",
            0 => "planning",
            1 => "requirements",
            2 => "architecture",
            3 => "design",
            4 => "foundation",
            5 => "development",
            6 => "testing",
            _ => "deployment",
        }
    }

    /// Parses `"5"`, `"-1"` or a default name in any case (`"DEVELOPMENT"`).
    pub fn parse(text: &str) -> Result<Self, Rejection> {
        let text = text.trim();
        if let Ok(n) = text.parse::<i8>() {
            return Self::new(n);
        }
        Self::all()
            .find(|p| p.default_name().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                Rejection::invalid(
                    "phase",
                    format!("{text:?} is not a phase number (-1 to 7) or name"),
                )
            })
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Phase {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Phase {
    /// Accepts `"5"`, `5` or `"development"`.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(i64),
            Text(String),
        }
        let phase = match Raw::deserialize(d)? {
            Raw::Number(n) => i8::try_from(n)
                .map_err(|_| Rejection::invalid("phase", format!("{n} is not a phase")))
                .and_then(Phase::new),
            Raw::Text(t) => Phase::parse(&t),
        };
        phase.map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for Phase {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Phase".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A phase number from -1 to 7 as a string (\"-1\" research, \"0\" planning, \"1\" requirements, \"2\" architecture, \"3\" design, \"4\" foundation, \"5\" development, \"6\" testing, \"7\" deployment). Input also accepts the number or the name.",
            "type": ["string", "integer"]
        })
    }
}

/// Display names for phases; the defaults can be replaced per deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhaseNames(BTreeMap<Phase, String>);

impl Default for PhaseNames {
    fn default() -> Self {
        Self(
            Phase::all()
                .map(|p| (p, p.default_name().to_owned()))
                .collect(),
        )
    }
}

impl PhaseNames {
    /// Overrides names from `number=name` pairs, as a command line or environment gives them
    /// (`"5=build,6=verify"`).
    pub fn with_overrides(spec: &str) -> Result<Self, Rejection> {
        let mut names = Self::default();
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (num, name) = pair.split_once('=').ok_or_else(|| {
                Rejection::invalid("phase_names", format!("{pair:?} is not number=name"))
            })?;
            let phase = Phase::parse(num)?;
            let name = name.trim();
            if name.is_empty() {
                return Err(Rejection::invalid(
                    "phase_names",
                    format!("phase {phase} has no name"),
                ));
            }
            names.0.insert(phase, name.to_owned());
        }
        Ok(names)
    }

    /// The name of a phase.
    pub fn name(&self, phase: Phase) -> &str {
        self.0
            .get(&phase)
            .map_or(phase.default_name(), String::as_str)
    }
}

/// The phases an agent may work in: all of them, or a listed set. On the wire it is the
/// seed's list of phase strings (`["4", "5"]`); `["*"]` means every phase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PhaseScope {
    /// Every phase.
    All,
    /// Only these phases.
    Only(BTreeSet<Phase>),
}

impl PhaseScope {
    /// Whether `phase` is inside the scope.
    pub fn contains(&self, phase: Phase) -> bool {
        match self {
            Self::All => true,
            Self::Only(set) => set.contains(&phase),
        }
    }

    /// Whether every phase of `self` is also in `outer`.
    pub fn is_within(&self, outer: &PhaseScope) -> bool {
        match (self, outer) {
            (_, Self::All) => true,
            (Self::All, Self::Only(_)) => false,
            (Self::Only(inner), Self::Only(outer)) => inner.is_subset(outer),
        }
    }
}

impl Serialize for PhaseScope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::All => ["*"].serialize(s),
            Self::Only(set) => set.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for PhaseScope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Vec::<serde_json::Value>::deserialize(d)?;
        if raw.iter().any(|v| v.as_str() == Some("*")) {
            return Ok(Self::All);
        }
        let set = raw
            .into_iter()
            .map(|v| Phase::deserialize(v).map_err(serde::de::Error::custom))
            .collect::<Result<BTreeSet<_>, D::Error>>()?;
        Ok(Self::Only(set))
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for PhaseScope {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PhaseScope".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Phases an agent may work in, as phase strings (\"4\", \"5\"); [\"*\"] means every phase.",
            "type": "array",
            "items": { "type": ["string", "integer"] }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_and_names() {
        assert_eq!(Phase::parse("-1").unwrap(), Phase::RESEARCH);
        assert_eq!(Phase::parse("DEVELOPMENT").unwrap(), Phase::DEVELOPMENT);
        assert_eq!(Phase::parse(" 5 ").unwrap(), Phase::DEVELOPMENT);
        assert_eq!(Phase::parse("8").unwrap_err().field(), Some("phase"));
        assert!(Phase::parse("-2").is_err());
        assert!(Phase::parse("lunch").is_err());
    }

    #[test]
    fn serializes_as_the_seeds_strings() {
        assert_eq!(serde_json::to_string(&Phase::RESEARCH).unwrap(), "\"-1\"");
        let scope: PhaseScope = serde_json::from_str(r#"["4", "5"]"#).unwrap();
        assert!(scope.contains(Phase::FOUNDATION) && !scope.contains(Phase::TESTING));
        assert_eq!(serde_json::to_string(&scope).unwrap(), r#"["4","5"]"#);
        let all: PhaseScope = serde_json::from_str(r#"["*"]"#).unwrap();
        assert_eq!(all, PhaseScope::All);
        assert!(serde_json::from_str::<PhaseScope>(r#"["9"]"#).is_err());
        assert_eq!(
            serde_json::from_str::<Phase>("5").unwrap(),
            Phase::DEVELOPMENT
        );
    }

    #[test]
    fn scope_containment() {
        let four_five = PhaseScope::Only([Phase::FOUNDATION, Phase::DEVELOPMENT].into());
        let five = PhaseScope::Only([Phase::DEVELOPMENT].into());
        assert!(five.is_within(&four_five));
        assert!(!four_five.is_within(&five));
        assert!(four_five.is_within(&PhaseScope::All));
        assert!(!PhaseScope::All.is_within(&four_five));
    }

    #[test]
    fn every_phase_has_its_number_and_name() {
        let all: Vec<(i8, &str)> = Phase::all()
            .map(|p| (p.number(), p.default_name()))
            .collect();
        assert_eq!(
            all,
            [
                (-1, "research"),
                (0, "planning"),
                (1, "requirements"),
                (2, "architecture"),
                (3, "design"),
                (4, "foundation"),
                (5, "development"),
                (6, "testing"),
                (7, "deployment")
            ]
        );
        assert_eq!(Phase::DEVELOPMENT.to_string(), "5");
        for p in Phase::all() {
            assert_eq!(Phase::parse(p.default_name()).unwrap(), p);
        }
    }

    #[test]
    fn names_are_configurable() {
        let names = PhaseNames::with_overrides("5=build, -1=discovery").unwrap();
        assert_eq!(names.name(Phase::DEVELOPMENT), "build");
        assert_eq!(names.name(Phase::RESEARCH), "discovery");
        assert_eq!(names.name(Phase::TESTING), "testing");
        assert!(PhaseNames::with_overrides("nine=x").is_err());
        assert!(PhaseNames::with_overrides("5").is_err());
    }
}
