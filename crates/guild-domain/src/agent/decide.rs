//! The spawner's rules: each [`Command`] is checked against the registry and answered with
//! the records to save and the events to publish, or a [`Rejection`] that changes nothing.

use std::collections::BTreeMap;

use super::authority::AgentOperation;
use super::authority::SpawnCap;
use super::{
    Action, AgentProfile, AgentStatus, Authority, Budget, BudgetHolder, Command, Event,
    MissionLedger, Pool, Record, Registry, Reservation, Role, Scaling, SpawnRequest,
};
use crate::id::{AgentId, MissionId, Principal};
use crate::time::Timestamp;
use crate::{Effect, Rejection};

/// What a spawner decision asks the service to do.
pub type SpawnerEffect = Effect<Record, Event>;

impl Registry {
    /// Decides `command`, performed by `by` at `now`. Pure: the registry is not changed; the
    /// caller saves the returned records (all or nothing) and then [`apply`](Self::apply)s them.
    pub fn decide(
        &self,
        by: &Principal,
        command: &Command,
        now: Timestamp,
    ) -> Result<Vec<SpawnerEffect>, Rejection> {
        let mut d = Draft::new(self, now);
        match command {
            Command::Spawn(req) => d.spawn(by, req)?,
            Command::AllocateTask { agent, task, phase } => {
                d.check_manage(by, agent, AgentOperation::AllocateTask)?;
                let a = d.live(agent)?;
                if a.status == AgentStatus::Blocked {
                    return Err(paused(a));
                }
                if let Some(held) = &a.assigned_task_id {
                    return Err(Rejection::AgentBusy {
                        id: agent.clone(),
                        task: held.clone(),
                    });
                }
                if !a.status.takes_work() {
                    return Err(Rejection::AgentNotAvailable {
                        id: agent.clone(),
                        status: a.status,
                    });
                }
                if let Some(phase) = phase
                    && !a.authority.scoped_to_phases.contains(*phase)
                {
                    return Err(Rejection::Forbidden {
                        actor: agent.to_string(),
                        action: "work_on_task".into(),
                        reason: format!("phase {phase} is outside scoped_to_phases"),
                    });
                }
                d.set_status(agent, AgentStatus::Working, None)?;
                let a = d.agent_mut(agent)?;
                a.assigned_task_id = Some(task.clone());
                a.free_since = None;
                a.assigned_at = Some(now);
                d.emit(Event::TaskAllocated {
                    agent_id: agent.clone(),
                    task_id: task.clone(),
                    at: now,
                });
            }
            Command::ReleaseTask {
                agent,
                task,
                allocated_at,
                reason,
            } => {
                d.check_manage(by, agent, AgentOperation::ReleaseTask)?;
                let a = d.live(agent)?;
                let held = a
                    .assigned_task_id
                    .clone()
                    .ok_or(Rejection::NoTask { id: agent.clone() })?;
                let another_allocation = allocated_at.is_some() && *allocated_at != a.assigned_at;
                if task.as_ref().is_some_and(|t| t != &held) || another_allocation {
                    return Err(Rejection::TaskMismatch {
                        id: agent.clone(),
                        held,
                    });
                }
                if a.status == AgentStatus::Working {
                    d.set_status(agent, AgentStatus::Active, None)?;
                }
                let a = d.agent_mut(agent)?;
                a.assigned_task_id = None;
                a.assigned_at = None;
                a.free_since = Some(now);
                d.emit(Event::TaskReleased {
                    agent_id: agent.clone(),
                    task_id: held,
                    reason: reason.clone(),
                    agent_lost: false,
                    at: now,
                });
            }
            Command::SetStatus {
                agent,
                status,
                reason,
            } => d.set_status_cmd(by, agent, *status, reason)?,
            Command::Pause {
                agent,
                reason,
                subtree,
            } => {
                d.check_overseer(by, agent, AgentOperation::PauseAgent)?;
                d.live(agent)?;
                for id in d.with_subtree(agent, *subtree) {
                    let a = d.agent(&id)?;
                    if a.is_live() && a.status != AgentStatus::Blocked {
                        d.set_status(&id, AgentStatus::Blocked, Some(reason.clone()))?;
                        d.emit(Event::Paused {
                            agent_id: id,
                            reason: reason.clone(),
                            by: by.clone(),
                            at: now,
                        });
                    }
                }
            }
            Command::Resume { agent, subtree } => {
                d.check_overseer(by, agent, AgentOperation::ResumeAgent)?;
                d.live(agent)?;
                for id in d.with_subtree(agent, *subtree) {
                    let a = d.agent(&id)?;
                    if a.status == AgentStatus::Blocked {
                        let back = if a.assigned_task_id.is_some() {
                            AgentStatus::Working
                        } else if a.last_heartbeat_at.is_some() {
                            AgentStatus::Active
                        } else {
                            AgentStatus::Pending
                        };
                        d.set_status(&id, back, None)?;
                        d.emit(Event::Resumed {
                            agent_id: id,
                            by: by.clone(),
                            at: now,
                        });
                    }
                }
            }
            Command::Terminate {
                agent,
                subtree,
                failed,
                reason,
            } => {
                d.check_action(by, Action::TerminateAgent)?;
                d.check_manage(by, agent, AgentOperation::TerminateAgent)?;
                d.live(agent)?;
                for id in d.with_subtree(agent, *subtree) {
                    d.end(&id, *failed, reason.clone(), by)?;
                }
            }
            Command::Heartbeat { agent, context } => {
                if !by.is_privileged() && by.agent() != Some(agent) {
                    return Err(d.forbidden(
                        by,
                        "heartbeat",
                        Some(agent),
                        "only the agent itself sends its heartbeat",
                    ));
                }
                let a = d.live(agent)?;
                if a.status == AgentStatus::Pending {
                    d.set_status(agent, AgentStatus::Active, None)?;
                }
                let a = d.agent_mut(agent)?;
                a.last_heartbeat_at = Some(now);
                if context.is_some() {
                    a.context_window = *context;
                }
            }
            Command::Reserve {
                agent,
                reservation,
                amount,
                mission,
                mission_budget,
            } => {
                d.check_manage(by, agent, AgentOperation::ReserveTokens)?;
                let a = d.live(agent)?;
                if a.status == AgentStatus::Blocked {
                    return Err(paused(a));
                }
                if *amount == 0 {
                    return Err(Rejection::invalid("amount", "must be at least 1 token"));
                }
                if let Some(held) = a.reservation(reservation) {
                    // A retried reserve (its reply lost) is recognised: the same amount
                    // for the same mission answers as the first did and changes nothing;
                    // anything else under that id is another reservation.
                    if held.amount == *amount && held.mission_id == *mission {
                        return Ok(Vec::new());
                    }
                    return Err(Rejection::ReservationConflict {
                        id: reservation.clone(),
                        held: held.amount,
                        requested: *amount,
                    });
                }
                if a.budget.remaining() < *amount {
                    return Err(Rejection::BudgetExceeded {
                        field: "amount",
                        scope: format!("agent {agent}"),
                        remaining: a.budget.remaining(),
                        requested: *amount,
                    });
                }
                if let Some(m) = mission {
                    let ledger = d.ledger_or_open(m, *mission_budget)?;
                    if ledger.remaining() < *amount {
                        return Err(Rejection::BudgetExceeded {
                            field: "amount",
                            scope: format!("mission {m}"),
                            remaining: ledger.remaining(),
                            requested: *amount,
                        });
                    }
                    d.ledger_mut(m, *mission_budget)?.reserved += amount;
                }
                let a = d.agent_mut(agent)?;
                a.budget.reserved += amount;
                a.reservations.insert(
                    reservation.clone(),
                    Reservation {
                        id: reservation.clone(),
                        amount: *amount,
                        mission_id: mission.clone(),
                        created_at: now,
                    },
                );
            }
            Command::Commit {
                agent,
                reservation,
                used,
            } => {
                d.check_manage(by, agent, AgentOperation::CommitTokens)?;
                let (used, input, output) = used.resolve()?;
                let used = &used;
                let a = d.agent(agent)?;
                let r = a.reservations.get(reservation).cloned().ok_or_else(|| {
                    Rejection::UnknownReservation {
                        id: reservation.clone(),
                    }
                })?;
                // Spend beyond the reservation is allowed while the budget still covers it;
                // refusing to record real spend would make the accounts lie.
                let over = used.saturating_sub(r.amount);
                if over > a.budget.remaining() {
                    return Err(Rejection::BudgetExceeded {
                        field: "used",
                        scope: format!("agent {agent}"),
                        remaining: a.budget.remaining() + r.amount,
                        requested: *used,
                    });
                }
                if let Some(m) = &r.mission_id {
                    let l = d.ledger_mut(m, None)?;
                    if over > l.remaining() {
                        return Err(Rejection::BudgetExceeded {
                            field: "used",
                            scope: format!("mission {m}"),
                            remaining: l.remaining() + r.amount,
                            requested: *used,
                        });
                    }
                    l.reserved -= r.amount;
                    l.used += used;
                }
                let a = d.agent_mut(agent)?;
                a.budget.reserved -= r.amount;
                a.budget.used += used;
                a.budget.input_tokens += input;
                a.budget.output_tokens += output;
                a.settle(reservation);
                d.emit(Event::TokensCommitted {
                    agent_id: agent.clone(),
                    mission_id: r.mission_id,
                    tokens: *used,
                    input_tokens: input,
                    output_tokens: output,
                    at: now,
                });
            }
            Command::Release { agent, reservation } => {
                d.check_manage(by, agent, AgentOperation::ReleaseTokens)?;
                let r = d
                    .agent(agent)?
                    .reservations
                    .get(reservation)
                    .cloned()
                    .ok_or_else(|| Rejection::UnknownReservation {
                        id: reservation.clone(),
                    })?;
                if let Some(m) = &r.mission_id {
                    d.ledger_mut(m, None)?.reserved -= r.amount;
                }
                let a = d.agent_mut(agent)?;
                a.budget.reserved -= r.amount;
                a.settle(reservation);
            }
            Command::Reallocate { from, to, amount } => d.reallocate(by, from, to, *amount)?,
            Command::ExpireHeartbeats {
                window_ms,
                first_within_ms,
            } => {
                let allowed = |a: &AgentProfile| match a.last_heartbeat_at {
                    Some(_) => *window_ms,
                    None => (*first_within_ms).max(*window_ms),
                };
                let late: Vec<AgentId> = self
                    .agents
                    .values()
                    .filter(|a| a.is_live() && now.millis_since(a.last_seen()) > allowed(a))
                    .map(|a| a.id.clone())
                    .collect();
                for id in late {
                    d.end(
                        &id,
                        true,
                        Some("heartbeat_missed".into()),
                        &Principal::Operator,
                    )?;
                }
            }
            Command::IssueCredentials { agent, public_key } => {
                d.check_action(by, Action::IssueCredentials)?;
                let a = d.live(agent)?.clone();
                let parent = a.parent_id.as_ref().map(|p| Principal::Agent(p.clone()));
                if !matches!(by, Principal::Operator) && Some(by) != parent.as_ref() {
                    return Err(d.forbidden(
                        by,
                        Action::IssueCredentials.as_str(),
                        Some(agent),
                        "only its parent or the operator re-issues an agent's credentials",
                    ));
                }
                let used = a.credential_key.as_ref() == Some(public_key)
                    || a.revoked_keys.iter().any(|r| &r.public_key == public_key);
                if used {
                    return Err(Rejection::invalid(
                        "public_key",
                        "this key was issued to the agent before; new credentials need a new key",
                    ));
                }
                let a = d.agent_mut(agent)?;
                if let Some(old) = a.credential_key.replace(public_key.clone()) {
                    a.revoked_keys.push(super::RevokedKey {
                        public_key: old,
                        at: now,
                    });
                }
                d.emit(Event::CredentialsIssued {
                    agent_id: agent.clone(),
                    by: by.clone(),
                    at: now,
                });
            }
            Command::SetScalingPolicy(policy) => d.set_scaling(by, policy)?,
            Command::RemoveScalingPolicy { owner, role } => {
                d.check_scaling_authority(by, owner, false)?;
                let key = (owner.clone(), role.clone());
                if !self.scaling.contains_key(&key) {
                    return Err(Rejection::UnknownScalingPolicy {
                        owner: owner.clone(),
                        role: role.clone(),
                    });
                }
                d.scaling.insert(key, None);
                d.emit(Event::ScalingPolicyRemoved {
                    agent_id: owner.clone(),
                    role: role.clone(),
                    by: by.clone(),
                    at: now,
                });
            }
            Command::Autoscale {
                owner,
                role,
                ready,
                awaited,
            } => {
                if !matches!(by, Principal::Service(_) | Principal::Operator) {
                    return Err(d.forbidden(
                        by,
                        "autoscale",
                        Some(owner),
                        "only Guild (or the operator) applies a scaling policy to the load",
                    ));
                }
                d.autoscale(owner, role, *ready, awaited)?;
            }
            Command::SampleEfficiency => {
                let working = self
                    .agents
                    .values()
                    .filter(|a| a.status == AgentStatus::Working)
                    .count();
                let ratio = working as f64 / f64::from(self.limits.max_agents.max(1));
                d.efficiency = Some(self.efficiency.sample(now, ratio));
            }
        }
        Ok(d.into_effects(by))
    }

