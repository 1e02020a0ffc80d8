//! The seven agent statuses and the transitions between them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where an agent is in its life.
///
/// | status    | meaning                                                        | live |
/// |-----------|----------------------------------------------------------------|------|
/// | PENDING   | spawned; its process has not sent a heartbeat yet              | yes  |
/// | ACTIVE    | running and ready for work                                     | yes  |
/// | WORKING   | holds a task (`assigned_task_id`)                              | yes  |
/// | BLOCKED   | paused or blocked, with a reason; gets no new work            | yes  |
/// | IDLE      | running, said it has nothing to do; may be given work          | yes  |
/// | COMPLETED | terminated after its work; kept for lineage and audit          | no   |
/// | FAILED    | terminated by failure or missed heartbeats; kept likewise      | no   |
///
/// Live agents count toward every limit; COMPLETED and FAILED ones count toward none.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AgentStatus {
    /// Spawned, not yet heard from.
    Pending,
    /// Running and ready for work.
    Active,
    /// Holding a task.
    Working,
    /// Paused or blocked; gets no new work.
    Blocked,
    /// Running with nothing to do.
    Idle,
    /// Terminated after its work.
    Completed,
    /// Terminated by failure.
    Failed,
}

use AgentStatus::*;

impl AgentStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [AgentStatus; 7] = [Pending, Active, Working, Blocked, Idle, Completed, Failed];

    /// Whether the agent is alive (counts toward limits, can receive messages).
    pub const fn is_live(self) -> bool {
        !matches!(self, Completed | Failed)
    }

    /// Whether new work may be given to an agent in this status (it must also hold no task).
    pub const fn takes_work(self) -> bool {
        matches!(self, Active | Idle)
    }

    /// The transition table. Terminal statuses go nowhere; WORKING is entered only with a task.
    pub const fn can_become(self, next: AgentStatus) -> bool {
        match self {
            Pending => matches!(next, Active | Blocked | Completed | Failed),
            Active => matches!(next, Working | Blocked | Idle | Completed | Failed),
            Working => matches!(next, Active | Idle | Blocked | Completed | Failed),
            Blocked => matches!(next, Pending | Active | Working | Idle | Completed | Failed),
            Idle => matches!(next, Active | Working | Blocked | Completed | Failed),
            Completed | Failed => false,
        }
    }

    /// Parses `ACTIVE` or `active`.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text.trim()))
    }

    /// The upper-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Pending => "PENDING",
            Active => "ACTIVE",
            Working => "WORKING",
            Blocked => "BLOCKED",
            Idle => "IDLE",
            Completed => "COMPLETED",
            Failed => "FAILED",
        }
    }
}

impl fmt::Display for AgentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_statuses_are_final_and_not_live() {
        for terminal in [Completed, Failed] {
            assert!(!terminal.is_live());
            for next in AgentStatus::ALL {
                assert!(!terminal.can_become(next), "{terminal} -> {next}");
            }
        }
    }

    #[test]
    fn every_live_status_can_end() {
        for s in AgentStatus::ALL.into_iter().filter(|s| s.is_live()) {
            assert!(s.can_become(Completed) && s.can_become(Failed), "{s}");
        }
    }

    #[test]
    fn pending_agents_are_not_given_work_before_they_report() {
        assert!(!Pending.can_become(Working));
        assert!(!Pending.takes_work());
        assert!(Active.takes_work() && Idle.takes_work());
        assert!(!Blocked.takes_work() && !Working.takes_work());
    }

    #[test]
    fn no_status_becomes_itself() {
        for s in AgentStatus::ALL {
            assert!(!s.can_become(s), "{s}");
        }
    }

    #[test]
    fn parses_either_case() {
        assert_eq!(AgentStatus::parse("working"), Some(Working));
        assert_eq!(AgentStatus::parse("nope"), None);
        assert_eq!(serde_json::to_string(&Blocked).unwrap(), "\"BLOCKED\"");
    }
}
