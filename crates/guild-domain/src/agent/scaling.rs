//! Auto-scaling (the seed's next step 5): a policy an agent sets for a role below it, and
//! the rule that turns the load it sees into spawns and terminations.
//!
//! The load is the READY missions of the policy's role (and phase, when it names one) that
//! no agent was named for; the members are the owner's live children the policy spawned.
//! With `k` = `ready_per_agent`, `n` members and `h` = `hysteresis`:
//!
//! - **up** when `n < min_agents` or `ready > n·k`: to `ceil(ready / k)` members, at least
//!   `min_agents` and at most `max_agents`, as far as the owner's authority, caps and
//!   budget and the mode's limit allow (each new member is an ordinary spawn under the
//!   owner, refused by the same rules);
//! - **down** when `ready ≤ m·k·(1−h)` for some `m < n` (at least `min_agents`): members
//!   idle (no task) for `idle_ttl_ms` are terminated, oldest idle first, until `m` remain;
//!   their unspent tokens go back to the owner;
//! - never twice within `cooldown_ms` of the last change, either way;
//! - above `max_agents` (a policy set again with a lower one), idle members go whatever
//!   the load, and none is added.
//!
//! Between the two thresholds (the hysteresis band) nothing happens: a load that swings
//! around `n·k` scales up once and then holds.

use serde::{Deserialize, Serialize};

use super::{AgentProfile, Role};
use crate::Rejection;
use crate::id::{AgentId, MAX_ID_LEN, Principal};
use crate::phase::Phase;
use crate::time::Timestamp;

/// The shortest cool-down and idle time a policy may set (tests use it; production
/// policies are measured in seconds).
pub const MIN_SCALING_MS: u64 = 100;

/// How an owner wants the agents of one role below it to follow the load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ScalingPolicy {
    /// The agent the members are spawned under, with its authority and budget.
    pub owner: AgentId,
    /// The role of the members, and of the missions counted as load.
    pub role: Role,
    /// Only READY missions of this phase count as load; all phases when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Members kept however low the load (0 by default).
    #[serde(default)]
    pub min_agents: u32,
    /// Members never exceeded (at least 1).
    pub max_agents: u32,
    /// READY missions per member above which it scales up (1 by default).
    #[serde(default = "one")]
    pub ready_per_agent: u32,
    /// The band below the scale-up threshold in which nothing happens, as a fraction of
    /// it, in [0, 1): 0.5 by default (scale down only when the load would fit half as many
    /// per member).
    #[serde(default = "half")]
    pub hysteresis: f64,
    /// The least time between two changes, in milliseconds (at least 100).
    pub cooldown_ms: u64,
    /// Tokens each new member is carved from the owner's budget.
    pub agent_budget: u64,
    /// How long a member holds no task before it may be scaled down, in milliseconds (at
    /// least 100).
    pub idle_ttl_ms: u64,
    /// Members are named `<prefix>-<n>`; `<owner>-<role>` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_prefix: Option<String>,
}

fn one() -> u32 {
    1
}

fn half() -> f64 {
    0.5
}

impl ScalingPolicy {
    /// A policy with the defaults: no minimum, one READY mission per member, a half band.
    pub fn new(owner: AgentId, role: Role, max_agents: u32, agent_budget: u64) -> Self {
        Self {
            owner,
            role,
            phase: None,
            min_agents: 0,
            max_agents,
            ready_per_agent: 1,
            hysteresis: half(),
            cooldown_ms: 5_000,
            agent_budget,
            idle_ttl_ms: 30_000,
            agent_prefix: None,
        }
    }

    /// Checks the policy's own shape; the field at fault is named.
    pub fn validate(&self) -> Result<(), Rejection> {
        if self.max_agents == 0 {
            return Err(Rejection::invalid("max_agents", "must be at least 1"));
        }
        if self.min_agents > self.max_agents {
            return Err(Rejection::invalid(
                "min_agents",
                format!(
                    "{} is above max_agents ({})",
                    self.min_agents, self.max_agents
                ),
            ));
        }
        if self.ready_per_agent == 0 {
            return Err(Rejection::invalid("ready_per_agent", "must be at least 1"));
        }
        if !(0.0..1.0).contains(&self.hysteresis) {
            return Err(Rejection::invalid(
                "hysteresis",
                format!("{} is outside [0, 1)", self.hysteresis),
            ));
        }
        for (field, ms) in [
            ("cooldown_ms", self.cooldown_ms),
            ("idle_ttl_ms", self.idle_ttl_ms),
        ] {
            if ms < MIN_SCALING_MS {
                return Err(Rejection::invalid(
                    field,
                    format!("{ms} ms is below the least allowed, {MIN_SCALING_MS} ms"),
                ));
            }
        }
        let prefix = self.prefix();
        // Room for `-` and the largest member number.
        let longest = MAX_ID_LEN - 1 - u32::MAX.to_string().len();
        if prefix.len() > longest || crate::id::validate_token("agent_prefix", &prefix).is_err() {
            return Err(Rejection::invalid(
                "agent_prefix",
                format!(
                    "{prefix:?} does not name agents: give an agent_prefix of up to {longest} of A-Z a-z 0-9 - _"
                ),
            ));
        }
        Ok(())
    }

    /// What members are named after.
    pub fn prefix(&self) -> String {
        self.agent_prefix.clone().unwrap_or_else(|| {
            format!("{}-{}", self.owner, self.role.to_string().replace(':', "-"))
        })
    }

    /// The members wanted for `ready` missions, within the policy's bounds, scaling up.
    pub(super) fn wanted_up(&self, ready: u32) -> u32 {
        // `max`, then `min`: never a panic, even on a policy that skipped validation.
        ready
            .div_ceil(self.ready_per_agent.max(1))
            .max(self.min_agents)
            .min(self.max_agents)
    }

