//! The post office deciding commands: each rule bus-svc used to compose itself, decided
//! here and answered with effects (records, messages posted, audit records).

use serde_json::json;

use super::scenarios::{NOW, agent, mid, team};
use super::*;
use crate::agent::tests::{World, id};
use crate::agent::{Role, SpawnRequest};
use crate::audit::{AuditData, AuditKind};
use crate::{Effect, MissionId, Principal, Rejection};

fn task(s: &str) -> MissionId {
    MissionId::new(s).unwrap()
}

struct Desk {
    world: World,
    office: PostOffice,
}

impl Desk {
    fn new() -> Self {
        Self {
            world: team(),
            office: PostOffice::new(OfficeConfig::default()),
        }
    }

    fn decide(&self, by: &Principal, c: &Command) -> Result<Vec<BusEffect>, Rejection> {
        self.office.decide(&self.world.reg, by, c, NOW)
    }

    /// Decides and applies; returns the effects.
    fn run(&mut self, by: &Principal, c: &Command) -> Vec<BusEffect> {
        let effects = self.decide(by, c).unwrap();
        for e in &effects {
            if let Effect::Save(r) = e {
                self.office.apply(r.clone());
            }
        }
        effects
    }
}

fn posted(effects: &[BusEffect]) -> Vec<&Message> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Emit(Event::Posted { message, .. }) => Some(&**message),
            _ => None,
        })
        .collect()
}

fn audits(effects: &[BusEffect]) -> Vec<&crate::audit::Audit> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Audit(a) => Some(&**a),
            _ => None,
        })
        .collect()
}

fn send(to: &str, id: &str) -> Command {
    Command::Send {
        draft: Draft {
            to: Some(agent(to)),
            ..Draft::new(MessageType::Request, "do it")
        },
        id: mid(id),
        traceparent: Some("00-trace".into()),
    }
}

#[test]
fn a_send_posts_the_routed_message_and_a_retry_by_its_sender_changes_nothing() {
    let mut d = Desk::new();
    let effects = d.run(&agent("lead"), &send("backend", "m1"));
    let [m] = posted(&effects)[..] else {
        panic!("one message: {effects:?}");
    };
    assert_eq!(
        (m.id.as_str(), m.traceparent.as_deref()),
        ("m1", Some("00-trace"))
    );
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Save(OfficeRecord::Posted(_))))
    );
    assert!(audits(&effects).is_empty(), "a message is not audited");
    // The same sender again: its first receipt stands.
    assert_eq!(d.decide(&agent("lead"), &send("backend", "m1")), Ok(vec![]));
    // Anyone else's reuse of the id is refused, naming the field.
    let err = d
        .decide(&agent("orch"), &send("backend", "m1"))
        .unwrap_err();
    assert_eq!(err, Rejection::MessageExists { id: mid("m1") });
    assert_eq!(
        (err.rule(), err.field()),
        ("message_exists", Some("message_id"))
    );
}

#[test]
fn work_refused_for_an_exhausted_budget_asks_for_scope_and_nothing_else_does() {
    let mut d = Desk::new();
    d.world
        .run(
            &Principal::Operator,
            crate::agent::Command::Spawn(SpawnRequest {
                id: id("broke"),
                role: Role::Qa,
                capabilities: vec![],
                parent_id: Some(id("orch")),
                token_budget: 0,
                authority: None,
                public_key: None,
            }),
        )
        .unwrap();
    let refused = send("broke", "m1");
    let err = d.decide(&agent("lead"), &refused).unwrap_err();
    let (who, work) = refused.asks_for_scope(&err).expect("a scope question");
    assert_eq!(who, id("broke"));
    // Other refusals ask nothing.
    let unknown = send("ghost", "m2");
    let other = d.decide(&agent("lead"), &unknown).unwrap_err();
    assert_eq!(unknown.asks_for_scope(&other), None);
    assert_eq!(send("backend", "m3").asks_for_scope(&other), None);

    let ask = Command::AskForScope {
        agent: who,
        refused: work,
        id: mid("q1"),
        traceparent: None,
    };
    let effects = d.run(&agent("lead"), &ask);
    let [q] = posted(&effects)[..] else {
        panic!("one question: {effects:?}");
    };
    assert_eq!(
        (q.from.clone(), q.to.clone()),
        (agent("broke"), Recipient::Agent(id("orch")))
    );
    assert_eq!(q.payload["reason"], SCOPE_REASON);
    // One open scope question per agent: asking again adds nothing.
    let Command::AskForScope {
        agent: a, refused, ..
    } = ask
    else {
        unreachable!()
    };
    let again = Command::AskForScope {
        agent: a,
        refused,
        id: mid("q2"),
        traceparent: None,
    };
    assert_eq!(d.decide(&agent("lead"), &again), Ok(vec![]));
}

