//! `guild-bench`: runs Guild's benchmarks against a real nats-server and the real service
//! binaries, next to raw NATS / JetStream baselines measured in the same run, and writes
//! docs/BENCHMARKS.md with its plots (SVG) in docs/bench/. `just bench` builds the
//! release binaries and runs it; `--quick` runs every scenario with small counts in
//! seconds (`tests/quick.rs` runs it, so this code cannot rot).

mod header;
mod plot;
mod report;
mod scenario;
mod sink;
mod stack;
mod stats;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;
use clap::builder::PossibleValuesParser;

use crate::report::Section;
use crate::stack::Sync;

/// Every scenario, in the order they run.
const SCENARIOS: [&str; 7] = [
    "spawn",
    "identity",
    "overhead",
    "bus",
    "tracing",
    "missions",
    "footprint",
];

#[derive(Parser, Debug)]
#[command(
    name = "guild-bench",
    about = "Measure Guild against raw NATS and the seed's targets; write docs/BENCHMARKS.md and its plots."
)]
struct Args {
    /// Small counts: every scenario in seconds (for the test that keeps this code alive).
    #[arg(long)]
    quick: bool,
    /// Where to write the report.
    #[arg(long, default_value = "docs/BENCHMARKS.md")]
    out: PathBuf,
    /// Where to write the plots (SVG) [default: `bench/` beside --out].
    #[arg(long)]
    plots: Option<PathBuf>,
    /// Only these scenarios (comma separated).
    #[arg(long, value_delimiter = ',', value_parser = PossibleValuesParser::new(SCENARIOS))]
    only: Vec<String>,
}

/// `to` as a link from a document in `from`: relative below it, absolute elsewhere.
fn link(from: &Path, to: &Path) -> String {
    let (from, to) = (
        from.canonicalize().unwrap_or_else(|_| from.to_path_buf()),
        to.canonicalize().unwrap_or_else(|_| to.to_path_buf()),
    );
    let shown = match to.strip_prefix(&from) {
        Ok(rel) if rel.as_os_str().is_empty() => PathBuf::from("."),
        Ok(rel) => rel.to_path_buf(),
        Err(_) => to,
    };
    shown.to_string_lossy().replace('\\', "/")
}

async fn scenario(name: &str, quick: bool) -> anyhow::Result<Vec<Section>> {
    let mut out = Vec::new();
    let syncs = [Sync::Default, Sync::Always];
    match name {
        "spawn" => {
            for sync in syncs {
                out.push(scenario::spawn::run(sync, quick).await?);
            }
        }
        "overhead" => {
            for sync in syncs {
                out.push(scenario::overhead::run(sync, quick).await?);
            }
        }
        "bus" => {
            for sync in syncs {
                out.extend(scenario::bus::run(sync, quick).await?);
            }
        }
        "identity" => out.push(scenario::identity::run(quick).await?),
        "tracing" => out.push(scenario::tracing::run(quick).await?),
        "missions" => out.push(scenario::missions::run(quick).await?),
        "footprint" => out.push(scenario::footprint::run(quick).await?),
        other => anyhow::bail!("no scenario {other}"),
    }
    Ok(out)
}

/// Ctrl-C or SIGTERM.
async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            // Help is not an error; a bad option is bad configuration (STYLE.md §4).
            std::process::exit(if e.use_stderr() { 64 } else { 0 });
        }
    };
    let run = async {
        let mut sections: Vec<Section> = Vec::new();
        for name in SCENARIOS {
            if args.only.is_empty() || args.only.iter().any(|o| o == name) {
                eprintln!("guild-bench: {name}");
                sections.extend(
                    scenario(name, args.quick)
                        .await
                        .with_context(|| format!("while running the {name} scenario"))?,
                );
            }
        }
        anyhow::Ok(sections)
    };
    // Dropping the run drops its stacks, which stop the nats-server and the services they
    // started; a signal that killed the bench outright would leave them running.
    let finished = tokio::select! {
        sections = run => Some(sections),
        () = interrupted() => None,
    };
    let Some(sections) = finished else {
        eprintln!("guild-bench: interrupted; the nats-server and services it started are stopped");
        std::process::exit(130);
    };
    let sections = sections?;
    let out_dir = match args.out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let plots = args.plots.unwrap_or_else(|| out_dir.join("bench"));
    for dir in [&out_dir, &plots] {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("while creating {}", dir.display()))?;
    }
    for f in sections.iter().flat_map(|s| &s.figures) {
        let path = plots.join(&f.file);
        std::fs::write(&path, f.plot.svg())
            .with_context(|| format!("while writing {}", path.display()))?;
    }
    let doc = report::render(
        &header::header(args.quick),
        &sections,
        &link(&out_dir, &plots),
    );
    std::fs::write(&args.out, doc)
        .with_context(|| format!("while writing {}", args.out.display()))?;
    eprintln!(
        "guild-bench: wrote {} and its plots in {}",
        args.out.display(),
        plots.display()
    );
    Ok(())
}
