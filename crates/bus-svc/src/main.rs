//! `bus-svc`: parses options, starts logging, connects, runs until Ctrl-C or SIGTERM.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let config = bus_svc::Options::parse().into_config();
    guild_service::main(
        "bus-svc",
        config,
        |c| c.common.clone(),
        |client, config| bus_svc::run(client, config, guild_service::shutdown_signal()),
    )
}
