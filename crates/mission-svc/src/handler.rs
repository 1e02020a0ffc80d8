//! Requests in, decisions made, entries appended, agents allocated, replies out.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use guild_domain::agent::{self, Registry, Role};
use guild_domain::mission::{
    self, Board, Command, Event, Mission, MissionEffect, MissionStatus, NewMission,
};
use guild_domain::{AgentId, Effect, MissionId, Principal, Rejection, allocation};
use guild_sdk::Guild;
use guild_service::{Outgoing, Planned, Refused, State};
use guild_store::Journal;
use guild_telemetry::trace::SpanExt;
use guild_wire::api::mission as api;
use guild_wire::api::{Empty, Failure};
use guild_wire::{ErrorBody, ErrorCode, subject};

use crate::Config;

/// The mission manager's request handler (and the background loops' way in).
#[derive(Clone)]
pub struct Missions {
    inner: Arc<Inner>,
}

struct Inner {
    /// For calls to spawner-svc (allocating and releasing agents).
    client: async_nats::Client,
    js: jetstream::Context,
    state: State<Board, Mission>,
    /// The spawner's registry, followed read-only: callers' authority, agents to assign.
    registry: Journal<Registry, agent::Record>,
    config: Config,
}

/// A decision's effects, translated: the missions to save, and their events and audit
/// entries to publish.
fn translate(effects: Vec<MissionEffect>) -> (Vec<Mission>, Outgoing) {
    let mut saved = Vec::new();
    let mut out = Outgoing::new(guild_service::now());
    for effect in effects {
        match effect {
            Effect::Save(m) => saved.push(m),
            Effect::Emit(e) => out.event(subject::mission_event(&e), &e),
            Effect::Audit(a) => out.audit(a.kind, &a.actor, &a.about, a.mission_id, &a.data),
        }
    }
    (saved, out)
}

/// How many candidates one `claim_next` tries before it gives up: each lost race reads the
/// list again, so this bounds the work a crowd of claimers makes, not what can be claimed.
const CLAIM_TRIES: usize = 16;

/// How a start was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ask {
    /// For a named mission (`assign_mission`, a retry on another agent): one another agent
    /// runs is a claim conflict, published for the bus to escalate.
    Named,
    /// As a claimer's next candidate (`claim_next`): losing it to another claimer is the
    /// normal course of a crowd of claimers, not a conflict anyone must settle.
    Next,
}

/// An authority refusal, audited as a denial like every service's.
fn denied(by: &Principal, rejection: &Rejection, target: Option<&AgentId>) -> Refused {
    Refused::denied(by, rejection, target.cloned())
}

