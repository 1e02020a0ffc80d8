//! Requests in, decisions made, records committed, replies out.

use std::sync::Arc;
use std::time::Duration;

use guild_domain::agent::{
    self, ActionName, AgentProfile, AgentQuery, Command, Event, PublicKey, Record, Registry,
    SpawnerEffect, SpawnerStats, Usage,
};
use guild_domain::{AgentId, Effect, MissionId, Principal};
use guild_service::{Outgoing, Planned, Refused, State};
use guild_telemetry::trace::SpanExt;
use guild_wire::api::spawner::{self as api, AgentCredentials};
use guild_wire::api::{Empty, Failure};
use guild_wire::subject;
use guild_wire::{ErrorBody, ErrorCode};

use crate::Config;
use crate::custodian::{Keeper, Minted};

/// The spawner's request handler (and the background loops' way in).
#[derive(Clone)]
pub struct Spawner {
    inner: Arc<Inner>,
}

struct Inner {
    /// For asking mission-svc a mission's budget the first time it is charged.
    client: async_nats::Client,
    state: State<Registry, Record>,
    config: Config,
    /// Mints and revokes credentials; `None` when the service runs insecure.
    keeper: Option<Keeper>,
}

/// A decision's effects, translated: the records to save, and their events and audit
/// entries to publish.
fn translate(effects: Vec<SpawnerEffect>) -> (Vec<Record>, Outgoing) {
    let mut saved = Vec::new();
    let mut out = Outgoing::new(guild_service::now());
    for effect in effects {
        match effect {
            Effect::Save(record) => saved.push(record),
            Effect::Emit(e) => out.event(subject::spawner_event(&e), &e),
            Effect::Audit(a) => out.audit(a.kind, &a.actor, &a.about, a.mission_id, &a.data),
        }
    }
    (saved, out)
}

impl Spawner {
    pub(crate) fn new(
        client: async_nats::Client,
        state: State<Registry, Record>,
        config: Config,
        keeper: Option<Keeper>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                state,
                config,
                keeper,
            }),
        }
    }

    pub(crate) fn keeper(&self) -> Option<&Keeper> {
        self.inner.keeper.as_ref()
    }

    /// The key to mint for, made before the decision so the registry records it; `None`
    /// when insecure (a key the caller sent is then refused: nothing would be minted).
    fn key_for(&self, asked: Option<&PublicKey>) -> Result<Option<Minted>, ErrorBody> {
        match (&self.inner.keeper, asked) {
            (Some(k), asked) => k.key_for(asked).map(Some),
            (None, None) => Ok(None),
            (None, Some(_)) => Err(ErrorBody::unavailable(
                "spawner-svc runs without the custodian's keys (--insecure), so it mints no \
                 credentials; leave public_key out",
            )
            .with_field("public_key")),
        }
    }

    fn credentials(
        &self,
        agent: &AgentId,
        minted: Option<Minted>,
    ) -> Result<Option<AgentCredentials>, ErrorBody> {
        match (&self.inner.keeper, minted) {
            (Some(k), Some(m)) => k.credentials(agent, m).map(Some),
            _ => Ok(None),
        }
    }

    pub(crate) fn client(&self) -> &async_nats::Client {
        &self.inner.client
    }

    pub(crate) fn config(&self) -> &Config {
        &self.inner.config
    }

    pub(crate) fn state(&self) -> &State<Registry, Record> {
        &self.inner.state
    }

    /// Decides `command` for `by` and commits it; returns the records saved.
    pub async fn execute(&self, by: &Principal, command: Command) -> Result<Vec<Record>, Failure> {
        let committed = self
            .inner
            .state
            .commit(|registry| {
                let now = guild_service::now();
                match registry.decide(by, &command, now) {
                    Ok(effects) => {
                        let (saved, outgoing) = translate(effects);
                        Ok(Planned {
                            records: saved.clone(),
                            outgoing,
                            result: saved,
                        })
                    }
                    Err(rejection) => {
                        let effects = registry.refusal_effects(by, &command, &rejection, now);
                        Err(Refused {
                            error: Failure::Rejected(rejection),
                            outgoing: Some(Box::new(translate(effects).1)),
                        })
                    }
                }
            })
            .await?;
        Ok(committed.result)
    }

    /// Reads the registry after syncing it.
    async fn read<R>(&self, f: impl FnOnce(&Registry) -> R) -> Result<R, ErrorBody> {
        self.inner.state.read(f).await
    }

    async fn profile(&self, id: &AgentId) -> Result<AgentProfile, ErrorBody> {
        self.read(|r| r.agent(id).cloned()).await?.ok_or_else(|| {
            ErrorBody::from(guild_domain::Rejection::UnknownAgent { id: id.clone() })
        })
    }

    /// The agent as saved by a command, or as it is if the command changed nothing.
    async fn saved_or_current(
        &self,
        saved: &[Record],
        id: &AgentId,
    ) -> Result<AgentProfile, ErrorBody> {
        let found = saved.iter().find_map(|r| match r {
            Record::Agent(a) if &a.id == id => Some(a.clone()),
            _ => None,
        });
        match found {
            Some(a) => Ok(a),
            None => self.profile(id).await,
        }
    }

    fn changed(saved: Vec<Record>) -> api::Changed {
        api::Changed {
            agents: saved
                .into_iter()
                .filter_map(|r| match r {
                    Record::Agent(a) => Some(a),
                    _ => None,
                })
                .collect(),
        }
    }

    /// A mission's budget, from mission-svc, the first time the mission is charged.
    async fn mission_budget(&self, mission: &MissionId) -> Result<Option<u64>, ErrorBody> {
        // This instance's view is enough to skip the call: a ledger it has not seen yet
        // only costs asking mission-svc, and the decision checks the ledger again.
        if self.inner.state.read_local(|r| r.ledger(mission).is_some()) {
            return Ok(None);
        }
        let missions = guild_sdk::Guild::new(self.inner.client.clone())
            .acting_as(Principal::Service(guild_domain::Service::Spawner))
            .with_timeout(Duration::from_secs(5));
        match missions.missions().get_mission(mission).await {
            Ok(m) => Ok(Some(m.token_budget)),
            Err(e) if e.kind() == guild_sdk::ErrorKind::NoResponders => {
                Err(ErrorBody::unavailable(
                    "mission-svc is not running, so mission budgets cannot be checked; start it or reserve without mission_id",
                ))
            }
            Err(e) => Err(e.into_body().with_field("mission_id")),
        }
    }
}

