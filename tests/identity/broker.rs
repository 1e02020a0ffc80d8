//! What the broker-refusal tests share: a Guild with two agents, raw connections that
//! record what the server says to them, and the ways to see that nothing changed (an
//! endpoint's request count, what a stream holds).
//!
//! Every refused attempt is checked the same way: the server reports a permissions
//! violation naming the subject to the connection that tried, and neither the service
//! behind the subject nor the stream that would have stored it saw anything.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use async_nats::{Client, ConnectErrorKind, Event, HeaderMap, ServerError};
use futures_util::StreamExt;
use guild_domain::agent::{Role, SpawnRequest};
use guild_domain::{AgentId, Principal};
use guild_sdk::api::spawner::Spawned;
use guild_testkit::{NatsServer, Team, eventually_async};
use guild_wire::store;

use crate::common::{Services, start_in_process};

/// How long anything the server or a service does in response may take to show.
pub(crate) const WITHIN: Duration = Duration::from_secs(10);

/// Guild running on its own server, the operator's team, and two root agents spawned by
/// the operator: `a` (the one trying) and `b` (the one it tries to be, or to read). The
/// fields drop in order: the connections, the services, the server last.
pub(crate) struct Guild {
    pub(crate) team: Team,
    pub(crate) services: Option<Services>,
    pub(crate) a: Spawned,
    pub(crate) b: Spawned,
    pub(crate) server: NatsServer,
}

/// `id` as an agent id.
pub(crate) fn id(s: &str) -> AgentId {
    AgentId::new(s).unwrap()
}

impl Guild {
    /// Starts the server and the three services, spawns `a` and `b`, and waits until what
    /// the spawns publish afterwards (their events and audit records) is stored, so that
    /// what a test measures next is not still moving.
    pub(crate) async fn start() -> Self {
        let server = NatsServer::start();
        let (services, team) = start_in_process(&server).await;
        let a = team
            .spawn(SpawnRequest::new(id("a"), Role::Developer, 1_000))
            .await;
        let b = team
            .spawn(SpawnRequest::new(id("b"), Role::Developer, 1_000))
            .await;
        let g = Self {
            team,
            services: Some(services),
            a,
            b,
            server,
        };
        for agent in ["a", "b"] {
            g.published(
                &format!("guild.evt.spawner.spawned.{agent}"),
                store::EVENTS_STREAM,
            )
            .await;
            g.published(&format!("guild.audit.spawn.{agent}"), store::AUDIT_STREAM)
                .await;
        }
        g
    }

    /// Waits until `stream` holds at least `count` messages on `subject`.
    pub(crate) async fn stored(&self, subject: &str, stream: &str, count: u64) {
        let js = self.admin_js().await;
        let what = format!("{count} messages on {subject} in {stream}");
        eventually_async(&what, WITHIN, || {
            let js = js.clone();
            async move {
                let s = js.get_stream(stream).await.ok()?;
                let held = s
                    .info_with_subjects(subject)
                    .await
                    .ok()?
                    .next()
                    .await
                    .and_then(Result::ok)
                    .map_or(0, |(_, n)| n as u64);
                (held >= count).then_some(())
            }
        })
        .await;
    }

    /// Waits until `stream` holds a message on `subject`.
    pub(crate) async fn published(&self, subject: &str, stream: &str) {
        let js = jetstream::new(self.server.connect_admin().await);
        let what = format!("{subject} in {stream}");
        eventually_async(&what, WITHIN, || {
            let js = js.clone();
            async move {
                let s = js.get_stream(stream).await.ok()?;
                s.get_last_raw_message_by_subject(subject).await.ok()
            }
        })
        .await;
    }

    /// The operator's SDK connection.
    pub(crate) fn operator(&self) -> &guild_sdk::Guild {
        self.team.operator()
    }

    /// Agent `id`'s own SDK connection (spawned through the team).
    pub(crate) fn sdk(&self, id: &str) -> guild_sdk::Guild {
        self.team.agent(&AgentId::new(id).unwrap())
    }

    /// A new raw connection as agent `a`.
    pub(crate) async fn raw_a(&self) -> Raw {
        Raw::agent(&self.server, &self.a).await
    }

