//! One agent of the workload, as a process of its own (`guild-chaos agent`), so the
//! injector can pause it (SIGSTOP) like any stalled agent. It connects with the
//! credentials Guild minted for it (`NATS_URL`, `NATS_CREDS`), heartbeats, consumes and
//! acknowledges its inbox, sends REQUESTs at every priority to the other live agents,
//! asks questions that need a decision, reserves and commits tokens, and works the
//! missions it is given until they are complete. Every acknowledged reply is written to
//! its log before it counts.
//!
//! The driver steers it with files in `<dir>/control/`: `drain` (no new messages,
//! questions or loose work; missions still finish) and `idle` (no consuming either:
//! the inbox stays as it is for the checker). It runs until the driver stops it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use guild_sdk::AgentQuery;
use guild_sdk::Guild;
use guild_sdk::MissionStatus;
use guild_sdk::Priority;
use guild_sdk::api::bus::{AskQuestion, SendRequest};
use guild_sdk::{AgentId, MessageId, MissionId, ReservationId};
use serde_json::json;

use crate::call::{ATTEMPT, Outcome, PATIENCE, rule_of, settle};
use crate::record::{Log, Op, now_ms};
use crate::rng::Rng;

/// How often an agent heartbeats: well inside the suite's 2 s window.
pub(crate) const HEARTBEAT_EVERY: Duration = Duration::from_millis(400);

/// How long a consume waits for a message.
const CONSUME_WAIT: Duration = Duration::from_secs(1);

/// The driver's switches, as files.
#[derive(Clone, Debug)]
pub(crate) struct Control {
    dir: PathBuf,
}

impl Control {
    pub(crate) fn new(run_dir: &Path) -> Self {
        Self {
            dir: run_dir.join("control"),
        }
    }

    pub(crate) fn set(&self, name: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        std::fs::write(self.dir.join(name), b"")
    }

    fn is_set(&self, name: &str) -> bool {
        self.dir.join(name).exists()
    }

    pub(crate) fn draining(&self) -> bool {
        self.is_set("drain")
    }

    pub(crate) fn idle(&self) -> bool {
        self.is_set("idle")
    }
}

/// Where an agent's log is.
pub(crate) fn log_path(run_dir: &Path, agent: &str) -> PathBuf {
    run_dir.join("logs").join(format!("{agent}.jsonl"))
}

/// The ids of a receipt's inboxes, as log lines keep them.
pub(crate) fn inboxes(receipt: &guild_sdk::api::bus::Receipt) -> Vec<String> {
    receipt
        .delivered_to
        .iter()
        .filter_map(|r| r.principal())
        .map(|p| p.token().to_owned())
        .collect()
}

/// Runs the agent until it is stopped.
pub(crate) async fn run(run_dir: PathBuf, seed: u64) -> anyhow::Result<()> {
    let options =
        guild_sdk::NatsOptions::from_env().context("while reading NATS_URL and NATS_CREDS")?;
    let guild = guild_sdk::connect(&options)
        .await
        .context("while connecting with the agent's credentials")?
        .with_timeout(ATTEMPT);
    let me = guild
        .principal()
        .agent()
        .cloned()
        .context("NATS_CREDS are not an agent's")?;
    let log = Arc::new(Log::open(&log_path(&run_dir, me.as_str()), me.as_str())?);
    let control = Control::new(&run_dir);
    let rng = Rng::new(seed).fork(me.as_str());
    tokio::spawn(heartbeats(guild.clone(), log.clone(), me.clone()));
    tokio::spawn(consume(
        guild.clone(),
        log.clone(),
        control.clone(),
        me.clone(),
    ));
    Actor {
        guild,
        log,
        control,
        rng,
        me,
        n: 0,
        done: HashSet::new(),
        refusals: HashMap::new(),
        peers: Vec::new(),
        peers_at: None,
    }
    .run()
    .await
}

