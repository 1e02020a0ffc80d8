//! What telemetry costs: measurements of the spawn, bus and overhead scenarios run twice,
//! each time on a fresh stack of the same shape, first with the trace exporter off (no
//! `OTEL_*` variable), then on (every service exporting spans and metrics by OTLP/HTTP to
//! a sink in the bench process). The exporter-off figure is each row's baseline.

use std::time::Duration;

use guild_sdk::Role;

use crate::report::{Row, Section};
use crate::scenario::bus::{self, decision, latency};
use crate::scenario::{aid, overhead, spawn, spawner_env};
use crate::sink::Received;
use crate::stack::{Service, Stack, Sync, Telemetry};
use crate::stats::Samples;

/// A suggested goal, Guild's own: with the exporter on, at most this many times the
/// exporter-off median.
const GOAL: f64 = 1.1;

/// The agents of the send → waiting consume run, and the one the reads read.
const SENDER: &str = "bench-sender";
const RECEIVER: &str = "bench-receiver";
const TARGET: &str = "bench-target";

/// One run's figures.
struct Run {
    spawn: Samples,
    waiting: Samples,
    decision: Samples,
    read: Samples,
    write: Samples,
    /// Resident memory of each service at the end.
    memory: String,
    /// With the exporter on: what the sink had received once the services had stopped
    /// (exporting what they still held), and how long stopping them took.
    exported: Option<(Received, Duration)>,
}

async fn measure(telemetry: Telemetry, n: usize, asks: usize) -> anyhow::Result<Run> {
    let mut stack = Stack::start(Sync::Default, telemetry).await?;
    stack.add_service(Service::Spawner, &spawner_env()).await?;
    stack.add_service(Service::Mission, &[]).await?;
    stack.add_service(Service::Bus, &[]).await?;
    let guild = stack.operator().with_timeout(Duration::from_secs(30));
    for name in [SENDER, RECEIVER, TARGET] {
        bus::spawn(&stack, name, Role::Developer, None).await?;
    }
    decision::spawn_agents(&stack).await?;

    spawn::spawns(&guild, "warm", 20).await?;
    let spawn = spawn::spawns(&guild, "s", n).await?;
    let waiting = latency::guild_waiting(&stack, SENDER, RECEIVER, n).await?;
    let decision = decision::guild(&stack, asks).await?;
    let read = overhead::spawner_gets(&guild, &aid(TARGET)?, n).await?;
    let write = overhead::mission_creates(&guild, "m", n).await?;
    let memory = stack.memory_note();
    let exported = match telemetry {
        Telemetry::Off => None,
        Telemetry::Otlp => {
            let took = stack.stop_services().await;
            stack.received().map(|r| (r, took))
        }
    };
    Ok(Run {
        spawn,
        waiting,
        decision,
        read,
        write,
        memory,
        exported,
    })
}

/// `<name>p50` and `<name>p99` with the exporter on, against off.
fn compared(name: &str, off: &Samples, on: &Samples) -> [Row; 2] {
    [
        Row::new(format!("{name}p50, exporter on"), on.p50(), "ms")
            .target(format!("≤ {GOAL}× exporter off (suggested)"))
            .baseline(off.p50())
            .goal(on.p50() <= GOAL * off.p50()),
        Row::new(format!("{name}p99, exporter on"), on.p99(), "ms").baseline(off.p99()),
    ]
}