#[test]
fn a_spawn_cap_refusal_asks_once_per_agent_and_cap_beside_a_budget_question() {
    let mut d = Desk::new();
    let cap = |cap: crate::agent::SpawnCap, q: &str| Command::AskForScope {
        agent: id("backend"),
        refused: ScopeRequest::Spawn(SpawnRefused {
            child: id("helper"),
            holder: id("backend"),
            cap,
            limit: 3,
            current: 3,
            by: agent("backend"),
        }),
        id: mid(q),
        traceparent: None,
    };
    let effects = d.run(
        &agent("backend"),
        &cap(crate::agent::SpawnCap::MaxDescendants, "c1"),
    );
    let [q] = posted(&effects)[..] else {
        panic!("one question: {effects:?}");
    };
    assert_eq!(
        (q.from.clone(), q.to.clone()),
        (agent("backend"), Recipient::Agent(id("orch")))
    );
    assert!(q.requires_decision);
    assert_eq!(q.payload["reason"], "descendants_exhausted");
    assert_eq!(q.payload["refused"]["child"], "helper");
    assert_eq!(
        (&q.payload["limit"], &q.payload["current"]),
        (&json!(3), &json!(3))
    );
    // The same cap again asks nothing while the question is open; another cap asks.
    assert_eq!(
        d.decide(
            &agent("backend"),
            &cap(crate::agent::SpawnCap::MaxDescendants, "c2")
        ),
        Ok(vec![])
    );
    let effects = d.run(
        &agent("backend"),
        &cap(crate::agent::SpawnCap::MaxDepth, "c3"),
    );
    assert_eq!(posted(&effects).len(), 1, "another cap is another question");
    // A budget question of the same agent is its own reason too.
    assert!(d.office.open_scope_question(&id("backend")).is_none());
}

#[test]
fn a_handoff_conflict_asks_the_orchestrator_once_and_is_audited() {
    let mut d = Desk::new();
    let escalate = Command::EscalateHandoff {
        from: id("backend"),
        task: task("t1"),
        holder: Some(id("frontend")),
        to: id("lead"),
        id: mid("c1"),
        traceparent: None,
    };
    let effects = d.run(&agent("backend"), &escalate);
    let [q] = posted(&effects)[..] else {
        panic!("one question: {effects:?}");
    };
    assert_eq!(q.priority, Priority::Critical);
    // The nearest orchestrator above the sender.
    assert_eq!(q.to, Recipient::Agent(id("orch")));
    assert_eq!(
        q.payload["conflict"],
        Conflict::HandoffOfATaskNotHeld.as_str()
    );
    let [a] = audits(&effects)[..] else {
        panic!("one audit record: {effects:?}");
    };
    assert_eq!((a.kind, a.about.as_str()), (AuditKind::Conflict, "t1"));
    assert_eq!(a.actor, agent("backend"));
    assert!(matches!(&a.data, AuditData::Facts(f) if f["holder"] == "frontend"));
    let again = Command::EscalateHandoff {
        from: id("backend"),
        task: task("t1"),
        holder: Some(id("frontend")),
        to: id("lead"),
        id: mid("c2"),
        traceparent: None,
    };
    assert_ne!(again, escalate);
    assert_eq!(d.decide(&agent("backend"), &again), Ok(vec![]));
}

#[test]
fn each_ruling_is_audited_as_its_kind_and_an_unchanged_one_not_at_all() {
    assert_eq!(
        ruling_audit_kind(RulingKind::Decided),
        Some(AuditKind::Decision)
    );
    assert_eq!(
        ruling_audit_kind(RulingKind::Completed),
        Some(AuditKind::DecisionCompleted)
    );
    assert_eq!(
        ruling_audit_kind(RulingKind::Overridden),
        Some(AuditKind::DecisionOverride)
    );
    assert_eq!(ruling_audit_kind(RulingKind::Unchanged), None);

    let mut d = Desk::new();
    let ask = Command::Send {
        draft: Draft {
            requires_decision: true,
            ..Draft::new(MessageType::Question, "which db?")
        },
        id: mid("q1"),
        traceparent: None,
    };
    d.run(&agent("backend"), &ask);
    let decide = |choice: &str, id: &str| Command::Decide {
        question: mid("q1"),
        input: DecisionInput::new(choice.into(), None, json!(null)).unwrap(),
        reply: None,
        id: mid(id),
        traceparent: None,
    };
    let effects = d.run(&agent("orch"), &decide("postgres", "d1"));
    let [a] = audits(&effects)[..] else {
        panic!("one audit record: {effects:?}");
    };
    assert_eq!((a.kind, a.about.as_str()), (AuditKind::Decision, "q1"));
    assert!(matches!(&a.data, AuditData::Decision(r) if r.choice == "postgres"));
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Emit(Event::Ruled {
            kind: RulingKind::Decided,
            ..
        })
    )));
    assert_eq!(posted(&effects).len(), 1, "the DECISION goes to the asker");
    // The same call again changes nothing and is not audited.
    let effects = d.run(&agent("orch"), &decide("postgres", "d2"));
    assert!(audits(&effects).is_empty(), "{effects:?}");
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Emit(Event::Ruled {
            kind: RulingKind::Unchanged,
            ..
        })
    )));
}

