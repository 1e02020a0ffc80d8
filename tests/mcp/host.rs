//! A scripted MCP host: `guild mcp` as a child process (the built binary), driven by the
//! rmcp client in place of a model, recording the notifications the server sends.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use guild_sdk::{AgentId, Guild, Role, SpawnRequest};
use guild_testkit::{NatsServer, workspace_binary};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ElicitRequestParams,
    ElicitResult, ElicitationAction, Implementation, ProgressNotificationParam, ProtocolVersion,
    ResourceUpdatedNotificationParam,
};
use rmcp::service::{NotificationContext, RequestContext, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

/// A notification the host received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Note {
    ToolsChanged,
    ResourceUpdated(String),
    /// A progress notification, with its message.
    Progress(String),
    /// The server asked the user (elicitation), with this message.
    Elicited(String),
}

/// The client's handler: it records notifications, and answers elicitations with
/// `answer` (declaring the capability only then).
pub(crate) struct Recorder {
    notes: mpsc::UnboundedSender<Note>,
    answer: Option<Value>,
}

impl ClientHandler for Recorder {
    fn get_info(&self) -> ClientConfig {
        let mut capabilities = ClientCapabilities::default();
        if self.answer.is_some() {
            capabilities.elicitation = Some(
                rmcp::model::ElicitationCapability::new()
                    .with_form(rmcp::model::FormElicitationCapability::default()),
            );
        }
        ClientConfig::new(capabilities, Implementation::new("scripted-host", "0"))
            .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, rmcp::ErrorData> {
        let ElicitRequestParams::FormElicitationParams { message, .. } = request else {
            return Ok(ElicitResult::new(ElicitationAction::Decline));
        };
        let _ = self.notes.send(Note::Elicited(message));
        let mut result = ElicitResult::new(ElicitationAction::Accept);
        result.content = self.answer.clone();
        Ok(result)
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self
            .notes
            .send(Note::Progress(params.message.unwrap_or_default()));
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        let _ = self.notes.send(Note::ToolsChanged);
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.notes.send(Note::ResourceUpdated(params.uri));
    }
}

/// One `guild mcp` process and the client talking to it.
pub(crate) struct Host {
    pub(crate) client: RunningService<RoleClient, Recorder>,
    notes: mpsc::UnboundedReceiver<Note>,
    stderr: Arc<Mutex<String>>,
}

/// How long a test waits for something before it gives up (a hang guard, never a
/// measured assertion).
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// `guild mcp` acting as `id` with the credentials in `home/creds`.
pub(crate) fn guild_mcp(server: &NatsServer, home: &Path, id: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::from(guild_mcp_std(server, home, id));
    cmd.kill_on_drop(true);
    cmd
}

/// [`guild_mcp`], as a std command.
pub(crate) fn guild_mcp_std(server: &NatsServer, home: &Path, id: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(workspace_binary("guild"));
    cmd.arg("--home")
        .arg(home)
        .args(["--nats-url", &server.url(), "--as", id, "mcp"])
        .env_remove("NATS_CREDS")
        .env_remove("GUILD_AS")
        .env_remove("GUILD_HOME")
        .env("RUST_LOG", "info");
    cmd
}

impl Host {
    /// Starts `guild mcp --as <id>` and initializes a session with it.
    pub(crate) async fn start(server: &NatsServer, home: &Path, id: &str) -> Self {
        Self::start_with(server, home, id, &[], None).await
    }