    /// [`refusal_events`](Self::refusal_events) as effects: each published, a denial
    /// audited as well.
    pub fn refusal_effects(
        &self,
        by: &Principal,
        command: &Command,
        rejection: &Rejection,
        now: Timestamp,
    ) -> Vec<SpawnerEffect> {
        SpawnerEffect::announced(by, self.refusal_events(by, command, rejection, now))
    }

    /// The events to publish when `command` was refused with `rejection`: budget refusals
    /// and authority denials are facts worth telling (and denials are audited).
    pub fn refusal_events(
        &self,
        by: &Principal,
        command: &Command,
        rejection: &Rejection,
        now: Timestamp,
    ) -> Vec<Event> {
        let target = target_of(command);
        match rejection {
            Rejection::BudgetExceeded {
                scope,
                remaining,
                requested,
                ..
            } => {
                let (mission_id, reservation_id) = match command {
                    Command::Reserve {
                        mission,
                        reservation,
                        ..
                    } => (
                        mission.clone().filter(|_| scope.starts_with("mission")),
                        Some(reservation.clone()),
                    ),
                    _ => (None, None),
                };
                vec![Event::BudgetExceeded {
                    agent_id: target,
                    mission_id,
                    reservation_id,
                    requested: *requested,
                    remaining: *remaining,
                    by: by.clone(),
                    at: now,
                }]
            }
            Rejection::SpawnCapReached {
                holder,
                cap,
                limit,
                current,
            } => {
                let mut out: Vec<Event> = rejection.denial(by, target, now).into_iter().collect();
                if let Command::Spawn(r) = command
                    && let Some(parent) = &r.parent_id
                {
                    out.push(Event::SpawnCapReached {
                        agent_id: parent.clone(),
                        child: r.id.clone(),
                        holder: holder.clone(),
                        cap: *cap,
                        limit: *limit,
                        current: *current,
                        by: by.clone(),
                        at: now,
                    });
                }
                out
            }
            other => other.denial(by, target, now).into_iter().collect(),
        }
    }
}