#[test]
fn an_overdue_question_escalates_under_a_derived_id_and_is_audited() {
    let mut d = Desk::new();
    let ask = Command::Send {
        draft: Draft {
            requires_decision: true,
            ..Draft::new(MessageType::Question, "which db?")
        },
        id: mid("q1"),
        traceparent: None,
    };
    d.run(&agent("backend"), &ask);
    let later = NOW.plus_millis(d.office.config().decision_deadline_ms + 1);
    let effects = d
        .office
        .decide(
            &d.world.reg,
            &Principal::Operator,
            &Command::EscalateOverdue,
            later,
        )
        .unwrap();
    let [m] = posted(&effects)[..] else {
        panic!("one escalation: {effects:?}");
    };
    assert_eq!(m.id, escalation_id(&mid("q1"), 1));
    assert_eq!(m.id.as_str(), "q1-esc-1");
    let [a] = audits(&effects)[..] else {
        panic!("one audit record: {effects:?}");
    };
    assert_eq!(
        (a.kind, &a.actor),
        (AuditKind::Escalation, &agent("backend"))
    );
    assert!(matches!(&a.data, AuditData::Facts(f) if f["level"] == 1));
    assert_eq!(escalation_id(&mid("q1"), 2).as_str(), "q1-esc-2");
}

#[test]
fn mission_events_become_messages_once_under_ids_derived_from_the_event() {
    let mut d = Desk::new();
    let at = crate::Timestamp::from_millis(42);
    let claim = crate::mission::Event::ClaimConflict {
        mission_id: task("t1"),
        holder: id("frontend"),
        claimant: id("backend"),
        by: agent("backend"),
        at,
    };
    assert_eq!(reaction_id(&claim).unwrap(), Some(mid("claim-t1-42")));
    let effects = d.run(
        &Principal::Service(crate::Service::Bus),
        &Command::React(Box::new(claim.clone())),
    );
    let [q] = posted(&effects)[..] else {
        panic!("one question: {effects:?}");
    };
    assert_eq!(q.id, mid("claim-t1-42"));
    assert_eq!(q.payload["conflict"], Conflict::TwoClaimsOnOneTask.as_str());
    let [a] = audits(&effects)[..] else {
        panic!("one audit record: {effects:?}");
    };
    assert_eq!(
        (a.kind, &a.actor, a.about.as_str()),
        (AuditKind::Conflict, &agent("backend"), "t1")
    );
    // Redelivered: nothing more. Another claim while that one is open: nothing either.
    let bus = Principal::Service(crate::Service::Bus);
    assert_eq!(d.decide(&bus, &Command::React(Box::new(claim))), Ok(vec![]));
    let later = crate::mission::Event::ClaimConflict {
        mission_id: task("t1"),
        holder: id("frontend"),
        claimant: id("backend"),
        by: agent("backend"),
        at: crate::Timestamp::from_millis(43),
    };
    assert_eq!(d.decide(&bus, &Command::React(Box::new(later))), Ok(vec![]));

    let failed = crate::mission::Event::Failed {
        mission_id: task("t2"),
        reason: "gave up".into(),
        caused_by: None,
        dependents: vec![],
        at,
    };
    assert_eq!(reaction_id(&failed).unwrap(), Some(mid("failed-t2")));
    let effects = d.run(&bus, &Command::React(Box::new(failed)));
    assert_eq!(posted(&effects)[0].kind, MessageType::Alert);
    assert_eq!(
        (audits(&effects)[0].kind, &audits(&effects)[0].actor),
        (AuditKind::Escalation, &bus)
    );
    // Events the bus does not react to change nothing.
    let ready = crate::mission::Event::Ready {
        mission_id: task("t3"),
        phase: crate::Phase::DEVELOPMENT,
        assigned_agent_id: None,
        at,
    };
    assert_eq!(reaction_id(&ready).unwrap(), None);
    assert_eq!(d.decide(&bus, &Command::React(Box::new(ready))), Ok(vec![]));
}

