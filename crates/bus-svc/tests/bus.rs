//! bus-svc against a real nats-server, with real spawner-svc and mission-svc beside it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use async_nats::jetstream;
use futures_util::StreamExt;
use guild_domain::agent::{Authority, Limits, Role, SpawnRequest};
use guild_domain::message::{MessageType, OfficeConfig, Priority, RulingKind};
use guild_domain::mission::NewMission;
use guild_domain::{AgentId, MessageId, MissionId, Phase, Principal, ReservationId};
use guild_sdk::{ErrorKind, Guild};
use guild_testkit::{NatsServer, Running, Team, eventually_async};
use guild_wire::ErrorCode;
use guild_wire::api::bus::{AskQuestion, DecisionQuery, SendRequest};
use guild_wire::audit::AuditKind;
use serde_json::json;

type Service<E> = Running<E>;

/// The workspace's full-stack fixture, shared rather than copied.
#[allow(dead_code)]
#[path = "../../../tests/common/mod.rs"]
mod common;

/// A denial record's data, the same from every service: who tried what, on whom, why
/// not, when (`Rejection::denial`).
fn assert_denial_shape(data: &serde_json::Value, by: &str, action: &str) {
    assert_eq!(
        (&data["event"], &data["by"], &data["action"]),
        (&json!("authority_denied"), &json!(by), &json!(action)),
        "{data}"
    );
    assert!(
        data["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{data}"
    );
    assert!(
        data["at"].as_u64().is_some() && data.get("target").is_some(),
        "{data}"
    );
}

fn id(s: &str) -> AgentId {
    AgentId::new(s).unwrap()
}

fn mid(s: &str) -> MessageId {
    MessageId::new(s).unwrap()
}

fn office() -> OfficeConfig {
    OfficeConfig {
        ack_wait_ms: 1_000,
        ..OfficeConfig::default()
    }
}

fn bus_config(office: OfficeConfig) -> bus_svc::Config {
    let mut c = bus_svc::Config::new(office);
    c.outbox_grace = Duration::from_millis(300);
    c.sweep_every = Duration::from_millis(50);
    c.archive_every = Duration::from_millis(200);
    c
}

async fn start_bus(server: &NatsServer, mut config: bus_svc::Config) -> Service<bus_svc::Error> {
    config.common.nats.creds =
        Some(server.creds_file(&Principal::Service(guild_domain::Service::Bus)));
    let client = server
        .connect_as(&Principal::Service(guild_domain::Service::Bus))
        .await;
    Running::start(move |stop| bus_svc::run(client, config, stop))
}

/// nats-server, spawner-svc, mission-svc and bus-svc, with a team: `orch` (orchestrator)
/// over `lead` and `qa`; `lead` over `backend`. Every agent has sent a heartbeat (ACTIVE).
struct Stack {
    server: NatsServer,
    spawner: Service<spawner_svc::Error>,
    missions: Service<mission_svc::Error>,
    buses: Vec<Service<bus_svc::Error>>,
    /// The operator's connection.
    guild: Guild,
    team: Team,
}

impl Stack {
    async fn start(office: OfficeConfig) -> Self {
        Self::start_with(
            office,
            guild_service::CommonOptions::default().max_requests_per_second,
        )
        .await
    }

    /// [`start`](Self::start), bus-svc taking `quota` requests a second from each agent.
    async fn start_with(office: OfficeConfig, quota: u32) -> Self {
        let server = NatsServer::start();
        let (services, team) = common::start_in_process_with(&server, |c| {
            c.spawner.limits = Limits {
                max_agents: 50,
                token_pool: 1_000_000,
                max_parallel_groups: None,
            };
            c.spawner.outbox_grace = Duration::from_millis(300);
            c.spawner.autoscale_every = Duration::from_millis(50);
            c.missions.outbox_grace = Duration::from_millis(300);
            let mut bc = bus_config(office);
            bc.common.nats.creds = c.bus.common.nats.creds.take();
            bc.common.max_requests_per_second = quota;
            c.bus = bc;
        })
        .await;
        let common::Services {
            spawner,
            missions,
            bus,
        } = services;
        let buses = vec![bus];
        let guild = team.operator().clone();
        let s = Self {
            server,
            spawner,
            missions,
            buses,
            guild,
            team,
        };
        s.spawn("orch", Role::Orchestrator, None, 100_000, None)
            .await;
        s.spawn("lead", Role::Developer, Some("orch"), 10_000, None)
            .await;
        s.spawn("qa", Role::Qa, Some("orch"), 10_000, None).await;
        s.spawn("backend", Role::Developer, Some("lead"), 1_000, None)
            .await;
        s
    }

    async fn spawn(
        &self,
        name: &str,
        role: Role,
        parent: Option<&str>,
        budget: u64,
        authority: Option<Authority>,
    ) {
        let mut req = SpawnRequest::new(id(name), role, budget);
        if let Some(p) = parent {
            req = req.parent(id(p));
        }
        if let Some(a) = authority {
            req = req.authority(a);
        }
        self.team.spawn(req).await;
        self.agent(name).spawner().heartbeat(None).await.unwrap();
    }

    fn agent(&self, name: &str) -> Guild {
        self.team.agent(&id(name))
    }

    /// Waits until bus-svc's durable consumer `consumer` on `GUILD_EVENTS` took every
    /// event it was given (and was given one).
    async fn drained(&self, consumer: &'static str) {
        let js = jetstream::new(self.server.connect_admin().await);
        eventually_async(consumer, Duration::from_secs(10), || {
            let js = js.clone();
            async move {
                let stream = js.get_stream("GUILD_EVENTS").await.ok()?;
                let mut c: jetstream::consumer::PullConsumer =
                    stream.get_consumer(consumer).await.ok()?;
                let info = c.info().await.ok()?;
                (info.num_pending == 0
                    && info.num_ack_pending == 0
                    && info.delivered.stream_sequence > 0)
                    .then_some(())
            }
        })
        .await;
    }

    async fn journal_sequence(&self) -> u64 {
        let js = jetstream::new(self.server.connect_admin().await);
        let s = js.get_stream("GUILD_JOURNAL_BUS").await.unwrap();
        s.get_info().await.unwrap().state.last_sequence
    }

    /// The last audit record on `subject`, as JSON.
    async fn last_audit(&self, subject: &str) -> serde_json::Value {
        let js = jetstream::new(self.server.connect_admin().await);
        let audit = js.get_stream("GUILD_AUDIT").await.unwrap();
        let m = audit
            .get_last_raw_message_by_subject(subject)
            .await
            .unwrap_or_else(|e| panic!("no audit record on {subject}: {e}"));
        serde_json::from_slice(&m.payload).unwrap()
    }

    /// Audit records on subjects matching `filter`.
    async fn audit_count(&self, filter: &str) -> usize {
        let js = jetstream::new(self.server.connect_admin().await);
        let audit = js.get_stream("GUILD_AUDIT").await.unwrap();
        let info = audit
            .info_with_subjects(filter)
            .await
            .unwrap()
            .collect::<Vec<_>>()
            .await;
        info.into_iter().map(|s| s.unwrap().1).sum()
    }

    async fn stop(self) {
        for b in self.buses {
            b.stop().await;
        }
        self.missions.stop().await;
        self.spawner.stop().await;
    }
}

fn request(to: &str, subject: &str, priority: Priority) -> SendRequest {
    SendRequest {
        to: id(to),
        subject: subject.into(),
        payload: json!({"n": subject}),
        priority: Some(priority),
        task_id: None,
        message_id: None,
    }
}

/// Consumes and acks everything waiting for `who`, in order.
async fn drain(g: &Guild) -> Vec<String> {
    let mut got = Vec::new();
    while let Some(d) = g.bus().consume(Duration::ZERO, &[]).await.unwrap() {
        g.bus().ack(&d.delivery_id).await.unwrap();
        got.push(d.message.subject);
    }
    got
}

#[tokio::test]
async fn every_message_type_reaches_whom_the_seed_says() {
    let s = Stack::start(office()).await;
    let lead = s.agent("lead");
    // REQUEST, agent to agent.
    let r = lead
        .bus()
        .request(&guild_sdk::SendRequest::new(
            &id("qa"),
            "Code review needed",
            json!({"code_path": "backend/app.py"}),
        ))
        .await
        .unwrap();
    assert_eq!(r.priority, Priority::Normal);
    let got = s
        .agent("qa")
        .bus()
        .consume(Duration::ZERO, &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.message.kind, &got.message.from, got.attempt),
        (MessageType::Request, &Principal::Agent(id("lead")), 1)
    );
    // A REPLY goes back to the sender, correlated.
    s.agent("qa")
        .bus()
        .reply(&got.message.id, json!({"verdict": "ok"}), false)
        .await
        .unwrap();
    let reply = lead
        .bus()
        .consume(Duration::from_secs(2), &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.message.kind, MessageType::Reply);
    assert_eq!(reply.message.in_reply_to, Some(got.message.id.clone()));
    assert_eq!(reply.message.subject, "Re: Code review needed");
    // A QUESTION without an addressee goes to the asker's nearest orchestrator.
    let q = s
        .agent("backend")
        .bus()
        .ask_question(&guild_sdk::AskQuestion::new(
            "Scope reduction needed?",
            json!({"options": ["a", "b"]}),
            true,
        ))
        .await
        .unwrap();
    assert_eq!(
        q.delivered_to,
        [guild_domain::message::Recipient::Agent(id("orch"))]
    );
    // An ALERT reaches every live agent but the sender; critical goes at CRITICAL.
    let a = s
        .agent("qa")
        .bus()
        .alert("CRITICAL: SQL injection", json!({"line": 42}), true)
        .await
        .unwrap();
    assert_eq!(a.priority, Priority::Critical);
    let to: BTreeSet<String> = a.delivered_to.iter().map(|r| r.to_string()).collect();
    assert_eq!(to, ["backend", "lead", "orch"].map(String::from).into());
    let first = s
        .agent("orch")
        .bus()
        .consume(Duration::ZERO, &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first.message.kind,
        MessageType::Alert,
        "CRITICAL before the HIGH question"
    );
    // Every message is in the inbox log under its recipient and priority.
    let js = jetstream::new(s.server.connect_admin().await);
    let mut log = js.get_stream("GUILD_INBOX").await.unwrap();
    let crit = log
        .get_last_raw_message_by_subject("guild.inbox.orch.critical")
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&crit.payload).contains("SQL injection"));
    let h = |name: &str| crit.headers.get(name).map(|v| v.to_string());
    assert_eq!(h("Guild-Priority").as_deref(), Some("critical"));
    assert_eq!(h("Guild-Message-Type").as_deref(), Some("alert"));
    assert_eq!(h("Guild-From").as_deref(), Some("qa"));
    assert!(log.info().await.unwrap().state.messages >= 6);
    s.stop().await;
}

