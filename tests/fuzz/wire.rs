//! Target 3: every endpoint of the three services, over a real nats-server with
//! authentication on, the services running in this process.
//!
//! The endpoints are found as a client finds them, through `$SRV.INFO` (every endpoint of
//! every service, checked against the catalogue), and each gets the committed corpus,
//! then inputs from the decoders' generators (mutations of golden and schema-generated
//! bodies, arbitrary JSON, arbitrary bytes, and a third unmutated bodies of the request's
//! shape), sent one at a time as the operator or as an agent,
//! each on its own subject token (the broker refuses any other). For every input:
//!
//! - a reply comes, within [`REPLY_WITHIN`]: never a timeout, never "no responders";
//! - the reply is well formed: an error (the `Nats-Service-Error` headers, and a body
//!   `{"error": {...}}` with the same code, a snake_case rule and a message), or the
//!   operation's reply type (`Op::reply`);
//! - a refused input leaves every stream on the server (the three journals, events, audit,
//!   inboxes, KV buckets, snapshots) at the last sequence it had, except what Guild writes
//!   on a refusal by design ([`left_by_design`]: a denial record and its event, a budget
//!   event, a conflict or scope question, a refusal window's count, a journal's
//!   publishing bookkeeping), four records at most;
//! - a refusal is never `internal`;
//! - no service has ended, and all three answer `$SRV.PING` (every 500 inputs and at the
//!   end).
//!
//! An accepted input may change anything; the run then waits until the services are
//! quiet (every durable consumer caught up, the streams still) before the next input. The
//! services run with their timers pushed out of the run (heartbeat expiry, efficiency
//! samples, redelivery, decision deadlines, archiving, reconciliation) so that nothing
//! moves on its own while a refused input is being watched, and without the per-agent
//! request quota (it would answer most of the agent's inputs, and the decoders and
//! handlers behind it would not be reached; `tests/identity/quota.rs` tests it).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use async_nats::{Client, HeaderMap};
use futures_util::StreamExt;
use guild_domain::agent::{Role, SpawnRequest};
use guild_domain::mission::NewMission;
use guild_domain::{AgentId, MissionId, Phase, Principal};
use guild_testkit::NatsServer;
use guild_wire::subject::Service;
use guild_wire::{ErrorBody, ErrorCode, ErrorReply, header};
use proptest::prelude::{Rng, prop_oneof};
use proptest::strategy::{BoxedStrategy, Strategy, ValueTree};
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

use crate::budget;
use crate::common::{Configs, Services, start_in_process_with};
use crate::decode::{self, Body};
use crate::ops::{self, Op};

/// How long a reply may take.
const REPLY_WITHIN: Duration = Duration::from_secs(10);

/// The variable holding the inputs each service gets at least.
const INPUTS_VAR: &str = "GUILD_FUZZ_WIRE_INPUTS";

/// What the issue asks each service to get at least, and what `just fuzz` sends.
const DEFAULT_INPUTS: u64 = 2_000;

/// The agent the inputs are sent as (a root developer; no generated body names it, so
/// no input terminates it).
const AGENT: &str = "wire-fuzzer";

/// One endpoint, as `$SRV.INFO` lists it.
#[derive(Clone, Debug)]
struct Endpoint {
    service: Service,
    /// `guild.<service>.v1.<op>.*`
    subject: String,
    op: Op,
}

