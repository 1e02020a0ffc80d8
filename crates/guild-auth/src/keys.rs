//! Guild's keys, made once: the operator, Guild's account and its two signing keys, the
//! system account; and what is issued from them: the fixed identities' credentials, the
//! custodian's bundle, the nats-server configuration, the audit key history.
//!
//! ```text
//! <keys>/                       0700, only the person (or init step) that made them
//!   operator.nk                 the operator's identity; signs only the operator JWT
//!   operator-signing.nk         signs account JWTs          (custodian.json has a copy)
//!   account.nk                  Guild's account identity; used by nothing at run time
//!   account-signing.nk          signs the fixed identities below, once
//!   agent-signing.nk            scoped: signs agent credentials (custodian.json has a copy)
//!   system.nk                   the system account
//!   system-signing.nk           signs the custodian's system-account user, once
//!   spawner-svc.creds, bus-svc.creds, mission-svc.creds   each service's own identity
//!   system.creds                the custodian's system-account user (spawner-svc)
//!   custodian.json              what spawner-svc needs to mint and revoke
//!   nats-auth.conf              included by nats-server: operator, resolver, preload
//!   nats-auth.json              the same as data, to write it for another resolver folder
//!   audit-keys.json             the services' public keys, for verifying the audit log
//! <creds>/                      0700: the people's credentials
//!   operator.creds, observer.creds, and <agent>.creds as the CLI receives them
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nkeys::{KeyPair, KeyPairType};
use serde::Serialize;

use guild_wire::access::Kind;
use guild_wire::domain::{Principal, Service};

use crate::claims::{self, AccountKeys, AgentLimits};
use crate::creds::Credentials;
use crate::custodian::CustodianKeys;
use crate::{Error, server};

/// The key pairs, as made by [`Keys::generate`].
pub struct Keys {
    operator: KeyPair,
    operator_signing: KeyPair,
    account: KeyPair,
    account_signing: KeyPair,
    agent_signing: KeyPair,
    system: KeyPair,
    system_signing: KeyPair,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("operator", &self.operator.public_key())
            .field("account", &self.account.public_key())
            .finish_non_exhaustive()
    }
}

const KEY_FILES: [&str; 7] = [
    "operator.nk",
    "operator-signing.nk",
    "account.nk",
    "account-signing.nk",
    "agent-signing.nk",
    "system.nk",
    "system-signing.nk",
];

/// The name of a service's credentials file in the keys folder.
pub fn service_creds_file(service: Service) -> String {
    format!("{}-svc.creds", service.token())
}

pub use guild_wire::audit::{AuditKey, AuditKeys};

/// What [`Keys::issue`] produced, in memory (the test kit uses it without the files).
#[derive(Clone, Debug)]
pub struct Issued {
    /// Each fixed identity's credentials: services, operator, observer.
    pub credentials: BTreeMap<String, Credentials>,
    /// The custodian's system-account user.
    pub system: Credentials,
    /// What spawner-svc needs to mint and revoke.
    pub custodian: CustodianKeys,
    /// What the nats-server configuration is made of ([`server::config`]).
    pub server: server::AuthParts,
    /// The services' public keys.
    pub audit_keys: AuditKeys,
}

impl Issued {
    /// The credentials of `principal` (operator, observer or a service).
    pub fn creds_of(&self, principal: &Principal) -> Option<&Credentials> {
        self.credentials.get(principal.token())
    }
}

impl Keys {
    /// Fresh keys.
    pub fn generate() -> Self {
        Self {
            operator: KeyPair::new_operator(),
            operator_signing: KeyPair::new_operator(),
            account: KeyPair::new_account(),
            account_signing: KeyPair::new_account(),
            agent_signing: KeyPair::new_account(),
            system: KeyPair::new_account(),
            system_signing: KeyPair::new_account(),
        }
    }

    fn all(&self) -> [&KeyPair; 7] {
        [
            &self.operator,
            &self.operator_signing,
            &self.account,
            &self.account_signing,
            &self.agent_signing,
            &self.system,
            &self.system_signing,
        ]
    }

    /// The public half of the account.
    pub fn account_keys(&self) -> AccountKeys {
        AccountKeys {
            account: self.account.public_key(),
            account_signing: self.account_signing.public_key(),
            agent_signing: self.agent_signing.public_key(),
        }
    }

