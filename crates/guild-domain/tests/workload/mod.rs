//! The random workloads the domain's property tests and fuzz target share: spawner and
//! mission operations as proptest strategies, turned into commands against the current
//! state, and the invariant checks run after every step. `properties.rs` runs them with a
//! fixed case count; `fuzz.rs` runs them for `GUILD_FUZZ_SECONDS`, mixed, by arbitrary
//! principals.

#![allow(dead_code)] // Each test file uses its share.

use std::collections::{BTreeMap, BTreeSet};

use guild_domain::agent::{
    AgentProfile, AgentStatus, Authority, Command as A, Registry, Role, ScalingPolicy, SpawnRequest,
};
use guild_domain::mission::{Board, Command as M, Dependency, MissionStatus, NewMission, Severity};
use guild_domain::{AgentId, MissionId, Phase, PhaseScope, Principal, ReservationId};
use proptest::prelude::*;

pub(crate) const AGENTS: usize = 8;
pub(crate) const MISSIONS: usize = 10;

pub(crate) fn aid(i: usize) -> AgentId {
    AgentId::new(format!("a{i}")).unwrap()
}

pub(crate) fn mid(i: usize) -> MissionId {
    MissionId::new(format!("m{i}")).unwrap()
}

/// One step of a random spawner workload; indices pick agents.
#[derive(Clone, Debug)]
pub(crate) enum AgentOp {
    Spawn {
        child: usize,
        parent: Option<usize>,
        budget: u64,
        narrow: bool,
    },
    Heartbeat(usize),
    Allocate(usize),
    Release(usize),
    Pause(usize, bool),
    Resume(usize, bool),
    Terminate {
        agent: usize,
        subtree: bool,
        failed: bool,
    },
    Reserve {
        agent: usize,
        amount: u64,
        rid: u8,
    },
    Commit {
        agent: usize,
        rid: u8,
        used: u64,
    },
    ReleaseReservation {
        agent: usize,
        rid: u8,
    },
    Reallocate {
        from: usize,
        to: usize,
        amount: u64,
    },
    SetStatus(usize, u8),
    Expire(u64),
    /// A developer scaling policy for an agent, by the operator. Its maximum follows
    /// from the owner's id, so a policy set again never lowers it below the members it
    /// has.
    SetScaling {
        owner: usize,
        budget: u64,
    },
    /// A policy applied to a load.
    Autoscale {
        owner: usize,
        ready: u32,
    },
}

pub(crate) fn agent_op() -> impl Strategy<Value = AgentOp> {
    let i = 0..AGENTS;
    prop_oneof![
        3 => (i.clone(), proptest::option::of(0..AGENTS), 0u64..60_000, any::<bool>())
            .prop_map(|(child, parent, budget, narrow)| AgentOp::Spawn { child, parent, budget, narrow }),
        2 => i.clone().prop_map(AgentOp::Heartbeat),
        1 => i.clone().prop_map(AgentOp::Allocate),
        1 => i.clone().prop_map(AgentOp::Release),
        1 => (i.clone(), any::<bool>()).prop_map(|(a, s)| AgentOp::Pause(a, s)),
        1 => (i.clone(), any::<bool>()).prop_map(|(a, s)| AgentOp::Resume(a, s)),
        1 => (i.clone(), any::<bool>(), any::<bool>())
            .prop_map(|(agent, subtree, failed)| AgentOp::Terminate { agent, subtree, failed }),
        2 => (i.clone(), 0u64..20_000, 0u8..3).prop_map(|(agent, amount, rid)| AgentOp::Reserve { agent, amount, rid }),
        2 => (i.clone(), 0u8..3, 0u64..25_000).prop_map(|(agent, rid, used)| AgentOp::Commit { agent, rid, used }),
        1 => (i.clone(), 0u8..3).prop_map(|(agent, rid)| AgentOp::ReleaseReservation { agent, rid }),
        1 => (i.clone(), i.clone(), 0u64..10_000).prop_map(|(from, to, amount)| AgentOp::Reallocate { from, to, amount }),
        1 => (i.clone(), 0u8..7).prop_map(|(a, s)| AgentOp::SetStatus(a, s)),
        1 => (0u64..5_000).prop_map(AgentOp::Expire),
        1 => (i.clone(), 0u64..20_000).prop_map(|(owner, budget)| AgentOp::SetScaling { owner, budget }),
        2 => (i, 0u32..12).prop_map(|(owner, ready)| AgentOp::Autoscale { owner, ready }),
    ]
}

