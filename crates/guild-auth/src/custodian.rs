//! The custodian: what spawner-svc holds to mint agent credentials and to revoke them.
//!
//! It holds two secrets: the agents' scoped signing key (it can mint only agents, whose
//! permissions the key's template fixes) and the operator's signing key (it re-signs
//! Guild's account JWT, the only place NATS keeps revocations). It can therefore mint any
//! agent and change Guild's account, but it does not hold the account's identity key,
//! the operator's identity key, or any service's or person's credentials.

use std::collections::BTreeMap;
use std::path::Path;

use nats_jwt_rs::Claims;
use nats_jwt_rs::account::Account;
use nkeys::{KeyPair, KeyPairType};
use serde::{Deserialize, Serialize};

use guild_wire::domain::AgentId;

use crate::Error;
use crate::claims::{self, AccountKeys, AgentLimits};
use crate::creds::Credentials;

/// The custodian's bundle (`custodian.json`, mode 0600).
#[derive(Clone, Serialize, Deserialize)]
pub struct CustodianKeys {
    /// Signs Guild's account JWT.
    pub operator_signing_seed: String,
    /// Signs agent credentials (scoped).
    pub agent_signing_seed: String,
    /// The account's public keys.
    pub account: AccountKeys,
    /// The system account's public key.
    pub system_account: String,
    /// When the account JWT the server was configured with was issued (seconds): an
    /// update must be issued later, or a server restart would prefer the original.
    pub initial_iat: u64,
}

impl std::fmt::Debug for CustodianKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustodianKeys")
            .field("account", &self.account.account)
            .finish_non_exhaustive()
    }
}

impl CustodianKeys {
    /// As JSON.
    pub fn to_json(&self) -> Result<String, Error> {
        serde_json::to_string_pretty(self).map_err(|e| Error::Format(e.to_string()))
    }

    /// Reads `custodian.json`.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::Format(format!("{}: {e}", path.display())))
    }
}

/// Mints and revokes, from a [`CustodianKeys`].
pub struct Custodian {
    operator_signing: KeyPair,
    agent_signing: KeyPair,
    keys: CustodianKeys,
    limits: AgentLimits,
}

impl std::fmt::Debug for Custodian {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Custodian")
            .field("account", &self.keys.account.account)
            .finish_non_exhaustive()
    }
}

/// Checks that `key` is a user's public nkey (`U...`, checksum included).
pub fn check_user_key(key: &str) -> Result<(), Error> {
    let pair = KeyPair::from_public_key(key)
        .map_err(|e| Error::Format(format!("not a public nkey: {e}")))?;
    if pair.key_pair_type() != KeyPairType::User {
        return Err(Error::Format(format!(
            "a {:?} key, where a user key (U...) was expected",
            pair.key_pair_type()
        )));
    }
    Ok(())
}

impl Custodian {
    /// A custodian holding `keys`; agent credentials carry `limits`.
    pub fn new(keys: CustodianKeys, limits: AgentLimits) -> Result<Self, Error> {
        let operator_signing =
            KeyPair::from_seed(&keys.operator_signing_seed).map_err(Error::key)?;
        let agent_signing = KeyPair::from_seed(&keys.agent_signing_seed).map_err(Error::key)?;
        if agent_signing.public_key() != keys.account.agent_signing {
            return Err(Error::Format(
                "custodian.json: the agent signing seed does not match the account's scoped key"
                    .into(),
            ));
        }
        Ok(Self {
            operator_signing,
            agent_signing,
            keys,
            limits,
        })
    }

    /// Guild's account (`A...`).
    pub fn account(&self) -> &str {
        &self.keys.account.account
    }

    /// The scoped key that signs agents (`A...`): a connection whose JWT it signed is an
    /// agent's.
    pub fn agent_signer(&self) -> &str {
        &self.keys.account.agent_signing
    }

    /// How many connections one agent may hold.
    pub fn limits(&self) -> AgentLimits {
        self.limits
    }

    /// When the server's configured account JWT was issued (seconds since the epoch).
    pub fn initial_iat(&self) -> u64 {
        self.keys.initial_iat
    }

    /// A user JWT for agent `id` over the caller's public key.
    pub fn mint_agent(&self, id: &AgentId, public_key: &str) -> Result<String, Error> {
        check_user_key(public_key)?;
        claims::sign(
            &claims::agent_user(id.as_str(), public_key, self.account()),
            &self.agent_signing,
        )
    }

    /// New credentials for agent `id`: a fresh key pair, its seed in the result.
    pub fn generate_agent(&self, id: &AgentId) -> Result<Credentials, Error> {
        Credentials::generate(|user| self.mint_agent(id, user))
    }

    /// Guild's account JWT with `revocations` (user key → revoked at, seconds): every
    /// credential of those keys issued at or before that time stops working, and the
    /// server closes its connections when it receives the update.
    pub fn account_jwt(&self, revocations: &BTreeMap<String, u64>) -> Result<String, Error> {
        claims::sign(
            &claims::account(&self.keys.account, self.limits, revocations),
            &self.operator_signing,
        )
    }

    /// The revocations in an account JWT (what the server holds, read back).
    pub fn revocations_in(jwt: &str) -> Result<BTreeMap<String, u64>, Error> {
        let claims = Claims::<Account>::decode(jwt)
            .map_err(|e| Error::Format(format!("account JWT: {e}")))?;
        Ok(claims.payload().revocations.clone().unwrap_or_default())
    }
}
