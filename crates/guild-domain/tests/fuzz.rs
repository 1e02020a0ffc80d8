//! Fuzz target: the domain's decisions over arbitrary command sequences (docs/FUZZING.md).
//!
//! One world holds the three pure states the services keep: the spawner's [`Registry`],
//! the mission [`Board`] and the bus's [`PostOffice`]. A case is a sequence of steps
//! mixing every `Registry::decide` command, every `Board::decide` command and the post
//! office's operations (send, consume, ack, nak, decide a question, escalate, archive),
//! each by an arbitrary principal (the operator, the observer, a service, any agent, or
//! the one the workload generator would pick). Accepted effects are applied; refusals are
//! skipped. After every step:
//!
//! - nothing panicked, deciding or computing the read operations' figures (`stats`);
//! - budgets are conserved: the pool's free tokens plus every agent's allocation is the
//!   pool's total, no agent spends or reserves more than it was allocated, no mission
//!   ledger more than its budget (`workload::check_registry`, with: live agents within
//!   `max_agents`, live children within the parent's `max_parallel_agents`, a child's
//!   authority within its parent's);
//! - every status change (saved, and announced in an event) is a legal transition, for
//!   agents and missions;
//! - the dependency graph is acyclic (checked independently of the board's own graph);
//! - the post office never delivers a copy that was acknowledged, hands a delivery to its
//!   owner only, decides a question at most once per decision, and its snapshot (its
//!   records, folded into an empty office) rebuilds the same queues and totals.
//!
//! `fuzz_domain` is `#[ignore]`d and runs for `GUILD_FUZZ_SECONDS` (`just fuzz`);
//! `domain_sequences_keep_the_invariants` runs a fixed number of cases in every `cargo
//! test`.

#![allow(clippy::unwrap_used)] // Test helpers: a failure here is a test failure.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};

use guild_domain::agent::{self, AgentStatus, Command as A, Limits, PublicKey, Record, Registry};
use guild_domain::message::{
    DecisionInput, DecisionMessage, Draft, MessageType, OfficeConfig, PostOffice, Priority, address,
};
use guild_domain::mission::{self, Board, BoardConfig, Command as M, MissionStatus, NewMission};
use guild_domain::{AgentId, Effect, MessageId, MissionId, Phase, Principal, Service, Timestamp};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// The workloads and checks, shared with `properties.rs`.
mod workload;

/// The budget and loop of every fuzz target. Included by path: guild-domain cannot
/// depend on the workspace's test package (it depends on guild-domain), and the file
/// needs nothing but proptest and std.
#[path = "../../../tests/fuzz/budget.rs"]
mod budget;

use workload::{
    AGENTS, AgentOp, MISSIONS, MissionOp, acyclic, agent_op, aid, check_registry, mid, mission_op,
    to_command, to_mission_command,
};

/// Where this target's saved failing cases are (replayed first by every run).
const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fuzz.proptest-regressions"
);

/// What the cases did, so a run shows it was not vacuous.
static COUNTS: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];
const COUNTED: [&str; 8] = [
    "spawner commands accepted",
    "refused",
    "mission commands accepted",
    "refused",
    "messages posted",
    "deliveries",
    "acknowledged",
    "decisions",
];

fn count(i: usize) {
    COUNTS[i].fetch_add(1, Ordering::Relaxed);
}

/// Prints the counts; returns them.
fn report(name: &str) -> [u64; 8] {
    let counts = COUNTS.each_ref().map(|c| c.load(Ordering::Relaxed));
    let text: Vec<String> = COUNTED
        .iter()
        .zip(counts)
        .map(|(what, n)| format!("{n} {what}"))
        .collect();
    eprintln!("fuzz {name}: {}", text.join(", "));
    counts
}

/// Who performs a step.
#[derive(Clone, Debug)]
enum Who {
    /// The principal the workload generator picks (usually one allowed to).
    AsGenerated,
    Operator,
    Observer,
    Service(u8),
    /// Agent `i` of those that exist (or a made-up one).
    Agent(usize),
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        6 => Just(Who::AsGenerated),
        2 => Just(Who::Operator),
        1 => Just(Who::Observer),
        1 => (0u8..3).prop_map(Who::Service),
        3 => (0..AGENTS + 2).prop_map(Who::Agent),
    ]
}