    /// A raw connection as `principal` (a service, the operator or the observer), with its
    /// credentials file and its own reply-inbox prefix.
    pub(crate) async fn raw_as(&self, principal: &Principal) -> Raw {
        let creds = std::fs::read_to_string(self.server.creds_file(principal)).unwrap();
        let prefix = guild_wire::subject::inbox_prefix(principal);
        Raw::connect(&self.server, &creds, &prefix).await.unwrap()
    }

    /// Unrestricted JetStream, for looking at the streams.
    pub(crate) async fn admin_js(&self) -> jetstream::Context {
        jetstream::new(self.server.connect_admin().await)
    }

    /// The request count of `endpoint` of `micro` (`guild-bus`, ...), from its
    /// `$SRV.STATS`, asked by the operator. NATS micro (async-nats) counts a request when
    /// its answer is sent.
    pub(crate) async fn stats_count(&self, micro: &str, endpoint: &str) -> u64 {
        stats_count(self.operator().client(), micro, endpoint).await
    }

    /// Where the streams Guild writes stand now.
    pub(crate) async fn marks(&self) -> Marks {
        Marks::take(&self.admin_js().await).await
    }

    /// Stops the services gracefully.
    pub(crate) async fn stop(mut self) {
        if let Some(s) = self.services.take() {
            s.stop().await;
        }
    }
}

/// The `.creds` text of a spawn reply (the spawn sent no public key).
pub(crate) fn creds_of(spawned: &Spawned) -> String {
    spawned
        .credentials
        .as_ref()
        .and_then(|c| c.creds.clone())
        .expect("the spawn reply carries a .creds bundle")
}

/// One raw NATS connection, with everything the server reported to it (errors,
/// disconnections) kept in order.
#[derive(Clone)]
pub(crate) struct Raw {
    pub(crate) client: Client,
    events: Arc<Mutex<Vec<Event>>>,
}

/// What a permissions violation is about.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Denied {
    Publish,
    Subscription,
}

impl Raw {
    /// Connects as the agent of `spawned`, with its minted credentials and its own inbox
    /// prefix (`_INBOX.agent.<id>`).
    pub(crate) async fn agent(server: &NatsServer, spawned: &Spawned) -> Self {
        let prefix = guild_wire::subject::inbox_prefix(&Principal::Agent(spawned.id.clone()));
        Self::connect(server, &creds_of(spawned), &prefix)
            .await
            .unwrap_or_else(|e| panic!("{} could not connect: {e}", spawned.id))
    }

