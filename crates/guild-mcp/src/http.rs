//! Streamable HTTP for hosts that connect remotely: rmcp's `StreamableHttpService` behind
//! two checks of our own, made before anything else reads the request:
//!
//! 1. `Origin`, when present, must be one of the allowed origins (by default this server's
//!    own loopback origins), or the answer is 403: the MCP specification's defence against
//!    DNS rebinding (a web page in a browser reaching a local server);
//! 2. `Authorization: Bearer <token>` must carry the configured token, or the answer is 401.
//!
//! rmcp also checks `Host` against loopback names and the origins again. With [`Tls`]
//! the listener speaks HTTPS only (rustls, TLS 1.2 and 1.3): a host that connects from
//! another machine should not send the bearer token in the clear.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;
use tower_service::Service as _;
use tracing::{debug, info, warn};

use crate::{Error, Server, agent, tools};

/// How the HTTP transport listens.
#[derive(Clone, Debug)]
pub struct Http {
    /// Where to listen (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// The bearer token every request must carry.
    pub token: String,
    /// Origins allowed besides this server's own loopback ones (`http://localhost:<port>`,
    /// `http://127.0.0.1:<port>`), as `scheme://host:port`.
    pub allowed_origins: Vec<String>,
    /// Serve HTTPS with this certificate and key instead of plain HTTP.
    pub tls: Option<Tls>,
}

/// The certificate the HTTPS listener presents.
#[derive(Clone, Debug)]
pub struct Tls {
    /// The certificate chain, PEM, the server's own certificate first.
    pub cert_chain: std::path::PathBuf,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub private_key: std::path::PathBuf,
}

impl Tls {
    /// The rustls acceptor for this certificate; a clear error naming the file that is
    /// missing or unreadable.
    fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, Error> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        use tokio_rustls::rustls;
        let unreadable = |path: &std::path::Path, what: &str, e: &dyn std::fmt::Display| {
            Error::Config(format!("--tls-{what} {}: {e}", path.display()))
        };
        let chain = CertificateDer::pem_file_iter(&self.cert_chain)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| unreadable(&self.cert_chain, "cert", &e))?;
        if chain.is_empty() {
            return Err(unreadable(
                &self.cert_chain,
                "cert",
                &"no certificate in it",
            ));
        }
        let key = PrivateKeyDer::from_pem_file(&self.private_key)
            .map_err(|e| unreadable(&self.private_key, "key", &e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(format!("TLS: {e}")))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| Error::Config(format!("--tls-cert and --tls-key do not match: {e}")))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

type Body = BoxBody<Bytes, Infallible>;

/// Serves MCP over streamable HTTP as `agent`, until `shutdown`
/// resolves. `bound` is told the address once listening (with port 0, the port picked).
pub async fn serve_http(
    agent: crate::Agent,
    options: Http,
    bound: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    if options.token.len() < 16 {
        return Err(Error::Config(
            "the HTTP transport needs a bearer token of at least 16 characters \
             (GUILD_MCP_TOKEN or --token-file)"
                .into(),
        ));
    }
    let tls = options.tls.as_ref().map(Tls::acceptor).transpose()?;
    let shared = agent::Shared::new(agent)?;
    shared.start().await?;
    let listener = TcpListener::bind(options.listen).await?;
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        warn!(%addr, "mcp over http listens beyond loopback: anyone who has the token acts as this agent");
    }
    let port = addr.port();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut origins = vec![
        format!("{scheme}://127.0.0.1:{port}"),
        format!("{scheme}://localhost:{port}"),
        format!("{scheme}://[::1]:{port}"),
    ];
    origins.extend(options.allowed_origins.iter().cloned());
    let mut hosts = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    hosts.push(addr.ip().to_string());
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_allowed_origins(origins.clone())
        .enforce_origin_validation();
    let all_tools = Arc::new(tools::all());
    let mcp = StreamableHttpService::new(
        move || Ok(Server::new(shared.clone(), all_tools.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let gate = Arc::new(Gate {
        token: options.token,
        origins,
    });
    info!(%addr, "mcp over http listening");
    bound(addr);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    guild_telemetry::metrics::count_error("mcp_http_accept_failed");
                    continue;
                }
            },
        };
        let mcp = mcp.clone();
        let gate = gate.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let mut mcp = mcp.clone();
                let gate = gate.clone();
                async move {
                    if let Some(refused) = gate.check(&request) {
                        return Ok::<_, Infallible>(refused);
                    }
                    mcp.call(request).await
                }
            });
            let served = match tls {
                None => {
                    http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                }
                Some(tls) => match tls.accept(stream).await {
                    Ok(stream) => {
                        http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                    }
                    Err(e) => {
                        debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                },
            };
            if let Err(e) = served {
                debug!(%peer, error = %e, "http connection ended with an error");
            }
        });
    }
    Ok(())
}

/// The checks made before rmcp sees a request.
struct Gate {
    /// The bearer token.
    token: String,
    /// Allowed `Origin` values.
    origins: Vec<String>,
}

impl Gate {
    fn check<B>(&self, request: &Request<B>) -> Option<Response<Body>> {
        if let Some(origin) = request.headers().get(header::ORIGIN) {
            let allowed = origin
                .to_str()
                .is_ok_and(|o| self.origins.iter().any(|a| a.eq_ignore_ascii_case(o)));
            if !allowed {
                return Some(refuse(
                    StatusCode::FORBIDDEN,
                    "this Origin may not use this MCP server",
                ));
            }
        }
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match presented {
            Some(t) if same(t.as_bytes(), self.token.as_bytes()) => None,
            _ => {
                let mut r = refuse(StatusCode::UNAUTHORIZED, "a bearer token is required");
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
                Some(r)
            }
        }
    }
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn refuse(status: StatusCode, message: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(message.as_bytes())).boxed());
    *response.status_mut() = status;
    response
}