/// One post office operation.
#[derive(Clone, Debug)]
enum PostOp {
    Send {
        from: Who,
        kind: usize,
        to: Option<Who>,
        priority: Option<usize>,
        /// An earlier message (by index) it answers, for replies and decisions.
        in_reply_to: Option<usize>,
        requires_decision: bool,
        critical: bool,
        blank_subject: bool,
    },
    Consume {
        owner: Who,
        only: Option<usize>,
    },
    /// Acknowledges a delivery handed out before (by index), or a made-up id.
    Ack {
        owner: Who,
        delivery: usize,
        forged: bool,
    },
    Nak {
        owner: Who,
        delivery: usize,
        delay_ms: u64,
    },
    Decide {
        approver: Who,
        question: usize,
        choice: u8,
    },
    Escalate,
    Archive,
}

fn post_op() -> impl Strategy<Value = PostOp> {
    prop_oneof![
        4 => (
            who(),
            0..MessageType::ALL.len(),
            proptest::option::of(who()),
            proptest::option::of(0usize..4),
            proptest::option::of(0usize..8),
            any::<bool>(),
            any::<bool>(),
            proptest::bool::weighted(0.05),
        )
            .prop_map(
                |(from, kind, to, priority, in_reply_to, requires_decision, critical, blank_subject)| {
                    PostOp::Send { from, kind, to, priority, in_reply_to, requires_decision, critical, blank_subject }
                }
            ),
        3 => (who(), proptest::option::of(0..MessageType::ALL.len()))
            .prop_map(|(owner, only)| PostOp::Consume { owner, only }),
        2 => (who(), 0usize..8, proptest::bool::weighted(0.1))
            .prop_map(|(owner, delivery, forged)| PostOp::Ack { owner, delivery, forged }),
        1 => (who(), 0usize..8, prop_oneof![Just(0u64), 0u64..5_000, Just(3_600_001)])
            .prop_map(|(owner, delivery, delay_ms)| PostOp::Nak { owner, delivery, delay_ms }),
        2 => (who(), 0usize..8, 0u8..3)
            .prop_map(|(approver, question, choice)| PostOp::Decide { approver, question, choice }),
        1 => Just(PostOp::Escalate),
        1 => Just(PostOp::Archive),
    ]
}

/// One step of a case.
#[derive(Clone, Debug)]
enum Step {
    /// A spawner command from the shared workload, by someone.
    Agent(AgentOp, Who),
    /// The commands the shared workload does not make.
    SampleEfficiency(Who),
    IssueCredentials(usize, Who),
    /// A mission command from the shared workload, by someone.
    Mission(MissionOp, Who),
    Reassign(usize, usize, usize, Who),
    /// A mission with a budget of any size (the caller's number).
    Budgeted(u64, Who),
    ArchiveOlderThan(u64, Who),
    Post(PostOp),
    /// Time passes.
    Wait(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (agent_op(), who()).prop_map(|(op, w)| Step::Agent(op, w)),
        1 => who().prop_map(Step::SampleEfficiency),
        1 => (0..AGENTS, who()).prop_map(|(a, w)| Step::IssueCredentials(a, w)),
        8 => (mission_op(), who()).prop_map(|(op, w)| Step::Mission(op, w)),
        1 => (0..MISSIONS, 0..AGENTS, 0..AGENTS, who()).prop_map(|(m, f, t, w)| Step::Reassign(m, f, t, w)),
        1 => (0u64..10_000, who()).prop_map(|(ms, w)| Step::ArchiveOlderThan(ms, w)),
        1 => (prop_oneof![any::<u64>(), Just(u64::MAX)], who()).prop_map(|(b, w)| Step::Budgeted(b, w)),
        8 => post_op().prop_map(Step::Post),
        2 => prop_oneof![1u64..2_000, Just(31_000), Just(121_000)].prop_map(Step::Wait),
    ]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(step(), 1..150)
}

