//! The connection quota of agent credentials. NATS limits what one connection may do
//! (payload, subscriptions: in the credential), not how many connections one user may
//! hold, so the custodian does: it hears every connect in Guild's account
//! (`$SYS.ACCOUNT.<account>.CONNECT`, each event to one spawner-svc instance through a
//! queue group), lists that agent's open connections on every server (`CONNZ` filtered
//! by its key) and, past the limit, closes the newest (`KICK`), as a limit would have
//! refused them. The newest are told by their start time, not by which connect event is
//! at hand, because events may be handled after later connections came: so whoever
//! handles which event, the same oldest connections stay. A connection past the limit
//! lives for that round trip (milliseconds).

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use guild_wire::subject::sys;
use serde::Deserialize;
use tokio::sync::watch;

/// The queue group the instances share, so each connect is checked once.
const QUEUE: &str = "guild-custodian";

/// How long to wait for more servers' answers to a CONNZ after the last one.
const GATHER_QUIET: Duration = Duration::from_millis(150);

#[derive(Deserialize)]
struct ConnectEvent {
    client: Client,
}

#[derive(Deserialize)]
struct Client {
    /// The user's public key (for JWT users).
    #[serde(default)]
    user: String,
    /// The key that signed the user's JWT: the agents' scoped key for agents.
    #[serde(default)]
    issuer_key: String,
}

#[derive(Deserialize)]
struct Server {
    id: String,
}

#[derive(Deserialize)]
struct ConnzReply {
    server: Server,
    #[serde(default)]
    data: Option<Connz>,
}

#[derive(Deserialize)]
struct Connz {
    #[serde(default)]
    connections: Vec<Connection>,
}

#[derive(Deserialize)]
struct Connection {
    cid: u64,
    #[serde(with = "time::serde::rfc3339")]
    start: time::OffsetDateTime,
}

/// One open connection of an agent: when it began, on which server, its id there.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Open {
    start: time::OffsetDateTime,
    server: String,
    cid: u64,
}

/// The connections past `limit`: all but the `limit` oldest.
fn past_limit(mut open: Vec<Open>, limit: usize) -> Vec<Open> {
    open.sort();
    open.split_off(limit.min(open.len()))
}

/// Enforces `limit` connections per agent credential of `account` until `stop`.
pub(crate) async fn enforce(
    system: async_nats::Client,
    account: String,
    agent_signer: String,
    limit: u32,
    mut stop: watch::Receiver<bool>,
) {
    let mut events = match system
        .queue_subscribe(sys::connect_events(&account), QUEUE.into())
        .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "agents' connection quota not enforced: cannot hear connects");
            return;
        }
    };
    loop {
        let msg = tokio::select! {
            _ = stop.changed() => return,
            msg = events.next() => match msg {
                Some(m) => m,
                None => return,
            },
        };
        let Ok(event) = serde_json::from_slice::<ConnectEvent>(&msg.payload) else {
            tracing::debug!("unreadable connect event");
            continue;
        };
        if event.client.issuer_key != agent_signer || event.client.user.is_empty() {
            continue; // a service, the operator or the observer
        }
        match open_connections(&system, &account, &event.client.user).await {
            Ok(open) => {
                let count = open.len();
                for c in past_limit(open, limit as usize) {
                    tracing::warn!(
                        user = %event.client.user,
                        open = count,
                        limit,
                        cid = c.cid,
                        "an agent is past its connection limit: closing its newest"
                    );
                    kick(&system, &c.server, c.cid).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not list an agent's connections"),
        }
    }
}

/// The open connections of `user` on every server of the account.
async fn open_connections(
    system: &async_nats::Client,
    account: &str,
    user: &str,
) -> Result<Vec<Open>, async_nats::Error> {
    let inbox = system.new_inbox();
    let mut replies = system.subscribe(inbox.clone()).await?;
    let filter = serde_json::json!({ "auth": true, "user": user, "limit": 1024 });
    system
        .publish_with_reply(
            sys::connz(account),
            inbox,
            Bytes::from(serde_json::to_vec(&filter)?),
        )
        .await?;
    system.flush().await?;
    let mut open = Vec::new();
    // The first answer may take a moment; the other servers' follow it closely.
    let mut wait = Duration::from_secs(2);
    while let Ok(Some(m)) = tokio::time::timeout(wait, replies.next()).await {
        match serde_json::from_slice::<ConnzReply>(&m.payload) {
            Ok(reply) => {
                open.extend(
                    reply
                        .data
                        .into_iter()
                        .flat_map(|d| d.connections)
                        .map(|c| Open {
                            start: c.start,
                            server: reply.server.id.clone(),
                            cid: c.cid,
                        }),
                )
            }
            Err(e) => tracing::debug!(error = %e, "unreadable CONNZ answer"),
        }
        wait = GATHER_QUIET;
    }
    Ok(open)
}

async fn kick(system: &async_nats::Client, server: &str, cid: u64) {
    let body = serde_json::json!({ "cid": cid }).to_string();
    if let Err(e) = system.request(sys::kick(server), body.into()).await {
        tracing::warn!(error = %e, cid, "could not close a connection past the limit");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64, server: &str, cid: u64) -> Open {
        Open {
            start: time::OffsetDateTime::from_unix_timestamp(seconds)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
            server: server.into(),
            cid,
        }
    }

    #[test]
    fn the_oldest_connections_stay_whatever_order_they_are_listed_in() {
        let open = vec![at(3, "B", 1), at(1, "A", 9), at(4, "A", 12), at(2, "B", 2)];
        assert_eq!(
            past_limit(open.clone(), 2),
            vec![at(3, "B", 1), at(4, "A", 12)]
        );
        assert_eq!(past_limit(open.clone(), 4), vec![]);
        assert_eq!(past_limit(open, 9), vec![]);
    }
}
