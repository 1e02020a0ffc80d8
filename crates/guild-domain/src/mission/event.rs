//! What the mission manager tells the world.

use serde::{Deserialize, Serialize};

use super::{MissionStatus, Severity};
use crate::audit::{Audit, AuditData, AuditKind};
use crate::id::{AgentId, MissionId, Principal};
use crate::phase::Phase;
use crate::time::Timestamp;

/// A mission event. `name()` is its subject token; `about()` the mission (or phase).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "MissionEvent"))]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A mission was created.
    Created {
        /// The mission.
        mission_id: MissionId,
        /// Its phase.
        phase: Phase,
        /// PENDING or READY.
        status: MissionStatus,
        /// Who created it.
        by: Principal,
        /// When.
        at: Timestamp,
    },
    /// A dependency was added.
    DependencyAdded {
        /// The dependent.
        mission_id: MissionId,
        /// The dependency.
        on: MissionId,
        /// Hard or soft.
        severity: Severity,
        /// When.
        at: Timestamp,
    },
    /// A dependency was removed.
    DependencyRemoved {
        /// The dependent.
        mission_id: MissionId,
        /// The dependency.
        on: MissionId,
        /// When.
        at: Timestamp,
    },
    /// A mission's status changed.
    StatusChanged {
        /// The mission.
        mission_id: MissionId,
        /// Before.
        from: MissionStatus,
        /// After.
        to: MissionStatus,
        /// When.
        at: Timestamp,
    },
    /// A mission's dependencies are all met: it may start (pushed, nobody polls).
    Ready {
        /// The mission.
        mission_id: MissionId,
        /// Its phase.
        phase: Phase,
        /// The agent meant to run it.
        assigned_agent_id: Option<AgentId>,
        /// When.
        at: Timestamp,
    },
    /// A mission started on an agent.
    Started {
        /// The mission.
        mission_id: MissionId,
        /// The agent.
        agent_id: AgentId,
        /// 1 for the first attempt.
        attempt: u32,
        /// When.
        at: Timestamp,
    },
    /// A mission completed.
    Completed {
        /// The mission.
        mission_id: MissionId,
        /// Its phase.
        phase: Phase,
        /// Its quality score.
        quality_score: Option<f64>,
        /// When.
        at: Timestamp,
    },
    /// An attempt failed (including a completion below the quality gate).
    AttemptFailed {
        /// The mission.
        mission_id: MissionId,
        /// Which attempt.
        attempt: u32,
        /// Why.
        reason: String,
        /// Whether it goes back to READY.
        will_retry: bool,
        /// When.
        at: Timestamp,
    },
    /// A mission failed for good: retries exhausted, or a hard dependency failed.
    Failed {
        /// The mission.
        mission_id: MissionId,
        /// Why.
        reason: String,
        /// The failed hard dependency that caused it, for a cascade.
        caused_by: Option<MissionId>,
        /// Open missions that depend on it (hard ones fail next, soft ones go on).
        dependents: Vec<MissionId>,
        /// When.
        at: Timestamp,
    },
    /// A mission was cancelled.
    Cancelled {
        /// The mission.
        mission_id: MissionId,
        /// Why.
        reason: String,
        /// When.
        at: Timestamp,
    },
    /// A final mission left the working set.
    Archived {
        /// The mission.
        mission_id: MissionId,
        /// When.
        at: Timestamp,
    },
    /// Every mission of a phase has completed (the seed's sync point).
    PhaseCompleted {
        /// The phase.
        phase: Phase,
        /// How many missions it had.
        missions: u32,
        /// When.
        at: Timestamp,
    },
    /// An ACTIVE mission moved from one agent to another (a HANDOFF).
    HandedOff {
        /// The mission.
        mission_id: MissionId,
        /// Who ran it.
        from: AgentId,
        /// Who runs it now.
        to: AgentId,
        /// When.
        at: Timestamp,
    },
    /// A second agent claimed a mission another one runs: refused, and escalated by the
    /// bus instead of the last claim winning.
    ClaimConflict {
        /// The mission.
        mission_id: MissionId,
        /// Who runs it.
        holder: AgentId,
        /// Who claimed it too.
        claimant: AgentId,
        /// Who asked for the claim.
        by: Principal,
        /// When.
        at: Timestamp,
    },
    /// A READY mission has nobody to run it: no free agent of the role, or the mode's
    /// limit on concurrently active groups is reached.
    Waiting {
        /// The mission.
        mission_id: MissionId,
        /// Why.
        reason: String,
        /// The agent that was lost, when that is why (its orchestrator is told).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lost_agent: Option<AgentId>,
        /// When.
        at: Timestamp,
    },
}

