//! The post office: delivery order, acknowledgement, waiting consumers, decisions,
//! escalation, archiving and snapshots, one test per rule.

use serde_json::json;

use super::scenarios::{NOW, agent, mid, team};
use super::*;
use crate::agent::tests::{World, id};
use crate::{MessageId, Principal, Rejection, Timestamp};

struct Bus {
    world: World,
    office: PostOffice,
    now: Timestamp,
    next: u64,
}

impl Bus {
    fn new() -> Self {
        Self {
            world: team(),
            office: PostOffice::new(OfficeConfig::default()),
            now: NOW,
            next: 0,
        }
    }

    fn apply(&mut self, records: Vec<OfficeRecord>) {
        for r in records {
            self.office.apply(r);
        }
    }

    fn fresh_id(&mut self) -> MessageId {
        self.next += 1;
        mid(&format!("m{}", self.next))
    }

    /// Sends a draft from `from` and stores it; returns the post.
    fn send(&mut self, from: &str, draft: Draft) -> Post {
        let from = if from == "operator" {
            Principal::Operator
        } else {
            agent(from)
        };
        let id = self.fresh_id();
        let original = draft
            .in_reply_to
            .as_ref()
            .and_then(|r| self.office.original(&from, r).ok());
        let routed = address(&self.world.reg, &from, &draft, original, id, self.now).unwrap();
        let post = self.office.post(routed, self.now);
        self.apply(post.records.clone());
        post
    }

    fn request(&mut self, to: &str, subject: &str, priority: Priority) -> MessageId {
        let d = Draft {
            to: Some(agent(to)),
            priority: Some(priority),
            ..Draft::new(MessageType::Request, subject)
        };
        self.send("orch", d).message.id
    }

    fn consume(&mut self, owner: &str) -> Option<Delivery> {
        let (record, d) = self.office.consume(&agent(owner), self.now, &[])?;
        self.office.apply(record);
        Some(d)
    }

    fn ack(&mut self, owner: &str, d: &Delivery) {
        if let Some(r) = self
            .office
            .ack(&agent(owner), &d.delivery_id, self.now)
            .unwrap()
        {
            self.office.apply(r);
        }
    }

    fn later(&mut self, ms: u64) {
        self.now = self.now.plus_millis(ms);
    }
}

fn subjects(deliveries: &[Delivery]) -> Vec<&str> {
    deliveries
        .iter()
        .map(|d| d.message.subject.as_str())
        .collect()
}

#[test]
fn highest_priority_first_and_first_in_first_out_within_one() {
    let mut b = Bus::new();
    for (s, p) in [
        ("low-1", Priority::Low),
        ("normal-1", Priority::Normal),
        ("low-2", Priority::Low),
        ("critical-1", Priority::Critical),
        ("high-1", Priority::High),
        ("normal-2", Priority::Normal),
    ] {
        b.request("lead", s, p);
    }
    let mut got = Vec::new();
    while let Some(d) = b.consume("lead") {
        b.ack("lead", &d);
        got.push(d);
    }
    assert_eq!(
        subjects(&got),
        [
            "critical-1",
            "high-1",
            "normal-1",
            "normal-2",
            "low-1",
            "low-2"
        ]
    );
    assert_eq!(b.office.queue_len(&agent("lead")), 0);
}

#[test]
fn a_critical_message_after_ten_thousand_low_ones_is_consumed_next() {
    let mut b = Bus::new();
    for i in 0..10_000 {
        b.request("lead", &format!("low-{i}"), Priority::Low);
    }
    b.request("lead", "critical", Priority::Critical);
    assert_eq!(b.consume("lead").unwrap().message.subject, "critical");
    assert_eq!(b.consume("lead").unwrap().message.subject, "low-0");
}