impl api::Handler for Spawner {
    async fn spawn(
        &self,
        by: Principal,
        request: guild_domain::agent::SpawnRequest,
    ) -> Result<api::Spawned, Failure> {
        let mut spawn = request;
        let minted = self.key_for(spawn.public_key.as_ref())?;
        spawn.public_key = minted.as_ref().map(|m| m.public_key.clone());
        let id = spawn.id.clone();
        let span = tracing::Span::current();
        span.attr("guild.agent.id", id.as_str());
        span.attr_with("guild.agent.role", || spawn.role.to_string());
        span.attr("guild.tokens", spawn.token_budget);
        let started = std::time::Instant::now();
        let saved = self.execute(&by, Command::Spawn(spawn)).await?;
        guild_telemetry::metrics::instruments()
            .spawn_time
            .record(started.elapsed().as_secs_f64(), &[]);
        Ok(api::Spawned {
            agent: self.saved_or_current(&saved, &id).await?,
            credentials: self.credentials(&id, minted)?,
        })
    }

    async fn issue_credentials(
        &self,
        by: Principal,
        r: api::IssueCredentials,
    ) -> Result<api::Spawned, Failure> {
        let minted = self.key_for(r.public_key.as_ref())?.ok_or_else(|| {
            ErrorBody::unavailable(
                "spawner-svc runs without the custodian's keys (--insecure): there are \
                 no credentials to issue",
            )
        })?;
        let cmd = Command::IssueCredentials {
            agent: r.agent_id.clone(),
            public_key: minted.public_key.clone(),
        };
        let saved = self.execute(&by, cmd).await?;
        Ok(api::Spawned {
            agent: self.saved_or_current(&saved, &r.agent_id).await?,
            credentials: self.credentials(&r.agent_id, Some(minted))?,
        })
    }

    async fn get(&self, _by: Principal, r: api::AgentRef) -> Result<AgentProfile, Failure> {
        Ok(self.profile(&r.agent_id).await?)
    }

    async fn list(&self, _by: Principal, q: AgentQuery) -> Result<api::AgentList, Failure> {
        let agents = self
            .read(|r| r.find(&q, false).into_iter().cloned().collect())
            .await?;
        Ok(api::AgentList { agents })
    }

    async fn find_available_agents(
        &self,
        _by: Principal,
        q: AgentQuery,
    ) -> Result<api::AgentList, Failure> {
        let agents = self
            .read(|r| r.find(&q, true).into_iter().cloned().collect())
            .await?;
        Ok(api::AgentList { agents })
    }

