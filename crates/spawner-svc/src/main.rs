//! `spawner-svc`: parses options, starts logging, connects, runs until Ctrl-C or SIGTERM.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let config = spawner_svc::Options::parse().into_config();
    guild_service::main(
        "spawner-svc",
        config,
        |c| c.common.clone(),
        |client, config| spawner_svc::run(client, config, guild_service::shutdown_signal()),
    )
}