#[test]
fn a_starved_low_message_is_served_before_younger_high_ones() {
    let mut b = Bus::new();
    b.request("lead", "old-low", Priority::Low);
    b.later(StarvationPolicy::default().low_max_wait_ms + 1);
    b.request("lead", "fresh-high", Priority::High);
    assert_eq!(b.consume("lead").unwrap().message.subject, "old-low");
    assert_eq!(b.consume("lead").unwrap().message.subject, "fresh-high");
}

#[test]
fn an_unacknowledged_delivery_comes_again_after_the_ack_window() {
    let mut b = Bus::new();
    b.request("lead", "work", Priority::Normal);
    let first = b.consume("lead").unwrap();
    assert_eq!(first.attempt, 1);
    assert!(b.consume("lead").is_none(), "in flight, not deliverable");
    b.later(b.office.config().ack_wait_ms);
    let again = b.consume("lead").unwrap();
    assert_eq!((again.attempt, &again.message.id), (2, &first.message.id));
    // The first attempt's late ack still settles it; acking again is harmless.
    b.ack("lead", &first);
    b.ack("lead", &again);
    b.later(b.office.config().ack_wait_ms * 2);
    assert!(b.consume("lead").is_none());
    assert_eq!(b.office.queue_size(), 0);
}

#[test]
fn acks_are_checked() {
    let mut b = Bus::new();
    b.request("lead", "work", Priority::Normal);
    let d = b.consume("lead").unwrap();
    let err = b
        .office
        .ack(&agent("backend"), &d.delivery_id, b.now)
        .unwrap_err();
    assert_eq!(err.rule(), "forbidden_action", "another agent's delivery");
    for bad in ["nonsense", "m1.lead.9", "m9.lead.1", "m1.lead", "m1.lead.0"] {
        let err = b.office.ack(&agent("lead"), bad, b.now).unwrap_err();
        assert_eq!(err, Rejection::UnknownDelivery { id: bad.into() }, "{bad}");
        assert_eq!(err.field(), Some("delivery_id"));
    }
}

#[test]
fn a_nak_gives_the_message_back_after_its_delay() {
    let mut b = Bus::new();
    b.request("lead", "work", Priority::Normal);
    let d = b.consume("lead").unwrap();
    let err = b
        .office
        .nak(&agent("lead"), &d.delivery_id, MAX_NAK_DELAY_MS + 1, b.now)
        .unwrap_err();
    assert_eq!(err.field(), Some("delay_ms"));
    let r = b
        .office
        .nak(&agent("lead"), &d.delivery_id, 1_000, b.now)
        .unwrap()
        .unwrap();
    b.office.apply(r);
    assert!(b.consume("lead").is_none(), "not before the delay");
    b.later(1_000);
    let again = b.consume("lead").unwrap();
    assert_eq!(again.attempt, 2);
    b.ack("lead", &again);
    let err = b
        .office
        .nak(&agent("lead"), &again.delivery_id, 0, b.now)
        .unwrap_err();
    assert_eq!(err.field(), Some("delivery_id"), "acknowledged already");
}

#[test]
fn a_waiting_consumer_is_served_by_the_post_itself() {
    let mut b = Bus::new();
    let until = b.now.plus_millis(5_000);
    let w = b.office.wait(&agent("lead"), "w1".into(), until, vec![]);
    b.office.apply(w);
    // A message for someone else does not serve it.
    b.request("backend", "not for lead", Priority::Normal);
    assert!(b.office.waiter("w1").is_some());
    let d = Draft {
        to: Some(agent("lead")),
        ..Draft::new(MessageType::Request, "for lead")
    };
    let post = b.send("orch", d);
    assert_eq!(post.served.len(), 1);
    let (waiter, delivery) = &post.served[0];
    assert_eq!((waiter.as_str(), delivery.attempt), ("w1", 1));
    assert!(b.office.waiter("w1").is_none(), "served once");
    let copy = b
        .office
        .message(&post.message.id)
        .unwrap()
        .copy_for(&agent("lead"))
        .unwrap();
    assert!(matches!(&copy.state, CopyState::InFlight { waiter: Some(w), .. } if w == "w1"));
    assert!(b.consume("lead").is_none(), "already delivered");
}

