//! The typed router: each operation declared once binds its handler method, so a service
//! that lacks a method for one of its operations, or has one for no operation, does not
//! compile (`tests/ui/*.rs`, each with the compiler's refusal in its `.stderr`; after a
//! compiler upgrade changes the wording, `TRYBUILD=overwrite` writes them again). And the
//! generated route decodes by the operation's request type, calls its method, and encodes
//! the reply or the refusal.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::task::{Context, Poll, Waker};

use guild_wire::api::bus::{self as api, Handler, Routes};
use guild_wire::api::{Empty, Failure, Router};
use guild_wire::audit::VerifyReport;
use guild_wire::domain::{AgentId, Principal, Rejection};
use guild_wire::{ErrorBody, ErrorCode};

#[test]
fn a_handler_must_match_its_services_operations_exactly() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}

/// A bus whose every operation is refused by a rule, but `export_decisions`.
struct Refusing;

fn refused<T>() -> Result<T, Failure> {
    Err(Rejection::UnknownAgent { id: ghost() }.into())
}

fn ghost() -> AgentId {
    AgentId::new("ghost").unwrap()
}

impl Handler for Refusing {
    async fn request(&self, _: Principal, _: api::SendRequest) -> Result<api::Receipt, Failure> {
        refused()
    }
    async fn ask_question(
        &self,
        _: Principal,
        _: api::AskQuestion,
    ) -> Result<api::Receipt, Failure> {
        refused()
    }
    async fn alert(&self, _: Principal, _: api::RaiseAlert) -> Result<api::Receipt, Failure> {
        refused()
    }
    async fn handoff(&self, _: Principal, _: api::Handoff) -> Result<api::Receipt, Failure> {
        refused()
    }
    async fn reply(&self, _: Principal, _: api::Reply) -> Result<api::Receipt, Failure> {
        refused()
    }
    async fn record_decision(
        &self,
        _: Principal,
        _: api::RecordDecision,
    ) -> Result<api::DecisionOutcome, Failure> {
        refused()
    }
    async fn consume(&self, _: Principal, _: api::Consume) -> Result<api::Consumed, Failure> {
        refused()
    }
    async fn ack(&self, _: Principal, _: api::Ack) -> Result<Empty, Failure> {
        refused()
    }
    async fn nak(&self, _: Principal, _: api::Nak) -> Result<Empty, Failure> {
        refused()
    }
    async fn get_message_stats(
        &self,
        _: Principal,
        _: Empty,
    ) -> Result<api::MessageStats, Failure> {
        refused()
    }
    async fn decision_history(
        &self,
        _: Principal,
        _: api::DecisionQuery,
    ) -> Result<api::DecisionList, Failure> {
        refused()
    }
    async fn verify_audit(&self, _: Principal, _: Empty) -> Result<VerifyReport, Failure> {
        refused()
    }
    async fn get_question(
        &self,
        _: Principal,
        _: api::QuestionRef,
    ) -> Result<guild_domain::message::QuestionState, Failure> {
        refused()
    }
    async fn list_questions(
        &self,
        _: Principal,
        _: api::QuestionQuery,
    ) -> Result<api::QuestionList, Failure> {
        refused()
    }
    async fn audit_records(
        &self,
        _: Principal,
        _: api::AuditQuery,
    ) -> Result<api::AuditRecords, Failure> {
        refused()
    }
    async fn export_decisions(
        &self,
        by: Principal,
        q: api::DecisionQuery,
    ) -> Result<api::MarkdownExport, Failure> {
        Ok(api::MarkdownExport {
            markdown: format!("asked by {by}, limit {:?}", q.limit),
            decisions: 0,
        })
    }
}

/// The handler's futures are ready at once: one poll runs them.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the test handler never waits"),
    }
}

fn route(op: &str, body: &[u8]) -> Result<serde_json::Value, ErrorBody> {
    ready(Routes(Refusing).route(op, Principal::Operator, body))
        .map(|bytes| serde_json::from_slice(&bytes).unwrap())
}

#[test]
fn the_route_decodes_calls_and_encodes() {
    let reply = route("export_decisions", br#"{"limit": 3}"#).unwrap();
    assert_eq!(reply["markdown"], "asked by operator, limit Some(3)");
    assert_eq!(reply["decisions"], 0);
}

#[test]
fn a_rule_refusal_is_encoded_as_the_rejection_says() {
    let e = route("ack", br#"{"delivery_id": "d-1"}"#).unwrap_err();
    assert_eq!(e, ErrorBody::from(&Rejection::UnknownAgent { id: ghost() }));
    assert_eq!(e.code, ErrorCode::NotFound);
}

#[test]
fn the_body_rules_apply_before_the_handler_runs() {
    // Required field missing: named, and the handler (which would refuse otherwise) is
    // never called.
    let e = route("ack", b"").unwrap_err();
    assert_eq!(
        (e.code, e.field.as_deref()),
        (ErrorCode::BadRequest, Some("delivery_id"))
    );
    let e = route("export_decisions", br#"{"limit": 3} trailing"#).unwrap_err();
    assert_eq!(e.rule, "malformed_json");
}

#[test]
fn an_unknown_operation_is_not_found_and_recover_is_the_runtimes() {
    let e = route("shout", b"{}").unwrap_err();
    assert_eq!(
        (e.code, e.rule.as_str()),
        (ErrorCode::NotFound, "unknown_operation")
    );
    // `recover` is the runtime's: a handler never sees it.
    assert_eq!(
        route("recover", b"{}").unwrap_err().rule,
        "unknown_operation"
    );
}
