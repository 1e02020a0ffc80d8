//! Identity at the broker (ARCHITECTURE.md, "Identity"): what agents' credentials let
//! them do, checked against a real nats-server with authentication on, where the broker
//! itself must refuse what a credential does not allow.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod quota;