#[test]
fn a_waiter_is_served_what_it_would_have_consumed_next() {
    let mut b = Bus::new();
    b.request("lead", "old", Priority::Normal);
    let first = b.consume("lead").unwrap();
    b.later(b.office.config().ack_wait_ms);
    // The first delivery's window ran out while a consumer waits: a revisit serves it.
    let w = b.office.wait(
        &agent("lead"),
        "w1".into(),
        b.now.plus_millis(5_000),
        vec![],
    );
    b.office.apply(w);
    let (records, delivery) = b.office.revisit("w1", b.now).unwrap();
    assert_eq!(delivery.unwrap().message.id, first.message.id);
    b.apply(records);
    assert!(b.office.waiter("w1").is_none());
    // A waiter whose time is up leaves with nothing; one still waiting stays.
    let w = b
        .office
        .wait(&agent("lead"), "w2".into(), b.now.plus_millis(100), vec![]);
    b.office.apply(w);
    assert!(b.office.revisit("w2", b.now).is_none(), "keeps waiting");
    let (records, delivery) = b.office.revisit("w2", b.now.plus_millis(100)).unwrap();
    assert!(delivery.is_none());
    assert_eq!(
        records,
        [OfficeRecord::Left {
            waiter: "w2".into()
        }]
    );
}

#[test]
fn replies_must_answer_a_known_message_addressed_to_the_replier() {
    let mut b = Bus::new();
    let req = b.request("lead", "review", Priority::Normal);
    assert_eq!(
        b.office
            .original(&agent("backend"), &req)
            .unwrap_err()
            .rule(),
        "forbidden_action"
    );
    assert_eq!(
        b.office.original(&agent("lead"), &mid("nope")).unwrap_err(),
        Rejection::UnknownMessage { id: mid("nope") }
    );
    let reply = Draft {
        in_reply_to: Some(req),
        ..Draft::new(MessageType::Reply, "done")
    };
    let post = b.send("lead", reply);
    assert_eq!(post.recipients, [Recipient::Agent(id("orch"))]);
}

fn ask(b: &mut Bus) -> MessageId {
    let q = Draft {
        requires_decision: true,
        payload: json!({"options": ["cut_feature_X", "extend_timeline"]}),
        ..Draft::new(MessageType::Question, "Scope reduction needed?")
    };
    b.send("architect", q).message.id
}

#[test]
fn the_seeds_reply_then_record_decision_is_one_decision_delivered_once() {
    let mut b = Bus::new();
    let q = ask(&mut b);
    b.later(1_500);
    let orch = agent("orch");
    let payload = json!({"decision": "cut_feature_X", "reason": "token_overbudget"});
    let reply = Draft {
        in_reply_to: Some(q.clone()),
        payload: payload.clone(),
        ..Draft::new(MessageType::Decision, "Re: scope")
    };
    let original = b.office.original(&orch, &q).ok();
    let routed = address(&b.world.reg, &orch, &reply, original, mid("d1"), b.now).unwrap();
    let input = DecisionInput::from_reply_payload(&payload).unwrap();
    let first = b
        .office
        .decide_question(
            &b.world.reg,
            &orch,
            &q,
            &input,
            DecisionMessage::Reply(routed),
            b.now,
        )
        .unwrap();
    assert_eq!(first.ruling.kind, RulingKind::Decided);
    let post = first.post.clone().unwrap();
    assert_eq!(post.recipients, [Recipient::Agent(id("architect"))]);
    assert_eq!(post.message.payload, payload);
    b.apply(first.records);
    let record = DecisionInput::new(
        "cut_feature_X".into(),
        Some("Token budget constraints".into()),
        json!({"scope_reduction": "15%"}),
    )
    .unwrap();
    let second = b
        .office
        .decide_question(
            &b.world.reg,
            &orch,
            &q,
            &record,
            DecisionMessage::Written(mid("d2"), None),
            b.now,
        )
        .unwrap();
    assert_eq!(second.ruling.kind, RulingKind::Completed);
    assert!(second.post.is_none(), "the asker already has the decision");
    b.apply(second.records);
    let delivered = b.consume("architect").unwrap();
    assert_eq!(delivered.message.kind, MessageType::Decision);
    assert!(b.consume("architect").is_none(), "exactly one DECISION");
    let t = b.office.totals();
    assert_eq!(
        (
            t.decisions,
            t.decision_times_ms.iter().copied().collect::<Vec<_>>()
        ),
        (1, vec![1_500])
    );
}