/// Everything one service's `$SRV.INFO` answer says that the fuzzer uses.
async fn discover(client: &Client) -> Vec<Endpoint> {
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(inbox.clone()).await.unwrap();
    client
        .publish_with_reply(
            guild_wire::subject::discovery("INFO", None),
            inbox,
            "".into(),
        )
        .await
        .unwrap();
    client.flush().await.unwrap();
    let mut infos: BTreeMap<String, Value> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while infos.len() < 3 {
        let Ok(Some(m)) = tokio::time::timeout_at(deadline, replies.next()).await else {
            break;
        };
        let info: Value = serde_json::from_slice(&m.payload).unwrap();
        infos.insert(info["name"].as_str().unwrap_or_default().to_owned(), info);
    }
    let mut found = Vec::new();
    for service in [Service::Spawner, Service::Bus, Service::Mission] {
        let info = infos
            .get(service.micro_name())
            .unwrap_or_else(|| panic!("{} did not answer $SRV.INFO", service.micro_name()));
        for e in info["endpoints"].as_array().into_iter().flatten() {
            let name = e["name"].as_str().unwrap_or_default();
            let subject = e["subject"].as_str().unwrap_or_default().to_owned();
            let op = ops::find(service, name).unwrap_or_else(|| {
                panic!(
                    "{} lists an endpoint the catalogue does not have: {e}",
                    service.micro_name()
                )
            });
            assert!(
                subject.ends_with(".*"),
                "{subject}: the caller's token is the last"
            );
            found.push(Endpoint {
                service,
                subject,
                op,
            });
        }
    }
    let mut listed: Vec<(Service, &str)> =
        found.iter().map(|e| (e.service, e.op.info.name)).collect();
    let mut catalogue: Vec<(Service, &str)> = ops::all()
        .iter()
        .map(|o| (o.info.service, o.info.name))
        .collect();
    listed.sort();
    catalogue.sort();
    assert_eq!(
        listed, catalogue,
        "$SRV.INFO lists exactly the catalogue's operations"
    );
    found
}

/// The last sequence of every stream on the server, by name.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Marks(BTreeMap<String, u64>);