/// The three states, and what the checks remember between steps.
struct World {
    now: Timestamp,
    reg: Registry,
    board: Board,
    office: PostOffice,
    next_id: u64,
    /// Messages accepted, in order (for replies, decisions and questions by index).
    posted: Vec<MessageId>,
    /// Deliveries handed out, by owner and id.
    delivered: Vec<(Principal, String)>,
    /// Copies acknowledged: (owner, message); never delivered again.
    acked: BTreeSet<(Principal, MessageId)>,
    /// Decisions recorded per question.
    decided: BTreeMap<MessageId, u64>,
}

impl World {
    fn new() -> Self {
        let limits = Limits {
            max_agents: 6,
            token_pool: 200_000,
            max_parallel_groups: None,
        };
        Self {
            now: Timestamp::from_millis(1_000),
            reg: Registry::new(limits, Timestamp::from_millis(1_000)),
            board: Board::new(BoardConfig::default()),
            office: PostOffice::new(OfficeConfig::default()),
            next_id: 0,
            posted: Vec::new(),
            delivered: Vec::new(),
            acked: BTreeSet::new(),
            decided: BTreeMap::new(),
        }
    }

    /// The principal `who` names, `generated` for [`Who::AsGenerated`].
    fn principal(&self, who: &Who, generated: &Principal) -> Principal {
        match who {
            Who::AsGenerated => generated.clone(),
            Who::Operator => Principal::Operator,
            Who::Observer => Principal::Observer,
            Who::Service(i) => Principal::Service(
                [Service::Spawner, Service::Mission, Service::Bus][usize::from(*i) % 3],
            ),
            Who::Agent(i) => Principal::Agent(self.agent(*i)),
        }
    }

    /// Agent `i` among those that exist (sorted), or a made-up one past them.
    fn agent(&self, i: usize) -> AgentId {
        let mut known: Vec<AgentId> = self.reg.agents().map(|a| a.id.clone()).collect();
        known.sort();
        known.get(i).cloned().unwrap_or_else(|| aid(i + 100))
    }

    fn mission(&self, i: usize) -> MissionId {
        let mut known: Vec<MissionId> = self.board.missions().map(|m| m.id.clone()).collect();
        known.sort();
        known
            .get(i % known.len().max(1))
            .cloned()
            .unwrap_or_else(|| mid(i))
    }

    fn fresh_message(&mut self) -> MessageId {
        self.next_id += 1;
        MessageId::new(format!("msg-{}", self.next_id)).unwrap()
    }

    fn tick(&mut self, ms: u64) {
        self.now = Timestamp::from_millis(self.now.as_millis() + ms);
    }

    /// Decides a spawner command and applies what it saves, checking every status change.
    fn spawner(&mut self, by: &Principal, cmd: &A) -> Result<(), TestCaseError> {
        let before: BTreeMap<AgentId, AgentStatus> = self
            .reg
            .agents()
            .map(|a| (a.id.clone(), a.status))
            .collect();
        let Ok(effects) = self.reg.decide(by, cmd, self.now) else {
            count(1);
            return Ok(());
        };
        count(0);
        for e in effects {
            match e {
                Effect::Save(Record::Agent(a)) => {
                    if let Some(old) = before.get(&a.id) {
                        prop_assert!(
                            *old == a.status || old.can_become(a.status),
                            "illegal {} -> {} for {} after {:?} by {}",
                            old,
                            a.status,
                            a.id,
                            cmd,
                            by
                        );
                    }
                    self.reg.apply(Record::Agent(a));
                }
                Effect::Save(r) => self.reg.apply(r),
                Effect::Emit(agent::Event::StatusChanged { from, to, .. }) => {
                    prop_assert!(
                        from.can_become(to),
                        "event {} -> {} after {:?}",
                        from,
                        to,
                        cmd
                    );
                }
                Effect::Emit(_) | Effect::Audit(_) => {}
            }
        }
        Ok(())
    }

