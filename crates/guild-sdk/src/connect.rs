//! Connecting to NATS as one identity, with the options NATS users know.
//!
//! | option | flag | variable |
//! |---|---|---|
//! | server URL(s), comma separated (`nats://`, `tls://`) | `--nats-url` | `NATS_URL` |
//! | credentials file (JWT and seed) | `--creds` | `NATS_CREDS` |
//! | nkey seed file | `--nkey` | `NATS_NKEY` |
//! | user, or a token when no password is given | `--user` | `NATS_USER` |
//! | password | `--password` | `NATS_PASSWORD` |
//! | CA certificate(s) to trust | `--tlsca` | `NATS_CA` |
//! | client certificate and key | `--tlscert`, `--tlskey` | `NATS_CERT`, `NATS_KEY` |
//!
//! The names are the `nats` CLI's. With Guild's credentials (a `.creds` file Guild
//! minted), the connection knows who it is: the JWT names the principal, and replies come
//! back under that principal's own inbox prefix, the only one its credentials may read.

use std::path::{Path, PathBuf};
use std::time::Duration;

use guild_auth::Credentials;
use guild_wire::domain::Principal;
use guild_wire::subject;
use tokio::sync::broadcast;

use crate::{Error, ErrorKind};

/// How a connection proves who it is.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum Auth {
    /// No credentials (a server without authentication, or TLS client certificates alone).
    #[default]
    None,
    /// A `.creds` file: a user JWT and its seed.
    CredsFile(PathBuf),
    /// `.creds` text held in memory (from a spawn reply, say).
    Creds(Credentials),
    /// A file holding an nkey seed.
    NkeyFile(PathBuf),
    /// A user and password.
    UserPassword {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
    /// A token.
    Token(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::CredsFile(p) => write!(f, "CredsFile({})", p.display()),
            Auth::Creds(c) => write!(f, "Creds({:?})", c.name().ok()),
            Auth::NkeyFile(p) => write!(f, "NkeyFile({})", p.display()),
            Auth::UserPassword { user, .. } => write!(f, "UserPassword({user}, <secret>)"),
            Auth::Token(_) => f.write_str("Token(<secret>)"),
        }
    }
}

/// TLS settings: a `tls://` URL or any file here turns TLS on.
#[derive(Clone, Debug, Default)]
pub struct Tls {
    /// CA certificates to trust (PEM).
    pub ca: Option<PathBuf>,
    /// The client certificate (PEM), with [`key`](Self::key).
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key: Option<PathBuf>,
}

/// Where NATS is and how to authenticate: everything a connection needs.
#[derive(Clone, Debug)]
pub struct NatsOptions {
    /// Server URLs, comma separated.
    pub url: String,
    /// Credentials.
    pub auth: Auth,
    /// TLS.
    pub tls: Tls,
    /// Keep trying when no server answers at first (a service starting before NATS in a
    /// compose deployment); otherwise the first failure is returned.
    pub retry_initial_connect: bool,
}

/// How often a Guild connection pings its server (async-nats gives up on it after two
/// unanswered pings, then reconnects to another URL).
pub const PING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// The default server URL.
pub const DEFAULT_URL: &str = "nats://127.0.0.1:4222";

impl Default for NatsOptions {
    fn default() -> Self {
        Self::url(DEFAULT_URL)
    }
}

