//! Target 1: every request decoder (`guild_service::decode::<Request>` for every
//! operation of `guild_wire::api::all_operations()`), fed arbitrary bytes, arbitrary
//! JSON, and mutations of valid bodies (the golden examples in `proto-schemas/examples/`
//! and values generated from each request's schema).
//!
//! Invariants, for every input:
//! - no panic;
//! - a refusal is a 400 `ErrorBody` with a snake_case rule and a message, and encodes as
//!   `{"error": {...}}`;
//! - an accepted body is exactly one JSON object (or blank), by an independent parse, and
//!   the value decoded encodes and decodes again to itself;
//! - a mutation that broke one field of a body the decoder accepts, when refused, names
//!   that field (or one containing it, or one inside it).

use std::path::PathBuf;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use guild_wire::{ErrorBody, ErrorCode, ErrorReply};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::Value;

use crate::budget;
use crate::mutate::{self, Mutation};
use crate::ops::{self, Op};
use crate::schema::{Gen, any_json};

/// Where the saved failing cases of this target are (replayed first).
const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fuzz/corpus/decode.proptest-regressions"
);

/// The directory of interesting bodies every decoder is given first.
pub(crate) fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/bodies")
}

/// The committed interesting bodies, by file name. `refused-*` must be refused by every
/// decoder; the others may be accepted.
pub(crate) fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(corpus_dir())
        .unwrap_or_else(|e| panic!("{}: {e}", corpus_dir().display()))
        .map(|entry| {
            let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (name, body)
        })
        .collect();
    out.sort();
    out
}

/// The golden examples of request types (`proto-schemas/examples/<Type>.json`).
fn golden(op: &Op) -> Option<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../proto-schemas/examples")
        .join(format!("{}.json", (op.info.request)()));
    let text = std::fs::read(path).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Ids a generated id takes some of the time, so bodies look like real ones.
pub(crate) const IDS: &[&str] = &[
    "dev-lead-1",
    "orchestrator-1",
    "M-006-phase-2",
    "operator",
    "observer",
];

/// One body for one decoder.
#[derive(Clone, Debug)]
pub(crate) enum Body {
    /// Any bytes.
    Bytes(Vec<u8>),
    /// Any JSON value.
    Json(Value),
    /// A valid-looking body, mutated.
    Mutant(Value, Mutation),
}

impl Body {
    /// The bytes sent.
    pub(crate) fn bytes(&self) -> Vec<u8> {
        match self {
            Body::Bytes(b) => b.clone(),
            Body::Json(v) => serde_json::to_vec(v).unwrap_or_default(),
            Body::Mutant(base, m) => mutate::apply(base, m).body,
        }
    }
}

/// Bodies for `op`'s decoder: any bytes, any JSON, and mostly mutations of its golden
/// example and of values generated from its schema.
pub(crate) fn bodies(op: &Op) -> BoxedStrategy<Body> {
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(Body::Bytes),
        1 => any_json(3).prop_map(Body::Json),
        6 => (bases(op), mutate::mutation()).prop_map(|(b, m)| Body::Mutant(b, m)),
    ]
    .boxed()
}

/// Bodies of the request's shape, unmutated: its golden example and values generated
/// from its schema (the wire target mixes them in, to reach past the decoder).
pub(crate) fn shaped(op: &Op) -> BoxedStrategy<Body> {
    bases(op)
        .prop_map(|b| Body::Mutant(b, Mutation::Keep))
        .boxed()
}

/// The golden example and values generated from the schema.
fn bases(op: &Op) -> BoxedStrategy<Value> {
    let schema = serde_json::to_value((op.info.request_schema)()).unwrap_or(Value::Null);
    let generated = Gen::new(schema, IDS.iter().map(|s| (*s).to_owned()).collect()).values();
    match golden(op) {
        Some(example) => prop_oneof![1 => Just(example), 3 => generated].boxed(),
        None => generated,
    }
}

/// The ops and a strategy of (op index, body).
static OPS: LazyLock<Vec<Op>> = LazyLock::new(ops::all);