#[test]
fn record_decision_alone_delivers_the_decision_and_others_may_not_decide_again() {
    let mut b = Bus::new();
    let ask_lead = Draft {
        to: Some(agent("lead")),
        requires_decision: true,
        ..Draft::new(MessageType::Question, "Which queue?")
    };
    let q = b.send("backend", ask_lead).message.id;
    let input = DecisionInput::new("extend_timeline".into(), None, json!(null)).unwrap();
    let d = b
        .office
        .decide_question(
            &b.world.reg,
            &agent("lead"),
            &q,
            &input,
            DecisionMessage::Written(mid("d1"), None),
            b.now,
        )
        .unwrap();
    let post = d.post.clone().unwrap();
    assert_eq!(post.message.payload["decision"], "extend_timeline");
    assert_eq!(post.message.in_reply_to, Some(q.clone()));
    b.apply(d.records);
    let other = DecisionInput::new("cut_feature_X".into(), None, json!(null)).unwrap();
    let err = b
        .office
        .decide_question(
            &b.world.reg,
            &agent("lead"),
            &q,
            &other,
            DecisionMessage::Written(mid("d2"), None),
            b.now,
        )
        .unwrap_err();
    assert_eq!(err.rule(), "already_decided", "no override authority");
    let err = b
        .office
        .decide_question(
            &b.world.reg,
            &agent("frontend"),
            &q,
            &other,
            DecisionMessage::Written(mid("d2"), None),
            b.now,
        )
        .unwrap_err();
    assert_eq!(err.rule(), "forbidden_action", "not the addressee");
    // The operator may override; the override is delivered too.
    let over = b
        .office
        .decide_question(
            &b.world.reg,
            &Principal::Operator,
            &q,
            &other,
            DecisionMessage::Written(mid("d3"), None),
            b.now,
        )
        .unwrap();
    assert_eq!(over.ruling.kind, RulingKind::Overridden);
    assert!(over.post.is_some());
    // A decision on something that is not a question.
    let req = b.request("lead", "not a question", Priority::Normal);
    let err = b
        .office
        .decide_question(
            &b.world.reg,
            &Principal::Operator,
            &req,
            &other,
            DecisionMessage::Written(mid("d4"), None),
            b.now,
        )
        .unwrap_err();
    assert_eq!(err, Rejection::NotAQuestion { id: req });
}

