//! Invariants that must hold under any sequence of commands (STYLE §5.2):
//! only legal transitions, an acyclic graph, sound parallel groups, conserved budgets,
//! child authority within the parent's, and serde round trips.

#![allow(clippy::unwrap_used)] // Test helpers: a failure here is a test failure.

use std::collections::{BTreeMap, BTreeSet};

use guild_domain::agent::{self, AgentProfile, AgentStatus, Limits, Record, Registry};
use guild_domain::mission::{self, Board, BoardConfig, MissionStatus, Severity};
use guild_domain::{AgentId, Effect, MissionId, Phase, Principal, Timestamp};
use proptest::prelude::*;

/// The workloads and checks, shared with `fuzz.rs`.
mod workload;

use workload::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn spawner_invariants_hold_under_any_workload(ops in proptest::collection::vec(agent_op(), 1..80)) {
        let limits = Limits { max_agents: 6, token_pool: 200_000, max_parallel_groups: None };
        let mut reg = Registry::new(limits, Timestamp(0));
        for (step, op) in ops.iter().enumerate() {
            let now = Timestamp(step as u64 * 1_000);
            let (by, cmd) = to_command(&reg, op, reg.agents().count());
            let before: BTreeMap<AgentId, AgentStatus> = reg.agents().map(|a| (a.id.clone(), a.status)).collect();
            let Ok(effects) = reg.decide(&by, &cmd, now) else { continue };
            for e in effects {
                match e {
                    Effect::Save(Record::Agent(a)) => {
                        if let Some(old) = before.get(&a.id) {
                            prop_assert!(*old == a.status || old.can_become(a.status),
                                "illegal {} -> {} for {}", old, a.status, a.id);
                        }
                        reg.apply(Record::Agent(a));
                    }
                    Effect::Save(r) => reg.apply(r),
                    Effect::Emit(agent::Event::StatusChanged { from, to, .. }) => {
                        prop_assert!(from.can_become(to), "event {} -> {}", from, to);
                    }
                    Effect::Audit(a) => {
                        // Only a governance event is audited, as its own kind.
                        let kept = matches!(&a.data, guild_domain::audit::AuditData::Spawner(e) if e.audit_kind() == Some(a.kind));
                        prop_assert!(kept, "audit {:?}", a);
                    }
                    Effect::Emit(_) => {}
                }
            }
            check_registry(&reg)?;
        }
    }

    #[test]
    fn records_round_trip_through_json(ops in proptest::collection::vec(agent_op(), 1..30)) {
        let mut reg = Registry::new(Limits { max_agents: 6, token_pool: 200_000, max_parallel_groups: None }, Timestamp(0));
        for op in &ops {
            let (by, cmd) = to_command(&reg, op, reg.agents().count());
            if let Ok(effects) = reg.decide(&by, &cmd, Timestamp(7)) {
                for e in effects {
                    if let Effect::Save(r) = e {
                        let json = serde_json::to_string(&r).unwrap();
                        let back: Record = serde_json::from_str(&json).unwrap();
                        prop_assert_eq!(&back, &r);
                        reg.apply(r);
                    }
                }
            }
        }
        let profiles: Vec<&AgentProfile> = reg.agents().collect();
        let json = serde_json::to_string(&profiles).unwrap();
        let back: Vec<AgentProfile> = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back.len(), profiles.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mission_invariants_hold_under_any_workload(ops in proptest::collection::vec(mission_op(), 1..120)) {
        let mut board = Board::new(BoardConfig::default());
        for (step, op) in ops.iter().enumerate() {
            let now = Timestamp(step as u64);
            let before: BTreeMap<MissionId, MissionStatus> = board.missions().map(|m| (m.id.clone(), m.status)).collect();
            let complete_before: Vec<bool> = Phase::all().map(|p| board.phase_complete(p)).collect();
            let Ok(effects) = board.decide(&Principal::Operator, &to_mission_command(&board, op), now) else { continue };
            let mut phases_completed = BTreeSet::new();
            for e in effects {
                match e {
                    Effect::Save(m) => {
                        if let Some(old) = before.get(&m.id) {
                            // One decision may take a mission through READY on its way (a
                            // failed attempt goes ACTIVE -> READY); every step is in the table.
                            prop_assert!(*old == m.status || old.can_become(m.status) || (old.can_become(MissionStatus::Ready) && MissionStatus::Ready.can_become(m.status)),
                                "illegal {} -> {} for {}", old, m.status, m.id);
                        }
                        board.apply(m);
                    }
                    Effect::Emit(mission::Event::StatusChanged { from, to, .. }) => {
                        prop_assert!(from.can_become(to), "event {} -> {}", from, to);
                    }
                    Effect::Emit(mission::Event::PhaseCompleted { phase, .. }) => {
                        prop_assert!(phases_completed.insert(phase), "phase {} completed twice", phase);
                    }
                    Effect::Audit(a) => {
                        let kept = matches!(&a.data, guild_domain::audit::AuditData::Mission(e) if e.is_governance());
                        prop_assert!(kept && a.kind == guild_domain::audit::AuditKind::Mission, "audit {:?}", a);
                    }
                    Effect::Emit(_) => {}
                }
            }
            prop_assert!(acyclic(&board), "cycle after {:?}", op);
            // The sync point: an event exactly when a phase becomes complete.
            for (p, was) in Phase::all().zip(complete_before) {
                let now_complete = board.phase_complete(p);
                prop_assert_eq!(phases_completed.contains(&p), !was && now_complete, "phase {} after {:?}", p, op);
            }
            // Groups: every open mission's dependencies are finished or in an earlier group.
            let groups = board.parallel_groups();
            let group_of: BTreeMap<&MissionId, u32> = groups.iter().flat_map(|g| g.missions.iter().map(move |m| (m, g.index))).collect();
            for g in &groups {
                for id in &g.missions {
                    let m = board.mission(id).unwrap();
                    for d in &m.depends_on {
                        let Some(dep) = board.mission(&d.mission_id) else { continue };
                        if d.severity == Severity::Hard {
                            let ok = dep.outcome() == Some(MissionStatus::Completed)
                                || group_of.get(&d.mission_id).is_some_and(|&i| i < g.index);
                            prop_assert!(ok, "{} in group {} waits on {} ({})", id, g.index, d.mission_id, dep.status);
                        }
                    }
                }
            }
            // Exactly the open missions, each group highest priority first, then by id.
            let listed: BTreeSet<&MissionId> = group_of.keys().copied().collect();
            let open: BTreeSet<&MissionId> = board.missions().filter(|m| m.status.is_open()).map(|m| &m.id).collect();
            prop_assert_eq!(listed, open);
            for g in &groups {
                let key = |id: &MissionId| (std::cmp::Reverse(board.mission(id).unwrap().priority), id.clone());
                prop_assert!(g.missions.windows(2).all(|w| key(&w[0]) < key(&w[1])), "group {} out of order", g.index);
            }
            // A limited view is the full one cut after `limit` missions, in the same order.
            let total: usize = groups.iter().map(|g| g.missions.len()).sum();
            for limit in [0, 1, 3, total.saturating_sub(1), total + 1] {
                let (shown, all) = board.parallel_groups_within(limit);
                prop_assert_eq!(all, total);
                let cut: Vec<(u32, &MissionId)> = groups.iter().flat_map(|g| g.missions.iter().map(move |m| (g.index, m))).take(limit).collect();
                let got: Vec<(u32, &MissionId)> = shown.iter().flat_map(|g| g.missions.iter().map(move |m| (g.index, m))).collect();
                prop_assert_eq!(got, cut, "limit {}", limit);
            }
            // READY exactly when nothing holds it back.
            for m in board.missions() {
                if m.status == MissionStatus::Ready || m.status == MissionStatus::Pending {
                    prop_assert_eq!(m.status == MissionStatus::Ready, m.waiting_on.is_empty(), "{}", m.id);
                }
                prop_assert!(m.attempts <= m.max_retries + 1);
            }
        }
        // A snapshot: the records are every mission as it is now, and folded into an empty
        // board in their order they rebuild the same groups.
        let records = board.records();
        prop_assert_eq!(records.len(), board.len());
        let mut rebuilt = Board::new(BoardConfig::default());
        for r in records {
            prop_assert_eq!(board.mission(&r.id), Some(r.as_ref()));
            rebuilt.apply((*r).clone());
        }
        prop_assert_eq!(rebuilt.parallel_groups(), board.parallel_groups());
    }
}