fn target_of(command: &Command) -> Option<AgentId> {
    match command {
        Command::Spawn(r) => Some(r.id.clone()),
        Command::AllocateTask { agent, .. }
        | Command::ReleaseTask { agent, .. }
        | Command::SetStatus { agent, .. }
        | Command::Pause { agent, .. }
        | Command::Resume { agent, .. }
        | Command::Terminate { agent, .. }
        | Command::Heartbeat { agent, .. }
        | Command::Reserve { agent, .. }
        | Command::Commit { agent, .. }
        | Command::Release { agent, .. }
        | Command::IssueCredentials { agent, .. } => Some(agent.clone()),
        Command::Reallocate { from, .. } => Some(from.clone()),
        Command::SetScalingPolicy(p) => Some(p.owner.clone()),
        Command::RemoveScalingPolicy { owner, .. } | Command::Autoscale { owner, .. } => {
            Some(owner.clone())
        }
        Command::ExpireHeartbeats { .. } | Command::SampleEfficiency => None,
    }
}

fn paused(a: &AgentProfile) -> Rejection {
    Rejection::AgentPaused {
        id: a.id.clone(),
        reason: a
            .status_reason
            .clone()
            .unwrap_or_else(|| "no reason given".into()),
    }
}

/// A copy-on-write overlay of the registry that one decision edits.
pub(super) struct Draft<'a> {
    pub(super) base: &'a Registry,
    pub(super) now: Timestamp,
    pub(super) agents: BTreeMap<AgentId, AgentProfile>,
    pub(super) pool: Option<Pool>,
    pub(super) ledgers: BTreeMap<MissionId, MissionLedger>,
    pub(super) efficiency: Option<super::Efficiency>,
    /// Scaling policies changed (`None`: dropped).
    pub(super) scaling: BTreeMap<(AgentId, Role), Option<Scaling>>,
    pub(super) events: Vec<Event>,
}

