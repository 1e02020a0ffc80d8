//! The layering of ARCHITECTURE.md, held by reading `cargo metadata`: which workspace
//! crates each crate may use, and that the domain stays pure; and the layout, held by
//! reading the source: outside the domain and guild-wire no rule is matched by its name,
//! no subject formatted and no stream named (`tests/fixtures/architecture/planted.rs.txt`
//! proves each check fires).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Workspace crates each crate may depend on (normal dependencies). Tests may also use the
/// test kit and the SDK (services are tested through their public API).
const ALLOWED: &[(&str, &[&str])] = &[
    ("guild-domain", &[]),
    ("guild-wire", &["guild-domain"]),
    // Keys and credentials: the permission table is the contract's.
    ("guild-auth", &["guild-wire"]),
    ("guild-telemetry", &[]),
    // Real servers with authentication on, and agents on their own connections.
    ("guild-testkit", &["guild-auth", "guild-wire", "guild-sdk"]),
    (
        "guild-store",
        &["guild-domain", "guild-wire", "guild-telemetry"],
    ),
    (
        "guild-service",
        &[
            "guild-domain",
            "guild-wire",
            "guild-store",
            "guild-telemetry",
            // The connection options every client takes.
            "guild-sdk",
            // A service's own credentials sign its audit records.
            "guild-auth",
        ],
    ),
    ("spawner-svc", SERVICE),
    ("mission-svc", SERVICE),
    ("bus-svc", SERVICE),
    (
        "guild-sdk",
        &["guild-wire", "guild-telemetry", "guild-auth"],
    ),
    // The MCP server: one agent's connection through the SDK; the wire contract for the
    // tools' schemas; its children's credentials written like the CLI's.
    (
        "guild-mcp",
        &["guild-sdk", "guild-wire", "guild-auth", "guild-telemetry"],
    ),
    (
        "guild-cli",
        &[
            "guild-mcp",
            "guild-sdk",
            "guild-auth",
            "guild-wire",
            "guild-telemetry",
            "guild-service",
            "spawner-svc",
            "mission-svc",
            "bus-svc",
        ],
    ),
    ("guild-tests", &[]),
    // A harness that starts real processes; nothing depends on it.
    (
        "guild-bench",
        &[
            "guild-sdk",
            "guild-domain",
            "guild-wire",
            "guild-store",
            "guild-testkit",
            "guild-auth",
        ],
    ),
    // The fault suite: a harness like the benchmark; nothing depends on it.
    (
        "guild-chaos",
        &[
            "guild-sdk",
            "guild-domain",
            "guild-wire",
            "guild-store",
            "guild-testkit",
        ],
    ),
];

/// What a service crate may use.
const SERVICE: &[&str] = &[
    "guild-domain",
    "guild-wire",
    "guild-telemetry",
    "guild-store",
    "guild-service",
    // Services call each other the way every client does.
    "guild-sdk",
    // The spawner mints and revokes credentials.
    "guild-auth",
];

/// Crates the domain must never pull in, directly or not.
const IMPURE: &[&str] = &[
    "tokio",
    "async-nats",
    "futures-util",
    "uuid",
    "rand",
    "chrono",
    "time",
];

fn metadata() -> Value {
    metadata_with(&[])
}

