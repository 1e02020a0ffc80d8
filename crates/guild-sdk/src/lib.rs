//! The typed async client for Guild.
//!
//! One connection gives handles that mirror the seed's API: the seed's `get_spawner()`,
//! `get_bus()` and `get_mission_manager()` singletons become [`Guild::spawner`],
//! [`Guild::bus`] and [`Guild::missions`]. Every call is made on behalf of one
//! principal: the operator, or an agent ([`Guild::as_agent`]), whose id travels in the
//! request subject.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use guild_sdk::domain::agent::{Role, SpawnRequest};
//! use guild_sdk::domain::AgentId;
//!
//! let guild = guild_sdk::connect("nats://127.0.0.1:4222").await?;
//! let spawner = guild.spawner();
//! let orchestrator = spawner
//!     .spawn(SpawnRequest::new(AgentId::new("orchestrator-1")?, Role::Orchestrator, 50_000))
//!     .await?;
//! // The orchestrator spawns a developer under itself (the seed's `spawner.spawn(...)`).
//! let as_orch = guild.as_agent(orchestrator.id.clone());
//! let dev = as_orch
//!     .spawner()
//!     .spawn(SpawnRequest::new(AgentId::new("dev-lead-1")?, Role::Developer, 5_000).parent(orchestrator.id))
//!     .await?;
//! println!("{} is {}", dev.id, dev.status);
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod agent;
mod bus;
mod error;
mod missions;
mod spawner;

use std::time::Duration;

use guild_telemetry::trace::{self, SpanExt};
use guild_wire::api::Operation;
use guild_wire::domain::{AgentId, Principal};
use guild_wire::{ErrorReply, header, subject};
use tracing::Instrument;

pub use agent::{Agent, WorkError};
pub use bus::{Bus, Subscription};
pub use error::{Error, ErrorKind};
pub use guild_wire::api;
pub use guild_wire::domain;
pub use missions::Missions;
pub use spawner::Spawner;

/// How long a call waits for its reply unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to Guild, acting as one principal. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Guild {
    client: async_nats::Client,
    principal: Principal,
    timeout: Duration,
}

/// Connects to the NATS server(s) at `url` (comma separated), acting as the operator.
pub async fn connect(url: &str) -> Result<Guild, Error> {
    let urls: Vec<&str> = url
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect();
    let client = async_nats::ConnectOptions::new()
        .name("guild-sdk")
        .connect(urls.as_slice())
        .await
        .map_err(|e| {
            Error::new(
                ErrorKind::Transport,
                "connect",
                format!("cannot reach NATS at {url}: {e}"),
            )
        })?;
    Ok(Guild::new(client))
}

impl Guild {
    /// A client on an existing NATS connection, acting as the operator.
    pub fn new(client: async_nats::Client) -> Self {
        Self {
            client,
            principal: Principal::Operator,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same connection acting as agent `id`.
    pub fn as_agent(&self, id: AgentId) -> Self {
        Self {
            principal: Principal::Agent(id),
            ..self.clone()
        }
    }

    /// The same connection acting as `principal` (a service calling on a client's behalf).
    pub fn acting_as(&self, principal: Principal) -> Self {
        Self {
            principal,
            ..self.clone()
        }
    }

    /// The same connection acting as the operator.
    pub fn as_operator(&self) -> Self {
        Self {
            principal: Principal::Operator,
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
        let reply = match self.client.send_request(subject, request).await {
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
