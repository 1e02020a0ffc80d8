//! The mission manager's state, its rules, and its read-side queries.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use super::graph::Graph;
use super::{Attempt, Command, Dependency, Event, Mission, MissionStatus, NewMission, Severity};
use crate::agent::{Action, Role};
use crate::id::{AgentId, MissionId, Principal};
use crate::phase::Phase;
use crate::set::SmallSet;
use crate::time::Timestamp;
use crate::{Effect, Rejection};

/// What a mission decision asks the service to do.
pub type MissionEffect = Effect<Mission, Event>;

/// Longest mission name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// Settings for the mission rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BoardConfig {
    /// Groups that may have ACTIVE missions at once (the mode's limit); `None` is unlimited.
    pub max_parallel_groups: Option<u32>,
}

/// A group of open missions that can run at the same time (the seed's
/// `get_parallelizable_missions`): each mission's dependencies are finished or in groups
/// with a lower index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ParallelGroup {
    /// The group's layer: 0 for missions without dependencies, else one more than the
    /// deepest dependency's.
    pub index: u32,
    /// Its open missions, highest priority first.
    pub missions: Vec<MissionId>,
}

/// Per-phase counts kept so a completion can tell in O(1) whether its phase is done.
#[derive(Clone, Copy, Debug, Default)]
struct PhaseCount {
    open: u32,
    completed: u32,
    failed: u32,
}

impl PhaseCount {
    /// The seed's phase sync point: nothing open, nothing failed, something completed
    /// (cancelled missions count for neither).
    fn complete(&self) -> bool {
        self.open == 0 && self.failed == 0 && self.completed > 0
    }
}

/// Every mission and the dependency graph: the state the mission rules read.
#[derive(Debug, Default)]
pub struct Board {
    /// Shared, so a snapshot holds on to the missions it writes (a reference each) while
    /// the board moves on, instead of keeping the board locked or copying it.
    missions: HashMap<MissionId, Arc<Mission>>,
    graph: Graph,
    /// ACTIVE missions, for the parallel-group limit.
    active: BTreeSet<MissionId>,
    /// READY missions, for claims and the load scaling policies read: both scan these, not
    /// every mission (most of a large board is finished or waiting).
    ready: BTreeSet<MissionId>,
    phases: BTreeMap<Phase, PhaseCount>,
    /// Layers of the graph, computed on first use after a change to its edges.
    levels: OnceLock<Vec<u32>>,
    /// Each graph node's priority while its mission is open, `None` once it is not: the
    /// groups scan every node, and reading this dense array instead of the missions map
    /// (a cache miss or three per mission) is most of what keeps that scan fast.
    open_priority: Vec<Option<u8>>,
    /// Each graph node's mission, the same `Arc` as in `missions`: a snapshot takes them
    /// in the graph's order while the journal is locked, and reading them from here
    /// instead of looking each id up in the map takes that from 17 ms to about 2 at
    /// 100,000 missions.
    by_node: Vec<Option<Arc<Mission>>>,
    config: BoardConfig,
}