/// The platform this test runs on (`cargo -vV`'s host), to resolve only what builds here.
fn host_triple() -> String {
    let out = Command::new(env!("CARGO"))
        .arg("-vV")
        .output()
        .expect("cargo -vV runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("cargo -vV names its host")
        .to_owned()
}

/// Dependency edges the domain walk does not follow, each with why. schemars' `chrono04`
/// feature (rmcp, in guild-mcp, turns it on, and features unify across the workspace) only
/// implements `JsonSchema` for chrono's types; guild-domain does not depend on chrono, so
/// no clock reaches its code.
const SCHEMA_ONLY_EDGES: &[(&str, &str)] = &[("schemars", "chrono")];

fn metadata_with(extra: &[&str]) -> Value {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .args(extra)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn crates_depend_only_in_the_allowed_directions() {
    let meta = metadata();
    let members: BTreeSet<&str> = meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut seen = BTreeSet::new();
    for pkg in meta["packages"].as_array().unwrap() {
        if !members.contains(pkg["id"].as_str().unwrap()) {
            continue;
        }
        let name = pkg["name"].as_str().unwrap();
        seen.insert(name);
        let rules = allowed.get(name).unwrap_or_else(|| {
            panic!("{name} is not in ARCHITECTURE.md's crate map (add it to ALLOWED)")
        });
        for dep in pkg["dependencies"].as_array().unwrap() {
            let dep_name = dep["name"].as_str().unwrap();
            let is_workspace = dep["path"].is_string();
            let normal = dep["kind"].is_null();
            if !is_workspace {
                continue;
            }
            if normal {
                assert!(
                    rules.contains(&dep_name),
                    "{name} may not depend on {dep_name}"
                );
            } else {
                // Tests may run real services in-process (mission-svc's tests need a spawner).
                let test_only =
                    matches!(dep_name, "guild-testkit" | "guild-sdk") || dep_name.ends_with("-svc");
                assert!(
                    test_only || rules.contains(&dep_name) || name == "guild-tests",
                    "{name} dev-depends on {dep_name}"
                );
            }
        }
    }
    // Nothing but the CLI (dev mode) depends on a service crate.
    for pkg in meta["packages"].as_array().unwrap() {
        let name = pkg["name"].as_str().unwrap();
        for dep in pkg["dependencies"].as_array().unwrap() {
            let dep_name = dep["name"].as_str().unwrap();
            if dep_name.ends_with("-svc") && dep["kind"].is_null() {
                assert_eq!(
                    name, "guild-cli",
                    "{name} depends on the service {dep_name}"
                );
            }
        }
    }
    for crate_name in [
        "guild-domain",
        "guild-wire",
        "guild-store",
        "guild-service",
        "guild-telemetry",
        "guild-testkit",
    ] {
        assert!(seen.contains(crate_name), "{crate_name} is missing");
    }
}

#[test]
fn the_domain_pulls_in_no_runtime_no_nats_no_clock() {
    // What builds on this platform (a wasm-only dependency of a dependency is not built).
    let host = host_triple();
    let meta = metadata_with(&["--filter-platform", &host]);
    let packages: BTreeMap<&str, &Value> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p))
        .collect();
    let nodes: BTreeMap<&str, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let domain = packages
        .values()
        .find(|p| p["name"] == "guild-domain")
        .unwrap()["id"]
        .as_str()
        .unwrap();
    // Walk normal dependencies only.
    let mut stack = vec![domain];
    let mut reached = BTreeSet::new();
    while let Some(id) = stack.pop() {
        if !reached.insert(id) {
            continue;
        }
        for dep in nodes[id]["deps"].as_array().unwrap() {
            let normal = dep["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].is_null());
            let from = packages[id]["name"].as_str().unwrap();
            let to = packages[dep["pkg"].as_str().unwrap()]["name"]
                .as_str()
                .unwrap();
            if normal && !SCHEMA_ONLY_EDGES.contains(&(from, to)) {
                stack.push(dep["pkg"].as_str().unwrap());
            }
        }
    }
    let names: BTreeSet<&str> = reached
        .iter()
        .map(|id| packages[id]["name"].as_str().unwrap())
        .collect();
    for bad in IMPURE {
        assert!(
            !names.contains(bad),
            "guild-domain depends on {bad} (through {names:?})"
        );
    }
}

/// The workspace root.
fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every file under `dir`, recursively (none of a build's or Python's caches).
fn files_under(dir: &std::path::Path, into: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if !matches!(name.as_str(), "target" | "__pycache__" | "node_modules") {
                files_under(&path, into);
            }
        } else {
            into.push(path);
        }
    }
}

/// Where a test, a benchmark, the demo, the deployment or CI could turn authentication
/// off: these must run as Guild always runs.
fn places_that_run_guild() -> Vec<std::path::PathBuf> {
    let root = root();
    let mut dirs = vec![
        root.join("tests"),
        root.join("crates/guild-bench"),
        root.join("crates/guild-chaos"),
        root.join("crates/guild-cli/src/demo"),
        root.join("deploy"),
        root.join("scripts"),
        root.join(".ci"),
    ];
    for krate in std::fs::read_dir(root.join("crates")).unwrap() {
        dirs.push(krate.unwrap().path().join("tests"));
    }
    let mut files = vec![root.join("justfile")];
    for dir in &dirs {
        files_under(dir, &mut files);
    }
    files.sort();
    files.dedup();
    files
}