impl Missions {
    pub(crate) fn new(
        client: async_nats::Client,
        js: jetstream::Context,
        state: State<Board, Mission>,
        registry: Journal<Registry, agent::Record>,
        config: Config,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                js,
                state,
                registry,
                config,
            }),
        }
    }

    pub(crate) fn config(&self) -> &Config {
        &self.inner.config
    }

    pub(crate) fn state(&self) -> &State<Board, Mission> {
        &self.inner.state
    }

    pub(crate) fn registry(&self) -> &Journal<Registry, agent::Record> {
        &self.inner.registry
    }

    pub(crate) fn js(&self) -> &jetstream::Context {
        &self.inner.js
    }

    /// A client of the other services, acting as `by`.
    pub(crate) fn guild(&self, by: &Principal) -> Guild {
        Guild::new(self.inner.client.clone())
            .acting_as(by.clone())
            .with_timeout(Duration::from_secs(5))
    }

    /// Checks `by`'s authority for `command` (the board's rule, `Board::authorize`); a
    /// refusal is recorded as a denial.
    fn authorize(&self, board: &Board, by: &Principal, command: &Command) -> Result<(), Refused> {
        self.inner
            .registry
            .read(|r| board.authorize(r, by, command))
            .map_err(|d| denied(by, &d.rejection, d.target.as_ref()))
    }

    /// Decides `command` for `by` and appends it; returns the missions saved.
    pub async fn execute(
        &self,
        by: &Principal,
        command: Command,
    ) -> Result<Vec<Mission>, ErrorBody> {
        Ok(self.execute_checked(by, command, || Ok(())).await?)
    }

    /// [`execute`](Self::execute), with `check` made each time the command is decided
    /// (a start's deadline: `allocation::start_in_time`). A rule's refusal stays typed, so
    /// a claim can tell a mission taken first from a refusal of the claimer.
    async fn execute_checked(
        &self,
        by: &Principal,
        command: Command,
        check: impl Fn() -> Result<(), Refused>,
    ) -> Result<Vec<Mission>, Failure> {
        let committed = self
            .inner
            .state
            .commit(|board| {
                check()?;
                self.authorize(board, by, &command)?;
                let effects = board.decide(by, &command, guild_service::now())?;
                let (saved, outgoing) = translate(effects);
                // Who this change frees, judged on the state it was decided on: an
                // instance's earlier view may not have folded the start yet.
                let freed: Vec<(AgentId, MissionId, String)> = saved
                    .iter()
                    .filter_map(|after| {
                        let agent = allocation::freed_by(board.mission(&after.id), after)?;
                        let reason = match &after.assigned_agent_id {
                            Some(to) if after.status == MissionStatus::Active => {
                                format!("handed off to {to}")
                            }
                            _ => format!("mission {}", after.status.as_str().to_lowercase()),
                        };
                        Some((agent, after.id.clone(), reason))
                    })
                    .collect();
                Ok(Planned {
                    records: saved.clone(),
                    outgoing,
                    result: (saved, freed),
                })
            })
            .await?;
        let (saved, freed) = committed.result;
        for (agent, mission, reason) in &freed {
            self.release(agent, mission, reason).await;
        }
        Ok(saved)
    }

    /// Publishes a mission event with no state change behind it (`waiting`).
    pub(crate) async fn announce(&self, event: Event) -> Result<(), ErrorBody> {
        self.inner
            .state
            .announce(
                &translate(mission::MissionEffect::announced(
                    &Principal::Service(guild_domain::Service::Mission),
                    [event],
                ))
                .1,
            )
            .await
            .map(|_| ())
    }

    async fn read<T>(&self, f: impl FnOnce(&Board) -> T) -> Result<T, ErrorBody> {
        self.inner.state.read(f).await
    }

    async fn mission(&self, id: &MissionId) -> Result<Mission, ErrorBody> {
        self.read(|b| b.mission(id).cloned())
            .await?
            .ok_or_else(|| ErrorBody::from(Rejection::UnknownMission { id: id.clone() }))
    }

    fn saved_or(saved: &[Mission], id: &MissionId) -> Option<Mission> {
        saved.iter().find(|m| &m.id == id).cloned()
    }

    async fn saved_or_current(
        &self,
        saved: &[Mission],
        id: &MissionId,
    ) -> Result<Mission, ErrorBody> {
        match Self::saved_or(saved, id) {
            Some(m) => Ok(m),
            None => self.mission(id).await,
        }
    }

    /// Starts a READY mission on an agent: the spawner allocates the agent first (it
    /// checks the agent is free and may work in the mission's phase); if the start cannot
    /// be appended, the allocation is undone.
    pub async fn assign(
        &self,
        by: &Principal,
        mission_id: &MissionId,
        agent: Option<AgentId>,
    ) -> Result<Mission, ErrorBody> {
        Ok(self.start_on(by, mission_id, agent, Ask::Named).await?)
    }

    /// [`assign`](Self::assign), asked for as `ask` says, its refusal still typed.
    async fn start_on(
        &self,
        by: &Principal,
        mission_id: &MissionId,
        agent: Option<AgentId>,
        ask: Ask,
    ) -> Result<Mission, Failure> {
        self.inner
            .state
            .sync()
            .await
            .map_err(|e| ErrorBody::from(&e))?;
        let now = guild_service::now();
        let checked =
            self.inner
                .state
                .read_local(|b| -> Result<(AgentId, guild_domain::Phase), Refused> {
                    let m = b
                        .mission(mission_id)
                        .ok_or_else(|| Rejection::UnknownMission {
                            id: mission_id.clone(),
                        })?;
                    let agent = agent
                        .clone()
                        .or_else(|| m.assigned_agent_id.clone())
                        .ok_or_else(|| {
                            ErrorBody::new(
                            ErrorCode::BadRequest,
                            "no_agent",
                            format!(
                                "mission {mission_id} has no assigned agent; name one in agent_id"
                            ),
                        )
                        .with_field("agent_id")
                        })?;
                    let start = Command::Start {
                        mission: mission_id.clone(),
                        agent: agent.clone(),
                    };
                    self.authorize(b, by, &start)?;
                    // A dry run, so a refusal (not READY, group limit) touches no agent.
                    // A claim on a mission another agent runs is refused, and published so
                    // the bus escalates it instead of the last claim winning; a claimer
                    // that lost the race for its candidate only moves on.
                    if let Err(e) = b.decide(by, &start, now) {
                        let conflict = (ask == Ask::Named)
                            .then(|| b.claim_conflict(by, mission_id, &agent, now))
                            .flatten();
                        return Err(Refused {
                            error: Failure::Rejected(e),
                            outgoing: conflict.map(|c| {
                                Box::new(translate(mission::MissionEffect::announced(by, [c])).1)
                            }),
                        });
                    }
                    Ok((agent, m.phase))
                });
        let (agent, phase) = match checked {
            Ok(found) => found,
            Err(refused) => {
                if let Some(out) = refused.outgoing
                    && let Err(e) = self.inner.state.announce(&out).await
                {
                    tracing::warn!(error = %e, "could not publish a refused claim's conflict");
                    guild_telemetry::metrics::count_error("refusal_unpublished");
                }
                return Err(refused.error);
            }
        };
        let allocated_at = self
            .guild(by)
            .spawner()
            .allocate_task(&agent, mission_id, Some(phase))
            .await
            .map_err(guild_sdk::Error::into_body)?
            .assigned_at;
        let start = Command::Start {
            mission: mission_id.clone(),
            agent: agent.clone(),
        };
        match self
            .execute_checked(by, start, || self.start_in_time(allocated_at))
            .await
        {
            Ok(saved) => Ok(self.saved_or_current(&saved, mission_id).await?),
            Err(e) => {
                self.release_allocation(
                    &agent,
                    mission_id,
                    allocated_at,
                    "the mission could not start",
                )
                .await;
                Err(e)
            }
        }
    }

    /// A start follows its allocation within the grace period, or not at all
    /// (`allocation::start_in_time`): past it the reconciler may count the allocation
    /// stray.
    fn start_in_time(&self, allocated_at: Option<guild_domain::Timestamp>) -> Result<(), Refused> {
        let grace = self.allocation_grace_ms();
        match allocated_at {
            Some(t) if allocation::start_in_time(t, guild_service::now(), grace) => Ok(()),
            _ => Err(ErrorBody::unavailable(format!(
                "the agent's allocation is older than {grace} ms, too old to start on; assign again"
            ))
            .into()),
        }
    }

    /// The time a start has to follow its allocation: a reconcile period.
    pub(crate) fn allocation_grace_ms(&self) -> u64 {
        u64::try_from(self.inner.config.reconcile_every.as_millis()).unwrap_or(u64::MAX)
    }

    /// Hands an ACTIVE mission from `from` to `to` (the bus's HANDOFF): the spawner
    /// allocates `to` first (free, allowed in the mission's phase), the board records the
    /// move, and `from` is released (by `execute`, as for every change that frees one). A move that cannot be appended releases `to` again.
    pub async fn reassign(
        &self,
        by: &Principal,
        r: api::ReassignMission,
    ) -> Result<Mission, ErrorBody> {
        self.inner
            .state
            .sync()
            .await
            .map_err(|e| ErrorBody::from(&e))?;
        let command = Command::Reassign {
            mission: r.mission_id.clone(),
            from: r.from.clone(),
            to: r.to.clone(),
        };
        let now = guild_service::now();
        let checked = self
            .inner
            .state
            .read_local(|b| -> Result<guild_domain::Phase, Refused> {
                self.authorize(b, by, &command)?;
                b.decide(by, &command, now)?;
                b.mission(&r.mission_id).map(|m| m.phase).ok_or_else(|| {
                    Rejection::UnknownMission {
                        id: r.mission_id.clone(),
                    }
                    .into()
                })
            });
        let phase = match checked {
            Ok(p) => p,
            Err(refused) => {
                if let Some(out) = refused.outgoing
                    && let Err(e) = self.inner.state.announce(&out).await
                {
                    tracing::warn!(error = %e, "could not publish a refused claim's conflict");
                    guild_telemetry::metrics::count_error("refusal_unpublished");
                }
                return Err(refused.error.into());
            }
        };
        // The caller's authority was checked above (it runs the mission, or oversees the
        // agent that does); the receiver is usually not the caller's to manage, so the
        // service allocates on its own account. The spawner still checks the receiver is
        // free and may work in the mission's phase.
        let allocated_at = self
            .guild(&Principal::Service(guild_domain::Service::Mission))
            .spawner()
            .allocate_task(&r.to, &r.mission_id, Some(phase))
            .await
            .map_err(guild_sdk::Error::into_body)?
            .assigned_at;
        match self
            .execute_checked(by, command, || self.start_in_time(allocated_at))
            .await
        {
            // `execute` freed `from`: the mission left it.
            Ok(saved) => self.saved_or_current(&saved, &r.mission_id).await,
            Err(e) => {
                self.release_allocation(
                    &r.to,
                    &r.mission_id,
                    allocated_at,
                    "the handoff could not be recorded",
                )
                .await;
                Err(e.into())
            }
        }
    }

    /// Starts `caller`'s next mission (`claim_next`): the candidates of
    /// `allocation::claims`, best first, each started as [`assign`](Self::assign) starts
    /// one. A candidate another claimer started first is passed over
    /// (`allocation::claim_moves_on`) and the list read again; any other refusal (the
    /// caller already holds a task, is paused, may not assign) is the answer. `None` when
    /// no candidate is left.
    pub(crate) async fn claim(
        &self,
        by: &Principal,
        caller: &AgentId,
        role: &Role,
    ) -> Result<Option<Mission>, Failure> {
        let mut passed: BTreeSet<MissionId> = BTreeSet::new();
        for _ in 0..CLAIM_TRIES {
            let next = self
                .read(|b| {
                    self.inner.registry.read(|r| {
                        allocation::claims(b, r, caller, role)
                            .into_iter()
                            .find(|id| !passed.contains(id))
                    })
                })
                .await?;
            let Some(id) = next else {
                return Ok(None);
            };
            match self
                .start_on(by, &id, Some(caller.clone()), Ask::Next)
                .await
            {
                Ok(m) => return Ok(Some(m)),
                Err(Failure::Rejected(r)) if allocation::claim_moves_on(&r) => {
                    tracing::debug!(agent = %caller, mission = %id, error = %r, "claim passed over a mission");
                    passed.insert(id);
                }
                Err(e) => return Err(e),
            }
        }
        // Every try was passed over (more claimers than missions at the top of the list, or
        // a group limit holding them all back). Candidates remain, so `None` would be a lie:
        // the caller claims again.
        Err(ErrorBody::new(
            ErrorCode::Conflict,
            "claim_contended",
            format!(
                "{CLAIM_TRIES} missions of role {role} could not start on {caller} (another claimer started them first, or their group waits for the group limit); claim again"
            ),
        )
        .into())
    }

    /// The caller's role, from the followed registry; synced once when the caller is not
    /// in it yet (spawned a moment ago, through another instance).
    async fn role_of(&self, agent: &AgentId) -> Result<Role, Failure> {
        let role = |r: &Registry| r.agent(agent).map(|a| a.role.clone());
        if let Some(found) = self.inner.registry.read(role) {
            return Ok(found);
        }
        self.inner
            .registry
            .sync()
            .await
            .map_err(|e| ErrorBody::from(&e))?;
        self.inner
            .registry
            .read(role)
            .ok_or_else(|| Rejection::UnknownAgent { id: agent.clone() }.into())
    }

    /// Gives an agent's task back to the spawner (best effort: the reconciler repeats it).
    pub(crate) async fn release(&self, agent: &AgentId, mission: &MissionId, reason: &str) {
        self.release_allocation(agent, mission, None, reason).await;
    }

    /// [`release`](Self::release), of the allocation made at `allocated_at` only (when
    /// given): undoing one's own allocation never releases a later one.
    pub(crate) async fn release_allocation(
        &self,
        agent: &AgentId,
        mission: &MissionId,
        allocated_at: Option<guild_domain::Timestamp>,
        reason: &str,
    ) {
        let released = self
            .guild(&Principal::Service(guild_domain::Service::Mission))
            .spawner()
            .release_task(&guild_wire::api::spawner::ReleaseTask {
                agent_id: agent.clone(),
                task_id: Some(mission.clone()),
                allocated_at,
                reason: Some(reason.to_owned()),
            })
            .await;
        if let Err(e) = released {
            tracing::debug!(agent = %agent, mission = %mission, error = %e, "release skipped");
        }
    }

    /// Runs `command` on one mission (its agent is freed by `execute` if it left it).
    async fn transition(
        &self,
        by: &Principal,
        id: &MissionId,
        command: Command,
    ) -> Result<Mission, ErrorBody> {
        let saved = self.execute(by, command).await?;
        self.saved_or_current(&saved, id).await
    }
}

