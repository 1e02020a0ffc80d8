//! The workload's organisation, run in this process: the operator (spawns the root
//! agents, creates missions with dependencies, assigns the READY ones to free agents,
//! decides the root agents' questions) and a lead orchestrator agent on its own
//! connection (spawns children up to its `max_parallel_agents`, decides their
//! questions). It keeps the team staffed: an agent Guild ended (a pause longer than the
//! heartbeat window makes it FAILED) is replaced, and its process stopped once it had a
//! few seconds to try its revoked credentials. Now and then it asks for one agent more
//! than the limits allow, so the limits are tested, not just respected.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use guild_sdk::Guild;
use guild_sdk::MessageType;
use guild_sdk::api::mission::MissionQuery;
use guild_sdk::{AgentId, MessageId, MissionId, Phase};
use guild_sdk::{AgentQuery, AgentStatus, Authority, Role, SpawnRequest};
use guild_sdk::{Dependency, MissionStatus, NewMission, Severity};
use guild_wire::api::bus as bus_api;
use guild_wire::domain::PhaseScope;
use serde_json::json;
use tokio::sync::watch;

use crate::call::{ATTEMPT, Outcome, PATIENCE, rule_of, settle};
use crate::deploy::Shared;
use crate::fold::Folds;
use crate::record::{Log, Op, now_ms};
use crate::rng::Rng;
use crate::worker::{Control, HEARTBEAT_EVERY, inboxes};

/// The team and the work, in numbers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    /// Live agents allowed (the spawner's `GUILD_MAX_AGENTS`).
    pub(crate) max_agents: u32,
    /// Root agents kept live (the operator's).
    pub(crate) roots: usize,
    /// The lead's `max_parallel_agents`: children it keeps live.
    pub(crate) children: u32,
    /// Missions kept open at once.
    pub(crate) open_missions: usize,
    /// Tokens granted at spawn.
    pub(crate) lead_budget: u64,
    pub(crate) child_budget: u64,
    pub(crate) root_budget: u64,
    /// Each mission's token budget.
    pub(crate) mission_budget: u64,
}

pub(crate) const PLAN: Plan = Plan {
    max_agents: 8,
    roots: 4,
    children: 3,
    open_missions: 8,
    lead_budget: 6_000_000,
    child_budget: 1_200_000,
    root_budget: 1_500_000,
    mission_budget: 20_000,
};

/// What the driver knows of an agent it spawned.
#[derive(Clone, Debug)]
pub(crate) struct Known {
    pub(crate) creds: String,
    /// Its parent (for reading the run's state in a debugger or a dump).
    #[allow(dead_code)]
    pub(crate) parent: Option<AgentId>,
    /// When the driver saw Guild end it (ms).
    pub(crate) ended_at: Option<u64>,
    /// Whether a process of the workload runs it (the lead runs in this one).
    pub(crate) process: bool,
}

/// The lead, on its own connection in this process.
struct Lead {
    id: AgentId,
    /// Its handle: heartbeats stop when it is dropped.
    _agent: guild_sdk::Agent,
    guild: Guild,
    /// Its inbox loop.
    inbox: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Inner {
    agents: BTreeMap<AgentId, Known>,
    lead: Option<Lead>,
    n_agents: u64,
    n_missions: u64,
}

pub(crate) struct Driver {
    operator: Guild,
    log: Arc<Log>,
    deploy: Shared,
    control: Control,
    folds: Arc<tokio::sync::Mutex<Folds>>,
    inner: Mutex<Inner>,
    rng: Mutex<Rng>,
    /// No new missions.
    draining: AtomicBool,
    plan: Plan,
}

impl Driver {
    pub(crate) fn new(
        operator: Guild,
        log: Arc<Log>,
        deploy: Shared,
        control: Control,
        folds: Arc<tokio::sync::Mutex<Folds>>,
        rng: Rng,
    ) -> Arc<Self> {
        Arc::new(Self {
            operator: operator.with_timeout(ATTEMPT),
            log,
            deploy,
            control,
            folds,
            inner: Mutex::new(Inner::default()),
            rng: Mutex::new(rng),
            draining: AtomicBool::new(false),
            plan: PLAN,
        })
    }

    fn roll(&self, n: u64) -> u64 {
        self.rng.lock().map_or(0, |mut r| r.below(n))
    }