    /// The fewest members that still hold `ready` missions below the band, scaling down.
    fn wanted_down(&self, ready: u32) -> u32 {
        let per = f64::from(self.ready_per_agent) * (1.0 - self.hysteresis);
        let m = (f64::from(ready) / per).ceil();
        // `per` is positive (validated); the cast saturates.
        (m as u32).max(self.min_agents).min(self.max_agents)
    }
}

/// A policy in force, with what it has done so far.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Scaling {
    /// The policy.
    pub policy: ScalingPolicy,
    /// Who set it.
    pub set_by: Principal,
    /// When.
    pub set_at: Timestamp,
    /// Members spawned under it so far (names the next one).
    #[serde(default)]
    pub spawned: u32,
    /// Its last change of members, either way: the cool-down runs from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_change_at: Option<Timestamp>,
    /// The rule that held the last scale-up short, until one goes through: the owner is
    /// asked once per rule, not once per tick.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
}

/// What a policy asks for, given its members and the load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing to do.
    Hold,
    /// Spawn until there are this many members.
    Up(u32),
    /// Terminate these idle members.
    Down(Vec<AgentId>),
}

impl Scaling {
    /// The key it is kept under.
    pub fn key(&self) -> (AgentId, Role) {
        (self.policy.owner.clone(), self.policy.role.clone())
    }

    /// The next member's id.
    pub fn next_member(&self) -> Result<AgentId, Rejection> {
        let n = self.spawned.checked_add(1).ok_or_else(|| {
            Rejection::invalid("agent_prefix", "every member name of this prefix is used")
        })?;
        AgentId::new(format!("{}-{n}", self.policy.prefix()))
    }

    /// Whether the cool-down since the last change still runs at `now`.
    pub fn cooling(&self, now: Timestamp) -> bool {
        self.last_change_at
            .is_some_and(|t| now.millis_since(t) < self.policy.cooldown_ms)
    }

    /// What the policy asks for with `n` live members, of which `candidates` may be
    /// scaled down when idle long enough, and `ready` missions at `now` (the module's
    /// rule).
    pub fn step(&self, n: u32, candidates: &[&AgentProfile], ready: u32, now: Timestamp) -> Step {
        let p = &self.policy;
        if self.cooling(now) {
            return Step::Hold;
        }
        // Above a lowered maximum nothing is added, and idle members go whatever the load
        // (`wanted_down` is at most the maximum).
        let up = n <= p.max_agents
            && (n < p.min_agents || u64::from(ready) > u64::from(n) * u64::from(p.ready_per_agent));
        if up {
            let want = p.wanted_up(ready);
            return if want > n { Step::Up(want) } else { Step::Hold };
        }
        let keep = p.wanted_down(ready);
        if keep >= n {
            return Step::Hold;
        }
        let mut idle: Vec<(&Timestamp, &AgentId)> = candidates
            .iter()
            .filter(|a| a.assigned_task_id.is_none() && a.status != super::AgentStatus::Blocked)
            .filter_map(|a| a.free_since.as_ref().map(|t| (t, &a.id)))
            .filter(|(t, _)| now.millis_since(**t) >= p.idle_ttl_ms)
            .collect();
        idle.sort();
        let drop: Vec<AgentId> = idle
            .into_iter()
            .take((n - keep) as usize)
            .map(|(_, id)| id.clone())
            .collect();
        if drop.is_empty() {
            Step::Hold
        } else {
            Step::Down(drop)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ScalingPolicy {
        let mut p = ScalingPolicy::new(AgentId::new("lead").unwrap(), Role::Developer, 5, 100);
        p.cooldown_ms = 1_000;
        p.idle_ttl_ms = 500;
        p
    }

    #[test]
    fn a_policy_names_the_field_that_breaks_it() {
        type Break = fn(&mut ScalingPolicy);
        let cases: Vec<(Break, &str)> = vec![
            (|p| p.max_agents = 0, "max_agents"),
            (|p| p.min_agents = 6, "min_agents"),
            (|p| p.ready_per_agent = 0, "ready_per_agent"),
            (|p| p.hysteresis = 1.0, "hysteresis"),
            (|p| p.hysteresis = -0.1, "hysteresis"),
            (|p| p.cooldown_ms = 99, "cooldown_ms"),
            (|p| p.idle_ttl_ms = 0, "idle_ttl_ms"),
            (
                |p| p.agent_prefix = Some("no spaces".into()),
                "agent_prefix",
            ),
            (|p| p.agent_prefix = Some("x".repeat(60)), "agent_prefix"),
        ];
        for (break_it, field) in cases {
            let mut p = policy();
            break_it(&mut p);
            assert_eq!(p.validate().unwrap_err().field(), Some(field), "{p:?}");
        }
        assert!(policy().validate().is_ok());
    }

    #[test]
    fn members_are_named_after_the_owner_and_role_unless_told() {
        let mut s = Scaling {
            policy: policy(),
            set_by: Principal::Operator,
            set_at: Timestamp(0),
            spawned: 2,
            last_change_at: None,
            blocked_by: None,
        };
        assert_eq!(s.next_member().unwrap().as_str(), "lead-developer-3");
        s.policy.agent_prefix = Some("dev".into());
        assert_eq!(s.next_member().unwrap().as_str(), "dev-3");
    }

    #[test]
    fn the_band_between_the_thresholds_holds() {
        let p = policy(); // k = 1, h = 0.5
        assert_eq!(p.wanted_up(3), 3);
        assert_eq!(p.wanted_up(50), 5, "at most max_agents");
        assert_eq!(
            p.wanted_down(2),
            4,
            "2 missions fit 4 members at half a mission each"
        );
        assert_eq!(p.wanted_down(0), 0);
    }
}
