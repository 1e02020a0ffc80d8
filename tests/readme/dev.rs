//! `guild dev` and other `guild` commands as processes, the way a person runs them from a
//! shell: the workspace's `guild` on `PATH`, Guild's folder in `GUILD_HOME` and the server
//! in `NATS_URL`, so that commands need no extra flags. Shared by `tests/readme` and
//! `tests/python_agent`.

#![allow(dead_code)] // Each test binary uses its own part of it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use guild_testkit::{eventually, workspace_binary};

/// How long `guild dev` may take to say it is running (nats-server, keys on the first
/// start, the three services answering), on a busy machine.
const START: Duration = Duration::from_secs(120);

/// How long a process may take to stop once interrupted.
const STOP: Duration = Duration::from_secs(30);

/// A free TCP port on loopback (free when asked; `guild dev` refuses a taken one).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The folder holding this build's `guild` (and the services' binaries).
pub(crate) fn bin_dir() -> PathBuf {
    workspace_binary("guild").parent().unwrap().to_path_buf()
}

/// A process whose stdout and stderr are collected as they come; interrupted (then
/// killed) when dropped, with its output printed if the test is failing.
pub(crate) struct Proc {
    pub(crate) what: String,
    child: Child,
    out: Arc<Mutex<String>>,
    /// How many of its two pipes have reached their end.
    closed: Arc<AtomicUsize>,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Starts `cmd` with its output collected.
    pub(crate) fn spawn(what: &str, mut cmd: Command) -> Self {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let out = Arc::new(Mutex::new(String::new()));
        let closed = Arc::new(AtomicUsize::new(0));
        let collect = |mut from: Box<dyn Read + Send>| {
            let out = Arc::clone(&out);
            let closed = Arc::clone(&closed);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = from.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    out.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
                closed.fetch_add(1, Ordering::SeqCst);
            });
        };
        collect(Box::new(child.stdout.take().unwrap()));
        collect(Box::new(child.stderr.take().unwrap()));
        Self {
            what: what.to_owned(),
            child,
            out,
            closed,
            status: None,
        }
    }

    /// Everything it printed so far (stdout and stderr, interleaved as they came).
    pub(crate) fn output(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    /// Its exit status, if it has exited.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().unwrap();
        }
        self.status
    }

    /// Waits until its output contains `text`; panics if it exits first or `timeout`
    /// passes.
    pub(crate) async fn wait_for_output(&mut self, text: &str, timeout: Duration) {
        let what = format!("{} to print {text:?}", self.what);
        let exited = eventually(&what, timeout, || {
            if self.output().contains(text) {
                return Some(None);
            }
            self.exited().map(Some)
        })
        .await;
        if let Some(status) = exited {
            self.drained().await;
            assert!(
                self.output().contains(text),
                "{} exited ({status}) without printing {text:?}:\n{}",
                self.what,
                self.output()
            );
        }
    }

    /// Waits (briefly) until the last of its output is read, once it has exited.
    pub(crate) async fn drained(&self) {
        let what = format!("the end of {}'s output", self.what);
        eventually(&what, Duration::from_secs(10), || {
            (self.closed.load(Ordering::SeqCst) == 2).then_some(())
        })
        .await;
    }

    /// Ctrl-C (SIGINT), as often as it takes (a signal that comes while the process is
    /// between two waits for it may go unseen), until it exits; its exit status.
    pub(crate) async fn interrupt(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let mut next_signal = std::time::Instant::now();
        let what = format!("{} to stop on Ctrl-C", self.what);
        eventually(&what, STOP, || {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if std::time::Instant::now() >= next_signal {
                let _ = Command::new("kill").args(["-INT", &pid]).status();
                next_signal = std::time::Instant::now() + Duration::from_millis(500);
            }
            None
        })
        .await
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exited().is_none() {
            // A clean stop first: `guild dev` stops nats-server (its own process group) only
            // when it is let to.
            let pid = self.child.id().to_string();
            let deadline = std::time::Instant::now() + STOP;
            while self.exited().is_none() && std::time::Instant::now() < deadline {
                let _ = Command::new("kill").args(["-INT", &pid]).status();
                std::thread::sleep(Duration::from_millis(200));
            }
            if self.exited().is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        if std::thread::panicking() {
            eprintln!("--- {} printed:\n{}", self.what, self.output());
        }
    }
}

