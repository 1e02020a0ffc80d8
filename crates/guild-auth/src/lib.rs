//! Identity at the broker.
//!
//! Guild's rules are only as strong as the identity of whoever asks. This crate makes
//! that identity real, in NATS's own decentralized-JWT model (operator → account →
//! users, Ed25519 nkeys):
//!
//! * [`Keys`]: the operator, Guild's account with its two signing keys (one for the fixed
//!   identities, one scoped for agents), the system account; [`init`] makes them once
//!   and issues what the deployment needs ([`Layout`]).
//! * [`Credentials`]: a user JWT and its seed, the `.creds` file every NATS client reads.
//! * [`Custodian`]: what spawner-svc holds: it mints each agent's credentials at spawn
//!   (bound to the agent id through the scoped key's `{{name()}}` template, so an agent
//!   can use its own subjects only) and signs the account JWT that carries revocations.
//! * [`server::config`]: the nats-server fragment: operator mode, the full resolver.
//! * [`Keys::unrestricted`]: a credential with no limits, for tests that inspect streams
//!   and for break-glass administration; no Guild process uses one.
//!
//! The permissions themselves are the contract's: `guild_wire::access`.
//!
//! ```
//! use guild_auth::{Custodian, Keys, claims::AgentLimits};
//! use guild_wire::domain::AgentId;
//!
//! let keys = Keys::generate();
//! let issued = keys.issue(AgentLimits::default())?;
//! let custodian = Custodian::new(issued.custodian.clone(), AgentLimits::default())?;
//! let creds = custodian.generate_agent(&AgentId::new("dev-1").unwrap())?;
//! assert_eq!(creds.name()?, "dev-1");
//! # Ok::<(), guild_auth::Error>(())
//! ```

#![deny(missing_docs)]

pub mod claims;
mod creds;
mod custodian;
mod keys;
pub mod server;

use std::path::Path;

pub use creds::{Credentials, decode_user, name_of};
pub use custodian::{Custodian, CustodianKeys, check_user_key};
pub use keys::{
    AuditKey, AuditKeys, Issued, Keys, Layout, init, private_dir, service_creds_file, write_secret,
};

/// What went wrong with keys or credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A key could not be made or read.
    #[error("key: {0}")]
    Key(String),
    /// A JWT, credentials file or bundle is malformed.
    #[error("{0}")]
    Format(String),
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            source,
        }
    }

    pub(crate) fn key(e: impl std::fmt::Display) -> Self {
        Self::Key(e.to_string())
    }
}
