//! Identity at the broker (ARCHITECTURE.md, "Identity"): what agents' credentials let
//! them do, checked against a real nats-server with authentication on, where the broker
//! itself must refuse what a credential does not allow.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod quota;

/// The shared harness: Guild with two agents, raw connections, what changed.
mod broker;

/// Audit records appended past the broker, caught by their signatures.
mod audit_forgery;
/// Which credentials connect: none, garbage, terminated, replaced; none in any stream.
mod credentials;
/// The body rule at every endpoint `$SRV.INFO` lists (here for this suite's fixture).
mod empty_body;
/// Journal entries, audit records, events and lookalike subjects written by an agent.
mod forgery;
/// Acting as another agent or as the operator.
mod impersonation;
/// The JetStream API, for agents and the operator.
mod jetstream;
/// The credential's payload and subscription limits, the services' rate limit.
mod limits;
/// The observer: reads, no writes.
mod observer;
/// Operations only the operator may call, tried by an agent.
mod operator_only;
/// Subscriptions an agent may not make.
mod reading;
/// Requests on an agent's own subject whose reply subject is not its own.
mod reply_redirection;
/// The services' rows: each its own journal, events, audit kinds and requests.
mod services;
