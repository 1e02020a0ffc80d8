//! The seed's "Concurrent Execution Limits" as presets, each figure overridable.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Rejection;

/// Safe, Aggressive or Extreme (the seed recommends Safe).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// 6 agents, 200K tokens, 3 parallel groups.
    #[default]
    Safe,
    /// 10 agents, 300K tokens, 5 parallel groups.
    Aggressive,
    /// 20 agents, 500K tokens, unlimited parallel groups.
    Extreme,
}

impl Mode {
    /// The preset's limits (the upper end of each of the seed's ranges).
    pub const fn limits(self) -> Limits {
        match self {
            Mode::Safe => Limits {
                max_agents: 6,
                token_pool: 200_000,
                max_parallel_groups: Some(3),
            },
            Mode::Aggressive => Limits {
                max_agents: 10,
                token_pool: 300_000,
                max_parallel_groups: Some(5),
            },
            Mode::Extreme => Limits {
                max_agents: 20,
                token_pool: 500_000,
                max_parallel_groups: None,
            },
        }
    }

    /// Parses `safe`, `aggressive` or `extreme`.
    pub fn parse(text: &str) -> Result<Self, Rejection> {
        match text.trim().to_ascii_lowercase().as_str() {
            "safe" => Ok(Mode::Safe),
            "aggressive" => Ok(Mode::Aggressive),
            "extreme" => Ok(Mode::Extreme),
            other => Err(Rejection::invalid(
                "mode",
                format!("{other:?} is not a mode (safe, aggressive, extreme)"),
            )),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Safe => "safe",
            Mode::Aggressive => "aggressive",
            Mode::Extreme => "extreme",
        })
    }
}

/// Global limits on agents, tokens and concurrently active mission groups.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Limits {
    /// Live agents allowed at once.
    pub max_agents: u32,
    /// The global token pool that root agents are carved from.
    pub token_pool: u64,
    /// Mission groups that may have ACTIVE missions at once; `None` is unlimited.
    pub max_parallel_groups: Option<u32>,
}

impl Limits {
    /// The mode's preset with any explicit figure taking precedence.
    pub fn resolve(
        mode: Mode,
        max_agents: Option<u32>,
        token_pool: Option<u64>,
        max_parallel_groups: Option<u32>,
    ) -> Result<Self, Rejection> {
        let preset = mode.limits();
        let limits = Limits {
            max_agents: max_agents.unwrap_or(preset.max_agents),
            token_pool: token_pool.unwrap_or(preset.token_pool),
            // 0 on the command line means "unlimited", like the Extreme preset.
            max_parallel_groups: match max_parallel_groups {
                Some(0) => None,
                Some(n) => Some(n),
                None => preset.max_parallel_groups,
            },
        };
        if limits.max_agents == 0 {
            return Err(Rejection::invalid("max_agents", "must be at least 1"));
        }
        Ok(limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_match_the_seed() {
        assert_eq!(Mode::Safe.limits().max_agents, 6);
        assert_eq!(Mode::Aggressive.limits().token_pool, 300_000);
        assert_eq!(Mode::Extreme.limits().max_parallel_groups, None);
        assert_eq!(Mode::Safe.limits().max_parallel_groups, Some(3));
    }

    #[test]
    fn explicit_limits_override_the_preset() {
        let l = Limits::resolve(Mode::Safe, Some(50), None, Some(0)).unwrap();
        assert_eq!(
            (l.max_agents, l.token_pool, l.max_parallel_groups),
            (50, 200_000, None)
        );
        assert_eq!(
            Limits::resolve(Mode::Safe, Some(0), None, None)
                .unwrap_err()
                .field(),
            Some("max_agents")
        );
        assert_eq!(Mode::parse("Extreme").unwrap(), Mode::Extreme);
        assert!(Mode::parse("ludicrous").is_err());
    }
}