    /// Decides a mission command and applies what it saves, checking every status change.
    fn missions(&mut self, by: &Principal, cmd: &M) -> Result<(), TestCaseError> {
        let before: BTreeMap<MissionId, MissionStatus> = self
            .board
            .missions()
            .map(|m| (m.id.clone(), m.status))
            .collect();
        let Ok(effects) = self.board.decide(by, cmd, self.now) else {
            count(3);
            return Ok(());
        };
        count(2);
        for e in effects {
            match e {
                Effect::Save(m) => {
                    if let Some(old) = before.get(&m.id) {
                        // One decision may take a mission through READY on its way (a
                        // failed attempt goes ACTIVE -> READY); every step is in the table.
                        let through_ready = old.can_become(MissionStatus::Ready)
                            && MissionStatus::Ready.can_become(m.status);
                        prop_assert!(
                            *old == m.status || old.can_become(m.status) || through_ready,
                            "illegal {} -> {} for {} after {:?} by {}",
                            old,
                            m.status,
                            m.id,
                            cmd,
                            by
                        );
                    }
                    self.board.apply(m);
                }
                Effect::Emit(mission::Event::StatusChanged { from, to, .. }) => {
                    prop_assert!(
                        from.can_become(to),
                        "event {} -> {} after {:?}",
                        from,
                        to,
                        cmd
                    );
                }
                Effect::Emit(_) | Effect::Audit(_) => {}
            }
        }
        prop_assert!(
            acyclic(&self.board),
            "a cycle was accepted: {:?} by {}",
            cmd,
            by
        );
        Ok(())
    }

