//! Guild's journals read from outside, entry by entry, while the run goes on (so a
//! snapshot's trim cannot hide an entry from the checker), each folded with the domain's
//! own types into the state the services hold, and checked at every entry: live agents
//! against max agents, each agent's live children against its `max_parallel_agents`,
//! every token of the pool in exactly one place. What each entry planned to publish
//! (events, inbox-log copies) is kept, to be found in the streams exactly once.

use std::collections::{BTreeMap, BTreeSet};

use async_nats::jetstream;
use guild_domain::agent::{self, Limits, Registry};
use guild_domain::mission::{Board, BoardConfig, Mission, MissionStatus};
use guild_domain::{AgentId, MissionId, Timestamp};
use guild_store::journal::Entry;
use guild_wire::store;
use guild_wire::subject::Service;

/// How many violations are kept in words (all are counted).
const KEEP: usize = 20;

/// A reader of one stream by sequence, from its first message on.
#[derive(Debug)]
pub(crate) struct Cursor {
    pub(crate) stream: String,
    /// The next sequence to read.
    next: u64,
    /// Messages gone (trimmed, deleted) before they could be read.
    pub(crate) unseen: u64,
}

impl Cursor {
    pub(crate) fn new(stream: impl Into<String>) -> Self {
        Self {
            stream: stream.into(),
            next: 1,
            unseen: 0,
        }
    }

    /// Reads every message stored since the last call, in order; the stream's last
    /// sequence.
    pub(crate) async fn pull(
        &mut self,
        js: &jetstream::Context,
        mut each: impl FnMut(&jetstream::message::StreamMessage),
    ) -> anyhow::Result<u64> {
        let mut s = js.get_stream(&self.stream).await?;
        let state = s.info().await?.state.clone();
        if state.messages == 0 && state.last_sequence < self.next {
            return Ok(state.last_sequence);
        }
        if state.first_sequence > self.next {
            self.unseen += state.first_sequence - self.next;
            self.next = state.first_sequence;
        }
        while self.next <= state.last_sequence {
            match s.get_raw_message(self.next).await {
                Ok(m) => each(&m),
                Err(e)
                    if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound =>
                {
                    self.unseen += 1;
                }
                Err(e) => return Err(e.into()),
            }
            self.next += 1;
        }
        Ok(state.last_sequence)
    }
}

/// What an entry planned to publish, by de-duplication id.
#[derive(Debug, Default)]
pub(crate) struct Planned {
    /// Event id → its subject.
    pub(crate) events: BTreeMap<String, String>,
    /// Ids planned by more than one entry.
    pub(crate) twice: u64,
}

impl Planned {
    fn add(&mut self, events: &[guild_store::OutboxMessage]) {
        for e in events {
            if self
                .events
                .insert(e.id.clone(), e.subject.clone())
                .is_some()
            {
                self.twice += 1;
            }
        }
    }
}

/// What happened to a reservation, as the spawner's journal tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reservation {
    pub(crate) amount: u64,
    pub(crate) mission: Option<MissionId>,
    /// Committed with what was used.
    pub(crate) committed: Option<u64>,
    /// Let go unused (released, or its agent ended).
    pub(crate) released: bool,
}

/// The spawner's journal, folded.
pub(crate) struct SpawnerFold {
    pub(crate) registry: Registry,
    pub(crate) entries: u64,
    pub(crate) unreadable: u64,
    /// The most agents live at once, at any entry.
    pub(crate) max_live: u32,
    /// The most live children any agent had, and its limit then.
    pub(crate) max_children: (u32, u32),
    pub(crate) agent_limit_violations: Vec<String>,
    pub(crate) agent_limit_count: u64,
    pub(crate) parallel_violations: Vec<String>,
    pub(crate) parallel_count: u64,
    pub(crate) token_violations: Vec<String>,
    pub(crate) token_count: u64,
    /// Every reservation seen, by (agent, reservation id).
    pub(crate) reservations: BTreeMap<(String, String), Reservation>,
    /// Changes the checker could not read as a commit or a release.
    pub(crate) odd: Vec<String>,
    /// When each agent stopped being live (its entry's time).
    pub(crate) ended_at: BTreeMap<AgentId, u64>,
    /// Reservation ids made again after they were settled (one request applied twice).
    pub(crate) remade: Vec<String>,
    pub(crate) remade_count: u64,
}