#[test]
fn an_overdue_question_escalates_at_critical_and_either_message_decides_it() {
    let mut b = Bus::new();
    let q = Draft {
        to: Some(agent("lead")),
        requires_decision: true,
        ..Draft::new(MessageType::Question, "which database?")
    };
    let qid = b.send("backend", q).message.id;
    let deadline = b.office.config().decision_deadline_ms;
    let reg = &b.world.reg;
    assert!(
        b.office
            .escalations_due(reg, b.now.plus_millis(deadline), |_| mid("e"))
            .is_empty()
    );
    b.later(deadline + 1);
    let due = b
        .office
        .escalations_due(&b.world.reg, b.now, |q| mid(&format!("{q}-esc-1")));
    assert_eq!(due.len(), 1);
    let e = due[0].clone();
    assert_eq!(e.post.message.priority, Priority::Critical);
    assert!(
        e.post.message.is_critical,
        "an escalation says it is critical"
    );
    assert_eq!(e.post.recipients, [Recipient::Agent(id("orch"))]);
    assert_eq!(e.post.message.payload["escalated_question"], json!(qid));
    b.apply(e.records);
    assert_eq!(b.office.totals().escalations, 1);
    assert_eq!(
        b.consume("orch").unwrap().message.priority,
        Priority::Critical
    );
    // Not due again until another deadline passes; then it goes to the operator.
    assert!(
        b.office
            .escalations_due(&b.world.reg, b.now, |_| mid("x"))
            .is_empty()
    );
    b.later(deadline + 1);
    let next = b.office.escalations_due(&b.world.reg, b.now, |_| mid("e2"));
    assert_eq!(next[0].post.recipients, [Recipient::Operator]);
    // The orchestrator decides through the escalation message's id.
    let esc = mid(&format!("{qid}-esc-1"));
    let input = DecisionInput::new("postgres".into(), None, json!(null)).unwrap();
    let d = b
        .office
        .decide_question(
            &b.world.reg,
            &agent("orch"),
            &esc,
            &input,
            DecisionMessage::Written(mid("d"), None),
            b.now,
        )
        .unwrap();
    assert_eq!(d.ruling.state.question.id, qid);
    assert_eq!(
        d.post.unwrap().recipients,
        [Recipient::Agent(id("backend"))]
    );
}

#[test]
fn a_question_may_set_its_own_decision_deadline() {
    let mut b = Bus::new();
    let q = Draft {
        to: Some(agent("lead")),
        requires_decision: true,
        decision_deadline_ms: Some(5_000),
        ..Draft::new(MessageType::Question, "ship tonight?")
    };
    b.send("backend", q);
    assert!(5_000 < b.office.config().decision_deadline_ms);
    let due = |b: &Bus, after: u64| {
        b.office
            .escalations_due(&b.world.reg, b.now.plus_millis(after), |_| mid("e"))
    };
    assert!(due(&b, 5_000).is_empty());
    let e = due(&b, 5_001);
    assert_eq!(
        e.len(),
        1,
        "escalated after its own deadline, not the bus's"
    );
    assert_eq!(
        e[0].post.message.decision_deadline_ms,
        Some(5_000),
        "the next decider gets the same time"
    );
}

#[test]
fn settled_old_messages_are_archived_and_still_counted() {
    let mut b = Bus::new();
    b.request("lead", "done soon", Priority::Normal);
    b.request("lead", "never acked", Priority::Low);
    ask(&mut b);
    let d = b.consume("lead").unwrap();
    b.ack("lead", &d);
    let retention = b.office.config().retention_ms;
    assert!(
        b.office
            .archive_due(b.now.plus_millis(retention), 100)
            .is_none()
    );
    b.later(retention + 1);
    let r = b.office.archive_due(b.now, 100).unwrap();
    let OfficeRecord::Archived {
        messages,
        questions,
    } = &r
    else {
        panic!("{r:?}")
    };
    assert_eq!(
        messages,
        std::slice::from_ref(&d.message.id),
        "unacknowledged and open ones stay"
    );
    assert!(questions.is_empty());
    b.office.apply(r);
    assert!(b.office.message(&d.message.id).is_none());
    let t = b.office.totals();
    assert_eq!((t.messages, t.archived), (3, 1));
    assert_eq!(b.office.queue_size(), 2);
}