    fn post(&mut self, op: &PostOp) -> Result<(), TestCaseError> {
        let operator = Principal::Operator;
        match op {
            PostOp::Send {
                from,
                kind,
                to,
                priority,
                in_reply_to,
                requires_decision,
                critical,
                blank_subject,
            } => {
                let first = Principal::Agent(self.agent(0));
                let from = self.principal(from, &first);
                let kind = MessageType::ALL[*kind];
                let mut draft = Draft::new(kind, if *blank_subject { " " } else { "a subject" });
                draft.to = to.as_ref().map(|t| self.principal(t, &operator));
                draft.priority = priority.map(|p| {
                    [
                        Priority::Critical,
                        Priority::High,
                        Priority::Normal,
                        Priority::Low,
                    ][p]
                });
                draft.in_reply_to = in_reply_to
                    .and_then(|i| self.posted.get(i % self.posted.len().max(1)).cloned());
                draft.requires_decision = *requires_decision;
                draft.is_critical = *critical;
                draft.task_id = Some(self.mission(0));
                let original = match &draft.in_reply_to {
                    Some(id) => match self.office.original(&from, id) {
                        Ok((k, f)) => Some((*k, f.clone())),
                        Err(_) => return Ok(()),
                    },
                    None => None,
                };
                let id = self.fresh_message();
                let Ok(routed) = address(
                    &self.reg,
                    &from,
                    &draft,
                    original.as_ref().map(|(k, f)| (k, f)),
                    id,
                    self.now,
                ) else {
                    return Ok(());
                };
                let post = self.office.post(routed, self.now);
                count(4);
                self.posted.push(post.message.id.clone());
                self.served(&post.served)?;
                for r in post.records {
                    self.office.apply(r);
                }
            }
            PostOp::Consume { owner, only } => {
                // By default the owner of a copy of the latest message: most consumes
                // then find something.
                let latest = self
                    .posted
                    .last()
                    .and_then(|m| self.office.message(m))
                    .and_then(|p| p.copies.first())
                    .map_or(Principal::Operator, |c| c.owner.clone());
                let owner = self.principal(owner, &latest);
                let kinds: Vec<MessageType> = only.iter().map(|k| MessageType::ALL[*k]).collect();
                if let Some((record, d)) = self.office.consume(&owner, self.now, &kinds) {
                    if let Some(k) = kinds.first() {
                        prop_assert_eq!(d.message.kind, *k, "consume of one kind");
                    }
                    self.check_delivery(&owner, &d.delivery_id, &d.message.id, d.attempt)?;
                    self.office.apply(record);
                }
            }
            PostOp::Ack {
                owner,
                delivery,
                forged,
            } => {
                let Some((to, id)) = self.pick_delivery(*delivery, *forged) else {
                    return Ok(());
                };
                let owner = self.principal(owner, &to);
                if let Ok(record) = self.office.ack(&owner, &id, self.now) {
                    prop_assert_eq!(
                        &owner,
                        &to,
                        "{} acknowledged {}'s delivery {}",
                        owner,
                        to,
                        id
                    );
                    if let Some(message) = self.message_of(&id) {
                        self.acked.insert((owner, message));
                    }
                    count(6);
                    if let Some(r) = record {
                        self.office.apply(r);
                    }
                }
            }
            PostOp::Nak {
                owner,
                delivery,
                delay_ms,
            } => {
                let Some((to, id)) = self.pick_delivery(*delivery, false) else {
                    return Ok(());
                };
                let owner = self.principal(owner, &to);
                if let Ok(record) = self.office.nak(&owner, &id, *delay_ms, self.now) {
                    prop_assert_eq!(&owner, &to, "{} gave back {}'s delivery {}", owner, to, id);
                    prop_assert!(*delay_ms <= 3_600_000, "a nak delay past an hour was taken");
                    if let Some(message) = self.message_of(&id) {
                        prop_assert!(
                            record.is_none() || !self.acked.contains(&(owner, message)),
                            "an acknowledged delivery was given back"
                        );
                    }
                    if let Some(r) = record {
                        self.office.apply(r);
                    }
                }
            }
            PostOp::Decide {
                approver,
                question,
                choice,
            } => {
                let Some(q) = self
                    .posted
                    .get(question % self.posted.len().max(1))
                    .cloned()
                else {
                    return Ok(());
                };
                let approver = self.principal(approver, &operator);
                let input = DecisionInput {
                    choice: format!("choice-{choice}"),
                    rationale: None,
                    impact: serde_json::Value::Null,
                };
                let id = self.fresh_message();
                let message = DecisionMessage::Written(id, None);
                if let Ok(decided) = self
                    .office
                    .decide_question(&self.reg, &approver, &q, &input, message, self.now)
                {
                    if decided.ruling.state.decision.is_some() {
                        *self.decided.entry(q.clone()).or_default() += 1;
                        count(7);
                    }
                    if let Some(post) = &decided.post {
                        self.posted.push(post.message.id.clone());
                        self.served(&post.served)?;
                    }
                    for r in decided.records {
                        self.office.apply(r);
                    }
                }
            }
            PostOp::Escalate => {
                let mut n = self.next_id;
                let due = self.office.escalations_due(&self.reg, self.now, |q| {
                    n += 1;
                    MessageId::new(format!("esc-{n}-{q}")).unwrap()
                });
                self.next_id = n;
                for e in due {
                    self.posted.push(e.post.message.id.clone());
                    self.served(&e.post.served)?;
                    for r in e.records {
                        self.office.apply(r);
                    }
                }
            }
            PostOp::Archive => {
                if let Some(r) = self.office.archive_due(self.now, 10) {
                    self.office.apply(r);
                }
            }
        }
        Ok(())
    }

    /// A delivery handed out before (by index), or a made-up id for one.
    fn pick_delivery(&self, i: usize, forged: bool) -> Option<(Principal, String)> {
        let (owner, id) = self.delivered.get(i % self.delivered.len().max(1))?.clone();
        if forged {
            let (head, _) = id.rsplit_once('.')?;
            return Some((owner, format!("{head}.7")));
        }
        Some((owner, id))
    }

    /// The message of a delivery id (`<message>.<owner>.<attempt>`), as handed out.
    fn message_of(&self, delivery: &str) -> Option<MessageId> {
        self.posted
            .iter()
            .find(|m| delivery.starts_with(&format!("{m}.")))
            .cloned()
    }

    fn served(
        &mut self,
        served: &[(String, guild_domain::message::Delivery)],
    ) -> Result<(), TestCaseError> {
        for (waiter, d) in served {
            let owner = self
                .office
                .waiter(waiter)
                .map(|w| w.owner.clone())
                .ok_or_else(|| TestCaseError::fail(format!("served an unknown waiter {waiter}")))?;
            self.check_delivery(&owner, &d.delivery_id, &d.message.id, d.attempt)?;
        }
        Ok(())
    }