/// Turns an op into a command. Indices pick among agents that exist (live ones first),
/// so most generated steps are meaningful rather than refused as unknown.
pub(crate) fn to_command(reg: &Registry, op: &AgentOp, fresh: usize) -> (Principal, A) {
    let mut known: Vec<&AgentProfile> = reg.agents().collect();
    known.sort_by_key(|a| (!a.is_live(), a.id.clone()));
    let pick = |i: usize| {
        known
            .get(i % known.len().max(1))
            .map_or_else(|| aid(i), |a| a.id.clone())
    };
    let boss = |i: usize| {
        reg.agent(&pick(i))
            .and_then(|a| a.parent_id.clone())
            .map_or(Principal::Operator, Principal::Agent)
    };
    let aid = |i: usize| pick(i);
    let rid = |r: u8| ReservationId::new(format!("r{r}")).unwrap();
    match op {
        AgentOp::Spawn {
            child,
            parent,
            budget,
            narrow,
        } => {
            let child = &(fresh + child % 2);
            let authority = narrow.then(|| {
                let mut a = parent
                    .and_then(|p| reg.agent(&aid(p)).map(|p| p.authority.clone()))
                    .unwrap_or_else(|| Authority::default_for(&Role::Developer));
                a.max_parallel_agents = a.max_parallel_agents.saturating_sub(1);
                a.scoped_to_phases = PhaseScope::Only([Phase::DEVELOPMENT].into());
                // Spawn caps: one generation less than the parent's, or small ones.
                a.max_depth = Some(a.max_depth.map_or(1, |d| d.saturating_sub(1)));
                a.max_descendants = Some(a.max_descendants.unwrap_or(1));
                a.max_spawns_per_minute = Some(a.max_spawns_per_minute.unwrap_or(2));
                a
            });
            let by = parent.map_or(Principal::Operator, |p| Principal::Agent(aid(p)));
            (
                by,
                A::Spawn(SpawnRequest {
                    id: AgentId::new(format!("a{child}")).unwrap(),
                    role: if (*child).is_multiple_of(3) {
                        Role::Orchestrator
                    } else {
                        Role::Developer
                    },
                    capabilities: vec![],
                    parent_id: parent.map(aid),
                    token_budget: *budget,
                    authority,
                    public_key: None,
                }),
            )
        }
        AgentOp::Heartbeat(a) => (
            Principal::Agent(aid(*a)),
            A::Heartbeat {
                agent: aid(*a),
                context: None,
            },
        ),
        AgentOp::Allocate(a) => (
            boss(*a),
            A::AllocateTask {
                agent: aid(*a),
                task: mid(*a % MISSIONS),
                phase: None,
            },
        ),
        AgentOp::Release(a) => (
            boss(*a),
            A::ReleaseTask {
                agent: aid(*a),
                task: None,
                allocated_at: None,
                reason: "done".into(),
            },
        ),
        AgentOp::Pause(a, s) => (
            Principal::Operator,
            A::Pause {
                agent: aid(*a),
                reason: "p".into(),
                subtree: *s,
            },
        ),
        AgentOp::Resume(a, s) => (
            Principal::Operator,
            A::Resume {
                agent: aid(*a),
                subtree: *s,
            },
        ),
        AgentOp::Terminate {
            agent,
            subtree,
            failed,
        } => (
            boss(*agent),
            A::Terminate {
                agent: aid(*agent),
                subtree: *subtree,
                failed: *failed,
                reason: None,
            },
        ),
        AgentOp::Reserve {
            agent,
            amount,
            rid: r,
        } => (
            Principal::Agent(aid(*agent)),
            A::Reserve {
                agent: aid(*agent),
                reservation: rid(*r),
                amount: *amount,
                mission: (*r == 0).then(|| mid(0)),
                mission_budget: Some(30_000),
            },
        ),
        AgentOp::Commit {
            agent,
            rid: r,
            used,
        } => (
            Principal::Agent(aid(*agent)),
            A::Commit {
                agent: aid(*agent),
                reservation: rid(*r),
                used: guild_domain::agent::Usage::total(*used),
            },
        ),
        AgentOp::ReleaseReservation { agent, rid: r } => (
            Principal::Agent(aid(*agent)),
            A::Release {
                agent: aid(*agent),
                reservation: rid(*r),
            },
        ),
        AgentOp::Reallocate { from, to, amount } => (
            Principal::Operator,
            A::Reallocate {
                from: aid(*from),
                to: aid(*to),
                amount: *amount,
            },
        ),
        AgentOp::SetStatus(a, s) => (
            Principal::Agent(aid(*a)),
            A::SetStatus {
                agent: aid(*a),
                status: AgentStatus::ALL[*s as usize],
                reason: Some("r".into()),
            },
        ),
        AgentOp::Expire(w) => (
            Principal::Operator,
            A::ExpireHeartbeats {
                window_ms: *w,
                first_within_ms: *w / 2,
            },
        ),
        AgentOp::SetScaling { owner, budget } => {
            let owner = aid(*owner);
            let max = 1 + owner.as_str().bytes().map(u32::from).sum::<u32>() % 5;
            let mut p = ScalingPolicy::new(owner, Role::Developer, max, *budget);
            p.min_agents = max / 2;
            p.cooldown_ms = guild_domain::agent::MIN_SCALING_MS;
            p.idle_ttl_ms = guild_domain::agent::MIN_SCALING_MS;
            (Principal::Operator, A::SetScalingPolicy(p))
        }
        AgentOp::Autoscale { owner, ready } => (
            Principal::Service(guild_domain::Service::Spawner),
            A::Autoscale {
                owner: aid(*owner),
                role: Role::Developer,
                ready: *ready,
                awaited: vec![aid(*ready as usize)],
            },
        ),
    }
}