impl Board {
    /// An empty board.
    pub fn new(config: BoardConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// The settings.
    pub fn config(&self) -> &BoardConfig {
        &self.config
    }

    /// Folds a saved mission in (from this process's write or another instance's), keeping
    /// the graph, the phase counts and the active set in step.
    pub fn apply(&mut self, m: Mission) {
        let m = Arc::new(m);
        let old = self.missions.remove(&m.id);
        if let Some(old) = &old {
            self.count(old, false);
        }
        self.count(&m, true);
        let was_in_graph = old
            .as_ref()
            .is_some_and(|o| o.status != MissionStatus::Archived);
        let old_deps: BTreeSet<&MissionId> = match &old {
            Some(o) if was_in_graph => o.depends_on.iter().map(|d| &d.mission_id).collect(),
            _ => BTreeSet::new(),
        };
        if m.status == MissionStatus::Archived {
            if let Some(n) = self.graph.get(&m.id) {
                self.graph.remove_node(n);
                set_slot(&mut self.open_priority, n, None);
                set_slot(&mut self.by_node, n, None);
                self.levels = OnceLock::new();
            }
        } else {
            let me = self.graph.node(&m.id);
            set_slot(
                &mut self.open_priority,
                me,
                m.status.is_open().then_some(m.priority),
            );
            set_slot(&mut self.by_node, me, Some(Arc::clone(&m)));
            let new_deps: BTreeSet<&MissionId> =
                m.depends_on.iter().map(|d| &d.mission_id).collect();
            for gone in old_deps.difference(&new_deps) {
                if let Some(x) = self.graph.get(gone) {
                    self.graph.remove_edge(x, me);
                }
            }
            for added in new_deps.difference(&old_deps) {
                let archived = self
                    .missions
                    .get(*added)
                    .is_some_and(|d| d.status == MissionStatus::Archived);
                if !archived {
                    let x = self.graph.node(added);
                    self.graph.add_edge(x, me);
                }
            }
            if old_deps != new_deps || old.is_none() {
                self.levels = OnceLock::new();
            }
        }
        if m.status == MissionStatus::Active {
            self.active.insert(m.id.clone());
        } else {
            self.active.remove(&m.id);
        }
        if m.status == MissionStatus::Ready {
            self.ready.insert(m.id.clone());
        } else {
            self.ready.remove(&m.id);
        }
        self.missions.insert(m.id.clone(), m);
    }

    fn count(&mut self, m: &Mission, add: bool) {
        let c = self.phases.entry(m.phase).or_default();
        let slot = match m.outcome().unwrap_or(m.status) {
            s if s.is_open() => &mut c.open,
            MissionStatus::Completed => &mut c.completed,
            MissionStatus::Failed => &mut c.failed,
            _ => return,
        };
        if add {
            *slot += 1;
        } else {
            *slot = slot.saturating_sub(1);
        }
    }

    /// The records that rebuild this board from empty (a snapshot): every mission, those
    /// in the graph in its topological order. Folded in that order each dependency edge
    /// agrees with the order so far and costs nothing to place; in any other order the
    /// graph would be reordered again and again (minutes at 100,000 missions). Shared, not
    /// copied: at 100,000 missions taking them costs about 2 ms and writing them out about
    /// 200 ms, and the writing happens after the board is free again.
    pub fn records(&self) -> Vec<Arc<Mission>> {
        // Archived missions are the ones outside the graph.
        let outside = self
            .missions
            .values()
            .filter(|m| m.status == MissionStatus::Archived);
        let in_graph = self
            .graph
            .in_order()
            .filter_map(|n| self.by_node.get(n as usize).and_then(Option::as_ref));
        outside.chain(in_graph).cloned().collect()
    }

    /// One mission.
    pub fn mission(&self, id: &MissionId) -> Option<&Mission> {
        self.missions.get(id).map(Arc::as_ref)
    }

    /// Every mission, in no particular order.
    pub fn missions(&self) -> impl Iterator<Item = &Mission> {
        self.missions.values().map(Arc::as_ref)
    }

    /// How many missions the board holds.
    pub fn len(&self) -> usize {
        self.missions.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.missions.is_empty()
    }

    /// The seed's `check_ready`: whether the mission may start now.
    pub fn check_ready(&self, id: &MissionId) -> Result<bool, Rejection> {
        let m = self
            .missions
            .get(id)
            .ok_or_else(|| Rejection::UnknownMission { id: id.clone() })?;
        Ok(m.status == MissionStatus::Ready)
    }

    /// Whether every mission of `phase` has finished, none failed, at least one completed.
    pub fn phase_complete(&self, phase: Phase) -> bool {
        self.phases.get(&phase).is_some_and(PhaseCount::complete)
    }

    fn levels(&self) -> &[u32] {
        self.levels.get_or_init(|| self.graph.levels())
    }

    /// The layer of an open mission (its parallel group's index).
    pub fn group_of(&self, id: &MissionId) -> Option<u32> {
        let n = self.graph.get(id)?;
        self.levels().get(n as usize).copied()
    }

    /// The seed's `get_parallelizable_missions`: open missions in ordered groups.
    pub fn parallel_groups(&self) -> Vec<ParallelGroup> {
        self.parallel_groups_within(usize::MAX).0
    }

    /// The first `limit` missions of [`parallel_groups`](Self::parallel_groups) (later
    /// groups are left out, the last one shown cut short), and how many open missions
    /// the groups hold in all. Only what is shown is sorted and copied: at 100,000
    /// missions that is most of the work.
    pub fn parallel_groups_within(&self, limit: usize) -> (Vec<ParallelGroup>, usize) {
        let levels = self.levels();
        // Nodes in any order: each group is sorted below.
        let mut groups: Vec<Vec<u32>> = Vec::new();
        let mut total = 0;
        for (n, open) in self.open_priority.iter().enumerate() {
            if open.is_some() {
                let level = levels[n] as usize;
                if groups.len() <= level {
                    groups.resize_with(level + 1, Vec::new);
                }
                groups[level].push(n as u32);
                total += 1;
            }
        }
        let order = |a: &u32, b: &u32| {
            self.open_priority[*b as usize]
                .cmp(&self.open_priority[*a as usize])
                .then_with(|| self.graph.id(*a).cmp(self.graph.id(*b)))
        };
        let mut room = limit;
        let shown = groups
            .into_iter()
            .enumerate()
            .filter(|(_, nodes)| !nodes.is_empty())
            .map_while(|(index, mut nodes)| {
                if room == 0 {
                    return None;
                }
                if nodes.len() > room {
                    nodes.select_nth_unstable_by(room, order);
                    nodes.truncate(room);
                }
                nodes.sort_unstable_by(order);
                room -= nodes.len();
                Some(ParallelGroup {
                    index: index as u32,
                    missions: nodes.iter().map(|&n| self.graph.id(n).clone()).collect(),
                })
            })
            .collect();
        (shown, total)
    }

    /// READY missions, in no particular order.
    fn ready(&self) -> impl Iterator<Item = &Mission> {
        self.ready
            .iter()
            .filter_map(|id| self.missions.get(id))
            .map(Arc::as_ref)
    }

    /// The missions `agent` could claim for `role` (`claim_next`), best first: READY, of
    /// that role, and meant for `agent` or for nobody; highest priority first, then the
    /// oldest, then by id, so every claimer walks them in the same order. A mission without
    /// a role is never claimed: whoever runs it is named by an `assign_mission`.
    pub fn claimable<'a>(&'a self, role: &Role, agent: &AgentId) -> Vec<&'a Mission> {
        let mut out: Vec<&Mission> = self
            .ready()
            .filter(|m| m.role.as_ref() == Some(role))
            .filter(|m| m.assigned_agent_id.as_ref().is_none_or(|a| a == agent))
            .collect();
        out.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then_with(|| a.created_at.cmp(&b.created_at))
                .then_with(|| a.id.cmp(&b.id))
        });
        out
    }

    /// The load a scaling policy sees for `role`: READY missions of that role (and of
    /// `phase`, when given) meant for no agent in particular. One meant for a named agent
    /// waits for that agent, so another agent of the role would not take it off the pile.
    pub fn ready_for(&self, role: &Role, phase: Option<Phase>) -> u32 {
        let n = self
            .ready()
            .filter(|m| m.role.as_ref() == Some(role))
            .filter(|m| phase.is_none_or(|p| m.phase == p))
            .filter(|m| m.assigned_agent_id.is_none())
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// The agents READY missions are meant for (a retry waits for the agent that ran it):
    /// each has work waiting, so a scaling policy does not count it idle.
    pub fn awaited(&self) -> BTreeSet<AgentId> {
        self.ready()
            .filter_map(|m| m.assigned_agent_id.clone())
            .collect()
    }

    /// The claim conflict a start of `mission` on `agent` would be: it runs on another.
    pub fn claim_conflict(
        &self,
        by: &Principal,
        mission: &MissionId,
        agent: &AgentId,
        now: Timestamp,
    ) -> Option<Event> {
        let m = self.missions.get(mission)?;
        let holder = m.assigned_agent_id.as_ref()?;
        (m.status == MissionStatus::Active && holder != agent).then(|| Event::ClaimConflict {
            mission_id: mission.clone(),
            holder: holder.clone(),
            claimant: agent.clone(),
            by: by.clone(),
            at: now,
        })
    }

    /// The action (and phase) an agent needs authority for to perform `command`.
    pub fn required_action(&self, command: &Command) -> (Action, Option<Phase>) {
        let phase_of = |id: &MissionId| self.missions.get(id).map(|m| m.phase);
        match command {
            Command::Create(nm) => (Action::CreateMission, Some(nm.phase)),
            Command::AddDependency { mission, .. } | Command::RemoveDependency { mission, .. } => {
                (Action::CreateMission, phase_of(mission))
            }
            Command::Start { mission, .. } => (Action::AssignMission, phase_of(mission)),
            Command::Complete { mission, .. } => (Action::CompleteMission, phase_of(mission)),
            Command::Fail { mission, .. } => (Action::FailMission, phase_of(mission)),
            Command::Cancel { mission, .. } => (Action::CancelMission, phase_of(mission)),
            Command::Reassign { mission, .. } => (Action::HandoffTask, phase_of(mission)),
            Command::Archive { mission } => (Action::ArchiveMissions, phase_of(mission)),
            // By age it spans every phase: only `forbidden_actions` limits it.
            Command::ArchiveOlderThan { .. } => (Action::ArchiveMissions, None),
        }
    }

    /// Decides `command`, performed by `by` at `now`. Pure: the board is not changed; the
    /// caller saves the returned missions (all or nothing) and then applies them.
    pub fn decide(
        &self,
        by: &Principal,
        command: &Command,
        now: Timestamp,
    ) -> Result<Vec<MissionEffect>, Rejection> {
        let mut d = Draft {
            base: self,
            now,
            changed: BTreeMap::new(),
            events: Vec::new(),
        };
        match command {
            Command::Create(nm) => d.create(by, nm)?,
            Command::AddDependency {
                mission,
                on,
                severity,
            } => d.add_dependency(mission, on, *severity)?,
            Command::RemoveDependency { mission, on } => d.remove_dependency(mission, on)?,
            Command::Start { mission, agent } => d.start(mission, agent)?,
            Command::Complete {
                mission,
                output,
                quality_score,
            } => d.complete(mission, output, *quality_score)?,
            Command::Fail {
                mission,
                reason,
                retry,
                agent_lost,
            } => {
                d.expect_status(mission, MissionStatus::Active, MissionStatus::Failed)?;
                if reason.trim().is_empty() {
                    return Err(Rejection::invalid(
                        "reason",
                        "must say why the attempt failed",
                    ));
                }
                d.fail_attempt(mission, reason.trim(), *retry, *agent_lost)?;
            }
            Command::Cancel { mission, reason } => {
                let m = d.get(mission)?;
                if !m.status.is_open() {
                    return Err(Rejection::IllegalMissionTransition {
                        id: mission.clone(),
                        from: m.status,
                        to: MissionStatus::Cancelled,
                    });
                }
                d.finish(mission, MissionStatus::Cancelled, reason.clone(), None)?;
            }
            Command::Archive { mission } => d.archive(mission)?,
            Command::Reassign { mission, from, to } => d.reassign(mission, from, to)?,
            Command::ArchiveOlderThan { older_than_ms } => {
                let due: Vec<MissionId> = self
                    .missions
                    .values()
                    .filter(|m| m.status.is_final())
                    .filter(|m| {
                        m.finished_at
                            .is_some_and(|t| now.millis_since(t) > *older_than_ms)
                    })
                    .map(|m| m.id.clone())
                    .collect();
                for id in due {
                    d.archive(&id)?;
                }
            }
        }
        d.phase_sync_points();
        Ok(d.into_effects(by))
    }
}

