//! How long a fuzz target runs, and the loop that runs a proptest strategy until then.
//!
//! Shared by every fuzz target (`tests/fuzz/` and `crates/guild-domain/tests/fuzz.rs`,
//! which includes this file by path), so there is one knob and one way to replay:
//!
//! - `GUILD_FUZZ_SECONDS` (default 30): how long each target runs.
//! - `GUILD_FUZZ_SEED` (default: from the clock, printed): the run's seed. Rounds derive
//!   their seeds from it, so a failing run is replayed by setting it.
//!
//! A failure is shrunk by proptest, its case saved to the target's regressions file
//! (replayed first by every later run), and reported with the seed; then it becomes a
//! named regression test (docs/FUZZING.md).

#![allow(dead_code)] // Each target uses its share.

use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{
    Config, FileFailurePersistence, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner,
};

/// The variable holding each target's budget, in seconds.
pub(crate) const SECONDS_VAR: &str = "GUILD_FUZZ_SECONDS";
/// The variable fixing the run's seed.
pub(crate) const SEED_VAR: &str = "GUILD_FUZZ_SEED";
/// The budget when `GUILD_FUZZ_SECONDS` is not set: what CI gives each target.
pub(crate) const DEFAULT_SECONDS: u64 = 30;

/// How long each target runs.
pub(crate) fn budget() -> Duration {
    match std::env::var(SECONDS_VAR) {
        Ok(text) => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
            .unwrap_or_else(|| panic!("{SECONDS_VAR}={text:?} is not a number of seconds")),
        Err(_) => Duration::from_secs(DEFAULT_SECONDS),
    }
}

/// The run's seed: `GUILD_FUZZ_SEED`, or one from the clock.
pub(crate) fn seed() -> u64 {
    match std::env::var(SEED_VAR) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_VAR}={text:?} is not a u64")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    }
}

/// A deterministic generator for round `round` of a run seeded with `seed`.
pub(crate) fn rng(seed: u64, round: u64) -> TestRng {
    let mut bytes = [0u8; 32];
    let mixed = seed ^ round.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&mixed.rotate_left(i as u32 * 16).to_le_bytes());
    }
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

/// What a run did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ran {
    /// Cases tried (persisted regressions not counted).
    pub(crate) cases: u64,
    /// Rounds of `cases_per_round`.
    pub(crate) rounds: u64,
    /// How long it took.
    pub(crate) took: Duration,
}

/// Runs `test` on values of `strategy` for `budget`: rounds of `cases_per_round` cases,
/// each round from its own seed. Every round first replays the cases saved in
/// `regressions` (a proptest regressions file). A failure panics with the shrunk case,
/// the seed and the way to replay it. With a zero budget only the saved cases run.
pub(crate) fn run<S>(
    name: &str,
    regressions: &'static str,
    budget: Duration,
    cases_per_round: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) -> Ran
where
    S: Strategy,
{
    let seed = seed();
    eprintln!(
        "fuzz {name}: {:.0} s, {SEED_VAR}={seed}, saved cases in {regressions}",
        budget.as_secs_f64()
    );
    let start = Instant::now();
    let mut ran = Ran {
        cases: 0,
        rounds: 0,
        took: Duration::ZERO,
    };
    loop {
        let cases = if budget.is_zero() { 0 } else { cases_per_round };
        let config = Config {
            cases,
            failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
            // No source file: the regressions path is given directly.
            source_file: None,
            rng_algorithm: RngAlgorithm::ChaCha,
            // Shrinking a failure may take a while, but not forever.
            max_shrink_time: 60_000,
            ..Config::default()
        };
        let mut runner = TestRunner::new_with_rng(config, rng(seed, ran.rounds));
        if let Err(e) = runner.run(&strategy, &test) {
            let how = match e {
                TestError::Abort(reason) => format!("aborted: {reason}"),
                TestError::Fail(reason, value) => {
                    format!("{reason}\nminimal failing input: {value:#?}")
                }
            };
            panic!(
                "fuzz {name} failed in round {} ({SEED_VAR}={seed}): {how}\n\
                 The case is saved in {regressions} and replayed first by every run; make it \
                 a named regression test (docs/FUZZING.md).",
                ran.rounds
            );
        }
        ran.cases += u64::from(cases);
        ran.rounds += 1;
        if start.elapsed() >= budget {
            break;
        }
    }
    ran.took = start.elapsed();
    eprintln!(
        "fuzz {name}: {} cases in {} rounds, {:.1} s",
        ran.cases,
        ran.rounds,
        ran.took.as_secs_f64()
    );
    ran
}
