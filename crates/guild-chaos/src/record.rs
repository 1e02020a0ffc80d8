//! The workload's own record of what Guild acknowledged, outside NATS: one append-only
//! JSON-lines file per process (each agent, the driver, the injector), each line written
//! and flushed before the operation counts. The checker compares these files with what
//! Guild delivered and stored; it never proves Guild against Guild's own state alone.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use guild_wire::subject::Service;
use serde::{Deserialize, Serialize};

/// Milliseconds since the epoch (the services stamp their journal entries the same way,
/// on the same machine).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One line: when the request went out (`t0`) and when its answer came (`t`), who wrote
/// it, and what happened.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Line {
    pub(crate) t0: u64,
    pub(crate) t: u64,
    pub(crate) by: String,
    #[serde(flatten)]
    pub(crate) op: Op,
}

/// What a line records. Everything but `Refused`, `Unknown` and the injector's lines is
/// an acknowledged reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Op {
    /// An agent spawned (its credentials in hand); `parent` None for a root agent.
    Spawned {
        agent: String,
        parent: Option<String>,
        budget: u64,
    },
    /// A heartbeat acknowledged.
    Heartbeat { agent: String },
    /// A REQUEST accepted, into these inboxes.
    Sent {
        msg: String,
        to: Vec<String>,
        priority: String,
        duplicate: bool,
    },
    /// A QUESTION accepted.
    Asked { msg: String, to: Vec<String> },
    /// A decision on `question` accepted: the DECISION `msg` went to `to`.
    Decided {
        question: String,
        msg: String,
        to: Vec<String>,
    },
    /// A message handed over by `consume` to `to`.
    Delivered {
        to: String,
        msg: String,
        delivery: String,
        attempt: u32,
        kind: String,
        from: String,
    },
    /// A delivery acknowledged.
    Acked {
        to: String,
        msg: String,
        delivery: String,
    },
    /// Tokens reserved.
    Reserved {
        agent: String,
        reservation: String,
        amount: u64,
        mission: Option<String>,
    },
    /// A reservation committed with what the work used.
    Committed {
        agent: String,
        reservation: String,
        used: u64,
        mission: Option<String>,
    },
    /// A mission created.
    Created {
        mission: String,
        depends_on: Vec<String>,
    },
    /// A mission started on an agent.
    Assigned { mission: String, agent: String },
    /// A mission completed by its agent.
    Completed { mission: String, agent: String },
    /// A definitive refusal (not an acknowledgement): the rule, and the ids concerned.
    Refused {
        what: String,
        rule: String,
        ids: Vec<String>,
    },
    /// No answer came in time, after every retry: the outcome is unknown.
    Unknown { what: String, ids: Vec<String> },
    /// The driver saw Guild end an agent (FAILED or TERMINATED).
    Ended { agent: String, status: String },
    /// A fault injected (`until`: when it was over: the process back, the pause lifted).
    Fault {
        kind: String,
        target: String,
        until: u64,
        note: String,
        /// Cluster faults: how long after `until` every replica of the journals was
        /// current again (ms).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caught_up_ms: Option<u64>,
    },
    /// A process ended: how, and why (`cause` names who stopped it, or says it exited on
    /// its own).
    Exit {
        process: String,
        status: String,
        cause: String,
        expected: bool,
    },
    /// A revoked credential tried against the broker: whether it was let in.
    RevokedTried {
        agent: String,
        accepted: bool,
        after: String,
        /// Whether a control connection (the operator's) got in at the same moment, so
        /// a refusal says something about the credential, not about a broker that is down.
        #[serde(default)]
        conclusive: bool,
    },
}

impl Op {
    /// The service whose write this acknowledges, for the stall figures.
    pub(crate) fn write_of(&self) -> Option<Service> {
        match self {
            Op::Spawned { .. }
            | Op::Heartbeat { .. }
            | Op::Reserved { .. }
            | Op::Committed { .. } => Some(Service::Spawner),
            Op::Sent { .. } | Op::Asked { .. } | Op::Decided { .. } | Op::Acked { .. } => {
                Some(Service::Bus)
            }
            Op::Created { .. } | Op::Assigned { .. } | Op::Completed { .. } => {
                Some(Service::Mission)
            }
            _ => None,
        }
    }
}

/// An append-only log file, one flushed line per record.
#[derive(Debug)]
pub(crate) struct Log {
    by: String,
    file: Mutex<File>,
}

impl Log {
    /// Opens (creates, or appends to) `path`, writing as `by`.
    pub(crate) fn open(path: &Path, by: &str) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            by: by.to_owned(),
            file: Mutex::new(file),
        })
    }

    /// Writes `op`, asked at `t0` and answered now. One `write` call per line on a file
    /// opened for appending, so a line is never torn; a record the log could not take is
    /// a broken run, reported on stderr (the checker then finds it missing).
    pub(crate) fn write(&self, t0: u64, op: Op) {
        self.write_as(&self.by.clone(), t0, op);
    }

    /// [`write`](Self::write) on behalf of another writer of the same process (the
    /// driver writes for the operator and the lead).
    pub(crate) fn write_as(&self, by: &str, t0: u64, op: Op) {
        let line = Line {
            t0,
            t: now_ms(),
            by: by.to_owned(),
            op,
        };
        let mut text = match serde_json::to_string(&line) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("guild-chaos: could not encode a log line: {e}");
                return;
            }
        };
        text.push('\n');
        let written = self
            .file
            .lock()
            .map_err(|_| std::io::Error::other("log lock poisoned"))
            .and_then(|mut f| {
                f.write_all(text.as_bytes())?;
                f.flush()
            });
        if let Err(e) = written {
            eprintln!("guild-chaos: could not write the workload log: {e}");
        }
    }
}

/// Every line of every `*.jsonl` file in `dir`, ordered by answer time. A line cut short
/// (a process killed while writing) is counted, not parsed.
pub(crate) fn read_all(dir: &Path) -> std::io::Result<(Vec<Line>, usize)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let mut lines = Vec::new();
    let mut bad = 0;
    for f in files {
        for l in BufReader::new(File::open(&f)?).lines() {
            let l = l?;
            if l.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Line>(&l) {
                Ok(line) => lines.push(line),
                Err(_) => bad += 1,
            }
        }
    }
    lines.sort_by_key(|l| l.t);
    Ok((lines, bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let log = Log::open(&dir.path().join("w-1.jsonl"), "w-1").unwrap_or_else(|e| panic!("{e}"));
        log.write(
            1,
            Op::Sent {
                msg: "w-1-m1".into(),
                to: vec!["w-2".into()],
                priority: "high".into(),
                duplicate: false,
            },
        );
        log.write(
            2,
            Op::Heartbeat {
                agent: "w-1".into(),
            },
        );
        let (lines, bad) = read_all(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((lines.len(), bad), (2, 0));
        assert_eq!(lines[0].by, "w-1");
        assert_eq!(lines[0].op.write_of(), Some(Service::Bus));
        assert!(matches!(lines[1].op, Op::Heartbeat { .. }));
    }
}