/// A draft's agents, pool and events at one point, to go back to when one spawn of a
/// scale-up is refused: the spawns before it stand.
pub(super) struct Checkpoint {
    agents: BTreeMap<AgentId, AgentProfile>,
    pool: Option<Pool>,
    events: usize,
}

impl<'a> Draft<'a> {
    fn new(base: &'a Registry, now: Timestamp) -> Self {
        Self {
            base,
            now,
            agents: BTreeMap::new(),
            pool: None,
            ledgers: BTreeMap::new(),
            efficiency: None,
            scaling: BTreeMap::new(),
            events: Vec::new(),
        }
    }

    pub(super) fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            agents: self.agents.clone(),
            pool: self.pool,
            events: self.events.len(),
        }
    }

    pub(super) fn restore(&mut self, to: Checkpoint) {
        self.agents = to.agents;
        self.pool = to.pool;
        self.events.truncate(to.events);
    }

    fn into_effects(self, by: &Principal) -> Vec<SpawnerEffect> {
        let mut out: Vec<SpawnerEffect> = self
            .agents
            .into_values()
            .map(|a| Effect::Save(Record::Agent(a)))
            .collect();
        out.extend(self.pool.map(|p| Effect::Save(Record::Pool(p))));
        out.extend(
            self.ledgers
                .into_values()
                .map(|l| Effect::Save(Record::Ledger(l))),
        );
        out.extend(self.efficiency.map(|e| Effect::Save(Record::Efficiency(e))));
        out.extend(self.scaling.into_iter().map(|((owner, role), s)| {
            Effect::Save(match s {
                Some(s) => Record::Scaling(s),
                None => Record::ScalingRemoved { owner, role },
            })
        }));
        out.extend(SpawnerEffect::announced(by, self.events));
        out
    }

    pub(super) fn emit(&mut self, event: Event) {
        self.events.push(event);
    }

    pub(super) fn agent(&self, id: &AgentId) -> Result<&AgentProfile, Rejection> {
        self.agents
            .get(id)
            .or_else(|| self.base.agents.get(id))
            .ok_or_else(|| Rejection::UnknownAgent { id: id.clone() })
    }

    pub(super) fn live(&self, id: &AgentId) -> Result<&AgentProfile, Rejection> {
        let a = self.agent(id)?;
        if a.is_live() {
            Ok(a)
        } else {
            Err(Rejection::AgentNotLive {
                id: id.clone(),
                status: a.status,
            })
        }
    }

    pub(super) fn agent_mut(&mut self, id: &AgentId) -> Result<&mut AgentProfile, Rejection> {
        if !self.agents.contains_key(id) {
            let copy = self.agent(id)?.clone();
            self.agents.insert(id.clone(), copy);
        }
        let now = self.now;
        let a = self
            .agents
            .get_mut(id)
            .ok_or_else(|| Rejection::UnknownAgent { id: id.clone() })?;
        a.updated_at = now;
        Ok(a)
    }

    fn pool_mut(&mut self) -> &mut Pool {
        self.pool.get_or_insert(self.base.pool)
    }

    fn ledger_or_open(
        &self,
        m: &MissionId,
        budget: Option<u64>,
    ) -> Result<MissionLedger, Rejection> {
        if let Some(l) = self.ledgers.get(m).or_else(|| self.base.ledgers.get(m)) {
            return Ok(l.clone());
        }
        match budget {
            Some(budget) => Ok(MissionLedger {
                mission_id: m.clone(),
                budget,
                used: 0,
                reserved: 0,
            }),
            None => Err(Rejection::UnknownMission { id: m.clone() }),
        }
    }

    fn ledger_mut(
        &mut self,
        m: &MissionId,
        budget: Option<u64>,
    ) -> Result<&mut MissionLedger, Rejection> {
        if !self.ledgers.contains_key(m) {
            let l = self.ledger_or_open(m, budget)?;
            self.ledgers.insert(m.clone(), l);
        }
        self.ledgers
            .get_mut(m)
            .ok_or_else(|| Rejection::UnknownMission { id: m.clone() })
    }

    pub(super) fn forbidden(
        &self,
        by: &Principal,
        action: &str,
        target: Option<&AgentId>,
        reason: &str,
    ) -> Rejection {
        let on = target.map(|t| format!(" on {t}")).unwrap_or_default();
        Rejection::Forbidden {
            actor: by.to_string(),
            action: action.to_owned(),
            reason: format!("{reason}{on}"),
        }
    }

    /// An agent principal must be live and not forbidden `action`.
    pub(super) fn check_action(&self, by: &Principal, action: Action) -> Result<(), Rejection> {
        let Principal::Agent(id) = by else {
            return Ok(());
        };
        let a = self.agent(id)?;
        if !a.is_live() {
            return Err(Rejection::AgentNotLive {
                id: id.clone(),
                status: a.status,
            });
        }
        if a.authority.forbids(action.as_str()) {
            return Err(self.forbidden(by, action.as_str(), None, "it is in forbidden_actions"));
        }
        Ok(())
    }

    /// The operator, the agent itself, or an ancestor.
    fn check_manage(
        &self,
        by: &Principal,
        target: &AgentId,
        action: AgentOperation,
    ) -> Result<(), Rejection> {
        self.agent(target)?;
        if self.base.may_manage(by, target) {
            Ok(())
        } else {
            Err(self.forbidden(
                by,
                action.as_str(),
                Some(target),
                "only the agent, its ancestors or the operator may",
            ))
        }
    }

    /// The operator or a strict ancestor (pause and resume come from above).
    fn check_overseer(
        &self,
        by: &Principal,
        target: &AgentId,
        action: AgentOperation,
    ) -> Result<(), Rejection> {
        self.agent(target)?;
        let ok = match by {
            Principal::Operator | Principal::Service(_) => true,
            Principal::Observer => false,
            Principal::Agent(id) => self.base.is_ancestor(id, target),
        };
        if ok {
            Ok(())
        } else {
            Err(self.forbidden(
                by,
                action.as_str(),
                Some(target),
                "only its ancestors or the operator may",
            ))
        }
    }

    /// `id` alone, or its descendants (deepest first) and then `id`.
    fn with_subtree(&self, id: &AgentId, subtree: bool) -> Vec<AgentId> {
        let mut ids = if subtree {
            self.base.descendants(id)
        } else {
            Vec::new()
        };
        ids.push(id.clone());
        ids
    }

    fn set_status(
        &mut self,
        id: &AgentId,
        to: AgentStatus,
        reason: Option<String>,
    ) -> Result<(), Rejection> {
        let now = self.now;
        let a = self.agent_mut(id)?;
        let from = a.status;
        if !from.can_become(to) {
            return Err(Rejection::IllegalAgentTransition {
                id: id.clone(),
                from,
                to,
            });
        }
        a.status = to;
        a.status_reason = reason.clone();
        // A pause is no idle time: a member resumed without a task starts idling now, so
        // a scaling policy does not end it the moment it is back.
        if from == AgentStatus::Blocked && a.assigned_task_id.is_none() && to.is_live() {
            a.free_since = Some(now);
        }
        self.emit(Event::StatusChanged {
            agent_id: id.clone(),
            from,
            to,
            reason,
            at: now,
        });
        Ok(())
    }

    fn set_status_cmd(
        &mut self,
        by: &Principal,
        agent: &AgentId,
        status: AgentStatus,
        reason: &Option<String>,
    ) -> Result<(), Rejection> {
        self.check_manage(by, agent, AgentOperation::SetStatus)?;
        let a = self.live(agent)?;
        match status {
            AgentStatus::Working => {
                return Err(Rejection::invalid(
                    "status",
                    "WORKING is entered by allocate_task",
                ));
            }
            AgentStatus::Completed | AgentStatus::Failed => {
                return Err(Rejection::invalid(
                    "status",
                    "COMPLETED and FAILED are entered by terminate",
                ));
            }
            AgentStatus::Pending => {
                return Err(Rejection::invalid(
                    "status",
                    "an agent cannot go back to PENDING",
                ));
            }
            AgentStatus::Blocked if reason.as_deref().is_none_or(|r| r.trim().is_empty()) => {
                return Err(Rejection::invalid("reason", "BLOCKED needs a reason"));
            }
            AgentStatus::Active | AgentStatus::Idle => {
                if let Some(held) = &a.assigned_task_id {
                    return Err(Rejection::AgentBusy {
                        id: agent.clone(),
                        task: held.clone(),
                    });
                }
            }
            AgentStatus::Blocked => {}
        }
        if a.status == status {
            return Ok(());
        }
        self.set_status(agent, status, reason.clone())
    }

    pub(super) fn spawn(&mut self, by: &Principal, req: &SpawnRequest) -> Result<(), Rejection> {
        let now = self.now;
        for c in &req.capabilities {
            c.validate()?;
        }
        if self.agent(&req.id).is_ok() {
            return Err(Rejection::AgentExists { id: req.id.clone() });
        }
        // The draft's: a scale-up spawns several in one decision.
        let pool = self.pool.unwrap_or(self.base.pool);
        if pool.live_agents >= self.base.limits.max_agents {
            return Err(Rejection::AgentLimitReached {
                live: pool.live_agents,
                max: self.base.limits.max_agents,
            });
        }
        let authority = match &req.parent_id {
            None => {
                if !matches!(by, Principal::Operator) {
                    return Err(Rejection::RootSpawnRequiresOperator);
                }
                if req.token_budget > pool.free {
                    return Err(Rejection::BudgetExceeded {
                        field: "token_budget",
                        scope: "the global pool".into(),
                        remaining: pool.free,
                        requested: req.token_budget,
                    });
                }
                self.pool_mut().free -= req.token_budget;
                req.authority
                    .clone()
                    .unwrap_or_else(|| Authority::default_for(&req.role))
            }
            Some(parent_id) => {
                let parent = self.live(parent_id)?.clone();
                if !self.base.may_manage(by, parent_id) {
                    return Err(self.forbidden(
                        by,
                        Action::SpawnAgent.as_str(),
                        Some(parent_id),
                        "only the parent, its ancestors or the operator may spawn under it",
                    ));
                }
                self.check_action(by, Action::SpawnAgent)?;
                if parent.authority.forbids(Action::SpawnAgent.as_str()) {
                    return Err(self.forbidden(
                        &Principal::Agent(parent_id.clone()),
                        Action::SpawnAgent.as_str(),
                        None,
                        "it is in forbidden_actions",
                    ));
                }
                if parent.status == AgentStatus::Blocked {
                    return Err(paused(&parent));
                }
                if !parent.authority.can_spawn_agents {
                    return Err(Rejection::SpawnNotAllowed {
                        parent: parent_id.clone(),
                    });
                }
                if parent.live_children >= parent.authority.max_parallel_agents {
                    return Err(Rejection::ParentAtCapacity {
                        parent: parent_id.clone(),
                        children: parent.live_children,
                        max: parent.authority.max_parallel_agents,
                    });
                }
                let mut authority = match &req.authority {
                    Some(asked) => {
                        asked.check_within(&parent.authority)?;
                        asked.clone().inherit_caps(&parent.authority)
                    }
                    None => Authority::default_for(&req.role).clamp_to(&parent.authority),
                };
                let caps = self.spawn_caps(parent_id)?;
                if req.token_budget > parent.budget.remaining() {
                    return Err(Rejection::BudgetExceeded {
                        field: "token_budget",
                        scope: format!("agent {parent_id}"),
                        remaining: parent.budget.remaining(),
                        requested: req.token_budget,
                    });
                }
                let p = self.agent_mut(parent_id)?;
                p.budget.allocated -= req.token_budget;
                p.live_children += 1;
                if let Some(left) = self.count_spawn(&caps)? {
                    // A lifetime cap never outgrows what is left of its ancestors'.
                    authority.max_descendants =
                        Some(authority.max_descendants.map_or(left, |own| own.min(left)));
                }
                authority
            }
        };
        authority.validate()?;
        self.pool_mut().live_agents += 1;
        let child = AgentProfile {
            id: req.id.clone(),
            role: req.role.clone(),
            status: AgentStatus::Pending,
            status_reason: None,
            parent_id: req.parent_id.clone(),
            capabilities: req.capabilities.clone(),
            authority,
            budget: Budget::new(req.token_budget),
            reservations: BTreeMap::new(),
            settled_reservations: Vec::new(),
            assigned_task_id: None,
            assigned_at: None,
            live_children: 0,
            temporary: req.parent_id.is_some(),
            spawned_by: by.clone(),
            spawned_at: now,
            updated_at: now,
            last_heartbeat_at: None,
            context_window: None,
            ended_at: None,
            credential_key: req.public_key.clone(),
            revoked_keys: Vec::new(),
            descendants_spawned: 0,
            recent_spawns: Vec::new(),
            autoscaled: false,
            free_since: Some(now),
        };
        self.agents.insert(child.id.clone(), child);
        self.emit(Event::Spawned {
            agent_id: req.id.clone(),
            role: req.role.clone(),
            parent_id: req.parent_id.clone(),
            token_budget: req.token_budget,
            by: by.clone(),
            at: now,
        });
        Ok(())
    }

    /// Ends a live agent: reservations released, unused tokens to the nearest live ancestor
    /// (or the pool), its task released, counters down. Already-ended agents are skipped.
    pub(super) fn end(
        &mut self,
        id: &AgentId,
        failed: bool,
        reason: Option<String>,
        by: &Principal,
    ) -> Result<(), Rejection> {
        let now = self.now;
        let a = self.agent(id)?.clone();
        if !a.is_live() {
            return Ok(());
        }
        for r in a.reservations.values() {
            if let Some(m) = &r.mission_id {
                let l = self.ledger_mut(m, None)?;
                l.reserved = l.reserved.saturating_sub(r.amount);
            }
        }
        let unused = a.budget.allocated - a.budget.used;
        let holder = self.nearest_live_ancestor(id);
        match &holder {
            BudgetHolder::Agent(anc) => self.agent_mut(anc)?.budget.allocated += unused,
            BudgetHolder::Pool => self.pool_mut().free += unused,
        }
        if let Some(parent) = &a.parent_id {
            let p = self.agent_mut(parent)?;
            p.live_children = p.live_children.saturating_sub(1);
        }
        let pool = self.pool_mut();
        pool.live_agents = pool.live_agents.saturating_sub(1);
        let orphans: Vec<AgentId> = self
            .base
            .children
            .get(id)
            .into_iter()
            .flatten()
            .filter(|c| self.agent(c).is_ok_and(AgentProfile::is_live))
            .cloned()
            .collect();
        let to = if failed {
            AgentStatus::Failed
        } else {
            AgentStatus::Completed
        };
        self.set_status(id, to, reason.clone())?;
        let e = self.agent_mut(id)?;
        e.budget = Budget {
            allocated: a.budget.used,
            reserved: 0,
            ..a.budget
        };
        e.reservations.clear();
        e.assigned_task_id = None;
        e.assigned_at = None;
        e.ended_at = Some(now);
        if let Some(task) = a.assigned_task_id {
            self.emit(Event::TaskReleased {
                agent_id: id.clone(),
                task_id: task,
                reason: reason
                    .clone()
                    .unwrap_or_else(|| format!("agent {}", to.as_str().to_lowercase())),
                agent_lost: failed,
                at: now,
            });
        }
        self.emit(Event::Terminated {
            agent_id: id.clone(),
            status: to,
            unused_returned: unused,
            returned_to: holder,
            orphans,
            reason,
            by: by.clone(),
            at: now,
        });
        Ok(())
    }

    /// Refuses a spawn under `parent` that a spawn cap of the parent or of an ancestor
    /// of it forbids (checked nearest first); else the agents holding a lifetime or rate
    /// cap, which the spawn counts against.
    fn spawn_caps(&self, parent: &AgentId) -> Result<Vec<AgentId>, Rejection> {
        let now = self.now;
        let mut counted = Vec::new();
        let mut next = Some(parent.clone());
        let mut depth = 0u32;
        while let Some(id) = next {
            let Ok(a) = self.agent(&id) else { break };
            depth = depth.saturating_add(1);
            let reached = |cap, limit, current| {
                Err(Rejection::SpawnCapReached {
                    holder: id.clone(),
                    cap,
                    limit,
                    current,
                })
            };
            let authority = &a.authority;
            if let Some(max) = authority.max_depth
                && depth > max
            {
                return reached(SpawnCap::MaxDepth, max, depth);
            }
            if let Some(max) = authority.max_descendants
                && a.descendants_spawned >= max
            {
                return reached(SpawnCap::MaxDescendants, max, a.descendants_spawned);
            }
            if let Some(max) = authority.max_spawns_per_minute {
                let recent = within_a_minute(&a.recent_spawns, now).count() as u32;
                if recent >= max {
                    return reached(SpawnCap::MaxSpawnsPerMinute, max, recent);
                }
            }
            if authority.max_descendants.is_some() || authority.max_spawns_per_minute.is_some() {
                counted.push(id.clone());
            }
            next = a.parent_id.clone();
        }
        Ok(counted)
    }

    /// Counts a spawn against `holders` (from [`spawn_caps`](Self::spawn_caps)); the
    /// fewest descendants any of them may still have, when one caps them.
    fn count_spawn(&mut self, holders: &[AgentId]) -> Result<Option<u32>, Rejection> {
        let now = self.now;
        let mut left: Option<u32> = None;
        for id in holders {
            let a = self.agent_mut(id)?;
            a.descendants_spawned = a.descendants_spawned.saturating_add(1);
            if let Some(max) = a.authority.max_descendants {
                let rest = max.saturating_sub(a.descendants_spawned);
                left = Some(left.map_or(rest, |l| l.min(rest)));
            }
            match a.authority.max_spawns_per_minute {
                Some(max) => {
                    a.recent_spawns.retain(|t| now.millis_since(*t) < MINUTE_MS);
                    a.recent_spawns.push(now);
                    let over = a.recent_spawns.len().saturating_sub(max as usize);
                    a.recent_spawns.drain(..over);
                }
                None => a.recent_spawns.clear(),
            }
        }
        Ok(left)
    }

    fn nearest_live_ancestor(&self, id: &AgentId) -> BudgetHolder {
        let mut next = self.agent(id).ok().and_then(|a| a.parent_id.clone());
        while let Some(pid) = next {
            match self.agent(&pid) {
                Ok(p) if p.is_live() => return BudgetHolder::Agent(pid),
                Ok(p) => next = p.parent_id.clone(),
                Err(_) => break,
            }
        }
        BudgetHolder::Pool
    }

    fn reallocate(
        &mut self,
        by: &Principal,
        from: &AgentId,
        to: &AgentId,
        amount: u64,
    ) -> Result<(), Rejection> {
        let action = Action::ReallocateBudget;
        if amount == 0 {
            return Err(Rejection::invalid("amount", "must be at least 1 token"));
        }
        if from == to {
            return Err(Rejection::invalid("to", "must differ from `from`"));
        }
        self.agent(from)?;
        self.live(to)?;
        if let Principal::Agent(me) = by {
            self.base.authorize(me, action, None)?;
            let within = |t: &AgentId| t == me || self.base.is_ancestor(me, t);
            if !within(from) || !within(to) {
                return Err(self.forbidden(
                    by,
                    action.as_str(),
                    None,
                    "both agents must be in its own subtree",
                ));
            }
        }
        let giver = self.agent(from)?;
        if giver.budget.remaining() < amount {
            return Err(Rejection::BudgetExceeded {
                field: "amount",
                scope: format!("agent {from}"),
                remaining: giver.budget.remaining(),
                requested: amount,
            });
        }
        self.agent_mut(from)?.budget.allocated -= amount;
        self.agent_mut(to)?.budget.allocated += amount;
        self.emit(Event::BudgetReallocated {
            by: by.clone(),
            from: from.clone(),
            to: to.clone(),
            amount,
            at: self.now,
        });
        Ok(())
    }
}

/// The window `max_spawns_per_minute` counts over.
const MINUTE_MS: u64 = 60_000;

/// The spawns of `recent` within the minute before `now`.
fn within_a_minute(recent: &[Timestamp], now: Timestamp) -> impl Iterator<Item = &Timestamp> {
    recent
        .iter()
        .filter(move |t| now.millis_since(**t) < MINUTE_MS)
}
