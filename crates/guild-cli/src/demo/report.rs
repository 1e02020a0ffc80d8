//! The orchestrator's final report: agents with lineage, missions with timings, messages
//! by type and priority, decisions, tokens used against budgets.

use std::collections::BTreeMap;
use std::fmt::Write;

use anyhow::ensure;
use guild_sdk::Guild;
use guild_sdk::MessageStats;
use guild_sdk::MissionStatus;
use guild_sdk::api::bus::DecisionQuery;
use guild_sdk::{AgentId, MissionId, Principal};
use guild_sdk::{AgentProfile, AgentQuery};
use guild_wire::audit::{AuditKind, VerifyReport, decisions_markdown};
use serde::Serialize;

use super::cast::Cast;
use crate::cmd::tree_text;

#[derive(Debug, Serialize)]
pub(crate) struct MissionLine {
    id: MissionId,
    name: String,
    phase: i8,
    status: MissionStatus,
    agent: Option<AgentId>,
    attempts: u32,
    quality: Option<f64>,
    ran_ms: Option<u64>,
    tokens_used: u64,
    token_budget: u64,
}

#[derive(Debug, Serialize)]
pub(crate) struct DecisionLine {
    audit_seq: u64,
    kind: AuditKind,
    question: String,
    asker: Principal,
    approver: Principal,
    choice: String,
}

/// The messages of this run: the bus's totals at the end less those at the start.
#[derive(Debug, Serialize)]
pub(crate) struct RunMessages {
    total: u64,
    by_type: BTreeMap<String, u64>,
    by_priority: BTreeMap<String, u64>,
}

impl RunMessages {
    fn between(before: &MessageStats, after: &MessageStats) -> Self {
        fn diff<K: Ord + ToString>(
            a: &BTreeMap<K, u64>,
            b: &BTreeMap<K, u64>,
        ) -> BTreeMap<String, u64> {
            b.iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        v.saturating_sub(a.get(k).copied().unwrap_or(0)),
                    )
                })
                .filter(|(_, v)| *v > 0)
                .collect()
        }
        Self {
            total: after.total_messages.saturating_sub(before.total_messages),
            by_type: diff(&before.by_type, &after.by_type),
            by_priority: diff(&before.by_priority, &after.by_priority),
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct Report {
    run: String,
    agents: Vec<AgentProfile>,
    missions: Vec<MissionLine>,
    /// Each agent's budget as granted at spawn (its allocation shrinks to its use when it
    /// terminates).
    granted: BTreeMap<AgentId, u64>,
    messages: RunMessages,
    decisions: Vec<DecisionLine>,
    tokens_used: u64,
    mission_budgets: u64,
    audit: VerifyReport,
    #[serde(skip)]
    pub(crate) decisions_markdown: String,
}

pub(crate) async fn gather(
    operator: &Guild,
    cast: &Cast,
    missions: &[&MissionId],
    audit: VerifyReport,
    before: &MessageStats,
) -> anyhow::Result<Report> {
    let suffix = format!("-{}", cast.tag);
    let agents: Vec<AgentProfile> = operator
        .spawner()
        .list(&AgentQuery {
            include_terminated: true,
            ..AgentQuery::default()
        })
        .await?
        .into_iter()
        .filter(|a| a.id.as_str().ends_with(&suffix))
        .collect();
    let stats = operator.spawner().get_stats().await?;
    let mut lines = Vec::new();
    for id in missions {
        let m = operator.missions().get_mission(id).await?;
        lines.push(MissionLine {
            ran_ms: m
                .started_at
                .zip(m.finished_at)
                .map(|(s, f)| f.millis_since(s)),
            tokens_used: stats.tokens.used_by_mission.get(*id).copied().unwrap_or(0),
            id: m.id,
            name: m.name,
            phase: m.phase.number(),
            status: m.status,
            agent: m.assigned_agent_id,
            attempts: m.attempts,
            quality: m.quality_score,
            token_budget: m.token_budget,
        });
    }
    let ours = |p: &Principal| matches!(p, Principal::Agent(a) if a.as_str().ends_with(&suffix));
    let logged: Vec<_> = operator
        .bus()
        .decision_history(&DecisionQuery::default())
        .await?
        .into_iter()
        .filter(|d| ours(&d.record.asker) || ours(&d.record.approver))
        .collect();
    let decisions = logged
        .iter()
        .map(|d| DecisionLine {
            audit_seq: d.audit_seq,
            kind: d.kind,
            question: d.record.question_id.to_string(),
            asker: d.record.asker.clone(),
            approver: d.record.approver.clone(),
            choice: d.record.choice.clone(),
        })
        .collect();
    Ok(Report {
        run: cast.tag.clone(),
        tokens_used: agents.iter().map(|a| a.budget.used).sum(),
        mission_budgets: lines.iter().map(|m| m.token_budget).sum(),
        agents,
        missions: lines,
        granted: cast.granted.lock().map(|g| g.clone()).unwrap_or_default(),
        messages: RunMessages::between(before, &operator.bus().get_message_stats().await?),
        decisions,
        audit,
        decisions_markdown: decisions_markdown(&logged),
    })
}

impl Report {
    /// What the demo promises; a failed promise makes the demo fail.
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        ensure!(
            self.missions
                .iter()
                .all(|m| m.status == MissionStatus::Completed),
            "not every mission completed"
        );
        ensure!(self.audit.ok, "the audit log failed verification");
        let decided = self
            .decisions
            .iter()
            .filter(|d| d.kind == AuditKind::Decision)
            .count();
        ensure!(decided == 2, "expected two decisions, found {decided}");
        Ok(())
    }
}

