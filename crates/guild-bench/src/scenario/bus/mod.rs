//! The bus: send → consume one message at a time, question → decision, and latency at
//! fixed offered loads and the most messages per second with one and two bus-svc
//! instances, each against its raw JetStream equivalent measured in the same run.

pub(crate) mod decision;
mod inbox;
pub(crate) mod latency;
mod load;

use std::time::Duration;

use guild_sdk::{Role, SpawnRequest};

use crate::plot::{Axis, Plot, Scale, Series};
use crate::report::{Figure, Row, Section};
use crate::scenario::{aid, spawner_env};
use crate::stack::{Auth, Service, Stack, Sync, Telemetry};
use crate::stats::Samples;

/// Guild's goal for a delivery: p99 under 5 ms and at most twice the raw baseline's.
fn delivery_goal(guild: &Samples, raw: &Samples) -> bool {
    guild.p99() < 5.0 && guild.p99() <= 2.0 * raw.p99()
}

/// Spawns `name` under `parent` (or at the root) and sends its first heartbeat.
pub(crate) async fn spawn(
    stack: &Stack,
    name: &str,
    role: Role,
    parent: Option<&str>,
) -> anyhow::Result<()> {
    let mut request = SpawnRequest::new(aid(name)?, role, 1_000_000);
    if let Some(p) = parent {
        request = request.parent(aid(p)?);
    }
    stack.team.try_spawn(request).await?;
    stack.agent(name)?.spawner().heartbeat(None).await?;
    Ok(())
}

/// How many of each measurement a run makes.
#[derive(Clone, Copy)]
struct Counts {
    n: usize,
    asks: usize,
    step: Duration,
    each: usize,
}

impl Counts {
    fn of(quick: bool) -> Self {
        if quick {
            Self {
                n: 100,
                asks: 20,
                step: Duration::from_millis(300),
                each: 50,
            }
        } else {
            Self {
                n: 2_000,
                asks: 500,
                step: Duration::from_secs(5),
                each: 1_000,
            }
        }
    }
}

/// What one Guild run measured.
struct Measured {
    waiting: Samples,
    then: Samples,
    decided: Samples,
    one_loads: Vec<(u32, Samples)>,
    one_most: Samples,
    two_loads: Vec<(u32, Samples)>,
    two_most: Samples,
    memory: String,
}

/// Starts the services on `stack`, spawns the agents and measures every bus figure:
/// one instance of bus-svc, then two.
async fn measure(stack: &mut Stack, c: Counts) -> anyhow::Result<Measured> {
    stack.add_service(Service::Spawner, &spawner_env()).await?;
    stack.add_service(Service::Mission, &[]).await?;
    stack.add_service(Service::Bus, &[]).await?;
    let mut names: Vec<String> = ["bench-sender", "bench-receiver", "bench-fetcher"]
        .map(String::from)
        .into();
    for run in ["b1", "b1t", "b2", "b2t"] {
        names.extend(load::agent_names(run));
    }
    for name in &names {
        spawn(stack, name, Role::Developer, None).await?;
    }
    decision::spawn_agents(stack).await?;
    let waiting = latency::guild_waiting(stack, "bench-sender", "bench-receiver", c.n).await?;
    let then = latency::guild_then_consume(stack, "bench-sender", "bench-fetcher", c.n).await?;
    let decided = decision::guild(stack, c.asks).await?;
    let one_loads = load::guild_loads(stack, "b1", c.step).await?;
    let one_most = load::guild_most(stack, "b1t", c.each).await?;
    stack.add_service(Service::Bus, &[]).await?;
    let two_loads = load::guild_loads(stack, "b2", c.step).await?;
    let two_most = load::guild_most(stack, "b2t", c.each).await?;
    Ok(Measured {
        waiting,
        then,
        decided,
        one_loads,
        one_most,
        two_loads,
        two_most,
        memory: stack.memory_note(),
    })
}

