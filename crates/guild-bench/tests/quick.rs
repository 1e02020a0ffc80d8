//! The quick mode, end to end: `guild-bench --quick` against a real nats-server and the
//! real service binaries, its report read back. Benchmarks are not tests (issue 8 §4), but
//! this one asserts that every metric row, baseline, ratio and plot was produced, so the
//! benchmark code cannot rot between full runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The plots the report must link, each written as an SVG.
const PLOTS: [&str; 5] = [
    "latency-vs-load.svg",
    "latency-vs-load-sync-always.svg",
    "dependency-resolution-vs-missions.svg",
    "memory-vs-missions.svg",
    "memory-vs-agents.svg",
];

/// Sections, by how their title starts, and how many of each.
const SECTIONS: [(&str, usize); 9] = [
    ("Spawn (", 2),
    ("Identity: connecting with credentials, revocation", 1),
    ("Bus: authentication on against off", 1),
    ("Request overhead (", 2),
    ("Bus: send → consume (", 2),
    ("Bus under load (", 2),
    ("Trace exporter off and on (", 1),
    ("Missions at scale (", 1),
    ("Start-up and memory", 1),
];

/// What a metric row must carry besides its figure: (a raw baseline, a target and a
/// goal verdict).
type Needs = (bool, bool);
const FIGURE: Needs = (false, false);
const BASELINE: Needs = (true, false);
const GOAL: Needs = (false, true);
const BOTH: Needs = (true, true);

/// Metrics of issue 8 §2 by a part of their name (a trailing `$`: the end of it), how
/// many rows at least, and what each must carry.
const METRICS: &[(&str, usize, Needs)] = &[
    ("spawn p99, 1 instance", 2, BOTH),
    ("spawn p99, 2 instances", 2, BOTH),
    ("spawn throughput, 1 instance", 2, FIGURE),
    ("spawn throughput, 2 instances", 2, FIGURE),
    ("spawner-svc read `get` p50$", 2, BOTH),
    ("spawner-svc write `spawn` p50", 2, BOTH),
    ("mission-svc read `get_mission` p50", 2, BOTH),
    ("mission-svc write `create_mission` p50$", 2, BOTH),
    ("bus-svc read `get_message_stats` p50", 2, BOTH),
    ("bus-svc write `request` (send) p50", 2, BOTH),
    ("send, then consume: p99", 2, BOTH),
    ("send → waiting consume: p99 ", 2, BOTH),
    ("send → waiting consume: p99.9", 2, BASELINE),
    ("question → decision round trip: p50$", 2, BASELINE),
    ("question → decision round trip: p99$", 2, BOTH),
    // Several offered loads, per sync mode and instance count.
    ("msg/s, 1 instance: p50", 4, BASELINE),
    ("msg/s, 1 instance: p99$", 4, BOTH),
    ("msg/s, 1 instance: p99.9", 4, BASELINE),
    ("msg/s, 2 instances: p50", 4, BASELINE),
    ("msg/s, 2 instances: p99$", 4, BOTH),
    ("msg/s, 2 instances: p99.9", 4, BASELINE),
    ("max throughput, 1 instance", 2, BASELINE),
    ("max throughput, 2 instances", 2, BASELINE),
    // Identity: what credentials cost, how fast revocation acts, and every bus row with
    // authentication on against off.
    ("connect with an agent's credentials: p99", 1, BASELINE),
    ("the agent's connection closed: p99", 1, GOAL),
    ("msg/s, 2 instances, authenticated: p99", 3, BASELINE),
    (
        "question → decision round trip, authenticated: p99",
        1,
        BASELINE,
    ),
    // The trace exporter off and on: exporter-off figures as the baselines.
    ("spawn p50, exporter on", 1, BOTH),
    ("spawn p99, exporter on", 1, BASELINE),
    ("send → waiting consume: p50, exporter on", 1, BOTH),
    ("send → waiting consume: p99, exporter on", 1, BASELINE),
    ("question → decision round trip: p50, exporter on", 1, BOTH),
    (
        "question → decision round trip: p99, exporter on",
        1,
        BASELINE,
    ),
    ("spawner-svc read `get` p50, exporter on", 1, BOTH),
    ("spawner-svc read `get` p99, exporter on", 1, BASELINE),
    (
        "mission-svc write `create_mission` p50, exporter on",
        1,
        BOTH,
    ),
    (
        "mission-svc write `create_mission` p99, exporter on",
        1,
        BASELINE,
    ),
    ("spans received by the OTLP sink, exporter on", 1, FIGURE),
    // Three scales of missions.
    ("add_dependency with cycle check p99, in-process", 3, GOAL),
    ("add_dependency p50, end-to-end", 3, BASELINE),
    ("add_dependency p99, end-to-end", 3, BOTH),
    ("readiness after a completion p99, in-process", 3, GOAL),
    ("readiness after a completion p50, end-to-end", 3, BASELINE),
    ("readiness after a completion p99, end-to-end (", 3, BOTH),
    (
        "readiness after a completion p99, end-to-end, sent after",
        3,
        BASELINE,
    ),
    ("parallel groups, in-process", 3, GOAL),
    ("parallel groups, end-to-end", 3, GOAL),
    ("missions: mission-svc resident memory", 3, FIGURE),
    ("domain memory for the board", 3, FIGURE),
    ("add_dependency against the order", 1, GOAL),
    ("missions: mission-svc start-up", 1, FIGURE),
    // Start-up and memory.
    ("spawner-svc start-up, empty store", 1, FIGURE),
    ("mission-svc start-up, empty store", 1, FIGURE),
    ("bus-svc start-up, empty store", 1, FIGURE),
    ("spawner-svc start-up at", 1, FIGURE),
    ("bus-svc start-up at", 1, FIGURE),
    ("spawner-svc resident memory at", 1, GOAL),
    ("bus-svc resident memory at", 1, GOAL),
    ("mission-svc resident memory at", 1, FIGURE),
];