#[test]
fn a_snapshot_rebuilds_the_same_office() {
    let mut b = Bus::new();
    for i in 0..5 {
        b.request("lead", &format!("r{i}"), Priority::Normal);
    }
    b.request("backend", "urgent", Priority::Critical);
    let q = ask(&mut b);
    let input = DecisionInput::new("cut".into(), None, json!(null)).unwrap();
    let d = b
        .office
        .decide_question(
            &b.world.reg,
            &agent("orch"),
            &q,
            &input,
            DecisionMessage::Written(mid("d"), None),
            b.now,
        )
        .unwrap();
    b.apply(d.records);
    let first = b.consume("lead").unwrap();
    b.ack("lead", &first);
    b.consume("lead").unwrap();
    let w = b.office.wait(
        &agent("frontend"),
        "w".into(),
        b.now.plus_millis(9_000),
        vec![],
    );
    b.office.apply(w);

    let mut records = Vec::new();
    records.extend(b.office.records().iter().map(|r| (**r).clone()));
    let mut rebuilt = PostOffice::new(OfficeConfig::default());
    for r in records {
        rebuilt.apply(r);
    }
    assert_eq!(rebuilt.totals(), b.office.totals());
    assert_eq!(rebuilt.queue_size(), b.office.queue_size());
    assert_eq!(rebuilt.waiter("w"), b.office.waiter("w"));
    assert_eq!(rebuilt.question(&q), b.office.question(&q));
    let next = |o: &PostOffice| o.consume(&agent("lead"), b.now, &[]).map(|(_, d)| d);
    assert_eq!(next(&rebuilt), next(&b.office));
    assert_eq!(
        rebuilt.wait(&agent("lead"), "z".into(), b.now, vec![]),
        b.office.wait(&agent("lead"), "z".into(), b.now, vec![]),
        "positions continue where they were"
    );
}

#[test]
fn an_exhausted_agents_question_asks_its_orchestrator_for_scope() {
    let mut b = Bus::new();
    let refused = Draft {
        to: Some(agent("backend")),
        ..Draft::new(MessageType::Request, "more work")
    };
    let q = scope_question(
        &b.world.reg,
        &id("backend"),
        RefusedWork::Message {
            from: &agent("lead"),
            draft: &refused,
        },
        mid("q"),
        NOW,
    )
    .unwrap();
    assert_eq!(
        q.recipients,
        [Recipient::Agent(id("orch"))],
        "the nearest orchestrator"
    );
    assert_eq!(q.message.from, agent("backend"));
    assert!(q.message.requires_decision);
    assert_eq!(q.message.payload["reason"], SCOPE_REASON);
    assert_eq!(q.message.payload["budget"], 1_000);
    assert_eq!(q.message.payload["refused"]["subject"], "more work");

    // Posted, it is the agent's one open scope question (another refusal asks no more);
    // other questions, and other agents', are not.
    assert!(b.office.open_scope_question(&id("backend")).is_none());
    ask(&mut b);
    let post = b.office.post(q, b.now);
    b.apply(post.records);
    let open = b.office.open_scope_question(&id("backend")).unwrap();
    assert_eq!(open.question.id, mid("q"));
    assert!(b.office.open_scope_question(&id("architect")).is_none());
    assert!(b.office.open_scope_question(&id("lead")).is_none());
}

#[test]
fn a_refused_reservation_asks_for_scope_with_its_figures() {
    let b = Bus::new();
    let mission = crate::MissionId::new("M-1").unwrap();
    let q = scope_question(
        &b.world.reg,
        &id("backend"),
        RefusedWork::Reservation {
            by: &agent("backend"),
            reservation: &crate::ReservationId::new("r-1").unwrap(),
            requested: 5_000,
            remaining: 40,
            mission: Some(&mission),
        },
        mid("q"),
        NOW,
    )
    .unwrap();
    assert_eq!(q.recipients, [Recipient::Agent(id("orch"))]);
    let p = &q.message.payload;
    assert_eq!(
        (&p["reason"], &p["current_spend"], &p["budget"]),
        (&json!(SCOPE_REASON), &json!(0), &json!(1_000))
    );
    assert_eq!(p["refused"]["operation"], "reserve_tokens");
    assert_eq!(
        (&p["refused"]["requested"], &p["refused"]["remaining"]),
        (&json!(5_000), &json!(40))
    );
    assert_eq!(
        p["options"],
        json!(["reallocate_budget", "reduce_scope", "pause"])
    );
    assert_eq!(q.message.task_id, Some(mission));
    assert!(
        scope_question(
            &b.world.reg,
            &id("nobody"),
            RefusedWork::Reservation {
                by: &agent("nobody"),
                reservation: &crate::ReservationId::new("r-1").unwrap(),
                requested: 1,
                remaining: 0,
                mission: None,
            },
            mid("q2"),
            NOW,
        )
        .is_none()
    );
}

