//! The checker: the workload's own log of acknowledged replies against what Guild
//! delivered (the agents' logs of deliveries) and stored (the inbox log, the events
//! stream, the audit log, the journals folded from outside). It runs after quiescence,
//! so its verdict does not depend on timing; every row must be zero, every fault kind
//! of the mode must have been injected, and every kind of operation must have been
//! acknowledged at least the stated number of times.

use std::collections::{BTreeMap, BTreeSet};

use async_nats::jetstream;
use guild_domain::agent::AgentStatus;
use guild_domain::mission::MissionStatus;
use guild_wire::audit::VerifyReport;
use guild_wire::{header, store, subject};

use crate::fold::Folds;
use crate::inject::{Kind, Mode};
use crate::record::{Line, Op};

/// How many examples a row keeps.
const EXAMPLES: usize = 8;

/// One zero row: what it counts, how many, and a few examples.
#[derive(Debug, Default, Clone)]
pub(crate) struct Row {
    pub(crate) name: &'static str,
    pub(crate) count: u64,
    pub(crate) examples: Vec<String>,
}

impl Row {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            ..Self::default()
        }
    }

    fn add(&mut self, what: impl FnOnce() -> String) {
        self.count += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push(what());
        }
    }

    fn add_n(&mut self, n: u64, examples: &[String]) {
        self.count += n;
        for e in examples
            .iter()
            .take(EXAMPLES.saturating_sub(self.examples.len()))
        {
            self.examples.push(e.clone());
        }
    }
}

/// The state at quiescence, from the folded journals.
#[derive(Debug, Default, Clone)]
pub(crate) struct Quiet {
    /// Agents (and the operator) live then.
    pub(crate) live: BTreeSet<String>,
    /// Agents WORKING on a mission that is not ACTIVE on them.
    pub(crate) working_wrong: Vec<String>,
    /// Missions not final.
    pub(crate) open: Vec<String>,
}

impl Quiet {
    pub(crate) fn of(f: &Folds) -> Self {
        let board = &f.missions.board;
        let mut working_wrong = Vec::new();
        for a in f.spawner.registry.agents() {
            if a.status != AgentStatus::Working {
                continue;
            }
            let ok = a
                .assigned_task_id
                .as_ref()
                .and_then(|m| board.mission(m))
                .is_some_and(|m| {
                    m.status == MissionStatus::Active && m.assigned_agent_id.as_ref() == Some(&a.id)
                });
            if !ok {
                working_wrong.push(format!(
                    "{} WORKING on {:?}, which is {:?}",
                    a.id,
                    a.assigned_task_id.as_ref().map(ToString::to_string),
                    a.assigned_task_id
                        .as_ref()
                        .and_then(|m| board.mission(m))
                        .map(|m| (
                            m.status,
                            m.assigned_agent_id.as_ref().map(ToString::to_string)
                        ))
                ));
            }
        }
        Self {
            live: crate::run::live_agents(f),
            working_wrong,
            open: board
                .missions()
                .filter(|m| m.status.is_open())
                .map(|m| format!("{} {:?}", m.id, m.status))
                .collect(),
        }
    }
}

/// What the streams hold, read by sequence with unlimited credentials.
#[derive(Debug, Default)]
pub(crate) struct Streams {
    /// The inbox log: (owner, message id) → priorities it was stored at.
    pub(crate) inbox: BTreeMap<(String, String), Vec<String>>,
    /// De-duplication ids (`Nats-Msg-Id`) by stream → times stored.
    pub(crate) ids: BTreeMap<String, BTreeMap<String, u32>>,
    /// Streams that could not be read to the end.
    pub(crate) errors: Vec<String>,
    /// Messages per stream.
    pub(crate) counts: BTreeMap<String, u64>,
}

