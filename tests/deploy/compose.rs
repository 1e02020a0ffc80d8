//! `deploy/compose.yaml` as the tests see it: validated and interpolated by `compose.py`
//! (PyYAML and jsonschema from `.tools/venv`), then read as JSON.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The binaries `deploy/Dockerfile` builds, one compose service each.
pub(crate) const GUILD_BINARIES: [&str; 3] = ["spawner-svc", "bus-svc", "mission-svc"];

/// The repository root.
pub(crate) fn root() -> PathBuf {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR"));
    tests.parent().unwrap_or(tests).to_path_buf()
}

/// The loaded compose file.
pub(crate) struct Compose {
    /// The file with anchors merged and `${VAR:-default}` resolved to the defaults.
    pub(crate) project: Value,
    /// The variables a user can set (`${NAME...}` in the file).
    pub(crate) variables: Vec<String>,
    /// The folder the file is in: relative paths in it start here.
    pub(crate) dir: PathBuf,
}

/// Validates `deploy/compose.yaml` against the Compose schema copied into
/// `deploy/schema/` and loads it; panics with the validation errors.
pub(crate) fn load() -> Compose {
    let root = root();
    let python = root.join(".tools/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/bootstrap",
        python.display()
    );
    let dir = root.join("deploy");
    let out = Command::new(&python)
        .arg(root.join("tests/deploy/compose.py"))
        .arg(dir.join("compose.yaml"))
        .arg(dir.join("schema/compose-spec.json"))
        .output()
        .expect("run compose.py");
    assert!(
        out.status.success(),
        "deploy/compose.yaml is not a valid Compose file:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut loaded: Value = serde_json::from_slice(&out.stdout).expect("compose.py prints JSON");
    let variables = loaded["variables"]
        .as_array()
        .expect("variables")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    Compose {
        project: loaded["project"].take(),
        variables,
        dir,
    }
}

/// Any YAML file as JSON (through the same Python), for the other configuration files.
pub(crate) fn load_yaml(path: &Path) -> Value {
    let root = root();
    let out = Command::new(root.join(".tools/venv/bin/python"))
        .arg(root.join("tests/deploy/compose.py"))
        .arg("--yaml")
        .arg(path)
        .output()
        .expect("run compose.py --yaml");
    assert!(
        out.status.success(),
        "{} is not YAML:\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("compose.py prints JSON")
}

impl Compose {
    /// Every service, by name.
    pub(crate) fn services(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.project["services"]
            .as_object()
            .expect("a services map")
            .iter()
            .map(|(name, s)| (name.as_str(), s))
    }

    /// The first service whose image starts with `prefix` (`jaegertracing/`, ...).
    pub(crate) fn service_with_image(&self, prefix: &str) -> Option<(&str, &Value)> {
        self.services()
            .find(|(_, s)| s["image"].as_str().is_some_and(|i| i.starts_with(prefix)))
    }

    /// The services built from a Dockerfile target naming a Guild binary, with that binary.
    pub(crate) fn guild_services(&self) -> Vec<(&str, &'static str, &Value)> {
        self.services()
            .filter_map(|(name, s)| {
                let target = build_of(&self.dir, s)?.target?;
                let binary = GUILD_BINARIES.into_iter().find(|b| *b == target)?;
                Some((name, binary, s))
            })
            .collect()
    }

    /// The services running the official NATS image.
    pub(crate) fn nats_services(&self) -> Vec<(&str, &Value)> {
        self.services()
            .filter(|(_, s)| s["image"].as_str().is_some_and(|i| i.starts_with("nats:")))
            .collect()
    }

    /// The top-level named volumes.
    pub(crate) fn named_volumes(&self) -> Vec<&str> {
        self.project["volumes"]
            .as_object()
            .map(|v| v.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }
}

/// A service's `build`: where the context is, which Dockerfile, which target.
pub(crate) struct Build {
    pub(crate) context: PathBuf,
    pub(crate) dockerfile: PathBuf,
    pub(crate) target: Option<String>,
}

/// `build:` in its short (a context path) or long form; `None` for image-only services.
pub(crate) fn build_of(dir: &Path, service: &Value) -> Option<Build> {
    let build = service.get("build")?;
    let (context, dockerfile, target) = match build {
        Value::String(context) => (context.as_str(), "Dockerfile", None),
        _ => (
            build["context"].as_str().unwrap_or("."),
            build["dockerfile"].as_str().unwrap_or("Dockerfile"),
            build["target"].as_str().map(str::to_owned),
        ),
    };
    // Canonical, so messages name `/repo/deploy/Dockerfile`, not `/repo/deploy/../deploy/...`.
    let context = dir.join(context);
    let context = context.canonicalize().unwrap_or(context);
    Some(Build {
        dockerfile: context.join(dockerfile),
        context,
        target,
    })
}

/// A service's `environment`, in its map or `NAME=value` list form.
pub(crate) fn environment(service: &Value) -> BTreeMap<String, String> {
    match &service["environment"] {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect(),
        Value::Array(list) => list
            .iter()
            .filter_map(Value::as_str)
            .map(|item| match item.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (item.to_owned(), String::new()),
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// A health check's command in exec form (`["CMD", program, args...]`), without `CMD`.
pub(crate) fn health_command(name: &str, service: &Value) -> Vec<String> {
    let test = service["healthcheck"]["test"]
        .as_array()
        .unwrap_or_else(|| panic!("service {name}: a healthcheck.test in exec form (a list)"));
    let words: Vec<String> = test
        .iter()
        .map(|w| w.as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        words.first().map(String::as_str),
        Some("CMD"),
        "service {name}: the health check runs a program directly (CMD): the images have no shell"
    );
    words[1..].to_vec()
}

/// A service's mounts as (source, target): the short `src:dst[:mode]` or the long form.
pub(crate) fn volumes(service: &Value) -> Vec<(String, String)> {
    service["volumes"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .filter_map(|v| match v {
                    Value::String(s) => {
                        let mut parts = s.split(':');
                        Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
                    }
                    _ => Some((
                        v["source"].as_str()?.to_owned(),
                        v["target"].as_str()?.to_owned(),
                    )),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A bind mount's source is a path; anything else names a volume.
pub(crate) fn is_bind_source(source: &str) -> bool {
    source.starts_with('.') || source.starts_with('/') || source.starts_with('~')
}

/// The folder the `keys` step fills on the host (`./keys`, beside compose.yaml): mounts and
/// secrets under it exist once that step ran, not in the repository.
pub(crate) const KEYS_DIR: &str = "./keys";

/// Whether a bind source is made by the `keys` step.
pub(crate) fn made_by_keys_step(source: &str) -> bool {
    source == KEYS_DIR || source.starts_with(&format!("{KEYS_DIR}/"))
}

impl Compose {
    /// The top-level secrets: name → file (relative to compose.yaml's folder).
    pub(crate) fn secret_files(&self) -> BTreeMap<String, String> {
        self.project["secrets"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v["file"].as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A service's secrets as (source, path inside the container).
pub(crate) fn secrets(service: &Value) -> Vec<(String, String)> {
    service["secrets"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some((s.clone(), format!("/run/secrets/{s}"))),
                    _ => {
                        let source = v["source"].as_str()?.to_owned();
                        let target = v["target"].as_str().unwrap_or(&source);
                        let target = if target.starts_with('/') {
                            target.to_owned()
                        } else {
                            format!("/run/secrets/{target}")
                        };
                        Some((source, target))
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}