fn keep(list: &mut Vec<String>, count: &mut u64, what: String) {
    *count += 1;
    if list.len() < KEEP {
        list.push(what);
    }
}

impl SpawnerFold {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            registry: Registry::new(limits, Timestamp::from_millis(0)),
            entries: 0,
            unreadable: 0,
            max_live: 0,
            max_children: (0, 0),
            agent_limit_violations: Vec::new(),
            agent_limit_count: 0,
            parallel_violations: Vec::new(),
            parallel_count: 0,
            token_violations: Vec::new(),
            token_count: 0,
            reservations: BTreeMap::new(),
            odd: Vec::new(),
            ended_at: BTreeMap::new(),
            remade: Vec::new(),
            remade_count: 0,
        }
    }

    pub(crate) fn apply(&mut self, seq: u64, payload: &[u8], planned: &mut Planned) {
        let entry: Entry<agent::Record> = match serde_json::from_slice(payload) {
            Ok(e) => e,
            Err(_) => {
                self.unreadable += 1;
                return;
            }
        };
        self.entries += 1;
        planned.add(&entry.events);
        for record in entry.records {
            if let agent::Record::Agent(after) = &record {
                let before = self.registry.agent(&after.id).cloned();
                self.track(seq, before.as_ref(), after, entry.at_ms);
            }
            self.registry.apply(record);
        }
        self.check(seq);
    }

    /// Reservations made, committed and let go, read from an agent's change.
    fn track(
        &mut self,
        seq: u64,
        before: Option<&agent::AgentProfile>,
        after: &agent::AgentProfile,
        at_ms: u64,
    ) {
        let agent = after.id.to_string();
        if before.is_none_or(|b| b.is_live()) && !after.is_live() {
            self.ended_at.entry(after.id.clone()).or_insert(at_ms);
        }
        let empty = BTreeMap::new();
        let old = before.map_or(&empty, |b| &b.reservations);
        for (id, r) in &after.reservations {
            if !old.contains_key(id) {
                let key = (agent.clone(), id.to_string());
                if let Some(first) = self.reservations.get(&key) {
                    // The id was settled (committed or let go) and is made again: one
                    // request applied twice (a late attempt of a retried reserve). The
                    // first is kept: it is the one the agent's commit settled.
                    self.remade_count += 1;
                    if self.remade.len() < KEEP {
                        self.remade.push(format!(
                            "entry {seq}: {agent}'s reservation {id} ({} tokens) made again after it was {}",
                            r.amount,
                            match first.committed {
                                Some(u) => format!("committed with {u} used"),
                                None => "let go".to_owned(),
                            }
                        ));
                    }
                    continue;
                }
                self.reservations.insert(
                    (agent.clone(), id.to_string()),
                    Reservation {
                        amount: r.amount,
                        mission: r.mission_id.clone(),
                        committed: None,
                        released: false,
                    },
                );
            }
        }
        let gone: Vec<String> = old
            .keys()
            .filter(|id| !after.reservations.contains_key(*id))
            .map(ToString::to_string)
            .collect();
        let used_delta = match before {
            Some(b) => after.budget.used.checked_sub(b.budget.used),
            None => Some(after.budget.used),
        };
        match (gone.as_slice(), used_delta) {
            ([], Some(0)) => {}
            ([one], Some(d)) if d > 0 => {
                if let Some(r) = self.reservations.get_mut(&(agent, one.clone())) {
                    r.committed = Some(d);
                }
            }
            (many, Some(0)) => {
                for id in many {
                    if let Some(r) = self.reservations.get_mut(&(agent.clone(), id.clone())) {
                        r.released = true;
                    }
                }
            }
            (many, d) => {
                if self.odd.len() < KEEP {
                    self.odd.push(format!(
                        "entry {seq}: {agent} let go of {many:?} with its used tokens changing by {d:?}"
                    ));
                }
            }
        }
    }

    /// The rules every entry must leave standing.
    fn check(&mut self, seq: u64) {
        let r = &self.registry;
        let limits = *r.limits();
        let live: Vec<&agent::AgentProfile> = r.agents().filter(|a| a.is_live()).collect();
        let n = live.len() as u32;
        self.max_live = self.max_live.max(n);
        if n > limits.max_agents {
            keep(
                &mut self.agent_limit_violations,
                &mut self.agent_limit_count,
                format!("entry {seq}: {n} live agents, max {}", limits.max_agents),
            );
        }
        if r.pool().live_agents > limits.max_agents || r.pool().live_agents != n {
            keep(
                &mut self.agent_limit_violations,
                &mut self.agent_limit_count,
                format!(
                    "entry {seq}: the pool counts {} live agents, {n} are live (max {})",
                    r.pool().live_agents,
                    limits.max_agents
                ),
            );
        }
        let mut children: BTreeMap<&AgentId, u32> = BTreeMap::new();
        for a in &live {
            if let Some(p) = &a.parent_id
                && r.agent(p).is_some_and(agent::AgentProfile::is_live)
            {
                *children.entry(p).or_default() += 1;
            }
        }
        let mut parallel = Vec::new();
        for (parent, count) in children {
            let max = r
                .agent(parent)
                .map_or(u32::MAX, |p| p.authority.max_parallel_agents);
            if count > self.max_children.0 {
                self.max_children = (count, max);
            }
            if count > max {
                parallel.push(format!(
                    "entry {seq}: {parent} has {count} live children, max_parallel_agents {max}"
                ));
            }
        }
        for v in parallel {
            keep(&mut self.parallel_violations, &mut self.parallel_count, v);
        }
        let pool = r.pool();
        let allocated: u64 = r.agents().map(|a| a.budget.allocated).sum();
        let mut tokens = Vec::new();
        if pool.free + allocated != pool.total {
            tokens.push(format!(
                "entry {seq}: pool free {} + allocated {allocated} != total {}",
                pool.free, pool.total
            ));
        }
        for a in r.agents() {
            let reserved: u64 = a.reservations.values().map(|x| x.amount).sum();
            if a.budget.used + a.budget.reserved > a.budget.allocated
                || reserved != a.budget.reserved
            {
                tokens.push(format!(
                    "entry {seq}: {}: used {} + reserved {} (reservations {reserved}) > allocated {}",
                    a.id, a.budget.used, a.budget.reserved, a.budget.allocated
                ));
            }
        }
        for l in r.ledgers() {
            if l.used + l.reserved > l.budget {
                tokens.push(format!(
                    "entry {seq}: mission {}: used {} + reserved {} > budget {}",
                    l.mission_id, l.used, l.reserved, l.budget
                ));
            }
        }
        for v in tokens {
            keep(&mut self.token_violations, &mut self.token_count, v);
        }
    }
}