/// A heartbeat every [`HEARTBEAT_EVERY`]; a missed one is simply the next tick's job.
async fn heartbeats(guild: Guild, log: Arc<Log>, me: AgentId) {
    let guild = guild.with_timeout(Duration::from_millis(1500));
    let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut refused: Option<String> = None;
    loop {
        tick.tick().await;
        let t0 = now_ms();
        match guild.spawner().heartbeat(None).await {
            Ok(_) => log.write(
                t0,
                Op::Heartbeat {
                    agent: me.to_string(),
                },
            ),
            Err(e) if !crate::call::retryable(&e) => {
                // Once per rule: an ended agent is refused until the driver stops it.
                let rule = rule_of(&e);
                if refused.as_deref() != Some(rule.as_str()) {
                    log.write(
                        t0,
                        Op::Refused {
                            what: "heartbeat".into(),
                            rule: rule.clone(),
                            ids: vec![me.to_string()],
                        },
                    );
                    refused = Some(rule);
                }
            }
            Err(_) => {}
        }
    }
}

/// The consume loop: every delivery logged, then acknowledged.
async fn consume(guild: Guild, log: Arc<Log>, control: Control, me: AgentId) {
    loop {
        if control.idle() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let delivery = match guild.bus().consume(CONSUME_WAIT, &[]).await {
            Ok(Some(d)) => d,
            Ok(None) => continue,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        deliver_and_ack(&guild, &log, me.as_str(), &delivery).await;
    }
}

/// Logs a delivery to `to`, acknowledges it, and logs the acknowledgement.
pub(crate) async fn deliver_and_ack(guild: &Guild, log: &Log, to: &str, d: &guild_sdk::Delivery) {
    let msg = d.message.id.to_string();
    log.write_as(
        to,
        now_ms(),
        Op::Delivered {
            to: to.to_owned(),
            msg: msg.clone(),
            delivery: d.delivery_id.clone(),
            attempt: d.attempt,
            kind: d.message.kind.as_str().to_owned(),
            from: d.message.from.token().to_owned(),
        },
    );
    let t0 = now_ms();
    match settle(PATIENCE, || {
        let (g, id) = (guild.clone(), &d.delivery_id);
        async move { g.bus().ack(id).await }
    })
    .await
    {
        Outcome::Done(()) => log.write_as(
            to,
            t0,
            Op::Acked {
                to: to.to_owned(),
                msg,
                delivery: d.delivery_id.clone(),
            },
        ),
        Outcome::Refused { error, .. } => log.write_as(
            to,
            t0,
            Op::Refused {
                what: "ack".into(),
                rule: rule_of(&error),
                ids: vec![msg, d.delivery_id.clone()],
            },
        ),
        Outcome::Unknown(_) => log.write_as(
            to,
            t0,
            Op::Unknown {
                what: "ack".into(),
                ids: vec![msg, d.delivery_id.clone()],
            },
        ),
    }
}

/// Everything the agent does besides heartbeats and its inbox.
struct Actor {
    guild: Guild,
    log: Arc<Log>,
    control: Control,
    rng: Rng,
    me: AgentId,
    /// The number in this agent's next id (messages, questions, reservations).
    n: u64,
    /// Missions this agent has finished with (completed, or found no longer its own).
    done: HashSet<MissionId>,
    /// Completions refused so far, by mission.
    refusals: HashMap<MissionId, u32>,
    /// The other live agents, as last listed.
    peers: Vec<AgentId>,
    peers_at: Option<Instant>,
}

impl Actor {
    async fn run(mut self) -> anyhow::Result<()> {
        loop {
            let wait = self.rng.between(250, 600);
            tokio::time::sleep(Duration::from_millis(wait)).await;
            // The mission it holds comes first, draining or not.
            if let Ok(profile) = self.guild.spawner().get(&self.me).await {
                if !profile.is_live() {
                    // Guild ended this agent: the driver stops the process.
                    continue;
                }
                if let Some(m) = profile.assigned_task_id
                    && !self.done.contains(&m)
                {
                    self.work_on(m).await;
                    continue;
                }
            }
            if self.control.draining() {
                continue;
            }
            let roll = self.rng.below(100);
            if roll < 55 {
                self.send().await;
            } else if roll < 70 {
                let amount = self.rng.between(100, 1_200);
                self.unit(amount, None).await;
            } else if roll < 78 {
                self.ask().await;
            }
        }
    }

    fn next_id(&mut self, kind: char) -> String {
        self.n += 1;
        format!("{}-{kind}{}", self.me, self.n)
    }

    async fn refresh_peers(&mut self) {
        if self
            .peers_at
            .is_some_and(|at| at.elapsed() < Duration::from_secs(2))
        {
            return;
        }
        if let Ok(all) = self.guild.spawner().list(&AgentQuery::default()).await {
            self.peers = all
                .into_iter()
                .filter(|a| a.is_live() && a.id != self.me)
                .map(|a| a.id)
                .collect();
            self.peers_at = Some(Instant::now());
        }
    }

    async fn send(&mut self) {
        self.refresh_peers().await;
        let Some(to) = self.rng.pick(&self.peers).cloned() else {
            return;
        };
        let priority = *self
            .rng
            .pick(&Priority::DESCENDING)
            .unwrap_or(&Priority::Normal);
        let id = self.next_id('m');
        let Ok(message_id) = MessageId::new(id.clone()) else {
            return;
        };
        let request = SendRequest {
            to: to.clone(),
            subject: "chaos".into(),
            payload: json!({ "n": self.n }),
            priority: Some(priority),
            task_id: None,
            message_id: Some(message_id),
        };
        let t0 = now_ms();
        match settle(PATIENCE, || {
            let (g, r) = (self.guild.clone(), &request);
            async move { g.bus().request(r).await }
        })
        .await
        {
            Outcome::Done(receipt) => self.log.write(
                t0,
                Op::Sent {
                    msg: receipt.message_id.to_string(),
                    to: inboxes(&receipt),
                    priority: priority.as_str().to_owned(),
                    duplicate: receipt.duplicate,
                },
            ),
            Outcome::Refused { error, .. } => self.log.write(
                t0,
                Op::Refused {
                    what: "send".into(),
                    rule: rule_of(&error),
                    ids: vec![id, to.to_string()],
                },
            ),
            Outcome::Unknown(_) => self.log.write(
                t0,
                Op::Unknown {
                    what: "send".into(),
                    ids: vec![id, to.to_string()],
                },
            ),
        }
    }

    async fn ask(&mut self) {
        let id = self.next_id('q');
        let Ok(message_id) = MessageId::new(id.clone()) else {
            return;
        };
        let q = AskQuestion {
            to: None,
            subject: "chaos: go ahead?".into(),
            payload: json!({ "n": self.n }),
            requires_decision: true,
            decision_deadline_ms: None,
            priority: None,
            task_id: None,
            message_id: Some(message_id),
        };
        let t0 = now_ms();
        match settle(PATIENCE, || {
            let (g, q) = (self.guild.clone(), &q);
            async move { g.bus().ask_question(q).await }
        })
        .await
        {
            Outcome::Done(receipt) => self.log.write(
                t0,
                Op::Asked {
                    msg: receipt.message_id.to_string(),
                    to: inboxes(&receipt),
                },
            ),
            Outcome::Refused { error, .. } => self.log.write(
                t0,
                Op::Refused {
                    what: "ask".into(),
                    rule: rule_of(&error),
                    ids: vec![id],
                },
            ),
            Outcome::Unknown(_) => self.log.write(
                t0,
                Op::Unknown {
                    what: "ask".into(),
                    ids: vec![id],
                },
            ),
        }
    }

    /// A unit of work: reserve `amount` (charged to `mission` too), commit what it used.
    async fn unit(&mut self, amount: u64, mission: Option<&MissionId>) {
        let id = self.next_id('r');
        let Ok(r) = ReservationId::new(id.clone()) else {
            return;
        };
        let me = self.me.to_string();
        let t0 = now_ms();
        let reserved = settle(PATIENCE, || {
            let (g, me, r) = (self.guild.clone(), &self.me, &r);
            async move { g.spawner().reserve_tokens(me, r, amount, mission).await }
        })
        .await;
        let made = match reserved {
            // A retry of a reserve that landed is answered as the first was.
            Outcome::Done(_) => true,
            Outcome::Refused { error, .. } => {
                self.log.write(
                    t0,
                    Op::Refused {
                        what: "reserve".into(),
                        rule: rule_of(&error),
                        ids: vec![me, id],
                    },
                );
                return;
            }
            Outcome::Unknown(_) => {
                self.log.write(
                    t0,
                    Op::Unknown {
                        what: "reserve".into(),
                        ids: vec![me, id, amount.to_string()],
                    },
                );
                return;
            }
        };
        if made {
            self.log.write(
                t0,
                Op::Reserved {
                    agent: me.clone(),
                    reservation: id.clone(),
                    amount,
                    mission: mission.map(ToString::to_string),
                },
            );
        }
        let used = self.rng.between(1, amount);
        let t0 = now_ms();
        match settle(PATIENCE, || {
            let (g, me, r) = (self.guild.clone(), &self.me, &r);
            async move { g.spawner().commit_tokens(me, r, used).await }
        })
        .await
        {
            Outcome::Done(_) => self.log.write(
                t0,
                Op::Committed {
                    agent: me,
                    reservation: id,
                    used,
                    mission: mission.map(ToString::to_string),
                },
            ),
            // Gone after an unanswered attempt: committed then, or released with the
            // agent; the journal says which.
            Outcome::Refused {
                error,
                after_silence: true,
            } if error.rule() == Some("unknown_reservation") => self.log.write(
                t0,
                Op::Unknown {
                    what: "commit".into(),
                    ids: vec![me, id, used.to_string()],
                },
            ),
            Outcome::Refused { error, .. } => self.log.write(
                t0,
                Op::Refused {
                    what: "commit".into(),
                    rule: rule_of(&error),
                    ids: vec![me, id],
                },
            ),
            Outcome::Unknown(_) => self.log.write(
                t0,
                Op::Unknown {
                    what: "commit".into(),
                    ids: vec![me, id, used.to_string()],
                },
            ),
        }
    }

    /// Works mission `m` if it runs on this agent: one or two units of work on its
    /// budget, then completion.
    async fn work_on(&mut self, m: MissionId) {
        let Ok(mission) = self.guild.missions().get_mission(&m).await else {
            return;
        };
        if mission.status != MissionStatus::Active
            || mission.assigned_agent_id.as_ref() != Some(&self.me)
        {
            // Allocated and not started yet, or no longer this agent's.
            if !mission.status.is_open() {
                self.done.insert(m);
            }
            return;
        }
        for _ in 0..self.rng.between(1, 2) {
            let amount = self.rng.between(200, 1_500);
            self.unit(amount, Some(&m)).await;
        }
        let me = self.me.to_string();
        let t0 = now_ms();
        let outcome = settle(PATIENCE, || {
            let (g, m, by) = (self.guild.clone(), &m, json!({ "by": me }));
            async move { g.missions().mark_complete(m, by, Some(0.95)).await }
        })
        .await;
        match outcome {
            Outcome::Done(_) => self.log.write(
                t0,
                Op::Completed {
                    mission: m.to_string(),
                    agent: me,
                },
            ),
            Outcome::Refused { error, .. } => {
                self.log.write(
                    t0,
                    Op::Refused {
                        what: "complete".into(),
                        rule: rule_of(&error),
                        ids: vec![m.to_string(), me],
                    },
                );
                // Looked at again next round (it may have moved on); not for ever.
                let n = self.refusals.entry(m.clone()).or_insert(0);
                *n += 1;
                if *n < 5 {
                    return;
                }
            }
            Outcome::Unknown(_) => self.log.write(
                t0,
                Op::Unknown {
                    what: "complete".into(),
                    ids: vec![m.to_string(), me],
                },
            ),
        }
        self.done.insert(m);
    }
}