    async fn allocate_task(
        &self,
        by: Principal,
        r: api::AllocateTask,
    ) -> Result<AgentProfile, Failure> {
        let saved = self
            .execute(
                &by,
                Command::AllocateTask {
                    agent: r.agent_id.clone(),
                    task: r.task_id,
                    phase: r.phase,
                },
            )
            .await?;
        Ok(self.saved_or_current(&saved, &r.agent_id).await?)
    }

    async fn release_task(
        &self,
        by: Principal,
        r: api::ReleaseTask,
    ) -> Result<AgentProfile, Failure> {
        let reason = r.reason.unwrap_or_else(|| "released".into());
        let saved = self
            .execute(
                &by,
                Command::ReleaseTask {
                    agent: r.agent_id.clone(),
                    task: r.task_id,
                    allocated_at: r.allocated_at,
                    reason,
                },
            )
            .await?;
        Ok(self.saved_or_current(&saved, &r.agent_id).await?)
    }

    async fn set_status(&self, by: Principal, r: api::SetStatus) -> Result<AgentProfile, Failure> {
        let saved = self
            .execute(
                &by,
                Command::SetStatus {
                    agent: r.agent_id.clone(),
                    status: r.status,
                    reason: r.reason,
                },
            )
            .await?;
        Ok(self.saved_or_current(&saved, &r.agent_id).await?)
    }

    async fn pause(&self, by: Principal, r: api::Pause) -> Result<api::Changed, Failure> {
        let saved = self
            .execute(
                &by,
                Command::Pause {
                    agent: r.agent_id,
                    reason: r.reason,
                    subtree: r.subtree,
                },
            )
            .await?;
        Ok(Self::changed(saved))
    }

    async fn resume(&self, by: Principal, r: api::Resume) -> Result<api::Changed, Failure> {
        let saved = self
            .execute(
                &by,
                Command::Resume {
                    agent: r.agent_id,
                    subtree: r.subtree,
                },
            )
            .await?;
        Ok(Self::changed(saved))
    }

    async fn terminate(&self, by: Principal, r: api::Terminate) -> Result<api::Changed, Failure> {
        let cmd = Command::Terminate {
            agent: r.agent_id,
            subtree: r.subtree,
            failed: r.failed,
            reason: r.reason,
        };
        Ok(Self::changed(self.execute(&by, cmd).await?))
    }

    async fn heartbeat(
        &self,
        by: Principal,
        r: api::Heartbeat,
    ) -> Result<api::HeartbeatAck, Failure> {
        let agent = by.agent().cloned().ok_or_else(|| {
            ErrorBody::new(
                ErrorCode::BadRequest,
                "heartbeat_from_agent",
                "a heartbeat comes from an agent: send it to guild.spawner.v1.heartbeat.<agent_id>",
            )
            .with_field("subject")
        })?;
        let saved = self
            .execute(
                &by,
                Command::Heartbeat {
                    agent: agent.clone(),
                    context: r.context_window,
                },
            )
            .await?;
        let a = self.saved_or_current(&saved, &agent).await?;
        Ok(api::HeartbeatAck {
            status: a.status,
            status_reason: a.status_reason,
            heartbeat_window_ms: self.inner.config.heartbeat_window.as_millis() as u64,
        })
    }

    async fn authorize(
        &self,
        _by: Principal,
        r: api::Authorize,
    ) -> Result<api::Authorization, Failure> {
        let verdict = self
            .read(|reg| reg.authorize(&r.agent_id, ActionName::parse(&r.action), r.phase))
            .await?;
        match verdict {
            Ok(()) => Ok(api::Authorization {
                allowed: true,
                reason: None,
            }),
            Err(guild_domain::Rejection::Forbidden { reason, .. }) => {
                // A tool action refused is a governance fact: publish and audit it.
                let denied = Event::AuthorityDenied {
                    by: Principal::Agent(r.agent_id.clone()),
                    action: r.action.clone(),
                    target: Some(r.agent_id.clone()),
                    reason: reason.clone(),
                    at: guild_service::now(),
                };
                let by = Principal::Agent(r.agent_id.clone());
                let out = translate(agent::SpawnerEffect::announced(&by, [denied])).1;
                if let Err(e) = self.inner.state.announce_refusal(&out).await {
                    tracing::warn!(error = %e, "could not publish a denial");
                }
                Ok(api::Authorization {
                    allowed: false,
                    reason: Some(reason),
                })
            }
            Err(other) => Err(other.into()),
        }
    }