    /// A delivery goes to its owner, is numbered from 1, and is never of a copy the
    /// owner acknowledged.
    fn check_delivery(
        &mut self,
        owner: &Principal,
        id: &str,
        message: &MessageId,
        attempt: u32,
    ) -> Result<(), TestCaseError> {
        prop_assert!(attempt >= 1, "delivery {} has attempt 0", id);
        prop_assert!(
            id.starts_with(&format!("{message}.{}.", owner.token())),
            "delivery {} of {} handed to {}",
            id,
            message,
            owner
        );
        prop_assert!(
            !self.acked.contains(&(owner.clone(), message.clone())),
            "{} was delivered again to {} after it was acknowledged",
            message,
            owner
        );
        let copy = self
            .office
            .message(message)
            .and_then(|p| p.copy_for(owner).cloned());
        prop_assert!(
            copy.is_some(),
            "{} delivered {} of which it has no copy",
            owner,
            message
        );
        self.delivered.push((owner.clone(), id.to_owned()));
        count(5);
        Ok(())
    }

    /// The post office's own invariants.
    fn check_office(&self) -> Result<(), TestCaseError> {
        let totals = self.office.totals();
        let questions_decided: u64 = self.decided.values().sum();
        prop_assert!(
            totals.decisions <= questions_decided,
            "{} decisions counted, {} made",
            totals.decisions,
            questions_decided
        );
        // The snapshot: the records fold into an empty office as the same queues, totals
        // and questions.
        let mut rebuilt = PostOffice::new(*self.office.config());
        for r in self.office.records() {
            rebuilt.apply((*r).clone());
        }
        prop_assert_eq!(rebuilt.totals(), totals, "totals after a snapshot");
        // In any order: the office keeps them in a hash map.
        let queues: BTreeMap<&Principal, usize> = self.office.queues().collect();
        let again: BTreeMap<&Principal, usize> = rebuilt.queues().collect();
        prop_assert_eq!(again, queues, "queues after a snapshot");
        for id in &self.posted {
            prop_assert_eq!(
                rebuilt.question(id),
                self.office.question(id),
                "question {}",
                id
            );
            prop_assert_eq!(
                rebuilt.message(id),
                self.office.message(id),
                "message {}",
                id
            );
        }
        Ok(())
    }

    fn run(&mut self, step: &Step) -> Result<(), TestCaseError> {
        match step {
            Step::Agent(op, w) => {
                let (generated, cmd) = to_command(&self.reg, op, self.reg.agents().count());
                let by = self.principal(w, &generated);
                self.spawner(&by, &cmd)?;
            }
            Step::SampleEfficiency(w) => {
                let by = self.principal(w, &Principal::Service(Service::Spawner));
                self.spawner(&by, &A::SampleEfficiency)?;
            }
            Step::IssueCredentials(a, w) => {
                let key = PublicKey::new(format!("U{}", "A".repeat(55))).unwrap();
                let cmd = A::IssueCredentials {
                    agent: self.agent(*a),
                    public_key: key,
                };
                let by = self.principal(w, &Principal::Operator);
                self.spawner(&by, &cmd)?;
            }
            Step::Mission(op, w) => {
                let cmd = to_mission_command(&self.board, op);
                let by = self.principal(w, &Principal::Operator);
                self.missions(&by, &cmd)?;
            }
            Step::Reassign(m, from, to, w) => {
                let cmd = M::Reassign {
                    mission: self.mission(*m),
                    from: self.agent(*from),
                    to: self.agent(*to),
                };
                let by = self.principal(w, &Principal::Operator);
                self.missions(&by, &cmd)?;
            }
            Step::Budgeted(budget, w) => {
                let id = MissionId::new(format!("b{}", self.board.len())).unwrap();
                let mut nm = NewMission::new(id, "budgeted", Phase::DEVELOPMENT);
                nm.token_budget = *budget;
                let by = self.principal(w, &Principal::Operator);
                self.missions(&by, &M::Create(nm))?;
            }
            Step::ArchiveOlderThan(ms, w) => {
                let by = self.principal(w, &Principal::Service(Service::Mission));
                self.missions(&by, &M::ArchiveOlderThan { older_than_ms: *ms })?;
            }
            Step::Post(op) => self.post(op)?,
            Step::Wait(ms) => self.tick(*ms),
        }
        self.tick(1);
        // What the read operations compute from any state: no panic (`get_stats`,
        // `get_statistics`, `get_message_stats`, `get_parallelizable_missions`,
        // `phase_status`, `check_ready`).
        let _ = self.reg.stats(self.now, 0.01);
        let _ = self.board.stats(self.now);
        let _ = self.office.stats();
        let _ = self.board.parallel_groups_within(5);
        for p in Phase::all() {
            let _ = self.board.phase_complete(p);
        }
        for m in self.board.missions() {
            let _ = self.board.check_ready(&m.id);
        }
        check_registry(&self.reg)?;
        prop_assert!(acyclic(&self.board), "a cycle after {:?}", step);
        for m in self.board.missions() {
            prop_assert!(
                m.attempts <= m.max_retries + 1,
                "{} ran {} times",
                m.id,
                m.attempts
            );
        }
        self.check_office()
    }
}

