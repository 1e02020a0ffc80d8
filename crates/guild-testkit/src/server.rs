//! One real nats-server process with JetStream.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
}

/// Cluster wiring for one node of a [`Cluster`](crate::Cluster).
#[derive(Clone, Debug)]
pub(crate) struct Routes {
    pub(crate) cluster_port: u16,
    pub(crate) peers: Vec<u16>,
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
        Self::launch("guild-test".into(), options, None)
    }

    pub(crate) fn launch(name: String, options: ServerOptions, routes: Option<Routes>) -> Self {
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
            port: None,
            monitoring_port: None,
            child: None,
        };
        server.spawn();
        server
    }

    /// The client URL, `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port())
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
            .map(|p| format!("http://127.0.0.1:{p}"))
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

    /// Connects a client, retrying for a few seconds while the server comes up.
    pub async fn connect(&self) -> async_nats::Client {
        connect_url(&self.url()).await
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

    fn config(&self) -> String {
        let store = self.store_dir();
        let listen = self.port.map_or_else(|| "-1".to_owned(), |p| p.to_string());
        let sync = if self.options.sync_always {
            "\n  sync_interval: always"
        } else {
            ""
        };
        let mut conf = format!(
            "server_name: {name}\nlisten: \"127.0.0.1:{listen}\"\n\
             jetstream {{\n  store_dir: {store:?}\n  max_memory_store: 268435456\n  max_file_store: 4294967296{sync}\n}}\n",
            name = self.name,
        );
        if self.options.monitoring {
            let http = self
                .monitoring_port
                .map_or_else(|| "-1".to_owned(), |p| p.to_string());
            conf.push_str(&format!("http: \"127.0.0.1:{http}\"\n"));
        }
        if let Some(r) = &self.routes {
            let peers: Vec<String> = r
                .peers
                .iter()
                .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
                .collect();
            conf.push_str(&format!(
                "cluster {{\n  name: guild-test\n  listen: \"127.0.0.1:{}\"\n  routes: [{}]\n}}\n",
                r.cluster_port,
                peers.join(", ")
            ));
        }
        conf.push_str(&self.options.extra_config);
        conf
    }

    fn spawn(&mut self) {
        let dir = self.dir.path().to_path_buf();
        let conf = dir.join("server.conf");
        fs::write(&conf, self.config()).unwrap_or_else(|e| panic!("write {}: {e}", conf.display()));
        let mut child = Command::new(&self.bin)
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

/// Connects to `url` (one URL, or several separated by commas), retrying for up to 10 s.
pub(crate) async fn connect_url(url: &str) -> async_nats::Client {
    let deadline = Instant::now() + Duration::from_secs(10);
    let urls: Vec<&str> = url.split(',').map(str::trim).collect();
    loop {
        match async_nats::connect(urls.as_slice()).await {
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
