//! Guild's fault suite: the real services (two instances of each, as processes) and
//! nats-server under a workload of agents (each its own process), with faults injected
//! at points drawn from a printed seed, then a checker that compares the workload's own
//! log of acknowledged replies with what Guild delivered and stored.
//!
//! * [`deploy`] — the processes, started, killed, paused, with every exit recorded;
//! * [`driver`] and [`worker`]: the workload (operator, lead, agents);
//! * [`inject`] — the fault schedule from the seed, and the faults;
//! * [`record`] — the append-only JSON-lines logs, outside NATS;
//! * [`fold`] — the journals read from outside, folded with the domain's types;
//! * [`check`] — the verdict, which does not depend on timing;
//! * [`report`] writes `docs/RELIABILITY.md`.
//!
//! ```text
//! guild-chaos run --duration 90s                 # single node, then exit 0 or 1
//! guild-chaos run --cluster --seed 7             # three nodes on network namespaces
//! guild-chaos run --both --out docs/RELIABILITY.md
//! ```

mod call;
mod check;
mod deploy;
mod driver;
mod fold;
mod inject;
mod record;
mod report;
mod rng;
mod run;
mod worker;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// Guild's fault suite.
#[derive(Parser, Debug)]
#[command(name = "guild-chaos", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs the suite: the deployment, the workload, the faults, the checker.
    Run(RunArgs),
    /// One workload agent (started by `run`, with NATS_URL and NATS_CREDS).
    Agent {
        /// The run's folder.
        #[arg(long)]
        dir: PathBuf,
        /// The run's seed.
        #[arg(long)]
        seed: u64,
    },
}

/// What `run` takes.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct RunArgs {
    /// The seed of the fault schedule and the workload's choices (printed; a random one
    /// when not given).
    #[arg(long)]
    seed: Option<u64>,
    /// How long the workload runs under faults, per mode (then the drain and the check).
    #[arg(long, default_value = "90s", value_parser = parse_duration)]
    duration: Duration,
    /// The 3-node cluster (network namespaces, GUILD_REPLICAS=3) instead of one node.
    #[arg(long, conflicts_with = "both")]
    cluster: bool,
    /// Single node, then the cluster.
    #[arg(long)]
    both: bool,
    /// Where the report goes (Markdown); none when not given.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where the run's files go (logs, the services' and agents' stderr); a folder under
    /// the system's temporary folder when not given. Kept after the run.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The command the report names for reproducing it.
    #[arg(long, default_value = "just chaos")]
    command_name: String,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n.parse().map_err(|_| format!("not a duration: {s}"))?;
    match unit {
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "ms" => Ok(Duration::from_millis(n)),
        _ => Err(format!("not a duration (s, m or ms): {s}")),
    }
}

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                std::process::ExitCode::from(64)
            } else {
                std::process::ExitCode::SUCCESS
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("guild-chaos: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Agent { dir, seed } => runtime.block_on(worker::run(dir, seed)).map(|()| true),
        Command::Run(args) => runtime.block_on(run::main(args)),
    };
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("guild-chaos: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