impl api::Handler for Missions {
    async fn create_mission(&self, by: Principal, nm: NewMission) -> Result<Mission, Failure> {
        if let Some(agent) = &nm.assigned_agent_id
            && self.inner.registry.read(|r| r.agent(agent).is_none())
        {
            return Err(
                ErrorBody::from(Rejection::UnknownAgent { id: agent.clone() })
                    .with_field("assigned_agent_id")
                    .into(),
            );
        }
        let id = nm.id.clone();
        let saved = self.execute(&by, Command::Create(nm)).await?;
        Ok(self.saved_or_current(&saved, &id).await?)
    }

    async fn add_dependency(
        &self,
        by: Principal,
        r: api::AddDependency,
    ) -> Result<Mission, Failure> {
        let saved = self
            .execute(
                &by,
                Command::AddDependency {
                    mission: r.mission_id.clone(),
                    on: r.depends_on,
                    severity: r.severity,
                },
            )
            .await?;
        Ok(self.saved_or_current(&saved, &r.mission_id).await?)
    }

    async fn remove_dependency(
        &self,
        by: Principal,
        r: api::RemoveDependency,
    ) -> Result<Mission, Failure> {
        let saved = self
            .execute(
                &by,
                Command::RemoveDependency {
                    mission: r.mission_id.clone(),
                    on: r.depends_on,
                },
            )
            .await?;
        Ok(self.saved_or_current(&saved, &r.mission_id).await?)
    }

