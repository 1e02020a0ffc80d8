//! One real nats-server process with JetStream.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use guild_auth::claims::AgentLimits;
use guild_auth::server::AuthParts;
use guild_auth::{Keys, Layout};
use guild_wire::domain::Principal;
use tempfile::TempDir;

use crate::binary::nats_server_bin;

/// How to configure a test server.
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// `jetstream { sync_interval: always }`: fsync every write, as the audit log's
    /// production configuration does (nats.md §8).
    pub sync_always: bool,
    /// Extra configuration text appended as is.
    pub extra_config: String,
    /// The HTTP monitoring endpoint (`/healthz`, `/varz`, ...) on a free port, as the
    /// compose deployment's health check uses it; see [`NatsServer::monitoring_url`].
    pub monitoring: bool,
    /// No authentication: anyone connects and may do anything. Only the benchmark's
    /// authentication-off baseline rows use it; every test runs with authentication on
    /// (`tests/architecture.rs` checks that no test sets it).
    pub insecure: bool,
}

/// Guild's keys for a test server (or a cluster, whose nodes share them): made with
/// `guild_auth::init` in a folder of their own, as `guild dev` makes them.
#[derive(Debug)]
pub(crate) struct Auth {
    /// Holds the keys and credentials; deleted on drop.
    _dir: TempDir,
    layout: Layout,
    keys: Keys,
    parts: AuthParts,
}

impl Auth {
    pub(crate) fn generate() -> std::sync::Arc<Self> {
        let dir = tempfile::Builder::new()
            .prefix("guild-keys-")
            .tempdir()
            .unwrap_or_else(|e| panic!("temp dir: {e}"));
        let layout = Layout::under(dir.path());
        // The resolver folder written into nats-auth.conf is not used: each server writes
        // its own configuration from the parts, with its own folder.
        guild_auth::init(
            &layout,
            &dir.path().join("unused-jwt"),
            AgentLimits::default(),
        )
        .unwrap_or_else(|e| panic!("guild keys: {e}"));
        let keys = Keys::load(&layout.keys).unwrap_or_else(|e| panic!("guild keys: {e}"));
        let parts = layout
            .load_server_parts()
            .unwrap_or_else(|e| panic!("guild keys: {e}"));
        std::sync::Arc::new(Self {
            _dir: dir,
            layout,
            keys,
            parts,
        })
    }
}

/// Cluster wiring for one node of a [`Cluster`](crate::Cluster).
#[derive(Clone, Debug)]
pub(crate) struct Routes {
    pub(crate) cluster_port: u16,
    /// The other nodes' route addresses: host and port.
    pub(crate) peers: Vec<(String, u16)>,
}

/// A running nats-server with JetStream, killed and cleaned up on drop.
#[derive(Debug)]
pub struct NatsServer {
    bin: PathBuf,
    /// Holds the config, the JetStream store and the log; deleted on drop.
    dir: TempDir,
    name: String,
    options: ServerOptions,
    routes: Option<Routes>,
    /// Guild's keys, unless the server is insecure.
    auth: Option<std::sync::Arc<Auth>>,
    /// The host it runs on, when not this one's loopback (a cluster's node that can be
    /// cut off).
    host: Option<crate::netns::Host>,
    /// The client port, fixed after the first start so restarts keep the URL.
    port: Option<u16>,
    /// The monitoring port when [`ServerOptions::monitoring`] is on; fixed like `port`.
    monitoring_port: Option<u16>,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a server with default options.
    pub fn start() -> Self {
        Self::start_with(ServerOptions::default())
    }

    /// Starts a server with `options`.
    pub fn start_with(options: ServerOptions) -> Self {
        let auth = (!options.insecure).then(Auth::generate);
        Self::launch("guild-test".into(), options, None, auth, None)
    }