pub(crate) async fn run(sync: Sync, quick: bool) -> anyhow::Result<Vec<Section>> {
    let c = Counts::of(quick);
    let Counts {
        n,
        asks,
        step,
        each,
    } = c;
    let mut stack = Stack::start(sync, Telemetry::Off).await?;
    let raw_waiting = latency::raw_waiting(&stack.client, n).await?;
    let raw_fetch = latency::raw_then_fetch(&stack.client, n).await?;
    let raw_decision = decision::raw(&stack.client, asks).await?;
    let raw_loads = load::raw_loads(&stack.client, step).await?;
    let raw_most = load::raw_most(&stack.client, each).await?;
    let on = measure(&mut stack, c).await?;
    drop(stack);
    // What authentication costs, once (with the default sync): the same runs on a server
    // that authenticates nobody and services started with --insecure.
    let off = if sync == Sync::Default {
        let mut stack = Stack::start_with(sync, Telemetry::Off, Auth::Off).await?;
        Some(measure(&mut stack, c).await?)
    } else {
        None
    };
    let Measured {
        waiting,
        then,
        decided,
        one_loads,
        one_most,
        two_loads,
        two_most,
        memory,
    } = &on;

    let one_at_a_time = Section {
        title: format!("Bus: send → consume ({})", sync.label()),
        method: format!(
            "Latency, two ways, {n} REQUESTs of {} bytes from one agent to another, one at a time, \
             measured from the start of the send call until the receiver has the message; bus-svc, spawner-svc \
             and mission-svc run as their own processes. *Send, then consume*: the send's receipt comes back, \
             then the receiver consumes without waiting; baseline: a JetStream publish (awaiting the stream's \
             ack), then a one-message fetch from a durable pull consumer. *Send → waiting consume*: the \
             receiver is already waiting in `consume` (long poll) and {} ms pass between sends so it is waiting \
             again; baseline: a publish to a subject a durable pull consumer is already waiting on, which is \
             the least any design on JetStream can cost. Every message is acked explicitly. *Question → \
             decision*, {asks} times after 5 to warm up: an agent asks its orchestrator (`ask_question`, \
             requiring a decision); the orchestrator, waiting in `consume` for questions, acks it and calls \
             `record_decision`; the asker, waiting in `consume` for decisions, has it; baseline: the same \
             exchange on raw JetStream (question published to the orchestrator's waiting pull consumer, \
             acked, the decision appended to the audit chain and published to the asker's waiting pull \
             consumer).",
            inbox::PAYLOAD,
            latency::SETTLE.as_millis()
        ),
        rows: vec![
            Row::new(
                "send, then consume: p50 (baseline: publish, then fetch)",
                then.p50(),
                "ms",
            )
            .baseline(raw_fetch.p50()),
            Row::new(
                "send, then consume: p99 (baseline: publish, then fetch)",
                then.p99(),
                "ms",
            )
            .target("seed < 100 ms; Guild < 5 ms and ≤ 2× baseline")
            .baseline(raw_fetch.p99())
            .goal(delivery_goal(then, &raw_fetch)),
            Row::new(
                "send → waiting consume: p50 (baseline: publish → waiting pull consumer)",
                waiting.p50(),
                "ms",
            )
            .baseline(raw_waiting.p50()),
            Row::new(
                "send → waiting consume: p99 (baseline: publish → waiting pull consumer)",
                waiting.p99(),
                "ms",
            )
            .target("< 5 ms; ≤ 2× this stricter baseline")
            .baseline(raw_waiting.p99())
            .goal(delivery_goal(waiting, &raw_waiting)),
            Row::new("send → waiting consume: p99.9", waiting.p999(), "ms")
                .baseline(raw_waiting.p999()),
            Row::new("question → decision round trip: p50", decided.p50(), "ms")
                .baseline(raw_decision.p50()),
            Row::new("question → decision round trip: p99", decided.p99(), "ms")
                .target("seed: decision time < 2 min; the bus's share < 10 ms (two deliveries) and ≤ 2× baseline")
                .baseline(raw_decision.p99())
                .goal(decided.p99() < 10.0 && decided.p99() <= 2.0 * raw_decision.p99()),
        ],
        notes: vec![
            format!("Resident memory at the end of the bus runs: {memory}."),
            "Each Guild message costs three journal appends (the send, the consumer's wait or take, the ack) \
             against one stored message and one ack on raw JetStream: the price of priority order across \
             instances, waits that any instance can serve, and ack windows that survive restarts. Only the \
             send's append is on the path to a consumer already waiting: the send hands the message to the \
             wait in the same entry, and the inbox log entry is confirmed behind the send's receipt. *Send, then \
             consume* is two requests through bus-svc with an append each: twelve one-way network legs \
             (client → broker → bus-svc and back for each request, bus-svc → broker → bus-svc for each \
             append) against the baseline's four (publish and its ack, fetch and its message). By legs alone \
             the floor of a bus that agents reach through a service, without JetStream rights of their own, \
             and that records a take before answering it (answered earlier, a take could hand out a message \
             another instance had just seen acknowledged), is about 3× this baseline; on this 2-core machine, \
             shared by nats-server, three services and the client, each extra hop also costs a scheduling \
             round. What meets 2×: an agent that waits in `consume` (the row above)."
                .into(),
            "A question → decision round trip is two such deliveries plus their acks, and the decision is \
             recorded once: the question's state, the DECISION message and its audit record are one journal \
             entry, then the audit record is appended to the hash chain. The raw exchange does the audit \
             append too, but nothing else durable; the difference is the bus's journal appends (ask, the \
             orchestrator's ack, the decision, the asker's ack) and their round trips. What would narrow it: \
             the same fewer appends, and a decision that acks the question it decides (one append for both)."
                .into(),
        ],
        figures: Vec::new(),
    };
    let under_load = load_section(
        sync,
        step,
        each,
        &raw_loads,
        &raw_most,
        [(one_loads, one_most), (two_loads, two_most)],
    );
    let mut sections = vec![one_at_a_time, under_load];
    if let Some(off) = &off {
        sections.push(auth_section(&on, off));
    }
    Ok(sections)
}