    async fn check_ready(
        &self,
        _by: Principal,
        r: api::MissionRef,
    ) -> Result<api::Readiness, Failure> {
        let m = self.mission(&r.mission_id).await?;
        Ok(api::Readiness {
            ready: m.status == MissionStatus::Ready,
            status: m.status,
            waiting_on: m.waiting_on.iter().cloned().collect(),
            mission_id: m.id,
        })
    }

    async fn get_parallelizable_missions(
        &self,
        _by: Principal,
        q: api::GroupsQuery,
    ) -> Result<api::ParallelGroups, Failure> {
        let limit = q.limit.unwrap_or(1000) as usize;
        let (groups, missions) = self
            .read(|b: &Board| b.parallel_groups_within(limit))
            .await?;
        let shown: usize = groups.iter().map(|g| g.missions.len()).sum();
        Ok(api::ParallelGroups {
            groups,
            missions: u32::try_from(missions).unwrap_or(u32::MAX),
            truncated: shown < missions,
        })
    }

    async fn assign_mission(
        &self,
        by: Principal,
        r: api::AssignMission,
    ) -> Result<Mission, Failure> {
        tracing::Span::current().attr("guild.mission.id", r.mission_id.as_str());
        Ok(self.assign(&by, &r.mission_id, r.agent_id).await?)
    }