/// The mission journal, folded.
pub(crate) struct MissionFold {
    pub(crate) board: Board,
    pub(crate) entries: u64,
    pub(crate) unreadable: u64,
    /// Times each mission entered READY (created READY, its dependencies met, retried).
    pub(crate) ready_entries: BTreeMap<MissionId, u32>,
    /// Times each mission's dependencies were found met: PENDING → READY, or created READY
    /// with dependencies that had finished already.
    pub(crate) resolved: BTreeMap<MissionId, u32>,
    /// Missions created PENDING (waiting on dependencies).
    pub(crate) created_pending: BTreeSet<MissionId>,
    /// Attempts that failed because the agent was lost, by mission.
    pub(crate) lost_attempts: BTreeMap<MissionId, u32>,
}

impl MissionFold {
    pub(crate) fn new(config: BoardConfig) -> Self {
        Self {
            board: Board::new(config),
            entries: 0,
            unreadable: 0,
            ready_entries: BTreeMap::new(),
            resolved: BTreeMap::new(),
            created_pending: BTreeSet::new(),
            lost_attempts: BTreeMap::new(),
        }
    }

    pub(crate) fn apply(&mut self, payload: &[u8], planned: &mut Planned) {
        let entry: Entry<Mission> = match serde_json::from_slice(payload) {
            Ok(e) => e,
            Err(_) => {
                self.unreadable += 1;
                return;
            }
        };
        self.entries += 1;
        planned.add(&entry.events);
        for m in entry.records {
            let before = self.board.mission(&m.id);
            let was = before.map(|b| b.status);
            let failures_before = before.map_or(0, |b| b.failures.len());
            if m.status == MissionStatus::Ready && was != Some(MissionStatus::Ready) {
                *self.ready_entries.entry(m.id.clone()).or_default() += 1;
            }
            // Dependencies met: PENDING → READY, or created READY because its dependencies
            // had finished before it was created.
            if (was == Some(MissionStatus::Pending) || (was.is_none() && !m.depends_on.is_empty()))
                && m.status == MissionStatus::Ready
            {
                *self.resolved.entry(m.id.clone()).or_default() += 1;
            }
            if was.is_none() && m.status == MissionStatus::Pending {
                self.created_pending.insert(m.id.clone());
            }
            let lost = m
                .failures
                .iter()
                .skip(failures_before)
                .filter(|f| f.reason.ends_with("was lost"))
                .count() as u32;
            if lost > 0 {
                *self.lost_attempts.entry(m.id.clone()).or_default() += lost;
            }
            self.board.apply(m);
        }
    }

