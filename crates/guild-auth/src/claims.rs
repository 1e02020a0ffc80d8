//! The JWT claims Guild mints, from the permission table in `guild_wire::access`.

use std::collections::BTreeMap;

use indexmap::IndexSet;
use nats_jwt_rs::Claims;
use nats_jwt_rs::account::{Account, JetStreamLimits, OperatorLimits};
use nats_jwt_rs::operator::Operator;
use nats_jwt_rs::types::{
    Limits, NO_LIMIT, NatsLimits, Permission, Permissions, ScopeType, SigningKey, UserScope,
};
use nats_jwt_rs::user::{User, UserPermissionLimits};
use nkeys::KeyPair;

use guild_wire::access::{Grant, Kind, grant};

use crate::Error;

/// Guild's account name in its JWT (what `nats-server` logs and `connz` shows).
pub const ACCOUNT_NAME: &str = "GUILD";
/// The system account's name.
pub const SYSTEM_ACCOUNT_NAME: &str = "SYS";
/// The scoped signing key's role: every agent credential is signed by it.
pub const AGENT_ROLE: &str = "guild-agent";

/// What the scoped signing key imposes on every agent credential besides its
/// permissions: the largest message it may publish and how many subscriptions it may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgentLimits {
    /// Largest message, headers included: Guild's body limit plus room for headers.
    pub payload: i64,
    /// Subscriptions at once.
    pub subscriptions: i64,
    /// Connections at once. NATS has no such claim: the custodian closes the newest
    /// connections past it (`spawner-svc`, `connections.rs`).
    pub connections: u32,
}

/// Connections one agent may hold at once, by default: its own, a sub-process's, and room
/// for a reconnect racing the old connection's close.
pub const DEFAULT_AGENT_CONNECTIONS: u32 = 4;

/// Room for headers (trace context, priority, ids) on top of Guild's body limit: a body at
/// the limit is refused by Guild with a typed error, not by the broker closing the
/// connection.
pub const HEADER_ALLOWANCE: usize = 8 * 1024;

impl AgentLimits {
    /// The limits for a deployment whose body limit is `max_payload` (`GUILD_MAX_PAYLOAD`).
    pub fn for_payload(max_payload: usize) -> Self {
        Self {
            payload: i64::try_from(max_payload.saturating_add(HEADER_ALLOWANCE))
                .unwrap_or(i64::MAX),
            subscriptions: 64,
            connections: DEFAULT_AGENT_CONNECTIONS,
        }
    }
}

impl Default for AgentLimits {
    fn default() -> Self {
        Self::for_payload(guild_wire::payload::DEFAULT_MAX_PAYLOAD)
    }
}

/// The public half of Guild's account: what its account JWT is built from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccountKeys {
    /// The account's identity key (`A...`).
    pub account: String,
    /// The key that signs the fixed identities (services, operator, observer).
    pub account_signing: String,
    /// The scoped key that signs agents: its template is the agent row of the table.
    pub agent_signing: String,
}

fn permission(allow: &[String], deny: &[String]) -> Permission {
    Permission {
        allow: allow.to_vec(),
        deny: deny.to_vec(),
    }
}

fn permissions(g: &Grant) -> Permissions {
    Permissions {
        publish: permission(&g.publish, &g.deny_publish),
        subscribe: permission(&g.subscribe, &g.deny_subscribe),
        resp: None,
    }
}