/// Every bus row with authentication on (Guild's column) against off (the baseline).
fn auth_section(on: &Measured, off: &Measured) -> Section {
    let mut rows = Vec::new();
    // Named apart from the rows above (", authenticated"), whose names carry goals.
    let mut pair = |name: &str, on: &Samples, off: &Samples| {
        rows.push(
            Row::new(format!("{name}, authenticated: p50"), on.p50(), "ms").baseline(off.p50()),
        );
        rows.push(
            Row::new(format!("{name}, authenticated: p99"), on.p99(), "ms").baseline(off.p99()),
        );
    };
    pair("send, then consume", &on.then, &off.then);
    pair("send → waiting consume", &on.waiting, &off.waiting);
    pair("question → decision round trip", &on.decided, &off.decided);
    for (instances, loads_on, loads_off) in [
        ("1 instance", &on.one_loads, &off.one_loads),
        ("2 instances", &on.two_loads, &off.two_loads),
    ] {
        for ((rate, a), (_, b)) in loads_on.iter().zip(loads_off.iter()) {
            pair(
                &format!("send → consume at {rate} msg/s, {instances}"),
                a,
                b,
            );
        }
    }
    for (instances, a, b) in [
        ("1 instance", &on.one_most, &off.one_most),
        ("2 instances", &on.two_most, &off.two_most),
    ] {
        rows.push(
            Row::new(
                format!("max throughput, {instances}, authenticated"),
                a.throughput(),
                "msg/s",
            )
            .baseline(b.throughput()),
        );
    }
    Section {
        title: "Bus: authentication on against off (default sync)".into(),
        method: "Every bus figure above, measured twice in this run: the Guild column as Guild runs \
                 (every connection authenticated with its own credentials, each agent on a \
                 connection of its own with the credentials its spawn returned, the broker checking \
                 every publish and subscription against the permission table), the baseline column \
                 on a fresh nats-server without authentication and the services started with \
                 `--insecure` (the same processes and counts, each agent still on its own \
                 connection). The ratio is what authentication and the per-agent permissions cost."
            .into(),
        rows,
        notes: vec![format!(
            "Resident memory at the end, authentication on: {}; off: {}.",
            on.memory, off.memory
        )],
        figures: Vec::new(),
    }
}

