//! Fuzz targets over the wire contract (docs/FUZZING.md): every request decoder, and every
//! endpoint of the three services over a real nats-server. The domain's targets are in
//! `crates/guild-domain/tests/fuzz.rs`.
//!
//! The targets themselves are `#[ignore]`d: `just fuzz` runs each for
//! `GUILD_FUZZ_SECONDS` (30 by default), `just fuzz-long` for ten minutes. The ordinary
//! suite replays what is committed (the corpus in `fuzz/corpus/`, the saved failing cases
//! and the named regression tests), which takes seconds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

/// How long a target runs; the proptest loop.
mod budget;
/// Target 1: every request decoder.
mod decode;
/// Mutations of valid bodies.
mod mutate;
/// Every operation with its request and reply types.
mod ops;
/// A panicking handler still answers.
mod panic;
/// Values from each request's JSON Schema.
mod schema;
/// Target 3: every endpoint of the three services, over a real nats-server.
mod wire;