    fn next_agent(&self, prefix: &str) -> Option<AgentId> {
        let n = self.inner.lock().ok().map(|mut i| {
            i.n_agents += 1;
            i.n_agents
        })?;
        AgentId::new(format!("{prefix}-{n}")).ok()
    }

    /// No new missions from now on (those open still finish).
    pub(crate) fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Every agent it spawned.
    pub(crate) fn known(&self) -> BTreeMap<AgentId, Known> {
        self.inner
            .lock()
            .map(|i| i.agents.clone())
            .unwrap_or_default()
    }

    /// Agents Guild ended at least `margin_ms` before `at` (so their revocation reached
    /// the broker), with their credentials.
    pub(crate) fn ended_before(&self, at: u64, margin_ms: u64) -> Vec<(AgentId, String)> {
        self.known()
            .into_iter()
            .filter(|(_, k)| k.ended_at.is_some_and(|e| e + margin_ms <= at))
            .map(|(id, k)| (id, k.creds))
            .collect()
    }

    /// The driver's loops, until `stop` turns true.
    pub(crate) fn start(
        self: &Arc<Self>,
        stop: watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        let me = self.clone();
        let s = stop.clone();
        tasks.push(tokio::spawn(async move {
            me.every(Duration::from_millis(500), s, |d| Box::pin(d.staff()))
                .await;
        }));
        let me = self.clone();
        let s = stop.clone();
        tasks.push(tokio::spawn(async move {
            me.every(Duration::from_millis(1500), s, |d| {
                Box::pin(d.create_missions())
            })
            .await;
        }));
        let me = self.clone();
        let s = stop.clone();
        tasks.push(tokio::spawn(async move {
            me.every(Duration::from_millis(400), s, |d| Box::pin(d.assign()))
                .await;
        }));
        let me = self.clone();
        let operator = self.operator.clone();
        tasks.push(tokio::spawn(async move {
            me.inbox(operator, "operator".into(), stop).await;
        }));
        tasks
    }

    async fn every(
        self: &Arc<Self>,
        period: Duration,
        mut stop: watch::Receiver<bool>,
        f: impl Fn(Arc<Self>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    ) {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = tick.tick() => f(self.clone()).await,
            }
        }
    }

    /// Stops the lead's heartbeats and inbox (at the end of the run).
    pub(crate) fn release_lead(&self) {
        if let Ok(mut i) = self.inner.lock()
            && let Some(lead) = i.lead.take()
        {
            lead.inbox.abort();
        }
    }

    // ---- the team -----------------------------------------------------------------

    async fn staff(self: Arc<Self>) {
        let query = AgentQuery {
            include_terminated: true,
            ..AgentQuery::default()
        };
        let Ok(all) = self.operator.spawner().list(&query).await else {
            return;
        };
        let now = now_ms();
        let profiles: BTreeMap<AgentId, _> = all.into_iter().map(|a| (a.id.clone(), a)).collect();
        // Agents Guild ended since the last look.
        let mut ended = Vec::new();
        if let Ok(mut i) = self.inner.lock() {
            for (id, k) in i.agents.iter_mut() {
                if k.ended_at.is_none()
                    && let Some(p) = profiles.get(id)
                    && !p.is_live()
                {
                    k.ended_at = Some(now);
                    ended.push((id.clone(), p.status));
                }
            }
            if let Some(lead) = &i.lead
                && ended.iter().any(|(id, _)| *id == lead.id)
                && let Some(lead) = i.lead.take()
            {
                lead.inbox.abort();
            }
        }
        for (id, status) in &ended {
            self.log.write(
                now,
                Op::Ended {
                    agent: id.to_string(),
                    status: format!("{status:?}"),
                },
            );
        }
        self.stop_ended().await;
        // The lead first: the children are its.
        let lead = self
            .inner
            .lock()
            .ok()
            .and_then(|i| i.lead.as_ref().map(|l| (l.id.clone(), l.guild.clone())));
        let Some((lead_id, lead_guild)) = (match lead {
            Some(l) => Some(l),
            None => self.spawn_lead().await,
        }) else {
            return;
        };
        let live = |f: &dyn Fn(&guild_sdk::AgentProfile) -> bool| {
            profiles.values().filter(|p| p.is_live() && f(p)).count()
        };
        let children = live(&|p| p.parent_id.as_ref() == Some(&lead_id));
        let roots = live(&|p| p.parent_id.is_none() && p.role == Role::Developer);
        let total = live(&|_| true);
        // Now and then one more than the limits allow.
        let probe = self.roll(30) == 0;
        if children < self.plan.children as usize || (probe && self.roll(2) == 0) {
            if let Some(id) = self.next_agent("w") {
                let r = SpawnRequest::new(id, Role::Developer, self.plan.child_budget)
                    .parent(lead_id.clone());
                self.spawn_worker(&lead_guild, r).await;
            }
        } else if (roots < self.plan.roots || (probe && total >= self.plan.max_agents as usize))
            && let Some(id) = self.next_agent("w")
        {
            let r = SpawnRequest::new(id, Role::Developer, self.plan.root_budget);
            self.spawn_worker(&self.operator, r).await;
        }
    }