/// Builds the service binaries next to the guild-bench binary cargo built for this test,
/// with the same profile. `--workspace --bins` resolves features as the workspace's test
/// build does, so after `cargo nextest run --workspace` this finds everything fresh.
fn build_services() {
    let bench = Path::new(env!("CARGO_BIN_EXE_guild-bench"));
    let profile = match bench
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
    {
        Some("debug") => "dev".to_owned(),
        Some(other) => other.to_owned(),
        None => panic!("{} has no profile directory", bench.display()),
    };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .current_dir(&workspace)
        .args(["build", "--workspace", "--bins", "--locked", "--profile"])
        .arg(&profile);
    // Without the variables cargo sets for a test: some build scripts rerun when one
    // changes (ring's on CARGO_MANIFEST_DIR), and would rebuild half the workspace here
    // and again in the next ordinary build.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let set_for_tests = [
            "CARGO_MANIFEST_",
            "CARGO_PKG_",
            "CARGO_CRATE_NAME",
            "CARGO_BIN_",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "CARGO_RUSTC_CURRENT_DIR",
            "OUT_DIR",
        ];
        if set_for_tests.iter().any(|p| key.starts_with(p)) {
            cargo.env_remove(key.as_ref());
        }
    }
    let out = cargo.output().expect("cargo runs");
    assert!(
        out.status.success(),
        "building the service binaries failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A section of the report: its title and its table's rows, cell by cell.
struct Table {
    title: String,
    rows: Vec<Vec<String>>,
}

fn tables(doc: &str) -> Vec<Table> {
    let mut out: Vec<Table> = Vec::new();
    for line in doc.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            out.push(Table {
                title: title.to_owned(),
                rows: Vec::new(),
            });
        } else if let Some(inner) = line.strip_prefix("| ").and_then(|l| l.strip_suffix(" |"))
            && !line.starts_with("| metric |")
            && let Some(t) = out.last_mut()
        {
            t.rows
                .push(inner.split(" | ").map(|c| c.trim().to_owned()).collect());
        }
    }
    out
}

/// "0.123 ms" → true when the number is finite.
fn is_figure(cell: &str) -> bool {
    cell.split_once(' ')
        .and_then(|(n, _unit)| n.parse::<f64>().ok())
        .is_some_and(f64::is_finite)
}

/// The targets of `![...](target)` and `- [...](target)` links.
fn links<'a>(doc: &'a str, opening: &str) -> Vec<&'a str> {
    doc.lines()
        .filter(|l| l.starts_with(opening))
        .filter_map(|l| l.rsplit_once("](")?.1.strip_suffix(')'))
        .collect()
}

