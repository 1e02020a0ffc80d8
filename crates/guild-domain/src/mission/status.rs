//! The seven mission statuses and the transitions between them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a mission is in its life (the seed's "Mission Lifecycle").
///
/// PENDING waits for dependencies; READY may start; ACTIVE runs on an agent; COMPLETED,
/// FAILED (retries exhausted, or a hard dependency failed) and CANCELLED are final
/// outcomes; ARCHIVED takes a final mission out of the working set (it stays retrievable).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MissionStatus {
    /// Waiting for dependencies.
    Pending,
    /// Dependencies met; may start.
    Ready,
    /// Assigned to an agent and executing.
    Active,
    /// Done.
    Completed,
    /// Given up (retries exhausted, or a hard dependency failed or was cancelled).
    Failed,
    /// Called off.
    Cancelled,
    /// Out of the working set, kept for memory.
    Archived,
}

use MissionStatus::*;

impl MissionStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [MissionStatus; 7] = [
        Pending, Ready, Active, Completed, Failed, Cancelled, Archived,
    ];

    /// The transition table.
    pub const fn can_become(self, next: MissionStatus) -> bool {
        match self {
            Pending => matches!(next, Ready | Failed | Cancelled),
            Ready => matches!(next, Active | Pending | Failed | Cancelled),
            Active => matches!(next, Completed | Ready | Failed | Cancelled),
            Completed | Failed | Cancelled => matches!(next, Archived),
            Archived => false,
        }
    }

    /// COMPLETED, FAILED or CANCELLED: an outcome, ready to archive.
    pub const fn is_final(self) -> bool {
        matches!(self, Completed | Failed | Cancelled)
    }

    /// PENDING, READY or ACTIVE: still in the plan.
    pub const fn is_open(self) -> bool {
        matches!(self, Pending | Ready | Active)
    }

    /// Parses either case.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text.trim()))
    }

    /// The upper-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Pending => "PENDING",
            Ready => "READY",
            Active => "ACTIVE",
            Completed => "COMPLETED",
            Failed => "FAILED",
            Cancelled => "CANCELLED",
            Archived => "ARCHIVED",
        }
    }
}

impl fmt::Display for MissionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_of_the_seed() {
        assert!(Pending.can_become(Ready));
        assert!(Ready.can_become(Active));
        assert!(
            Active.can_become(Completed)
                && Active.can_become(Failed)
                && Active.can_become(Cancelled)
        );
        assert!(
            Active.can_become(Ready),
            "a failed attempt with retries left goes back to READY"
        );
        for s in [Completed, Failed, Cancelled] {
            assert!(s.can_become(Archived));
            assert!(!s.can_become(Ready) && !s.can_become(Active));
        }
        for s in MissionStatus::ALL {
            assert!(!Archived.can_become(s));
            assert!(!s.can_become(s));
        }
    }

    #[test]
    fn nothing_skips_readiness() {
        assert!(!Pending.can_become(Active));
        assert!(!Pending.can_become(Completed));
        assert!(!Ready.can_become(Completed));
    }
}
