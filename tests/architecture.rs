//! The layering of ARCHITECTURE.md, held by reading `cargo metadata`: which workspace
//! crates each crate may use, and that the domain stays pure.

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
    (
        "guild-cli",
        &[
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
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
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
    let meta = metadata();
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
            if normal {
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
