//! Finding the nats-server binary.

use std::path::{Path, PathBuf};

/// What to run when no nats-server can be found.
pub const INSTALL_HINT: &str = "run `scripts/bootstrap` from the repository root to install the \
     pinned nats-server v2.15.1 into .tools/bin, or set NATS_SERVER_BIN to a nats-server >= 2.12";

/// The binary to run: `NATS_SERVER_BIN`, else `.tools/bin/nats-server` in this workspace,
/// else `nats-server` on `PATH`. Panics with [`INSTALL_HINT`] when there is none.
pub fn nats_server_bin() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let override_bin = std::env::var_os("NATS_SERVER_BIN");
    match resolve_nats_server_bin(override_bin.as_deref().map(Path::new), &workspace, &path) {
        Ok(bin) => bin,
        Err(why) => panic!("no nats-server to run: {why}; {INSTALL_HINT}"),
    }
}

/// A binary of this workspace from the same build as the running test or tool
/// (`target/<profile>/<name>`). A test cannot depend on another package's binary, so it is
/// found, not built: a workspace test run (`just test`) builds every binary first. Panics
/// naming the command that builds it when it is missing.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("the test's own path: {e}"));
    let mut dir = exe
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| panic!("{} has no folder", exe.display()));
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join(name);
    assert!(
        bin.is_file(),
        "{} is missing: build the workspace's binaries first (`cargo build --workspace --bins`; \
         `just test` does)",
        bin.display()
    );
    bin
}

/// The resolution rule, pure, so it can be tested without touching the environment.
pub fn resolve_nats_server_bin(
    override_bin: Option<&Path>,
    workspace: &Path,
    path_var: &std::ffi::OsStr,
) -> Result<PathBuf, String> {
    if let Some(bin) = override_bin {
        return if bin.is_file() {
            Ok(bin.to_path_buf())
        } else {
            Err(format!("NATS_SERVER_BIN={} does not exist", bin.display()))
        };
    }
    let pinned = workspace.join(".tools/bin/nats-server");
    if pinned.is_file() {
        return Ok(pinned);
    }
    std::env::split_paths(path_var)
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("{} is missing and none is on PATH", pinned.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_override_is_an_error_that_names_it() {
        let err = resolve_nats_server_bin(
            Some(Path::new("/nope/nats-server")),
            Path::new("/nope"),
            "".as_ref(),
        )
        .unwrap_err();
        assert!(err.contains("NATS_SERVER_BIN=/nope/nats-server"), "{err}");
    }

    #[test]
    fn nothing_anywhere_is_an_error() {
        let err =
            resolve_nats_server_bin(None, Path::new("/nope"), "/also-nope".as_ref()).unwrap_err();
        assert!(err.contains(".tools/bin/nats-server"), "{err}");
        assert!(INSTALL_HINT.contains("scripts/bootstrap"));
    }

    #[test]
    fn path_is_searched_last() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("nats-server");
        std::fs::write(&bin, b"").unwrap();
        let found =
            resolve_nats_server_bin(None, Path::new("/nope"), dir.path().as_os_str()).unwrap();
        assert_eq!(found, bin);
    }
}