/// The only places allowed to run without authentication, each with why: (file, the
/// line's text, why).
const INSECURE_ALLOWED: &[(&str, &str, &str)] = &[
    // The benchmark's raw-NATS baseline: how long a bare connect takes on a server that
    // checks nothing, beside the same connect with an agent's credentials. It measures
    // what authentication costs, so it needs the server without it; no Guild runs there.
    (
        "crates/guild-bench/src/scenario/identity.rs",
        "insecure: true,",
        "the raw-NATS connect baseline",
    ),
    // The benchmark's authentication-off rows (the same bus figures on a server that
    // authenticates nobody and services started with the flag), beside the rows with it
    // on: again what authentication costs, measured, never a way Guild is run.
    (
        "crates/guild-bench/src/stack.rs",
        "insecure: auth == Auth::Off,",
        "the authentication-off baseline's server",
    ),
    (
        "crates/guild-bench/src/stack.rs",
        "cmd.arg(\"--insecure\");",
        "the authentication-off baseline's services",
    ),
    (
        "crates/guild-bench/src/scenario/bus/mod.rs",
        "`--insecure` (the same processes and counts",
        "the benchmark report's words on how that baseline ran",
    ),
    // Not uses: the spawner's option tests check that no credentials is refused naming
    // the flag, that the flag parses, and that a bad configuration exits 64 before
    // anything connects (the binary never serves in those tests).
    (
        "crates/spawner-svc/tests/spawner.rs",
        "assert!(e.contains(\"--creds\") && e.contains(\"--insecure\"), \"{e}\");",
        "a check that the refusal names the way out",
    ),
    (
        "crates/spawner-svc/tests/spawner.rs",
        "let c = spawner_svc::Options::try_parse_from([\"spawner-svc\", \"--insecure\"])",
        "a check that the flag parses",
    ),
    (
        "crates/spawner-svc/tests/spawner.rs",
        ".arg(\"--insecure\")",
        "a bad-configuration exit before any connection",
    ),
    // Not a use: the deployment test checking that compose.yaml has none.
    (
        "tests/deploy/main.rs",
        "!text.contains(\"--insecure\"),",
        "a check that compose.yaml runs nothing insecure",
    ),
];

/// Whether `line` (of a file named `name`) turns authentication off: passes the flag, or,
/// in Rust, sets the test kit's `ServerOptions.insecure` (or any `insecure` option) to
/// anything but `false`. Comments are documentation, not uses.
fn turns_authentication_off(name: &str, line: &str) -> bool {
    let code = line.trim();
    let rust = name.ends_with(".rs");
    let comment = if rust {
        code.starts_with("//")
    } else {
        code.starts_with('#')
    };
    if comment {
        return false;
    }
    if code.contains("--insecure") {
        return true;
    }
    if !rust {
        return false;
    }
    ["insecure:", "insecure ="].iter().any(|set| {
        code.match_indices(set).any(|(at, _)| {
            let before = code[..at].chars().next_back();
            let value = code[at + set.len()..].trim_start();
            // A field named exactly `insecure`, given a value other than `false`.
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                && !value.starts_with("false")
                && !value.starts_with("bool")
        })
    })
}

#[test]
fn no_test_bench_demo_deployment_or_script_runs_guild_without_authentication() {
    let root = root();
    let me = root.join("tests/architecture.rs");
    let mut found = Vec::new();
    let mut used = BTreeSet::new();
    let mut scanned = 0;
    for file in places_that_run_guild() {
        // This test names what it looks for.
        if file == me {
            continue;
        }
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        scanned += 1;
        let text = String::from_utf8_lossy(&bytes);
        let rel = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for (n, line) in text.lines().enumerate() {
            if !turns_authentication_off(&name, line) {
                continue;
            }
            let allowed = INSECURE_ALLOWED
                .iter()
                .position(|(path, needle, _)| *path == rel && line.contains(needle));
            match allowed {
                Some(i) => {
                    used.insert(i);
                }
                None => found.push(format!("{rel}:{}: {}", n + 1, line.trim())),
            }
        }
    }
    assert!(scanned > 50, "only {scanned} files scanned: wrong root?");
    assert!(
        found.is_empty(),
        "authentication turned off where Guild must run as it always does (the test kit's \
         servers and `guild dev` authenticate every connection; only the benchmark's \
         baselines measure what that costs):\n{}",
        found.join("\n")
    );
    for (i, (path, needle, why)) in INSECURE_ALLOWED.iter().enumerate() {
        assert!(
            used.contains(&i),
            "{path} no longer has `{needle}` ({why}): remove the allowance"
        );
    }
}

