//! One OpenTelemetry trace across agents and services, checked at an OTLP receiver.
//!
//! An OTLP/HTTP receiver runs in the test (a thread that records what is posted); the
//! process exports to it through `guild_telemetry::init_with`, and the three services run
//! in-process against a real nats-server. Agents made with the SDK then play two stories:
//!
//! * **question → decision**: a developer asks, its orchestrator consumes the question,
//!   decides by replying, the developer consumes the DECISION. One trace holds the ask, the
//!   question's creation, the decider's processing, the decision, its audit append and
//!   the asker's processing of the DECISION; the decider's `consume` (its own trace) links
//!   to the question.
//! * **completion → READY → assignment**: completing a mission publishes `ready` for its
//!   dependent with the completion's trace context; an orchestrator reacting to that event
//!   assigns the dependent, and the assignment (mission-svc, then spawner-svc) joins the
//!   completion's trace.
//!
//! The seed's metrics must reach the receiver as well.
//!
//! One test in this binary: telemetry is process-wide (nextest runs it in a process of its
//! own in any case).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use guild_domain::agent::{Role, SpawnRequest};
use guild_domain::message::MessageType;
use guild_domain::mission::{NewMission, Severity};
use guild_domain::{AgentId, MissionId, Phase};
use guild_telemetry::trace::{self, Kind, SpanExt};
use guild_telemetry::{LogFormat, Otlp};
use guild_testkit::{NatsServer, eventually_async};
use serde_json::{Value, json};
use tracing::Instrument;

/// What the receiver got: (path, body).
type Posts = Arc<Mutex<Vec<(String, Value)>>>;

/// An OTLP/HTTP receiver on a free port: records every JSON body posted, answers 200.
fn receiver() -> (String, Posts) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let posts: Posts = Arc::default();
    let kept = posts.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { continue };
            let mut got = Vec::new();
            let mut buf = [0u8; 64 * 1024];
            let (head_end, length) = loop {
                let n = c.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break (None, 0);
                }
                got.extend_from_slice(&buf[..n]);
                if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&got[..i]).to_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    break (Some(i + 4), length);
                }
            };
            let Some(start) = head_end else { continue };
            while got.len() < start + length {
                let n = c.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            let head = String::from_utf8_lossy(&got[..start]).to_string();
            let path = head
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            let body: Value = serde_json::from_slice(&got[start..]).unwrap_or(Value::Null);
            kept.lock().unwrap().push((path, body));
            let _ = c.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
            );
        }
    });
    (url, posts)
}

/// A span as exported.
#[derive(Clone, Debug)]
struct Exported {
    trace: String,
    id: String,
    parent: String,
    name: String,
    kind: u64,
    attrs: HashMap<String, String>,
    /// (trace id, span id) of each link.
    links: Vec<(String, String)>,
    service: String,
}

fn attr_text(v: &Value) -> String {
    for k in ["stringValue", "intValue", "boolValue", "doubleValue"] {
        if let Some(x) = v.get(k) {
            return match x {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
        }
    }
    v.to_string()
}

fn attrs(list: &Value) -> HashMap<String, String> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|kv| {
            (
                kv["key"].as_str().unwrap().to_owned(),
                attr_text(&kv["value"]),
            )
        })
        .collect()
}

fn spans(posts: &Posts) -> Vec<Exported> {
    let mut out = Vec::new();
    for (path, body) in posts.lock().unwrap().iter() {
        if path != "/v1/traces" {
            continue;
        }
        for rs in body["resourceSpans"].as_array().into_iter().flatten() {
            let service = attrs(&rs["resource"]["attributes"])
                .remove("service.name")
                .unwrap_or_default();
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                for s in ss["spans"].as_array().into_iter().flatten() {
                    out.push(Exported {
                        trace: s["traceId"].as_str().unwrap().to_owned(),
                        id: s["spanId"].as_str().unwrap().to_owned(),
                        parent: s["parentSpanId"].as_str().unwrap_or_default().to_owned(),
                        name: s["name"].as_str().unwrap().to_owned(),
                        kind: s["kind"].as_u64().unwrap(),
                        attrs: attrs(&s["attributes"]),
                        links: s["links"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|l| {
                                (
                                    l["traceId"].as_str().unwrap().to_owned(),
                                    l["spanId"].as_str().unwrap().to_owned(),
                                )
                            })
                            .collect(),
                        service: service.clone(),
                    });
                }
            }
        }
    }
    out
}