    /// Connects with `creds` text and the inbox prefix `prefix`, with one reconnection
    /// attempt at most after a drop (refused, for credentials that were revoked).
    pub(crate) async fn connect(
        server: &NatsServer,
        creds: &str,
        prefix: &str,
    ) -> Result<Self, async_nats::ConnectError> {
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = events.clone();
        let client = async_nats::ConnectOptions::with_credentials(creds)
            .expect("readable credentials")
            .custom_inbox_prefix(prefix)
            .max_reconnects(Some(1))
            .event_callback(move |event| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push(event);
                }
            })
            .connect(server.url())
            .await?;
        Ok(Self { client, events })
    }

    /// Everything reported so far.
    pub(crate) fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// The server's error texts so far.
    pub(crate) fn errors(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::ServerError(ServerError::Other(text)) => Some(text),
                Event::ServerError(ServerError::AuthorizationViolation) => {
                    Some("authorization violation".into())
                }
                _ => None,
            })
            .collect()
    }

    /// Waits for the server's `Permissions Violation for <what> to "<subject>"`.
    pub(crate) async fn expect_violation(&self, what: Denied, subject: &str) {
        let kind = match what {
            Denied::Publish => "Publish",
            Denied::Subscription => "Subscription",
        };
        let want = format!("Permissions Violation for {kind} to \"{subject}\"");
        eventually_async(&format!("the server's `{want}`"), WITHIN, || {
            let found = self.errors().iter().any(|e| e.contains(&want));
            std::future::ready(found.then_some(()))
        })
        .await;
    }

    /// Waits for a server error containing `text` (case-insensitive).
    pub(crate) async fn expect_error(&self, text: &str) -> String {
        let want = text.to_lowercase();
        eventually_async(&format!("a server error with {text:?}"), WITHIN, || {
            let found = self
                .errors()
                .into_iter()
                .find(|e| e.to_lowercase().contains(&want));
            std::future::ready(found)
        })
        .await
    }

    /// Whether the connection was dropped (by the server) since it was made.
    pub(crate) fn was_disconnected(&self) -> bool {
        self.events()
            .iter()
            .any(|e| matches!(e, Event::Disconnected | Event::Closed))
    }

    /// Waits until the server has closed the connection.
    pub(crate) async fn expect_disconnected(&self) {
        eventually_async("the server closes the connection", WITHIN, || {
            std::future::ready(self.was_disconnected().then_some(()))
        })
        .await;
    }

    /// Publishes `payload` on `subject` with a reply subject of its own (as a request
    /// would), then waits for the server's violation for it.
    pub(crate) async fn publish_refused(&self, subject: &str, payload: impl Into<Vec<u8>>) {
        self.publish_refused_with(subject, HeaderMap::new(), payload)
            .await;
    }

    /// [`publish_refused`](Self::publish_refused) with headers.
    pub(crate) async fn publish_refused_with(
        &self,
        subject: &str,
        headers: HeaderMap,
        payload: impl Into<Vec<u8>>,
    ) {
        let reply = format!("{}.refused", self.inbox_prefix());
        self.client
            .publish_with_reply_and_headers(
                subject.to_owned(),
                reply,
                headers,
                payload.into().into(),
            )
            .await
            .unwrap();
        self.client.flush().await.unwrap();
        self.expect_violation(Denied::Publish, subject).await;
    }

    /// Subscribes to `subject` (in `queue` when given) and waits for the server's
    /// violation; returns the subscriber the client keeps, which must stay empty.
    pub(crate) async fn subscribe_refused(
        &self,
        subject: &str,
        queue: Option<&str>,
    ) -> async_nats::Subscriber {
        let sub = match queue {
            Some(q) => self
                .client
                .queue_subscribe(subject.to_owned(), q.to_owned())
                .await
                .unwrap(),
            None => self.client.subscribe(subject.to_owned()).await.unwrap(),
        };
        self.client.flush().await.unwrap();
        self.expect_violation(Denied::Subscription, subject).await;
        sub
    }

    /// The reply-inbox prefix this connection was made with.
    fn inbox_prefix(&self) -> String {
        // The client makes inboxes as `<prefix>.<nuid>`.
        let inbox = self.client.new_inbox();
        inbox
            .rsplit_once('.')
            .map(|(p, _)| p.to_owned())
            .unwrap_or(inbox)
    }
}

/// Asserts `sub` has received nothing by now: call it after a round trip that would have
/// come back after any message routed to it (a flush of its connection, once the
/// server's answer to what would have sent it has arrived).
pub(crate) async fn assert_received_nothing(raw: &Raw, sub: &mut async_nats::Subscriber) {
    raw.client.flush().await.unwrap();
    use futures_util::FutureExt;
    if let Some(Some(m)) = sub.next().now_or_never() {
        panic!(
            "a message reached a subscription that must get none: {} ({} bytes: {})",
            m.subject,
            m.payload.len(),
            String::from_utf8_lossy(&m.payload)
        );
    }
}

/// Connecting with `creds` is refused by the server as an authorization violation.
pub(crate) async fn assert_connect_refused(server: &NatsServer, creds: &str, prefix: &str) {
    match Raw::connect(server, creds, prefix).await {
        Ok(raw) => panic!(
            "the server accepted credentials it must refuse: {:?}",
            raw.events()
        ),
        Err(e) => assert_eq!(
            e.kind(),
            ConnectErrorKind::AuthorizationViolation,
            "refused, but not as an authorization violation: {e}"
        ),
    }
}