impl Marks {
    /// One listing (`$JS.API.STREAM.LIST`), tried again when the API itself fails (a
    /// timeout on a loaded machine is the observer's trouble, not Guild's).
    async fn take(js: &jetstream::Context) -> Self {
        let mut last_error = String::new();
        for attempt in 0..5 {
            if attempt > 0 {
                eprintln!("fuzz wire: listing the streams failed ({last_error}); again");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let mut marks = BTreeMap::new();
            let mut streams = js.streams();
            let mut failed = None;
            while let Some(info) = streams.next().await {
                match info {
                    Ok(info) => {
                        marks.insert(info.config.name.clone(), info.state.last_sequence);
                    }
                    Err(e) => {
                        failed = Some(e.to_string());
                        break;
                    }
                }
            }
            match failed {
                None => return Self(marks),
                Some(e) => last_error = e,
            }
        }
        panic!("listing the streams: {last_error}");
    }
}

/// Waits until nothing moves: every durable consumer of every stream has nothing pending
/// or unacknowledged, and the streams stand still across that look. Returns where they
/// stand.
async fn settle(js: &jetstream::Context) -> Marks {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let before = Marks::take(js).await;
        let mut idle = true;
        for stream in before.0.keys() {
            let Ok(s) = js.get_stream(stream).await else {
                continue;
            };
            let mut consumers = s.consumers();
            while let Some(c) = consumers.next().await {
                let Ok(c) = c else { continue };
                if c.config.durable_name.is_some() && (c.num_pending > 0 || c.num_ack_pending > 0) {
                    idle = false;
                }
            }
        }
        let after = Marks::take(js).await;
        if idle && before == after {
            return after;
        }
        assert!(
            Instant::now() < deadline,
            "the services did not settle within 30 s: {before:?} then {after:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a stream gained past `after`: (sequence, subject, payload).
async fn gained(
    js: &jetstream::Context,
    stream: &str,
    after: u64,
    upto: u64,
) -> Vec<(u64, String, String)> {
    let s = js.get_stream(stream).await.unwrap();
    let mut out = Vec::new();
    for seq in after + 1..=upto {
        match s.get_raw_message(seq).await {
            Ok(m) => out.push((
                seq,
                m.subject.to_string(),
                String::from_utf8_lossy(&m.payload).into_owned(),
            )),
            // Gone already (a KV value replaced, a limit reached): nothing to look at.
            Err(e) if e.kind() == jetstream::stream::RawMessageErrorKind::NoMessageFound => {}
            Err(e) => panic!("{stream} #{seq}: {e}"),
        }
    }
    out
}

/// What a refused input may leave behind.
enum Left {
    /// A journal's bookkeeping, not a change of state.
    Bookkeeping,
    /// A record of the refusal, by design.
    Record,
}

/// Whether a message a refused input's window saw is one Guild writes on a refusal by
/// design (docs/FUZZING.md, "What a refusal may leave"), and which kind.
fn left_by_design(error: &ErrorBody, stream: &str, subject: &str, payload: &str) -> Option<Left> {
    // A journal's bookkeeping bucket: how far its writer has published (moved by the
    // publishing sweep, up to a second after an accepted input's entry) and the audit head
    // it has seen.
    if stream.starts_with("KV_guild_")
        && stream.ends_with("_journal")
        && (subject.contains("_journal.cursor.") || subject.ends_with("_journal.audit.head"))
    {
        return Some(Left::Bookkeeping);
    }
    let denial = subject.starts_with("guild.audit.denial.");
    // A refusal window closing: the count of identical denials (any input may see it).
    if denial && payload.contains("-repeated-") {
        return Some(Left::Record);
    }
    // A reservation refused for tokens: bus-svc asks the agent's scope question from the
    // spawner's budget_exceeded event, a moment later (any input may see it).
    let bus_write = stream == "GUILD_JOURNAL_BUS" || subject.starts_with("guild.inbox.");
    if bus_write
        && payload.contains("\"operation\":\"reserve_tokens\"")
        && payload.contains("\"reason\":\"token_budget_exceeded\"")
    {
        return Some(Left::Record);
    }
    let record = match error.rule.as_str() {
        // An authority denial: audited (once per refusal window), and the spawner's event.
        _ if error.code == ErrorCode::Forbidden => {
            denial || subject.starts_with("guild.evt.spawner.authority_denied.")
        }
        // A budget refusal is a fact the spawner publishes (an event, not audited).
        "budget_exceeded" => subject.starts_with("guild.evt.spawner.budget_exceeded."),
        // A handoff of a task the sender does not hold: a CRITICAL question to its
        // orchestrator, audited as a conflict, asked once while it is open.
        "not_task_holder" => {
            stream == "GUILD_JOURNAL_BUS"
                || subject.starts_with("guild.audit.conflict.")
                || subject.starts_with("guild.inbox.")
        }
        // A request to an agent whose budget is spent: a scope question to its
        // orchestrator, asked once while it is open.
        "budget_exhausted" => stream == "GUILD_JOURNAL_BUS" || subject.starts_with("guild.inbox."),
        _ => false,
    };
    record.then_some(Left::Record)
}

/// The services' timers pushed out of the run, and no request quota (see the module's
/// comment).
fn quiet(c: &mut Configs) {
    let hour = Duration::from_secs(3_600);
    c.spawner.heartbeat_window = hour;
    c.spawner.efficiency_sample = hour;
    c.bus.office.ack_wait_ms = 3_600_000;
    c.bus.office.decision_deadline_ms = 3_600_000;
    c.bus.archive_every = hour;
    c.missions.reconcile_every = hour;
    c.missions.archive_after = None;
    for common in [
        &mut c.spawner.common,
        &mut c.missions.common,
        &mut c.bus.common,
    ] {
        common.max_requests_per_second = 0;
    }
}

/// Who sends an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum As {
    Operator,
    Agent,
}

/// What a run did, per service.
#[derive(Debug, Default)]
struct Tally {
    sent: u64,
    accepted: u64,
    refused: BTreeMap<String, u64>,
    /// Records refusals left by design.
    audited: u64,
}

/// A running Guild and the fuzzer's two connections.
struct Rig {
    services: Option<Services>,
    operator: Client,
    agent: Client,
    js: jetstream::Context,
    endpoints: Vec<Endpoint>,
    marks: Marks,
    tallies: BTreeMap<&'static str, Tally>,
    /// Kept last: the server outlives the connections and services.
    team: guild_testkit::Team,
    _server: NatsServer,
}

fn id(s: &str) -> AgentId {
    AgentId::new(s).unwrap()
}

impl Rig {
    async fn start() -> Self {
        let server = NatsServer::start();
        let (services, team) = start_in_process_with(&server, quiet).await;
        // What generated bodies name (decode::IDS) exists, so some inputs reach past
        // "unknown agent".
        team.spawn(SpawnRequest::new(
            id("orchestrator-1"),
            Role::Orchestrator,
            10_000,
        ))
        .await;
        team.spawn(SpawnRequest {
            parent_id: Some(id("orchestrator-1")),
            ..SpawnRequest::new(id("dev-lead-1"), Role::Developer, 5_000)
        })
        .await;
        team.operator()
            .missions()
            .create_mission(&NewMission::new(
                MissionId::new("M-006-phase-2").unwrap(),
                "fuzzed",
                Phase::DEVELOPMENT,
            ))
            .await
            .unwrap();
        let spawned = team
            .spawn(SpawnRequest::new(id(AGENT), Role::Developer, 5_000))
            .await;
        let creds = spawned
            .credentials
            .as_ref()
            .and_then(|c| c.creds.clone())
            .expect("the spawn reply carries a .creds bundle");
        let agent = async_nats::ConnectOptions::with_credentials(&creds)
            .unwrap()
            .custom_inbox_prefix(guild_wire::subject::inbox_prefix(&Principal::Agent(id(
                AGENT,
            ))))
            .connect(server.url())
            .await
            .unwrap();
        let operator = team.operator().client().clone();
        let js = jetstream::new(server.connect_admin().await);
        let endpoints = discover(&operator).await;
        let marks = settle(&js).await;
        Self {
            services: Some(services),
            operator,
            agent,
            js,
            endpoints,
            marks,
            tallies: BTreeMap::new(),
            team,
            _server: server,
        }
    }

    /// Sends one input and checks everything the module's comment lists.
    async fn send(&mut self, e: &Endpoint, by: As, body: Vec<u8>, label: &str) {
        let (client, token) = match by {
            As::Operator => (&self.operator, "operator"),
            As::Agent => (&self.agent, AGENT),
        };
        let subject = format!("{}{token}", e.subject.trim_end_matches('*'));
        let what = || {
            format!(
                "{:?} as {by:?} ({label}): {:?}",
                e.op,
                String::from_utf8_lossy(&body)
            )
        };
        let reply = tokio::time::timeout(
            REPLY_WITHIN,
            client.request_with_headers(subject.clone(), HeaderMap::new(), body.clone().into()),
        )
        .await
        .unwrap_or_else(|_| panic!("no reply within {REPLY_WITHIN:?} to {}", what()))
        .unwrap_or_else(|err| panic!("{err} for {}", what()));
        let tally = self.tallies.entry(e.service.micro_name()).or_default();
        tally.sent += 1;
        let error_header = reply
            .headers
            .as_ref()
            .and_then(|h| h.get(header::SERVICE_ERROR_CODE))
            .map(|v| v.as_str().to_owned());
        let Some(status) = error_header else {
            if let Err(err) = (e.op.reply)(&reply.payload) {
                panic!(
                    "{}: the reply is not a {}: {err}: {}",
                    what(),
                    (e.op.info.response)(),
                    String::from_utf8_lossy(&reply.payload)
                );
            }
            tally.accepted += 1;
            self.marks = settle(&self.js).await;
            return;
        };
        let error = match serde_json::from_slice::<ErrorReply>(&reply.payload) {
            Ok(r) => r.error,
            Err(err) => panic!(
                "{}: an error reply whose body is not an error: {err}: {}",
                what(),
                String::from_utf8_lossy(&reply.payload)
            ),
        };
        assert_eq!(
            status,
            error.code.status().to_string(),
            "{}: the header's code and the body's differ",
            what()
        );
        assert!(
            !error.rule.is_empty()
                && error
                    .rule
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_'),
            "{}: rule {:?}",
            what(),
            error.rule
        );
        assert!(!error.message.trim().is_empty(), "{}: no message", what());
        assert!(
            !matches!(error.code, ErrorCode::Internal),
            "{}: an internal error: {error:?}",
            what()
        );
        *tally.refused.entry(error.rule.clone()).or_default() += 1;
        // Nothing changed, the audited refusals aside.
        let now = Marks::take(&self.js).await;
        if now == self.marks {
            return;
        }
        let mut left = 0;
        let mut unexplained = Vec::new();
        for (stream, &last) in &now.0 {
            let before = self.marks.0.get(stream).copied().unwrap_or(0);
            if last == before {
                continue;
            }
            for (seq, subj, payload) in gained(&self.js, stream, before, last).await {
                match left_by_design(&error, stream, &subj, &payload) {
                    Some(Left::Bookkeeping) => {}
                    Some(Left::Record) => left += 1,
                    None => unexplained.push(format!("{stream} #{seq} {subj}: {payload}")),
                }
            }
        }
        assert!(
            unexplained.is_empty(),
            "{} was refused ({error:?}) but wrote:\n{}",
            what(),
            unexplained.join("\n")
        );
        // One refusal leaves one fact: a denial record and its event, or an escalation's
        // journal entry, message and audit record (and a window's count at most besides).
        assert!(
            left <= 4,
            "{} was refused ({error:?}) and left {left} records",
            what()
        );
        let tally = self.tallies.entry(e.service.micro_name()).or_default();
        tally.audited += left;
        self.marks = now;
    }

    /// No service has ended, and each answers `$SRV.PING`.
    async fn assert_alive(&self) {
        let ended = self
            .services
            .as_ref()
            .map(Services::ended)
            .unwrap_or_default();
        assert!(ended.is_empty(), "services ended during the run: {ended:?}");
        for service in [Service::Spawner, Service::Bus, Service::Mission] {
            let ping = guild_wire::subject::discovery("PING", Some(service));
            tokio::time::timeout(REPLY_WITHIN, self.operator.request(ping, "".into()))
                .await
                .unwrap_or_else(|_| panic!("{} does not answer PING", service.micro_name()))
                .unwrap_or_else(|e| panic!("{} PING: {e}", service.micro_name()));
        }
    }

    fn print(&self, name: &str, took: Duration) {
        for (service, t) in &self.tallies {
            let mut rules: Vec<(&String, &u64)> = t.refused.iter().collect();
            rules.sort_by_key(|(_, n)| std::cmp::Reverse(**n));
            let top: Vec<String> = rules
                .iter()
                .take(6)
                .map(|(r, n)| format!("{r} {n}"))
                .collect();
            eprintln!(
                "fuzz {name}: {service}: {} inputs, {} accepted, {} refused ({}), {} records of refusals",
                t.sent,
                t.accepted,
                t.refused.values().sum::<u64>(),
                top.join(", "),
                t.audited
            );
        }
        eprintln!(
            "fuzz {name}: {} inputs in {:.1} s",
            self.tallies.values().map(|t| t.sent).sum::<u64>(),
            took.as_secs_f64()
        );
    }

    async fn stop(mut self) {
        if let Some(s) = self.services.take() {
            s.stop().await;
        }
    }
}

/// The inputs each service gets at least: `GUILD_FUZZ_WIRE_INPUTS`, or `default`.
fn inputs(default: u64) -> u64 {
    match std::env::var(INPUTS_VAR) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{INPUTS_VAR}={text:?} is not a count")),
        Err(_) => default,
    }
}

/// Runs the target: the corpus when `corpus`, then generated inputs until every service
/// has had `per_service` and `budget` has passed.
async fn run(name: &str, per_service: u64, budget: Duration, corpus: bool) {
    let seed = budget::seed();
    eprintln!(
        "fuzz {name}: at least {per_service} inputs per service and {:.0} s, {}={seed}",
        budget.as_secs_f64(),
        budget::SEED_VAR
    );
    let start = Instant::now();
    let mut rig = Rig::start().await;
    let endpoints = rig.endpoints.clone();
    if corpus {
        for (file, body) in decode::corpus() {
            for e in &endpoints {
                rig.send(e, As::Operator, body.clone(), &format!("corpus/{file}"))
                    .await;
            }
        }
    }
    // A third of the inputs of the request's shape as they are, so that many reach the
    // handlers (and change state for later inputs to meet); the rest from the decoders'
    // generators.
    let strategies: Vec<BoxedStrategy<Body>> = endpoints
        .iter()
        .map(|e| prop_oneof![2 => decode::bodies(&e.op), 1 => decode::shaped(&e.op)].boxed())
        .collect();
    let by_service: Vec<Vec<usize>> = [Service::Spawner, Service::Bus, Service::Mission]
        .iter()
        .map(|s| {
            (0..endpoints.len())
                .filter(|&i| endpoints[i].service == *s)
                .collect()
        })
        .collect();
    let mut runner = TestRunner::new_with_rng(Config::default(), budget::rng(seed, 0));
    let mut n: u64 = 0;
    loop {
        let enough = by_service.iter().all(|eps| {
            let service = endpoints[eps[0]].service.micro_name();
            rig.tallies.get(service).map_or(0, |t| t.sent) >= per_service
        });
        if enough && start.elapsed() >= budget {
            break;
        }
        // Round robin over the services, an endpoint at random within each.
        let eps = &by_service[(n % 3) as usize];
        let pick = (runner.rng().next_u64() % eps.len() as u64) as usize;
        let i = eps[pick];
        let e = &endpoints[i];
        let body = strategies[i]
            .new_tree(&mut runner)
            .unwrap_or_else(|r| panic!("{r}"))
            .current();
        let mut bytes = body.bytes();
        if e.op.info.name == "consume" {
            bytes = short_wait(bytes);
        }
        let by = if runner.rng().next_u32().is_multiple_of(2) {
            As::Operator
        } else {
            As::Agent
        };
        rig.send(
            e,
            by,
            bytes,
            &format!("input {n}, {}={seed}", budget::SEED_VAR),
        )
        .await;
        n += 1;
        if n.is_multiple_of(500) {
            rig.assert_alive().await;
        }
    }
    rig.assert_alive().await;
    rig.print(name, start.elapsed());
    for t in rig.tallies.values() {
        assert!(t.sent >= per_service);
    }
    assert!(
        rig.tallies.values().all(|t| t.accepted > 0),
        "a service accepted nothing: the inputs never reach its handlers"
    );
    rig.stop().await;
}

/// A consume waits up to `timeout_ms` (30 s at most) for a message: kept under 100 ms, so
/// the run spends its time on inputs rather than waits.
fn short_wait(body: Vec<u8>) -> Vec<u8> {
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(&body) else {
        return body;
    };
    match map.get("timeout_ms").and_then(Value::as_u64) {
        Some(ms) if ms > 100 => {
            map.insert("timeout_ms".into(), Value::from(ms % 100));
            serde_json::to_vec(&Value::Object(map)).unwrap_or(body)
        }
        _ => body,
    }
}

/// The fuzz target (`just fuzz`): the corpus to every endpoint, then at least
/// `GUILD_FUZZ_WIRE_INPUTS` (2,000) inputs per service, for `GUILD_FUZZ_SECONDS`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fuzzing: `just fuzz` runs it for GUILD_FUZZ_SECONDS (docs/FUZZING.md)"]
async fn fuzz_wire() {
    run("wire", inputs(DEFAULT_INPUTS), budget::budget(), true).await;
}

/// The issue's minimum in every test run: the corpus to every endpoint, then 2,000
/// generated inputs per service (about 15 s in a debug build).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wire_inputs_keep_the_invariants() {
    run(
        "wire (2,000 per service)",
        DEFAULT_INPUTS,
        Duration::ZERO,
        true,
    )
    .await;
}