impl Streams {
    pub(crate) async fn read(js: &jetstream::Context) -> Self {
        let mut s = Self::default();
        for stream in [
            store::INBOX_STREAM,
            store::EVENTS_STREAM,
            store::AUDIT_STREAM,
        ] {
            let mut cursor = crate::fold::Cursor::new(stream);
            let mut ids: BTreeMap<String, u32> = BTreeMap::new();
            let mut inbox = Vec::new();
            let mut n = 0u64;
            let read = cursor
                .pull(js, |m| {
                    n += 1;
                    if let Some(id) = m.headers.get(header::NATS_MSG_ID) {
                        *ids.entry(id.as_str().to_owned()).or_default() += 1;
                    }
                    if stream == store::INBOX_STREAM
                        && let Some((owner, priority)) = subject::parse_inbox(&m.subject)
                        && let Some(msg) = m.headers.get(header::MESSAGE_ID)
                    {
                        inbox.push((
                            owner.to_owned(),
                            msg.as_str().to_owned(),
                            priority.to_owned(),
                        ));
                    }
                })
                .await;
            if let Err(e) = read {
                s.errors.push(format!("{stream}: {e:#}"));
            }
            if cursor.unseen > 0 {
                s.errors.push(format!(
                    "{stream}: {} messages gone before they were read",
                    cursor.unseen
                ));
            }
            for (owner, msg, priority) in inbox {
                s.inbox.entry((owner, msg)).or_default().push(priority);
            }
            s.ids.insert(stream.to_owned(), ids);
            s.counts.insert(stream.to_owned(), n);
        }
        s
    }
}

/// What the journals planned to publish that the streams do not hold: `(id, subject,
/// stream)`. Events are published after the answer (and a failed publish by a sweep
/// after the outbox grace), so the run waits, bounded, until this is empty before its
/// final read.
pub(crate) fn unstored<'a>(
    f: &'a Folds,
    streams: &Streams,
) -> Vec<(&'a str, &'a str, &'static str)> {
    let mut out = Vec::new();
    for (id, subj) in &f.planned.events {
        let stream = if subj.starts_with("guild.inbox.") {
            store::INBOX_STREAM
        } else if subj.starts_with("guild.evt.") {
            store::EVENTS_STREAM
        } else if subj.starts_with("guild.audit.") {
            store::AUDIT_STREAM
        } else {
            continue;
        };
        if !streams.ids.get(stream).is_some_and(|m| m.contains_key(id)) {
            out.push((id.as_str(), subj.as_str(), stream));
        }
    }
    out
}

/// Everything the checker looks at.
pub(crate) struct Inputs<'a> {
    pub(crate) mode: Mode,
    pub(crate) duration: std::time::Duration,
    pub(crate) lines: &'a [Line],
    pub(crate) torn: usize,
    pub(crate) folds: &'a Folds,
    pub(crate) quiet: &'a Quiet,
    pub(crate) streams: &'a Streams,
    pub(crate) audit: &'a Result<VerifyReport, String>,
    /// Service instances and the start-up times of their restarts.
    pub(crate) restarts: &'a [(String, Vec<std::time::Duration>)],
    pub(crate) quiescent: bool,
}

/// One fault as it happened, with the longest gap in acknowledged writes around it.
#[derive(Debug, Clone)]
pub(crate) struct FaultFigure {
    pub(crate) kind: String,
    pub(crate) target: String,
    pub(crate) at_s: f64,
    pub(crate) lasted_ms: u64,
    /// The longest gap between acknowledged writes (any service) overlapping the fault.
    pub(crate) stall_ms: u64,
    pub(crate) caught_up_ms: Option<u64>,
    pub(crate) note: String,
}

/// The verdict and the figures.
#[derive(Debug, Default)]
pub(crate) struct Verdict {
    pub(crate) rows: Vec<Row>,
    /// Acknowledged operations by kind.
    pub(crate) ops: BTreeMap<String, u64>,
    /// The least each kind of operation must reach.
    pub(crate) minimum: u64,
    /// Faults injected by kind (every kind of the mode listed, zero included).
    pub(crate) faults: BTreeMap<String, u64>,
    pub(crate) fault_figures: Vec<FaultFigure>,
    /// Other figures, in words.
    pub(crate) figures: Vec<(String, String)>,
}

