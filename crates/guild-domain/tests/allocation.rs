//! The allocation rule (`guild_domain::allocation`) as a model of the protocol the
//! services run across spawner-svc and two mission-svc instances: assignments (a dry run
//! on the instance's view, the spawner's allocation, the start appended on the journal's
//! latest state, released again if refused) and completions (appended on the latest state,
//! then the agent the change freed is released), interleaved at random, each possibly
//! crashing between any two of its steps, with each instance's view of the board lagging
//! behind the journal. Whatever happens: a mission ACTIVE on an agent is always held by
//! it, and once the reconciler has looked after the grace period, no agent holds a
//! mission that is not running on it.

#![allow(clippy::unwrap_used)] // Test helpers: a failure here is a test failure.

use guild_domain::agent::{Command as A, Limits, Registry, Role, SpawnRequest};
use guild_domain::mission::{Board, BoardConfig, Command as M, Mission, MissionStatus, NewMission};
use guild_domain::{AgentId, Effect, MissionId, Phase, Principal, Timestamp, allocation};
use proptest::prelude::*;

const AGENTS: usize = 3;
const MISSIONS: usize = 4;
const INSTANCES: usize = 2;
const GRACE_MS: u64 = 5_000;

fn aid(i: usize) -> AgentId {
    AgentId::new(format!("a{i}")).unwrap()
}

fn mid(i: usize) -> MissionId {
    MissionId::new(format!("m{i}")).unwrap()
}

/// What an instance has folded: the board as it stands now (a replay of its missions).
fn copy(board: &Board) -> Board {
    let mut view = Board::new(BoardConfig::default());
    for m in board.missions() {
        view.apply(m.clone());
    }
    view
}

/// The two journals, and what each mission-svc instance has folded of the board.
struct World {
    now: Timestamp,
    registry: Registry,
    board: Board,
    views: Vec<Board>,
}

impl World {
    fn new() -> Self {
        let now = Timestamp::from_millis(1_000);
        let mut registry = Registry::new(
            Limits {
                max_agents: 10,
                token_pool: 1_000_000,
                max_parallel_groups: None,
            },
            now,
        );
        let mut board = Board::new(BoardConfig::default());
        let w = |registry: &mut Registry, c: A| {
            for e in registry.decide(&Principal::Operator, &c, now).unwrap() {
                if let Effect::Save(r) = e {
                    registry.apply(r);
                }
            }
        };
        for i in 0..AGENTS {
            w(
                &mut registry,
                A::Spawn(SpawnRequest::new(aid(i), Role::Developer, 1_000)),
            );
            w(
                &mut registry,
                A::Heartbeat {
                    agent: aid(i),
                    context: None,
                },
            );
        }
        for i in 0..MISSIONS {
            let create = M::Create(NewMission::new(mid(i), format!("m{i}"), Phase::DEVELOPMENT));
            for e in board.decide(&Principal::Operator, &create, now).unwrap() {
                if let Effect::Save(m) = e {
                    board.apply(m);
                }
            }
        }
        let views = (0..INSTANCES).map(|_| copy(&board)).collect();
        Self {
            now,
            registry,
            board,
            views,
        }
    }

    fn tick(&mut self) {
        self.now = Timestamp::from_millis(self.now.as_millis() + 700);
    }

    fn spawner(&mut self, c: A) -> bool {
        match self.registry.decide(&Principal::Operator, &c, self.now) {
            Ok(effects) => {
                for e in effects {
                    if let Effect::Save(r) = e {
                        self.registry.apply(r);
                    }
                }
                true
            }
            Err(_) => false,
        }
    }

    /// A conditional append: decided on the journal's latest state. Returns the saved
    /// missions with each one's state before, as the change was decided on.
    fn append(&mut self, c: &M) -> Option<Vec<(Option<Mission>, Mission)>> {
        let effects = self.board.decide(&Principal::Operator, c, self.now).ok()?;
        let mut saved = Vec::new();
        for e in effects {
            if let Effect::Save(m) = e {
                saved.push((self.board.mission(&m.id).cloned(), m));
            }
        }
        for (_, m) in &saved {
            self.board.apply(m.clone());
        }
        Some(saved)
    }

    /// Releases `agent`'s allocation to `mission`: the one made at `allocated_at` only,
    /// when given.
    fn release(&mut self, agent: &AgentId, mission: &MissionId, allocated_at: Option<Timestamp>) {
        self.spawner(A::ReleaseTask {
            agent: agent.clone(),
            task: Some(mission.clone()),
            allocated_at,
            reason: "released".into(),
        });
    }