fn metric_names(posts: &Posts) -> Vec<String> {
    let mut out = Vec::new();
    for (path, body) in posts.lock().unwrap().iter() {
        if path != "/v1/metrics" {
            continue;
        }
        for rm in body["resourceMetrics"].as_array().into_iter().flatten() {
            for sm in rm["scopeMetrics"].as_array().into_iter().flatten() {
                for m in sm["metrics"].as_array().into_iter().flatten() {
                    out.push(m["name"].as_str().unwrap().to_owned());
                }
            }
        }
    }
    out
}

/// The exported spans, queried.
struct Trace<'a>(&'a [Exported]);

impl Trace<'_> {
    /// The one span named `name` (kind `kind`) in trace `trace` whose attributes include
    /// `with`; panics listing the trace when there is not exactly one.
    fn one(&self, trace: &str, name: &str, kind: u64, with: &[(&str, &str)]) -> &Exported {
        let found: Vec<&Exported> = self
            .0
            .iter()
            .filter(|s| s.trace == trace && s.name == name && s.kind == kind)
            .filter(|s| {
                with.iter()
                    .all(|(k, v)| s.attrs.get(*k).map(String::as_str) == Some(v))
            })
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected one {name:?} (kind {kind}, {with:?}) in trace {trace}; the trace holds:\n{}",
            self.listing(trace)
        );
        found[0]
    }

    fn listing(&self, trace: &str) -> String {
        self.0
            .iter()
            .filter(|s| s.trace == trace)
            .map(|s| {
                format!(
                    "  {} {} kind={} parent={} {:?}",
                    s.id, s.name, s.kind, s.parent, s.attrs
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

const CLIENT: u64 = 3;
const SERVER: u64 = 2;
const PRODUCER: u64 = 4;
const CONSUMER: u64 = 5;
const INTERNAL: u64 = 1;

fn id(s: &str) -> AgentId {
    AgentId::new(s).unwrap()
}

fn m(s: &str) -> MissionId {
    MissionId::new(s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_spans_the_sdk_and_the_services() {
    let (url, posts) = receiver();
    let mut otlp = Otlp::to(&url, "guild-trace-test").unwrap();
    otlp.metric_interval = Some(Duration::from_secs(3600));
    assert!(guild_telemetry::init_with(
        "guild-trace-test",
        LogFormat::Text,
        Some(otlp)
    ));

    let server = NatsServer::start();
    let (_services, team) = common::start_in_process(&server).await;
    let guild = team.operator().clone();
    team.spawn(SpawnRequest::new(id("orch"), Role::Orchestrator, 50_000))
        .await;
    let orch = team.agent(&id("orch"));
    orch.spawner().heartbeat(None).await.unwrap();
    for dev in ["dev-1", "dev-2"] {
        team.spawn(SpawnRequest::new(id(dev), Role::Developer, 5_000).parent(id("orch")))
            .await;
        team.agent(&id(dev))
            .spawner()
            .heartbeat(None)
            .await
            .unwrap();
    }
    let dev = team.agent(&id("dev-1"));

    // Story 1: question → decision.
    let asked = dev
        .bus()
        .ask_question(&guild_sdk::AskQuestion::new(
            "Do we have token budget for extra tests?",
            json!({"requested": 3000}),
            true,
        ))
        .instrument(trace::span(Kind::Internal, "dev-1 needs a decision"))
        .await
        .unwrap();
    let decider_loop = trace::span(Kind::Internal, "orch inbox loop");
    let (decider_trace, audit_seq) = async {
        let question = orch
            .bus()
            .consume(Duration::from_secs(5), &[])
            .await
            .unwrap()
            .expect("the question reached the orchestrator");
        assert_eq!(question.message.id, asked.message_id);
        assert!(
            question.message.traceparent.is_some(),
            "a delivered message carries its creation context"
        );
        let handling = orch.bus().processing_span(&question);
        let receipt = async {
            let r = orch
                .bus()
                .reply(
                    &question.message.id,
                    json!({"decision": "approved", "reason": "fits the budget"}),
                    true,
                )
                .await
                .unwrap();
            orch.bus().ack(&question.delivery_id).await.unwrap();
            r
        }
        .instrument(handling)
        .await;
        let seq = receipt.decision.unwrap().audit_seq.unwrap();
        (tracing::Span::current().trace_id().unwrap(), seq)
    }
    .instrument(decider_loop)
    .await;
    let decision = dev
        .bus()
        .consume(Duration::from_secs(5), &[MessageType::Decision])
        .await
        .unwrap()
        .expect("the decision reached the asker");
    async {
        dev.bus().ack(&decision.delivery_id).await.unwrap();
    }
    .instrument(dev.bus().processing_span(&decision))
    .await;

    // Story 2: completion → dependents READY → assignment.
    let ms = guild.missions();
    ms.create_mission(&NewMission::new(
        m("schema"),
        "the schema",
        Phase::ARCHITECTURE,
    ))
    .await
    .unwrap();
    let mut api = NewMission::new(m("api"), "the api", Phase::DEVELOPMENT);
    api.token_budget = 1_000;
    ms.create_mission(&api).await.unwrap();
    ms.add_dependency(&m("api"), &m("schema"), Severity::Hard)
        .await
        .unwrap();
    ms.assign_mission(&m("schema"), Some(&id("dev-2")))
        .await
        .unwrap();
    let mut ready = guild
        .client()
        .subscribe("guild.evt.mission.ready.>")
        .await
        .unwrap();
    guild.client().flush().await.unwrap();
    let finishing = trace::span(Kind::Internal, "dev-2 finishes the schema");
    let completion_trace = async {
        team.agent(&id("dev-2"))
            .missions()
            .mark_complete(&m("schema"), json!({"tables": 3}), Some(0.9))
            .await
            .unwrap();
        tracing::Span::current().trace_id().unwrap()
    }
    .instrument(finishing)
    .await;
    let event = tokio::time::timeout(Duration::from_secs(5), async {
        use futures_util::StreamExt;
        ready.next().await
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(event.subject.as_str(), "guild.evt.mission.ready.api");
    let reacting = trace::consumer(
        event.subject.as_str(),
        "guild.evt.mission.ready.{about}",
        Some("test-orchestrator"),
        trace::traceparent_in(event.headers.as_ref()),
    );
    orch.missions()
        .assign_mission(&m("api"), Some(&id("dev-1")))
        .instrument(reacting)
        .await
        .unwrap();

    // Everything reaches the receiver.
    let all = eventually_async(
        "the spans and metrics reach the receiver",
        Duration::from_secs(20),
        || {
            let posts = posts.clone();
            async move {
                tokio::task::spawn_blocking(guild_telemetry::flush)
                    .await
                    .unwrap();
                let all = spans(&posts);
                let names = metric_names(&posts);
                let complete = [
                    "request guild.bus.v1.ask_question.{principal}",
                    "publish guild.audit.decision.{about}",
                    "process guild.spawner.v1.allocate_task.{principal}",
                ]
                .iter()
                .all(|n| all.iter().any(|s| &s.name == n))
                    && all
                        .iter()
                        .filter(|s| s.name == "process guild.inbox.{owner}.{priority}")
                        .count()
                        >= 2
                    && names.iter().any(|n| n == "guild.decision.duration");
                complete.then_some(all)
            }
        },
    )
    .await;
    let t = Trace(&all);

    // Story 1, one trace: the asker's request is its root's child, ...
    let root = all
        .iter()
        .find(|s| s.name == "dev-1 needs a decision")
        .expect("the asker's own span");
    assert_eq!(root.kind, INTERNAL);
    let q = root.trace.clone();
    let ask = t.one(
        &q,
        "request guild.bus.v1.ask_question.{principal}",
        CLIENT,
        &[],
    );
    assert_eq!(ask.parent, root.id);
    assert_eq!(ask.attrs["messaging.system"], "nats");
    assert_eq!(
        ask.attrs["messaging.destination.name"],
        "guild.bus.v1.ask_question.dev-1"
    );
    // ... bus-svc handles it as the SDK's child (SERVER, the queue group named) ...
    let ask_served = t.one(
        &q,
        "process guild.bus.v1.ask_question.{principal}",
        SERVER,
        &[
            ("messaging.consumer.group.name", "guild-bus"),
            ("guild.principal", "dev-1"),
        ],
    );
    assert_eq!(ask_served.parent, ask.id);
    assert_eq!(ask_served.service, "guild-trace-test");
    // ... and creates the question (PRODUCER), appending it to its journal inside.
    let question = t.one(
        &q,
        "create guild.inbox.{owner}.{priority}",
        PRODUCER,
        &[("guild.message.type", "question")],
    );
    assert_eq!(question.parent, ask_served.id);
    assert_eq!(
        question.attrs["messaging.destination.name"],
        "guild.inbox.orch.high"
    );
    assert!(
        all.iter()
            .any(|s| s.name == "publish guild.journal.bus" && s.parent == question.id),
        "the question's journal append is the create span's child"
    );
    // The decider's consume is a request of its own loop's trace, linked to the question.
    assert_ne!(decider_trace, q);
    let consume = t.one(
        &decider_trace,
        "process guild.bus.v1.consume.{principal}",
        SERVER,
        &[("guild.message.type", "question")],
    );
    assert!(consume.links.contains(&(q.clone(), question.id.clone())));
    // Its processing joins the question's trace (parent: the creation context) and links
    // back to the loop it ran in.
    let handled = t.one(
        &q,
        "process guild.inbox.{owner}.{priority}",
        CONSUMER,
        &[("guild.message.type", "question")],
    );
    assert_eq!(handled.parent, question.id);
    assert!(
        handled
            .links
            .iter()
            .any(|(trace, _)| trace == &decider_trace)
    );
    // The decision: the reply, bus-svc's handling, the DECISION created, the audit append.
    let reply = t.one(&q, "request guild.bus.v1.reply.{principal}", CLIENT, &[]);
    assert_eq!(reply.parent, handled.id);
    let reply_served = t.one(&q, "process guild.bus.v1.reply.{principal}", SERVER, &[]);
    assert_eq!(reply_served.parent, reply.id);
    let decided = t.one(
        &q,
        "create guild.inbox.{owner}.{priority}",
        PRODUCER,
        &[("guild.message.type", "decision")],
    );
    assert_eq!(decided.parent, reply_served.id);
    assert_eq!(decided.attrs["guild.decision.ruling"], "decided");
    let audit = t.one(
        &q,
        "publish guild.audit.decision.{about}",
        PRODUCER,
        &[("guild.audit.kind", "decision")],
    );
    assert_eq!(audit.parent, decided.id);
    assert_eq!(
        audit.attrs["messaging.nats.sequence"],
        audit_seq.to_string()
    );
    // The asker's processing of the DECISION closes the story in the same trace.
    let closing = t.one(
        &q,
        "process guild.inbox.{owner}.{priority}",
        CONSUMER,
        &[("guild.message.type", "decision")],
    );
    assert_eq!(closing.parent, decided.id);
    // The audit record names the trace, and its stored headers carry the append's context.
    let js = async_nats::jetstream::new(server.connect_admin().await);
    let stored = js
        .get_stream("GUILD_AUDIT")
        .await
        .unwrap()
        .get_raw_message(audit_seq)
        .await
        .unwrap();
    let record: Value = serde_json::from_slice(&stored.payload).unwrap();
    assert_eq!(record["trace_id"], q.as_str());
    assert_eq!(
        stored
            .headers
            .get("traceparent")
            .map(|v| v.as_str().to_owned()),
        Some(format!("00-{q}-{}-01", audit.id))
    );

    // Story 2, one trace: completion, the ready event's processing, the assignment and
    // the spawner's allocation.
    let c = completion_trace;
    assert_ne!(c, q);
    let completed = t.one(
        &c,
        "process guild.mission.v1.mark_complete.{principal}",
        SERVER,
        &[("guild.mission.id", "schema")],
    );
    let reacted = t.one(
        &c,
        "process guild.evt.mission.ready.{about}",
        CONSUMER,
        &[("messaging.destination.name", "guild.evt.mission.ready.api")],
    );
    assert_eq!(
        reacted.parent, completed.id,
        "the ready event carries the completion's context"
    );
    let assign = t.one(
        &c,
        "request guild.mission.v1.assign_mission.{principal}",
        CLIENT,
        &[],
    );
    assert_eq!(assign.parent, reacted.id);
    let assigned = t.one(
        &c,
        "process guild.mission.v1.assign_mission.{principal}",
        SERVER,
        &[("guild.mission.id", "api")],
    );
    assert_eq!(assigned.parent, assign.id);
    let allocated = t.one(
        &c,
        "process guild.spawner.v1.allocate_task.{principal}",
        SERVER,
        &[("messaging.consumer.group.name", "guild-spawner")],
    );
    let allocate = all
        .iter()
        .find(|s| s.id == allocated.parent)
        .expect("the allocation's caller");
    assert_eq!(
        (allocate.kind, allocate.parent.as_str()),
        (CLIENT, assigned.id.as_str())
    );

    // The seed's metrics.
    let names = metric_names(&posts);
    for metric in [
        "guild.message.latency",
        "guild.decision.duration",
        "guild.agent.spawn.duration",
        "guild.mission.dependency_resolution.duration",
        "guild.agent.parallelization.efficiency",
    ] {
        assert!(
            names.iter().any(|n| n == metric),
            "{metric} not exported: {names:?}"
        );
    }
    guild_telemetry::shutdown();
}