#[test]
fn a_consumer_may_take_only_some_types_and_leave_the_rest() {
    let mut b = Bus::new();
    b.request("architect", "a request first", Priority::Critical);
    let q = ask(&mut b);
    let input = DecisionInput::new("cut".into(), None, json!(null)).unwrap();
    let d = b
        .office
        .decide_question(
            &b.world.reg,
            &agent("orch"),
            &q,
            &input,
            DecisionMessage::Written(mid("d"), None),
            b.now,
        )
        .unwrap();
    b.apply(d.records);
    let only = [MessageType::Decision];
    let (record, got) = b.office.consume(&agent("architect"), b.now, &only).unwrap();
    assert_eq!(
        got.message.kind,
        MessageType::Decision,
        "past the CRITICAL request"
    );
    b.office.apply(record);
    assert!(
        b.office
            .consume(&agent("architect"), b.now, &only)
            .is_none()
    );
    // A waiter for decisions is not served a request, and is served a decision.
    let w = b.office.wait(
        &agent("architect"),
        "w".into(),
        b.now.plus_millis(5_000),
        only.to_vec(),
    );
    b.office.apply(w);
    assert!(
        b.office.revisit("w", b.now).is_none(),
        "the request is not for it"
    );
    let post = b.send(
        "orch",
        Draft {
            to: Some(agent("architect")),
            ..Draft::new(MessageType::Request, "another request")
        },
    );
    assert!(post.served.is_empty());
    // The request is still there for an unfiltered consumer.
    assert_eq!(
        b.consume("architect").unwrap().message.subject,
        "a request first"
    );
    assert_eq!(
        b.office.stats().queue_by_agent.get("architect"),
        Some(&3),
        "unacknowledged deliveries count"
    );
}

#[test]
fn waiters_whose_time_is_up_are_found_after_a_grace() {
    let mut b = Bus::new();
    let until = b.now.plus_millis(1_000);
    let w = b.office.wait(&agent("lead"), "w1".into(), until, vec![]);
    b.office.apply(w);
    let later = b.office.wait(
        &agent("backend"),
        "w2".into(),
        until.plus_millis(5_000),
        vec![],
    );
    b.office.apply(later);
    assert!(
        b.office.expired_waiters(until, 0).is_empty(),
        "at its time it may still be served"
    );
    assert_eq!(b.office.expired_waiters(until.plus_millis(1), 0), ["w1"]);
    assert!(
        b.office
            .expired_waiters(until.plus_millis(500), 500)
            .is_empty(),
        "within the grace its instance may still end it"
    );
    assert_eq!(
        b.office.expired_waiters(until.plus_millis(501), 500),
        ["w1"]
    );
}

#[test]
fn queues_count_unacknowledged_copies_per_inbox() {
    let mut b = Bus::new();
    b.request("lead", "one", Priority::Normal);
    b.request("lead", "two", Priority::Normal);
    b.request("backend", "three", Priority::Normal);
    assert_eq!(b.office.queue_len(&agent("lead")), 2);
    assert_eq!(b.office.queue_len(&agent("qa")), 0);
    let d = b.consume("backend").unwrap();
    b.ack("backend", &d);
    let queues: Vec<(String, usize)> = b.office.queues().map(|(o, n)| (o.to_string(), n)).collect();
    assert_eq!(
        queues,
        [("lead".to_owned(), 2)],
        "an emptied inbox is not listed"
    );
}