fn load_section(
    sync: Sync,
    step: Duration,
    each: usize,
    raw: &[(u32, Samples)],
    raw_most: &Samples,
    guild: [(&Vec<(u32, Samples)>, &Samples); 2],
) -> Section {
    let mut rows = Vec::new();
    for (i, (loads, most)) in guild.iter().enumerate() {
        let instances = if i == 0 { "1 instance" } else { "2 instances" };
        for ((rate, g), (_, r)) in loads.iter().zip(raw) {
            let name = format!("send → consume at {rate} msg/s, {instances}");
            rows.push(Row::new(format!("{name}: p50"), g.p50(), "ms").baseline(r.p50()));
            rows.push(
                Row::new(format!("{name}: p99"), g.p99(), "ms")
                    .target("< 5 ms; ≤ 2× baseline")
                    .baseline(r.p99())
                    .goal(delivery_goal(g, r)),
            );
            rows.push(Row::new(format!("{name}: p99.9"), g.p999(), "ms").baseline(r.p999()));
        }
        rows.push(
            Row::new(
                format!("max throughput, {instances}, every message consumed and acked"),
                most.throughput(),
                "msg/s",
            )
            .baseline(raw_most.throughput()),
        );
    }
    let curve = |s: &[(u32, Samples)], q: fn(&Samples) -> f64| -> Vec<(f64, f64)> {
        s.iter().map(|(rate, x)| (f64::from(*rate), q(x))).collect()
    };
    let mut series = Vec::new();
    for (color, label, loads) in [
        (0, "raw JetStream", raw),
        (1, "bus-svc ×1", guild[0].0.as_slice()),
        (2, "bus-svc ×2", guild[1].0.as_slice()),
    ] {
        series.push(Series::new(
            format!("{label} p99"),
            color,
            curve(loads, Samples::p99),
        ));
        series
            .push(Series::new(format!("{label} p50"), color, curve(loads, Samples::p50)).dashed());
    }
    let pairs = load::PAIRS;
    Section {
        title: format!("Bus under load ({})", sync.label()),
        method: format!(
            "Offered loads of {} messages per second, each for {:.1} s, spread over {pairs} sender agents \
             each sending to its own receiver agent, which waits in `consume` and acks every message. Open \
             loop: every message is sent at its scheduled time by a task of its own, so a slow send never \
             holds back the next and queueing shows in the latency, which runs from the start of the send \
             until the receiver has the message. First with one bus-svc instance, then with two in one \
             queue group (fresh agents for each run). Baseline: the same load published to {pairs} \
             subjects on raw JetStream, each read by a durable pull consumer that acks. Max throughput: \
             closed loop, {pairs} senders each sending {each} messages one after another as fast as they \
             go, until every message was consumed and acked; the baseline does the same on raw JetStream.",
            load::LOADS.map(|l| l.to_string()).join(", "),
            step.as_secs_f64()
        ),
        rows,
        notes: vec![format!(
            "With a second instance the most messages per second went from {:.0} to {:.0}. A second \
             instance cannot add write throughput: both append to one journal, conditionally on its last \
             sequence, so their appends serialize and a lost race costs a retry; it adds availability and \
             spreads waits and reads. Past the most a configuration sustains, open-loop latency grows with \
             the queue for as long as the load lasts. What would raise the ceiling: fewer appends per \
             message (the consumer's take and its ack in one entry, or acks batched), and partitioning the \
             post office into a journal per group of inboxes, which gives up the one serial history every \
             rule now reads.",
            guild[0].1.throughput(),
            guild[1].1.throughput()
        )],
        figures: vec![Figure {
            file: format!("latency-vs-load{}.svg", sync.file_suffix()),
            plot: Plot {
                title: format!(
                    "Send → consume latency against offered load, {}",
                    sync.short_label()
                ),
                x: Axis::new("offered load (messages/s)", Scale::Linear),
                y: Axis::new("latency (ms)", Scale::Log),
                series,
            },
        }],
    }
}
