//! `guild demo`: the seed's "Integration Pattern: Complete Workflow", all seven steps, with
//! scripted agents. Each agent is a real one: its own NATS connection and SDK agent handle,
//! its own inbox it consumes, its own heartbeats. Nothing is simulated but the thinking.

mod agents;
mod cast;
mod report;
mod script;

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

/// Whether a Guild answers at `url` (all three services).
async fn guild_at(url: &str) -> bool {
    let Ok(guild) = guild_sdk::connect(url).await else {
        return false;
    };
    let guild = guild.with_timeout(Duration::from_secs(2));
    let (spawner, bus, missions) = (guild.spawner(), guild.bus(), guild.missions());
    let (a, b, c) = tokio::join!(
        spawner.get_stats(),
        bus.get_message_stats(),
        missions.get_statistics()
    );
    a.is_ok() && b.is_ok() && c.is_ok()
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

pub(crate) async fn run(args: DemoArgs, global: &Global, out: Out) -> anyhow::Result<()> {
    let progress = Progress {
        out,
        start: Instant::now(),
    };
    // A Guild named by NATS_URL (or --nats-url) is used; otherwise the demo brings its own.
    let named =
        std::env::var_os("NATS_URL").is_some() || global.nats_url != "nats://127.0.0.1:4222";
    let mut embedded = None;
    let mut scratch = None;
    let url = if named && guild_at(&global.nats_url).await {
        progress.say("demo", &format!("using the Guild at {}", global.nats_url));
        global.nats_url.clone()
    } else {
        if named {
            progress.say(
                "demo",
                &format!(
                    "no Guild answers at {}; starting one for the demo",
                    global.nats_url
                ),
            );
        }
        let data = match &args.data {
            Some(d) => d.clone(),
            None => {
                let d = std::env::temp_dir().join(format!("guild-demo-{}", std::process::id()));
                scratch = Some(d.clone());
                d
            }
        };
        let stack = dev::start(&data, free_port()?, dev::DEV_MODE)
            .await
            .context("while starting the embedded Guild for the demo")?;
        progress.say(
            "demo",
            &format!("embedded Guild: nats-server at {} (data in {}), the three services in this process", stack.url, data.display()),
        );
        let url = stack.url.clone();
        embedded = Some(stack);
        url
    };
    let outcome = script::run(&url, progress).await;
    if let Some(stack) = embedded {
        stack
            .stop()
            .await
            .context("while stopping the embedded Guild")?;
    }
    if let Some(dir) = scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
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