/// The request count of `endpoint` of `micro` in its `$SRV.STATS`.
pub(crate) async fn stats_count(client: &Client, micro: &str, endpoint: &str) -> u64 {
    let reply = client
        .request(format!("$SRV.STATS.{micro}"), Vec::new().into())
        .await
        .unwrap_or_else(|e| panic!("$SRV.STATS.{micro}: {e}"));
    let stats: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    stats["endpoints"]
        .as_array()
        .and_then(|eps| eps.iter().find(|e| e["name"] == endpoint))
        .and_then(|e| e["num_requests"].as_u64())
        .unwrap_or_else(|| panic!("no endpoint {endpoint} in {micro}'s stats: {stats}"))
}

/// The last sequence of `stream`.
pub(crate) async fn last_seq(js: &jetstream::Context, stream: &str) -> u64 {
    let mut s = js
        .get_stream(stream)
        .await
        .unwrap_or_else(|e| panic!("stream {stream}: {e}"));
    s.info().await.unwrap().state.last_sequence
}

/// Every message `stream` holds after sequence `after`, in order.
pub(crate) async fn messages_after(
    js: &jetstream::Context,
    stream: &str,
    after: u64,
) -> Vec<jetstream::message::StreamMessage> {
    let mut s = js
        .get_stream(stream)
        .await
        .unwrap_or_else(|e| panic!("stream {stream}: {e}"));
    let state = s.info().await.unwrap().state.clone();
    let mut out = Vec::new();
    if state.messages == 0 {
        return out;
    }
    for seq in state.first_sequence.max(after + 1)..=state.last_sequence {
        match s.get_raw_message(seq).await {
            Ok(m) => out.push(m),
            Err(e)
                if e.kind()
                    == async_nats::jetstream::stream::RawMessageErrorKind::NoMessageFound => {}
            Err(e) => panic!("{stream} #{seq}: {e}"),
        }
    }
    out
}

/// The streams a refused attempt could have written to.
pub(crate) const WATCHED: [&str; 6] = [
    "GUILD_JOURNAL_SPAWNER",
    "GUILD_JOURNAL_BUS",
    "GUILD_JOURNAL_MISSION",
    store::EVENTS_STREAM,
    store::AUDIT_STREAM,
    store::INBOX_STREAM,
];

/// The last sequence of each watched stream at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Marks(BTreeMap<String, u64>);

impl Marks {
    pub(crate) async fn take(js: &jetstream::Context) -> Self {
        let mut marks = BTreeMap::new();
        for stream in WATCHED {
            marks.insert(stream.to_owned(), last_seq(js, stream).await);
        }
        Self(marks)
    }

    /// Asserts no watched stream has grown since, except by the spawner's own upkeep (see
    /// [`is_upkeep`]).
    pub(crate) async fn assert_unchanged(&self, js: &jetstream::Context) {
        for (stream, &mark) in &self.0 {
            let new: Vec<String> = messages_after(js, stream, mark)
                .await
                .into_iter()
                .filter(|m| !is_upkeep(stream, &m.payload))
                .map(|m| {
                    format!(
                        "#{} {}: {}",
                        m.sequence,
                        m.subject,
                        String::from_utf8_lossy(&m.payload)
                    )
                })
                .collect();
            assert!(
                new.is_empty(),
                "{stream} changed after {mark}:\n{}",
                new.join("\n")
            );
        }
    }
}

/// The one write Guild makes on its own while nothing happens: spawner-svc samples its
/// parallelization efficiency every few seconds (`--efficiency-sample`, 5 s), a journal
/// entry holding an `efficiency` record and nothing else.
pub(crate) fn is_upkeep(stream: &str, payload: &[u8]) -> bool {
    if stream != "GUILD_JOURNAL_SPAWNER" {
        return false;
    }
    let Ok(entry) = serde_json::from_slice::<serde_json::Value>(payload) else {
        return false;
    };
    let only_efficiency = entry["records"]
        .as_array()
        .is_some_and(|r| !r.is_empty() && r.iter().all(|r| r["record"] == "efficiency"));
    let none = |k: &str| {
        entry
            .get(k)
            .is_none_or(|v| v.as_array().is_none_or(Vec::is_empty))
    };
    only_efficiency && none("events") && none("audit")
}
