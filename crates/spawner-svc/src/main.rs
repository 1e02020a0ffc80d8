//! `spawner-svc`: parses options, starts logging, connects, runs until Ctrl-C or SIGTERM.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let options = spawner_svc::Options::parse();
    let config = match options.into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("spawner-svc: {e}");
            return ExitCode::from(64);
        }
    };
    guild_telemetry::init("spawner-svc", config.common.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("spawner-svc: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let client = guild_service::connect(&config.common, "spawner-svc").await?;
        spawner_svc::run(client, config, guild_service::shutdown_signal()).await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "spawner-svc stopped");
            eprintln!("spawner-svc: {e}");
            ExitCode::FAILURE
        }
    }
}
