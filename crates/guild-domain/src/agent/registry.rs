//! The spawner's state and its read-side queries.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{
    Action, ActionName, AgentProfile, AgentQuery, AgentStatus, Limits, MissionLedger, Pool, Role,
    Scaling,
};
use crate::error::Rejection;
use crate::id::{AgentId, MissionId, Principal};
use crate::message::{QuestionState, Recipient};
use crate::phase::Phase;
use crate::time::Timestamp;

/// One durable piece of spawner state. A service stores each under its own key and feeds
/// whatever it reads back through [`Registry::apply`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "SpawnerRecord"))]
#[serde(tag = "record", content = "value", rename_all = "snake_case")]
// Records are built once per decision and moved into a batch; boxing the big one buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Record {
    /// An agent.
    Agent(AgentProfile),
    /// The global pool.
    Pool(Pool),
    /// A mission's token account.
    Ledger(MissionLedger),
    /// The parallelization-efficiency integral.
    Efficiency(Efficiency),
    /// A scaling policy in force.
    Scaling(Scaling),
    /// A scaling policy dropped.
    ScalingRemoved {
        /// Its owner.
        owner: AgentId,
        /// Its role.
        role: Role,
    },
}

/// Time-weighted parallelization efficiency (working agents over max agents), sampled.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Efficiency {
    /// When sampling began.
    pub started_at: Timestamp,
    /// The last sample's time.
    pub last_sample_at: Timestamp,
    /// The last sample's ratio.
    pub last_ratio: f64,
    /// The integral of the ratio over time, in ratio × milliseconds, up to the last sample.
    pub ratio_ms: f64,
}

impl Efficiency {
    /// No samples yet.
    pub const fn starting(at: Timestamp) -> Self {
        Self {
            started_at: at,
            last_sample_at: at,
            last_ratio: 0.0,
            ratio_ms: 0.0,
        }
    }

    /// Adds a sample: the previous ratio held from the last sample until `now`.
    pub fn sample(&self, now: Timestamp, ratio: f64) -> Self {
        let held = now.millis_since(self.last_sample_at) as f64;
        Self {
            started_at: self.started_at,
            last_sample_at: now.max(self.last_sample_at),
            last_ratio: ratio,
            ratio_ms: self.ratio_ms + self.last_ratio * held,
        }
    }

    /// The time-weighted average ratio from `started_at` to `now`.
    pub fn average(&self, now: Timestamp) -> f64 {
        let span = now.millis_since(self.started_at) as f64;
        if span <= 0.0 {
            return self.last_ratio;
        }
        let tail = self.last_ratio * now.millis_since(self.last_sample_at) as f64;
        (self.ratio_ms + tail) / span
    }
}

/// Every agent, the pool and the mission ledgers: the state the spawner's rules read.
#[derive(Clone, Debug)]
pub struct Registry {
    pub(super) agents: BTreeMap<AgentId, AgentProfile>,
    /// Children by parent: lineage lookups without scanning every agent.
    pub(super) children: BTreeMap<AgentId, BTreeSet<AgentId>>,
    pub(super) pool: Pool,
    pub(super) ledgers: BTreeMap<MissionId, MissionLedger>,
    pub(super) efficiency: Efficiency,
    pub(super) limits: Limits,
    /// Scaling policies by owner and role.
    pub(super) scaling: BTreeMap<(AgentId, Role), Scaling>,
}

impl Registry {
    /// An empty registry with a full pool.
    pub fn new(limits: Limits, now: Timestamp) -> Self {
        Self {
            agents: BTreeMap::new(),
            children: BTreeMap::new(),
            pool: Pool::new(limits.token_pool),
            ledgers: BTreeMap::new(),
            efficiency: Efficiency::starting(now),
            limits,
            scaling: BTreeMap::new(),
        }
    }

    /// Folds a saved record in (from this process's own write, or another instance's).
    pub fn apply(&mut self, record: Record) {
        match record {
            Record::Agent(agent) => {
                if let Some(parent) = &agent.parent_id {
                    self.children
                        .entry(parent.clone())
                        .or_default()
                        .insert(agent.id.clone());
                }
                self.agents.insert(agent.id.clone(), agent);
            }
            Record::Pool(pool) => self.pool = pool,
            Record::Ledger(ledger) => {
                self.ledgers.insert(ledger.mission_id.clone(), ledger);
            }
            Record::Efficiency(e) => self.efficiency = e,
            Record::Scaling(s) => {
                self.scaling.insert(s.key(), s);
            }
            Record::ScalingRemoved { owner, role } => {
                self.scaling.remove(&(owner, role));
            }
        }
    }