impl Event {
    /// The event's name, used as its subject token.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Created { .. } => "created",
            Event::DependencyAdded { .. } => "dependency_added",
            Event::DependencyRemoved { .. } => "dependency_removed",
            Event::StatusChanged { .. } => "status_changed",
            Event::Ready { .. } => "ready",
            Event::Started { .. } => "started",
            Event::Completed { .. } => "completed",
            Event::AttemptFailed { .. } => "attempt_failed",
            Event::Failed { .. } => "failed",
            Event::Cancelled { .. } => "cancelled",
            Event::Archived { .. } => "archived",
            Event::PhaseCompleted { .. } => "phase_completed",
            Event::Waiting { .. } => "waiting",
            Event::HandedOff { .. } => "handed_off",
            Event::ClaimConflict { .. } => "claim_conflict",
        }
    }

    /// Every event name, for the subject catalogue.
    pub const NAMES: [&'static str; 15] = [
        "created",
        "dependency_added",
        "dependency_removed",
        "status_changed",
        "ready",
        "started",
        "completed",
        "attempt_failed",
        "failed",
        "cancelled",
        "archived",
        "phase_completed",
        "waiting",
        "handed_off",
        "claim_conflict",
    ];

    /// The subject token naming what it is about: the mission id, or `phase<N>`.
    pub fn about(&self) -> String {
        match self {
            Event::Created { mission_id, .. }
            | Event::DependencyAdded { mission_id, .. }
            | Event::DependencyRemoved { mission_id, .. }
            | Event::StatusChanged { mission_id, .. }
            | Event::Ready { mission_id, .. }
            | Event::Started { mission_id, .. }
            | Event::Completed { mission_id, .. }
            | Event::AttemptFailed { mission_id, .. }
            | Event::Failed { mission_id, .. }
            | Event::Cancelled { mission_id, .. }
            | Event::Archived { mission_id, .. }
            | Event::Waiting { mission_id, .. }
            | Event::HandedOff { mission_id, .. }
            | Event::ClaimConflict { mission_id, .. } => mission_id.to_string(),
            Event::PhaseCompleted { phase, .. } => format!("phase{}", phase.number()),
        }
    }

    /// Mission transitions are kept in the audit log: creation and every outcome.
    pub fn is_governance(&self) -> bool {
        matches!(
            self,
            Event::Created { .. }
                | Event::Completed { .. }
                | Event::Failed { .. }
                | Event::Cancelled { .. }
                | Event::PhaseCompleted { .. }
                | Event::HandedOff { .. }
        )
    }

    /// The audit record of a governance event, `by` having acted: a `mission` record of
    /// the event, naming its mission (a phase's completion names none).
    pub fn audit(&self, by: &Principal) -> Option<Audit> {
        if !self.is_governance() {
            return None;
        }
        let mission_id = match self {
            Event::PhaseCompleted { .. } => None,
            _ => MissionId::new(self.about()).ok(),
        };
        Some(Audit {
            kind: AuditKind::Mission,
            actor: by.clone(),
            about: self.about(),
            mission_id,
            data: AuditData::Mission(self.clone()),
        })
    }
}

impl crate::audit::Audited for Event {
    fn audit_by(&self, by: &Principal) -> Option<Audit> {
        self.audit(by)
    }
}
