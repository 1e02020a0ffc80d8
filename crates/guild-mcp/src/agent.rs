//! The one agent a `guild mcp` process speaks as: its connection, what it watches (its
//! inbox log, the spawner's events about it, the mission events about its missions) and
//! what it remembers between tool calls (the open reservation, the messages seen, its
//! missions, whether it has ended).

use std::collections::{BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::StreamExt;
use guild_sdk::api::mission;
use guild_sdk::api::spawner::{AgentCredentials, CommitTokens, ReserveTokens, op};
use guild_sdk::{
    AgentId, AgentProfile, Guild, Message, MessageId, MessageType, MissionId, Principal,
    ReservationId,
};
use guild_wire::domain::agent::{Event, Reservation};
use guild_wire::domain::mission::Event as MissionEvent;
use guild_wire::domain::{Rejection, agent::AgentStatus};
use guild_wire::subject::{self, Service};
use guild_wire::{ErrorBody, ErrorCode};
use rmcp::RoleServer;
use rmcp::model::ResourceUpdatedNotificationParam;
use rmcp::service::Peer;
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use crate::refusal::{Refusal, rule};
use crate::resources;
use crate::tools::{Usage, fresh_id};

/// How many of the latest messages the inbox resource keeps.
const INBOX_KEPT: usize = 100;

/// How often the process heartbeats for the agent (the spawner's window is 30 s).
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);

/// The agent's state shared by every MCP session of this process.
pub(crate) struct Shared {
    /// The connection, acting as the agent (its own credentials).
    guild: Guild,
    /// The agent's id.
    id: AgentId,
    /// Where the credentials of spawned children are written (`<home>/creds`, mode 0600).
    layout: guild_auth::Layout,
    /// Keeps the heartbeats going while the process runs (stopped on drop).
    heartbeat: Mutex<Option<guild_sdk::Agent>>,
    /// The reservation `usage` is committed against, once `reserve_tokens` made one.
    open: Mutex<Option<Reservation>>,
    /// Set when the agent ended (terminated, FAILED, credentials replaced): every tool
    /// call returns this.
    ended: Mutex<Option<ErrorBody>>,
    /// The sessions to notify (one on stdio; one per HTTP session).
    peers: Mutex<Vec<Peer<RoleServer>>>,
    /// Resource URIs some session subscribed to.
    subscribed: Mutex<BTreeSet<String>>,
    /// The latest messages seen entering the inbox (from the inbox log), oldest first.
    inbox: Mutex<VecDeque<Message>>,
    /// `ask_and_wait` calls waiting for the decision on their question.
    waiters: Mutex<Vec<(MessageId, oneshot::Sender<Message>)>>,
    /// The missions known to be this agent's (read at start, then from the events that
    /// name it), whose events update `guild://missions`.
    missions: Mutex<BTreeSet<MissionId>>,
    /// The operator's connection, when the host's user answers for the operator.
    pub(crate) operator: Option<Guild>,
    /// Questions already put to the host's user (each once).
    pub(crate) elicited: Mutex<BTreeSet<MessageId>>,
}