#[tokio::test]
async fn the_seeds_reply_then_record_decision_is_one_decision() {
    let s = Stack::start(office()).await;
    let q = s
        .agent("lead")
        .bus()
        .ask_question(&guild_sdk::AskQuestion::new("Scope reduction needed?", json!({"reason": "token_budget_exceeded", "options": ["cut_feature_X", "extend_timeline"]}), true))
        .await
        .unwrap();
    let orch = s.agent("orch");
    let asked = orch
        .bus()
        .consume(Duration::from_secs(2), &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(asked.message.id, q.message_id);
    orch.bus().ack(&asked.delivery_id).await.unwrap();
    // The seed: reply(..., is_decision=True) then record_decision(...) on the same question.
    let replied = orch
        .bus()
        .reply(
            &q.message_id,
            json!({"decision": "cut_feature_X", "reason": "token_overbudget"}),
            true,
        )
        .await
        .unwrap();
    let first = replied.decision.unwrap();
    assert_eq!(first.ruling, RulingKind::Decided);
    assert!(first.audit_seq.is_some());
    let recorded = orch
        .bus()
        .record_decision(
            &q.message_id,
            "cut_feature_X",
            Some("Token budget constraints"),
            json!({"scope_reduction": "15%"}),
        )
        .await
        .unwrap();
    assert_eq!(recorded.ruling, RulingKind::Completed);
    assert_eq!(recorded.decision.impact, json!({"scope_reduction": "15%"}));
    // The same call again changes nothing and records nothing.
    let again = orch
        .bus()
        .record_decision(
            &q.message_id,
            "cut_feature_X",
            Some("Token budget constraints"),
            json!({"scope_reduction": "15%"}),
        )
        .await
        .unwrap();
    assert_eq!(
        (again.ruling, again.audit_seq),
        (RulingKind::Unchanged, None)
    );
    // The asker gets exactly one DECISION.
    let lead = s.agent("lead");
    let decision = lead
        .bus()
        .consume(Duration::from_secs(2), &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(decision.message.kind, MessageType::Decision);
    assert_eq!(decision.message.payload["decision"], "cut_feature_X");
    lead.bus().ack(&decision.delivery_id).await.unwrap();
    assert!(
        lead.bus()
            .consume(Duration::from_millis(300), &[])
            .await
            .unwrap()
            .is_none()
    );
    // Recorded once: one decision and its completion in the audit log.
    let history = s
        .guild
        .bus()
        .decision_history(&DecisionQuery::default())
        .await
        .unwrap();
    let kinds: Vec<AuditKind> = history.iter().map(|d| d.kind).collect();
    assert_eq!(kinds, [AuditKind::Decision, AuditKind::DecisionCompleted]);
    assert_eq!(
        history[1].record.rationale.as_deref(),
        Some("Token budget constraints")
    );
    // A second decision by someone without override authority is refused.
    let err = s
        .agent("lead")
        .bus()
        .record_decision(&q.message_id, "extend_timeline", None, json!(null))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected(ErrorCode::Forbidden));
    // Audited like every service's denials, in the one shape.
    let denial = s.last_audit("guild.audit.denial.lead").await;
    assert_eq!(denial["kind"], "denial");
    assert_denial_shape(&denial["data"], "lead", "record_decision");
    let stats = s.guild.bus().get_message_stats().await.unwrap();
    assert_eq!(stats.decisions_recorded, 1);
    assert_eq!(stats.decision_time.count, 1);
    assert!(stats.decision_time.p99_ms.is_some());
    let md = s
        .guild
        .bus()
        .export_decisions(&DecisionQuery::default())
        .await
        .unwrap();
    assert_eq!(md.decisions, 2);
    assert!(md.markdown.contains("cut_feature_X"), "{}", md.markdown);
    s.stop().await;
}

#[tokio::test]
async fn a_critical_message_after_ten_thousand_low_ones_is_consumed_next() {
    // One agent sending ten thousand as fast as it can: over any sane quota.
    let s = Stack::start_with(office(), 0).await;
    let lead = s.agent("lead");
    let sends = (0..10_000).map(|i| {
        let g = lead.clone();
        async move {
            g.bus()
                .request(&request("qa", &format!("low-{i}"), Priority::Low))
                .await
                .unwrap();
        }
    });
    futures_util::stream::iter(sends)
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
    lead.bus()
        .request(&request("qa", "critical", Priority::Critical))
        .await
        .unwrap();
    let qa = s.agent("qa");
    let next = qa
        .bus()
        .consume(Duration::ZERO, &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.message.subject, "critical");
    assert_eq!(
        s.guild
            .bus()
            .get_message_stats()
            .await
            .unwrap()
            .queue_by_agent["qa"],
        10_001
    );
    s.stop().await;
}

#[tokio::test]
async fn an_offline_recipient_gets_everything_in_order_and_redelivery_after_the_ack_window() {
    let s = Stack::start(office()).await;
    let lead = s.agent("lead");
    for (sub, p) in [
        ("n1", Priority::Normal),
        ("h1", Priority::High),
        ("n2", Priority::Normal),
        ("l1", Priority::Low),
    ] {
        lead.bus().request(&request("qa", sub, p)).await.unwrap();
    }
    // A retried send with the same id is stored once.
    let mut once = request("qa", "once", Priority::Low);
    once.message_id = Some(mid("retry-me"));
    let a = lead.bus().request(&once).await.unwrap();
    let b = lead.bus().request(&once).await.unwrap();
    assert!(!a.duplicate && b.duplicate);
    let qa = s.agent("qa");
    // Not acknowledged: it comes again once the ack window (1 s here) has passed, still
    // ahead of the NORMAL ones.
    let first = qa
        .bus()
        .consume(Duration::ZERO, &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.message.subject, "h1");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let redelivered = qa
        .bus()
        .consume(Duration::ZERO, &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (redelivered.message.subject.as_str(), redelivered.attempt),
        ("h1", 2)
    );
    qa.bus().ack(&redelivered.delivery_id).await.unwrap();
    assert_eq!(drain(&qa).await, ["n1", "n2", "l1", "once"]);
    // A consumer waiting on an empty inbox gets an unacknowledged delivery again when
    // its window runs out.
    lead.bus()
        .request(&request("qa", "again", Priority::Normal))
        .await
        .unwrap();
    let taken = qa
        .bus()
        .consume(Duration::ZERO, &[])
        .await
        .unwrap()
        .unwrap();
    let back = qa
        .bus()
        .consume(Duration::from_secs(5), &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!((&back.message.id, back.attempt), (&taken.message.id, 2));
    qa.bus().ack(&back.delivery_id).await.unwrap();
    // Nothing waiting: a consume with a timeout returns nothing when it passes.
    let started = std::time::Instant::now();
    assert!(
        qa.bus()
            .consume(Duration::from_millis(400), &[])
            .await
            .unwrap()
            .is_none()
    );
    assert!(started.elapsed() >= Duration::from_millis(400));
    s.stop().await;
}

#[tokio::test]
async fn a_waiting_consumer_on_one_instance_gets_a_message_sent_through_another() {
    let mut s = Stack::start(office()).await;
    s.buses
        .push(start_bus(&s.server, bus_config(office())).await);
    let qa = s.agent("qa");
    // Several waits and sends, so both instances take both roles.
    for round in 0..6 {
        let waiting = {
            let qa = qa.clone();
            tokio::spawn(async move { qa.bus().consume(Duration::from_secs(10), &[]).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        s.agent("lead")
            .bus()
            .request(&request("qa", &format!("round-{round}"), Priority::Normal))
            .await
            .unwrap();
        let got = waiting
            .await
            .unwrap()
            .unwrap()
            .expect("delivered to the waiting consume");
        assert_eq!(got.message.subject, format!("round-{round}"));
        qa.bus().ack(&got.delivery_id).await.unwrap();
    }
    // Send, poll and ack at once, each through either instance: the poll sees the
    // message the send acknowledged, the ack is accepted, and nothing comes back.
    for round in 0..40 {
        let subject = format!("quick-{round}");
        s.agent("lead")
            .bus()
            .request(&request("qa", &subject, Priority::Normal))
            .await
            .unwrap();
        let got = qa
            .bus()
            .consume(Duration::ZERO, &[])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.message.subject, subject);
        qa.bus().ack(&got.delivery_id).await.unwrap();
    }
    assert!(
        qa.bus()
            .consume(Duration::ZERO, &[])
            .await
            .unwrap()
            .is_none()
    );
    // Two instances recording decisions at once leave one valid audit chain.
    let mut asks = Vec::new();
    for i in 0..10 {
        asks.push(
            s.agent("backend")
                .bus()
                .ask_question(&AskQuestion {
                    to: Some(Principal::Agent(id("lead"))),
                    subject: format!("q{i}"),
                    payload: json!(null),
                    requires_decision: true,
                    decision_deadline_ms: None,
                    priority: None,
                    task_id: None,
                    message_id: None,
                })
                .await
                .unwrap()
                .message_id,
        );
    }
    let decisions = asks.iter().map(|q| {
        let lead = s.agent("lead");
        let q = q.clone();
        async move {
            lead.bus()
                .record_decision(&q, "yes", None, json!(null))
                .await
                .unwrap()
        }
    });
    futures_util::future::join_all(decisions).await;
    let report = s.guild.bus().verify_audit().await.unwrap();
    assert!(report.ok, "{report:?}");
    assert!(report.records >= 10);
    s.stop().await;
}

#[tokio::test]
async fn restarts_of_bus_svc_and_nats_lose_no_acknowledged_message() {
    let mut s = Stack::start(office()).await;
    let lead = s.agent("lead");
    let mut sent = BTreeSet::new();
    for i in 0..150 {
        if i == 50 {
            // bus-svc crashes and comes back.
            s.buses.pop().unwrap().kill();
            s.buses
                .push(start_bus(&s.server, bus_config(office())).await);
        }
        if i == 100 {
            s.server.restart();
        }
        let mut r = request("qa", &format!("m{i}"), Priority::Normal);
        r.message_id = Some(mid(&format!("m{i}")));
        // A send that fails while a part restarts is retried with the same id.
        let receipt = eventually_async("the send is acknowledged", Duration::from_secs(30), || {
            let (lead, r) = (lead.clone(), r.clone());
            async move { lead.bus().request(&r).await.ok() }
        })
        .await;
        sent.insert(receipt.message_id.to_string());
    }
    s.buses.pop().unwrap().kill();
    s.buses
        .push(start_bus(&s.server, bus_config(office())).await);
    let qa = s.agent("qa");
    let got = std::sync::Mutex::new(BTreeSet::new());
    eventually_async(
        "every message is consumed",
        Duration::from_secs(30),
        || async {
            while let Ok(Some(d)) = qa.bus().consume(Duration::from_millis(200), &[]).await {
                qa.bus().ack(&d.delivery_id).await.ok()?;
                got.lock().unwrap().insert(d.message.id.to_string());
            }
            (got.lock().unwrap().len() >= sent.len()).then_some(())
        },
    )
    .await;
    let got = got.into_inner().unwrap();
    assert_eq!(got, sent);
    assert_eq!(
        s.guild
            .bus()
            .get_message_stats()
            .await
            .unwrap()
            .total_messages,
        150
    );
    s.stop().await;
}

/// After nats-server restarts, the services' journal feeds are back in step at once, not
/// after the ordered consumers' missed heartbeats (issue 17: 15 s, longer than the SDK's
/// 10 s timeout): an agent spawned right after the restart is usable on the bus within
/// the SDK's default timeout, on its first try.
#[tokio::test]
async fn a_spawn_right_after_a_nats_restart_is_usable_on_the_bus_at_once() {
    let mut s = Stack::start(office()).await;
    s.server.restart();
    let orch = s.agent("orch");
    // As soon as the spawner answers (asked with a short timeout: a request sent while
    // the clients reconnect can be lost and would wait out a long one)...
    eventually_async("the spawner answers again", Duration::from_secs(15), || {
        let quick = orch.with_timeout(Duration::from_millis(500));
        async move { quick.spawner().get_stats().await.ok() }
    })
    .await;
    // ...a spawn, and the new agent's first bus calls, each on one try with the SDK's
    // default timeout.
    let spawned = orch
        .spawner()
        .spawn(SpawnRequest::new(id("fresh"), Role::Developer, 100).parent(id("orch")))
        .await
        .unwrap();
    let fresh = s.team.join(&spawned).await.unwrap();
    fresh.spawner().heartbeat(None).await.unwrap();
    let receipt = fresh
        .bus()
        .request(&request("lead", "first words", Priority::High))
        .await
        .unwrap();
    let got = s
        .agent("lead")
        .bus()
        .consume(Duration::from_secs(5), &[])
        .await
        .unwrap()
        .expect("the message");
    assert_eq!(got.message.id, receipt.message_id);
    s.stop().await;
}

#[tokio::test]
async fn an_undecided_question_escalates_at_critical_and_is_audited() {
    // The bus's own deadline is far off: the question's own (1 s) is the one that runs out.
    let s = Stack::start(OfficeConfig {
        decision_deadline_ms: 600_000,
        ..office()
    })
    .await;
    let q = s
        .agent("backend")
        .bus()
        .ask_question(&AskQuestion {
            to: Some(Principal::Agent(id("lead"))),
            subject: "Which database?".into(),
            payload: json!({"options": ["postgres", "sqlite"]}),
            requires_decision: true,
            decision_deadline_ms: Some(1_000),
            priority: None,
            task_id: None,
            message_id: None,
        })
        .await
        .unwrap();
    let orch = s.agent("orch");
    let escalated = orch
        .bus()
        .consume(Duration::from_secs(10), &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(escalated.message.priority, Priority::Critical);
    assert!(escalated.message.is_critical);
    assert_eq!(
        escalated.message.payload["escalated_question"],
        json!(q.message_id)
    );
    // The orchestrator decides through the escalation message.
    let decided = orch
        .bus()
        .reply(&escalated.message.id, json!({"decision": "postgres"}), true)
        .await
        .unwrap();
    assert_eq!(decided.decision.unwrap().decision.question_id, q.message_id);
    let d = s
        .agent("backend")
        .bus()
        .consume(Duration::from_secs(2), &[MessageType::Decision])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.message.payload["decision"], "postgres");
    let stats = s.guild.bus().get_message_stats().await.unwrap();
    assert!(stats.escalations >= 1);
    let js = jetstream::new(s.server.connect_admin().await);
    let mut audit = js.get_stream("GUILD_AUDIT").await.unwrap();
    let config = audit.info().await.unwrap().config.clone();
    assert!(config.deny_delete && config.deny_purge);
    let last = audit
        .get_last_raw_message_by_subject(&format!("guild.audit.escalation.{}", q.message_id))
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&last.payload).contains("orch"));
    s.stop().await;
}

#[tokio::test]
async fn a_service_that_lost_state_raises_one_critical_alert_for_the_operator() {
    let s = Stack::start(office()).await;
    // What a service publishes when it finds its journal purged (spawner-svc's
    // lost_state tests show it does), twice: two instances saw the same loss.
    let js = jetstream::new(s.server.connect_admin().await);
    let event = json!({
        "event": "state_lost",
        "service": "mission",
        "lost": {"what": "journal", "journal": "mission", "from": 1, "to": 40},
        "at": 1,
    });
    for instance in ["a", "b"] {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("loss-seen-by-{instance}").as_str());
        js.publish_with_headers(
            "guild.evt.mission.state_lost.mission",
            headers,
            serde_json::to_vec(&event).unwrap().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    let alert = s
        .guild
        .bus()
        .consume(Duration::from_secs(10), &[])
        .await
        .unwrap()
        .expect("an ALERT for the operator");
    s.guild.bus().ack(&alert.delivery_id).await.unwrap();
    assert_eq!(alert.message.kind, MessageType::Alert);
    assert_eq!(alert.message.priority, Priority::Critical);
    assert!(
        alert.message.subject.contains("mission-svc lost state"),
        "{}",
        alert.message.subject
    );
    assert!(
        alert
            .message
            .subject
            .contains("guild admin recover --service mission")
    );
    assert_eq!(alert.message.payload["lost"]["to"], 40);
    // One loss, one ALERT.
    assert!(
        s.guild
            .bus()
            .consume(Duration::from_secs(1), &[])
            .await
            .unwrap()
            .is_none()
    );
    // Agents are not told: the operator is who must act.
    assert!(drain(&s.agent("orch")).await.is_empty());
    s.stop().await;
}

async fn start_mission(s: &Stack, mission: &str, agent: &str) -> MissionId {
    let m = MissionId::new(mission).unwrap();
    s.guild
        .missions()
        .create_mission(&NewMission::new(m.clone(), "build it", Phase::DEVELOPMENT))
        .await
        .unwrap();
    s.guild
        .missions()
        .assign_mission(&m, Some(&id(agent)))
        .await
        .unwrap();
    m
}

#[tokio::test]
async fn a_mission_its_lost_agents_team_cannot_take_is_put_to_the_orchestrator() {
    let s = Stack::start(office()).await;
    // backend's team (lead's children) has no other developer; qa is another role.
    let m = start_mission(&s, "solo", "backend").await;
    s.guild
        .spawner()
        .terminate(&guild_sdk::api::spawner::Terminate {
            agent_id: id("backend"),
            subtree: false,
            failed: true,
            reason: Some("crashed".into()),
        })
        .await
        .unwrap();
    let q = s
        .agent("orch")
        .bus()
        .consume(Duration::from_secs(15), &[])
        .await
        .unwrap()
        .expect("the orchestrator is told");
    assert_eq!(
        (q.message.kind, &q.message.from, q.message.task_id.as_ref()),
        (
            MessageType::Question,
            &Principal::Service(guild_domain::Service::Mission),
            Some(&m)
        )
    );
    assert_eq!(q.message.payload["lost_agent"], "backend");
    let waiting = s.guild.missions().get_mission(&m).await.unwrap();
    assert_eq!(waiting.status, guild_domain::mission::MissionStatus::Ready);
    s.stop().await;
}

#[tokio::test]
async fn a_handoff_moves_the_task_and_a_second_handoff_of_it_escalates() {
    let s = Stack::start(office()).await;
    let m = start_mission(&s, "M-006-phase-5", "lead").await;
    let r = s
        .agent("lead")
        .bus()
        .handoff(&id("qa"), &m, json!({"test_cases": 47, "coverage": 0.89}))
        .await
        .unwrap();
    assert_eq!((r.kind, r.priority), (MessageType::Handoff, Priority::High));
    let mission = s.guild.missions().get_mission(&m).await.unwrap();
    assert_eq!(mission.assigned_agent_id, Some(id("qa")));
    let qa = s.guild.spawner().get(&id("qa")).await.unwrap();
    assert_eq!(qa.assigned_task_id, Some(m.clone()));
    let lead = s.guild.spawner().get(&id("lead")).await.unwrap();
    assert_eq!(lead.assigned_task_id, None);
    let got = s
        .agent("qa")
        .bus()
        .consume(Duration::ZERO, &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.message.payload["test_cases"], 47);
    // The lead hands it over again: it no longer holds it. Refused, and escalated.
    let err = s
        .agent("lead")
        .bus()
        .handoff(&id("backend"), &m, json!(null))
        .await
        .unwrap_err();
    assert_eq!(err.rule(), Some("not_task_holder"));
    assert!(err.to_string().contains("escalated to orch"), "{err}");
    let conflict = s
        .agent("orch")
        .bus()
        .consume(Duration::ZERO, &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(conflict.message.priority, Priority::Critical);
    assert_eq!(conflict.message.payload["holder"], "qa");
    // Repeated while that question is open, the same refusal asks no more (and adds no
    // conflict record): a loop of bad handoffs cannot flood the orchestrator.
    let conflicts_before = s.audit_count("guild.audit.conflict.>").await;
    for _ in 0..5 {
        let again = s
            .agent("lead")
            .bus()
            .handoff(&id("backend"), &m, json!(null))
            .await
            .unwrap_err();
        assert_eq!(again.rule(), Some("not_task_holder"));
        assert!(again.to_string().contains("escalated to orch"), "{again}");
    }
    assert!(
        s.agent("orch")
            .bus()
            .consume(Duration::ZERO, &[MessageType::Question])
            .await
            .unwrap()
            .is_none(),
        "a second conflict question"
    );
    assert_eq!(
        s.audit_count("guild.audit.conflict.>").await,
        conflicts_before
    );
    // A handoff to an agent outside the mission's phases is refused; nothing moves.
    let mut scoped = Authority::default_for(&Role::Developer);
    scoped.scoped_to_phases = guild_domain::PhaseScope::Only(BTreeSet::from([Phase::DEPLOYMENT]));
    s.spawn("ops", Role::Developer, Some("orch"), 1_000, Some(scoped))
        .await;
    let err = s
        .agent("qa")
        .bus()
        .handoff(&id("ops"), &m, json!(null))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Rejected(ErrorCode::Forbidden),
        "{err}"
    );
    assert_eq!(
        s.guild
            .missions()
            .get_mission(&m)
            .await
            .unwrap()
            .assigned_agent_id,
        Some(id("qa"))
    );
    s.stop().await;
}

#[tokio::test]
async fn claim_conflicts_and_mission_failures_reach_people() {
    let s = Stack::start(office()).await;
    let m = start_mission(&s, "M-1", "lead").await;
    // qa claims the mission lead runs: refused, and the orchestrator is asked.
    let err = s
        .agent("qa")
        .missions()
        .assign_mission(&m, Some(&id("qa")))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Rejected(ErrorCode::Conflict),
        "{err}"
    );
    let orch = s.agent("orch");
    let conflict = orch
        .bus()
        .consume(Duration::from_secs(10), &[MessageType::Question])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        conflict.message.payload["conflict"],
        "two_claims_on_one_task"
    );
    assert_eq!(conflict.message.payload["claimant"], "qa");
    // The mission fails for good: every live agent gets a CRITICAL alert.
    s.agent("lead")
        .missions()
        .mark_failed(&m, "out of ideas", false)
        .await
        .unwrap();
    let alert = s
        .agent("backend")
        .bus()
        .consume(Duration::from_secs(10), &[MessageType::Alert])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alert.message.priority, Priority::Critical);
    assert_eq!(alert.message.task_id, Some(m));
    s.stop().await;
}