fn cases() -> impl Strategy<Value = (usize, Body)> {
    let per_op: Vec<BoxedStrategy<(usize, Body)>> = OPS
        .iter()
        .enumerate()
        .map(|(i, op)| (Just(i), bodies(op)).boxed())
        .collect();
    proptest::strategy::Union::new(per_op)
}

/// Whether `bytes` is exactly one JSON object, or blank (read as `{}`).
fn one_object_or_blank(bytes: &[u8]) -> bool {
    bytes.trim_ascii().is_empty()
        || serde_json::from_slice::<Value>(bytes).is_ok_and(|v| v.is_object())
}

/// The invariants every decoded body keeps.
pub(crate) fn check(
    op: &Op,
    body: &[u8],
    outcome: &Result<Value, ErrorBody>,
) -> Result<(), TestCaseError> {
    match outcome {
        Err(e) => check_refusal(op, e),
        Ok(value) => {
            prop_assert!(
                one_object_or_blank(body),
                "{op:?} accepted a body that is not one JSON object: {:?}",
                String::from_utf8_lossy(body)
            );
            let again = serde_json::to_vec(value).unwrap_or_default();
            let back = (op.decode)(&again);
            prop_assert_eq!(
                back.as_ref().ok(),
                Some(value),
                "{:?}: what it decoded does not decode again: {}",
                op,
                String::from_utf8_lossy(&again)
            );
            Ok(())
        }
    }
}

/// A refusal is a 400 with a rule and a message, and encodes as the error envelope.
pub(crate) fn check_refusal(op: &Op, e: &ErrorBody) -> Result<(), TestCaseError> {
    prop_assert_eq!(e.code, ErrorCode::BadRequest, "{:?}: {}", op, e);
    prop_assert!(
        !e.rule.is_empty() && e.rule.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
        "{op:?}: rule {:?}",
        e.rule
    );
    prop_assert!(!e.message.trim().is_empty(), "{op:?}: no message");
    let envelope = serde_json::to_vec(&ErrorReply { error: e.clone() }).unwrap_or_default();
    let back: Result<ErrorReply, _> = serde_json::from_slice(&envelope);
    prop_assert_eq!(back.ok().map(|r| r.error), Some(e.clone()));
    Ok(())
}

/// What the cases did, so a run shows it was not vacuous: bodies accepted, bodies
/// refused, mutants of accepted bases, and refusals whose field was checked.
static COUNTS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

fn count(i: usize) {
    COUNTS[i].fetch_add(1, Ordering::Relaxed);
}

fn one_case(i: usize, body: &Body) -> Result<(), TestCaseError> {
    let op = &OPS[i];
    let (bytes, broken, base_ok) = match body {
        Body::Bytes(b) => (b.clone(), None, false),
        Body::Json(v) => (serde_json::to_vec(v).unwrap_or_default(), None, false),
        Body::Mutant(base, m) => {
            let mutant = mutate::apply(base, m);
            let base_ok = (op.decode)(&serde_json::to_vec(base).unwrap_or_default()).is_ok();
            (mutant.body, mutant.field, base_ok)
        }
    };
    let outcome = (op.decode)(&bytes);
    check(op, &bytes, &outcome)?;
    count(usize::from(outcome.is_err()));
    if base_ok {
        count(2);
    }
    if let (Err(e), Some(broken), true) = (&outcome, &broken, base_ok) {
        count(3);
        prop_assert!(
            e.field
                .as_deref()
                .is_some_and(|named| mutate::names(named, broken)),
            "{:?}: the body broke `{}`, the refusal names {:?}: {}\nbody: {}",
            op,
            broken,
            e.field,
            e.message,
            String::from_utf8_lossy(&bytes)
        );
    }
    Ok(())
}

