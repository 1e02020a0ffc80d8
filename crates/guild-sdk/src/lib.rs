//! The typed async client for Guild.
//!
//! One connection gives handles that mirror the seed's API: the seed's `get_spawner()`,
//! `get_bus()` and `get_mission_manager()` singletons become [`Guild::spawner`],
//! [`Guild::bus`] and [`Guild::missions`]. A connection acts as the one principal its
//! credentials name (the operator, the observer, or one agent), and the broker holds it to
//! that: each agent gets its own connection, from the credentials Guild minted when it was
//! spawned ([`Guild::connect_agent`]). [`NatsOptions`] takes the standard NATS options
//! (`NATS_URL`, `NATS_CREDS`, TLS, ...).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use guild_sdk::{AgentId, NatsOptions, Role, SpawnRequest};
//!
//! // The operator's credentials, as `guild dev` writes them.
//! let options = NatsOptions::url("nats://127.0.0.1:4222")
//!     .with_auth(guild_sdk::Auth::CredsFile(".guild/creds/operator.creds".into()));
//! let guild = guild_sdk::connect(&options).await?;
//! let orchestrator = guild
//!     .spawner()
//!     .spawn(SpawnRequest::new(AgentId::new("orchestrator-1")?, Role::Orchestrator, 50_000))
//!     .await?;
//! // The orchestrator, on its own connection, spawns a developer under itself.
//! let as_orch = guild
//!     .connect_agent(orchestrator.credentials.as_ref().ok_or("no credentials")?)
//!     .await?;
//! let dev = as_orch
//!     .spawner()
//!     .spawn(SpawnRequest::new(AgentId::new("dev-lead-1")?, Role::Developer, 5_000).parent(orchestrator.id.clone()))
//!     .await?;
//! println!("{} is {}", dev.id, dev.status);
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod agent;
pub mod audit;
mod bus;
pub mod connect;
mod error;
mod missions;
mod spawner;

use std::time::Duration;

use guild_telemetry::trace::{self, SpanExt};
use guild_wire::api::Operation;
use guild_wire::api::spawner::AgentCredentials;
use guild_wire::{ErrorReply, header, subject};
use tracing::Instrument;

pub use agent::{Agent, WorkError};
pub use bus::{Bus, Subscription};
pub use connect::{Auth, Connection, NatsOptions};
pub use error::{Error, ErrorKind};
pub use missions::Missions;
pub use spawner::Spawner;

/// Every operation's request and response types, by service (`api::bus::Receipt`, ...):
/// the wire contract, as the handles send and return them.
pub use guild_wire::api;
/// The requests the seed's calls take, with constructors of the seed's arguments.
pub use guild_wire::api::bus::{AskQuestion, SendRequest};
pub use guild_wire::api::spawner::{ReleaseTask, ScalingList, ScalingState, Terminate};
/// An audit record as stored (what [`Bus::audit_records`] returns), and its kinds.
pub use guild_wire::audit::{AuditKind, AuditRecord};
/// Which service (for [`Guild::recover`]).
pub use guild_wire::subject::Service;

// The values an agent passes and gets back, chosen one by one: ids, roles, statuses and
// the records the handles return. The domain's state types (`Registry`, `Board`,
// `PostOffice`) and its rules stay out of reach: an agent talks to the services, it does
// not run their rules (CHANGELOG.md, "guild_sdk::domain removed").
pub use guild_wire::domain::agent::{
    AgentProfile, AgentQuery, AgentStatus, Authority, Capability, ContextWindow, Mode, PublicKey,
    Role, Scaling, ScalingPolicy, SpawnRequest, SpawnerStats, Usage,
};
pub use guild_wire::domain::message::{
    DecisionRecord, Delivery, Escalation, Message, MessageStats, MessageType, Priority,
    QuestionState,
};
pub use guild_wire::domain::mission::{Dependency, Mission, MissionStatus, NewMission, Severity};
pub use guild_wire::domain::{
    AgentId, MessageId, MissionId, Phase, Principal, ReservationId, Timestamp,
};

