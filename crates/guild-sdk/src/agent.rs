//! The agent side: a handle bound to one agent id, for the code that *is* the agent.
//!
//! It wraps what every agent does around its real work: heartbeats in the background (so
//! the spawner does not declare it FAILED), a consume loop over its inbox, and token
//! reserve / commit around each unit of work (so budgets are enforced before the tokens
//! are spent, not after).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//!
//! // NATS_CREDS names the agent's credentials (what its parent received at spawn).
//! let guild = guild_sdk::connect(&guild_sdk::NatsOptions::from_env()?).await?;
//! let me = guild.agent()?;
//! me.start_heartbeats(Duration::from_secs(5)).await?;
//! while let Some(delivery) = me.bus().consume(Duration::from_secs(20), &[]).await? {
//!     // Estimate 2,000 tokens; the closure reports what it really used.
//!     let summary = me
//!         .work(2_000, None, || async { Ok::<_, String>(("done".to_owned(), 1_250)) })
//!         .await?;
//!     me.bus().reply(&delivery.message.id, serde_json::json!({ "summary": summary }), false).await?;
//!     me.bus().ack(&delivery.delivery_id).await?;
//! }
//! # Ok(()) }
//! ```

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use guild_wire::domain::agent::ContextWindow;
use guild_wire::domain::message::{Delivery, MessageType};
use guild_wire::domain::{AgentId, MissionId, ReservationId};

use crate::{Bus, Error, ErrorKind, Guild, Missions, Spawner, Subscription};

/// One agent's handle: calls made as that agent, its heartbeats, its inbox, its budget.
/// Heartbeats stop when the handle is dropped.
#[derive(Debug)]
pub struct Agent {
    id: AgentId,
    guild: Guild,
    heartbeats: Mutex<Option<tokio::task::JoinHandle<()>>>,
    context_window: std::sync::Arc<Mutex<Option<ContextWindow>>>,
}

/// Why a unit of work did not complete.
#[derive(Debug, thiserror::Error)]
pub enum WorkError<E> {
    /// The reservation or its commit was refused (the budget is exhausted, the agent is
    /// paused, ...): the work did not run, or ran and its use could not be recorded.
    #[error(transparent)]
    Guild(#[from] Error),
    /// The work itself failed; its reservation was released.
    #[error("the work failed: {0}")]
    Work(E),
}

impl Guild {
    /// The agent handle of this connection's agent (its credentials are an agent's).
    pub fn agent(&self) -> Result<Agent, Error> {
        let id = self.principal().agent().cloned().ok_or_else(|| {
            Error::new(
                ErrorKind::PermissionDenied,
                "agent",
                format!(
                    "this connection acts as {}, not as an agent: connect with the agent's \
                     credentials (Guild::connect_agent, or NATS_CREDS=.guild/creds/<id>.creds)",
                    self.principal()
                ),
            )
        })?;
        Ok(Agent {
            guild: self.clone(),
            id,
            heartbeats: Mutex::new(None),
            context_window: std::sync::Arc::default(),
        })
    }
}

impl Agent {
    /// The agent's id.
    pub fn id(&self) -> &AgentId {
        &self.id
    }

    /// The connection, acting as this agent.
    pub fn guild(&self) -> &Guild {
        &self.guild
    }

    /// The spawner, as this agent (spawn sub-agents, heartbeat, authorize).
    pub fn spawner(&self) -> Spawner<'_> {
        self.guild.spawner()
    }

    /// The bus, as this agent (send, ask, reply, consume).
    pub fn bus(&self) -> Bus<'_> {
        self.guild.bus()
    }

    /// The mission manager, as this agent.
    pub fn missions(&self) -> Missions<'_> {
        self.guild.missions()
    }

    /// Sends a first heartbeat (a PENDING agent becomes ACTIVE and may take work), then one
    /// every `every` in the background until the handle is dropped. A failed background
    /// heartbeat is logged and retried on the next tick: the spawner's window is several
    /// ticks wide.
    pub async fn start_heartbeats(&self, every: Duration) -> Result<(), Error> {
        let first = self.context_window.lock().ok().and_then(|w| *w);
        self.spawner().heartbeat(first).await?;
        let guild = self.guild.clone();
        let window = self.context_window.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let figures = window.lock().ok().and_then(|w| *w);
                if let Err(e) = guild.spawner().heartbeat(figures).await {
                    tracing::warn!(agent = %guild.principal(), error = %e, "heartbeat failed");
                }
            }
        });
        if let Ok(mut slot) = self.heartbeats.lock()
            && let Some(old) = slot.replace(task)
        {
            old.abort();
        }
        Ok(())
    }

    /// The context-window figures the next heartbeats carry.
    pub fn report_context_window(&self, figures: ContextWindow) {
        if let Ok(mut w) = self.context_window.lock() {
            *w = Some(figures);
        }
    }

    /// Runs `handler` on each message of `types` (every type when empty) as it arrives,
    /// acking what it accepts; see [`Bus::subscribe`].
    pub fn on<F, Fut>(&self, types: &[MessageType], handler: F) -> Subscription
    where
        F: FnMut(Delivery) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), String>> + Send,
    {
        self.bus().subscribe(types, handler)
    }

    /// A unit of work under the budget: reserves `estimate` tokens (charged to `mission`
    /// too when named), runs `work`, which returns its result and the tokens it really
    /// used, and commits that use; a failed `work` releases the reservation.
    pub async fn work<T, E, F, Fut>(
        &self,
        estimate: u64,
        mission: Option<&MissionId>,
        work: F,
    ) -> Result<T, WorkError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(T, u64), E>>,
    {
        // A fresh id per unit: a uuid always makes a valid token.
        let reservation = ReservationId::new(format!("r-{}", uuid::Uuid::new_v4().simple()))
            .map_err(|e| Error::new(ErrorKind::Decode, "reserve_tokens", e.to_string()))?;
        self.spawner()
            .reserve_tokens(&self.id, &reservation, estimate, mission)
            .await?;
        match work().await {
            Ok((value, used)) => {
                self.spawner()
                    .commit_tokens(&self.id, &reservation, used)
                    .await?;
                Ok(value)
            }
            Err(e) => {
                if let Err(release) = self.spawner().release_tokens(&self.id, &reservation).await {
                    tracing::warn!(error = %release, "could not release a reservation");
                }
                Err(WorkError::Work(e))
            }
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Ok(mut slot) = self.heartbeats.lock()
            && let Some(task) = slot.take()
        {
            task.abort();
        }
    }
}
