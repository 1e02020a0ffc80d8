//! The spawner's rules, one test per rule, against the pure registry: the shared world
//! here, the tests by rule in the files below (boundaries and figures found by mutation
//! testing pin one comparison each).

use super::*;
use crate::agent::registry::Efficiency;
use crate::phase::{Phase, PhaseScope};
use crate::{AgentId, Effect, MissionId, Principal, Rejection, ReservationId, Timestamp};

const T0: Timestamp = Timestamp(1_000_000);

pub(crate) struct World {
    pub(crate) reg: Registry,
    pub(crate) now: Timestamp,
}

pub(crate) fn id(s: &str) -> AgentId {
    AgentId::new(s).unwrap()
}

fn agent(s: &str) -> Principal {
    Principal::Agent(id(s))
}

impl World {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            reg: Registry::new(limits, T0),
            now: T0,
        }
    }

    pub(crate) fn safe() -> Self {
        Self::new(Mode::Safe.limits())
    }

    /// Decides and applies; returns the events.
    pub(crate) fn run(&mut self, by: &Principal, cmd: Command) -> Result<Vec<Event>, Rejection> {
        let effects = self.reg.decide(by, &cmd, self.now)?;
        let mut events = Vec::new();
        for e in effects {
            match e {
                Effect::Save(r) => self.reg.apply(r),
                Effect::Emit(ev) => events.push(ev),
                Effect::Audit(_) => {}
            }
        }
        Ok(events)
    }

    pub(crate) fn spawn(
        &mut self,
        by: &Principal,
        name: &str,
        role: Role,
        parent: Option<&str>,
        budget: u64,
    ) -> Result<Vec<Event>, Rejection> {
        self.run(
            by,
            Command::Spawn(SpawnRequest {
                id: id(name),
                role,
                capabilities: vec![],
                parent_id: parent.map(id),
                token_budget: budget,
                authority: None,
                public_key: None,
            }),
        )
    }

    pub(crate) fn get(&self, name: &str) -> &AgentProfile {
        self.reg.agent(&id(name)).unwrap()
    }

    pub(crate) fn heartbeat(&mut self, name: &str) {
        self.run(
            &agent(name),
            Command::Heartbeat {
                agent: id(name),
                context: None,
            },
        )
        .unwrap();
    }

    /// Pool free + every agent's allocated: must always equal the pool total.
    pub(crate) fn conserved(&self) -> bool {
        let held: u64 = self.reg.agents().map(|a| a.budget.allocated).sum();
        self.reg.pool().free + held == self.reg.pool().total
    }
}

fn orchestrated() -> World {
    let mut w = World::safe();
    w.spawn(
        &Principal::Operator,
        "orch",
        Role::Orchestrator,
        None,
        100_000,
    )
    .unwrap();
    w.heartbeat("orch");
    w
}

mod allocation;
mod authorize;
mod budget;
mod caps;
mod liveness;
mod records;
mod scaling;
mod spawn;
mod stats;
mod terminate;