    /// The records that rebuild this registry from empty (a snapshot): every agent, the
    /// pool, every mission ledger, the efficiency integral and every scaling policy.
    pub fn records(&self) -> Vec<Arc<Record>> {
        let agents = self.agents.values().map(|a| Record::Agent(a.clone()));
        let ledgers = self.ledgers.values().map(|l| Record::Ledger(l.clone()));
        let scaling = self.scaling.values().map(|s| Record::Scaling(s.clone()));
        agents
            .chain([Record::Pool(self.pool)])
            .chain(ledgers)
            .chain([Record::Efficiency(self.efficiency)])
            .chain(scaling)
            .map(Arc::new)
            .collect()
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Changes the limits (a restart with another mode): returns the resized pool to save
    /// when the token pool's size changed.
    pub fn set_limits(&mut self, limits: Limits) -> Result<Option<Pool>, crate::Rejection> {
        let resized = (limits.token_pool != self.pool.total)
            .then(|| self.pool.resized(limits.token_pool))
            .transpose()?;
        self.limits = limits;
        if let Some(p) = resized {
            self.pool = p;
        }
        Ok(resized)
    }

    /// One agent.
    pub fn agent(&self, id: &AgentId) -> Option<&AgentProfile> {
        self.agents.get(id)
    }

    /// Every agent, by id.
    pub fn agents(&self) -> impl Iterator<Item = &AgentProfile> {
        self.agents.values()
    }

    /// The global pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// A mission's token account.
    pub fn ledger(&self, mission: &MissionId) -> Option<&MissionLedger> {
        self.ledgers.get(mission)
    }

    /// Every mission ledger.
    pub fn ledgers(&self) -> impl Iterator<Item = &MissionLedger> {
        self.ledgers.values()
    }

    /// The efficiency integral.
    pub fn efficiency(&self) -> &Efficiency {
        &self.efficiency
    }

    /// An owner's scaling policy for a role.
    pub fn scaling(&self, owner: &AgentId, role: &Role) -> Option<&Scaling> {
        self.scaling.get(&(owner.clone(), role.clone()))
    }

    /// Every scaling policy in force, by owner and role.
    pub fn scalings(&self) -> impl Iterator<Item = &Scaling> {
        self.scaling.values()
    }

    /// The live members of an owner's policy for a role: its children of that role the
    /// policy spawned.
    pub fn members<'a>(
        &'a self,
        owner: &AgentId,
        role: &'a Role,
    ) -> impl Iterator<Item = &'a AgentProfile> + 'a {
        self.children
            .get(owner)
            .into_iter()
            .flatten()
            .filter_map(|id| self.agents.get(id))
            .filter(move |a| a.is_live() && a.autoscaled && &a.role == role)
    }

