//! The custodian's IO: agent credentials minted at spawn and on re-issue, and Guild's
//! account JWT kept carrying every revocation the registry holds.
//!
//! The registry is the source of truth (`Registry::revocations`, from the journal): which
//! keys the broker must refuse. Every instance compares it with what the server holds
//! (`$SYS.REQ.ACCOUNT.<account>.CLAIMS.LOOKUP`) and, when a key is missing, pushes an
//! account JWT carrying both (`$SYS.REQ.CLAIMS.UPDATE`). On receiving it, nats-server
//! closes the connections of the revoked keys and refuses them from then on; its full
//! resolver keeps the JWT on disk, so revocations survive a restart of the server. The
//! union makes concurrent pushes from several instances safe: revocations are never
//! withdrawn, so whoever pushes last pushes everything anyone knew, and a push a lagging
//! instance made without the newest key is repaired at the next comparison.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use guild_auth::claims::AgentLimits;
use guild_auth::{Credentials, Custodian, CustodianKeys};
use guild_domain::AgentId;
use guild_domain::agent::PublicKey;
use guild_wire::ErrorBody;
use guild_wire::api::spawner::AgentCredentials;
use guild_wire::subject::sys;
use tokio::sync::Mutex;

/// What spawner-svc needs to be the custodian: its bundle and the system-account
/// credentials it pushes account updates with.
#[derive(Clone, Debug)]
pub struct CustodianSetup {
    /// `custodian.json`.
    pub keys: CustodianKeys,
    /// How to connect to the system account (`system.creds` on the same servers).
    pub system: guild_sdk::NatsOptions,
}

/// A key made for an agent before its spawn is decided, and its seed when Guild made it.
pub(crate) struct Minted {
    pub(crate) public_key: PublicKey,
    seed: Option<String>,
}

/// The custodian at work.
pub(crate) struct Keeper {
    custodian: Custodian,
    /// A connection to the system account.
    system: async_nats::Client,
    /// The revocations the server was last seen to hold (`None` until it was asked, and
    /// again after a reconnect: it may have restarted).
    known: Mutex<Option<BTreeMap<String, u64>>>,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> ErrorBody {
    ErrorBody::unavailable(format!("{what}: {e}"))
}

impl Keeper {
    pub(crate) async fn start(setup: &CustodianSetup, limits: AgentLimits) -> Result<Self, String> {
        let custodian = Custodian::new(setup.keys.clone(), limits).map_err(|e| e.to_string())?;
        let system = setup
            .system
            .connect("spawner-svc custodian")
            .await
            .map_err(|e| format!("the custodian's system-account connection: {e}"))?
            .client;
        Ok(Self {
            custodian,
            system,
            known: Mutex::new(None),
        })
    }

    /// Closes agents' connections past their limit until `stop` (`connections.rs`).
    pub(crate) fn enforce_connection_limit(
        &self,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(crate::connections::enforce(
            self.system.clone(),
            self.custodian.account().to_owned(),
            self.custodian.agent_signer().to_owned(),
            self.custodian.limits().connections,
            stop,
        ))
    }

    /// The key a spawn or re-issue mints for: the caller's, or a fresh pair of Guild's.
    pub(crate) fn key_for(&self, asked: Option<&PublicKey>) -> Result<Minted, ErrorBody> {
        if let Some(key) = asked {
            guild_auth::check_user_key(key.as_str()).map_err(|e| {
                ErrorBody::from(&guild_domain::Rejection::invalid(
                    "public_key",
                    e.to_string(),
                ))
            })?;
            return Ok(Minted {
                public_key: key.clone(),
                seed: None,
            });
        }
        let pair = nkeys::KeyPair::new_user();
        let seed = pair
            .seed()
            .map_err(|e| ErrorBody::internal(format!("key: {e}")))?;
        let public_key = PublicKey::new(pair.public_key())
            .map_err(|e| ErrorBody::internal(format!("a fresh key is malformed: {e}")))?;
        Ok(Minted {
            public_key,
            seed: Some(seed),
        })
    }