    /// Missions not final yet.
    pub(crate) fn open(&self) -> usize {
        self.board.missions().filter(|m| m.status.is_open()).count()
    }
}

/// The bus's journal: only what it planned to publish (inbox-log copies and events).
#[derive(Default)]
pub(crate) struct BusFold {
    pub(crate) entries: u64,
    pub(crate) unreadable: u64,
}

impl BusFold {
    pub(crate) fn apply(&mut self, payload: &[u8], planned: &mut Planned) {
        match serde_json::from_slice::<Entry<serde_json::Value>>(payload) {
            Ok(entry) => {
                self.entries += 1;
                planned.add(&entry.events);
            }
            Err(_) => self.unreadable += 1,
        }
    }
}

/// The three journals, read as far as they go.
pub(crate) struct Folds {
    pub(crate) spawner: SpawnerFold,
    pub(crate) missions: MissionFold,
    pub(crate) bus: BusFold,
    pub(crate) planned: Planned,
    cursors: [Cursor; 3],
}

impl Folds {
    pub(crate) fn new(limits: Limits, board: BoardConfig) -> Self {
        let cursor = |s: Service| Cursor::new(store::journal_stream(store::journal_of(s)));
        Self {
            spawner: SpawnerFold::new(limits),
            missions: MissionFold::new(board),
            bus: BusFold::default(),
            planned: Planned::default(),
            cursors: [
                cursor(Service::Spawner),
                cursor(Service::Mission),
                cursor(Service::Bus),
            ],
        }
    }

    /// Reads and folds every entry appended since the last call.
    pub(crate) async fn pull(&mut self, js: &jetstream::Context) -> anyhow::Result<()> {
        let Self {
            spawner,
            missions,
            bus,
            planned,
            cursors,
        } = self;
        let [cs, cm, cb] = cursors;
        cs.pull(js, |m| spawner.apply(m.sequence, &m.payload, planned))
            .await?;
        cm.pull(js, |m| missions.apply(&m.payload, planned)).await?;
        cb.pull(js, |m| bus.apply(&m.payload, planned)).await?;
        Ok(())
    }

    /// Journal entries that were gone before the checker could read them.
    pub(crate) fn unseen(&self) -> u64 {
        self.cursors.iter().map(|c| c.unseen).sum()
    }
}