/// The fuzz target (`just fuzz`): runs for `GUILD_FUZZ_SECONDS`.
#[test]
#[ignore = "fuzzing: `just fuzz` runs it for GUILD_FUZZ_SECONDS (docs/FUZZING.md)"]
fn fuzz_decoders() {
    let ran = budget::run(
        "decoders",
        REGRESSIONS,
        budget::budget(),
        2_000,
        cases(),
        |(i, body)| one_case(i, &body),
    );
    let [accepted, refused, valid_bases, fields] =
        COUNTS.each_ref().map(|c| c.load(Ordering::Relaxed));
    eprintln!(
        "fuzz decoders: {accepted} accepted, {refused} refused; {valid_bases} mutants of accepted \
         bodies, {fields} of them refused with the broken field checked"
    );
    assert!(ran.cases > 0 && accepted > 0 && fields > 0);
}

/// The saved failing cases, every time the suite runs (no new cases).
#[test]
fn decoder_regressions_replay() {
    budget::run(
        "decoders (saved cases)",
        REGRESSIONS,
        std::time::Duration::ZERO,
        0,
        cases(),
        |(i, body)| one_case(i, &body),
    );
}

/// The committed bodies, to every decoder.
#[test]
fn decoder_corpus_replays() {
    let corpus = corpus();
    assert!(
        corpus.len() >= 20,
        "the corpus is missing: {}",
        corpus_dir().display()
    );
    for op in OPS.iter() {
        for (name, body) in &corpus {
            let outcome = (op.decode)(body);
            if let Err(e) = check(op, body, &outcome) {
                panic!("{op:?} on corpus/{name}: {e}");
            }
            if name.starts_with("refused-") {
                assert!(outcome.is_err(), "{op:?} accepted corpus/{name}");
            }
        }
    }
}

/// Issue 17's rule: an empty body reads as `{}`, so it is accepted exactly by the
/// operations whose request has no required field.
#[test]
fn an_empty_body_is_accepted_exactly_where_nothing_is_required() {
    for op in OPS.iter() {
        let schema = serde_json::to_value((op.info.request_schema)()).unwrap_or(Value::Null);
        let required = schema["required"].as_array().is_some_and(|r| !r.is_empty());
        for blank in [&b""[..], b" ", b"\n\t "] {
            let outcome = (op.decode)(blank);
            assert_eq!(
                outcome.is_ok(),
                !required,
                "{op:?} on {blank:?}: {outcome:?}"
            );
        }
    }
}

/// Every request schema's own golden example, and a value generated from it, is accepted
/// as it is: the mutations start from bodies the decoder takes.
#[test]
fn golden_examples_decode() {
    let mut seen = 0;
    for op in OPS.iter() {
        if let Some(example) = golden(op) {
            let body = serde_json::to_vec(&example).unwrap_or_default();
            let outcome = (op.decode)(&body);
            assert!(
                outcome.is_ok(),
                "{op:?}: its golden example is refused: {outcome:?}"
            );
            seen += 1;
        }
    }
    assert!(seen >= 3, "golden request examples found: {seen}");
}