    /// Stops the processes of agents Guild ended a few seconds ago (not while paused: the
    /// agent is to find its credentials revoked when it goes on).
    async fn stop_ended(&self) {
        let now = now_ms();
        let due: Vec<AgentId> = self
            .known()
            .into_iter()
            .filter(|(_, k)| k.process && k.ended_at.is_some_and(|e| e + 3_000 <= now))
            .map(|(id, _)| id)
            .collect();
        if due.is_empty() {
            return;
        }
        let mut d = self.deploy.lock().await;
        for id in due {
            let paused = d.agents.get(id.as_str()).is_some_and(|a| {
                a.paused
                    || a.resumed_at
                        .is_some_and(|r| r.elapsed() < Duration::from_secs(3))
            });
            if d.agents.contains_key(id.as_str()) && !paused {
                d.stop_agent(
                    id.as_str(),
                    "stopped by the workload: Guild had ended the agent",
                )
                .await;
                if let Ok(mut i) = self.inner.lock()
                    && let Some(k) = i.agents.get_mut(&id)
                {
                    k.process = false;
                }
            }
        }
    }

    /// Spawns through `by`; the credentials Guild minted, on an acknowledged spawn.
    async fn spawn(&self, by: &Guild, request: SpawnRequest) -> Option<String> {
        let id = request.id.clone();
        let t0 = now_ms();
        let spawned = match settle(PATIENCE, || {
            let (g, r) = (by.clone(), request.clone());
            async move { g.spawner().spawn(r).await }
        })
        .await
        {
            Outcome::Done(s) => s,
            // An earlier attempt landed and its reply was lost: new credentials for it
            // (the first ones, never seen, are revoked).
            Outcome::Refused {
                error,
                after_silence: true,
            } if error.rule() == Some("agent_exists") => {
                match settle(PATIENCE, || {
                    let (g, id) = (by.clone(), id.clone());
                    async move { g.spawner().issue_credentials(&id, None).await }
                })
                .await
                {
                    Outcome::Done(s) => s,
                    _ => {
                        self.log.write_as(
                            by.principal().token(),
                            t0,
                            Op::Unknown {
                                what: "spawn".into(),
                                ids: vec![id.to_string()],
                            },
                        );
                        return None;
                    }
                }
            }
            Outcome::Refused { error, .. } => {
                self.log.write_as(
                    by.principal().token(),
                    t0,
                    Op::Refused {
                        what: "spawn".into(),
                        rule: rule_of(&error),
                        ids: vec![id.to_string()],
                    },
                );
                return None;
            }
            Outcome::Unknown(_) => {
                self.log.write_as(
                    by.principal().token(),
                    t0,
                    Op::Unknown {
                        what: "spawn".into(),
                        ids: vec![id.to_string()],
                    },
                );
                return None;
            }
        };
        let creds = spawned.credentials.as_ref().and_then(|c| c.creds.clone())?;
        self.log.write_as(
            by.principal().token(),
            t0,
            Op::Spawned {
                agent: id.to_string(),
                parent: request.parent_id.as_ref().map(ToString::to_string),
                budget: spawned.budget.allocated,
            },
        );
        if let Ok(mut i) = self.inner.lock() {
            i.agents.insert(
                id,
                Known {
                    creds: creds.clone(),
                    parent: request.parent_id.clone(),
                    ended_at: None,
                    process: false,
                },
            );
        }
        Some(creds)
    }

    async fn spawn_worker(&self, by: &Guild, request: SpawnRequest) {
        let id = request.id.clone();
        let Some(creds) = self.spawn(by, request).await else {
            return;
        };
        let started = self.deploy.lock().await.spawn_agent(id.as_str(), &creds);
        match started {
            Ok(()) => {
                if let Ok(mut i) = self.inner.lock()
                    && let Some(k) = i.agents.get_mut(&id)
                {
                    k.process = true;
                }
            }
            Err(e) => eprintln!("guild-chaos: could not start agent {id}: {e:#}"),
        }
    }