/// How long a call waits for its reply unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to Guild, acting as one principal. Cheap to clone.
///
/// With Guild's credentials the broker pins the connection to the identity they were
/// minted for: calls go out as that principal, and a call as anyone else would be refused
/// by the broker ([`ErrorKind::PermissionDenied`]). Each agent has a connection of its own
/// ([`Guild::connect_agent`]).
#[derive(Clone, Debug)]
pub struct Guild {
    client: async_nats::Client,
    principal: Principal,
    timeout: Duration,
    /// Subjects the server refused this connection, so a call fails at once instead of
    /// waiting for its timeout.
    refusals: Option<tokio::sync::broadcast::Sender<String>>,
    /// How the connection was made: the same server, other credentials, for
    /// [`connect_agent`](Self::connect_agent).
    options: Option<std::sync::Arc<NatsOptions>>,
}

/// Connects with `options`, acting as the principal its credentials name (the operator
/// when they name none, as on a server without authentication).
pub async fn connect(options: &NatsOptions) -> Result<Guild, Error> {
    let connection = options.connect("guild-sdk").await?;
    let principal = connection.principal.clone().unwrap_or(Principal::Operator);
    Ok(Guild::from_connection(connection, principal).remember(options))
}

impl Guild {
    /// A client on an existing NATS connection, acting as the operator.
    pub fn new(client: async_nats::Client) -> Self {
        Self::from_connection(Connection::from_client(client, None), Principal::Operator)
    }

    /// A client on `connection`, acting as `principal`.
    pub fn from_connection(connection: Connection, principal: Principal) -> Self {
        Self {
            client: connection.client.clone(),
            principal,
            timeout: DEFAULT_TIMEOUT,
            refusals: connection.violations,
            options: None,
        }
    }

    /// Remembers how to reach the server, for [`connect_agent`](Self::connect_agent).
    pub fn remember(mut self, options: &NatsOptions) -> Self {
        self.options = Some(std::sync::Arc::new(options.clone()));
        self
    }