/// What a refusal may leave is narrow: each kind of refusal its own records, nothing in a
/// journal but an escalation's question, and no record for an input the decoder refused.
#[test]
fn only_what_a_refusal_leaves_by_design_is_let_through() {
    let refusal = |code, rule: &str| ErrorBody::new(code, rule, "refused");
    let forbidden = refusal(ErrorCode::Forbidden, "forbidden_action");
    let malformed = refusal(ErrorCode::BadRequest, "malformed_json");
    let budget = refusal(ErrorCode::BudgetExceeded, "budget_exceeded");
    let conflict = refusal(ErrorCode::Conflict, "not_task_holder");
    let cases: [(&ErrorBody, &str, &str, bool); 12] = [
        (
            &forbidden,
            "GUILD_AUDIT",
            "guild.audit.denial.wire-fuzzer",
            true,
        ),
        (
            &forbidden,
            "GUILD_EVENTS",
            "guild.evt.spawner.authority_denied.a",
            true,
        ),
        (
            &forbidden,
            "GUILD_JOURNAL_SPAWNER",
            "guild.journal.spawner",
            false,
        ),
        (&forbidden, "GUILD_AUDIT", "guild.audit.spawn.a", false),
        (
            &malformed,
            "GUILD_AUDIT",
            "guild.audit.denial.wire-fuzzer",
            false,
        ),
        (&malformed, "GUILD_JOURNAL_BUS", "guild.journal.bus", false),
        (
            &malformed,
            "GUILD_INBOX",
            "guild.inbox.operator.high",
            false,
        ),
        (
            &budget,
            "GUILD_EVENTS",
            "guild.evt.spawner.budget_exceeded.a",
            true,
        ),
        (
            &budget,
            "GUILD_JOURNAL_SPAWNER",
            "guild.journal.spawner",
            false,
        ),
        (&conflict, "GUILD_JOURNAL_BUS", "guild.journal.bus", true),
        (
            &conflict,
            "GUILD_JOURNAL_MISSION",
            "guild.journal.mission",
            false,
        ),
        (
            &conflict,
            "GUILD_EVENTS",
            "guild.evt.mission.reassigned.m",
            false,
        ),
    ];
    for (error, stream, subject, allowed) in cases {
        assert_eq!(
            left_by_design(error, stream, subject, "{}").is_some(),
            allowed,
            "{} on {stream} {subject}",
            error.rule
        );
    }
    let count = r#"{"id":"x-a0-repeated-3","kind":"denial"}"#;
    assert!(left_by_design(&malformed, "GUILD_AUDIT", "guild.audit.denial.a", count).is_some());
    let cursor = "$KV.guild_bus_journal.cursor.0a1b";
    assert!(left_by_design(&malformed, "KV_guild_bus_journal", cursor, "7").is_some());
    let other = "$KV.guild_bus_journal.snapshot";
    assert!(left_by_design(&malformed, "KV_guild_bus_journal", other, "7").is_none());
}

/// Found by `fuzz_wire` (input 18044 of a 120 s run): once two missions had budgets
/// summing past `u64::MAX`, `get_statistics` panicked in its handler and went unanswered,
/// every time after. Fixed in `Board::stats` (the total saturates; the domain's
/// `regression_statistics_with_huge_mission_budgets`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_statistics_answer_with_huge_mission_budgets() {
    let rig = Rig::start().await;
    let missions = rig.team.operator().missions();
    for i in 0..2 {
        let mut nm = NewMission::new(
            MissionId::new(format!("huge-{i}")).unwrap(),
            "huge",
            Phase::DEVELOPMENT,
        );
        nm.token_budget = u64::MAX / 2 + 1;
        missions.create_mission(&nm).await.unwrap();
    }
    let stats = tokio::time::timeout(REPLY_WITHIN, missions.get_statistics())
        .await
        .expect("get_statistics answers")
        .unwrap();
    assert_eq!(stats.missions.token_budget_total, u64::MAX);
    rig.assert_alive().await;
    rig.stop().await;
}