#[tokio::test]
async fn work_for_an_exhausted_budget_is_refused_and_its_orchestrator_asked() {
    let s = Stack::start(office()).await;
    // backend spends its whole budget.
    let backend = s.agent("backend");
    backend
        .spawner()
        .reserve_tokens(
            &id("backend"),
            &ReservationId::new("all").unwrap(),
            1_000,
            None,
        )
        .await
        .unwrap();
    let err = s
        .agent("lead")
        .bus()
        .request(&guild_sdk::SendRequest::new(
            &id("backend"),
            "more work",
            json!(null),
        ))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Rejected(ErrorCode::BudgetExceeded),
        "{err}"
    );
    assert!(err.to_string().contains("scope decision"), "{err}");
    let q = s
        .agent("orch")
        .bus()
        .consume(Duration::ZERO, &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(q.message.kind, MessageType::Question);
    assert_eq!(q.message.from, Principal::Agent(id("backend")));
    assert_eq!(q.message.payload["reason"], "token_budget_exceeded");
    // Refused again: the open question is not asked twice.
    s.agent("lead")
        .bus()
        .request(&guild_sdk::SendRequest::new(
            &id("backend"),
            "more",
            json!(null),
        ))
        .await
        .unwrap_err();
    assert!(
        s.agent("orch")
            .bus()
            .consume(Duration::ZERO, &[])
            .await
            .unwrap()
            .is_none()
    );
    s.stop().await;
}