impl Verdict {
    pub(crate) fn passed(&self) -> bool {
        self.rows.iter().all(|r| r.count == 0)
            && self.faults.values().all(|&n| n > 0)
            && self.ops.values().all(|&n| n >= self.minimum)
    }

    /// Why it failed, in lines (empty when it passed).
    pub(crate) fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in self.rows.iter().filter(|r| r.count > 0) {
            out.push(format!(
                "{}: {} (e.g. {})",
                r.name,
                r.count,
                r.examples.join("; ")
            ));
        }
        for (k, n) in &self.faults {
            if *n == 0 {
                out.push(format!("fault kind never injected: {k}"));
            }
        }
        for (k, n) in &self.ops {
            if *n < self.minimum {
                out.push(format!(
                    "only {n} acknowledged {k} (at least {} wanted)",
                    self.minimum
                ));
            }
        }
        out
    }

    pub(crate) fn summary(&self, mode: Mode) -> String {
        let mut s = format!("guild-chaos: {} checker\n", mode.name());
        for r in &self.rows {
            s.push_str(&format!("  {:<58} {}\n", r.name, r.count));
        }
        s.push_str("  faults: ");
        s.push_str(
            &self
                .faults
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
        s.push_str("\n  acknowledged: ");
        s.push_str(
            &self
                .ops
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
        s.push('\n');
        for f in self.failures() {
            s.push_str(&format!("  FAILED: {f}\n"));
        }
        s
    }
}

/// Acknowledged (message, recipient) pairs whose recipient is in `live` and that no
/// delivery line shows delivered to it.
pub(crate) fn undelivered(lines: &[Line], live: &BTreeSet<String>) -> Vec<(String, String)> {
    let delivered: BTreeSet<(&str, &str)> = lines
        .iter()
        .filter_map(|l| match &l.op {
            Op::Delivered { to, msg, .. } => Some((to.as_str(), msg.as_str())),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for (msg, to) in sent(lines) {
        if live.contains(&to) && !delivered.contains(&(to.as_str(), msg.as_str())) {
            out.push((msg, to));
        }
    }
    out
}

/// Every acknowledged (message, recipient), once.
fn sent(lines: &[Line]) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for l in lines {
        let (msg, to) = match &l.op {
            Op::Sent { msg, to, .. } | Op::Asked { msg, to } | Op::Decided { msg, to, .. } => {
                (msg, to)
            }
            _ => continue,
        };
        for t in to {
            out.insert((msg.clone(), t.clone()));
        }
    }
    out
}

/// The verdict.
pub(crate) fn check(i: Inputs<'_>) -> Verdict {
    let mut v = Verdict {
        minimum: (i.duration.as_secs() / 60).max(1),
        ..Verdict::default()
    };
    let lines = i.lines;
    let f = i.folds;

    // ---- counts -----------------------------------------------------------------------
    let mut ops: BTreeMap<String, u64> = BTreeMap::new();
    for k in [
        "heartbeat",
        "spawn",
        "send critical",
        "send high",
        "send normal",
        "send low",
        "ask",
        "decide",
        "deliver",
        "ack",
        "reserve",
        "commit",
        "create mission",
        "assign",
        "complete",
    ] {
        ops.insert(k.to_owned(), 0);
    }
    for l in lines {
        let k = match &l.op {
            Op::Heartbeat { .. } => "heartbeat".to_owned(),
            Op::Spawned { .. } => "spawn".to_owned(),
            Op::Sent { priority, .. } => format!("send {priority}"),
            Op::Asked { .. } => "ask".to_owned(),
            Op::Decided { .. } => "decide".to_owned(),
            Op::Delivered { .. } => "deliver".to_owned(),
            Op::Acked { .. } => "ack".to_owned(),
            Op::Reserved { .. } => "reserve".to_owned(),
            Op::Committed { .. } => "commit".to_owned(),
            Op::Created { .. } => "create mission".to_owned(),
            Op::Assigned { .. } => "assign".to_owned(),
            Op::Completed { .. } => "complete".to_owned(),
            _ => continue,
        };
        *ops.entry(k).or_default() += 1;
    }
    v.ops = ops;
    for k in Kind::of(i.mode) {
        v.faults.insert(k.name().to_owned(), 0);
    }
    for l in lines {
        if let Op::Fault { kind, .. } = &l.op
            && let Some(n) = v.faults.get_mut(kind)
        {
            *n += 1;
        }
    }

    // ---- acknowledged and lost ----------------------------------------------------------
    let mut lost = Row::new("acknowledged and lost");
    let mut wrong_priority = Row::new("stored at another priority than acknowledged");
    let mut priority_of: BTreeMap<&str, &str> = BTreeMap::new();
    for l in lines {
        if let Op::Sent { msg, priority, .. } = &l.op {
            priority_of.insert(msg, priority);
        }
    }
    for (msg, to) in sent(lines) {
        match i.streams.inbox.get(&(to.clone(), msg.clone())) {
            None => lost.add(|| format!("{msg} to {to}: not in the inbox log")),
            Some(ps) => {
                if let Some(p) = priority_of.get(msg.as_str())
                    && ps.iter().any(|x| x != p)
                {
                    wrong_priority.add(|| format!("{msg} to {to}: sent {p}, stored {ps:?}"));
                }
            }
        }
    }
    for (msg, to) in undelivered(lines, &i.quiet.live) {
        lost.add(|| format!("{msg} to {to} (live at quiescence): never delivered"));
    }
    let registry = &f.spawner.registry;
    let board = &f.missions.board;
    for l in lines {
        match &l.op {
            Op::Spawned { agent, .. } if !registry.agents().any(|a| a.id.as_str() == agent) => {
                lost.add(|| format!("agent {agent}: spawned, not in the spawner's journal"));
            }
            Op::Created { mission, .. } if !board.missions().any(|m| m.id.as_str() == mission) => {
                lost.add(|| format!("mission {mission}: created, not in the mission journal"));
            }
            Op::Completed { mission, .. } => {
                let st = board
                    .missions()
                    .find(|m| m.id.as_str() == mission)
                    .map(|m| m.status);
                if !matches!(st, Some(MissionStatus::Completed | MissionStatus::Archived)) {
                    lost.add(|| format!("mission {mission}: completion acknowledged, now {st:?}"));
                }
            }
            Op::Reserved {
                agent,
                reservation,
                amount,
                ..
            } => {
                match f
                    .spawner
                    .reservations
                    .get(&(agent.clone(), reservation.clone()))
                {
                    None => lost.add(|| {
                        format!(
                            "reservation {reservation} of {agent}: acknowledged, not in the journal"
                        )
                    }),
                    Some(r) if r.amount != *amount => lost.add(|| {
                        format!(
                            "reservation {reservation}: acknowledged {amount}, journal {}",
                            r.amount
                        )
                    }),
                    Some(_) => {}
                }
            }
            _ => {}
        }
    }

    // ---- delivered again after ack; duplicates ---------------------------------------
    let mut again = Row::new("delivered again after ack");
    let mut acked: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for l in lines {
        match &l.op {
            Op::Acked { to, msg, .. } => {
                acked.entry((to, msg)).or_insert(l.t);
            }
            Op::Delivered {
                to, msg, attempt, ..
            } => {
                if let Some(at) = acked.get(&(to.as_str(), msg.as_str())) {
                    let at = *at;
                    again.add(|| format!("{msg} to {to}: delivered (attempt {attempt}) at {}, acknowledged at {at}", l.t));
                }
            }
            _ => {}
        }
    }
    let mut dups = Row::new("duplicates after dedupe");
    for ((owner, msg), ps) in &i.streams.inbox {
        if ps.len() > 1 {
            dups.add(|| format!("{msg} in {owner}'s inbox log {} times", ps.len()));
        }
    }
    for (stream, ids) in &i.streams.ids {
        for (id, n) in ids {
            if *n > 1 {
                dups.add(|| format!("{stream}: {id} stored {n} times"));
            }
        }
    }
    dups.add_n(f.spawner.remade_count, &f.spawner.remade);
    let mut unpublished = Row::new("planned events and inbox copies never stored");
    for (id, subj, stream) in unstored(f, i.streams) {
        unpublished.add(|| format!("{id} ({subj}) not in {stream}"));
    }

    // ---- budgets ------------------------------------------------------------------------
    let mut budget = Row::new("budget arithmetic off");
    budget.add_n(f.spawner.token_count, &f.spawner.token_violations);
    budget.add_n(f.spawner.odd.len() as u64, &f.spawner.odd);
    // What the log says each agent used: acknowledged commits, and commits of unknown
    // outcome that the journal shows made (with the amount the agent sent).
    let mut used_by: BTreeMap<String, u64> = BTreeMap::new();
    let mut used_on: BTreeMap<String, u64> = BTreeMap::new();
    let mission_of = |agent: &str, res: &str| {
        f.spawner
            .reservations
            .get(&(agent.to_owned(), res.to_owned()))
            .and_then(|r| r.mission.as_ref().map(ToString::to_string))
    };
    for l in lines {
        match &l.op {
            Op::Committed {
                agent,
                reservation,
                used,
                ..
            } => {
                match f
                    .spawner
                    .reservations
                    .get(&(agent.clone(), reservation.clone()))
                {
                    Some(r) if r.committed == Some(*used) => {}
                    r => budget.add(|| {
                        format!(
                            "{agent} {reservation}: committed {used} acknowledged, journal {:?}",
                            r.map(|r| r.committed)
                        )
                    }),
                }
                *used_by.entry(agent.clone()).or_default() += used;
                if let Some(m) = mission_of(agent, reservation) {
                    *used_on.entry(m).or_default() += used;
                }
            }
            Op::Unknown { what, ids } if what == "commit" && ids.len() == 3 => {
                let (agent, reservation) = (&ids[0], &ids[1]);
                let sent: u64 = ids[2].parse().unwrap_or(0);
                if let Some(r) = f
                    .spawner
                    .reservations
                    .get(&(agent.clone(), reservation.clone()))
                    && let Some(c) = r.committed
                {
                    if c != sent {
                        budget.add(|| {
                            format!("{agent} {reservation}: sent a commit of {sent}, journal {c}")
                        });
                    }
                    *used_by.entry(agent.clone()).or_default() += c;
                    if let Some(m) = mission_of(agent, reservation) {
                        *used_on.entry(m).or_default() += c;
                    }
                }
            }
            _ => {}
        }
    }
    for a in registry.agents() {
        let logged = used_by.get(a.id.as_str()).copied().unwrap_or(0);
        if a.budget.used != logged {
            budget.add(|| {
                format!(
                    "{}: Guild says {} used, the workload's log {logged}",
                    a.id, a.budget.used
                )
            });
        }
    }
    for l in registry.ledgers() {
        let logged = used_on.get(l.mission_id.as_str()).copied().unwrap_or(0);
        if l.used != logged {
            budget.add(|| {
                format!(
                    "mission {}: ledger {} used, the workload's log {logged}",
                    l.mission_id, l.used
                )
            });
        }
    }

    // ---- limits -------------------------------------------------------------------------
    let mut max_agents = Row::new("max agents exceeded (any journal entry)");
    max_agents.add_n(
        f.spawner.agent_limit_count,
        &f.spawner.agent_limit_violations,
    );
    let mut parallel = Row::new("max_parallel_agents exceeded (any journal entry)");
    parallel.add_n(f.spawner.parallel_count, &f.spawner.parallel_violations);

    // ---- dependencies ---------------------------------------------------------------------
    let mut ready = Row::new("dependent not READY exactly once");
    for l in lines {
        let Op::Created {
            mission,
            depends_on,
        } = &l.op
        else {
            continue;
        };
        if depends_on.is_empty() {
            continue;
        }
        let met = depends_on.iter().all(|d| {
            board
                .missions()
                .find(|m| m.id.as_str() == d)
                .is_some_and(|m| {
                    matches!(m.status, MissionStatus::Completed | MissionStatus::Archived)
                })
        });
        let n = f
            .missions
            .resolved
            .iter()
            .find(|(m, _)| m.as_str() == mission)
            .map_or(0, |(_, n)| *n);
        if (met && n != 1) || (!met && n != 0) {
            ready
                .add(|| format!("{mission}: dependencies met {met}, made READY by them {n} times"));
        }
    }

    let mut working = Row::new("agent WORKING on a mission not running on it (at quiescence)");
    for w in &i.quiet.working_wrong {
        working.add(|| w.clone());
    }
    let mut open = Row::new("missions still open after the drain");
    for m in &i.quiet.open {
        open.add(|| m.clone());
    }
    let mut audit = Row::new("audit chain problems");
    match i.audit {
        Ok(r) if r.ok => {}
        Ok(r) => audit.add_n(
            r.problems.len().max(1) as u64,
            &r.problems
                .iter()
                .map(|p| format!("{p:?}"))
                .collect::<Vec<_>>(),
        ),
        Err(e) => audit.add(|| format!("could not be read: {e}")),
    }
    let mut exits = Row::new("processes that exited unbidden");
    for l in lines {
        if let Op::Exit {
            process,
            status,
            cause,
            expected: false,
        } = &l.op
        {
            exits.add(|| format!("{process}: {status} ({cause})"));
        }
    }
    let mut revoked = Row::new("revoked credentials let in");
    let mut probes = (0u64, 0u64);
    for l in lines {
        if let Op::RevokedTried {
            agent,
            accepted,
            after,
            conclusive,
        } = &l.op
        {
            if *conclusive {
                probes.0 += 1;
            } else {
                probes.1 += 1;
            }
            if *accepted {
                revoked.add(|| format!("{agent} after {after}"));
            }
        }
    }
    let mut unchecked =
        Row::new("unchecked: journal entries or stream messages unread, log lines torn");
    let unread = f.spawner.unreadable + f.missions.unreadable + f.bus.unreadable + f.unseen();
    if unread > 0 {
        unchecked.add_n(
            unread,
            &[format!(
                "{unread} journal entries unreadable or gone before read"
            )],
        );
    }
    for e in &i.streams.errors {
        unchecked.add(|| e.clone());
    }
    if i.torn > 0 {
        unchecked.add_n(i.torn as u64, &[format!("{} log lines torn", i.torn)]);
    }
    if !i.quiescent {
        open.add(|| "quiescence not reached within the bound".into());
    }
    if probes.0 == 0 {
        revoked.add(|| "no conclusive probe was made: nothing was shown".into());
    }
    v.rows = vec![
        lost,
        wrong_priority,
        again,
        dups,
        unpublished,
        budget,
        max_agents,
        parallel,
        ready,
        working,
        open,
        audit,
        exits,
        revoked,
        unchecked,
    ];

    // ---- figures ------------------------------------------------------------------------
    let mut writes: Vec<u64> = lines
        .iter()
        .filter(|l| l.op.write_of().is_some())
        .map(|l| l.t)
        .collect();
    writes.sort_unstable();
    let start = lines.iter().map(|l| l.t0).min().unwrap_or(0);
    for l in lines {
        if let Op::Fault {
            kind,
            target,
            until,
            note,
            caught_up_ms,
        } = &l.op
        {
            let (s, u) = (l.t0, *until);
            let stall = writes
                .windows(2)
                .filter(|w| w[1] >= s && w[0] <= u)
                .map(|w| w[1] - w[0])
                .max()
                .unwrap_or(0);
            v.fault_figures.push(FaultFigure {
                kind: kind.clone(),
                target: target.clone(),
                at_s: s.saturating_sub(start) as f64 / 1000.0,
                lasted_ms: u.saturating_sub(s),
                stall_ms: stall,
                caught_up_ms: *caught_up_ms,
                note: note.clone(),
            });
        }
    }
    let lost_attempts: u32 = f.missions.lost_attempts.values().sum();
    let ended: BTreeMap<String, u64> = lines.iter().fold(BTreeMap::new(), |mut m, l| {
        if let Op::Ended { status, .. } = &l.op {
            *m.entry(status.clone()).or_default() += 1;
        }
        m
    });
    let refused = lines
        .iter()
        .filter(|l| matches!(l.op, Op::Refused { .. }))
        .count();
    let unknown = lines
        .iter()
        .filter(|l| matches!(l.op, Op::Unknown { .. }))
        .count();
    let restarts: Vec<u128> = i
        .restarts
        .iter()
        .flat_map(|(_, r)| r.iter().map(|d| d.as_millis()))
        .collect();
    v.figures = vec![
        (
            "journal entries folded (spawner, mission, bus)".into(),
            format!(
                "{}, {}, {}",
                f.spawner.entries, f.missions.entries, f.bus.entries
            ),
        ),
        (
            "messages in the inbox log, events, audit log".into(),
            format!(
                "{}, {}, {}",
                i.streams.counts.get(store::INBOX_STREAM).unwrap_or(&0),
                i.streams.counts.get(store::EVENTS_STREAM).unwrap_or(&0),
                i.streams.counts.get(store::AUDIT_STREAM).unwrap_or(&0)
            ),
        ),
        (
            "most agents live at once (limit)".into(),
            format!("{} ({})", f.spawner.max_live, registry.limits().max_agents),
        ),
        (
            "most live children of one agent (its max_parallel_agents)".into(),
            format!(
                "{} ({})",
                f.spawner.max_children.0, f.spawner.max_children.1
            ),
        ),
        (
            "agents Guild ended during the run, by status".into(),
            format!("{ended:?}"),
        ),
        (
            "mission attempts failed because the agent was lost (then retried)".into(),
            lost_attempts.to_string(),
        ),
        (
            "missions created / completed".into(),
            format!(
                "{} / {}",
                board.missions().count(),
                board
                    .missions()
                    .filter(|m| matches!(
                        m.status,
                        MissionStatus::Completed | MissionStatus::Archived
                    ))
                    .count()
            ),
        ),
        (
            "refusals (rules, limits probed) / outcomes unknown after every retry".into(),
            format!("{refused} / {unknown}"),
        ),
        (
            "revoked-credential probes (conclusive / inconclusive)".into(),
            format!("{} / {}", probes.0, probes.1),
        ),
        (
            "service restarts after kill -9: count, slowest start-up".into(),
            format!(
                "{}, {} ms",
                restarts.len(),
                restarts.iter().max().copied().unwrap_or(0)
            ),
        ),
        (
            "events planned by more than one journal entry".into(),
            f.planned.twice.to_string(),
        ),
    ];
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(t: u64, op: Op) -> Line {
        Line {
            t0: t,
            t,
            by: "x".into(),
            op,
        }
    }

    #[test]
    fn a_message_to_a_live_agent_is_undelivered_until_a_delivery_line_shows_it() {
        let sent = line(
            1,
            Op::Sent {
                msg: "w-1-m1".into(),
                to: vec!["w-2".into(), "w-3".into()],
                priority: "high".into(),
                duplicate: false,
            },
        );
        let delivered = line(
            2,
            Op::Delivered {
                to: "w-2".into(),
                msg: "w-1-m1".into(),
                delivery: "d1".into(),
                attempt: 1,
                kind: "request".into(),
                from: "w-1".into(),
            },
        );
        let live: BTreeSet<String> = ["w-2".to_owned(), "w-3".to_owned()].into();
        assert_eq!(
            undelivered(&[sent.clone(), delivered.clone()], &live),
            vec![("w-1-m1".to_owned(), "w-3".to_owned())]
        );
        // w-3 ended: its inbox is checked in the inbox log only.
        let live: BTreeSet<String> = ["w-2".to_owned()].into();
        assert!(undelivered(&[sent, delivered], &live).is_empty());
    }
}
