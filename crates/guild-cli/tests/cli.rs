//! The `guild` binary as a user meets it: its help, its exit codes, and `guild demo` run
//! alone, which brings its own Guild.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

fn guild(args: &[&str]) -> Output {
    // From the workspace root, where `scripts/bootstrap` put the pinned nats-server.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    Command::new(env!("CARGO_BIN_EXE_guild"))
        .args(args)
        .current_dir(root)
        .env_remove("NATS_URL")
        .env_remove("GUILD_AS")
        .output()
        .unwrap()
}

#[test]
fn help_lists_every_command_and_the_exit_codes() {
    let out = guild(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for command in [
        "dev",
        "demo",
        "spawn",
        "agents",
        "agent",
        "send",
        "ask",
        "alert",
        "handoff",
        "reply",
        "decide",
        "inbox",
        "tail",
        "missions",
        "scale",
        "decisions",
        "questions",
        "audit",
        "stats",
        "services",
        "mcp",
        "completions",
    ] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{command} "))),
            "`{command}` missing from --help:\n{help}"
        );
    }
    assert!(help.contains("Exit codes"), "{help}");
}

#[test]
fn a_bad_argument_is_a_usage_error_naming_it_before_guild_is_contacted() {
    // Nothing listens on port 1: the argument is refused first.
    for (args, named) in [
        (
            &["spawn", "bad id", "--role", "developer", "--budget", "10"][..],
            "agent id \"bad id\"",
        ),
        (
            &["missions", "create", "m", "--name", "x", "--phase", "99"][..],
            "99 is not a phase",
        ),
        (&["send", "dev1", "hi", "--payload", "{x"][..], "not JSON"),
        (
            &["audit", "--kind", "spawned"][..],
            "audit kind \"spawned\"",
        ),
    ] {
        let mut all = vec!["--nats-url", "nats://127.0.0.1:1"];
        all.extend_from_slice(args);
        let out = guild(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(named), "{err}");
    }
}

#[test]
fn nothing_listening_is_exit_69_with_what_to_do() {
    let out = guild(&["--nats-url", "nats://127.0.0.1:1", "stats"]);
    assert_eq!(out.status.code(), Some(69));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("guild dev"), "{err}");
}