/// The account JWT's claims: JetStream on, the two signing keys (the agents' scoped, its
/// template the agent row), and the revoked agent keys with when they were revoked.
pub fn account(
    keys: &AccountKeys,
    limits: AgentLimits,
    revocations: &BTreeMap<String, u64>,
) -> Claims<Account> {
    let mut claims = Account::new_claims(ACCOUNT_NAME.into(), keys.account.clone());
    let template = UserPermissionLimits {
        permissions: permissions(&grant(Kind::Agent)),
        limits: Some(Limits {
            user_limits: None,
            nats_limits: Some(NatsLimits {
                subs: Some(limits.subscriptions),
                data: Some(NO_LIMIT),
                payload: Some(limits.payload),
            }),
        }),
        bearer_token: None,
        allowed_connection_types: None,
    };
    let mut signing = IndexSet::new();
    signing.insert(SigningKey {
        key: keys.account_signing.clone(),
        scope: None,
    });
    signing.insert(SigningKey {
        key: keys.agent_signing.clone(),
        scope: Some(UserScope {
            kind: ScopeType::UserScope,
            key: keys.agent_signing.clone(),
            role: Some(AGENT_ROLE.into()),
            template: Some(template),
            description: Some("Guild agents: each may act only as itself".into()),
        }),
    });
    let account = claims.payload_mut();
    account.signing_keys = Some(signing);
    account.limits = Some(OperatorLimits {
        jetstream: Some(JetStreamLimits {
            memory_storage: Some(NO_LIMIT),
            disk_storage: Some(NO_LIMIT),
            streams: Some(NO_LIMIT),
            consumer: Some(NO_LIMIT),
            max_ack_pending: Some(NO_LIMIT),
            mem_max_stream_bytes: Some(0),
            disk_max_stream_bytes: Some(0),
            max_bytes_required: Some(false),
        }),
        ..OperatorLimits::default()
    });
    account.revocations = (!revocations.is_empty()).then(|| revocations.clone());
    claims
}

/// A fixed identity's user claims (a service, the operator, the observer): its row of
/// the table, written into the JWT.
pub fn fixed_user(kind: Kind, name: &str, user: &str, account: &str) -> Claims<User> {
    let mut claims = User::new_claims(name.into(), user.into());
    let u = claims.payload_mut();
    u.issuer_account = Some(account.into());
    u.permissions.permissions = permissions(&grant(kind));
    claims
}

/// An agent's user claims: only its name (the agent id) and its account; the scoped
/// signing key's template supplies the permissions and limits, so the minter cannot widen
/// them.
pub fn agent_user(id: &str, user: &str, account: &str) -> Claims<User> {
    let mut claims = User::new_claims(id.into(), user.into());
    let u = claims.payload_mut();
    u.issuer_account = Some(account.into());
    // nats-server compares a scoped user's permissions and limits with the empty value:
    // even "unlimited" (-1) limits would make it refuse the credential.
    u.permissions.limits = None;
    claims
}

/// The system account user the custodian uses: pushing account updates, looking them up,
/// and closing connections over their limits.
pub fn system_user(user: &str, system_account: &str) -> Claims<User> {
    let mut claims = User::new_claims("guild-custodian".into(), user.into());
    let sys = guild_wire::subject::sys::custodian_requests();
    claims.payload_mut().issuer_account = Some(system_account.into());
    claims.payload_mut().permissions.permissions = Permissions {
        publish: permission(&sys, &[]),
        subscribe: permission(
            &[
                vec!["_INBOX.>".to_owned()],
                guild_wire::subject::sys::custodian_events(),
            ]
            .concat(),
            &[],
        ),
        resp: None,
    };
    claims
}

/// The operator JWT: self-signed, its signing key the only one that may sign accounts.
pub fn operator(operator: &str, signing: &str, system_account: &str) -> Claims<Operator> {
    let mut claims = Operator::new_claims("guild".into(), operator.into());
    let o = claims.payload_mut();
    o.signing_keys = Some(vec![signing.into()]);
    o.system_account = Some(system_account.into());
    o.strict_signing_key_usage = Some(true);
    claims
}

/// The system account's JWT, with its signing key.
pub fn system_account(key: &str, signing: &str) -> Claims<Account> {
    let mut claims = Account::new_claims(SYSTEM_ACCOUNT_NAME.into(), key.into());
    let mut keys = IndexSet::new();
    keys.insert(SigningKey {
        key: signing.into(),
        scope: None,
    });
    claims.payload_mut().signing_keys = Some(keys);
    claims
}

/// Signs claims into a JWT.
pub fn sign<T>(claims: &Claims<T>, key: &KeyPair) -> Result<String, Error>
where
    T: nats_jwt_rs::Claim + serde::Serialize + serde::de::DeserializeOwned + Clone,
{
    claims
        .encode(key)
        .map_err(|e| Error::Format(format!("sign JWT: {e}")))
}