    /// [`start`](Self::start) with more arguments to `guild mcp`, and a host that answers
    /// elicitations with `answer`.
    pub(crate) async fn start_with(
        server: &NatsServer,
        home: &Path,
        id: &str,
        args: &[&str],
        answer: Option<Value>,
    ) -> Self {
        let mut cmd = guild_mcp(server, home, id);
        cmd.args(args);
        let (transport, stderr) = TokioChildProcess::builder(cmd)
            .stderr(Stdio::piped())
            .spawn()
            .expect("guild mcp starts");
        let log = Arc::new(Mutex::new(String::new()));
        if let Some(mut stderr) = stderr {
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stderr.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    log.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        let (tx, notes) = mpsc::unbounded_channel();
        let client = match (Recorder { notes: tx, answer }).serve(transport).await {
            Ok(c) => c,
            Err(e) => panic!(
                "the MCP session with {id} did not start: {e}\n{}",
                log.lock().unwrap()
            ),
        };
        Self {
            client,
            notes,
            stderr: log,
        }
    }

    /// What the server wrote to stderr so far (its logs).
    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Calls `tool` with `arguments` (a JSON object); the result, success or tool error.
    pub(crate) async fn call(&self, tool: &str, arguments: Value) -> CallToolResult {
        let Value::Object(arguments) = arguments else {
            panic!("arguments must be an object")
        };
        let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        match self.client.call_tool(params).await {
            Ok(r) => r,
            Err(e) => panic!("{tool} failed as a protocol error: {e}\n{}", self.stderr()),
        }
    }

    /// Calls `tool` and returns its structured content, failing the test on a tool error.
    pub(crate) async fn ok(&self, tool: &str, arguments: Value) -> Value {
        let r = self.call(tool, arguments.clone()).await;
        assert_ne!(
            r.is_error,
            Some(true),
            "{tool}({arguments}) was refused: {:?}",
            r.structured_content
        );
        r.structured_content
            .unwrap_or_else(|| panic!("{tool} returned no structuredContent"))
    }

    /// Calls `tool` expecting a tool error; returns its structured content (`error`, `next`).
    pub(crate) async fn refused(&self, tool: &str, arguments: Value) -> Value {
        let r = self.call(tool, arguments.clone()).await;
        assert_eq!(
            r.is_error,
            Some(true),
            "{tool}({arguments}) should have been refused: {:?}",
            r.structured_content
        );
        r.structured_content
            .unwrap_or_else(|| panic!("{tool}'s tool error has no structuredContent"))
    }

    /// Waits for a notification equal to `want`, skipping others.
    pub(crate) async fn wait_for(&mut self, want: Note) {
        let want_ = want.clone();
        self.wait_until(move |n| n == &want_).await;
    }

    /// Waits for the first notification that `pick` accepts, skipping others; returns it.
    pub(crate) async fn wait_until(&mut self, pick: impl Fn(&Note) -> bool) -> Note {
        let found = tokio::time::timeout(PATIENCE, async {
            while let Some(n) = self.notes.recv().await {
                if pick(&n) {
                    return Some(n);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(n)) => n,
            _ => panic!("the awaited notification never arrived\n{}", self.stderr()),
        }
    }

    /// The notifications received so far and not yet waited for.
    pub(crate) fn pending_notes(&mut self) -> Vec<Note> {
        let mut out = Vec::new();
        while let Ok(n) = self.notes.try_recv() {
            out.push(n);
        }
        out
    }

    /// Calls `tool` in the background (the host goes on receiving notifications).
    pub(crate) fn call_in_background(
        &self,
        tool: &str,
        arguments: Value,
        progress_token: Option<&str>,
    ) -> tokio::task::JoinHandle<CallToolResult> {
        let Value::Object(arguments) = arguments else {
            panic!("arguments must be an object")
        };
        let mut params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        if let Some(token) = progress_token {
            let token = rmcp::model::ProgressToken(rmcp::model::NumberOrString::String(
                token.to_owned().into(),
            ));
            params.meta = Some(rmcp::model::RequestMetaObject::with_progress_token(token));
        }
        let peer = self.client.peer().clone();
        let tool = tool.to_owned();
        tokio::spawn(async move {
            peer.call_tool(params)
                .await
                .unwrap_or_else(|e| panic!("{tool} failed as a protocol error: {e}"))
        })
    }
}

/// What most tests start from: a nats-server, the three services in process, a home for
/// credentials, and one root agent the operator spawned (its credentials in the home).
pub(crate) struct WithRoot {
    pub(crate) server: NatsServer,
    _services: crate::common::Services,
    pub(crate) team: guild_testkit::Team,
    pub(crate) home: tempfile::TempDir,
}

impl WithRoot {
    pub(crate) async fn start(id: &str, role: Role, budget: u64) -> Self {
        let server = NatsServer::start();
        let (services, team) = crate::common::start_in_process(&server).await;
        let home = tempfile::tempdir().unwrap();
        root_agent(team.operator(), home.path(), id, role, budget).await;
        Self {
            server,
            _services: services,
            team,
            home,
        }
    }
}

/// A fresh home folder with the credentials of a root agent `id` (spawned by the
/// operator) in `creds/`, as `guild spawn` saves them.
pub(crate) async fn root_agent(
    operator: &Guild,
    home: &Path,
    id: &str,
    role: Role,
    budget: u64,
) -> PathBuf {
    let spawned = operator
        .spawner()
        .spawn(SpawnRequest::new(AgentId::new(id).unwrap(), role, budget))
        .await
        .unwrap();
    let creds = spawned.credentials.unwrap().creds.unwrap();
    let dir = home.join("creds");
    guild_auth::private_dir(&dir).unwrap();
    let path = dir.join(format!("{id}.creds"));
    guild_auth::write_secret(&path, &creds).unwrap();
    path
}

/// The member of `value` at `path` (panics naming what is missing).
pub(crate) fn field<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    let mut v = value;
    for key in path {
        v = v.get(*key).unwrap_or_else(|| panic!("no {key} in {value}"));
    }
    v
}