#[tokio::test]
async fn a_reserve_over_the_budget_asks_the_orchestrator_for_scope_once() {
    let s = Stack::start(office()).await;
    let backend = s.agent("backend");
    let reserve = |r: &'static str, amount| {
        let backend = backend.clone();
        async move {
            backend
                .spawner()
                .reserve_tokens(
                    &id("backend"),
                    &ReservationId::new(r).unwrap(),
                    amount,
                    None,
                )
                .await
                .unwrap_err()
        }
    };
    let e = reserve("big", 1_001).await;
    assert_eq!(
        e.kind(),
        ErrorKind::Rejected(ErrorCode::BudgetExceeded),
        "{e}"
    );
    let q = s
        .agent("orch")
        .bus()
        .consume(Duration::from_secs(10), &[])
        .await
        .unwrap()
        .expect("the orchestrator is asked");
    assert_eq!(
        (q.message.kind, &q.message.from, q.message.requires_decision),
        (
            MessageType::Question,
            &Principal::Agent(id("backend")),
            true
        )
    );
    let p = &q.message.payload;
    assert_eq!(p["reason"], "token_budget_exceeded");
    assert_eq!(
        (&p["current_spend"], &p["budget"]),
        (&json!(0), &json!(1_000))
    );
    assert_eq!(
        p["options"],
        json!(["reallocate_budget", "reduce_scope", "pause"])
    );
    assert_eq!(p["refused"]["operation"], "reserve_tokens");
    assert_eq!(
        (&p["refused"]["requested"], &p["refused"]["remaining"]),
        (&json!(1_001), &json!(1_000))
    );
    // Refused again while the question is open: it is not asked twice. Once bus-svc has
    // taken every refusal, the orchestrator's inbox holds nothing new.
    for r in ["again-1", "again-2"] {
        reserve(r, 5_000).await;
    }
    s.drained("bus-svc-budget-refusals").await;
    assert!(
        s.agent("orch")
            .bus()
            .consume(Duration::ZERO, &[])
            .await
            .unwrap()
            .is_none(),
        "one open scope question per agent"
    );
    s.stop().await;
}

