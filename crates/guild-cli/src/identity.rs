//! Who a command acts as: the credentials it connects with, found by one rule (the help
//! text's "Identity"), and where the CLI keeps the credentials it receives.

use std::path::PathBuf;

use anyhow::bail;
use guild_auth::Layout;
use guild_sdk::{AgentId, Principal};
use guild_sdk::{Auth, NatsOptions};
use guild_wire::api::spawner::AgentCredentials;

use crate::cli::Global;
use crate::parse::{self, BadArgument};

/// The folder layout under `--home`.
pub(crate) fn layout(global: &Global) -> Layout {
    Layout::under(&global.home)
}

/// The connection options: `--creds` (or another NATS option) as given; else `--as`'s
/// credentials in `<home>/creds`; else the operator's there, when `guild dev` made them.
pub(crate) fn options(global: &Global) -> anyhow::Result<NatsOptions> {
    let mut options = global.nats.clone().into_options().map_err(BadArgument)?;
    let explicit = !matches!(options.auth, Auth::None);
    match (&global.as_agent, explicit) {
        (Some(_), true) => {
            return Err(BadArgument(
                "--as picks the agent's credentials from <home>/creds; with --creds (or \
                 NATS_CREDS) give one or the other"
                    .into(),
            )
            .into());
        }
        (Some(id), false) => {
            options.auth = Auth::CredsFile(agent_creds(global, &parse::agent(id)?)?)
        }
        (None, false) => {
            let operator = layout(global).creds_of(&Principal::Operator);
            if operator.is_file() {
                options.auth = Auth::CredsFile(operator);
            }
        }
        (None, true) => {}
    }
    Ok(options)
}

/// `<home>/creds/<id>.creds`, which must exist.
pub(crate) fn agent_creds(global: &Global, id: &AgentId) -> anyhow::Result<PathBuf> {
    let path = layout(global).creds_of(&Principal::Agent(id.clone()));
    if !path.is_file() {
        bail!(
            "no credentials for {id} in {}: they are saved there when this CLI spawns the \
             agent; its parent (or the operator) can issue new ones with `guild agent \
             credentials {id}`",
            path.display()
        );
    }
    Ok(path)
}

/// Saves credentials received for `id` as `<home>/creds/<id>.creds` (mode 0600); returns
/// where, or `None` when they carry no seed (the caller kept the key pair).
pub(crate) fn save(
    global: &Global,
    id: &AgentId,
    credentials: &AgentCredentials,
) -> anyhow::Result<Option<PathBuf>> {
    let Some(creds) = &credentials.creds else {
        return Ok(None);
    };
    let path = layout(global).creds_of(&Principal::Agent(id.clone()));
    guild_auth::private_dir(&layout(global).creds)?;
    guild_auth::write_secret(&path, creds)?;
    Ok(Some(path))
}