    async fn reassign_mission(
        &self,
        by: Principal,
        r: api::ReassignMission,
    ) -> Result<Mission, Failure> {
        Ok(self.reassign(&by, r).await?)
    }

    async fn claim_next(&self, by: Principal, r: api::ClaimNext) -> Result<api::Claimed, Failure> {
        // The caller claims for itself: the operator or a service names the agent with
        // assign_mission instead.
        let Principal::Agent(caller) = &by else {
            return Err(Rejection::AgentOnly {
                operation: "claim_next",
            }
            .into());
        };
        let own = self.role_of(caller).await?;
        let role = allocation::claim_role(caller, &own, r.role.as_ref())?;
        let mission = self.claim(&by, caller, &role).await?;
        if let Some(m) = &mission {
            tracing::Span::current().attr("guild.mission.id", m.id.as_str());
        }
        Ok(api::Claimed { mission })
    }

    async fn mark_complete(
        &self,
        by: Principal,
        r: api::MarkComplete,
    ) -> Result<api::MissionOutcome, Failure> {
        tracing::Span::current().attr("guild.mission.id", r.mission_id.as_str());
        let cmd = Command::Complete {
            mission: r.mission_id.clone(),
            output: r.output_data,
            quality_score: r.quality_score,
        };
        // The seed's dependency resolution: until the dependents this completion
        // made READY are appended and their `ready` events sent.
        let started = std::time::Instant::now();
        let mission = self.transition(&by, &r.mission_id, cmd).await?;
        guild_telemetry::metrics::instruments()
            .dependency_resolution
            .record(started.elapsed().as_secs_f64(), &[]);
        Ok(api::MissionOutcome {
            will_retry: mission.status == MissionStatus::Ready,
            mission,
        })
    }