/// Guild's folder and the server a session of commands runs against.
pub(crate) struct Session {
    /// The temporary folder: `home/` is `GUILD_HOME`, `work/` the working directory.
    dir: tempfile::TempDir,
    pub(crate) port: u16,
    pub(crate) url: String,
}

impl Session {
    pub(crate) fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("guild-session-")
            .tempdir()
            .unwrap();
        std::fs::create_dir(dir.path().join("work")).unwrap();
        let port = free_port();
        Self {
            dir,
            port,
            url: format!("nats://127.0.0.1:{port}"),
        }
    }

    /// `GUILD_HOME`: `guild dev` makes its keys and credentials here.
    pub(crate) fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Where the commands run (nothing lands in the repository).
    pub(crate) fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// `bash -c script` in this session's environment: `guild` on `PATH`, `GUILD_HOME`,
    /// `NATS_URL`, and none of the caller's NATS or Guild settings.
    pub(crate) fn bash(&self, script: &str) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg("-c").arg(script);
        self.environment(&mut cmd);
        cmd
    }

    /// The same for a tokio command.
    pub(crate) fn bash_async(&self, script: &str) -> tokio::process::Command {
        let mut cmd = self.bash(script);
        cmd.stdin(Stdio::null());
        let mut cmd = tokio::process::Command::from(cmd);
        cmd.kill_on_drop(true);
        cmd
    }

    /// Sets this session's environment on `cmd`.
    pub(crate) fn environment(&self, cmd: &mut Command) {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![bin_dir()];
        dirs.extend(std::env::split_paths(&path));
        for var in [
            "NATS_CREDS",
            "NATS_NKEY",
            "NATS_USER",
            "NATS_PASSWORD",
            "NATS_CA",
            "NATS_CERT",
            "NATS_KEY",
            "GUILD_AS",
            "GUILD_DATA",
            "GUILD_MODE",
            "RUST_LOG",
        ] {
            cmd.env_remove(var);
        }
        cmd.current_dir(self.work())
            .env("PATH", std::env::join_paths(dirs).unwrap())
            .env("GUILD_HOME", self.home())
            .env("NATS_URL", &self.url)
            .env("NATS_SERVER_BIN", guild_testkit::nats_server_bin());
    }

    /// Starts `line` (a `guild dev` command line) on this session's port and waits until
    /// it says Guild is running.
    pub(crate) async fn start_dev(&self, line: &str) -> Proc {
        assert!(line.starts_with("guild dev"), "{line}");
        // `exec`: the signals sent to the process reach `guild dev` itself.
        let cmd = self.bash(&format!("exec {line} --port {}", self.port));
        let mut dev = Proc::spawn(line, cmd);
        dev.wait_for_output("Guild is running.", START).await;
        dev
    }

    /// Runs a command line to its end (at most `timeout`), as `bash -c` would.
    pub(crate) async fn run(&self, line: &str, timeout: Duration) -> std::process::Output {
        tokio::time::timeout(timeout, self.bash_async(line).output())
            .await
            .unwrap_or_else(|_| panic!("`{line}` did not finish within {timeout:?}"))
            .unwrap_or_else(|e| panic!("cannot run `{line}`: {e}"))
    }

    /// The operator's credentials, where `guild dev` writes them.
    pub(crate) fn operator_creds(&self) -> PathBuf {
        self.home().join("creds/operator.creds")
    }

    /// The SDK, as the operator (with `guild dev`'s operator credentials).
    pub(crate) async fn operator(&self) -> guild_sdk::Guild {
        let options = guild_sdk::NatsOptions::url(&self.url)
            .with_auth(guild_sdk::Auth::CredsFile(self.operator_creds()));
        guild_sdk::connect(&options).await.unwrap()
    }
}

/// The permission bits of a file.
pub(crate) fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}