    async fn spawn_lead(self: &Arc<Self>) -> Option<(AgentId, Guild)> {
        let id = self.next_agent("lead")?;
        let mut request = SpawnRequest::new(id.clone(), Role::Orchestrator, self.plan.lead_budget);
        request.authority = Some(Authority {
            max_parallel_agents: self.plan.children,
            can_spawn_agents: true,
            can_override_decisions: true,
            scoped_to_phases: PhaseScope::All,
            forbidden_actions: Default::default(),
            max_depth: None,
            max_descendants: None,
            max_spawns_per_minute: None,
        });
        let creds = self.spawn(&self.operator, request).await?;
        let options = guild_sdk::NatsOptions::url(self.deploy.lock().await.urls())
            .with_creds_text(&creds)
            .ok()?;
        let guild = guild_sdk::connect(&options)
            .await
            .ok()?
            .with_timeout(ATTEMPT);
        let agent = guild.agent().ok()?;
        if agent.start_heartbeats(HEARTBEAT_EVERY).await.is_err() {
            return None;
        }
        let me = self.clone();
        let inbox_guild = guild.clone();
        let name = id.to_string();
        let (_keep, never) = watch::channel(false);
        let inbox = tokio::spawn(async move {
            let _keep = _keep;
            me.inbox(inbox_guild, name, never).await;
        });
        if let Ok(mut i) = self.inner.lock() {
            i.lead = Some(Lead {
                id: id.clone(),
                _agent: agent,
                guild: guild.clone(),
                inbox,
            });
        }
        Some((id, guild))
    }

    // ---- missions -----------------------------------------------------------------

    /// Keeps a few diamonds of missions open: `a`, then `b` and `c` on `a`, then `d` on
    /// both (hard dependencies), so completions make dependents READY, one or two at once.
    async fn create_missions(self: Arc<Self>) {
        if self.draining.load(Ordering::SeqCst) {
            return;
        }
        let open = self.folds.lock().await.missions.open();
        if open + 4 > self.plan.open_missions {
            return;
        }
        let Some(n) = self.inner.lock().ok().map(|mut i| {
            i.n_missions += 1;
            i.n_missions
        }) else {
            return;
        };
        let id = |x: &str| MissionId::new(format!("m{n}-{x}")).ok();
        let (Some(a), Some(b), Some(c), Some(d)) = (id("a"), id("b"), id("c"), id("d")) else {
            return;
        };
        let hard = |m: &MissionId| Dependency {
            mission_id: m.clone(),
            severity: Severity::Hard,
        };
        for (m, deps) in [
            (&a, vec![]),
            (&b, vec![hard(&a)]),
            (&c, vec![hard(&a)]),
            (&d, vec![hard(&b), hard(&c)]),
        ] {
            let mut nm = NewMission::new(m.clone(), format!("chaos {m}"), Phase::DEVELOPMENT);
            nm.token_budget = self.plan.mission_budget;
            nm.depends_on = deps;
            self.create(nm).await;
        }
    }

    async fn create(&self, nm: NewMission) {
        let t0 = now_ms();
        let logged = Op::Created {
            mission: nm.id.to_string(),
            depends_on: nm
                .depends_on
                .iter()
                .map(|d| d.mission_id.to_string())
                .collect(),
        };
        match settle(PATIENCE, || {
            let (g, nm) = (self.operator.clone(), &nm);
            async move { g.missions().create_mission(nm).await }
        })
        .await
        {
            Outcome::Done(_) => self.log.write_as("operator", t0, logged),
            Outcome::Refused {
                error,
                after_silence: true,
            } if error.rule() == Some("mission_exists") => {
                self.log.write_as("operator", t0, logged);
            }
            Outcome::Refused { error, .. } => self.log.write_as(
                "operator",
                t0,
                Op::Refused {
                    what: "create_mission".into(),
                    rule: rule_of(&error),
                    ids: vec![nm.id.to_string()],
                },
            ),
            Outcome::Unknown(_) => self.log.write_as(
                "operator",
                t0,
                Op::Unknown {
                    what: "create_mission".into(),
                    ids: vec![nm.id.to_string()],
                },
            ),
        }
    }