    async fn mark_failed(
        &self,
        by: Principal,
        r: api::MarkFailed,
    ) -> Result<api::MissionOutcome, Failure> {
        tracing::Span::current().attr("guild.mission.id", r.mission_id.as_str());
        let cmd = Command::Fail {
            mission: r.mission_id.clone(),
            reason: r.reason,
            retry: r.retry,
            agent_lost: false,
        };
        let mission = self.transition(&by, &r.mission_id, cmd).await?;
        Ok(api::MissionOutcome {
            will_retry: mission.status == MissionStatus::Ready,
            mission,
        })
    }

    async fn cancel_mission(
        &self,
        by: Principal,
        r: api::CancelMission,
    ) -> Result<Mission, Failure> {
        let cmd = Command::Cancel {
            mission: r.mission_id.clone(),
            reason: r.reason,
        };
        Ok(self.transition(&by, &r.mission_id, cmd).await?)
    }

    async fn archive_missions(
        &self,
        by: Principal,
        r: api::ArchiveMissions,
    ) -> Result<api::Archived, Failure> {
        let cmd = match (r.mission_id, r.older_than_ms) {
            (Some(mission), None) => Command::Archive { mission },
            (None, Some(older_than_ms)) => Command::ArchiveOlderThan { older_than_ms },
            _ => {
                return Err(ErrorBody::new(
                    ErrorCode::BadRequest,
                    "invalid_field",
                    "give exactly one of mission_id and older_than_ms",
                )
                .with_field("mission_id")
                .into());
            }
        };
        let saved = self.execute(&by, cmd).await?;
        let archived = saved
            .into_iter()
            .filter(|m| m.status == MissionStatus::Archived)
            .map(|m| m.id)
            .collect();
        Ok(api::Archived { archived })
    }