    async fn reserve_tokens(
        &self,
        by: Principal,
        r: api::ReserveTokens,
    ) -> Result<api::Reserved, Failure> {
        let mission_budget = match &r.mission_id {
            Some(m) => self.mission_budget(m).await?,
            None => None,
        };
        let cmd = Command::Reserve {
            agent: r.agent_id.clone(),
            reservation: r.reservation_id.clone(),
            amount: r.amount,
            mission: r.mission_id,
            mission_budget,
        };
        let saved = self.execute(&by, cmd).await?;
        let a = self.saved_or_current(&saved, &r.agent_id).await?;
        let reservation = a
            .reservation(&r.reservation_id)
            .cloned()
            .ok_or_else(|| ErrorBody::internal("reservation missing after commit"))?;
        Ok(api::Reserved {
            reservation,
            budget: a.budget,
        })
    }

    async fn commit_tokens(
        &self,
        by: Principal,
        r: api::CommitTokens,
    ) -> Result<api::BudgetOf, Failure> {
        let saved = self
            .execute(
                &by,
                Command::Commit {
                    agent: r.agent_id.clone(),
                    reservation: r.reservation_id,
                    used: Usage {
                        used: r.used,
                        input_tokens: r.input_tokens,
                        output_tokens: r.output_tokens,
                    },
                },
            )
            .await?;
        let a = self.saved_or_current(&saved, &r.agent_id).await?;
        Ok(api::BudgetOf {
            agent_id: a.id,
            budget: a.budget,
        })
    }

    async fn release_tokens(
        &self,
        by: Principal,
        r: api::ReleaseTokens,
    ) -> Result<api::BudgetOf, Failure> {
        let saved = self
            .execute(
                &by,
                Command::Release {
                    agent: r.agent_id.clone(),
                    reservation: r.reservation_id,
                },
            )
            .await?;
        let a = self.saved_or_current(&saved, &r.agent_id).await?;
        Ok(api::BudgetOf {
            agent_id: a.id,
            budget: a.budget,
        })
    }

    async fn reallocate_budget(
        &self,
        by: Principal,
        r: api::ReallocateBudget,
    ) -> Result<api::Reallocated, Failure> {
        let saved = self
            .execute(
                &by,
                Command::Reallocate {
                    from: r.from.clone(),
                    to: r.to.clone(),
                    amount: r.amount,
                },
            )
            .await?;
        let from = self.saved_or_current(&saved, &r.from).await?;
        let to = self.saved_or_current(&saved, &r.to).await?;
        Ok(api::Reallocated {
            from: api::BudgetOf {
                agent_id: from.id,
                budget: from.budget,
            },
            to: api::BudgetOf {
                agent_id: to.id,
                budget: to.budget,
            },
        })
    }

    async fn set_scaling_policy(
        &self,
        by: Principal,
        policy: agent::ScalingPolicy,
    ) -> Result<api::ScalingState, Failure> {
        let (owner, role) = (policy.owner.clone(), policy.role.clone());
        self.execute(&by, Command::SetScalingPolicy(policy)).await?;
        self.read(|r| scaling_state(r, &owner, &role))
            .await?
            .ok_or_else(|| ErrorBody::internal("scaling policy missing after it was set").into())
    }

    async fn remove_scaling_policy(
        &self,
        by: Principal,
        r: api::ScalingRef,
    ) -> Result<Empty, Failure> {
        let cmd = Command::RemoveScalingPolicy {
            owner: r.owner,
            role: r.role,
        };
        self.execute(&by, cmd).await?;
        Ok(Empty {})
    }

    async fn list_scaling_policies(
        &self,
        _by: Principal,
        q: api::ScalingQuery,
    ) -> Result<api::ScalingList, Failure> {
        let policies = self
            .read(|r| {
                r.scalings()
                    .filter(|s| q.owner.as_ref().is_none_or(|o| &s.policy.owner == o))
                    .filter_map(|s| scaling_state(r, &s.policy.owner, &s.policy.role))
                    .collect()
            })
            .await?;
        Ok(api::ScalingList { policies })
    }

    async fn get_stats(&self, _by: Principal, _: Empty) -> Result<SpawnerStats, Failure> {
        let price = self.inner.config.price_per_1k_tokens;
        Ok(self.read(|r| r.stats(guild_service::now(), price)).await?)
    }
}

/// A policy and its live members, as the wire shows them.
fn scaling_state(r: &Registry, owner: &AgentId, role: &agent::Role) -> Option<api::ScalingState> {
    let scaling = r.scaling(owner, role)?.clone();
    let members = r.members(owner, role).map(|a| a.id.clone()).collect();
    Some(api::ScalingState { scaling, members })
}
