//! The spawner's scaling decisions: setting a policy, and applying one to the load
//! (`scaling.rs` holds the rule; this is where it meets the registry's other rules).

use super::decide::Draft;
use super::{Event, Role, Scaling, ScalingPolicy, SpawnRequest, Step};
use crate::Rejection;
use crate::id::{AgentId, Principal};

impl Draft<'_> {
    /// The operator, or an orchestrator that is `owner` or above it and may spawn itself,
    /// sets and drops policies. To set one the owner must be live and allowed to spawn;
    /// a policy of an owner that ended may still be dropped.
    pub(super) fn check_scaling_authority(
        &self,
        by: &Principal,
        owner: &AgentId,
        setting: bool,
    ) -> Result<(), Rejection> {
        let o = if setting {
            self.live(owner)?
        } else {
            self.agent(owner)?
        };
        let allowed = match by {
            Principal::Operator => true,
            Principal::Agent(me) => {
                self.agent(me)
                    .is_ok_and(|a| a.is_live() && a.role == Role::Orchestrator)
                    && (me == owner || self.base.is_ancestor(me, owner))
            }
            Principal::Observer | Principal::Service(_) => false,
        };
        if !allowed {
            return Err(self.forbidden(
                by,
                "set_scaling_policy",
                Some(owner),
                "only the operator, or an orchestrator that is the owner or above it, sets its scaling",
            ));
        }
        // The members are spawned as the owner: a setter that may not spawn must not
        // get spawns through a policy.
        self.check_action(by, super::Action::SpawnAgent)?;
        if setting && !o.authority.can_spawn_agents {
            return Err(Rejection::SpawnNotAllowed {
                parent: owner.clone(),
            });
        }
        Ok(())
    }

    pub(super) fn set_scaling(
        &mut self,
        by: &Principal,
        policy: &ScalingPolicy,
    ) -> Result<(), Rejection> {
        policy.validate()?;
        self.check_scaling_authority(by, &policy.owner, true)?;
        let key = (policy.owner.clone(), policy.role.clone());
        let before = self.base.scaling.get(&key);
        let scaling = Scaling {
            policy: policy.clone(),
            set_by: by.clone(),
            set_at: self.now,
            spawned: before.map_or(0, |s| s.spawned),
            last_change_at: before.and_then(|s| s.last_change_at),
            blocked_by: None,
        };
        self.scaling.insert(key, Some(scaling));
        self.emit(Event::ScalingPolicySet {
            agent_id: policy.owner.clone(),
            policy: policy.clone(),
            by: by.clone(),
            at: self.now,
        });
        Ok(())
    }

    /// Applies `owner`'s policy for `role` to `ready` missions. A tick that changes
    /// nothing saves nothing, so every instance may send one.
    pub(super) fn autoscale(
        &mut self,
        owner: &AgentId,
        role: &Role,
        ready: u32,
        awaited: &[AgentId],
    ) -> Result<(), Rejection> {
        let now = self.now;
        let mut s = self.base.scaling(owner, role).cloned().ok_or_else(|| {
            Rejection::UnknownScalingPolicy {
                owner: owner.clone(),
                role: role.clone(),
            }
        })?;
        self.live(owner)?;
        let base = self.base;
        let members: Vec<_> = base.members(owner, role).collect();
        // A member a READY mission waits for is at work in all but name.
        let idle_ones: Vec<_> = members
            .iter()
            .copied()
            .filter(|m| !awaited.contains(&m.id))
            .collect();
        let n = u32::try_from(members.len()).unwrap_or(u32::MAX);
        let as_owner = Principal::Agent(owner.clone());
        match s.step(n, &idle_ones, ready, now) {
            // The load no longer asks for more than there is: what held a scale-up holds
            // nothing now, and a later one held by the same rule is told again.
            Step::Hold if s.blocked_by.is_some() && s.policy.wanted_up(ready) <= n => {
                s.blocked_by = None;
            }
            Step::Hold => return Ok(()),
            Step::Up(wanted) => {
                let mut spawned = Vec::new();
                let mut short = None;
                while n as usize + spawned.len() < wanted as usize {
                    let mut id = s.next_member()?;
                    // A name taken by an agent from an earlier policy moves the count on.
                    while self.agent(&id).is_ok() {
                        s.spawned = s.spawned.saturating_add(1);
                        id = s.next_member()?;
                    }
                    let request =
                        SpawnRequest::new(id.clone(), role.clone(), s.policy.agent_budget)
                            .parent(owner.clone());
                    let before = self.checkpoint();
                    match self.spawn(&as_owner, &request) {
                        Ok(()) => {
                            self.agent_mut(&id)?.autoscaled = true;
                            s.spawned = s.spawned.saturating_add(1);
                            spawned.push(id);
                        }
                        Err(refused) => {
                            self.restore(before);
                            short = Some(refused);
                            break;
                        }
                    }
                }
                let told = short
                    .as_ref()
                    .is_some_and(|r| s.blocked_by.as_deref() == Some(r.rule()));
                if spawned.is_empty() && (short.is_none() || told) {
                    return Ok(());
                }
                if !spawned.is_empty() {
                    s.last_change_at = Some(now);
                    self.emit(scaled(&s, ready, n, spawned.clone(), Vec::new(), now));
                }
                if let Some(refused) = &short {
                    if !told {
                        self.emit(Event::ScalingBlocked {
                            agent_id: owner.clone(),
                            role: role.clone(),
                            ready,
                            members: n + spawned.len() as u32,
                            wanted,
                            rule: refused.rule().to_owned(),
                            reason: refused.to_string(),
                            at: now,
                        });
                    }
                    s.blocked_by = Some(refused.rule().to_owned());
                } else {
                    s.blocked_by = None;
                }
            }
            Step::Down(idle) => {
                let reason = format!(
                    "scaled down: idle for {} ms or more with {ready} READY missions",
                    s.policy.idle_ttl_ms
                );
                for id in &idle {
                    self.end(id, false, Some(reason.clone()), &as_owner)?;
                }
                s.last_change_at = Some(now);
                s.blocked_by = None;
                self.emit(scaled(&s, ready, n, Vec::new(), idle, now));
            }
        }
        self.scaling.insert(s.key(), Some(s));
        Ok(())
    }
}

/// The event of a change `s` made: `from` members, plus `spawned`, less `terminated`.
fn scaled(
    s: &Scaling,
    ready: u32,
    from: u32,
    spawned: Vec<AgentId>,
    terminated: Vec<AgentId>,
    at: crate::time::Timestamp,
) -> Event {
    let to = (from as usize + spawned.len()).saturating_sub(terminated.len());
    Event::Scaled {
        agent_id: s.policy.owner.clone(),
        role: s.policy.role.clone(),
        ready,
        from,
        to: u32::try_from(to).unwrap_or(u32::MAX),
        spawned,
        terminated,
        at,
    }
}