/// Found by `fuzz_decoders` (a number in a request's payload decoded, encoded and
/// decoded again came back different): serde_json's default float parsing is not exact,
/// so `0.9999999999999999` was read as `1.0`, passing a quality gate of 1.0 it is below,
/// and a value a service wrote to its journal could be read back by another instance as
/// a different one. Fixed with serde_json's `float_roundtrip` feature (workspace
/// `Cargo.toml`).
#[test]
fn regression_floats_are_read_exactly() {
    let complete = ops::find(guild_wire::subject::Service::Mission, "mark_complete").unwrap();
    let decoded =
        (complete.decode)(br#"{"mission_id":"m-1","quality_score":0.9999999999999999}"#).unwrap();
    assert_eq!(
        decoded["quality_score"].as_f64(),
        Some(0.999_999_999_999_999_9)
    );
    assert!(decoded["quality_score"].as_f64() < Some(1.0));
    let request = ops::find(guild_wire::subject::Service::Bus, "request").unwrap();
    let body =
        br#"{"subject":"a","to":"dev-lead-1","payload":{"a":[-2.8617920920870722e+299,null]}}"#;
    let decoded = (request.decode)(body).unwrap();
    assert_eq!(
        decoded["payload"]["a"][0].as_f64(),
        Some(-2.861_792_092_087_072_2e299)
    );
    check(&request, body, &Ok(decoded)).unwrap();
}

/// Found by `fuzz_decoders`: a member missing (or unknown) inside a nested object was
/// named without its path (`window_tokens`, not `context_window.window_tokens`), so the
/// caller could not tell which object lacked it. Fixed in `guild_service::decode`.
#[test]
fn regression_a_nested_member_is_named_by_its_path() {
    let heartbeat = ops::find(guild_wire::subject::Service::Spawner, "heartbeat").unwrap();
    let e = (heartbeat.decode)(br#"{"context_window":{}}"#).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("context_window.window_tokens"));
    let e = (heartbeat.decode)(
        br#"{"context_window":{"window_tokens":1,"tokens_in_context":0,"zz":1}}"#,
    )
    .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("context_window.zz"));
    let spawn = ops::find(guild_wire::subject::Service::Spawner, "spawn").unwrap();
    let e = (spawn.decode)(br#"{"id":"a","role":"qa","token_budget":1,"capabilities":[{}]}"#)
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("capabilities[0].name"));
    // At the top level the member alone, as before.
    let e = (spawn.decode)(br#"{"role":"qa","token_budget":1}"#).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("id"));
}

/// Found by `fuzz_decoders`: a member given twice was refused without naming it. Fixed
/// in `ErrorBody::malformed` (guild-wire), which reads the field out of serde's message.
#[test]
fn regression_a_member_given_twice_is_named() {
    let alert = ops::find(guild_wire::subject::Service::Bus, "alert").unwrap();
    let e = (alert.decode)(br#"{"payload":null,"message_id":"m-1","payload":null,"subject":"a"}"#)
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("payload"));
    let heartbeat = ops::find(guild_wire::subject::Service::Spawner, "heartbeat").unwrap();
    let body = br#"{"context_window":{"window_tokens":1,"window_tokens":2,"tokens_in_context":0}}"#;
    let e = (heartbeat.decode)(body).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("context_window.window_tokens"));
}

/// Found by `fuzz_wire` (bus.consume, input 20,863 of a 120 s run): a reply whose payload
/// nested 125 levels was accepted (serde_json reads 128), but its delivery wraps it in
/// three more, so the recipient could not parse what `consume` handed it, and the bus
/// journal entry holding it (four more) is skipped as unreadable by any instance that
/// replays the journal. Fixed in
/// `guild_service::decode`: a request nests at most `MAX_DEPTH` (64) levels, refused with
/// `too_deep` naming the member.
#[test]
fn regression_a_body_too_deep_for_its_envelopes_is_refused() {
    let nested = |depth: usize| {
        format!(
            r#"{{"message_id":"m-1","payload":{}1{},"subject":"a"}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    let reply = ops::find(guild_wire::subject::Service::Bus, "reply").unwrap();
    let alert = ops::find(guild_wire::subject::Service::Bus, "alert").unwrap();
    for op in [&reply, &alert] {
        // The body is one level, so the payload may nest 63.
        let body = nested(guild_service::serve::MAX_DEPTH - 1);
        let e = (op.decode)(body.as_bytes());
        assert!(
            e.as_ref().map_or_else(|e| e.rule != "too_deep", |_| true),
            "{op:?}: {e:?}"
        );
        for depth in [guild_service::serve::MAX_DEPTH, 125, 127] {
            let e = (op.decode)(nested(depth).as_bytes()).unwrap_err();
            assert_eq!(
                (e.rule.as_str(), e.field.as_deref()),
                ("too_deep", Some("payload"))
            );
            check_refusal(op, &e).unwrap();
        }
    }
    // Brackets inside strings are not depth.
    let body = format!(r#"{{"subject":"{}","payload":null}}"#, "[{".repeat(200));
    assert!((alert.decode)(body.as_bytes()).is_ok());
}