impl NatsOptions {
    /// `url`, no credentials.
    pub fn url(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            auth: Auth::None,
            tls: Tls::default(),
            retry_initial_connect: false,
        }
    }

    /// The same server, other credentials (an agent's, from its spawn reply).
    pub fn with_auth(&self, auth: Auth) -> Self {
        Self {
            auth,
            ..self.clone()
        }
    }

    /// The same server with credentials from `.creds` text.
    pub fn with_creds_text(&self, creds: &str) -> Result<Self, Error> {
        let creds = Credentials::parse(creds).map_err(|e| connect_error(e.to_string()))?;
        Ok(self.with_auth(Auth::Creds(creds)))
    }

    /// Reads `NATS_URL`, `NATS_CREDS`, `NATS_NKEY`, `NATS_USER`, `NATS_PASSWORD`,
    /// `NATS_CA`, `NATS_CERT` and `NATS_KEY`, as the `nats` CLI does.
    pub fn from_env() -> Result<Self, Error> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        build(
            var("NATS_URL").unwrap_or_else(|| DEFAULT_URL.into()),
            var("NATS_CREDS").map(PathBuf::from),
            var("NATS_NKEY").map(PathBuf::from),
            var("NATS_USER"),
            var("NATS_PASSWORD"),
            Tls {
                ca: var("NATS_CA").map(PathBuf::from),
                cert: var("NATS_CERT").map(PathBuf::from),
                key: var("NATS_KEY").map(PathBuf::from),
            },
        )
        .map_err(connect_error)
    }

    /// The principal the credentials were minted for (`None` without Guild
    /// credentials).
    pub fn principal(&self) -> Result<Option<Principal>, Error> {
        let creds = match &self.auth {
            Auth::Creds(c) => c.clone(),
            Auth::CredsFile(path) => read_creds(path)?,
            _ => return Ok(None),
        };
        let name = creds.name().map_err(|e| connect_error(e.to_string()))?;
        Principal::from_token(&name)
            .map(Some)
            .map_err(|e| connect_error(format!("the credentials name {name:?}: {e}")))
    }

    /// Connects, naming the connection `name` (what the server's monitoring shows).
    pub async fn connect(&self, name: &str) -> Result<Connection, Error> {
        let principal = self.principal()?;
        let mut options = match &self.auth {
            Auth::None => async_nats::ConnectOptions::new(),
            Auth::CredsFile(path) => {
                let creds = read_creds(path)?;
                creds_options(&creds)?
            }
            Auth::Creds(creds) => creds_options(creds)?,
            Auth::NkeyFile(path) => {
                let seed = std::fs::read_to_string(path).map_err(|e| {
                    connect_error(format!("cannot read the nkey seed {}: {e}", path.display()))
                })?;
                async_nats::ConnectOptions::with_nkey(seed.trim().to_owned())
            }
            Auth::UserPassword { user, password } => {
                async_nats::ConnectOptions::with_user_and_password(user.clone(), password.clone())
            }
            Auth::Token(token) => async_nats::ConnectOptions::with_token(token.clone()),
        };
        if let Some(p) = &principal {
            options = options.custom_inbox_prefix(subject::inbox_prefix(p));
        }
        let tls_wanted = self.tls.ca.is_some()
            || self.tls.cert.is_some()
            || self.url.split(',').any(|u| u.trim().starts_with("tls://"));
        if let Some(ca) = &self.tls.ca {
            options = options.add_root_certificates(ca.clone());
        }
        match (&self.tls.cert, &self.tls.key) {
            (Some(cert), Some(key)) => {
                options = options.add_client_certificate(cert.clone(), key.clone());
            }
            (None, None) => {}
            _ => {
                return Err(connect_error(
                    "a client certificate needs both --tlscert (NATS_CERT) and --tlskey (NATS_KEY)",
                ));
            }
        }
        if tls_wanted {
            options = options.require_tls(true);
        }
        if self.retry_initial_connect {
            options = options.retry_on_initial_connect();
        }
        // A server cut off by a partition sends nothing, not even a reset: only missed
        // pings tell. Every PING_INTERVAL, two missed, so a client moves to another node
        // within seconds rather than the minutes of the default.
        options = options.ping_interval(PING_INTERVAL);
        let (violations, _) = broadcast::channel(64);
        let tx = violations.clone();
        options = options
            .name(name)
            .request_timeout(Some(Duration::from_secs(10)))
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    if let async_nats::Event::ServerError(async_nats::ServerError::Other(text)) =
                        &event
                        && let Some(subject) = refused_subject(text)
                    {
                        let _ = tx.send(subject);
                    }
                    match event {
                        async_nats::Event::ServerError(e) => {
                            tracing::warn!(error = %e, "the NATS server reported an error");
                        }
                        async_nats::Event::Disconnected => tracing::info!("disconnected from NATS"),
                        async_nats::Event::Connected => tracing::debug!("connected to NATS"),
                        other => tracing::debug!(event = %other, "NATS connection event"),
                    }
                }
            });
        let urls: Vec<&str> = self
            .url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect();
        let client = options.connect(urls.as_slice()).await.map_err(|e| {
            let hint = match e.kind() {
                async_nats::ConnectErrorKind::AuthorizationViolation => {
                    "; the server refused these credentials (revoked, or for another Guild?)"
                }
                async_nats::ConnectErrorKind::Tls => "; check --tlsca, --tlscert and --tlskey",
                _ => "",
            };
            connect_error(format!("cannot connect to NATS at {}: {e}{hint}", self.url))
        })?;
        Ok(Connection {
            client,
            principal,
            violations: Some(violations),
        })
    }
}

/// A connection and who it is.
#[derive(Clone, Debug)]
pub struct Connection {
    /// The NATS connection.
    pub client: async_nats::Client,
    /// The principal its credentials name, when they are Guild's.
    pub principal: Option<Principal>,
    /// Subjects the server refused to let this connection publish on, as they are
    /// reported (a call waiting for a reply on such a subject fails at once).
    pub(crate) violations: Option<broadcast::Sender<String>>,
}

impl Connection {
    /// A connection made elsewhere, for `principal` (no refusals are reported early).
    pub fn from_client(client: async_nats::Client, principal: Option<Principal>) -> Self {
        Self {
            client,
            principal,
            violations: None,
        }
    }
}

/// The subject of a `Permissions Violation for Publish to "<subject>"` error.
pub(crate) fn refused_subject(text: &str) -> Option<String> {
    let rest = text.split("Permissions Violation for Publish to").nth(1)?;
    let subject = rest.trim().trim_matches(|c| c == '"' || c == '\'').trim();
    let subject = subject.split(['"', ' ']).next()?;
    (!subject.is_empty()).then(|| subject.to_owned())
}