#[test]
fn a_stale_nak_changes_nothing() {
    let mut b = Bus::new();
    b.request("lead", "work", Priority::Normal);
    let first = b.consume("lead").unwrap();
    b.later(b.office.config().ack_wait_ms);
    let second = b.consume("lead").unwrap();
    assert_eq!(second.attempt, 2);
    // The first attempt's holder gives it back late: the second attempt is not disturbed.
    assert!(
        b.office
            .nak(&agent("lead"), &first.delivery_id, 0, b.now)
            .unwrap()
            .is_none()
    );
    let r = b
        .office
        .nak(&agent("lead"), &second.delivery_id, 0, b.now)
        .unwrap()
        .unwrap();
    b.office.apply(r);
    // Given back already: a second nak is a no-op.
    assert!(
        b.office
            .nak(&agent("lead"), &second.delivery_id, 0, b.now)
            .unwrap()
            .is_none()
    );
    assert_eq!(b.consume("lead").unwrap().attempt, 3);
}

#[test]
fn an_open_question_is_not_archived_however_old() {
    let mut b = Bus::new();
    let q = ask(&mut b);
    let d = b.consume("orch").unwrap();
    b.ack("orch", &d);
    b.later(b.office.config().retention_ms + 1);
    assert!(
        b.office.archive_due(b.now, 100).is_none(),
        "a question that needs a decision stays until decided"
    );
    assert!(b.office.question(&q).is_some());
}

#[test]
fn an_old_settled_question_needing_no_decision_is_archived() {
    let mut b = Bus::new();
    let q = Draft {
        requires_decision: false,
        ..Draft::new(MessageType::Question, "FYI: which logger?")
    };
    let id = b.send("architect", q).message.id;
    let d = b.consume("orch").unwrap();
    b.ack("orch", &d);
    b.later(b.office.config().retention_ms + 1);
    let Some(OfficeRecord::Archived { questions, .. }) = b.office.archive_due(b.now, 100) else {
        panic!("nothing archived");
    };
    assert_eq!(questions, [id]);
}

#[test]
fn a_nak_may_wait_the_longest_delay_and_no_longer() {
    let mut b = Bus::new();
    b.request("lead", "work", Priority::Normal);
    let d = b.consume("lead").unwrap();
    assert!(
        b.office
            .nak(&agent("lead"), &d.delivery_id, MAX_NAK_DELAY_MS, b.now)
            .is_ok()
    );
}

#[test]
fn a_conflict_open_already_is_not_asked_again() {
    let mut b = Bus::new();
    let task = crate::id::MissionId::new("m1").unwrap();
    let q = conflict_question(
        &b.world.reg,
        &id("backend"),
        "Conflict".into(),
        json!({"conflict": "handoff_of_a_task_not_held"}),
        Some(task.clone()),
        mid("c1"),
        NOW,
    );
    assert!(
        b.office
            .open_conflict_question(&id("backend"), &task, "handoff_of_a_task_not_held")
            .is_none()
    );
    let post = b.office.post(q, b.now);
    b.apply(post.records);
    let open = b
        .office
        .open_conflict_question(&id("backend"), &task, "handoff_of_a_task_not_held")
        .map(|q| q.question.id.clone());
    assert_eq!(open, Some(mid("c1")));
    // Another kind of conflict, another task or another agent is not that question.
    assert!(
        b.office
            .open_conflict_question(&id("backend"), &task, "two_claims_on_one_task")
            .is_none()
    );
    let other = crate::id::MissionId::new("m2").unwrap();
    assert!(
        b.office
            .open_conflict_question(&id("backend"), &other, "handoff_of_a_task_not_held")
            .is_none()
    );
    assert!(
        b.office
            .open_conflict_question(&id("lead"), &task, "handoff_of_a_task_not_held")
            .is_none()
    );
}
