//! The README as a user meets it: the shell walkthrough of "The CLI", run line by line as
//! written against `guild dev` (a process of its own, in a temporary `GUILD_HOME`), and
//! the broker refusing a client that brings no credentials.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dev;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::time::Duration;

use dev::{Proc, Session, mode};

/// How long one foreground line of the walkthrough may take.
const LINE: Duration = Duration::from_secs(60);

/// How long a background line (or `guild tail`) may take to say it has started.
const STARTED: Duration = Duration::from_secs(30);

/// The command lines of the ```sh block in README.md's section "The CLI", comments
/// removed, in order.
fn walkthrough() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = readme
        .split("\n## The CLI\n")
        .nth(1)
        .expect("README.md has a section \"The CLI\"");
    let section = section.split("\n## ").next().unwrap();
    let block = section
        .split("```sh\n")
        .nth(1)
        .expect("\"The CLI\" has a ```sh block")
        .split("\n```")
        .next()
        .unwrap();
    block
        .lines()
        .map(strip_comment)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A shell line without its comment: from a `#` that starts a word outside quotes.
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double, mut word_start) = (false, false, true);
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && word_start => return line[..i].trim(),
            _ => {}
        }
        word_start = c.is_whitespace();
    }
    line.trim()
}

/// `line` with its placeholders (`<question-id>`) replaced by what earlier lines printed:
/// the only change made to a line.
fn substitute(line: &str, question: Option<&str>) -> String {
    let mut out = line.to_owned();
    while let Some(start) = out.find('<') {
        let end = out[start..]
            .find('>')
            .map(|e| start + e)
            .unwrap_or_else(|| panic!("an unclosed placeholder in `{line}`"));
        let value = match &out[start + 1..end] {
            "question-id" => question
                .unwrap_or_else(|| panic!("`{line}` needs a question asked by an earlier line")),
            other => panic!("`{line}`: no rule for the placeholder <{other}>"),
        };
        out.replace_range(start..=end, value);
    }
    out
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// What the walkthrough's lines printed, checked where it says something about Guild.
#[derive(Default)]
struct Seen {
    /// The id the last `ask` printed.
    question: Option<String>,
    /// Which checks ran.
    checked: BTreeSet<&'static str>,
}

impl Seen {
    /// Checks a foreground line's output (it exited 0).
    fn check(&mut self, s: &Session, line: &str, out: &str) {
        let creds_saved = |id: &str| {
            let file = s.home().join(format!("creds/{id}.creds"));
            assert_eq!(mode(&file), 0o600, "{}", file.display());
            assert!(out.contains(&format!("spawned {id} ")), "{out}");
        };
        let check: &'static str = if line == "guild services" {
            for service in ["guild-spawner", "guild-bus", "guild-mission"] {
                assert!(out.contains(service), "{service} missing:\n{out}");
            }
            "services"
        } else if line.starts_with("guild spawn lead ") {
            creds_saved("lead");
            "spawn lead"
        } else if line.starts_with("guild --as lead spawn dev1 ") {
            creds_saved("dev1");
            assert!(out.contains("parent lead"), "{out}");
            "spawn dev1"
        } else if line == "guild agents --tree" {
            let lines: Vec<&str> = out.lines().collect();
            let lead = lines
                .iter()
                .position(|l| l.starts_with("lead (orchestrator, ACTIVE"))
                .unwrap_or_else(|| panic!("lead, ACTIVE, at the root:\n{out}"));
            assert!(
                lines[lead + 1..]
                    .iter()
                    .any(|l| l.starts_with("└─ dev1 (developer, ACTIVE")),
                "dev1, ACTIVE, under lead:\n{out}"
            );
            "agents --tree"
        } else if line.starts_with("guild --as lead send dev1 ") {
            assert!(out.starts_with("request "), "{out}");
            assert!(out.contains(" HIGH → dev1"), "{out}");
            "send"
        } else if line.starts_with("guild --as dev1 ask ") {
            // `question <id> <priority> → <to>`: the id a person copies into `decide`.
            let receipt = out
                .lines()
                .find(|l| l.starts_with("question "))
                .unwrap_or_else(|| panic!("no receipt:\n{out}"));
            assert!(
                receipt.ends_with("→ lead"),
                "asked of dev1's orchestrator: {out}"
            );
            let id = receipt.split_whitespace().nth(1).unwrap();
            assert!(id.starts_with("msg-"), "{out}");
            self.question = Some(id.to_owned());
            "ask"
        } else if line == "guild --as lead inbox" {
            let question = self.question.as_deref().unwrap();
            assert!(
                out.contains("question dev1 → lead: Which database?")
                    && out.contains(&format!("id {question}")),
                "{out}"
            );
            "inbox"
        } else if line.starts_with("guild --as lead decide ") {
            let question = self.question.as_deref().unwrap();
            assert!(
                out.contains(&format!("decided {question}: Postgres")),
                "{out}"
            );
            "decide"
        } else if line == "guild missions graph" {
            let (schema, api) = (out.find("schema [").unwrap(), out.find("api [").unwrap());
            assert!(schema < api, "dependency order:\n{out}");
            "missions graph"
        } else if line.starts_with("guild missions assign schema ") {
            assert!(out.contains("assigned schema"), "{out}");
            assert!(
                out.lines()
                    .any(|l| l.starts_with("schema ") && l.contains("COMPLETED")),
                "{out}"
            );
            "assign && complete"
        } else if line == "guild decisions log" {
            let question = self.question.as_deref().unwrap();
            assert!(
                out.lines().any(|l| l.contains("decision ")
                    && l.contains("lead \"Postgres\" for dev1")
                    && l.contains(question)
                    && l.ends_with("we know it")),
                "{out}"
            );
            "decisions log"
        } else if line == "guild stats" {
            assert!(out.contains("decisions_recorded: 1"), "{out}");
            assert!(out.contains("COMPLETED: 1"), "{out}");
            "stats"
        } else {
            return;
        };
        assert!(self.checked.insert(check), "checked twice: {check}");
    }
}