    /// READY missions to free agents.
    async fn assign(self: Arc<Self>) {
        let query = MissionQuery {
            status: Some(MissionStatus::Ready),
            limit: Some(20),
            ..MissionQuery::default()
        };
        let Ok(ready) = self.operator.missions().list_missions(&query).await else {
            return;
        };
        if ready.missions.is_empty() {
            return;
        }
        let Ok(free) = self
            .operator
            .spawner()
            .find_available_agents(&guild_sdk::AgentQuery {
                role: Some(Role::Developer),
                ..Default::default()
            })
            .await
        else {
            return;
        };
        let mut free: Vec<AgentId> = free
            .into_iter()
            .filter(|a| a.status != AgentStatus::Pending)
            .map(|a| a.id)
            .collect();
        if let Ok(mut r) = self.rng.lock() {
            r.shuffle(&mut free);
        }
        for (m, agent) in ready.missions.iter().zip(free) {
            let t0 = now_ms();
            let outcome = settle(Duration::from_secs(8), || {
                let (g, id, agent) = (self.operator.clone(), &m.id, &agent);
                async move { g.missions().assign_mission(id, Some(agent)).await }
            })
            .await;
            let op = match outcome {
                Outcome::Done(_) => Op::Assigned {
                    mission: m.id.to_string(),
                    agent: agent.to_string(),
                },
                Outcome::Refused { error, .. } => Op::Refused {
                    what: "assign".into(),
                    rule: rule_of(&error),
                    ids: vec![m.id.to_string(), agent.to_string()],
                },
                Outcome::Unknown(_) => Op::Unknown {
                    what: "assign".into(),
                    ids: vec![m.id.to_string(), agent.to_string()],
                },
            };
            self.log.write_as("operator", t0, op);
        }
    }

    // ---- deciding -----------------------------------------------------------------

    /// `who`'s inbox (the operator's or the lead's): every delivery logged and
    /// acknowledged; a question that needs a decision decided first.
    async fn inbox(&self, guild: Guild, who: String, mut stop: watch::Receiver<bool>) {
        let mut n = 0u64;
        loop {
            if *stop.borrow() {
                return;
            }
            if self.control.idle() {
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
                }
            }
            let bus = guild.bus();
            let got = tokio::select! {
                _ = stop.changed() => return,
                got = bus.consume(Duration::from_secs(1), &[]) => got,
            };
            let d = match got {
                Ok(Some(d)) => d,
                Ok(None) => continue,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            if d.message.kind == MessageType::Question && d.message.requires_decision {
                n += 1;
                self.decide(&guild, &who, &d.message.id, n).await;
            }
            crate::worker::deliver_and_ack(&guild, &self.log, &who, &d).await;
        }
    }

    async fn decide(&self, guild: &Guild, who: &str, question: &MessageId, n: u64) {
        let Ok(id) = MessageId::new(format!("{}-d{n}", who.replace(':', "-"))) else {
            return;
        };
        let reply = bus_api::Reply {
            to_message_id: question.clone(),
            payload: json!({ "decision": "go", "reason": "the chaos suite says so" }),
            is_decision: true,
            subject: None,
            priority: None,
            message_id: Some(id),
        };
        let t0 = now_ms();
        let outcome = settle(PATIENCE, || guild.call::<bus_api::op::Reply>(&reply)).await;
        let op = match outcome {
            Outcome::Done(receipt) => Op::Decided {
                question: question.to_string(),
                msg: receipt.message_id.to_string(),
                to: inboxes(&receipt),
            },
            Outcome::Refused { error, .. } => Op::Refused {
                what: "decide".into(),
                rule: rule_of(&error),
                ids: vec![question.to_string()],
            },
            Outcome::Unknown(_) => Op::Unknown {
                what: "decide".into(),
                ids: vec![question.to_string()],
            },
        };
        self.log.write_as(who, t0, op);
    }

    /// Whether the team is up: the lead and at least `n` workers live, heartbeating.
    pub(crate) async fn staffed(&self, n: usize) -> bool {
        let has_lead = self.inner.lock().is_ok_and(|i| i.lead.is_some());
        let Ok(all) = self.operator.spawner().list(&AgentQuery::default()).await else {
            return false;
        };
        let workers = all
            .iter()
            .filter(|a| {
                a.role == Role::Developer && a.status != AgentStatus::Pending && a.is_live()
            })
            .count();
        has_lead && workers >= n
    }
}