pub(crate) fn check_registry(reg: &Registry) -> Result<(), TestCaseError> {
    let pool = reg.pool();
    let held: u64 = reg.agents().map(|a| a.budget.allocated).sum();
    prop_assert_eq!(pool.free + held, pool.total, "tokens conserved");
    let live = reg.agents().filter(|a| a.is_live()).count() as u32;
    prop_assert_eq!(pool.live_agents, live, "live count");
    prop_assert!(live <= reg.limits().max_agents);
    for a in reg.agents() {
        prop_assert!(
            a.budget.used + a.budget.reserved <= a.budget.allocated,
            "{} overspent",
            a.id
        );
        let reserved: u64 = a.reservations.values().map(|r| r.amount).sum();
        prop_assert_eq!(reserved, a.budget.reserved);
        prop_assert_eq!(
            a.status == AgentStatus::Working,
            a.assigned_task_id.is_some() && a.status != AgentStatus::Blocked
        );
        if let Some(p) = a.parent_id.as_ref().and_then(|p| reg.agent(p)) {
            prop_assert!(
                a.authority.check_within(&p.authority).is_ok(),
                "{} exceeds its parent",
                a.id
            );
            let children = reg
                .agents()
                .filter(|c| c.parent_id.as_ref() == Some(&p.id) && c.is_live())
                .count() as u32;
            prop_assert_eq!(p.live_children, children);
            prop_assert!(
                children <= p.authority.max_parallel_agents,
                "{} has {} live children, its authority allows {}",
                p.id,
                children,
                p.authority.max_parallel_agents
            );
        }
        if !a.is_live() {
            prop_assert_eq!(
                a.budget.allocated,
                a.budget.used,
                "ended agents keep only what they spent"
            );
        }
        // Spawn caps (held from the agent's spawn on): every descendant, ended or not,
        // counts; none is deeper than the depth cap; the rate memory stays bounded.
        let below: Vec<u32> = reg
            .agents()
            .filter_map(|d| {
                let k = reg.ancestors(&d.id).position(|x| x.id == a.id)?;
                Some(k as u32 + 1)
            })
            .collect();
        if let Some(max) = a.authority.max_descendants {
            prop_assert_eq!(a.descendants_spawned, below.len() as u32, "{} counts", a.id);
            prop_assert!(below.len() as u32 <= max, "{} over max_descendants", a.id);
        }
        if let Some(max) = a.authority.max_depth {
            prop_assert!(below.iter().all(|k| *k <= max), "{} over max_depth", a.id);
        }
        if let Some(max) = a.authority.max_spawns_per_minute {
            prop_assert!(a.recent_spawns.len() as u32 <= max);
        }
    }
    for l in reg.ledgers() {
        prop_assert!(l.used + l.reserved <= l.budget);
    }
    // A policy never keeps more members than its maximum, and they are its owner's
    // children of its role.
    for s in reg.scalings() {
        let p = &s.policy;
        let members: Vec<_> = reg.members(&p.owner, &p.role).collect();
        prop_assert!(
            members.len() as u32 <= p.max_agents,
            "{} over max_agents",
            p.owner
        );
        for m in members {
            prop_assert!(m.parent_id.as_ref() == Some(&p.owner) && m.role == p.role);
        }
    }
    Ok(())
}

/// One step of a random mission workload.
#[derive(Clone, Debug)]
pub(crate) enum MissionOp {
    Create { id: usize, deps: Vec<(usize, bool)> },
    Depend { id: usize, on: usize, soft: bool },
    Undepend { id: usize, on: usize },
    Start(usize),
    Complete { id: usize, score: u8 },
    Fail { id: usize, retry: bool },
    Cancel(usize),
    Archive(usize),
}