    fn reconcile(&mut self) {
        for (agent, mission) in allocation::stray(&self.registry, &self.board, self.now, GRACE_MS) {
            let allocated_at = self.registry.agent(&agent).and_then(|a| a.assigned_at);
            self.release(&agent, &mission, allocated_at);
        }
        self.repair_unheld();
    }

    fn repair_unheld(&mut self) {
        for (agent, mission) in allocation::unheld(&self.registry, &self.board, self.now, GRACE_MS)
        {
            let given_back = self.spawner(A::AllocateTask {
                agent,
                task: mission.clone(),
                phase: Some(Phase::DEVELOPMENT),
            });
            if !given_back {
                self.append(&M::Fail {
                    mission,
                    reason: "its agent holds another task".into(),
                    retry: true,
                    agent_lost: true,
                });
            }
        }
    }

    /// Every ACTIVE mission's agent holds it.
    fn check_active_is_held(&self) -> Result<(), TestCaseError> {
        for m in self.board.missions() {
            if m.status == MissionStatus::Active {
                let agent = m.assigned_agent_id.as_ref().unwrap();
                let held = self
                    .registry
                    .agent(agent)
                    .unwrap()
                    .assigned_task_id
                    .as_ref();
                prop_assert_eq!(
                    held,
                    Some(&m.id),
                    "{} ACTIVE on {} not holding it",
                    m.id,
                    agent
                );
            }
        }
        Ok(())
    }
}

/// One client request, in the steps the services take for it.
#[derive(Clone, Debug)]
enum Request {
    Assign {
        instance: usize,
        mission: usize,
        agent: usize,
    },
    Complete {
        instance: usize,
        mission: usize,
    },
}

/// A request in progress: how far it got, and what it carries between steps.
#[derive(Debug)]
struct Running {
    request: Request,
    step: usize,
    /// The allocation this request made (its `assigned_at`).
    allocated_at: Option<Timestamp>,
    freed: Vec<(AgentId, MissionId)>,
}