pub(crate) async fn run(quick: bool) -> anyhow::Result<Section> {
    let n = if quick { 100 } else { 2_000 };
    let asks = if quick { 20 } else { 500 };
    let off = measure(Telemetry::Off, n, asks).await?;
    let on = measure(Telemetry::Otlp, n, asks).await?;
    let (received, stopping) = on
        .exported
        .ok_or_else(|| anyhow::anyhow!("the exporter-on stack has no sink"))?;

    let mut rows = Vec::new();
    for (name, off, on) in [
        ("spawn ", &off.spawn, &on.spawn),
        ("send → waiting consume: ", &off.waiting, &on.waiting),
        (
            "question → decision round trip: ",
            &off.decision,
            &on.decision,
        ),
        ("spawner-svc read `get` ", &off.read, &on.read),
        ("mission-svc write `create_mission` ", &off.write, &on.write),
    ] {
        rows.extend(compared(name, off, on));
    }
    rows.push(Row::new(
        "spans received by the OTLP sink, exporter on",
        received.spans as f64,
        "spans",
    ));
    Ok(Section {
        title: format!("Trace exporter off and on ({})", Sync::Default.label()),
        method: format!(
            "**In this section the baseline column is the exporter-off figure, not raw NATS**, and the ratio \
             is exporter on over off. The measurements are those of the Spawn, Bus: send → consume and \
             Request overhead sections, made twice, each time on a fresh stack of the same shape (nats-server, \
             and spawner-svc, mission-svc and bus-svc as processes of their own): first with the exporter \
             off, then on. In each run: {n} root spawns after 20 to warm up; {n} REQUESTs to an agent already \
             waiting in `consume`, {settle} ms apart, after 20 to warm up; {asks} question → decision round \
             trips after 5; {n} spawner-svc `get` reads and {n} mission-svc `create_mission` writes, each \
             after 20. *Exporter off*: no `OTEL_*` variable reaches a service (the bench removes any it \
             inherited). *Exporter on*: each service gets `OTEL_EXPORTER_OTLP_ENDPOINT`, naming a sink in \
             the bench process (a loopback OTLP/HTTP receiver that answers `200 OK` and counts what it \
             gets), and `OTEL_SERVICE_NAME`, and nothing else: the OpenTelemetry SDK's defaults (every \
             trace sampled; spans exported in batches when 512 wait or every 5 s; metrics every 60 s). The \
             bench's own calls export nothing and carry no trace context, so each trace starts in a service. \
             The goal of at most {GOAL}× at the median is a suggestion of Guild's own: issue 7 asks for no \
             measurable overhead when the variables are unset and sets none for when they are set.",
            settle = latency::SETTLE.as_millis(),
        ),
        rows,
        notes: vec![
            format!(
                "The exporter was on: the sink received {} spans in {} trace exports and {} metric \
                 exports (a service that recorded no metric sends none; {:.1} MiB of JSON in all), counted after the services were stopped with SIGTERM, on \
                 which each exports what it still holds; stopping the three took {} ms.",
                received.spans,
                received.trace_posts,
                received.metric_posts,
                received.bytes as f64 / (1024.0 * 1024.0),
                stopping.as_millis(),
            ),
            "What \"exporter off\" is: the services as every other section runs them. With no endpoint \
             set, guild-telemetry installs no exporter and no OpenTelemetry layer, and Guild's spans are \
             disabled spans (one atomic load each; ARCHITECTURE.md, \"Traces and metrics\"). That is the \
             case issue 7 wants free of measurable overhead. No build without telemetry exists to hold it \
             against, so the comparison available is with raw NATS: the exporter-off figures here come \
             from the same measurements as the Guild figures of the Spawn, Bus: send → consume and Request \
             overhead sections (default sync), which carry the raw baselines."
                .into(),
            "What \"exporter on\" adds to a request: its spans made and their attributes formatted \
             (the SERVER span, the journal append's and the audit append's PRODUCER spans, a message's \
             `create` span), `traceparent` written into the headers of what it publishes, the SDK's \
             work as each span ends (handing it to the batch queue), and, off the request path, the \
             batches encoded as JSON and posted by a thread of each service, competing for the same \
             two cores as the services, nats-server, the sink and the bench. The two runs are made one \
             after the other, so whatever else the machine did in between is in the ratio too; in \
             quick mode the counts are small and the ratios noisy. \
             Where the goal is missed, what would close it is first a profile of the request path \
             with the exporter on; the candidates are the attributes formatted per span, the number of \
             spans per request (the journal's PRODUCER span could be an event on the request's span) \
             and sampling (`OTEL_TRACES_SAMPLER=parentbased_traceidratio`), which a deployment can \
             already set."
                .into(),
            format!(
                "Resident memory at the end, exporter off: {}; exporter on: {}.",
                off.memory, on.memory
            ),
        ],
        figures: Vec::new(),
    })
}