pub(crate) fn mission_op() -> impl Strategy<Value = MissionOp> {
    let i = 0..MISSIONS;
    prop_oneof![
        3 => (i.clone(), proptest::collection::vec((0..MISSIONS, any::<bool>()), 0..3))
            .prop_map(|(id, deps)| MissionOp::Create { id, deps }),
        4 => (i.clone(), i.clone(), any::<bool>()).prop_map(|(id, on, soft)| MissionOp::Depend { id, on, soft }),
        1 => (i.clone(), i.clone()).prop_map(|(id, on)| MissionOp::Undepend { id, on }),
        3 => i.clone().prop_map(MissionOp::Start),
        3 => (i.clone(), 0u8..=10).prop_map(|(id, score)| MissionOp::Complete { id, score }),
        2 => (i.clone(), any::<bool>()).prop_map(|(id, retry)| MissionOp::Fail { id, retry }),
        1 => i.clone().prop_map(MissionOp::Cancel),
        1 => i.prop_map(MissionOp::Archive),
    ]
}

/// Turns an op into a command. Creation takes a fresh id; other indices pick among existing
/// missions, preferring those in a status the command needs.
pub(crate) fn to_mission_command(board: &Board, op: &MissionOp) -> M {
    let sev = |soft: bool| if soft { Severity::Soft } else { Severity::Hard };
    let mut all: Vec<&MissionId> = board.missions().map(|m| &m.id).collect();
    all.sort();
    let among = |i: usize, want: Option<MissionStatus>| {
        let mut c: Vec<&MissionId> = board
            .missions()
            .filter(|m| want.is_none_or(|w| m.status == w))
            .map(|m| &m.id)
            .collect();
        c.sort();
        let c = if c.is_empty() { all.clone() } else { c };
        c.get(i % c.len().max(1))
            .map_or_else(|| mid(i), |m| (*m).clone())
    };
    let any = |i: usize| among(i, None);
    let fresh = board.len();
    let mid = |i: usize| any(i);
    match op {
        MissionOp::Create { id, deps } => {
            let id = &(fresh + id % 2);
            let mut nm = NewMission::new(
                MissionId::new(format!("m{id}")).unwrap(),
                format!("m{id}"),
                Phase::DEVELOPMENT,
            );
            nm.depends_on = deps
                .iter()
                .map(|(d, soft)| Dependency {
                    mission_id: mid(*d),
                    severity: sev(*soft),
                })
                .collect();
            nm.quality_gate = (*id).is_multiple_of(2).then_some(0.5);
            nm.max_retries = 1;
            nm.priority = 1 + (*id % 3) as u8 * 4;
            M::Create(nm)
        }
        MissionOp::Depend { id, on, soft } => {
            let open = if id % 2 == 0 {
                MissionStatus::Pending
            } else {
                MissionStatus::Ready
            };
            M::AddDependency {
                mission: among(*id, Some(open)),
                on: mid(*on),
                severity: sev(*soft),
            }
        }
        MissionOp::Undepend { id, on } => M::RemoveDependency {
            mission: mid(*id),
            on: mid(*on),
        },
        MissionOp::Start(id) => M::Start {
            mission: among(*id, Some(MissionStatus::Ready)),
            agent: aid(0),
        },
        MissionOp::Complete { id, score } => M::Complete {
            mission: among(*id, Some(MissionStatus::Active)),
            output: serde_json::json!({}),
            quality_score: Some(f64::from(*score) / 10.0),
        },
        MissionOp::Fail { id, retry } => M::Fail {
            mission: among(*id, Some(MissionStatus::Active)),
            reason: "x".into(),
            retry: *retry,
            agent_lost: false,
        },
        MissionOp::Cancel(id) => M::Cancel {
            mission: mid(*id),
            reason: "x".into(),
        },
        MissionOp::Archive(id) => M::Archive {
            mission: among(*id, Some(MissionStatus::Completed)),
        },
    }
}

/// An independent cycle check over the saved records (not the board's own graph).
pub(crate) fn acyclic(board: &Board) -> bool {
    let deps: BTreeMap<&MissionId, Vec<&MissionId>> = board
        .missions()
        .filter(|m| m.status != MissionStatus::Archived)
        .map(|m| (&m.id, m.depends_on.iter().map(|d| &d.mission_id).collect()))
        .collect();
    let mut done: BTreeSet<&MissionId> = BTreeSet::new();
    let mut on_path: BTreeSet<&MissionId> = BTreeSet::new();
    fn visit<'a>(
        n: &'a MissionId,
        deps: &BTreeMap<&'a MissionId, Vec<&'a MissionId>>,
        done: &mut BTreeSet<&'a MissionId>,
        on_path: &mut BTreeSet<&'a MissionId>,
    ) -> bool {
        if done.contains(n) {
            return true;
        }
        if !on_path.insert(n) {
            return false;
        }
        for d in deps.get(n).into_iter().flatten() {
            if !visit(d, deps, done, on_path) {
                return false;
            }
        }
        on_path.remove(n);
        done.insert(n);
        true
    }
    deps.keys()
        .all(|n| visit(n, &deps, &mut done, &mut on_path))
}