    pub(crate) fn launch(
        name: String,
        options: ServerOptions,
        routes: Option<Routes>,
        auth: Option<std::sync::Arc<Auth>>,
        host: Option<crate::netns::Host>,
    ) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("guild-nats-")
            .tempdir()
            .unwrap_or_else(|e| panic!("temp dir: {e}"));
        let mut server = Self {
            bin: nats_server_bin(),
            dir,
            name,
            options,
            routes,
            auth,
            host,
            port: None,
            monitoring_port: None,
            child: None,
        };
        server.spawn();
        server
    }

    /// The client URL, `nats://127.0.0.1:<port>` (or the host's address).
    pub fn url(&self) -> String {
        format!("nats://{}:{}", self.address(), self.port())
    }

    /// Where it listens: this machine's loopback, or its host's address.
    pub fn address(&self) -> &str {
        self.host.as_ref().map_or("127.0.0.1", |h| h.ip.as_str())
    }

    /// Its name (`server_name`), as JetStream names a stream's leader.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
            .unwrap_or_else(|| panic!("server {} has not started", self.name))
    }

    /// The HTTP monitoring base URL, `http://127.0.0.1:<port>`, when the server was started
    /// with [`ServerOptions::monitoring`].
    pub fn monitoring_url(&self) -> Option<String> {
        self.monitoring_port
            .map(|p| format!("http://{}:{p}", self.address()))
    }

    /// The JetStream store directory.
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// The configuration file the server runs with.
    pub fn config_text(&self) -> String {
        self.config()
    }

    /// The server's log so far (for a failing test's message).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Where Guild's keys and credentials for this server are (`None` when insecure):
    /// the services' credentials, the custodian's bundle, the operator's and the
    /// observer's credentials, as `guild dev` lays them out.
    pub fn layout(&self) -> Option<&Layout> {
        self.auth.as_ref().map(|a| &a.layout)
    }

    /// The credentials file of `principal` (a service, the operator or the observer).
    /// Panics on an insecure server.
    pub fn creds_file(&self, principal: &Principal) -> PathBuf {
        let layout = self
            .layout()
            .unwrap_or_else(|| panic!("server {} runs without authentication", self.name));
        match principal {
            Principal::Service(s) => layout.service_creds(*s),
            other => layout.creds_of(other),
        }
    }

    /// Connects as `principal` (a service, the operator or the observer) with its own
    /// credentials and reply-inbox prefix, retrying while the server comes up. On an
    /// insecure server it connects without credentials.
    pub async fn connect_as(&self, principal: &Principal) -> async_nats::Client {
        let creds = self
            .auth
            .as_ref()
            .map(|_| read_creds(&self.creds_file(principal)));
        let prefix = guild_wire::subject::inbox_prefix(principal);
        connect_with(&self.url(), creds.as_deref(), Some(&prefix)).await
    }

    /// Connection options for `principal` (what the SDK and the services take): this
    /// server's URL with the principal's credentials file.
    pub fn options_as(&self, principal: &Principal) -> guild_sdk::NatsOptions {
        let base = guild_sdk::NatsOptions::url(self.url());
        match &self.auth {
            Some(_) => base.with_auth(guild_sdk::Auth::CredsFile(self.creds_file(principal))),
            None => base,
        }
    }

    /// The options the custodian connects to the system account with.
    pub fn system_options(&self) -> guild_sdk::NatsOptions {
        let (_, system) = self.custodian_files();
        guild_sdk::NatsOptions::url(self.url()).with_auth(guild_sdk::Auth::CredsFile(system))
    }

    /// The custodian's bundle (spawner-svc's `--custodian`).
    pub fn custodian_keys(&self) -> guild_auth::CustodianKeys {
        let (keys, _) = self.custodian_files();
        guild_auth::CustodianKeys::load(&keys).unwrap_or_else(|e| panic!("{e}"))
    }

    /// An operator's client, acting as the operator with its own credentials, that can
    /// open connections for the agents it spawns ([`guild_sdk::Guild::connect_agent`]).
    pub async fn operator(&self) -> guild_sdk::Guild {
        let options = self.options_as(&Principal::Operator);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match guild_sdk::connect(&options).await {
                Ok(g) => return g,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("the operator could not connect: {e}"),
            }
        }
    }

    /// Connects with credentials that have no limits, for a test to look at the streams
    /// directly (no Guild process holds such credentials).
    pub async fn connect_admin(&self) -> async_nats::Client {
        connect_with(&self.url(), self.admin_creds().as_deref(), None).await
    }

    /// [`connect_admin`](Self::connect_admin) with `principal`'s reply-inbox prefix: to
    /// send requests in any principal's name and receive the answers (a service answers
    /// only into the caller's own inbox).
    pub async fn connect_admin_as(&self, principal: &Principal) -> async_nats::Client {
        let prefix = guild_wire::subject::inbox_prefix(principal);
        connect_with(&self.url(), self.admin_creds().as_deref(), Some(&prefix)).await
    }

    pub(crate) fn admin_creds(&self) -> Option<String> {
        self.auth.as_ref().map(|a| {
            a.keys
                .unrestricted("test-admin")
                .unwrap_or_else(|e| panic!("{e}"))
                .to_creds()
        })
    }

    /// The custodian's bundle and its system-account credentials (spawner-svc's
    /// `--custodian` and `--system-creds`). Panics on an insecure server.
    pub fn custodian_files(&self) -> (PathBuf, PathBuf) {
        let layout = self
            .layout()
            .unwrap_or_else(|| panic!("server {} runs without authentication", self.name));
        (layout.custodian(), layout.system_creds())
    }

    /// Kills the process (SIGKILL: a crash, not a clean shutdown) and starts it again on
    /// the same store and port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Kills the process and leaves it down until [`resume`](Self::resume).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a killed server again on the same store and port.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "server {} is running", self.name);
        self.spawn();
    }

    /// The process id while it runs (to pause it with SIGSTOP, or look at it).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// How the process ended, if it exited on its own (it is then reaped, and
    /// [`resume`](Self::resume) may start it again); `None` while it runs.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    fn config(&self) -> String {
        let store = self.store_dir();
        let listen = self.port.map_or_else(|| "-1".to_owned(), |p| p.to_string());
        let sync = if self.options.sync_always {
            "\n  sync_interval: always"
        } else {
            ""
        };
        let address = self.address();
        let mut conf = format!(
            "server_name: {name}\nlisten: \"{address}:{listen}\"\n\
             jetstream {{\n  store_dir: {store:?}\n  max_memory_store: 268435456\n  max_file_store: 4294967296{sync}\n}}\n",
            name = self.name,
        );
        if self.options.monitoring {
            let http = self
                .monitoring_port
                .map_or_else(|| "-1".to_owned(), |p| p.to_string());
            conf.push_str(&format!("http: \"{address}:{http}\"\n"));
        }
        if let Some(r) = &self.routes {
            let peers: Vec<String> = r
                .peers
                .iter()
                .map(|(host, p)| format!("\"nats-route://{host}:{p}\""))
                .collect();
            conf.push_str(&format!(
                "cluster {{\n  name: guild-test\n  listen: \"{address}:{}\"\n  routes: [{}]\n}}\n",
                r.cluster_port,
                peers.join(", ")
            ));
        }
        if let Some(auth) = &self.auth {
            conf.push_str(&guild_auth::server::config(
                &auth.parts,
                &self.dir.path().join("jwt"),
            ));
        }
        conf.push_str(&self.options.extra_config);
        conf
    }

    fn spawn(&mut self) {
        let dir = self.dir.path().to_path_buf();
        let conf = dir.join("server.conf");
        fs::write(&conf, self.config()).unwrap_or_else(|e| panic!("write {}: {e}", conf.display()));
        // On a host of its own, inside its namespace (`ip netns exec` execs the server, so
        // the child is the server itself: a kill -9 reaches it).
        let mut command = match &self.host {
            Some(h) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", h.netns.as_str()]).arg(&self.bin);
                c
            }
            None => Command::new(&self.bin),
        };
        let mut child = command
            .arg("-c")
            .arg(&conf)
            .arg("--ports_file_dir")
            .arg(&dir)
            .arg("-l")
            .arg(dir.join("server.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "could not run {}: {e}; {}",
                    self.bin.display(),
                    crate::INSTALL_HINT
                )
            });
        let ports = wait_for_ports(&mut child, &dir).unwrap_or_else(|why| {
            let _ = child.kill();
            panic!(
                "nats-server {} did not start: {why}\n--- log ---\n{}",
                self.name,
                self.log()
            )
        });
        self.port = Some(ports.client);
        self.monitoring_port = ports.monitoring;
        self.child = Some(child);
    }
}