    /// A connection of agent `credentials`'s own to the same server (from a spawn reply or
    /// a re-issue), acting as that agent.
    pub async fn connect_agent(&self, credentials: &AgentCredentials) -> Result<Guild, Error> {
        let creds = credentials.creds.as_deref().ok_or_else(|| {
            Error::new(
                ErrorKind::Transport,
                "connect",
                "these credentials carry no seed (the spawn sent a public key): connect with \
                 NatsOptions::with_auth and the seed you kept",
            )
        })?;
        let options = self
            .options
            .as_deref()
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Transport,
                    "connect",
                    "this Guild was made from a bare connection: make it with guild_sdk::connect \
                     to open connections for agents",
                )
            })?
            .with_creds_text(creds)?;
        connect(&options).await
    }

    /// A new connection with the options this Guild was made with, for a client that
    /// must not share one. It acts as the same principal.
    pub async fn connect_again(&self) -> Result<Guild, Error> {
        let options = self.options.as_deref().ok_or_else(|| {
            Error::new(
                ErrorKind::Transport,
                "connect",
                "this Guild was made from a bare connection: make it with guild_sdk::connect \
                 to open more",
            )
        })?;
        Ok(connect(options).await?.acting_as(self.principal.clone()))
    }

    /// The same connection acting as `principal`: for a service calling another on a
    /// client's behalf, which its credentials allow. Anyone else is refused by the broker.
    pub fn acting_as(&self, principal: Principal) -> Self {
        Self {
            principal,
            ..self.clone()
        }
    }

    /// The same connection with another reply timeout.
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        Self {
            timeout,
            ..self.clone()
        }
    }

    /// Who calls are made for.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The NATS connection.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The operator accepts `service`'s lost state (journal entries or audit records gone,
    /// so it refuses writes with `state_lost`): writes resume without what is missing.
    /// Audited. Answers what was accepted (nothing when nothing was lost).
    pub async fn recover(&self, service: Service) -> Result<api::Recovered, Error> {
        let request = api::Recover { accept_loss: true };
        match service {
            Service::Spawner => self.call::<api::spawner::op::Recover>(&request).await,
            Service::Bus => self.call::<api::bus::op::Recover>(&request).await,
            Service::Mission => self.call::<api::mission::op::Recover>(&request).await,
        }
    }

    /// The agent spawner (the seed's `get_spawner()`).
    pub fn spawner(&self) -> Spawner<'_> {
        Spawner::new(self)
    }

    /// The consultation bus (the seed's `get_bus()`).
    pub fn bus(&self) -> Bus<'_> {
        Bus::new(self)
    }

    /// The mission manager (the seed's `get_mission_manager()`).
    pub fn missions(&self) -> Missions<'_> {
        Missions::new(self)
    }

    /// Calls operation `O` with `request` and decodes its reply.
    pub async fn call<O: Operation>(&self, request: &O::Request) -> Result<O::Response, Error> {
        self.call_with_timeout::<O>(request, self.timeout).await
    }

    /// [`call`](Self::call) with a timeout for this call only.
    ///
    /// The call is a CLIENT span `request guild.<service>.v1.<op>.{principal}`, a child of
    /// the caller's current span, whose context travels in the request's `traceparent`
    /// header (when telemetry is exported).
    pub async fn call_with_timeout<O: Operation>(
        &self,
        request: &O::Request,
        timeout: Duration,
    ) -> Result<O::Response, Error> {
        let subject = subject::request(O::SERVICE, O::NAME, &self.principal);
        let span = trace::client(&subject);
        span.attr("guild.op", O::NAME);
        span.attr_with("guild.principal", || self.principal.token());
        let result = self
            .exchange::<O>(subject, request, timeout)
            .instrument(span.clone())
            .await;
        if let Err(e) = &result {
            span.fail(&e.to_string());
        }
        result
    }

    async fn exchange<O: Operation>(
        &self,
        subject: String,
        request: &O::Request,
        timeout: Duration,
    ) -> Result<O::Response, Error> {
        let body = serde_json::to_vec(request)
            .map_err(|e| Error::new(ErrorKind::Decode, O::NAME, e.to_string()))?;
        // The request's own timeout, not the connection's default (10 s): a consume may
        // wait longer than that on purpose.
        let mut request = async_nats::Request::new()
            .payload(body.into())
            .timeout(Some(timeout));
        let mut headers = async_nats::HeaderMap::new();
        trace::inject(&mut headers);
        if !headers.is_empty() {
            request = request.headers(headers);
        }
        // A refusal by the broker comes back as an error on the connection, not as a reply:
        // watch for it, so the call fails now rather than at its timeout.
        let mut refusals = self.refusals.as_ref().map(|t| t.subscribe());
        let refused = async {
            match refusals.as_mut() {
                Some(rx) => loop {
                    match rx.recv().await {
                        Ok(s) if s == subject => return,
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(_) => std::future::pending::<()>().await,
                    }
                },
                None => std::future::pending::<()>().await,
            }
        };
        let sent = tokio::select! {
            r = self.client.send_request(subject.clone(), request) => r,
            () = refused => {
                return Err(Error::new(
                    ErrorKind::PermissionDenied,
                    O::NAME,
                    format!(
                        "the NATS server refused to let {} publish on {subject}: these \
                         credentials may act only as themselves",
                        self.principal
                    ),
                ));
            }
        };
        let reply = match sent {
            Err(e) => {
                let kind = match e.kind() {
                    async_nats::RequestErrorKind::NoResponders => ErrorKind::NoResponders,
                    async_nats::RequestErrorKind::TimedOut => ErrorKind::TimedOut,
                    _ => ErrorKind::Transport,
                };
                let what = match kind {
                    ErrorKind::TimedOut => {
                        format!("no reply from {} in {timeout:?}", O::SERVICE.micro_name())
                    }
                    _ => format!("{} did not answer ({e})", O::SERVICE.micro_name()),
                };
                return Err(Error::new(kind, O::NAME, what));
            }
            Ok(reply) => reply,
        };
        let failed = reply
            .headers
            .as_ref()
            .is_some_and(|h| h.get(header::SERVICE_ERROR_CODE).is_some());
        if failed {
            let body = serde_json::from_slice::<ErrorReply>(&reply.payload).map_err(|e| {
                Error::new(
                    ErrorKind::Decode,
                    O::NAME,
                    format!("unreadable error reply: {e}"),
                )
            })?;
            return Err(Error::rejected(O::NAME, body.error));
        }
        serde_json::from_slice(&reply.payload)
            .map_err(|e| Error::new(ErrorKind::Decode, O::NAME, format!("unreadable reply: {e}")))
    }
}