#[test]
fn completions_are_printed_for_a_shell() {
    let out = guild(&["completions", "bash"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("_guild"));
}

#[test]
fn the_demo_alone_starts_its_own_guild_and_succeeds() {
    let out = guild(&["demo"]);
    let err = String::from_utf8_lossy(&out.stderr);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout:\n{text}\nstderr:\n{err}");
    assert!(text.contains("embedded Guild"), "{text}");
    assert!(text.contains("== 7. Completion"), "{text}");
    assert!(text.contains("Decisions (audit log"), "{text}");
    assert!(text.contains("chain intact"), "{text}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `guild dev` in the background, a session of commands against it, a second `guild dev`
/// refused on the same data, Ctrl-C, and the data still there on the next start.
#[test]
fn a_session_against_guild_dev() {
    // Guild's folder: keys, credentials and data, made by the first start.
    let home = tempfile::tempdir().unwrap();
    let home_arg = home.path().to_str().unwrap().to_owned();
    let port = free_port().to_string();
    let url = format!("nats://127.0.0.1:{port}");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let start_dev = || {
        Command::new(env!("CARGO_BIN_EXE_guild"))
            .args(["--home", &home_arg, "dev", "--port", &port])
            .current_dir(&root)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let stop_dev = |mut dev: std::process::Child| {
        Command::new("kill")
            .args(["-INT", &dev.id().to_string()])
            .status()
            .unwrap();
        let out = dev.wait().unwrap();
        assert!(out.success(), "guild dev exited {out}");
    };
    let dev = start_dev();
    let g = |args: &[&str]| {
        let mut all = vec!["--nats-url", url.as_str(), "--home", home_arg.as_str()];
        all.extend_from_slice(args);
        guild(&all)
    };
    let ready = (0..300).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        g(&["stats"]).status.success()
    });
    assert!(ready, "guild dev did not come up");

    // Another `guild dev` on the same data is refused, naming the way out.
    let second = Command::new(env!("CARGO_BIN_EXE_guild"))
        .args([
            "--home",
            &home_arg,
            "dev",
            "--port",
            &free_port().to_string(),
        ])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("another Guild"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );

    // Authentication is on: a client without credentials is refused at connect.
    let anonymous = guild(&[
        "--nats-url",
        url.as_str(),
        "--home",
        "/nonexistent",
        "stats",
    ]);
    assert_eq!(anonymous.status.code(), Some(69), "{anonymous:?}");
    assert!(
        String::from_utf8_lossy(&anonymous.stderr).contains("authorization violation"),
        "{}",
        String::from_utf8_lossy(&anonymous.stderr)
    );
    let lead = json(&g(&[
        "--json",
        "spawn",
        "lead",
        "--role",
        "orchestrator",
        "--budget",
        "50000",
    ]));
    assert_eq!(lead["status"], "PENDING");
    json(&g(&[
        "--json",
        "--as",
        "lead",
        "spawn",
        "dev1",
        "--role",
        "developer",
        "--budget",
        "5000",
    ]));
    for id in ["lead", "dev1"] {
        let beat = json(&g(&["--json", "agent", "heartbeat", id]));
        assert_eq!(beat["status"], "ACTIVE", "{beat}");
    }
    let sent = json(&g(&[
        "--json",
        "--as",
        "lead",
        "send",
        "dev1",
        "Review",
        "--priority",
        "high",
    ]));
    assert_eq!(sent["priority"], "HIGH");
    let inbox = json(&g(&["--json", "--as", "dev1", "inbox", "--ack"]));
    assert_eq!(inbox[0]["message"]["subject"], "Review");
    let asked = json(&g(&[
        "--json",
        "--as",
        "dev1",
        "ask",
        "Which DB?",
        "--decision",
    ]));
    let question = asked["message_id"].as_str().unwrap().to_owned();
    let decided = json(&g(&[
        "--json", "--as", "lead", "decide", &question, "Postgres",
    ]));
    assert_eq!(decided["decision"]["choice"], "Postgres");
    let verify = json(&g(&["--json", "decisions", "verify"]));
    assert_eq!(verify["ok"], true);
    // What each may read of the questions and the audit log, with no JetStream rights.
    let asked_by_dev1 = json(&g(&["--json", "--as", "dev1", "questions", "list"]));
    assert_eq!(asked_by_dev1[0]["question"]["id"], question.as_str());
    let shown = json(&g(&[
        "--json",
        "--as",
        "lead",
        "questions",
        "show",
        &question,
    ]));
    assert_eq!(shown["decision"]["choice"], "Postgres");
    let abouts = |args: &[&str]| -> Vec<String> {
        let records = json(&g(args));
        records
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["about"].as_str().unwrap().to_owned())
            .collect()
    };
    let spawns = ["--json", "--as", "dev1", "audit", "--kind", "spawn"];
    assert_eq!(abouts(&spawns), ["dev1"], "an agent reads its own records");
    let spawns = ["--json", "--as", "lead", "audit", "--kind", "spawn"];
    assert_eq!(abouts(&spawns), ["lead", "dev1"], "and its subtree's");
    // The tree, like the list, shows live agents unless --all.
    json(&g(&[
        "--json", "--as", "lead", "spawn", "gone", "--role", "qa", "--budget", "10",
    ]));
    json(&g(&["--json", "agent", "terminate", "gone"]));
    let tree = |args: &[&str]| String::from_utf8_lossy(&g(args).stdout).into_owned();
    let live = tree(&["agents", "--tree"]);
    assert!(live.contains("dev1") && !live.contains("gone"), "{live}");
    let all = tree(&["agents", "--tree", "--all"]);
    assert!(all.contains("gone (qa, COMPLETED"), "{all}");
    json(&g(&[
        "--json", "missions", "create", "schema", "--name", "Schema", "--phase", "2",
    ]));
    json(&g(&[
        "--json", "missions", "create", "api", "--name", "API", "--phase", "5",
    ]));
    json(&g(&["--json", "missions", "depend", "api", "schema"]));
    let cycle = g(&["missions", "depend", "schema", "api"]);
    assert_eq!(cycle.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&cycle.stderr).contains("schema -> api -> schema"));
    let graph = String::from_utf8_lossy(&g(&["missions", "graph"]).stdout).into_owned();
    let (schema, api) = (
        graph.find("schema [").unwrap(),
        graph.find("api [").unwrap(),
    );
    assert!(schema < api, "dependency order:\n{graph}");
    // A spawn cap given at spawn: `capped` may ever have one sub-agent.
    let capped = json(&g(&[
        "--json",
        "--as",
        "dev1",
        "spawn",
        "capped",
        "--role",
        "developer",
        "--budget",
        "500",
        "--max-descendants",
        "1",
    ]));
    assert_eq!(capped["authority"]["max_descendants"], 1, "{capped}");
    json(&g(&[
        "--json", "--as", "capped", "spawn", "h1", "--role", "qa", "--budget", "100",
    ]));
    let refused = g(&[
        "--as", "capped", "spawn", "h2", "--role", "qa", "--budget", "100",
    ]);
    assert_eq!(refused.status.code(), Some(3), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("descendants_exhausted"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // A scaling policy: set, listed, refused naming the field it breaks, removed. No qa
    // mission is READY and the minimum is 0: nothing is spawned.
    let set = json(&g(&[
        "--json",
        "--as",
        "lead",
        "scale",
        "set",
        "qa",
        "--max",
        "2",
        "--budget",
        "100",
        "--cooldown",
        "1s",
    ]));
    assert_eq!(set["scaling"]["policy"]["owner"], "lead", "{set}");
    assert_eq!(set["scaling"]["policy"]["cooldown_ms"], 1_000, "{set}");
    let listed = json(&g(&["--json", "scale", "ls"]));
    assert_eq!(
        listed["policies"][0]["members"],
        serde_json::json!([]),
        "{listed}"
    );
    let bad = g(&[
        "--as",
        "lead",
        "scale",
        "set",
        "qa",
        "--max",
        "2",
        "--budget",
        "100",
        "--cooldown",
        "10ms",
    ]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("cooldown_ms"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    json(&g(&["--json", "--as", "lead", "scale", "rm", "qa"]));
    // A mission for a role is claimed by an agent of that role only.
    let fix = json(&g(&[
        "--json", "missions", "create", "fix", "--name", "Fix", "--phase", "5", "--role", "qa",
    ]));
    assert_eq!(fix["role"], "qa", "{fix}");
    let none = json(&g(&["--json", "--as", "lead", "missions", "claim"]));
    assert!(
        none.is_null(),
        "an orchestrator claims no qa mission: {none}"
    );
    let listed = json(&g(&["--json", "scale", "ls"]));
    assert_eq!(listed["policies"], serde_json::json!([]), "{listed}");
    stop_dev(dev);

    // Ctrl-C stopped it cleanly; a new start serves the same data.
    let dev = start_dev();
    let agents = (0..300)
        .find_map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            let out = g(&["--json", "agents", "--all"]);
            out.status.success().then(|| json(&out))
        })
        .expect("guild dev came back");
    assert_eq!(agents.as_array().unwrap().len(), 5, "{agents}");
    stop_dev(dev);
}