fn check_row(title: &str, cells: &[String]) {
    let row = format!("{title}: {}", cells.join(" | "));
    assert_eq!(cells.len(), 6, "a row has six cells: {row}");
    assert!(cells.iter().all(|c| !c.is_empty()), "an empty cell: {row}");
    assert!(
        cells.iter().all(|c| c != "n/a"),
        "a figure or baseline is missing: {row}"
    );
    let (baseline, guild, ratio, met) = (&cells[2], &cells[3], &cells[4], &cells[5]);
    assert!(is_figure(guild), "Guild's figure is not a number: {row}");
    if baseline == "—" {
        assert_eq!(ratio, "—", "a ratio without a baseline: {row}");
    } else {
        assert!(is_figure(baseline), "the baseline is not a number: {row}");
        let x = ratio.strip_suffix('×').and_then(|r| r.parse::<f64>().ok());
        assert!(x.is_some_and(f64::is_finite), "no ratio: {row}");
    }
    assert!(["yes", "**no**", "—"].contains(&met.as_str()), "{row}");
}

fn check_metrics(tables: &[Table]) {
    let rows: Vec<&Vec<String>> = tables.iter().flat_map(|t| &t.rows).collect();
    for (part, at_least, (baseline, goal)) in METRICS {
        let matches = |metric: &str| match part.strip_suffix('$') {
            Some(end) => metric.ends_with(end),
            None => metric.contains(part),
        };
        let found: Vec<&&Vec<String>> = rows.iter().filter(|r| matches(&r[0])).collect();
        assert!(
            found.len() >= *at_least,
            "{} rows with `{part}`, expected at least {at_least}",
            found.len()
        );
        for r in found {
            if *baseline {
                assert_ne!(r[2], "—", "`{}` has no baseline", r[0]);
            }
            if *goal {
                assert!(r[1] != "—" && r[5] != "—", "`{}` has no goal", r[0]);
            }
        }
    }
    // The exporter-on run really exported: the sink counted its spans.
    let spans = rows
        .iter()
        .find(|r| r[0] == "spans received by the OTLP sink, exporter on")
        .and_then(|r| r[3].strip_suffix(" spans")?.parse::<f64>().ok());
    assert!(
        spans.is_some_and(|n| n > 0.0),
        "no spans reached the OTLP sink: {spans:?}"
    );
    for (start, count) in SECTIONS {
        let n = tables.iter().filter(|t| t.title.starts_with(start)).count();
        assert_eq!(n, count, "sections titled `{start}...`");
    }
}

fn check_plots(doc: &str, out_dir: &Path) {
    let shown = links(doc, "![");
    let listed = links(doc, "- [");
    for name in PLOTS {
        let target = shown
            .iter()
            .find(|t| t.ends_with(&format!("/{name}")))
            .unwrap_or_else(|| panic!("{name} is not shown in the report"));
        assert!(
            listed.contains(target),
            "{name} is not in the list of plots"
        );
        let path: PathBuf = out_dir.join(target);
        let svg = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{} was not written: {e}", path.display()));
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{name}"
        );
        assert!(svg.trim_end().ends_with("</svg>"), "{name} is cut short");
        assert!(svg.contains("<polyline"), "{name} has no line drawn");
        assert!(!svg.contains("no data"), "{name} has nothing to draw");
    }
}

#[test]
fn the_quick_mode_produces_every_row_baseline_ratio_and_plot() {
    let building = Instant::now();
    build_services();
    eprintln!(
        "building the service binaries took {:?}",
        building.elapsed()
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("BENCHMARKS.md");
    let plots = dir.path().join("plots");
    let started = Instant::now();
    let run = Command::new(env!("CARGO_BIN_EXE_guild-bench"))
        .arg("--quick")
        .arg("--out")
        .arg(&out)
        .arg("--plots")
        .arg(&plots)
        .output()
        .expect("guild-bench runs");
    assert!(
        run.status.success(),
        "guild-bench --quick failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    eprintln!("guild-bench --quick took {:?}", started.elapsed());
    let doc = std::fs::read_to_string(&out).unwrap();
    assert!(
        doc.contains("in quick mode"),
        "the report says how it was made"
    );
    let tables = tables(&doc);
    let mut rows = 0;
    for t in &tables {
        for r in &t.rows {
            check_row(&t.title, r);
            rows += 1;
        }
    }
    check_metrics(&tables);
    check_plots(&doc, dir.path());
    assert!(
        std::fs::read_dir(&plots).unwrap().count() >= PLOTS.len(),
        "the plots went to --plots"
    );
    eprintln!("{rows} metric rows checked");
}