#[test]
fn replies_and_deliveries_that_are_someone_elses_are_refused_without_a_denial() {
    let mut d = Desk::new();
    d.run(&agent("lead"), &send("backend", "m1"));
    let reply = Command::Send {
        draft: Draft {
            in_reply_to: Some(mid("m1")),
            ..Draft::new(MessageType::Reply, "Re: do it")
        },
        id: mid("r1"),
        traceparent: None,
    };
    let err = d.decide(&agent("frontend"), &reply).unwrap_err();
    assert!(
        matches!(
            err,
            Rejection::NotYours {
                action: "reply",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.rule(), "forbidden_action");
    assert_eq!(err.kind(), crate::RejectionKind::Forbidden);
    assert!(err.denial(&agent("frontend"), None, NOW).is_none());
    let ack = Command::Ack {
        delivery_id: "m1.backend.1".into(),
    };
    let err = d.decide(&agent("frontend"), &ack).unwrap_err();
    assert!(
        matches!(err, Rejection::NotYours { action: "ack", .. }),
        "{err:?}"
    );
    // A routing refusal by the authority matrix is a denial.
    let forbidden = Rejection::Forbidden {
        actor: "x".into(),
        action: "send_request".into(),
        reason: "r".into(),
    };
    assert!(forbidden.denial(&agent("x"), None, NOW).is_some());
}

#[test]
fn consume_delivers_or_waits_and_a_revisit_ends_the_wait_when_its_time_is_up() {
    let mut d = Desk::new();
    let until = NOW.plus_millis(1_000);
    let consume = Command::Consume {
        kinds: vec![],
        wait: Some(Wait {
            id: "w1".into(),
            until,
        }),
    };
    let effects = d.run(&agent("backend"), &consume);
    assert!(
        matches!(effects[..], [Effect::Save(OfficeRecord::Waiting(_))]),
        "{effects:?}"
    );
    let look = Command::Revisit {
        waiter: "w1".into(),
        stopping: false,
    };
    assert_eq!(
        d.decide(&agent("backend"), &look),
        Ok(vec![]),
        "still waiting"
    );
    let stop = Command::Revisit {
        waiter: "w1".into(),
        stopping: true,
    };
    let effects = d.run(&agent("backend"), &stop);
    assert!(
        matches!(effects[..], [Effect::Save(OfficeRecord::Left { .. })]),
        "{effects:?}"
    );
    assert_eq!(d.decide(&agent("backend"), &look), Ok(vec![]), "gone");
    // A message waiting is handed over at once.
    d.run(&agent("lead"), &send("backend", "m1"));
    let effects = d.run(
        &agent("backend"),
        &Command::Consume {
            kinds: vec![],
            wait: None,
        },
    );
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Emit(Event::Delivered(d)) if d.message.id == mid("m1")))
    );
}

#[test]
fn a_batch_decides_each_command_against_the_effects_before_it() {
    let d = Desk::new();
    let mut batch = Batch::new(&d.office);
    batch
        .decide(&d.world.reg, &agent("lead"), &send("backend", "m1"), NOW)
        .unwrap();
    // The second send of the same id sees the first, uncommitted: a retry, or refused.
    assert!(
        batch
            .decide(&d.world.reg, &agent("lead"), &send("backend", "m1"), NOW)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        batch
            .decide(&d.world.reg, &agent("orch"), &send("backend", "m1"), NOW)
            .unwrap_err(),
        Rejection::MessageExists { id: mid("m1") }
    );
    // A consume in the same batch is handed the message the batch posted.
    let got = batch
        .decide(
            &d.world.reg,
            &agent("backend"),
            &Command::Consume {
                kinds: vec![],
                wait: None,
            },
            NOW,
        )
        .unwrap()
        .to_vec();
    assert!(
        got.iter()
            .any(|e| matches!(e, Effect::Emit(Event::Delivered(x)) if x.message.id == mid("m1")))
    );
    assert!(d.office.message(&mid("m1")).is_none(), "nothing committed");
    let effects = batch.into_effects();
    let saved = effects
        .iter()
        .filter(|e| matches!(e, Effect::Save(_)))
        .count();
    assert_eq!(saved, 2, "the post and the delivery: {effects:?}");
}