/// Each line of the walkthrough through `bash -c`, in order, with `guild` on `PATH` and
/// `GUILD_HOME` and `NATS_URL` set: the first line starts `guild dev` (on a free port:
/// `--port` is the one thing added), lines ending in `&` run in the background until the
/// end, `guild tail` until it has shown a message, and every other line must exit 0.
#[tokio::test]
async fn the_readme_walkthrough_runs_as_written() {
    let lines = walkthrough();
    assert!(
        lines.len() > 10,
        "the walkthrough is shorter than expected: {lines:?}"
    );
    let s = Session::new();
    let (first, rest) = lines.split_first().unwrap();
    assert!(first.starts_with("guild dev"), "it starts Guild: {first}");
    let mut dev = s.start_dev(first).await;
    assert!(
        dev.output()
            .contains(&format!("operator    {}", s.operator_creds().display())),
        "{}",
        dev.output()
    );
    let mut background: Vec<Proc> = Vec::new();
    let mut seen = Seen::default();
    for line in rest {
        let line = substitute(line, seen.question.as_deref());
        if let Some(command) = line.strip_suffix('&') {
            let command = command.trim();
            let mut job = Proc::spawn(&line, s.bash(&format!("exec {command}")));
            // Running in the background once it has said so; an agent heartbeating
            // says what its first heartbeat made it.
            if command.starts_with("guild agent heartbeat ") {
                job.wait_for_output("Ctrl-C stops", STARTED).await;
                assert!(job.output().contains(" is ACTIVE "), "{}", job.output());
                seen.checked.insert("heartbeat --keep");
            }
            background.push(job);
        } else if line.starts_with("guild tail") {
            // Runs until Ctrl-C: shown a message raised meanwhile, then interrupted.
            let mut tail = Proc::spawn(&line, s.bash(&format!("exec {line}")));
            tail.wait_for_output("Ctrl-C stops", STARTED).await;
            let raised = s
                .run("guild --as lead alert \"the tail sees this\"", LINE)
                .await;
            assert!(raised.status.success(), "{}", text(&raised));
            tail.wait_for_output("alert    lead → *: the tail sees this", STARTED)
                .await;
            let status = tail.interrupt().await;
            assert!(status.success(), "`{line}` exited {status}");
            seen.checked.insert("tail");
        } else {
            let out = s.run(&line, LINE).await;
            let printed = text(&out);
            assert!(
                out.status.success(),
                "`{line}` exited {}:\n{printed}",
                out.status
            );
            seen.check(&s, &line, &printed);
        }
    }
    let expected = [
        "services",
        "spawn lead",
        "spawn dev1",
        "heartbeat --keep",
        "agents --tree",
        "send",
        "ask",
        "inbox",
        "decide",
        "tail",
        "missions graph",
        "assign && complete",
        "decisions log",
        "stats",
    ];
    assert_eq!(
        seen.checked,
        expected.into_iter().collect(),
        "the walkthrough's lines that are checked"
    );
    for mut job in background {
        let status = job.interrupt().await;
        assert!(status.success(), "`{}` exited {status}", job.what);
    }
    // Ctrl-C stops it, cleanly.
    let status = dev.interrupt().await;
    dev.drained().await;
    assert!(status.success(), "guild dev exited {status}");
    assert!(dev.output().contains("stopped"), "{}", dev.output());
}

/// Speaks NATS by hand, as `nats` or `telnet` would: reads the server's INFO, sends a
/// CONNECT with no credentials and a PING, and returns the INFO line and every line the
/// server sent back until it closed the connection.
fn connect_without_credentials(port: u16) -> (String, Vec<String>) {
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut info = String::new();
    reader.read_line(&mut info).unwrap();
    (&stream).write_all(b"CONNECT {}\r\nPING\r\n").unwrap();
    let mut replies = Vec::new();
    loop {
        let mut reply = String::new();
        match reader.read_line(&mut reply) {
            Ok(0) => break,
            Ok(_) => replies.push(reply),
            Err(e) => panic!("the server neither answered nor closed: {e} (so far {replies:?})"),
        }
    }
    // Closed: nothing more to read.
    assert_eq!(reader.read(&mut [0u8; 1]).unwrap(), 0);
    (info, replies)
}

/// `guild dev` turns authentication on: a client with no credentials is refused at
/// connect, by the NATS client and by hand, and the operator's credentials get in.
#[tokio::test]
async fn guild_dev_refuses_an_anonymous_connection() {
    let s = Session::new();
    let mut dev = s.start_dev("guild dev").await;

    let refused = async_nats::connect(&s.url)
        .await
        .expect_err("a connection without credentials is refused");
    assert_eq!(
        refused.kind(),
        async_nats::ConnectErrorKind::AuthorizationViolation,
        "{refused}"
    );

    let port = s.port;
    let (info, replies) = tokio::task::spawn_blocking(move || connect_without_credentials(port))
        .await
        .unwrap();
    assert!(info.starts_with("INFO {"), "{info}");
    assert!(info.contains("\"auth_required\":true"), "{info}");
    assert_eq!(
        replies,
        ["-ERR 'Authorization Violation'\r\n"],
        "no PONG: the PING was never served"
    );

    // The credentials `guild dev` wrote are what gets in.
    let guild = s.operator().await;
    guild.spawner().get_stats().await.unwrap();
    drop(guild);
    let status = dev.interrupt().await;
    assert!(status.success(), "guild dev exited {status}");
}
