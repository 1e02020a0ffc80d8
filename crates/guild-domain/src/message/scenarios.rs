//! Routing and decision rules.

use serde_json::json;

use super::*;
use crate::agent::tests::{World, id};
use crate::agent::{Authority, Command, Role, SpawnRequest};
use crate::{MessageId, Principal, Rejection, Timestamp};

pub(super) const NOW: Timestamp = Timestamp(5_000);

pub(super) fn agent(s: &str) -> Principal {
    Principal::Agent(id(s))
}

pub(super) fn mid(s: &str) -> MessageId {
    MessageId::new(s).unwrap()
}

/// orch (orchestrator) -> lead (developer) -> {backend, frontend}; architect under orch.
pub(super) fn team() -> World {
    let mut w = World::safe();
    w.spawn(
        &Principal::Operator,
        "orch",
        Role::Orchestrator,
        None,
        100_000,
    )
    .unwrap();
    w.spawn(
        &agent("orch"),
        "lead",
        Role::Developer,
        Some("orch"),
        10_000,
    )
    .unwrap();
    w.spawn(
        &agent("orch"),
        "architect",
        Role::Architect,
        Some("orch"),
        10_000,
    )
    .unwrap();
    w.spawn(
        &agent("lead"),
        "backend",
        Role::Developer,
        Some("lead"),
        1_000,
    )
    .unwrap();
    w.spawn(
        &agent("lead"),
        "frontend",
        Role::Developer,
        Some("lead"),
        1_000,
    )
    .unwrap();
    w
}

fn route(w: &World, from: &Principal, d: &Draft) -> Result<Routed, Rejection> {
    address(&w.reg, from, d, None, mid("m1"), NOW)
}

#[test]
fn a_decision_deadline_is_for_questions_that_need_a_decision_and_within_bounds() {
    let w = team();
    let with = |kind, requires_decision, ms| Draft {
        to: Some(agent("lead")),
        requires_decision,
        decision_deadline_ms: Some(ms),
        ..Draft::new(kind, "when?")
    };
    let from = agent("backend");
    for (draft, why) in [
        (
            with(MessageType::Question, false, 5_000),
            "no decision needed",
        ),
        (with(MessageType::Request, true, 5_000), "not a question"),
        (with(MessageType::Question, true, 999), "under 1 s"),
        (
            with(MessageType::Question, true, 7 * 24 * 3_600_000 + 1),
            "over 7 days",
        ),
    ] {
        let e = route(&w, &from, &draft).unwrap_err();
        assert_eq!(e.field(), Some("decision_deadline_ms"), "{why}: {e}");
    }
    let ok = route(&w, &from, &with(MessageType::Question, true, 1_000)).unwrap();
    assert_eq!(ok.message.decision_deadline_ms, Some(1_000));
}

#[test]
fn a_question_goes_to_the_nearest_orchestrator_by_default() {
    let w = team();
    let q = Draft {
        requires_decision: true,
        ..Draft::new(MessageType::Question, "OAuth or JWT?")
    };
    let r = route(&w, &agent("backend"), &q).unwrap();
    assert_eq!(r.recipients, vec![Recipient::Agent(id("orch"))]);
    assert_eq!(r.message.priority, Priority::High);
    assert!(r.message.requires_decision);
}

#[test]
fn a_question_may_name_who_answers_it() {
    let w = team();
    let q = Draft {
        to: Some(agent("architect")),
        ..Draft::new(MessageType::Question, "Schema approved?")
    };
    let r = route(&w, &agent("backend"), &q).unwrap();
    assert_eq!(r.recipients, vec![Recipient::Agent(id("architect"))]);
}

#[test]
fn a_root_orchestrators_question_goes_to_the_operator() {
    let w = team();
    let r = route(
        &w,
        &agent("orch"),
        &Draft::new(MessageType::Question, "Extend timeline?"),
    )
    .unwrap();
    assert_eq!(r.recipients, vec![Recipient::Operator]);
}

