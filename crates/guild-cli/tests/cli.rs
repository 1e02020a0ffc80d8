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
        "decisions",
        "stats",
        "services",
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
fn a_bad_argument_is_a_usage_error_naming_it() {
    let server = guild_testkit::NatsServer::start();
    let url = server.url();
    let out = guild(&[
        "--nats-url",
        &url,
        "spawn",
        "bad id",
        "--role",
        "developer",
        "--budget",
        "10",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("agent id \"bad id\""), "{err}");
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