    /// The credentials for `minted`, bound to `agent`.
    pub(crate) fn credentials(
        &self,
        agent: &AgentId,
        minted: Minted,
    ) -> Result<AgentCredentials, ErrorBody> {
        let jwt = self
            .custodian
            .mint_agent(agent, minted.public_key.as_str())
            .map_err(|e| ErrorBody::internal(format!("minting credentials: {e}")))?;
        let creds = minted.seed.map(|seed| {
            Credentials {
                jwt: jwt.clone(),
                seed,
            }
            .to_creds()
        });
        Ok(AgentCredentials {
            jwt,
            creds,
            public_key: minted.public_key,
        })
    }

    /// What the server holds now: Guild's account JWT, decoded.
    async fn server_jwt(&self) -> Result<String, ErrorBody> {
        let reply = self
            .system
            .request(sys::claims_lookup(self.custodian.account()), Bytes::new())
            .await
            .map_err(|e| unavailable("looking up the account JWT", e))?;
        String::from_utf8(reply.payload.to_vec())
            .map_err(|e| unavailable("the account JWT is not text", e))
    }

    /// Makes sure the server refuses every key in `wanted`, and that its account JWT is
    /// this version's (the agents' template); returns whether it pushed an update.
    pub(crate) async fn reconcile(
        &self,
        wanted: &BTreeMap<String, u64>,
    ) -> Result<bool, ErrorBody> {
        let mut known = self.known.lock().await;
        if known.as_ref().is_some_and(|k| covers(k, wanted)) {
            return Ok(false);
        }
        let held = self.server_jwt().await?;
        let held_revocations = Custodian::revocations_in(&held)
            .map_err(|e| unavailable("the server's account JWT", e))?;
        let mut union = held_revocations.clone();
        for (key, at) in wanted {
            let entry = union.entry(key.clone()).or_insert(*at);
            *entry = (*entry).max(*at);
        }
        let ours = self
            .custodian
            .account_jwt(&union)
            .map_err(|e| ErrorBody::internal(format!("signing the account JWT: {e}")))?;
        if covers(&held_revocations, wanted) && same_account(&held, &ours) {
            *known = Some(held_revocations);
            return Ok(false);
        }
        // A server restarted later prefers whichever JWT was issued later: the one it was
        // configured with must not win over this one, issued in the same second.
        let initial = self.custodian.initial_iat();
        loop {
            let now = guild_service::now().as_millis() / 1000;
            if now > initial {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let jwt = self
            .custodian
            .account_jwt(&union)
            .map_err(|e| ErrorBody::internal(format!("signing the account JWT: {e}")))?;
        let reply = self
            .system
            .request(sys::CLAIMS_UPDATE, Bytes::from(jwt))
            .await
            .map_err(|e| unavailable("pushing the account JWT", e))?;
        let answer: serde_json::Value = serde_json::from_slice(&reply.payload)
            .map_err(|e| unavailable("the server's answer to the account update", e))?;
        if let Some(error) = answer.get("error") {
            return Err(ErrorBody::unavailable(format!(
                "the server refused the account update: {error}"
            )));
        }
        tracing::info!(
            revoked = union.len(),
            "account JWT pushed with its revocations"
        );
        *known = Some(union);
        Ok(true)
    }

    /// Forgets what the server was seen to hold, so the next reconcile asks again.
    pub(crate) async fn forget(&self) {
        *self.known.lock().await = None;
    }
}

/// Whether `held` refuses every key of `wanted` at least as late.
fn covers(held: &BTreeMap<String, u64>, wanted: &BTreeMap<String, u64>) -> bool {
    wanted
        .iter()
        .all(|(k, at)| held.get(k).is_some_and(|h| h >= at))
}

/// Whether two account JWTs say the same (their claims, not when or by whom they were
/// signed).
fn same_account(a: &str, b: &str) -> bool {
    let nats = |jwt: &str| {
        nats_jwt_rs::Claims::<nats_jwt_rs::account::Account>::decode(jwt)
            .ok()
            .and_then(|c| serde_json::to_value(c.payload()).ok())
    };
    match (nats(a), nats(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_revocation_covers_an_earlier_one() {
        let held: BTreeMap<_, _> = [("U1".to_string(), 10)].into();
        assert!(covers(&held, &[("U1".to_string(), 9)].into()));
        assert!(!covers(&held, &[("U1".to_string(), 11)].into()));
        assert!(!covers(&held, &[("U2".to_string(), 1)].into()));
        assert!(covers(&held, &BTreeMap::new()));
    }
}