    async fn get_mission(&self, _by: Principal, r: api::MissionRef) -> Result<Mission, Failure> {
        Ok(self.mission(&r.mission_id).await?)
    }

    async fn list_missions(
        &self,
        _by: Principal,
        q: api::MissionQuery,
    ) -> Result<api::MissionList, Failure> {
        let limit = q.limit.unwrap_or(1000) as usize;
        let list = self
            .read(|b| {
                let mut all: Vec<&Mission> = b
                    .missions()
                    .filter(|m| q.include_archived || m.status != MissionStatus::Archived)
                    .filter(|m| q.status.is_none_or(|s| m.status == s))
                    .filter(|m| q.phase.is_none_or(|p| m.phase == p))
                    .filter(|m| {
                        q.agent_id
                            .as_ref()
                            .is_none_or(|a| m.assigned_agent_id.as_ref() == Some(a))
                    })
                    .collect();
                all.sort_by(|a, b| {
                    b.created_at
                        .cmp(&a.created_at)
                        .then_with(|| a.id.cmp(&b.id))
                });
                let total = all.len() as u32;
                api::MissionList {
                    missions: all.into_iter().take(limit).cloned().collect(),
                    total,
                }
            })
            .await?;
        Ok(list)
    }

    async fn get_outputs(
        &self,
        _by: Principal,
        q: api::OutputQuery,
    ) -> Result<api::Outputs, Failure> {
        let outputs = self
            .read(|b| {
                let mut out: Vec<api::Output> = b
                    .missions()
                    .filter(|m| m.outcome() == Some(MissionStatus::Completed))
                    .filter(|m| q.mission_id.as_ref().is_none_or(|id| &m.id == id))
                    .filter(|m| q.phase.is_none_or(|p| m.phase == p))
                    .map(|m| api::Output {
                        mission_id: m.id.clone(),
                        name: m.name.clone(),
                        phase: m.phase,
                        output_data: m.output_data.clone(),
                        quality_score: m.quality_score,
                        finished_at: m.finished_at,
                    })
                    .collect();
                out.sort_by(|a, b| {
                    a.finished_at
                        .cmp(&b.finished_at)
                        .then_with(|| a.mission_id.cmp(&b.mission_id))
                });
                out
            })
            .await?;
        if let (Some(id), true) = (&q.mission_id, outputs.is_empty()) {
            let m = self.mission(id).await?;
            return Err(ErrorBody::new(
                ErrorCode::Conflict,
                "no_output",
                format!("mission {id} is {}; outputs come with completion", m.status),
            )
            .into());
        }
        Ok(api::Outputs { outputs })
    }

    async fn phase_status(
        &self,
        _by: Principal,
        r: api::PhaseRef,
    ) -> Result<api::PhaseStatus, Failure> {
        let (complete, by_status) = self
            .read(|b| {
                let mut counts: BTreeMap<MissionStatus, u32> = BTreeMap::new();
                for m in b.missions().filter(|m| m.phase == r.phase) {
                    *counts.entry(m.status).or_default() += 1;
                }
                (b.phase_complete(r.phase), counts)
            })
            .await?;
        let name = self.inner.config.phase_names.name(r.phase).to_owned();
        Ok(api::PhaseStatus {
            phase: r.phase,
            name,
            complete,
            by_status,
        })
    }

    async fn get_statistics(
        &self,
        _by: Principal,
        _: Empty,
    ) -> Result<api::MissionStatistics, Failure> {
        let missions = self.read(|b| b.stats(guild_service::now())).await?;
        self.inner
            .registry
            .sync()
            .await
            .map_err(|e| ErrorBody::from(&e))?;
        let (tokens_used, tokens_reserved) = self.inner.registry.read(|r| {
            r.ledgers()
                .fold((0, 0), |(u, res), l| (u + l.used, res + l.reserved))
        });
        Ok(api::MissionStatistics {
            missions,
            tokens_used,
            tokens_reserved,
        })
    }
}