    /// The agent's ancestors, nearest first.
    pub fn ancestors<'a>(&'a self, id: &AgentId) -> impl Iterator<Item = &'a AgentProfile> + 'a {
        let mut next = self.agents.get(id).and_then(|a| a.parent_id.clone());
        std::iter::from_fn(move || {
            let parent = self.agents.get(next.as_ref()?)?;
            next = parent.parent_id.clone();
            Some(parent)
        })
    }

    /// Whether `ancestor` is a strict ancestor of `id`.
    pub fn is_ancestor(&self, ancestor: &AgentId, id: &AgentId) -> bool {
        self.ancestors(id).any(|a| &a.id == ancestor)
    }

    /// Whether `reader` may read what concerns `agents` (a question, an audit record): the
    /// operator, the observer and the services read everything; an agent reads what
    /// concerns itself or an agent of its subtree, so an orchestrator follows its team and
    /// no agent reads another lineage's business. Nothing concerning an agent at all (a
    /// question between the operator and a service) is for the privileged readers only.
    pub fn may_read_about<'a>(
        &self,
        reader: &Principal,
        agents: impl IntoIterator<Item = &'a AgentId>,
    ) -> bool {
        match reader {
            Principal::Agent(me) => agents
                .into_iter()
                .any(|a| a == me || self.is_ancestor(me, a)),
            Principal::Operator | Principal::Observer | Principal::Service(_) => true,
        }
    }

    /// Whether `reader` may read `question`: it concerns its asker, its addressee and every
    /// decider it was escalated to ([`may_read_about`](Self::may_read_about)).
    pub fn may_read_question(&self, reader: &Principal, question: &QuestionState) -> bool {
        let m = &question.question;
        let deciders = std::iter::once(&m.to).chain(question.escalations.iter().map(|e| &e.to));
        let concerned: Vec<AgentId> = m
            .from
            .agent()
            .cloned()
            .into_iter()
            .chain(deciders.filter_map(|r| match r {
                Recipient::Agent(id) => Some(id.clone()),
                Recipient::Operator | Recipient::All => None,
            }))
            .collect();
        self.may_read_about(reader, &concerned)
    }

    /// [`may_read_question`](Self::may_read_question) as a decision, for a question asked
    /// for by id.
    pub fn check_read_question(
        &self,
        reader: &Principal,
        question: &QuestionState,
    ) -> Result<(), Rejection> {
        if self.may_read_question(reader, question) {
            return Ok(());
        }
        Err(Rejection::Forbidden {
            actor: reader.to_string(),
            action: "read_question".into(),
            reason: format!(
                "question {} concerns neither you nor an agent of your subtree",
                question.question.id
            ),
        })
    }

    /// The nearest live orchestrator above `id`: where its questions go by default.
    /// `None` means the operator.
    pub fn orchestrator_of(&self, id: &AgentId) -> Option<&AgentId> {
        self.ancestors(id)
            .find(|a| a.is_live() && a.role == Role::Orchestrator)
            .map(|a| &a.id)
    }

    /// Descendants of `id`, deepest first (children after their own children).
    pub fn descendants(&self, id: &AgentId) -> Vec<AgentId> {
        let mut out = Vec::new();
        self.collect_descendants(id, &mut out);
        out
    }

    fn collect_descendants(&self, id: &AgentId, out: &mut Vec<AgentId>) {
        for child in self.children.get(id).into_iter().flatten() {
            self.collect_descendants(child, out);
            out.push(child.clone());
        }
    }

    /// Agents matching `query`; with `available_only`, only those that may take work now.
    pub fn find(&self, query: &AgentQuery, available_only: bool) -> Vec<&AgentProfile> {
        self.agents
            .values()
            .filter(|a| query.include_terminated || a.is_live())
            .filter(|a| !available_only || a.is_available())
            .filter(|a| query.role.as_ref().is_none_or(|r| &a.role == r))
            .filter(|a| query.status.is_none_or(|s| a.status == s))
            .filter(|a| {
                query
                    .parent_id
                    .as_ref()
                    .is_none_or(|p| a.parent_id.as_ref() == Some(p))
            })
            .filter(|a| query.capabilities.iter().all(|c| a.has_capability(c)))
            .collect()
    }

    /// Whether `by` may manage `target`: the operator, the agent itself, or an ancestor.
    pub fn may_manage(&self, by: &Principal, target: &AgentId) -> bool {
        match by {
            Principal::Operator | Principal::Service(_) => true,
            Principal::Observer => false,
            Principal::Agent(id) => id == target || self.is_ancestor(id, target),
        }
    }

    /// May `agent` take the action called `action` (in `phase`, when given)? Checks that it
    /// is live and not paused, its forbidden actions, its phase scope, and the permissions
    /// some of Guild's own actions need. The error says why not.
    pub fn authorize(
        &self,
        agent: &AgentId,
        action: impl Into<ActionName>,
        phase: Option<Phase>,
    ) -> Result<(), crate::Rejection> {
        let action = action.into();
        let profile = self
            .agents
            .get(agent)
            .ok_or_else(|| crate::Rejection::UnknownAgent { id: agent.clone() })?;
        let deny = |reason: String| {
            Err(crate::Rejection::Forbidden {
                actor: agent.to_string(),
                action: action.to_string(),
                reason,
            })
        };
        if !profile.is_live() {
            return deny(format!("the agent is {}", profile.status));
        }
        if profile.status == AgentStatus::Blocked {
            let why = profile
                .status_reason
                .as_deref()
                .unwrap_or("no reason given");
            return deny(format!("the agent is BLOCKED ({why}) and gets no new work"));
        }
        if let Err(reason) = profile.authority.permits(action.as_str(), phase) {
            return deny(reason);
        }
        let a = &profile.authority;
        match action {
            ActionName::Guild(Action::SpawnAgent) if !a.can_spawn_agents => {
                deny("can_spawn_agents is false".into())
            }
            ActionName::Guild(Action::OverrideDecision) if !a.can_override_decisions => {
                deny("can_override_decisions is false".into())
            }
            ActionName::Guild(Action::ReallocateBudget) if profile.role != Role::Orchestrator => {
                deny("only orchestrators reallocate budget".into())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod read_tests {
    use super::*;
    use crate::MessageId;
    use crate::agent::tests::{World, id};
    use crate::message::{Escalation, Message, MessageType, Priority};

    /// A lead orchestrator with one developer, and a developer of another lineage.
    fn teams() -> World {
        let mut w = World::safe();
        let op = Principal::Operator;
        w.spawn(&op, "lead", Role::Orchestrator, None, 10_000)
            .unwrap();
        let lead = Principal::Agent(id("lead"));
        w.spawn(&lead, "dev-1", Role::Developer, Some("lead"), 1_000)
            .unwrap();
        w.spawn(&op, "other", Role::Developer, None, 1_000).unwrap();
        w
    }

    fn question(from: &str, to: Recipient) -> QuestionState {
        QuestionState::asked(Message {
            id: MessageId::new("q-1").unwrap(),
            kind: MessageType::Question,
            from: Principal::Agent(id(from)),
            to,
            subject: "which database?".into(),
            payload: serde_json::Value::Null,
            priority: Priority::High,
            task_id: None,
            in_reply_to: None,
            requires_decision: true,
            is_critical: false,
            decision_deadline_ms: None,
            created_at: Timestamp(1),
            traceparent: None,
        })
    }

    fn reader(name: &str) -> Principal {
        Principal::Agent(id(name))
    }

    #[test]
    fn an_agent_reads_what_concerns_itself_or_its_subtree_and_nothing_else() {
        let w = teams();
        let (dev, other) = (id("dev-1"), id("other"));
        assert!(w.reg.may_read_about(&reader("dev-1"), [&dev]));
        assert!(w.reg.may_read_about(&reader("lead"), [&dev]), "its subtree");
        assert!(
            !w.reg.may_read_about(&reader("dev-1"), [&id("lead")]),
            "not upwards"
        );
        assert!(
            !w.reg.may_read_about(&reader("lead"), [&other]),
            "not another lineage"
        );
        assert!(
            !w.reg.may_read_about(&reader("dev-1"), []),
            "nothing about an agent"
        );
        for privileged in [Principal::Operator, Principal::Observer] {
            assert!(w.reg.may_read_about(&privileged, [&other]));
            assert!(w.reg.may_read_about(&privileged, []));
        }
    }

    #[test]
    fn a_question_concerns_its_asker_its_addressee_and_every_decider_it_reached() {
        let w = teams();
        let mut q = question("dev-1", Recipient::Agent(id("lead")));
        assert!(w.reg.may_read_question(&reader("dev-1"), &q), "the asker");
        assert!(
            w.reg.may_read_question(&reader("lead"), &q),
            "the addressee"
        );
        assert!(!w.reg.may_read_question(&reader("other"), &q));
        let refused = w.reg.check_read_question(&reader("other"), &q).unwrap_err();
        assert_eq!(refused.rule(), "forbidden_action");
        assert!(refused.to_string().contains("q-1"), "{refused}");

        q.escalations.push(Escalation {
            to: Recipient::Agent(id("other")),
            at: Timestamp(2),
            message_id: MessageId::new("esc-1").unwrap(),
        });
        assert!(
            w.reg.may_read_question(&reader("other"), &q),
            "escalated to it"
        );
        assert!(w.reg.check_read_question(&Principal::Observer, &q).is_ok());
    }
}