#[tokio::test]
async fn bad_input_gets_a_typed_error_and_writes_nothing() {
    let s = Stack::start(office()).await;
    let mut limited = Authority::default_for(&Role::Developer);
    limited.forbidden_actions.insert("send_critical".into());
    s.spawn("junior", Role::Developer, Some("lead"), 100, Some(limited))
        .await;
    s.agent("orch")
        .spawner()
        .terminate(&guild_sdk::Terminate::new(&id("backend"), false))
        .await
        .unwrap();
    let before = s.journal_sequence().await;
    let lead = s.agent("lead");
    let q = lead
        .bus()
        .request(&guild_sdk::SendRequest::new(
            &id("qa"),
            "a request",
            json!(null),
        ))
        .await
        .unwrap();
    let after_setup = s.journal_sequence().await;
    assert!(after_setup > before);
    // Raw requests in any principal's name: the broker would refuse them to anyone but
    // that principal, so they go on unlimited credentials, to test the bus's own checks.
    let admin = s
        .server
        .connect_admin_as(&Principal::Agent(id("lead")))
        .await;
    let client = &admin;
    let raw = |op: &str, by: &str, body: &'static str| {
        let subject = format!("guild.bus.v1.{op}.{by}");
        async move {
            let reply = client.request(subject, body.into()).await.unwrap();
            let code = reply
                .headers
                .as_ref()
                .and_then(|h| h.get("Nats-Service-Error-Code"))
                .map(|v| v.to_string());
            let body: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
            (code, body)
        }
    };
    // Malformed JSON, a wrong field type, an unknown field.
    let (code, body) = raw("request", "lead", "{not json").await;
    assert_eq!(code.as_deref(), Some("400"), "{body}");
    let (_, body) = raw("request", "lead", r#"{"to": 5, "subject": "x"}"#).await;
    assert_eq!(body["error"]["field"], "to", "{body}");
    let (_, body) = raw(
        "request",
        "lead",
        r#"{"to": "qa", "subject": "x", "colour": 1}"#,
    )
    .await;
    assert_eq!(body["error"]["rule"], "malformed_json", "{body}");
    // A payload over the wire limit.
    let big = format!(
        r#"{{"to": "qa", "subject": "x", "payload": "{}"}}"#,
        "x".repeat(300_000)
    );
    let reply = client
        .request("guild.bus.v1.request.lead", big.into())
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(body["error"]["rule"], "payload_too_large", "{body}");
    let (ghost, backend) = (
        s.server
            .connect_admin_as(&Principal::Agent(id("ghost")))
            .await,
        s.server
            .connect_admin_as(&Principal::Agent(id("backend")))
            .await,
    );
    let as_anyone = |p: Principal| {
        let client = if p == Principal::Agent(id("ghost")) {
            ghost.clone()
        } else {
            backend.clone()
        };
        Guild::new(client).acting_as(p)
    };
    let cases: Vec<(guild_sdk::Error, &str)> = vec![
        // An unknown recipient, an unknown sender, a non-live recipient and sender.
        (
            lead.bus()
                .request(&guild_sdk::SendRequest::new(
                    &id("nobody"),
                    "x",
                    json!(null),
                ))
                .await
                .unwrap_err(),
            "unknown_agent",
        ),
        // An unknown agent has no credentials, and a terminated one's are revoked: the
        // broker refuses both; the bus refuses them too, on credentials that may ask as them.
        (
            as_anyone(Principal::Agent(id("ghost")))
                .bus()
                .request(&guild_sdk::SendRequest::new(&id("qa"), "x", json!(null)))
                .await
                .unwrap_err(),
            "unknown_agent",
        ),
        (
            lead.bus()
                .request(&guild_sdk::SendRequest::new(
                    &id("backend"),
                    "x",
                    json!(null),
                ))
                .await
                .unwrap_err(),
            "agent_not_live",
        ),
        (
            as_anyone(Principal::Agent(id("backend")))
                .bus()
                .request(&guild_sdk::SendRequest::new(&id("qa"), "x", json!(null)))
                .await
                .unwrap_err(),
            "agent_not_live",
        ),
        // A reply to an unknown message, a decision on something that is not a question.
        (
            lead.bus()
                .reply(&mid("nope"), json!(null), false)
                .await
                .unwrap_err(),
            "unknown_message",
        ),
        (
            s.agent("qa")
                .bus()
                .record_decision(&q.message_id, "x", None, json!(null))
                .await
                .unwrap_err(),
            "not_a_question",
        ),
        (
            s.agent("qa")
                .bus()
                .reply(&q.message_id, json!({"decision": "x"}), true)
                .await
                .unwrap_err(),
            "not_a_question",
        ),
        // A forbidden action.
        (
            s.agent("junior")
                .bus()
                .request(&request("qa", "x", Priority::Critical))
                .await
                .unwrap_err(),
            "forbidden_action",
        ),
        // An empty subject, an unknown delivery, a consume that would wait too long.
        (
            lead.bus()
                .request(&guild_sdk::SendRequest::new(&id("qa"), " ", json!(null)))
                .await
                .unwrap_err(),
            "invalid_field",
        ),
        (
            lead.bus().ack("m1.lead.1").await.unwrap_err(),
            "unknown_delivery",
        ),
        (
            lead.bus()
                .consume(Duration::from_secs(31), &[])
                .await
                .unwrap_err(),
            "invalid_field",
        ),
    ];
    for (err, rule) in cases {
        assert_eq!(err.rule(), Some(rule), "{err}");
        assert!(matches!(err.kind(), ErrorKind::Rejected(_)), "{err}");
    }
    let second = s
        .agent("qa")
        .bus()
        .record_decision(&q.message_id, "x", None, json!(null))
        .await
        .unwrap_err();
    assert_eq!(second.kind(), ErrorKind::Rejected(ErrorCode::BadRequest));
    assert_eq!(
        s.journal_sequence().await,
        after_setup,
        "nothing was written"
    );
    s.stop().await;
}