fn creds_options(creds: &Credentials) -> Result<async_nats::ConnectOptions, Error> {
    async_nats::ConnectOptions::with_credentials(&creds.to_creds())
        .map_err(|e| connect_error(format!("unreadable credentials: {e}")))
}

fn read_creds(path: &Path) -> Result<Credentials, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        connect_error(format!(
            "cannot read the credentials file {}: {e}",
            path.display()
        ))
    })?;
    Credentials::parse(&text).map_err(|e| connect_error(format!("{}: {e}", path.display())))
}

fn connect_error(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::Transport, "connect", detail)
}

/// The options as flags and environment variables (the `nats` CLI's names), for the
/// `guild` CLI and the services.
#[cfg(feature = "cli")]
#[derive(clap::Args, Clone, Debug, Default)]
pub struct Args {
    /// NATS server URL, or several separated by commas (tls:// for TLS).
    #[arg(long = "nats-url", env = "NATS_URL", default_value = DEFAULT_URL, global = true)]
    pub url: String,
    /// Credentials file (a user JWT and its seed), e.g. .guild/creds/operator.creds.
    #[arg(long, env = "NATS_CREDS", global = true)]
    pub creds: Option<PathBuf>,
    /// File holding an nkey seed.
    #[arg(long, env = "NATS_NKEY", global = true)]
    pub nkey: Option<PathBuf>,
    /// User name, or a token when no password is given.
    #[arg(long, env = "NATS_USER", global = true)]
    pub user: Option<String>,
    /// Password.
    #[arg(long, env = "NATS_PASSWORD", hide_env_values = true, global = true)]
    pub password: Option<String>,
    /// CA certificate(s) to trust (PEM).
    #[arg(long, env = "NATS_CA", global = true)]
    pub tlsca: Option<PathBuf>,
    /// Client certificate (PEM), with --tlskey.
    #[arg(long, env = "NATS_CERT", global = true)]
    pub tlscert: Option<PathBuf>,
    /// Client certificate's private key (PEM).
    #[arg(long, env = "NATS_KEY", global = true)]
    pub tlskey: Option<PathBuf>,
}

#[cfg(feature = "cli")]
impl Args {
    /// Checks the combination and makes the options.
    pub fn into_options(self) -> Result<NatsOptions, String> {
        build(
            self.url,
            self.creds,
            self.nkey,
            self.user,
            self.password,
            Tls {
                ca: self.tlsca,
                cert: self.tlscert,
                key: self.tlskey,
            },
        )
    }
}

/// The one rule for combining the options, from flags or the environment.
fn build(
    url: String,
    creds: Option<PathBuf>,
    nkey: Option<PathBuf>,
    user: Option<String>,
    password: Option<String>,
    tls: Tls,
) -> Result<NatsOptions, String> {
    if url.trim().is_empty() {
        return Err("--nats-url (NATS_URL) is empty".into());
    }
    let auth = match (creds, nkey, user, password) {
        (Some(creds), None, None, None) => Auth::CredsFile(creds),
        (None, Some(nkey), None, None) => Auth::NkeyFile(nkey),
        (None, None, Some(user), Some(password)) => Auth::UserPassword { user, password },
        (None, None, Some(token), None) => Auth::Token(token),
        (None, None, None, None) => Auth::None,
        (None, None, None, Some(_)) => {
            return Err("--password (NATS_PASSWORD) needs --user (NATS_USER)".into());
        }
        _ => {
            return Err(
                "choose one way to authenticate: --creds, --nkey, or --user (with --password)"
                    .into(),
            );
        }
    };
    if tls.cert.is_some() != tls.key.is_some() {
        return Err("--tlscert (NATS_CERT) and --tlskey (NATS_KEY) go together".into());
    }
    Ok(NatsOptions {
        url,
        auth,
        tls,
        retry_initial_connect: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_options_combine_as_the_nats_cli_does() {
        let none = Tls::default();
        let token = build(
            "nats://x".into(),
            None,
            None,
            Some("t".into()),
            None,
            none.clone(),
        );
        assert!(matches!(token.unwrap().auth, Auth::Token(_)));
        let e = build(
            "nats://x".into(),
            None,
            None,
            None,
            Some("p".into()),
            none.clone(),
        );
        assert!(e.unwrap_err().contains("--user"));
        let both = build(
            "nats://x".into(),
            Some("a".into()),
            Some("b".into()),
            None,
            None,
            none,
        );
        assert!(both.unwrap_err().contains("one way"));
        let half_tls = Tls {
            cert: Some("c".into()),
            ..Tls::default()
        };
        let e = build("nats://x".into(), None, None, None, None, half_tls);
        assert!(e.unwrap_err().contains("--tlskey"));
    }

    #[test]
    fn a_permissions_violation_names_its_subject() {
        let text = "Permissions Violation for Publish to \"guild.bus.v1.request.b\"";
        assert_eq!(
            refused_subject(text).as_deref(),
            Some("guild.bus.v1.request.b")
        );
        assert_eq!(refused_subject("Authorization Violation"), None);
    }
}