#[test]
fn an_alert_reaches_every_live_agent_but_the_sender() {
    let mut w = team();
    w.run(
        &agent("orch"),
        Command::Terminate {
            agent: id("architect"),
            subtree: false,
            failed: false,
            reason: None,
        },
    )
    .unwrap();
    let alert = Draft {
        is_critical: true,
        ..Draft::new(MessageType::Alert, "SQL injection")
    };
    let r = route(&w, &agent("frontend"), &alert).unwrap();
    assert_eq!(r.message.priority, Priority::Critical);
    assert_eq!(r.message.to, Recipient::All);
    let mut got: Vec<_> = r.recipients.iter().map(ToString::to_string).collect();
    got.sort();
    assert_eq!(got, ["backend", "lead", "orch"]);
    let plain = route(
        &w,
        &agent("frontend"),
        &Draft::new(MessageType::Alert, "API changed"),
    )
    .unwrap();
    assert_eq!(plain.message.priority, Priority::High);
    let addressed = Draft {
        to: Some(agent("orch")),
        ..Draft::new(MessageType::Alert, "x")
    };
    assert_eq!(
        route(&w, &agent("frontend"), &addressed)
            .unwrap_err()
            .field(),
        Some("to")
    );
}

#[test]
fn requests_and_handoffs_need_a_live_addressee_and_handoffs_a_task() {
    let mut w = team();
    let req = Draft::new(MessageType::Request, "Code review needed");
    assert_eq!(
        route(&w, &agent("lead"), &req).unwrap_err().field(),
        Some("to")
    );
    let req = Draft {
        to: Some(agent("ghost")),
        ..req
    };
    assert_eq!(
        route(&w, &agent("lead"), &req).unwrap_err().rule(),
        "unknown_agent"
    );
    let handoff = Draft {
        to: Some(agent("backend")),
        ..Draft::new(MessageType::Handoff, "take over")
    };
    assert_eq!(
        route(&w, &agent("frontend"), &handoff).unwrap_err().field(),
        Some("task_id")
    );
    w.run(
        &agent("lead"),
        Command::Terminate {
            agent: id("backend"),
            subtree: false,
            failed: false,
            reason: None,
        },
    )
    .unwrap();
    let handoff = Draft {
        task_id: Some(crate::MissionId::new("M-006").unwrap()),
        ..handoff
    };
    assert_eq!(
        route(&w, &agent("frontend"), &handoff).unwrap_err().rule(),
        "agent_not_live"
    );
}