/// Clap fields named `insecure` in `text`: (line number, the attribute text above it,
/// doc comments left out).
fn insecure_flags(text: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut flags = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let code = line.trim();
        if !(code.ends_with("insecure: bool,") && code.starts_with("pub")) {
            continue;
        }
        // Everything between the previous field (or the struct's `{`) and this one.
        let mut attrs = Vec::new();
        for above in lines[..n].iter().rev() {
            let above = above.trim();
            let previous_field = above.starts_with("pub") && above.ends_with(',');
            if previous_field || above.ends_with('{') || above.is_empty() {
                break;
            }
            if !above.starts_with("//") {
                attrs.push(above);
            }
        }
        attrs.reverse();
        let attrs = attrs.join(" ");
        if attrs.contains("arg(") {
            flags.push((n + 1, attrs));
        }
    }
    flags
}

#[test]
fn insecure_cannot_be_set_from_the_environment() {
    let root = root();
    let mut sources = Vec::new();
    files_under(&root.join("crates"), &mut sources);
    let mut flags = Vec::new();
    for file in sources {
        let rel = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if !rel.ends_with(".rs") || !rel.contains("/src/") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (line, attrs) in insecure_flags(&text) {
            // `env = "..."`, or a bare `env` (clap then names the variable itself).
            let env = attrs
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .any(|word| word == "env");
            assert!(
                !env,
                "{rel}:{line}: --insecure must be typed, never inherited from the \
                 environment: {attrs}"
            );
            flags.push(rel.clone());
        }
    }
    // Not vacuous: the flags of `guild dev` and of the services (their common options)
    // were found and checked.
    for expected in [
        "crates/guild-cli/src/cli.rs",
        "crates/guild-service/src/options.rs",
    ] {
        assert!(
            flags.iter().any(|f| f == expected),
            "no --insecure flag found in {expected} (found {flags:?}): update this test"
        );
    }
}

#[test]
fn the_insecure_scans_see_what_they_look_for() {
    for (name, line) in [
        ("main.rs", r#"    .args(["dev", "--insecure"])"#),
        (
            "main.rs",
            "let server = NatsServer::start_with(ServerOptions { insecure: true, ..Default::default() });",
        ),
        ("main.rs", "        insecure: !auth,"),
        ("main.rs", "    options.insecure = true;"),
        ("compose.yaml", "    command: spawner-svc --insecure"),
        ("justfile", "    cargo run --bin guild -- dev --insecure"),
    ] {
        assert!(turns_authentication_off(name, line), "{name}: {line}");
    }
    for (name, line) in [
        (
            "main.rs",
            "    // services started with --insecure, for comparison",
        ),
        ("main.rs", "            insecure: false,"),
        ("main.rs", "    pub insecure: bool,"),
        ("main.rs", "    let auth_insecure: u8 = 1;"),
        ("otel-collector.yaml", "      insecure: true"),
        ("verify", "# never --insecure here"),
    ] {
        assert!(!turns_authentication_off(name, line), "{name}: {line}");
    }
    let flags = insecure_flags(
        "pub struct Options {\n    /// Run insecure: env vars are not read.\n    #[arg(long)]\n    \
         pub insecure: bool,\n}\npub struct Other {\n    pub x: u8,\n    #[arg(\n        long,\n        \
         env = \"GUILD_INSECURE\"\n    )]\n    pub insecure: bool,\n}\n",
    );
    assert_eq!(flags.len(), 2, "{flags:?}");
    assert_eq!(flags[0].1, "#[arg(long)]");
    assert!(flags[1].1.contains("env = \"GUILD_INSECURE\""), "{flags:?}");
}

// ---- Layout: rules, subjects and stream names live in one place each -----------------

/// Where the layout rules hold: the non-test source of each crate that talks to NATS on
/// Guild's behalf. guild-wire formats every subject and names every stream; the domain
/// names every rule; these only call them.
const LAYOUT_CRATES: &[&str] = &[
    "spawner-svc",
    "bus-svc",
    "mission-svc",
    "guild-service",
    "guild-store",
    "guild-sdk",
    "guild-cli",
    "guild-mcp",
];

/// Lines allowed to break a layout rule for now: (file, the line's text, why).
const LAYOUT_ALLOWED: &[(&str, &str, &str)] = &[];

/// What a layout rule found: (line number, which rule).
fn layout_findings(text: &str) -> Vec<(usize, &'static str)> {
    let mut found = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        // A test module (last in a file, by the house's habit) may spell what it expects.
        if line.starts_with("#[cfg(test)]") {
            break;
        }
        // Comments are documentation, not uses.
        let code = match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        };
        if code.is_empty() {
            continue;
        }
        if matches_rule_by_name(code) {
            found.push((
                i + 1,
                "matches a rule by its name (compare the typed rejection)",
            ));
        }
        if spells_a_subject(code) {
            found.push((i + 1, "spells a subject (use guild_wire::subject)"));
        }
        if spells_a_stream(code) {
            found.push((
                i + 1,
                "spells a stream name (use guild_wire::store / subject::js)",
            ));
        }
    }
    found
}