/// Locks `m`, recovering from a poisoned lock (the data is plain values).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// The agent's state on `guild` (which must act as an agent); `home`'s `creds/` keeps
    /// its children's credentials.
    pub(crate) fn new(agent: crate::Agent) -> Result<Arc<Self>, crate::Error> {
        let crate::Agent {
            guild,
            home,
            operator,
        } = agent;
        if let Some(o) = &operator
            && o.principal() != &Principal::Operator
        {
            return Err(crate::Error::Config(format!(
                "the operator's connection acts as {}: give the operator's credentials",
                o.principal()
            )));
        }
        let id = guild
            .principal()
            .agent()
            .cloned()
            .ok_or_else(|| crate::Error::NotAnAgent(guild.principal().to_string()))?;
        Ok(Arc::new(Self {
            guild,
            id,
            layout: guild_auth::Layout::under(&home),
            heartbeat: Mutex::new(None),
            open: Mutex::new(None),
            ended: Mutex::new(None),
            peers: Mutex::new(Vec::new()),
            subscribed: Mutex::new(BTreeSet::new()),
            inbox: Mutex::new(VecDeque::new()),
            waiters: Mutex::new(Vec::new()),
            missions: Mutex::new(BTreeSet::new()),
            operator,
            elicited: Mutex::new(BTreeSet::new()),
        }))
    }

    /// The connection.
    pub(crate) fn guild(&self) -> &Guild {
        &self.guild
    }

    /// The agent's id.
    pub(crate) fn id(&self) -> &AgentId {
        &self.id
    }

    /// The open reservation's id.
    pub(crate) fn open_reservation(&self) -> Option<ReservationId> {
        lock(&self.open).as_ref().map(|r| r.id.clone())
    }

    /// Makes `r` the open reservation.
    pub(crate) fn set_open_reservation(&self, r: Option<Reservation>) {
        *lock(&self.open) = r;
    }

    /// `id` was settled (committed or released): it is open no more.
    pub(crate) fn settled(&self, id: &ReservationId) {
        let mut open = lock(&self.open);
        if open.as_ref().is_some_and(|r| &r.id == id) {
            *open = None;
        }
    }

    /// Why every call is refused now, once the agent ended.
    pub(crate) fn ended(&self) -> Option<ErrorBody> {
        lock(&self.ended).clone()
    }

    /// The latest messages seen entering the inbox.
    pub(crate) fn inbox(&self) -> Vec<Message> {
        lock(&self.inbox).iter().cloned().collect()
    }

    /// The decision on `question`, once it enters the inbox (register before asking, so
    /// it cannot be missed). The message stays in the inbox, for `consume` and `ack`.
    pub(crate) fn decision_on(&self, question: MessageId) -> oneshot::Receiver<Message> {
        let (tx, rx) = oneshot::channel();
        let mut waiters = lock(&self.waiters);
        waiters.retain(|(_, w)| !w.is_closed());
        waiters.push((question, tx));
        rx
    }

    /// A session to notify (sessions that closed meanwhile are forgotten: an HTTP host
    /// that opened and closed many would otherwise be kept for the life of the process).
    pub(crate) fn add_peer(&self, peer: Peer<RoleServer>) {
        let mut peers = lock(&self.peers);
        peers.retain(|p| !p.is_transport_closed());
        peers.push(peer);
    }

    /// The sessions still open.
    pub(crate) fn peers(&self) -> Vec<Peer<RoleServer>> {
        let mut peers = lock(&self.peers);
        peers.retain(|p| !p.is_transport_closed());
        peers.clone()
    }

    /// Some session subscribed to `uri` (or unsubscribed).
    pub(crate) fn subscribe(&self, uri: String, on: bool) {
        let mut s = lock(&self.subscribed);
        if on {
            s.insert(uri);
        } else {
            s.remove(&uri);
        }
    }

    /// Saves a child's credentials under the credentials directory (mode 0600), where
    /// `guild --as <child>` and `guild mcp --as <child>` find them.
    pub(crate) fn keep_credentials(
        &self,
        child: &AgentId,
        credentials: &AgentCredentials,
    ) -> Result<Option<PathBuf>, Refusal> {
        let Some(creds) = &credentials.creds else {
            return Ok(None);
        };
        let path = self.layout.creds_of(&Principal::Agent(child.clone()));
        let saved = guild_auth::private_dir(&self.layout.creds)
            .and_then(|()| guild_auth::write_secret(&path, creds));
        match saved {
            Ok(()) => Ok(Some(path)),
            Err(e) => {
                // The child exists but nobody can run it: say so, and count it.
                warn!(agent_id = %child, error = %e, "child credentials not saved");
                guild_telemetry::metrics::count_error("mcp_child_credentials_unsaved");
                Err(Refusal::new(
                    ErrorCode::Internal,
                    rule::UNAVAILABLE,
                    None,
                    format!(
                        "{child} was spawned but its credentials could not be saved ({e}); \
                         its parent or the operator can issue new ones (issue_credentials)"
                    ),
                ))
            }
        }
    }

    /// Commits `usage` before a tool runs: against the open reservation (a remainder is
    /// reserved again and stays open), or against one made for it.
    pub(crate) async fn charge(&self, usage: Usage) -> Result<(), Refusal> {
        let Some(total) = usage.input_tokens.checked_add(usage.output_tokens) else {
            return Err(Refusal::new(
                ErrorCode::BadRequest,
                rule::BAD_ARGUMENTS,
                Some("usage"),
                "usage: input_tokens + output_tokens overflows".into(),
            ));
        };
        if total == 0 {
            return Ok(());
        }
        let open = lock(&self.open).clone();
        let held = match open {
            Some(r) => r,
            None => {
                let reserve = ReserveTokens {
                    agent_id: self.id.clone(),
                    reservation_id: new_reservation_id()?,
                    amount: total,
                    mission_id: None,
                };
                self.guild
                    .call::<op::ReserveTokens>(&reserve)
                    .await
                    .map_err(usage_at_fault)?
                    .reservation
            }
        };
        let commit = CommitTokens {
            agent_id: self.id.clone(),
            reservation_id: held.id.clone(),
            used: None,
            input_tokens: Some(usage.input_tokens),
            output_tokens: Some(usage.output_tokens),
        };
        let committed = self.guild.call::<op::CommitTokens>(&commit).await;
        if let Err(e) = committed {
            if !self.is_open(&held.id) {
                // The reservation made for this usage is not kept waiting.
                self.release_quietly(&held.id).await;
            }
            return Err(usage_at_fault(e));
        }
        if !self.is_open(&held.id) {
            return Ok(());
        }
        self.settled(&held.id);
        let rest = held.amount.saturating_sub(total);
        if rest > 0 {
            let reserve = ReserveTokens {
                agent_id: self.id.clone(),
                reservation_id: new_reservation_id()?,
                amount: rest,
                mission_id: held.mission_id.clone(),
            };
            match self.guild.call::<op::ReserveTokens>(&reserve).await {
                Ok(r) => self.set_open_reservation(Some(r.reservation)),
                Err(e) => {
                    // The usage is recorded; only the remainder's reservation failed.
                    warn!(error = %e, "remainder of the open reservation not reserved again");
                    guild_telemetry::metrics::count_error("mcp_reservation_not_renewed");
                }
            }
        }
        Ok(())
    }

    fn is_open(&self, id: &ReservationId) -> bool {
        lock(&self.open).as_ref().is_some_and(|r| &r.id == id)
    }

    async fn release_quietly(&self, id: &ReservationId) {
        if let Err(e) = self.guild.spawner().release_tokens(&self.id, id).await {
            warn!(reservation_id = %id, error = %e, "usage reservation not released");
            guild_telemetry::metrics::count_error("mcp_usage_reservation_unreleased");
        }
    }

    /// Starts what runs beside the sessions: heartbeats, and the watchers of the inbox
    /// log and of the spawner's events about this agent.
    pub(crate) async fn start(self: &Arc<Self>) -> Result<(), crate::Error> {
        let agent = self.guild.agent()?;
        agent.start_heartbeats(HEARTBEAT_EVERY).await?;
        *lock(&self.heartbeat) = Some(agent);
        self.refresh().await;
        let inbox = self
            .guild
            .client()
            .subscribe(subject::inbox_all_levels(&Principal::Agent(
                self.id.clone(),
            )))
            .await
            .map_err(|e| crate::Error::Subscribe(e.to_string()))?;
        let events = self
            .guild
            .client()
            .subscribe(subject::events_of(Service::Spawner))
            .await
            .map_err(|e| crate::Error::Subscribe(e.to_string()))?;
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut inbox = inbox;
            while let Some(m) = inbox.next().await {
                let Some(shared) = me.upgrade() else { break };
                shared.on_message(&m.payload).await;
            }
        });
        let mission_events = self
            .guild
            .client()
            .subscribe(subject::events_of(Service::Mission))
            .await
            .map_err(|e| crate::Error::Subscribe(e.to_string()))?;
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut events = events;
            while let Some(m) = events.next().await {
                let Some(shared) = me.upgrade() else { break };
                shared.on_event(&m.payload).await;
            }
        });
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut events = mission_events;
            while let Some(m) = events.next().await {
                let Some(shared) = me.upgrade() else { break };
                shared.on_mission_event(&m.payload).await;
            }
        });
        self.read_missions().await;
        crate::elicit::start(self).await
    }

    /// Learns which missions are this agent's now (events name it from then on).
    async fn read_missions(&self) {
        let query = mission::MissionQuery {
            agent_id: Some(self.id.clone()),
            ..Default::default()
        };
        match self.guild.call::<mission::op::ListMissions>(&query).await {
            Ok(list) => lock(&self.missions).extend(list.missions.into_iter().map(|m| m.id)),
            Err(e) => {
                // Only the notifications for missions assigned before start are missed.
                warn!(error = %e, "own missions not read: guild://missions is announced for new ones only");
                guild_telemetry::metrics::count_error("mcp_missions_unread");
            }
        }
    }

    /// A mission event: `guild://missions` changed when it is about one of this agent's
    /// missions (or makes one its own).
    async fn on_mission_event(&self, payload: &[u8]) {
        let Ok(event) = serde_json::from_slice::<MissionEvent>(payload) else {
            return;
        };
        let me = &self.id;
        let (mission, names_me) = match &event {
            MissionEvent::Ready {
                mission_id,
                assigned_agent_id,
                ..
            } => (mission_id, assigned_agent_id.as_ref() == Some(me)),
            MissionEvent::Started {
                mission_id,
                agent_id,
                ..
            } => (mission_id, agent_id == me),
            MissionEvent::HandedOff {
                mission_id,
                from,
                to,
                ..
            } => (mission_id, from == me || to == me),
            MissionEvent::ClaimConflict {
                mission_id,
                holder,
                claimant,
                ..
            } => (mission_id, holder == me || claimant == me),
            MissionEvent::Created { mission_id, .. }
            | MissionEvent::DependencyAdded { mission_id, .. }
            | MissionEvent::DependencyRemoved { mission_id, .. }
            | MissionEvent::StatusChanged { mission_id, .. }
            | MissionEvent::Completed { mission_id, .. }
            | MissionEvent::AttemptFailed { mission_id, .. }
            | MissionEvent::Failed { mission_id, .. }
            | MissionEvent::Cancelled { mission_id, .. }
            | MissionEvent::Archived { mission_id, .. }
            | MissionEvent::Waiting { mission_id, .. } => (mission_id, false),
            MissionEvent::PhaseCompleted { .. } => return,
        };
        let mine = {
            let mut missions = lock(&self.missions);
            if names_me {
                missions.insert(mission.clone());
            }
            let mine = missions.contains(mission);
            if matches!(event, MissionEvent::Archived { .. }) {
                missions.remove(mission);
            }
            mine
        };
        if mine {
            self.updated(resources::MISSIONS).await;
        }
    }

    /// Reads the profile; marks the agent ended when it is no longer live.
    async fn refresh(&self) -> Option<AgentProfile> {
        match self.guild.spawner().get(&self.id).await {
            Ok(p) => {
                if !p.status.is_live() {
                    self.end(ended_body(&self.id, p.status));
                }
                Some(p)
            }
            Err(e) => {
                debug!(error = %e, "own profile not read");
                None
            }
        }
    }

    fn end(&self, body: ErrorBody) {
        let mut ended = lock(&self.ended);
        if ended.is_none() {
            info!(agent_id = %self.id, rule = %body.rule, "agent ended: every tool call is refused from now on");
            *ended = Some(body);
        }
    }

    /// The profile, for which tools are offered (`None` when it cannot be read).
    pub(crate) async fn profile(&self) -> Option<AgentProfile> {
        if self.ended().is_some() {
            return None;
        }
        self.refresh().await
    }

    async fn on_message(&self, payload: &[u8]) {
        let message: Message = match guild_wire::body::decode(payload) {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e.message, "inbox log entry unreadable");
                guild_telemetry::metrics::count_error("mcp_inbox_entry_unreadable");
                return;
            }
        };
        let kind = message.kind;
        if kind == MessageType::Decision
            && let Some(question) = &message.in_reply_to
        {
            let mut waiters = lock(&self.waiters);
            let mut i = 0;
            while i < waiters.len() {
                if &waiters[i].0 == question {
                    let (_, tx) = waiters.swap_remove(i);
                    // A waiter that gave up (timed out, cancelled) no longer listens.
                    let _ = tx.send(message.clone());
                } else {
                    i += 1;
                }
            }
        }
        {
            let mut inbox = lock(&self.inbox);
            if inbox.len() == INBOX_KEPT {
                inbox.pop_front();
            }
            inbox.push_back(message);
        }
        self.updated(resources::INBOX).await;
        match kind {
            MessageType::Question => self.updated(resources::QUESTIONS).await,
            MessageType::Decision => self.updated(resources::DECISIONS).await,
            _ => {}
        }
    }

    async fn on_event(&self, payload: &[u8]) {
        let event: Event = match serde_json::from_slice(payload) {
            Ok(e) => e,
            // Events of a newer schema this build does not know: not about the tools.
            Err(_) => return,
        };
        let about_me = match &event {
            Event::Paused { agent_id, .. }
            | Event::Resumed { agent_id, .. }
            | Event::StatusChanged { agent_id, .. }
            | Event::CredentialsIssued { agent_id, .. } => agent_id == &self.id,
            Event::Terminated {
                agent_id, orphans, ..
            } => agent_id == &self.id || orphans.contains(&self.id),
            Event::BudgetReallocated { from, to, .. } => from == &self.id || to == &self.id,
            _ => false,
        };
        if !about_me {
            return;
        }
        match &event {
            Event::Terminated {
                agent_id, status, ..
            } if agent_id == &self.id => self.end(ended_body(&self.id, *status)),
            Event::CredentialsIssued { .. } => self.end(ErrorBody::new(
                ErrorCode::Forbidden,
                rule::PERMISSION_DENIED,
                format!(
                    "{} was given new credentials; the ones this server runs with no longer \
                     work: restart `guild mcp` with the new ones",
                    self.id
                ),
            )),
            _ => {
                self.refresh().await;
            }
        }
        self.tools_changed().await;
    }

    /// Tells every session the tool list changed.
    async fn tools_changed(&self) {
        for peer in self.peers() {
            // A session that just closed: `peers` forgets it next time.
            if let Err(e) = peer.notify_tool_list_changed().await {
                debug!(error = %e, "session gone");
            }
        }
    }

    /// Tells every session that `uri` changed, once some session subscribed to it.
    async fn updated(&self, uri: &str) {
        if !lock(&self.subscribed).contains(uri) {
            return;
        }
        for peer in self.peers() {
            let note = ResourceUpdatedNotificationParam::new(uri);
            if let Err(e) = peer.notify_resource_updated(note).await {
                debug!(error = %e, "session gone");
            }
        }
    }
}

fn ended_body(id: &AgentId, status: AgentStatus) -> ErrorBody {
    let mut body = ErrorBody::from(Rejection::AgentNotLive {
        id: id.clone(),
        status,
    });
    body.message = format!(
        "{} (this agent has ended: no Guild tool works for it any more; stop, and report \
         what you have to your host)",
        body.message
    );
    body
}

/// A refusal of the reservation or commit made for `usage`: the field at fault is `usage`.
fn usage_at_fault(e: guild_sdk::Error) -> Refusal {
    let mut refusal = Refusal::from(e);
    refusal.error.field = Some("usage".into());
    refusal
}

fn new_reservation_id() -> Result<ReservationId, Refusal> {
    ReservationId::new(fresh_id()).map_err(|e| Refusal::from_body(ErrorBody::from(e)))
}