/// One case: every step from a fresh world.
fn case(steps: &[Step]) -> Result<(), TestCaseError> {
    let mut world = World::new();
    for step in steps {
        world.run(step)?;
    }
    Ok(())
}

/// The fuzz target (`just fuzz`): runs for `GUILD_FUZZ_SECONDS`.
#[test]
#[ignore = "fuzzing: `just fuzz` runs it for GUILD_FUZZ_SECONDS (docs/FUZZING.md)"]
fn fuzz_domain() {
    let ran = budget::run("domain", REGRESSIONS, budget::budget(), 256, steps(), |s| {
        case(&s)
    });
    let counts = report("domain");
    assert!(ran.cases > 0);
    assert!(
        counts.iter().all(|&n| n > 0),
        "some kind of step never happened: the run proves little"
    );
}

/// The same target with a fixed number of cases, in every `cargo test` (and the saved
/// failing cases first).
#[test]
fn domain_sequences_keep_the_invariants() {
    budget::run(
        "domain (fixed)",
        REGRESSIONS,
        std::time::Duration::from_nanos(1),
        256,
        steps(),
        |s| case(&s),
    );
    report("domain (fixed)");
}

/// The seed corpus: sequences written by hand toward the edges the invariants guard,
/// run before anything generated (and in every `cargo test`).
fn seeds() -> Vec<(&'static str, Vec<Step>)> {
    use AgentOp as Ag;
    use MissionOp as Mi;
    let spawn = |child, parent, budget| {
        Step::Agent(
            Ag::Spawn {
                child,
                parent,
                budget,
                narrow: false,
            },
            Who::AsGenerated,
        )
    };
    let op = |o| Step::Agent(o, Who::AsGenerated);
    let mission = |o| Step::Mission(o, Who::AsGenerated);
    let send = |from, kind, requires_decision| {
        Step::Post(PostOp::Send {
            from,
            kind,
            to: None,
            priority: None,
            in_reply_to: None,
            requires_decision,
            critical: false,
            blank_subject: false,
        })
    };
    vec![
        (
            "children past max_parallel_agents, then the subtree terminated",
            (0..8)
                .map(|_| spawn(0, Some(0), 1_000))
                .chain([op(Ag::Terminate {
                    agent: 0,
                    subtree: true,
                    failed: false,
                })])
                .collect(),
        ),
        (
            "the pool spent, reservations past the allocation, commits past the reservation",
            vec![
                spawn(0, None, 150_000),
                spawn(1, None, 60_000),
                op(Ag::Reserve {
                    agent: 0,
                    amount: 149_999,
                    rid: 1,
                }),
                op(Ag::Reserve {
                    agent: 0,
                    amount: 2,
                    rid: 2,
                }),
                op(Ag::Commit {
                    agent: 0,
                    rid: 1,
                    used: 150_001,
                }),
                op(Ag::Reallocate {
                    from: 0,
                    to: 1,
                    amount: 10_000,
                }),
                op(Ag::Terminate {
                    agent: 0,
                    subtree: false,
                    failed: true,
                }),
                op(Ag::Reallocate {
                    from: 0,
                    to: 1,
                    amount: 1,
                }),
            ],
        ),
        (
            "a cycle through three missions, and one on itself",
            vec![
                mission(Mi::Create {
                    id: 0,
                    deps: vec![],
                }),
                mission(Mi::Create {
                    id: 0,
                    deps: vec![(0, false)],
                }),
                mission(Mi::Create {
                    id: 0,
                    deps: vec![(1, true)],
                }),
                mission(Mi::Depend {
                    id: 0,
                    on: 2,
                    soft: false,
                }),
                mission(Mi::Depend {
                    id: 0,
                    on: 0,
                    soft: true,
                }),
                mission(Mi::Start(0)),
                mission(Mi::Fail { id: 0, retry: true }),
                mission(Mi::Start(0)),
                mission(Mi::Complete { id: 0, score: 10 }),
                mission(Mi::Archive(0)),
            ],
        ),
        (
            "a question decided twice, by the wrong people, then overdue",
            vec![
                spawn(0, None, 1_000),
                send(Who::AsGenerated, 1, true),
                Step::Post(PostOp::Decide {
                    approver: Who::Observer,
                    question: 0,
                    choice: 0,
                }),
                Step::Post(PostOp::Decide {
                    approver: Who::Agent(0),
                    question: 0,
                    choice: 0,
                }),
                Step::Wait(121_000),
                Step::Post(PostOp::Escalate),
                Step::Post(PostOp::Decide {
                    approver: Who::Operator,
                    question: 0,
                    choice: 1,
                }),
                Step::Post(PostOp::Decide {
                    approver: Who::Operator,
                    question: 0,
                    choice: 2,
                }),
                Step::Post(PostOp::Consume {
                    owner: Who::AsGenerated,
                    only: None,
                }),
                Step::Post(PostOp::Ack {
                    owner: Who::AsGenerated,
                    delivery: 0,
                    forged: false,
                }),
                Step::Post(PostOp::Ack {
                    owner: Who::Operator,
                    delivery: 0,
                    forged: true,
                }),
                Step::Post(PostOp::Consume {
                    owner: Who::AsGenerated,
                    only: None,
                }),
            ],
        ),
        (
            "heartbeats missed, and every status set on a dead agent",
            vec![
                spawn(0, None, 1_000),
                op(Ag::Allocate(0)),
                Step::Wait(31_000),
                op(Ag::Expire(30_000)),
                op(Ag::SetStatus(0, 0)),
                op(Ag::SetStatus(0, 3)),
                op(Ag::Resume(0, true)),
                op(Ag::Heartbeat(0)),
            ],
        ),
    ]
}