#[tokio::test]
async fn service_info_lists_exactly_the_bus_operations() {
    let s = Stack::start(office()).await;
    let reply = s
        .guild
        .client()
        .request("$SRV.INFO.guild-bus", "".into())
        .await
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    let names: BTreeSet<String> = info["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    let want: BTreeSet<String> = guild_wire::api::bus::OPS
        .iter()
        .map(|o| o.name.to_owned())
        .collect();
    assert_eq!(names, want);
    for op in [
        "request",
        "ask_question",
        "alert",
        "handoff",
        "reply",
        "record_decision",
        "consume",
        "get_message_stats",
    ] {
        assert!(names.contains(op), "{op}");
    }
    s.stop().await;
}

#[tokio::test]
async fn settled_messages_are_archived_and_counted() {
    let s = Stack::start(OfficeConfig {
        retention_ms: 200,
        ..office()
    })
    .await;
    let lead = s.agent("lead");
    lead.bus()
        .request(&guild_sdk::SendRequest::new(&id("qa"), "old", json!(null)))
        .await
        .unwrap();
    let qa = s.agent("qa");
    assert_eq!(drain(&qa).await, ["old"]);
    eventually_async(
        "the settled message is archived",
        Duration::from_secs(10),
        || async {
            let stats = s.guild.bus().get_message_stats().await.ok()?;
            (stats.archived_messages == 1).then_some(stats)
        },
    )
    .await;
    let stats = s.guild.bus().get_message_stats().await.unwrap();
    assert_eq!((stats.total_messages, stats.queue_size), (1, 0));
    s.stop().await;
}

#[tokio::test]
async fn agents_read_their_own_questions_and_audit_records_and_the_observer_reads_all() {
    use guild_wire::api::bus::{AuditQuery, QuestionQuery, QuestionRef, op};
    let s = Stack::start(office()).await;
    s.spawn("outsider", Role::Developer, None, 1_000, None)
        .await;
    let asked = s
        .agent("backend")
        .bus()
        .ask_question(&AskQuestion {
            to: Some(Principal::Agent(id("lead"))),
            subject: "Which database?".into(),
            payload: json!({"options": ["postgres", "sqlite"]}),
            requires_decision: true,
            decision_deadline_ms: None,
            priority: None,
            task_id: None,
            message_id: None,
        })
        .await
        .unwrap();
    let q = QuestionRef {
        question_id: asked.message_id.clone(),
    };
    let observer = guild_sdk::connect(&s.server.options_as(&Principal::Observer))
        .await
        .unwrap();

    // The asker, the addressee, their orchestrator and the observer read the question.
    for reader in [
        s.agent("backend"),
        s.agent("lead"),
        s.agent("orch"),
        observer.clone(),
    ] {
        let state = reader.call::<op::GetQuestion>(&q).await.unwrap();
        assert_eq!(state.question.id, asked.message_id);
        assert!(state.decision.is_none());
    }
    // Another lineage does not, and is told which rule says so.
    let refused = s
        .agent("outsider")
        .call::<op::GetQuestion>(&q)
        .await
        .unwrap_err();
    assert_eq!(
        refused.kind(),
        ErrorKind::Rejected(ErrorCode::Forbidden),
        "{refused}"
    );
    assert_eq!(refused.rule(), Some("forbidden_action"), "{refused}");
    let unknown = s
        .agent("backend")
        .call::<op::GetQuestion>(&QuestionRef {
            question_id: mid("no-such-question"),
        })
        .await
        .unwrap_err();
    assert_eq!(
        unknown.kind(),
        ErrorKind::Rejected(ErrorCode::NotFound),
        "{unknown}"
    );

    let open = QuestionQuery {
        open_only: true,
        limit: None,
    };
    let listed = |g: Guild| {
        let open = open.clone();
        async move {
            let list = g.call::<op::ListQuestions>(&open).await.unwrap();
            list.questions
                .into_iter()
                .map(|q| q.question.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        listed(s.agent("lead")).await,
        vec![asked.message_id.clone()]
    );
    assert_eq!(
        listed(observer.clone()).await,
        vec![asked.message_id.clone()]
    );
    assert!(listed(s.agent("outsider")).await.is_empty());
    s.guild
        .bus()
        .record_decision(&asked.message_id, "postgres", None, json!({}))
        .await
        .unwrap();
    assert!(
        listed(s.agent("lead")).await.is_empty(),
        "decided: not open"
    );

    // Audit records beyond decisions: backend's spawn is for backend and its orchestrators,
    // not for another lineage; the observer reads every kind.
    let spawns = AuditQuery {
        kinds: vec![AuditKind::Spawn],
        ..AuditQuery::default()
    };
    let about = |g: Guild, q: AuditQuery| async move {
        let got = g.call::<op::AuditRecords>(&q).await.unwrap();
        got.records
            .into_iter()
            .map(|r| (r.entry.kind.as_str(), r.entry.about))
            .collect::<BTreeSet<_>>()
    };
    let spawned = |names: &[&str]| {
        names
            .iter()
            .map(|n| ("spawn", n.to_string()))
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(
        about(s.agent("backend"), spawns.clone()).await,
        spawned(&["backend"])
    );
    assert_eq!(
        about(s.agent("lead"), spawns.clone()).await,
        spawned(&["backend", "lead"])
    );
    assert_eq!(
        about(s.agent("outsider"), spawns.clone()).await,
        spawned(&["outsider"])
    );
    assert_eq!(
        about(observer.clone(), spawns.clone()).await,
        spawned(&["backend", "lead", "orch", "outsider", "qa"])
    );
    let everything = about(observer.clone(), AuditQuery::default()).await;
    assert!(
        everything.iter().any(|(k, _)| *k == "decision"),
        "{everything:?}"
    );
    let only_lead = AuditQuery {
        about: Some("lead".into()),
        limit: Some(1),
        ..AuditQuery::default()
    };
    let got = observer.call::<op::AuditRecords>(&only_lead).await.unwrap();
    assert_eq!(got.records.len(), 1);
    assert_eq!(got.records[0].entry.about, "lead");

    // The decision history and its export are audit records too: backend's question,
    // decided, is for its lineage and the observer; another lineage reads none of it.
    let decided = |g: Guild| async move {
        let all = DecisionQuery::default();
        let history = g.bus().decision_history(&all).await.unwrap();
        let export = g.bus().export_decisions(&all).await.unwrap();
        assert_eq!(export.decisions as usize, history.len());
        history
            .into_iter()
            .map(|d| d.record.choice)
            .collect::<Vec<_>>()
    };
    for reader in [
        s.agent("backend"),
        s.agent("lead"),
        s.agent("orch"),
        observer,
    ] {
        assert_eq!(decided(reader).await, vec!["postgres".to_string()]);
    }
    assert!(decided(s.agent("outsider")).await.is_empty());
    s.stop().await;
}

/// A spawn cap, end to end: a spawn past `max_descendants` is refused by spawner-svc with
/// its rule, and the would-be parent's orchestrator is asked once while the question is
/// open.
#[tokio::test]
async fn a_spawn_past_a_cap_is_refused_and_the_orchestrator_asked_once() {
    let s = Stack::start(office()).await;
    let capped = Authority {
        max_descendants: Some(1),
        ..Authority::default_for(&Role::Developer)
    };
    s.spawn(
        "capped",
        Role::Developer,
        Some("orch"),
        10_000,
        Some(capped),
    )
    .await;
    let under = |name: &str| SpawnRequest::new(id(name), Role::Qa, 100).parent(id("capped"));
    s.team.try_spawn(under("h1")).await.unwrap();
    let refused = |name: &'static str| {
        let s = &s;
        async move { s.team.try_spawn(under(name)).await.unwrap_err() }
    };
    let e = refused("h2").await;
    assert_eq!(e.kind(), ErrorKind::Rejected(ErrorCode::Forbidden), "{e}");
    assert_eq!(e.rule(), Some("descendants_exhausted"));
    assert_eq!(
        e.body().and_then(|b| b.field.as_deref()),
        Some("max_descendants")
    );

    let q = s
        .agent("orch")
        .bus()
        .consume(Duration::from_secs(10), &[])
        .await
        .unwrap()
        .expect("the orchestrator is asked");
    assert_eq!(
        (q.message.kind, &q.message.from, q.message.requires_decision),
        (MessageType::Question, &Principal::Agent(id("capped")), true)
    );
    let p = &q.message.payload;
    assert_eq!(p["reason"], "descendants_exhausted");
    assert_eq!((&p["limit"], &p["current"]), (&json!(1), &json!(1)));
    assert_eq!(p["refused"]["child"], "h2");

    // Refused again while the question is open: not asked twice.
    refused("h3").await;
    s.drained("bus-svc-spawn-cap-refusals").await;
    let next = s
        .agent("orch")
        .bus()
        .consume(Duration::ZERO, &[])
        .await
        .unwrap();
    assert!(next.is_none(), "asked again: {next:?}");
    s.stop().await;
}

#[tokio::test]
async fn a_scale_up_held_by_the_budget_asks_once_which_rule() {
    let s = Stack::start(office()).await;
    // orch (a root) keeps 80,000 tokens after lead and qa: one member of 50,000 fits.
    for i in 0..3 {
        let mut m = NewMission::new(
            MissionId::new(format!("build-{i}")).unwrap(),
            "build",
            Phase::DEVELOPMENT,
        );
        m.role = Some(Role::Developer);
        s.guild.missions().create_mission(&m).await.unwrap();
    }
    // Every time spawner-svc says the scale-up is held, from now on.
    let admin = s.server.connect_admin().await;
    let mut told = admin
        .subscribe(guild_wire::subject::event_everywhere("scaling_blocked"))
        .await
        .unwrap();
    admin.flush().await.unwrap();
    let mut policy =
        guild_domain::agent::ScalingPolicy::new(id("orch"), Role::Developer, 3, 50_000);
    policy.cooldown_ms = 100;
    s.guild.spawner().set_scaling_policy(&policy).await.unwrap();

    // orch has no orchestrator above it: the operator is asked.
    let q = s
        .guild
        .bus()
        .consume(Duration::from_secs(10), &[])
        .await
        .unwrap()
        .expect("the operator is asked");
    assert_eq!(
        (q.message.kind, &q.message.from, q.message.requires_decision),
        (MessageType::Question, &Principal::Agent(id("orch")), true)
    );
    let p = &q.message.payload;
    assert_eq!(
        (&p["question"], &p["reason"], &p["members"], &p["wanted"]),
        (
            &json!("scaling_blocked"),
            &json!("budget_exceeded"),
            &json!(1),
            &json!(3)
        ),
        "{p}"
    );
    let audit = s.last_audit("guild.audit.scaling.orch").await;
    assert_eq!(audit["data"]["event"], "scaling_blocked", "{audit}");
    s.guild.bus().ack(&q.delivery_id).await.unwrap();

    // Many ticks later (every 50 ms, a 100 ms cool-down), told once and asked once.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    s.drained("bus-svc-scaling-refusals").await;
    let next = s.guild.bus().consume(Duration::ZERO, &[]).await.unwrap();
    assert!(next.is_none(), "asked again: {next:?}");
    let mut times = 0;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), told.next()).await {
        times += 1;
    }
    assert_eq!(
        times, 1,
        "the held scale-up is told once, not once per tick"
    );
    s.stop().await;
}