    /// Mints the fixed identities' credentials, the custodian's bundle, what the server
    /// configuration is made of, and the audit key history.
    pub fn issue(&self, limits: AgentLimits) -> Result<Issued, Error> {
        let account_keys = self.account_keys();
        let account = self.account.public_key();
        let mut credentials = BTreeMap::new();
        let mut audit_keys = AuditKeys::default();
        let fixed = Service::ALL
            .into_iter()
            .map(Principal::Service)
            .chain([Principal::Operator, Principal::Observer]);
        for principal in fixed {
            let kind = Kind::of(&principal);
            let name = principal.token().to_owned();
            let creds = Credentials::generate(|user| {
                claims::sign(
                    &claims::fixed_user(kind, &name, user, &account),
                    &self.account_signing,
                )
            })?;
            if let Principal::Service(s) = principal {
                audit_keys.keys.push(AuditKey {
                    service: s,
                    public_key: creds.public_key()?,
                });
            }
            credentials.insert(name, creds);
        }
        // Operator mode with strict signing keys: no account's identity key signs users.
        let system = Credentials::generate(|user| {
            claims::sign(
                &claims::system_user(user, &self.system.public_key()),
                &self.system_signing,
            )
        })?;
        let account_jwt = claims::sign(
            &claims::account(&account_keys, limits, &BTreeMap::new()),
            &self.operator_signing,
        )?;
        let initial_iat = claims_iat(&account_jwt)?;
        let system_jwt = claims::sign(
            &claims::system_account(&self.system.public_key(), &self.system_signing.public_key()),
            &self.operator_signing,
        )?;
        let operator_jwt = claims::sign(
            &claims::operator(
                &self.operator.public_key(),
                &self.operator_signing.public_key(),
                &self.system.public_key(),
            ),
            &self.operator,
        )?;
        let server = server::AuthParts {
            operator_jwt,
            system_account: self.system.public_key(),
            preload: vec![
                (account, account_jwt),
                (self.system.public_key(), system_jwt),
            ],
        };
        Ok(Issued {
            credentials,
            system,
            custodian: CustodianKeys {
                operator_signing_seed: self.operator_signing.seed().map_err(Error::key)?,
                agent_signing_seed: self.agent_signing.seed().map_err(Error::key)?,
                account: account_keys,
                system_account: self.system.public_key(),
                initial_iat,
            },
            server,
            audit_keys,
        })
    }

    /// Credentials with no permission limits in Guild's account: for tests that inspect
    /// the streams directly, and for break-glass administration by whoever holds the
    /// account signing key. No Guild process holds or uses one.
    pub fn unrestricted(&self, name: &str) -> Result<Credentials, Error> {
        let account = self.account.public_key();
        Credentials::generate(|user| {
            let mut c = nats_jwt_rs::user::User::new_claims(name.into(), user.into());
            c.payload_mut().issuer_account = Some(account.clone());
            claims::sign(&c, &self.account_signing)
        })
    }

    /// Writes the key pairs to `dir` (created 0700, each file 0600).
    pub fn save(&self, dir: &Path) -> Result<(), Error> {
        private_dir(dir)?;
        for (file, key) in KEY_FILES.iter().zip(self.all()) {
            write_secret(&dir.join(file), &key.seed().map_err(Error::key)?)?;
        }
        Ok(())
    }

    /// Reads the key pairs from `dir`.
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let read = |file: &str, kind: KeyPairType| -> Result<KeyPair, Error> {
            let path = dir.join(file);
            let seed = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            let key = KeyPair::from_seed(seed.trim()).map_err(Error::key)?;
            if key.key_pair_type() != kind {
                return Err(Error::Format(format!(
                    "{} holds a {:?} key, not a {kind:?} key",
                    path.display(),
                    key.key_pair_type()
                )));
            }
            Ok(key)
        };
        Ok(Self {
            operator: read(KEY_FILES[0], KeyPairType::Operator)?,
            operator_signing: read(KEY_FILES[1], KeyPairType::Operator)?,
            account: read(KEY_FILES[2], KeyPairType::Account)?,
            account_signing: read(KEY_FILES[3], KeyPairType::Account)?,
            agent_signing: read(KEY_FILES[4], KeyPairType::Account)?,
            system: read(KEY_FILES[5], KeyPairType::Account)?,
            system_signing: read(KEY_FILES[6], KeyPairType::Account)?,
        })
    }
}