/// `.rule == "x"`, `rule: "x"` (a pattern or a construction by hand), `.rule() == Some("x")`.
fn matches_rule_by_name(code: &str) -> bool {
    let squeezed: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    squeezed.contains(".rule==\"")
        || squeezed.contains(".rule!=\"")
        || squeezed.contains("rule:\"")
        || squeezed.contains(".rule()==Some(\"")
        || squeezed.contains(".rule.as_str()==\"")
}

/// A string literal that is a subject or a subject template: `guild.journal.<name>`,
/// `guild.{evt,inbox,audit}.<a>.<b>…`, `guild.<service>.v1…`, or anything `format!`ted
/// from `guild.`. Span attribute and metric names (`guild.audit.kind`,
/// `guild.mission.id`) have fewer tokens and are no subjects.
fn spells_a_subject(code: &str) -> bool {
    if code.contains("format!(\"guild.") {
        return true;
    }
    string_literals(code).any(|s| {
        let tokens: Vec<&str> = s.split('.').collect();
        tokens.first() == Some(&"guild")
            && match tokens.get(1) {
                Some(&"journal") => tokens.len() >= 3,
                Some(&("evt" | "inbox" | "audit")) => tokens.len() >= 4,
                Some(&("spawner" | "bus" | "mission")) => tokens.get(2) == Some(&"v1"),
                _ => false,
            }
    })
}

/// A stream's name: `"GUILD_AUDIT"`, `"GUILD_EVENTS"`, `"GUILD_INBOX"`, `GUILD_JOURNAL_…`,
/// or a bucket's stream `format!("KV_…")` / `format!("OBJ_…")`. Environment variables
/// (`GUILD_INBOX_LOG_AGE`) are no streams.
fn spells_a_stream(code: &str) -> bool {
    ["format!(\"GUILD_", "format!(\"KV_", "format!(\"OBJ_"]
        .iter()
        .any(|p| code.contains(p))
        || string_literals(code).any(|s| {
            matches!(s, "GUILD_AUDIT" | "GUILD_EVENTS" | "GUILD_INBOX")
                || s.starts_with("GUILD_JOURNAL_")
        })
}

/// The contents of the plain string literals on a line.
fn string_literals(code: &str) -> impl Iterator<Item = &str> {
    code.split('"').skip(1).step_by(2)
}

#[test]
fn no_service_sdk_or_cli_matches_a_rule_by_name_or_spells_a_subject_or_stream() {
    let root = root();
    let mut broken = Vec::new();
    for krate in LAYOUT_CRATES {
        let mut files = Vec::new();
        files_under(&root.join("crates").join(krate).join("src"), &mut files);
        for file in files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "rs"))
        {
            let name = file
                .strip_prefix(&root)
                .unwrap_or(file)
                .display()
                .to_string();
            let text = std::fs::read_to_string(file).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            for (n, rule) in layout_findings(&text) {
                let line = lines[n - 1].trim();
                let allowed = LAYOUT_ALLOWED
                    .iter()
                    .any(|(f, l, _)| *f == name && *l == line);
                if !allowed {
                    broken.push(format!("{name}:{n}: {rule}: {line}"));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "rules are named only in the domain, subjects and streams only in guild-wire:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_layout_checks_catch_a_planted_rule_match_subject_and_stream_name() {
    let planted =
        std::fs::read_to_string(root().join("tests/fixtures/architecture/planted.rs.txt")).unwrap();
    let found = layout_findings(&planted);
    let lines: Vec<&str> = planted.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(at) = line.find("// PLANTED ") else {
            continue;
        };
        let kind = line[at + "// PLANTED ".len()..].trim();
        let wanted = match kind {
            "rule" => "matches a rule",
            "subject" => "spells a subject",
            "stream" => "spells a stream",
            other => panic!("unknown planted kind {other}"),
        };
        assert!(
            found
                .iter()
                .any(|(n, r)| *n == i + 1 && r.starts_with(wanted)),
            "line {} ({}) was not caught: {found:?}",
            i + 1,
            line.trim()
        );
    }
    let planted_lines = lines.iter().filter(|l| l.contains("// PLANTED ")).count();
    assert_eq!(planted_lines, 8, "the fixture plants each kind");
    assert_eq!(
        found.len(),
        planted_lines,
        "nothing but the planted lines is reported (allowed forms, comments, tests): {found:?}"
    );
}
