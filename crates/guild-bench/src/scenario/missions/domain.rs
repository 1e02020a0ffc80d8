//! The mission rules alone: the domain's `Board` grown through each scale of the plan,
//! every operation decided and applied in this process, no NATS, no serialization.

use std::time::Instant;

use guild_domain::mission::{
    Board, BoardConfig, Command, Event, Mission, MissionStatus, NewMission, Severity,
};
use guild_domain::{AgentId, Effect, MissionId, Phase, Principal, Timestamp};

use super::plan::{EDGES_PER_MISSION, backward_edges, edges, mid, rng};
use crate::stats::Samples;
use guild_testkit::process::rss_mib as rss_of_pid;

/// The figures at one scale.
pub(crate) struct AtScale {
    pub(crate) missions: u64,
    /// Dependencies added to the board at this size, each checked for a cycle.
    pub(crate) add_dependency: Samples,
    /// Completions, each releasing its dependents.
    pub(crate) completion: Samples,
    /// The parallel groups computed afresh, five times.
    pub(crate) groups: Samples,
    /// The bench process's growth in resident memory since the board was empty.
    pub(crate) memory_mib: f64,
}

pub(crate) struct Figures {
    pub(crate) scales: Vec<AtScale>,
    /// At the largest scale: dependencies on later missions.
    pub(crate) against_order: Samples,
    pub(crate) cycles_refused: usize,
}

fn apply(board: &mut Board, effects: Vec<Effect<Mission, Event>>) {
    for e in effects {
        if let Effect::Save(m) = e {
            board.apply(m);
        }
    }
}

/// Decides `cmd` and applies it if accepted; whether it was.
fn decide(board: &mut Board, cmd: &Command) -> bool {
    match board.decide(&Principal::Operator, cmd, Timestamp::from_millis(0)) {
        Ok(effects) => {
            apply(board, effects);
            true
        }
        Err(_) => false,
    }
}

fn dependency(a: u64, b: u64, severity: Severity) -> Command {
    Command::AddDependency {
        mission: mid(a),
        on: mid(b),
        severity,
    }
}

/// Grows one board through `scales`, measuring at each; `samples` dependencies timed per
/// scale.
pub(crate) fn in_process(scales: &[u64], samples: u64) -> Figures {
    let before = rss_of_pid(std::process::id());
    let mut board = Board::new(BoardConfig::default());
    let mut plan = rng();
    let mut have = 0;
    let mut out = Vec::new();
    for &n in scales {
        for i in have..n {
            decide(
                &mut board,
                &Command::Create(NewMission::new(mid(i), "m", Phase::DEVELOPMENT)),
            );
        }
        for (a, b) in edges(have, n, EDGES_PER_MISSION * (n - have), &mut plan) {
            decide(&mut board, &dependency(a, b, Severity::Hard));
        }
        have = n;
        let mut add = Samples::with_capacity(samples as usize);
        for (a, b) in edges(0, n, samples, &mut plan) {
            let t = Instant::now();
            // Refused only when the plan already has it: not a sample of adding one.
            if decide(&mut board, &dependency(a, b, Severity::Soft)) {
                add.push(t.elapsed());
            }
        }
        let memory_mib = rss_of_pid(std::process::id()) - before;
        let groups = groups(&mut board, n);
        let completion = completions(&mut board, (n / 20).clamp(5, 1_000) as usize);
        out.push(AtScale {
            missions: n,
            add_dependency: add,
            completion,
            groups,
            memory_mib,
        });
    }
    // Edges against the creation order: the order must be repaired, or the edge closes a cycle.
    let mut against_order = Samples::with_capacity(1_000);
    let mut cycles_refused = 0;
    for (a, b) in backward_edges(have, 1_000, &mut plan) {
        let t = Instant::now();
        if !decide(&mut board, &dependency(a, b, Severity::Soft)) {
            cycles_refused += 1;
        }
        against_order.push(t.elapsed());
    }
    Figures {
        scales: out,
        against_order,
        cycles_refused,
    }
}

/// The parallel groups, five times, each after a change that invalidates the cached layers.
fn groups(board: &mut Board, n: u64) -> Samples {
    let mut groups = Samples::with_capacity(5);
    for i in 0..5u64 {
        decide(board, &dependency(n - 1 - i, 0, Severity::Soft));
        let t = Instant::now();
        let g = board.parallel_groups();
        groups.push(t.elapsed());
        std::hint::black_box(g);
    }
    groups
}

/// Readiness after a completion: up to `count` READY missions started and completed, each
/// completion releasing its dependents.
fn completions(board: &mut Board, count: usize) -> Samples {
    let ready: Vec<MissionId> = board
        .missions()
        .filter(|m| m.status == MissionStatus::Ready)
        .map(|m| m.id.clone())
        .take(count)
        .collect();
    let agent = AgentId::new("bench").unwrap_or_else(|_| unreachable!("a valid id"));
    let mut completion = Samples::with_capacity(ready.len());
    for id in ready {
        decide(
            board,
            &Command::Start {
                mission: id.clone(),
                agent: agent.clone(),
            },
        );
        let cmd = Command::Complete {
            mission: id,
            output: serde_json::Value::Null,
            quality_score: None,
        };
        let t = Instant::now();
        decide(board, &cmd);
        completion.push(t.elapsed());
    }
    completion
}