pub(crate) fn text(r: &Report) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "\n== Report (run {})\n\nAgents and lineage:", r.run);
    // The lineage with each agent's budget as granted, not as shrunk at termination.
    let as_granted: Vec<AgentProfile> = r
        .agents
        .iter()
        .cloned()
        .map(|mut a| {
            a.budget.allocated = r.granted.get(&a.id).copied().unwrap_or(a.budget.allocated);
            a
        })
        .collect();
    for line in tree_text(&as_granted).lines() {
        let _ = writeln!(t, "  {line}");
    }
    let _ = writeln!(t, "\nMissions:");
    for m in &r.missions {
        let _ = writeln!(
            t,
            "  {:<34} phase {:>2}  {:<9}  by {:<22} {:>5} ms  quality {}  tokens {}/{}  attempts {}",
            m.name,
            m.phase,
            m.status.to_string(),
            m.agent.as_ref().map_or("-".into(), ToString::to_string),
            m.ran_ms.map_or("-".into(), |v| v.to_string()),
            m.quality.map_or("-".into(), |q| format!("{q:.2}")),
            m.tokens_used,
            m.token_budget,
            m.attempts
        );
    }
    let by = |map: &BTreeMap<String, u64>| {
        map.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(
        t,
        "\nMessages sent in this run: {}\n  by type:     {}\n  by priority: {}",
        r.messages.total,
        by(&r.messages.by_type),
        by(&r.messages.by_priority)
    );
    let _ = writeln!(
        t,
        "\nDecisions (audit log, {} records, chain {}):",
        r.audit.records,
        if r.audit.ok { "intact" } else { "BROKEN" }
    );
    for d in &r.decisions {
        // The seed's reply-then-record_decision is one decision in two audit records.
        let what = match d.kind {
            AuditKind::DecisionCompleted => "completed (rationale, impact)",
            AuditKind::DecisionOverride => "overridden",
            _ => "decided",
        };
        let _ = writeln!(
            t,
            "  #{:<4} {} {what} for {}: {:?}",
            d.audit_seq, d.approver, d.asker, d.choice
        );
    }
    let _ = writeln!(
        t,
        "\nTokens: {} used against mission budgets of {}; each agent's unused budget went back to its parent",
        r.tokens_used, r.mission_budgets
    );
    t
}
