//! The bus's reactions to mission events: a mission failed for good, a claim conflict, a
//! mission left waiting by a lost agent, each a message (and an audit record) under an id
//! derived from the event.

use super::command::{audit, posting};
use super::*;
use crate::Rejection;
use crate::agent::Registry;
use crate::audit::{AuditData, AuditKind};
use crate::id::{MessageId, Principal};
use crate::mission::Event as MissionEvent;
use crate::time::Timestamp;

/// The id of the message a mission event becomes, derived from the event (a redelivered
/// event adds nothing); `None` for an event the bus does not react to.
pub fn reaction_id(event: &MissionEvent) -> Result<Option<MessageId>, Rejection> {
    let id = match event {
        MissionEvent::Failed { mission_id, .. } => format!("failed-{mission_id}"),
        MissionEvent::ClaimConflict { mission_id, at, .. } => {
            format!("claim-{mission_id}-{}", at.as_millis())
        }
        MissionEvent::Waiting {
            mission_id,
            lost_agent: Some(_),
            at,
            ..
        } => format!("waiting-{mission_id}-{}", at.as_millis()),
        _ => return Ok(None),
    };
    MessageId::new(id).map(Some)
}

impl PostOffice {
    /// A mission event turned into a message (and its audit record): see
    /// [`Command::React`].
    pub(super) fn react(
        &self,
        registry: &Registry,
        event: &MissionEvent,
        now: Timestamp,
    ) -> Result<Vec<BusEffect>, Rejection> {
        let Some(id) = reaction_id(event)? else {
            return Ok(Vec::new());
        };
        if self.message(&id).is_some() {
            return Ok(Vec::new());
        }
        let bus = Principal::Service(crate::Service::Bus);
        let (kind, actor, routed) = match event {
            MissionEvent::Failed {
                mission_id,
                reason,
                caused_by,
                dependents,
                ..
            } => (
                AuditKind::Escalation,
                bus,
                system_alert(
                    registry,
                    format!("CRITICAL: mission {mission_id} failed for good"),
                    serde_json::json!({
                        "mission_id": mission_id,
                        "reason": reason,
                        "caused_by": caused_by,
                        "dependents": dependents,
                    }),
                    Some(mission_id.clone()),
                    id,
                    now,
                ),
            ),
            MissionEvent::ClaimConflict {
                mission_id,
                holder,
                claimant,
                ..
            } => {
                let conflict = Conflict::TwoClaimsOnOneTask;
                // The same claim conflict, still open, asks no more (a repeated refusal).
                if self
                    .open_conflict_question(claimant, mission_id, conflict.as_str())
                    .is_some()
                {
                    return Ok(Vec::new());
                }
                (
                    AuditKind::Conflict,
                    Principal::Agent(claimant.clone()),
                    conflict_question(
                        registry,
                        claimant,
                        format!("Conflict: {claimant} claimed {mission_id}, which {holder} runs"),
                        serde_json::json!({
                            "conflict": conflict.as_str(),
                            "task_id": mission_id,
                            "holder": holder,
                            "claimant": claimant,
                        }),
                        Some(mission_id.clone()),
                        id,
                        now,
                    ),
                )
            }
            MissionEvent::Waiting {
                mission_id,
                reason,
                lost_agent: Some(lost),
                ..
            } => (
                AuditKind::Escalation,
                bus,
                waiting_notice(registry, lost, mission_id, reason, id, now),
            ),
            _ => return Ok(Vec::new()),
        };
        let post = self.post(routed, now);
        let m = &post.message;
        let entry = audit(
            kind,
            &actor,
            m.task_id.as_ref().map_or(m.id.as_str(), |t| t.as_str()),
            m.task_id.clone(),
            AuditData::Facts(serde_json::json!({
                "message_id": m.id,
                "subject": m.subject,
                "to": m.to,
                "event": event,
            })),
        );
        let mut out = posting(post);
        out.push(entry);
        Ok(out)
    }
}
