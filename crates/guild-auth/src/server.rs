//! The part of nats-server's configuration that turns authentication on.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// What the fragment is made of (kept as `nats-auth.json` beside the keys, so a server
/// configuration can be written for any resolver folder: each node of a cluster has its
/// own).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthParts {
    /// The operator JWT the server trusts.
    pub operator_jwt: String,
    /// The system account's public key.
    pub system_account: String,
    /// Account JWTs to start with: `(public key, JWT)`. A JWT in the resolver's folder that
    /// was issued later (carrying revocations) wins over its preload.
    pub preload: Vec<(String, String)>,
}

/// Operator mode with the full resolver, its account JWTs kept in `resolver_dir`: every
/// client needs credentials signed under the operator, anonymous connections are refused,
/// and account updates (revocations) pushed by the custodian are stored on disk, so they
/// survive a restart of the server.
pub fn config(parts: &AuthParts, resolver_dir: &Path) -> String {
    let mut out = format!(
        "# Guild's authentication: operator mode, full resolver (made by guild-auth; do not edit)\n\
         operator: \"{}\"\n\
         system_account: \"{}\"\n\
         resolver: {{\n  type: full\n  dir: {:?}\n  allow_delete: false\n  interval: \"2m\"\n  timeout: \"1.9s\"\n}}\n\
         resolver_preload: {{\n",
        parts.operator_jwt,
        parts.system_account,
        resolver_dir.display().to_string(),
    );
    for (key, jwt) in &parts.preload {
        out.push_str(&format!("  {key}: \"{jwt}\"\n"));
    }
    out.push_str("}\n");
    out
}