impl Running {
    /// Takes the next step; returns false when the request is done.
    fn step(&mut self, w: &mut World) -> bool {
        let s = self.step;
        self.step += 1;
        match self.request.clone() {
            Request::Assign {
                instance,
                mission,
                agent,
            } => {
                let (m, a) = (mid(mission), aid(agent));
                let start = M::Start {
                    mission: m.clone(),
                    agent: a.clone(),
                };
                match s {
                    // `assign` syncs its view, then dry-runs the start on it.
                    0 => {
                        w.views[instance] = copy(&w.board);
                        w.views[instance]
                            .decide(&Principal::Operator, &start, w.now)
                            .is_ok()
                    }
                    1 => {
                        let allocated = w.spawner(A::AllocateTask {
                            agent: a.clone(),
                            task: m,
                            phase: Some(Phase::DEVELOPMENT),
                        });
                        // The allocation's time comes back in the spawner's reply.
                        self.allocated_at = w.registry.agent(&a).and_then(|p| p.assigned_at);
                        allocated
                    }
                    2 => {
                        // Its own allocation's deadline, and undone by its own identity.
                        let in_time = self
                            .allocated_at
                            .is_some_and(|t| allocation::start_in_time(t, w.now, GRACE_MS));
                        if !in_time || w.append(&start).is_none() {
                            w.release(&a, &m, self.allocated_at);
                        }
                        false
                    }
                    _ => false,
                }
            }
            Request::Complete { instance, mission } => {
                let m = mid(mission);
                match s {
                    0 => {
                        let complete = M::Complete {
                            mission: m,
                            output: serde_json::json!({}),
                            quality_score: None,
                        };
                        let Some(saved) = w.append(&complete) else {
                            return false;
                        };
                        // The instance folds its own append; what it had folded before
                        // (perhaps not the start) is not what decides.
                        w.views[instance] = copy(&w.board);
                        // Freed as the change was decided, never from a lagging view.
                        self.freed = saved
                            .iter()
                            .filter_map(|(before, after)| {
                                allocation::freed_by(before.as_ref(), after)
                                    .map(|a| (a, after.id.clone()))
                            })
                            .collect();
                        true
                    }
                    1 => {
                        for (a, m) in std::mem::take(&mut self.freed) {
                            w.release(&a, &m, None);
                        }
                        false
                    }
                    _ => false,
                }
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Begin(Request),
    /// Advance the n-th request in progress by one step.
    Advance(usize),
    /// The n-th request's instance crashes: it takes no further step.
    Crash(usize),
    /// An instance folds the journal.
    Sync(usize),
    Reconcile,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..INSTANCES, 0..MISSIONS, 0..AGENTS).prop_map(|(instance, mission, agent)| {
            Op::Begin(Request::Assign {
                instance,
                mission,
                agent,
            })
        }),
        (0..INSTANCES, 0..MISSIONS)
            .prop_map(|(instance, mission)| Op::Begin(Request::Complete { instance, mission })),
        (0..4usize).prop_map(Op::Advance),
        (0..4usize).prop_map(Op::Advance),
        (0..4usize).prop_map(Op::Advance),
        (0..4usize).prop_map(Op::Crash),
        (0..INSTANCES).prop_map(Op::Sync),
        Just(Op::Reconcile),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn no_allocation_outlives_its_mission(ops in proptest::collection::vec(op(), 1..60)) {
        let mut w = World::new();
        let mut running: Vec<Running> = Vec::new();
        for op in ops {
            w.tick();
            match op {
                Op::Begin(request) => running.push(Running {
                    request,
                    step: 0,
                    allocated_at: None,
                    freed: Vec::new(),
                }),
                Op::Advance(n) if !running.is_empty() => {
                    let i = n % running.len();
                    if !running[i].step(&mut w) {
                        running.remove(i);
                    }
                }
                Op::Crash(n) if !running.is_empty() => {
                    running.remove(n % running.len());
                }
                Op::Sync(i) => w.views[i] = copy(&w.board),
                Op::Reconcile => w.reconcile(),
                _ => {}
            }
            w.check_active_is_held()?;
        }
        // Whatever is still in flight crashes; past the grace period the reconciler looks.
        drop(running);
        w.now = Timestamp::from_millis(
            w.now.as_millis() + allocation::release_after(GRACE_MS) + 1,
        );
        w.reconcile();
        w.check_active_is_held()?;
        for a in w.registry.agents() {
            if let Some(task) = &a.assigned_task_id {
                prop_assert!(
                    allocation::runs_on(&w.board, task, &a.id),
                    "{} still holds {} after reconciling", a.id, task
                );
            }
        }
    }
}

/// The defect this rule fixes, as it happened: an instance whose view had not folded the
/// start completed the mission; judged on its view (READY before), nothing was freed.
#[test]
fn a_completion_decided_on_a_stale_view_still_frees_the_agent() {
    let mut w = World::new();
    let stale = w.views[1].mission(&mid(0)).cloned();
    let mut assign = Running {
        request: Request::Assign {
            instance: 0,
            mission: 0,
            agent: 0,
        },
        step: 0,
        allocated_at: None,
        freed: Vec::new(),
    };
    while assign.step(&mut w) {}
    let complete = M::Complete {
        mission: mid(0),
        output: serde_json::json!({}),
        quality_score: None,
    };
    let saved = w.append(&complete).unwrap();
    let (decided_before, after) = &saved[0];
    assert_eq!(
        allocation::freed_by(stale.as_ref(), after),
        None,
        "the old way"
    );
    assert_eq!(
        allocation::freed_by(decided_before.as_ref(), after),
        Some(aid(0))
    );
}

/// A heartbeating agent is no proof its allocation is meant: judged by its own age.
#[test]
fn a_stray_allocation_is_released_however_often_its_agent_heartbeats() {
    let mut w = World::new();
    assert!(w.spawner(A::AllocateTask {
        agent: aid(1),
        task: mid(1),
        phase: Some(Phase::DEVELOPMENT),
    }));
    for _ in 0..20 {
        w.tick();
        w.spawner(A::Heartbeat {
            agent: aid(1),
            context: None,
        });
    }
    let stray = allocation::stray(&w.registry, &w.board, w.now, GRACE_MS);
    assert_eq!(stray, vec![(aid(1), mid(1))]);
    assert!(20 * 700 > allocation::release_after(GRACE_MS));
    // Younger than the grace period, it may be a start on its way.
    assert!(allocation::stray(&w.registry, &w.board, w.now, 60_000).is_empty());
}

/// A start appended after a stall longer than the grace periods, on an agent released in
/// the meantime: the mission goes back to its agent when it is free.
#[test]
fn a_mission_active_on_an_agent_that_let_go_of_it_is_given_back() {
    let mut w = World::new();
    assert!(w.spawner(A::AllocateTask {
        agent: aid(2),
        task: mid(2),
        phase: Some(Phase::DEVELOPMENT),
    }));
    w.append(&M::Start {
        mission: mid(2),
        agent: aid(2),
    })
    .unwrap();
    w.release(&aid(2), &mid(2), None);
    assert!(
        allocation::unheld(&w.registry, &w.board, w.now, GRACE_MS).is_empty(),
        "too soon"
    );
    w.now = Timestamp::from_millis(w.now.as_millis() + allocation::release_after(GRACE_MS) + 1);
    assert_eq!(
        allocation::unheld(&w.registry, &w.board, w.now, GRACE_MS),
        vec![(aid(2), mid(2))]
    );
    w.reconcile();
    w.check_active_is_held().unwrap();
}
