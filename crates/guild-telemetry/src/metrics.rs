//! The seed's performance metrics as OpenTelemetry instruments.
//!
//! | metric | instrument | unit | recorded by | the seed's target |
//! |---|---|---|---|---|
//! | `guild.message.latency` | histogram | s | bus-svc, when a consume hands a message over (first delivery): now − accepted | < 100 ms |
//! | `guild.mission.dependency_resolution.duration` | histogram | s | mission-svc: a completion request's arrival → its dependents READY (appended, `ready` sent) | < 50 ms |
//! | `guild.agent.spawn.duration` | histogram | s | spawner-svc: a spawn request's arrival → the agent saved and `spawned` published | < 500 ms |
//! | `guild.decision.duration` | histogram | s | bus-svc: a question accepted → decided | < 2 min |
//! | `guild.agent.context_window.utilization` | gauge | 1 | spawner-svc: mean over live agents that reported one | 80–90 % |
//! | `guild.agent.parallelization.efficiency` | gauge | 1 | spawner-svc: working agents / max agents, now (`window=current`) and time-averaged (`window=average`) | 70 %+ |
//! | `guild.errors` | counter | 1 | every crate, through [`count_error`]: an error that fails no request but is logged with its cause (`what` names it: an unreadable event, a journal entry that stopped its follower, ...) | 0 |
//!
//! Instruments come from the global meter provider, which [`crate::init`] sets only when
//! metrics are exported; otherwise they are the no-op instruments, and recording costs a
//! virtual call. Gauges are read by a callback at export time only.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};

/// The histograms Guild records.
#[derive(Debug)]
pub struct Instruments {
    /// `guild.message.latency`.
    pub message_latency: Histogram<f64>,
    /// `guild.mission.dependency_resolution.duration`.
    pub dependency_resolution: Histogram<f64>,
    /// `guild.agent.spawn.duration`.
    pub spawn_time: Histogram<f64>,
    /// `guild.decision.duration`.
    pub decision_time: Histogram<f64>,
    /// `guild.errors`, by `what` (recorded through [`count_error`]).
    errors: Counter<u64>,
}

/// Bucket bounds for request-scale durations (0.5 ms to 10 s).
const FAST: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Bucket bounds for human-scale durations (1 s to 1 h).
const SLOW: [f64; 11] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 14400.0,
];

fn meter() -> Meter {
    opentelemetry::global::meter("guild")
}

/// The instruments, made on first use from the meter provider installed then.
pub fn instruments() -> &'static Instruments {
    static INSTRUMENTS: OnceLock<Instruments> = OnceLock::new();
    INSTRUMENTS.get_or_init(|| {
        let m = meter();
        let histogram = |name: &'static str, description: &'static str, bounds: &[f64]| {
            m.f64_histogram(name)
                .with_description(description)
                .with_unit("s")
                .with_boundaries(bounds.to_vec())
                .build()
        };
        Instruments {
            message_latency: histogram(
                "guild.message.latency",
                "From a message accepted by the bus to its first delivery to a consumer.",
                &FAST,
            ),
            dependency_resolution: histogram(
                "guild.mission.dependency_resolution.duration",
                "From a completion request to its dependents being READY.",
                &FAST,
            ),
            spawn_time: histogram(
                "guild.agent.spawn.duration",
                "From a spawn request to the agent saved and announced.",
                &FAST,
            ),
            decision_time: histogram(
                "guild.decision.duration",
                "From a question accepted to its decision.",
                &SLOW,
            ),
            errors: m
                .u64_counter("guild.errors")
                .with_description(
                    "Errors that failed no request but were logged with their cause, by `what`.",
                )
                .build(),
        }
    })
}

/// How many errors of each kind this process counted, for tests and `guild info` to read
/// whether or not metrics are exported.
fn tally() -> &'static Mutex<BTreeMap<&'static str, u64>> {
    static TALLY: OnceLock<Mutex<BTreeMap<&'static str, u64>>> = OnceLock::new();
    TALLY.get_or_init(Mutex::default)
}

/// Counts one error of kind `what` (`guild.errors{what}`): the caller handled it without
/// failing a request and logged it with its cause; the count makes a steady trickle of them
/// visible on a dashboard instead of only in logs.
pub fn count_error(what: &'static str) {
    instruments().errors.add(1, &[KeyValue::new("what", what)]);
    let mut tally = tally().lock().unwrap_or_else(|p| p.into_inner());
    *tally.entry(what).or_default() += 1;
}

/// How many errors of kind `what` this process counted so far.
pub fn errors_counted(what: &str) -> u64 {
    let tally = tally().lock().unwrap_or_else(|p| p.into_inner());
    tally.get(what).copied().unwrap_or(0)
}

/// Registers gauge `name` (unit `1`, a ratio), read through `read` at each export: each
/// `(value, attributes)` it returns is one point.
pub fn ratio_gauge(
    name: &'static str,
    description: &'static str,
    read: impl Fn() -> Vec<(f64, Vec<KeyValue>)> + Send + Sync + 'static,
) {
    // The callback lives as long as the meter provider; the handle is a marker.
    let _gauge = meter()
        .f64_observable_gauge(name)
        .with_description(description)
        .with_unit("1")
        .with_callback(move |o| {
            for (value, attrs) in read() {
                o.observe(value, &attrs);
            }
        })
        .build();
}