/// Where [`init`] put things.
#[derive(Clone, Debug)]
pub struct Layout {
    /// Guild's secrets: key pairs, the services' and the custodian's credentials.
    pub keys: PathBuf,
    /// The people's credentials: operator, observer, agents.
    pub creds: PathBuf,
}

impl Layout {
    /// `<root>/keys` and `<root>/creds` (what `guild dev` uses under `.guild/`).
    pub fn under(root: &Path) -> Self {
        Self {
            keys: root.join("keys"),
            creds: root.join("creds"),
        }
    }

    /// The nats-server configuration fragment (for the resolver folder given to [`init`]).
    pub fn server_config(&self) -> PathBuf {
        self.keys.join("nats-auth.conf")
    }

    /// What the server configuration is made of, for writing it with another resolver
    /// folder ([`server::config`]).
    pub fn server_parts(&self) -> PathBuf {
        self.keys.join("nats-auth.json")
    }

    /// Reads [`server_parts`](Self::server_parts).
    pub fn load_server_parts(&self) -> Result<server::AuthParts, Error> {
        let path = self.server_parts();
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::Format(format!("{}: {e}", path.display())))
    }

    /// The custodian's bundle.
    pub fn custodian(&self) -> PathBuf {
        self.keys.join("custodian.json")
    }

    /// The custodian's system-account credentials.
    pub fn system_creds(&self) -> PathBuf {
        self.keys.join("system.creds")
    }

    /// The audit key history.
    pub fn audit_keys(&self) -> PathBuf {
        self.keys.join("audit-keys.json")
    }

    /// A service's credentials.
    pub fn service_creds(&self, service: Service) -> PathBuf {
        self.keys.join(service_creds_file(service))
    }

    /// The credentials of a person or agent: `<creds>/<token>.creds`.
    pub fn creds_of(&self, principal: &Principal) -> PathBuf {
        self.creds.join(format!("{}.creds", principal.token()))
    }

    /// Whether keys were made here already.
    pub fn exists(&self) -> bool {
        self.server_config().is_file() && self.custodian().is_file()
    }
}

/// Makes keys and everything issued from them under `layout`, unless they are there
/// already (then nothing is touched: re-issuing would make a new account JWT that
/// replaces the one carrying the revocations). Returns whether it made them.
pub fn init(layout: &Layout, resolver_dir: &Path, limits: AgentLimits) -> Result<bool, Error> {
    if layout.exists() {
        return Ok(false);
    }
    let keys = Keys::generate();
    let issued = keys.issue(limits)?;
    keys.save(&layout.keys)?;
    private_dir(&layout.creds)?;
    for (name, creds) in &issued.credentials {
        let principal = Principal::from_token(name).map_err(|e| Error::Format(e.to_string()))?;
        let path = match principal {
            Principal::Service(s) => layout.service_creds(s),
            _ => layout.creds_of(&principal),
        };
        write_secret(&path, &creds.to_creds())?;
    }
    write_secret(&layout.system_creds(), &issued.system.to_creds())?;
    write_secret(&layout.custodian(), &issued.custodian.to_json()?)?;
    write_public(&layout.audit_keys(), &to_json(&issued.audit_keys)?)?;
    write_secret(&layout.server_parts(), &to_json(&issued.server)?)?;
    // Written last: its presence says the rest is complete.
    write_secret(
        &layout.server_config(),
        &server::config(&issued.server, resolver_dir),
    )?;
    Ok(true)
}

fn to_json<T: Serialize>(value: &T) -> Result<String, Error> {
    serde_json::to_string_pretty(value).map_err(|e| Error::Format(e.to_string()))
}

fn claims_iat(jwt: &str) -> Result<u64, Error> {
    nats_jwt_rs::Claims::<nats_jwt_rs::account::Account>::decode(jwt)
        .map(|c| c.iat)
        .map_err(|e| Error::Format(format!("account JWT: {e}")))
}

/// Creates `dir` readable by its owner only.
pub fn private_dir(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}

/// Writes a secret: mode 0600 from the moment it exists, replaced atomically.
pub fn write_secret(path: &Path, text: &str) -> Result<(), Error> {
    write_mode(path, text, 0o600)
}

fn write_public(path: &Path, text: &str) -> Result<(), Error> {
    write_mode(path, text, 0o644)
}

fn write_mode(path: &Path, text: &str, mode: u32) -> Result<(), Error> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let tmp = path.with_extension("tmp");
    // A leftover from an interrupted write would keep its old mode.
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&tmp).map_err(|e| Error::io(&tmp, e))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}
