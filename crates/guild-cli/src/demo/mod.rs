//! `guild demo`: the seed's "Integration Pattern: Complete Workflow", all seven steps, with
//! scripted agents. Each agent is a real one: its own NATS connection and SDK agent handle,
//! its own inbox it consumes, its own heartbeats. Nothing is simulated but the thinking.

mod agents;
mod cast;
mod report;
mod script;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::cli::{DemoArgs, Global};
use crate::dev;
use crate::output::Out;

/// Progress lines, timed from the start of the demo.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Progress {
    out: Out,
    start: Instant,
}

impl Progress {
    pub(crate) fn say(&self, who: &str, text: &str) {
        let t = self.start.elapsed().as_secs_f64();
        self.out.note(&format!("[{t:>6.2}s] {who:<18} {text}"));
    }

    pub(crate) fn step(&self, n: u8, title: &str) {
        self.out.note(&format!("\n== {n}. {title}"));
    }
}

/// Whether a Guild answers with `options` (all three services).
async fn guild_at(options: &guild_sdk::NatsOptions) -> bool {
    match guild_sdk::connect(options).await {
        Ok(guild) => dev::answers(&guild.with_timeout(Duration::from_secs(2))).await,
        Err(_) => false,
    }
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A temporary data folder, removed however the demo ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the demo until it ends or is interrupted (Ctrl-C, SIGTERM, SIGHUP); either way the
/// embedded stack, if any, is stopped and its temporary folder removed.
pub(crate) async fn run(args: DemoArgs, global: &Global, out: Out) -> anyhow::Result<()> {
    let mut stops = dev::Stops::listen()?;
    tokio::select! {
        done = play(args, global, out) => done,
        () = stops.requested() => anyhow::bail!("interrupted"),
    }
}

async fn play(args: DemoArgs, global: &Global, out: Out) -> anyhow::Result<()> {
    let progress = Progress {
        out,
        start: Instant::now(),
    };
    // A Guild answering at NATS_URL (or --nats-url, or the default address where `guild
    // dev` runs) is used; otherwise the demo brings its own.
    let mut embedded = None;
    let mut scratch = None;
    let here = crate::identity::options(global)?;
    let operator = if guild_at(&here).await {
        progress.say("demo", &format!("using the Guild at {}", here.url));
        here
    } else {
        progress.say(
            "demo",
            &format!(
                "no Guild answers at {}; starting one for the demo",
                here.url
            ),
        );
        // Its own keys and data, in a folder of its own.
        let home = match &args.data {
            Some(d) => d.clone(),
            None => {
                let d = std::env::temp_dir().join(format!("guild-demo-{}", std::process::id()));
                scratch = Some(Scratch(d.clone()));
                d
            }
        };
        let stack = dev::start(dev::Setup {
            home: &home,
            data: &home.join("data"),
            port: free_port()?,
            mode: crate::cli::DEV_MODE,
            insecure: false,
        })
        .await
        .context("while starting the embedded Guild for the demo")?;
        progress.say(
            "demo",
            &format!(
                "embedded Guild: nats-server at {} with authentication (keys and data in {}), the three services in this process",
                stack.url,
                home.display()
            ),
        );
        let operator = stack.operator.clone();
        embedded = Some(stack);
        operator
    };
    let outcome = script::run(&operator, progress).await;
    if let Some(stack) = embedded {
        stack
            .stop()
            .await
            .context("while stopping the embedded Guild")?;
    }
    drop(scratch);
    let report = outcome?;
    if let Some(path) = &args.decisions_md {
        std::fs::write(path, &report.decisions_markdown)
            .with_context(|| format!("cannot write {}", path.display()))?;
        progress.say(
            "demo",
            &format!("decision log written to {}", path.display()),
        );
    }
    out.emit(&report, report::text);
    report.check()
}