/// A copy-on-write overlay of the board that one decision edits.
struct Draft<'a> {
    base: &'a Board,
    now: Timestamp,
    changed: BTreeMap<MissionId, Mission>,
    events: Vec<Event>,
}

impl Draft<'_> {
    fn into_effects(self, by: &Principal) -> Vec<MissionEffect> {
        let mut out: Vec<MissionEffect> = self.changed.into_values().map(Effect::Save).collect();
        out.extend(MissionEffect::announced(by, self.events));
        out
    }

    fn get(&self, id: &MissionId) -> Result<&Mission, Rejection> {
        self.changed
            .get(id)
            .or_else(|| self.base.mission(id))
            .ok_or_else(|| Rejection::UnknownMission { id: id.clone() })
    }

    fn get_mut(&mut self, id: &MissionId) -> Result<&mut Mission, Rejection> {
        if !self.changed.contains_key(id) {
            let copy = self.get(id)?.clone();
            self.changed.insert(id.clone(), copy);
        }
        let now = self.now;
        let m = self
            .changed
            .get_mut(id)
            .ok_or_else(|| Rejection::UnknownMission { id: id.clone() })?;
        m.updated_at = now;
        Ok(m)
    }

    fn expect_status(
        &self,
        id: &MissionId,
        status: MissionStatus,
        to: MissionStatus,
    ) -> Result<&Mission, Rejection> {
        let m = self.get(id)?;
        if m.status != status {
            return Err(Rejection::IllegalMissionTransition {
                id: id.clone(),
                from: m.status,
                to,
            });
        }
        Ok(m)
    }

    fn set_status(&mut self, id: &MissionId, to: MissionStatus) -> Result<(), Rejection> {
        let now = self.now;
        let m = self.get_mut(id)?;
        let from = m.status;
        if !from.can_become(to) {
            return Err(Rejection::IllegalMissionTransition {
                id: id.clone(),
                from,
                to,
            });
        }
        m.status = to;
        let ready = (to == MissionStatus::Ready).then(|| Event::Ready {
            mission_id: id.clone(),
            phase: m.phase,
            assigned_agent_id: m.assigned_agent_id.clone(),
            at: now,
        });
        self.events.push(Event::StatusChanged {
            mission_id: id.clone(),
            from,
            to,
            at: now,
        });
        self.events.extend(ready);
        Ok(())
    }

    /// Checks one dependency of `mission` on `on` and returns whether it holds `mission`
    /// back. `mission` may be new (not on the board yet).
    fn check_dependency(
        &self,
        mission: &MissionId,
        on: &MissionId,
        severity: Severity,
    ) -> Result<bool, Rejection> {
        if mission == on {
            return Err(Rejection::SelfDependency {
                id: mission.clone(),
            });
        }
        let dep = self.get(on)?;
        if dep.status == MissionStatus::Archived {
            return Err(Rejection::invalid(
                "depends_on",
                format!("mission {on} is archived"),
            ));
        }
        if severity == Severity::Hard
            && matches!(dep.status, MissionStatus::Failed | MissionStatus::Cancelled)
        {
            return Err(Rejection::DependencyFailed {
                id: on.clone(),
                status: dep.status,
            });
        }
        Ok(!severity.satisfied_by(dep.status))
    }

    fn create(&mut self, by: &Principal, nm: &NewMission) -> Result<(), Rejection> {
        if self.base.missions.contains_key(&nm.id) {
            return Err(Rejection::MissionExists { id: nm.id.clone() });
        }
        let name = nm.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(Rejection::invalid(
                "name",
                format!("must be 1 to {MAX_NAME_CHARS} characters"),
            ));
        }
        if !(1..=10).contains(&nm.priority) {
            return Err(Rejection::invalid(
                "priority",
                format!("{} is outside 1 to 10", nm.priority),
            ));
        }
        if let Some(g) = nm.quality_gate {
            check_unit("quality_gate", g)?;
        }
        if nm.max_retries > 100 {
            return Err(Rejection::invalid("max_retries", "must be at most 100"));
        }
        let mut seen = BTreeSet::new();
        let mut waiting_on = SmallSet::new();
        for Dependency {
            mission_id,
            severity,
        } in &nm.depends_on
        {
            if !seen.insert(mission_id) {
                return Err(Rejection::DependencyExists {
                    id: nm.id.clone(),
                    on: mission_id.clone(),
                });
            }
            if self.check_dependency(&nm.id, mission_id, *severity)? {
                waiting_on.insert(mission_id.clone());
            }
        }
        for Dependency { mission_id, .. } in &nm.depends_on {
            self.get_mut(mission_id)?.dependents.insert(nm.id.clone());
        }
        let status = if waiting_on.is_empty() {
            MissionStatus::Ready
        } else {
            MissionStatus::Pending
        };
        let m = Mission {
            id: nm.id.clone(),
            name: name.to_owned(),
            phase: nm.phase,
            status,
            final_status: None,
            assigned_agent_id: nm.assigned_agent_id.clone(),
            role: nm.role.clone(),
            token_budget: nm.token_budget,
            priority: nm.priority,
            input_data: nm.input_data.clone(),
            output_data: serde_json::Value::Null,
            quality_score: None,
            quality_gate: nm.quality_gate,
            max_retries: nm.max_retries,
            attempts: 0,
            failures: Vec::new(),
            end_reason: None,
            depends_on: nm.depends_on.clone(),
            dependents: SmallSet::new(),
            waiting_on,
            created_by: by.clone(),
            created_at: self.now,
            updated_at: self.now,
            started_at: None,
            finished_at: None,
        };
        self.events.push(Event::Created {
            mission_id: m.id.clone(),
            phase: m.phase,
            status,
            by: by.clone(),
            at: self.now,
        });
        if status == MissionStatus::Ready {
            self.events.push(Event::Ready {
                mission_id: m.id.clone(),
                phase: m.phase,
                assigned_agent_id: m.assigned_agent_id.clone(),
                at: self.now,
            });
        }
        self.changed.insert(m.id.clone(), m);
        Ok(())
    }

    fn add_dependency(
        &mut self,
        mission: &MissionId,
        on: &MissionId,
        severity: Severity,
    ) -> Result<(), Rejection> {
        let m = self.get(mission)?;
        if !matches!(m.status, MissionStatus::Pending | MissionStatus::Ready) {
            return Err(Rejection::MissionStarted {
                id: mission.clone(),
                status: m.status,
            });
        }
        if m.dependency_on(on).is_some() {
            return Err(Rejection::DependencyExists {
                id: mission.clone(),
                on: on.clone(),
            });
        }
        let holds_back = self.check_dependency(mission, on, severity)?;
        let graph = &self.base.graph;
        if let (Some(x), Some(d)) = (graph.get(on), graph.get(mission))
            && let Some(path) = graph.cycle_if_added(x, d)
        {
            return Err(Rejection::DependencyCycle { path });
        }
        self.get_mut(on)?.dependents.insert(mission.clone());
        let m = self.get_mut(mission)?;
        m.depends_on.push(Dependency {
            mission_id: on.clone(),
            severity,
        });
        let was_ready = m.status == MissionStatus::Ready;
        if holds_back {
            m.waiting_on.insert(on.clone());
        }
        if holds_back && was_ready {
            self.set_status(mission, MissionStatus::Pending)?;
        }
        self.events.push(Event::DependencyAdded {
            mission_id: mission.clone(),
            on: on.clone(),
            severity,
            at: self.now,
        });
        Ok(())
    }

    fn remove_dependency(&mut self, mission: &MissionId, on: &MissionId) -> Result<(), Rejection> {
        let m = self.get(mission)?;
        if m.dependency_on(on).is_none() {
            return Err(Rejection::UnknownDependency {
                id: mission.clone(),
                on: on.clone(),
            });
        }
        if !matches!(m.status, MissionStatus::Pending | MissionStatus::Ready) {
            return Err(Rejection::MissionStarted {
                id: mission.clone(),
                status: m.status,
            });
        }
        if self.get(on).is_ok() {
            self.get_mut(on)?.dependents.remove(mission);
        }
        let m = self.get_mut(mission)?;
        m.depends_on.retain(|d| &d.mission_id != on);
        m.waiting_on.remove(on);
        let now_ready = m.status == MissionStatus::Pending && m.waiting_on.is_empty();
        if now_ready {
            self.set_status(mission, MissionStatus::Ready)?;
        }
        self.events.push(Event::DependencyRemoved {
            mission_id: mission.clone(),
            on: on.clone(),
            at: self.now,
        });
        Ok(())
    }

    fn reassign(
        &mut self,
        mission: &MissionId,
        from: &AgentId,
        to: &AgentId,
    ) -> Result<(), Rejection> {
        let m = self.get(mission)?;
        let holder = (m.status == MissionStatus::Active)
            .then(|| m.assigned_agent_id.clone())
            .flatten();
        if holder.as_ref() != Some(from) {
            return Err(Rejection::NotTaskHolder {
                mission: mission.clone(),
                agent: from.clone(),
                holder,
            });
        }
        if from == to {
            return Err(Rejection::invalid(
                "to",
                format!("{to} already runs mission {mission}"),
            ));
        }
        self.get_mut(mission)?.assigned_agent_id = Some(to.clone());
        self.events.push(Event::HandedOff {
            mission_id: mission.clone(),
            from: from.clone(),
            to: to.clone(),
            at: self.now,
        });
        Ok(())
    }

    fn start(&mut self, mission: &MissionId, agent: &AgentId) -> Result<(), Rejection> {
        self.expect_status(mission, MissionStatus::Ready, MissionStatus::Active)?;
        if let Some(max) = self.base.config.max_parallel_groups {
            let group = self.base.group_of(mission).unwrap_or(0);
            let active: BTreeSet<u32> = self
                .base
                .active
                .iter()
                .filter_map(|id| self.base.group_of(id))
                .collect();
            if !active.contains(&group) && active.len() as u32 >= max {
                return Err(Rejection::GroupLimitReached {
                    group,
                    active: active.len() as u32,
                    max,
                });
            }
        }
        self.set_status(mission, MissionStatus::Active)?;
        let now = self.now;
        let m = self.get_mut(mission)?;
        m.attempts += 1;
        m.assigned_agent_id = Some(agent.clone());
        m.started_at = Some(now);
        let attempt = m.attempts;
        self.events.push(Event::Started {
            mission_id: mission.clone(),
            agent_id: agent.clone(),
            attempt,
            at: now,
        });
        Ok(())
    }

    fn complete(
        &mut self,
        mission: &MissionId,
        output: &serde_json::Value,
        score: Option<f64>,
    ) -> Result<(), Rejection> {
        let m = self.expect_status(mission, MissionStatus::Active, MissionStatus::Completed)?;
        if let Some(s) = score {
            check_unit("quality_score", s)?;
        }
        if let Some(gate) = m.quality_gate {
            let short = match score {
                Some(s) if s >= gate => None,
                Some(s) => Some(format!("quality score {s} is below the gate {gate}")),
                None => Some(format!("no quality score given; the gate is {gate}")),
            };
            if let Some(reason) = short {
                self.get_mut(mission)?.quality_score = score;
                return self.fail_attempt(mission, &reason, true, false);
            }
        }
        let now = self.now;
        let m = self.get_mut(mission)?;
        m.output_data = output.clone();
        m.quality_score = score;
        m.finished_at = Some(now);
        let phase = m.phase;
        self.set_status(mission, MissionStatus::Completed)?;
        self.events.push(Event::Completed {
            mission_id: mission.clone(),
            phase,
            quality_score: score,
            at: now,
        });
        self.release_dependents(mission)
    }

    /// After `first` finished: dependents it no longer holds back may become READY; hard
    /// dependents of a failed or cancelled mission fail in turn, breadth first (a worklist,
    /// not recursion: a long chain must not exhaust the stack).
    fn release_dependents(&mut self, first: &MissionId) -> Result<(), Rejection> {
        let mut queue = std::collections::VecDeque::from([first.clone()]);
        while let Some(done) = queue.pop_front() {
            let (status, dependents) = {
                let m = self.get(&done)?;
                (m.status, m.dependents.iter().cloned().collect::<Vec<_>>())
            };
            for d in dependents {
                let Ok(dep) = self.get(&d) else { continue };
                if !dep.status.is_open() {
                    continue;
                }
                let severity = dep
                    .dependency_on(&done)
                    .map_or(Severity::Hard, |x| x.severity);
                if severity.satisfied_by(status) {
                    let m = self.get_mut(&d)?;
                    m.waiting_on.remove(&done);
                    if m.status == MissionStatus::Pending && m.waiting_on.is_empty() {
                        self.set_status(&d, MissionStatus::Ready)?;
                    }
                } else if matches!(status, MissionStatus::Failed | MissionStatus::Cancelled) {
                    let verb = if status == MissionStatus::Failed {
                        "failed"
                    } else {
                        "was cancelled"
                    };
                    let reason = format!("hard dependency {done} {verb}");
                    self.end(&d, MissionStatus::Failed, reason, Some(done.clone()))?;
                    queue.push_back(d);
                }
            }
        }
        Ok(())
    }

    /// One failed attempt: back to READY while retries remain, else FAILED for good.
    fn fail_attempt(
        &mut self,
        mission: &MissionId,
        reason: &str,
        retry: bool,
        agent_lost: bool,
    ) -> Result<(), Rejection> {
        let now = self.now;
        let m = self.get_mut(mission)?;
        let attempt = m.attempts;
        m.failures.push(Attempt {
            number: attempt,
            agent_id: m.assigned_agent_id.clone(),
            reason: reason.to_owned(),
            at: now,
        });
        let will_retry = retry && attempt <= m.max_retries;
        if agent_lost {
            m.assigned_agent_id = None;
        }
        self.events.push(Event::AttemptFailed {
            mission_id: mission.clone(),
            attempt,
            reason: reason.to_owned(),
            will_retry,
            at: now,
        });
        if will_retry {
            return self.set_status(mission, MissionStatus::Ready);
        }
        let why = if retry {
            format!("gave up after {} attempts: {reason}", attempt)
        } else {
            reason.to_owned()
        };
        self.finish(mission, MissionStatus::Failed, why, None)
    }

    /// Ends an open mission as FAILED or CANCELLED and carries the consequence down.
    fn finish(
        &mut self,
        mission: &MissionId,
        to: MissionStatus,
        reason: String,
        caused_by: Option<MissionId>,
    ) -> Result<(), Rejection> {
        self.end(mission, to, reason, caused_by)?;
        self.release_dependents(mission)
    }

    /// Ends one open mission as FAILED or CANCELLED, with its event; no cascade.
    fn end(
        &mut self,
        mission: &MissionId,
        to: MissionStatus,
        reason: String,
        caused_by: Option<MissionId>,
    ) -> Result<(), Rejection> {
        let now = self.now;
        let m = self.get_mut(mission)?;
        m.end_reason = Some(reason.clone());
        m.finished_at = Some(now);
        let dependents: Vec<MissionId> = m.dependents.iter().cloned().collect();
        self.set_status(mission, to)?;
        let open = dependents
            .into_iter()
            .filter(|d| self.get(d).is_ok_and(|m| m.status.is_open()))
            .collect();
        self.events.push(match to {
            MissionStatus::Cancelled => Event::Cancelled {
                mission_id: mission.clone(),
                reason,
                at: now,
            },
            _ => Event::Failed {
                mission_id: mission.clone(),
                reason,
                caused_by,
                dependents: open,
                at: now,
            },
        });
        Ok(())
    }

    fn archive(&mut self, mission: &MissionId) -> Result<(), Rejection> {
        let m = self.get(mission)?;
        if !m.status.is_final() {
            return Err(Rejection::IllegalMissionTransition {
                id: mission.clone(),
                from: m.status,
                to: MissionStatus::Archived,
            });
        }
        let outcome = m.status;
        self.set_status(mission, MissionStatus::Archived)?;
        self.get_mut(mission)?.final_status = Some(outcome);
        self.events.push(Event::Archived {
            mission_id: mission.clone(),
            at: self.now,
        });
        Ok(())
    }

    /// Emits `phase_completed` for each phase this decision finished: whatever made it
    /// complete (the last completion, or cancelling the last mission still open), once
    /// per time it becomes complete.
    fn phase_sync_points(&mut self) {
        let mut delta: BTreeMap<Phase, (i64, i64, i64)> = BTreeMap::new();
        for m in self.changed.values() {
            let before = self.base.mission(&m.id);
            let e = delta.entry(m.phase).or_default();
            let mut tally = |s: Option<MissionStatus>, sign: i64| match s {
                Some(s) if s.is_open() => e.0 += sign,
                Some(MissionStatus::Completed) => e.1 += sign,
                Some(MissionStatus::Failed) => e.2 += sign,
                _ => {}
            };
            tally(before.map(|b| b.outcome().unwrap_or(b.status)), -1);
            tally(Some(m.outcome().unwrap_or(m.status)), 1);
        }
        for (phase, (open, completed, failed)) in delta {
            let base = self.base.phases.get(&phase).copied().unwrap_or_default();
            let shifted = |n: u32, by: i64| u32::try_from(i64::from(n) + by).unwrap_or(0);
            let after = PhaseCount {
                open: shifted(base.open, open),
                completed: shifted(base.completed, completed),
                failed: shifted(base.failed, failed),
            };
            if !base.complete() && after.complete() {
                self.events.push(Event::PhaseCompleted {
                    phase,
                    missions: after.completed,
                    at: self.now,
                });
            }
        }
    }
}

/// Sets `node`'s slot in one of the board's dense per-node arrays, growing it as needed (a
/// node made for a dependency before its mission has no slot yet).
fn set_slot<T: Clone>(slots: &mut Vec<Option<T>>, node: u32, value: Option<T>) {
    let n = node as usize;
    if slots.len() <= n {
        slots.resize(n + 1, None);
    }
    slots[n] = value;
}

fn check_unit(field: &str, value: f64) -> Result<(), Rejection> {
    if value.is_finite() && (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(Rejection::QualityOutOfRange {
            field: field.to_owned(),
            value: value.to_string(),
        })
    }
}