#[test]
fn work_is_refused_for_an_agent_without_tokens() {
    let mut w = team();
    w.run(
        &Principal::Operator,
        Command::Spawn(SpawnRequest {
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
    let req = Draft {
        to: Some(agent("broke")),
        ..Draft::new(MessageType::Request, "test this")
    };
    let err = route(&w, &agent("lead"), &req).unwrap_err();
    assert_eq!(err, Rejection::BudgetExhausted { id: id("broke") });
    // A question still reaches it: asking costs the receiver nothing.
    let q = Draft {
        to: Some(agent("broke")),
        ..Draft::new(MessageType::Question, "status?")
    };
    assert!(route(&w, &agent("lead"), &q).is_ok());
}

#[test]
fn forbidden_actions_block_sending() {
    let mut w = team();
    let mut auth = Authority::default_for(&Role::Qa);
    auth.forbidden_actions = ["send_critical", "raise_alert"].map(String::from).into();
    w.run(
        &agent("orch"),
        Command::Spawn(SpawnRequest {
            id: id("qa"),
            role: Role::Qa,
            capabilities: vec![],
            parent_id: Some(id("orch")),
            token_budget: 10,
            authority: Some(auth),
            public_key: None,
        }),
    )
    .unwrap();
    let critical_req = Draft {
        to: Some(agent("lead")),
        priority: Some(Priority::Critical),
        ..Draft::new(MessageType::Request, "now!")
    };
    let err = route(&w, &agent("qa"), &critical_req).unwrap_err();
    assert!(
        matches!(&err, Rejection::Forbidden { action, .. } if action == "send_critical"),
        "{err}"
    );
    let err = route(&w, &agent("qa"), &Draft::new(MessageType::Alert, "x")).unwrap_err();
    assert!(matches!(&err, Rejection::Forbidden { action, .. } if action == "raise_alert"));
    let normal = Draft {
        priority: None,
        ..critical_req
    };
    assert!(route(&w, &agent("qa"), &normal).is_ok());
}

#[test]
fn replies_go_back_to_the_original_sender() {
    let w = team();
    let reply = Draft {
        in_reply_to: Some(mid("q1")),
        ..Draft::new(MessageType::Reply, "approved")
    };
    let original = (MessageType::Question, agent("backend"));
    let r = address(
        &w.reg,
        &agent("architect"),
        &reply,
        Some((&original.0, &original.1)),
        mid("r1"),
        NOW,
    )
    .unwrap();
    assert_eq!(r.recipients, vec![Recipient::Agent(id("backend"))]);
    assert_eq!(r.message.priority, Priority::Normal);
    let err = address(&w.reg, &agent("architect"), &reply, None, mid("r1"), NOW).unwrap_err();
    assert_eq!(err, Rejection::UnknownMessage { id: mid("q1") });
    let orphan = Draft {
        in_reply_to: None,
        ..reply.clone()
    };
    assert_eq!(
        route(&w, &agent("architect"), &orphan).unwrap_err().field(),
        Some("in_reply_to")
    );
    let decision = Draft {
        kind: MessageType::Decision,
        ..reply
    };
    let req = (MessageType::Request, agent("backend"));
    let err = address(
        &w.reg,
        &agent("architect"),
        &decision,
        Some((&req.0, &req.1)),
        mid("d1"),
        NOW,
    )
    .unwrap_err();
    assert_eq!(err.rule(), "not_a_question");
}

#[test]
fn subjects_are_checked() {
    let w = team();
    let blank = Draft {
        to: Some(agent("lead")),
        ..Draft::new(MessageType::Request, "  ")
    };
    assert_eq!(
        route(&w, &agent("orch"), &blank).unwrap_err().field(),
        Some("subject")
    );
    let long = Draft {
        to: Some(agent("lead")),
        ..Draft::new(MessageType::Request, "x".repeat(MAX_SUBJECT_CHARS + 1))
    };
    assert_eq!(
        route(&w, &agent("orch"), &long).unwrap_err().field(),
        Some("subject")
    );
}

#[test]
fn a_dead_sender_cannot_send() {
    let mut w = team();
    w.run(
        &agent("lead"),
        Command::Terminate {
            agent: id("frontend"),
            subtree: false,
            failed: false,
            reason: None,
        },
    )
    .unwrap();
    let err = route(&w, &agent("frontend"), &Draft::new(MessageType::Alert, "x")).unwrap_err();
    assert!(err.to_string().contains("COMPLETED"), "{err}");
}

fn asked(w: &World) -> QuestionState {
    let q = Draft {
        requires_decision: true,
        payload: json!({"options": ["cut_feature_X", "extend_timeline"]}),
        ..Draft::new(MessageType::Question, "Scope reduction needed?")
    };
    QuestionState::asked(
        address(&w.reg, &agent("lead"), &q, None, mid("msg-xyz"), NOW)
            .unwrap()
            .message,
    )
}

#[test]
fn the_seeds_reply_then_record_sequence_is_one_decision() {
    let w = team();
    let q = asked(&w);
    let orch = agent("orch");
    let reply = DecisionInput::from_reply_payload(
        &json!({"decision": "cut_feature_X", "reason": "token_overbudget"}),
    )
    .unwrap();
    let first = q.rule(&orch, true, &reply, NOW).unwrap();
    assert_eq!(first.kind, RulingKind::Decided);
    assert!(first.delivers() && first.records());
    let record = DecisionInput::new(
        "cut_feature_X".into(),
        Some("Token budget constraints".into()),
        json!({"scope_reduction": "15%"}),
    )
    .unwrap();
    let second = first
        .state
        .rule(&orch, true, &record, NOW.plus_millis(5))
        .unwrap();
    assert_eq!(second.kind, RulingKind::Completed);
    assert!(!second.delivers(), "the asker already has the decision");
    let d = second.state.decision.clone().unwrap();
    assert_eq!(d.rationale.as_deref(), Some("Token budget constraints"));
    assert_eq!(d.impact, json!({"scope_reduction": "15%"}));
    assert_eq!(d.completed_at, Some(NOW.plus_millis(5)));
    assert!(second.state.superseded.is_empty());
    let third = second
        .state
        .rule(&orch, true, &record, NOW.plus_millis(9))
        .unwrap();
    assert_eq!(third.kind, RulingKind::Unchanged);
    assert!(!third.records() && !third.delivers());
}

#[test]
fn a_second_decision_needs_override_authority_and_names_the_first() {
    let w = team();
    let q = asked(&w);
    let choice = |c: &str| DecisionInput::new(c.into(), None, serde_json::Value::Null).unwrap();
    let first = q
        .rule(&agent("orch"), true, &choice("extend_timeline"), NOW)
        .unwrap();
    // The addressee itself may not change its mind without override authority.
    let err = first
        .state
        .rule(&agent("orch"), false, &choice("cut_feature_X"), NOW)
        .unwrap_err();
    assert!(matches!(err, Rejection::AlreadyDecided { .. }));
    let over = first
        .state
        .rule(
            &agent("orch"),
            true,
            &choice("cut_feature_X"),
            NOW.plus_millis(1),
        )
        .unwrap();
    assert_eq!(over.kind, RulingKind::Overridden);
    assert!(over.delivers());
    let d = over.state.decision.unwrap();
    assert_eq!(d.overrides.unwrap().choice, "extend_timeline");
    assert_eq!(over.state.superseded.len(), 1);
}

#[test]
fn no_agent_overrides_the_operators_decision() {
    let w = team();
    let q = asked(&w);
    let choice = |c: &str| DecisionInput::new(c.into(), None, serde_json::Value::Null).unwrap();
    let by_operator = q
        .rule(&Principal::Operator, false, &choice("ship"), NOW)
        .unwrap();
    let err = by_operator
        .state
        .rule(&agent("orch"), true, &choice("wait"), NOW.plus_millis(1))
        .unwrap_err();
    assert_eq!(err.rule(), "forbidden_action");
    assert!(err.to_string().contains("only the operator"), "{err}");
    // The operator may change its own mind.
    let again = by_operator
        .state
        .rule(
            &Principal::Operator,
            false,
            &choice("wait"),
            NOW.plus_millis(2),
        )
        .unwrap();
    assert_eq!(again.kind, RulingKind::Overridden);
}

#[test]
fn only_the_addressee_an_overrider_or_the_operator_decides() {
    let w = team();
    let q = asked(&w);
    let c = DecisionInput::new("x".into(), None, serde_json::Value::Null).unwrap();
    let err = q.rule(&agent("backend"), false, &c, NOW).unwrap_err();
    assert_eq!(err.rule(), "forbidden_action");
    assert!(q.rule(&Principal::Operator, false, &c, NOW).is_ok());
    assert!(q.rule(&agent("architect"), true, &c, NOW).is_ok());
}

#[test]
fn reply_payloads_must_carry_a_choice() {
    let err = DecisionInput::from_reply_payload(&json!({"reason": "x"})).unwrap_err();
    assert_eq!(err.field(), Some("payload.decision"));
    let ok =
        DecisionInput::from_reply_payload(&json!({"choice": " proceed ", "rationale": "fine"}))
            .unwrap();
    assert_eq!(
        (ok.choice.as_str(), ok.rationale.as_deref()),
        ("proceed", Some("fine"))
    );
}

#[test]
fn an_undecided_question_escalates_up_to_the_operator() {
    let w = team();
    let q = Draft {
        to: Some(agent("lead")),
        requires_decision: true,
        ..Draft::new(MessageType::Question, "?")
    };
    let mut state = QuestionState::asked(
        address(&w.reg, &agent("backend"), &q, None, mid("q"), NOW)
            .unwrap()
            .message,
    );
    assert_eq!(
        state.escalation(&w.reg, NOW.plus_millis(120_000), 120_000),
        None,
        "not yet due"
    );
    let due = NOW.plus_millis(120_001);
    assert_eq!(
        state.escalation(&w.reg, due, 120_000),
        Some(Recipient::Agent(id("orch")))
    );
    state.escalations.push(Escalation {
        to: Recipient::Agent(id("orch")),
        at: due,
        message_id: mid("e1"),
    });
    assert_eq!(
        state.escalation(&w.reg, due.plus_millis(120_001), 120_000),
        Some(Recipient::Operator)
    );
    assert!(
        state.may_decide(&agent("orch"), false),
        "whoever it was escalated to may decide"
    );
    state.escalations.push(Escalation {
        to: Recipient::Operator,
        at: due,
        message_id: mid("e2"),
    });
    assert_eq!(
        state.escalation(&w.reg, due.plus_millis(999_999), 120_000),
        None,
        "the operator is the top"
    );
}

#[test]
fn questions_without_requires_decision_never_escalate() {
    let w = team();
    let q = Draft::new(MessageType::Question, "fyi?");
    let state = QuestionState::asked(
        address(&w.reg, &agent("backend"), &q, None, mid("q"), NOW)
            .unwrap()
            .message,
    );
    assert_eq!(
        state.escalation(&w.reg, NOW.plus_millis(10_000_000), 1),
        None
    );
}

#[test]
fn a_subject_of_exactly_the_limit_is_accepted() {
    let w = team();
    let d = Draft {
        to: Some(agent("lead")),
        ..Draft::new(
            MessageType::Request,
            "x".repeat(crate::message::MAX_SUBJECT_CHARS),
        )
    };
    assert!(route(&w, &agent("orch"), &d).is_ok());
}

#[test]
fn a_plain_reply_may_answer_any_message_type() {
    let w = team();
    let reply = Draft {
        in_reply_to: Some(mid("r1")),
        ..Draft::new(MessageType::Reply, "done")
    };
    for original in [
        MessageType::Request,
        MessageType::Handoff,
        MessageType::Alert,
    ] {
        let from = agent("lead");
        let r = address(
            &w.reg,
            &agent("backend"),
            &reply,
            Some((&original, &from)),
            mid("x"),
            NOW,
        )
        .unwrap();
        assert_eq!(
            r.recipients,
            vec![Recipient::Agent(id("lead"))],
            "{original}"
        );
    }
    // A reply to the operator's message goes to the operator.
    let r = address(
        &w.reg,
        &agent("backend"),
        &reply,
        Some((&MessageType::Request, &Principal::Operator)),
        mid("y"),
        NOW,
    )
    .unwrap();
    assert_eq!(r.recipients, vec![Recipient::Operator]);
}

#[test]
fn names_display_as_the_wire_spells_them() {
    assert_eq!(MessageType::Handoff.to_string(), "handoff");
    assert_eq!(Priority::Critical.to_string(), "CRITICAL");
    assert_eq!(Priority::Low.as_str(), "low");
    assert_eq!(agent("qa-1").to_string(), "qa-1");
    assert_eq!(Principal::Operator.to_string(), "operator");
    assert_eq!(Recipient::All.to_string(), "*");
}

#[test]
fn a_message_that_waited_exactly_its_limit_is_not_yet_starved() {
    let p = StarvationPolicy::default();
    let now = Timestamp(1_000_000);
    let at = |ms: u64| Some(Timestamp(now.0 - ms));
    assert_eq!(
        next_priority(&[None, at(1), None, at(p.low_max_wait_ms)], now, &p),
        Some(Priority::High)
    );
    assert_eq!(
        next_priority(&[None, at(1), None, at(p.low_max_wait_ms + 1)], now, &p),
        Some(Priority::Low)
    );
}