/// The seed corpus keeps the invariants (and runs through every step kind it names).
#[test]
fn seed_sequences_keep_the_invariants() {
    for (name, steps) in seeds() {
        if let Err(e) = case(&steps) {
            panic!("seed {name:?}: {e}");
        }
    }
}

/// Found by `fuzz_wire` (mission.get_statistics, after the fuzzer had created missions with
/// budgets near `u64::MAX`): `Board::stats` summed the missions' token budgets with `+=`,
/// which overflowed; in a debug build the handler panicked and every `get_statistics`
/// after it went unanswered (a timeout), in a release build the total wrapped. Fixed in
/// `crates/guild-domain/src/mission/stats.rs` (the total saturates).
#[test]
fn regression_statistics_with_huge_mission_budgets() {
    let mut board = Board::new(BoardConfig::default());
    for (i, budget) in [u64::MAX / 2 + 1, u64::MAX / 2 + 1, 7]
        .into_iter()
        .enumerate()
    {
        let mut nm = NewMission::new(mid(i), format!("m{i}"), Phase::DEVELOPMENT);
        nm.token_budget = budget;
        for e in board
            .decide(
                &Principal::Operator,
                &M::Create(nm),
                Timestamp::from_millis(1),
            )
            .unwrap()
        {
            if let Effect::Save(m) = e {
                board.apply(m);
            }
        }
    }
    let stats = board.stats(Timestamp::from_millis(2));
    assert_eq!(stats.total, 3);
    assert_eq!(stats.token_budget_total, u64::MAX);
}
