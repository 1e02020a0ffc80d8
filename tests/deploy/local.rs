//! Running the deployment's pieces on this machine: the workspace's own binaries
//! (`guild_testkit::workspace_binary`) in place of the images, a plain HTTP GET in place
//! of wget.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A Guild service's environment from compose.yaml for a run here: pointed at `nats_url`,
/// without the OTLP settings (no trace viewer runs here, and none is needed), and with
/// each path to a secret (`/run/secrets/...`) turned into the file it would be made from,
/// under `keys_root` in place of compose's `./keys` (the same layout `guild admin init`
/// makes, as the test kit's servers have).
pub(crate) fn local_env(
    compose_env: &BTreeMap<String, String>,
    nats_url: &str,
    secrets: &[(String, String)],
    secret_files: &BTreeMap<String, String>,
    keys_root: &std::path::Path,
) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = compose_env
        .iter()
        .filter(|(k, _)| !k.starts_with("OTEL_"))
        .map(|(k, v)| {
            let mounted = secrets.iter().find(|(_, target)| target == v);
            let v = match mounted.and_then(|(source, _)| secret_files.get(source)) {
                Some(file) => {
                    let rel = file
                        .strip_prefix(crate::compose::KEYS_DIR)
                        .unwrap_or(file)
                        .trim_start_matches('/');
                    keys_root.join(rel).display().to_string()
                }
                None => v.clone(),
            };
            (k.clone(), v)
        })
        .collect();
    env.insert("NATS_URL".into(), nats_url.into());
    env
}

/// `GET <path>` on `127.0.0.1:<port>`: the status code and the body.
pub(crate) fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).expect("connect to the monitoring port");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    // HTTP/1.0: the server closes the connection after the response, so read to the end.
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").expect("send the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// `http://host:port/path?query` → (port, `/path?query`).
pub(crate) fn port_and_path(url: &str) -> Option<(u16, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let port = authority.rsplit_once(':')?.1.parse().ok()?;
    Some((port, format!("/{path}")))
}

/// Whether `name` occurs in `text` as a whole identifier (not inside a longer one).
pub(crate) fn mentions(text: &str, name: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(name).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_port_and_path() {
        assert_eq!(
            port_and_path("http://127.0.0.1:8222/healthz?js-enabled-only=true"),
            Some((8222, "/healthz?js-enabled-only=true".into()))
        );
        assert_eq!(port_and_path("http://localhost"), None);
    }

    #[test]
    fn a_variable_is_mentioned_only_as_a_whole_name() {
        let help = "[env: NATS_URL=] [env: GUILD_MODE_X=]";
        assert!(mentions(help, "NATS_URL"));
        assert!(!mentions(help, "GUILD_MODE"));
        assert!(!mentions(help, "URL"));
    }
}