/// The ports a started server listens on.
#[derive(Debug, PartialEq, Eq)]
struct Ports {
    client: u16,
    monitoring: Option<u16>,
}

/// Reads the ports from `<dir>/<binary>_<pid>.ports`, written once the server listens.
fn wait_for_ports(child: &mut Child, dir: &Path) -> Result<Ports, String> {
    let suffix = format!("_{}.ports", child.id());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("it exited with {status}"));
        }
        let ports_file = fs::read_dir(dir)
            .map_err(|e| e.to_string())?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(&suffix))
            });
        if let Some(file) = ports_file
            && let Some(ports) = fs::read_to_string(&file)
                .ok()
                .and_then(|text| parse_ports(&text))
        {
            let _ = fs::remove_file(&file);
            return Ok(ports);
        }
        if Instant::now() > deadline {
            return Err("no ports file after 15 s".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn parse_ports(ports_json: &str) -> Option<Ports> {
    let v: serde_json::Value = serde_json::from_str(ports_json).ok()?;
    let port_of = |key: &str| -> Option<u16> {
        let url = v.get(key)?.get(0)?.as_str()?;
        url.rsplit(':').next()?.parse().ok()
    };
    Some(Ports {
        client: port_of("nats")?,
        monitoring: port_of("monitoring"),
    })
}

pub(crate) fn read_creds(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Connects to `url` (one URL, or several separated by commas) with `creds` text and an
/// inbox prefix when given, retrying for up to 10 s.
pub(crate) async fn connect_with(
    url: &str,
    creds: Option<&str>,
    inbox_prefix: Option<&str>,
) -> async_nats::Client {
    let deadline = Instant::now() + Duration::from_secs(10);
    let urls: Vec<&str> = url.split(',').map(str::trim).collect();
    loop {
        let mut options = match creds {
            Some(c) => async_nats::ConnectOptions::with_credentials(c)
                .unwrap_or_else(|e| panic!("credentials: {e}")),
            None => async_nats::ConnectOptions::new(),
        };
        if let Some(p) = inbox_prefix {
            options = options.custom_inbox_prefix(p);
        }
        match options.connect(urls.as_slice()).await {
            Ok(client) => return client,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("could not connect to {url}: {e}"),
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::{Ports, parse_ports};

    #[test]
    fn reads_the_ports_from_a_ports_file() {
        let json = r#"{"nats":["nats://127.0.0.1:53111"],"monitoring":null}"#;
        let ports = Ports {
            client: 53111,
            monitoring: None,
        };
        assert_eq!(parse_ports(json), Some(ports));
        let json = r#"{"nats":["nats://127.0.0.1:53111"],"monitoring":["http://127.0.0.1:8222"]}"#;
        assert_eq!(parse_ports(json).and_then(|p| p.monitoring), Some(8222));
        assert_eq!(parse_ports("{}"), None);
    }
}
