//! The docker compose deployment (`deploy/`), checked here, where no Docker engine runs:
//!
//! * `deploy/compose.yaml` validates against the Compose schema (a copy in
//!   `deploy/schema/`), and has the parts the deployment promises;
//! * every build context, Dockerfile, target and mounted file it names exists;
//! * every Dockerfile's final stage, and every target compose builds, runs as a non-root
//!   user;
//! * every environment variable it sets for a Guild service is one the binary reads (its
//!   `--help` names it), and every variable a user may set is documented;
//! * the NATS configurations pass `nats-server -t` and have the audit log's durability
//!   settings (`sync_interval: always`, JetStream on a named volume);
//! * the OpenTelemetry Collector's pipelines use only components it defines, send traces
//!   to Jaeger and serve metrics;
//! * every health check command passes against the real thing started here: NATS's
//!   against a test-kit nats-server, each service's (the service's own binary with
//!   `--health-check`) against the service started from its compose environment, and the
//!   latter fails while no instance runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod compose;
mod dockerfile;
mod local;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use compose::{
    Compose, GUILD_BINARIES, build_of, environment, health_command, is_bind_source,
    made_by_keys_step, secrets, volumes,
};
use guild_testkit::{
    NatsServer, ServerOptions, eventually_async, nats_server_bin, workspace_binary,
};
use serde_json::Value;

#[test]
fn the_compose_file_is_valid_and_has_every_part() {
    let compose = compose::load();
    let built: BTreeSet<&str> = compose
        .guild_services()
        .iter()
        .map(|(_, binary, _)| *binary)
        .collect();
    assert_eq!(
        built,
        BTreeSet::from(GUILD_BINARIES),
        "one service per binary"
    );
    let names: BTreeSet<&str> = compose.services().map(|(name, _)| name).collect();
    for (name, binary, s) in compose.guild_services() {
        let env = environment(s);
        assert_eq!(
            env.get("OTEL_SERVICE_NAME").map(String::as_str),
            Some(binary)
        );
        let otlp = env
            .get("OTEL_EXPORTER_OTLP_ENDPOINT")
            .unwrap_or_else(|| panic!("{name} exports traces"));
        let host = otlp
            .trim_start_matches("http://")
            .split(':')
            .next()
            .unwrap_or_default();
        assert!(
            names.contains(host),
            "{name} exports to a compose service, not {otlp}"
        );
        let nats = &s["depends_on"]["nats"]["condition"];
        assert_eq!(nats, "service_healthy", "{name} waits for NATS");
    }
    let jaeger = compose
        .service_with_image("jaegertracing/")
        .expect("a Jaeger service");
    assert!(
        jaeger.1["ports"].to_string().contains("16686:16686"),
        "the Jaeger UI is published"
    );
    let cluster: Vec<&str> = compose
        .nats_services()
        .into_iter()
        .filter(|(_, s)| s["profiles"].to_string().contains("\"cluster\""))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        cluster.len(),
        3,
        "the cluster profile has three nodes: {cluster:?}"
    );
}

#[test]
fn every_build_context_dockerfile_and_mounted_file_exists() {
    let compose = compose::load();
    let named = compose.named_volumes();
    for (name, s) in compose.services() {
        if let Some(build) = build_of(&compose.dir, s) {
            assert!(
                build.context.is_dir(),
                "{name}: {}",
                build.context.display()
            );
            let text = read(&build.dockerfile);
            if let Some(target) = &build.target {
                let stages = dockerfile::stages(&text);
                assert!(
                    stages.iter().any(|st| st.name.as_ref() == Some(target)),
                    "{name}: {} has no stage {target}",
                    build.dockerfile.display()
                );
            }
            if build.context.join("Cargo.toml").is_file() {
                // A workspace context: without these exclusions the build would send the
                // whole target directory to the builder.
                let ignore = read(&build.context.join(".dockerignore"));
                let lines: Vec<&str> = ignore.lines().map(str::trim).collect();
                for must in ["target", ".git", ".tools"] {
                    assert!(lines.contains(&must), ".dockerignore excludes {must}");
                }
            }
        }
        for (source, target) in volumes(s) {
            if made_by_keys_step(&source) {
                // Made by the `keys` step before anything that mounts it starts.
                continue;
            }
            if is_bind_source(&source) {
                let path = compose.dir.join(&source);
                assert!(path.exists(), "{name}: {source} (for {target}) is missing");
            } else {
                assert!(
                    named.contains(&source.as_str()),
                    "{name}: volume {source} is declared"
                );
            }
        }
    }
}

#[test]
fn every_image_runs_as_a_non_root_user() {
    let compose = compose::load();
    let mut targets: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    for (_, s) in compose.services() {
        if let Some(build) = build_of(&compose.dir, s) {
            let entry = targets.entry(build.dockerfile).or_default();
            entry.extend(build.target);
        }
    }
    assert!(!targets.is_empty(), "compose builds something");
    for (file, targets) in targets {
        let stages = dockerfile::stages(&read(&file));
        let last = stages.len().checked_sub(1).expect("at least one stage");
        let mut indexes = vec![last];
        for t in &targets {
            let at = stages.iter().position(|s| s.name.as_ref() == Some(t));
            indexes.push(at.unwrap_or_else(|| panic!("{}: no stage {t}", file.display())));
        }
        for i in indexes {
            let user = dockerfile::effective_user(&stages, i);
            assert!(
                user.is_some_and(dockerfile::is_non_root),
                "{}: stage {:?} runs as {user:?}: it needs a non-root USER",
                file.display(),
                stages[i].name.as_deref().unwrap_or(&stages[i].base)
            );
        }
    }
}

#[test]
fn the_services_read_every_variable_compose_sets() {
    let compose = compose::load();
    let mut unread = Vec::new();
    for (name, binary, s) in compose.guild_services() {
        let help = Command::new(workspace_binary(binary))
            .arg("--help")
            .env_clear()
            .output()
            .expect("run --help");
        assert!(help.status.success(), "{binary} --help");
        let text = String::from_utf8_lossy(&help.stdout);
        for var in environment(s).keys() {
            if !local::mentions(&text, var) {
                unread.push(format!("{name} ({binary}): {var}"));
            }
        }
    }
    assert!(
        unread.is_empty(),
        "compose.yaml sets variables the binaries' --help does not mention:\n  {}",
        unread.join("\n  ")
    );
}

#[test]
fn every_variable_a_user_can_set_is_documented() {
    let compose = compose::load();
    assert!(!compose.variables.is_empty(), "compose.yaml takes settings");
    let readme = read(&compose.dir.join("README.md"));
    for var in &compose.variables {
        assert!(
            local::mentions(&readme, var),
            "deploy/README.md documents {var}"
        );
    }
}

#[test]
fn nats_runs_with_the_durability_settings_the_audit_log_needs() {
    let compose = compose::load();
    let named = compose.named_volumes();
    let nats = compose.nats_services();
    assert!(!nats.is_empty(), "compose runs NATS");
    for (name, s) in nats {
        let image = s["image"].as_str().unwrap_or_default();
        assert!(
            version_at_least(image, (2, 12)),
            "{name}: {image} is 2.12 or newer"
        );
        let config = config_file(&compose, name, s);
        let text = read(&config);
        assert_eq!(
            conf_value(&text, "sync_interval").as_deref(),
            Some("always"),
            "{name}"
        );
        let store = conf_value(&text, "store_dir").expect("a JetStream store_dir");
        let on_volume = volumes(s).into_iter().any(|(source, target)| {
            named.contains(&source.as_str()) && Path::new(&store).starts_with(&target)
        });
        assert!(on_volume, "{name}: store_dir {store} is on a named volume");

        let check = health_command(name, s);
        let url = check
            .iter()
            .find(|w| w.starts_with("http://"))
            .expect("a URL");
        let (port, path) = local::port_and_path(url).expect("http://host:port/path");
        assert_eq!(
            Some(port.to_string()),
            conf_value(&text, "http_port"),
            "{name}"
        );
        assert!(path.starts_with("/healthz"), "{name} checks {path}");
        if check[0] == "wget" {
            assert!(
                image.contains("alpine"),
                "{name}: only the alpine images have wget"
            );
        }

        // Checked as the container sees it: the configuration beside the authentication
        // fragment the `keys` step makes (nats-auth.conf, in the folder mounted at guild/).
        assert!(
            text.contains("include \"guild/nats-auth.conf\""),
            "{name}: the configuration includes Guild's authentication"
        );
        let mounted = volumes(s)
            .into_iter()
            .any(|(source, target)| source == "./keys/keys" && target == "/etc/nats/guild");
        assert!(
            mounted,
            "{name}: the keys folder is mounted where the include looks"
        );
        let here = tempfile::tempdir().unwrap();
        let layout = guild_auth::Layout::under(&here.path().join("keys"));
        guild_auth::init(&layout, &here.path().join("jwt"), Default::default()).unwrap();
        std::fs::create_dir_all(here.path().join("etc")).unwrap();
        std::fs::copy(&config, here.path().join("etc/nats.conf")).unwrap();
        std::os::unix::fs::symlink(&layout.keys, here.path().join("etc/guild")).unwrap();
        let out = Command::new(nats_server_bin())
            .arg("-t")
            .arg("-c")
            .arg(here.path().join("etc/nats.conf"))
            .env_clear()
            .envs(environment(s))
            .output()
            .expect("run nats-server -t");
        assert!(
            out.status.success(),
            "{name}: {} is not a valid configuration: {}",
            config.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_services_get_their_keys_as_secrets_and_nothing_runs_insecure() {
    let compose = compose::load();
    let files = compose.secret_files();
    // The keys step: the guild CLI's `admin init` into the host folder the secrets come from.
    let (_, keys) = compose
        .services()
        .find(|(name, _)| *name == "keys")
        .expect("a keys step");
    let command: Vec<&str> = keys["command"]
        .as_array()
        .expect("its command")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(&command[..2], ["admin", "init"], "{command:?}");
    assert!(
        volumes(keys)
            .iter()
            .any(|(source, _)| source == compose::KEYS_DIR)
    );
    for file in files.values() {
        assert!(made_by_keys_step(file), "{file} comes from the keys step");
    }
    for (name, binary, s) in compose.guild_services() {
        assert_eq!(s["read_only"], true, "{name} runs read-only");
        assert_eq!(
            s["depends_on"]["keys"]["condition"], "service_completed_successfully",
            "{name} waits for its keys"
        );
        let env = environment(s);
        let mounted = secrets(s);
        let creds = env
            .get("NATS_CREDS")
            .unwrap_or_else(|| panic!("{name} has credentials"));
        let (source, _) = mounted
            .iter()
            .find(|(_, target)| target == creds)
            .unwrap_or_else(|| panic!("{name}: NATS_CREDS={creds} is one of its secrets"));
        let service = binary.trim_end_matches("-svc");
        assert_eq!(
            files.get(source).map(String::as_str),
            Some(format!("./keys/keys/{binary}.creds").as_str()),
            "{name} gets {service}'s own credentials"
        );
        if binary == "spawner-svc" {
            for var in ["GUILD_CUSTODIAN", "GUILD_SYSTEM_CREDS"] {
                let path = env.get(var).unwrap_or_else(|| panic!("{name} sets {var}"));
                assert!(mounted.iter().any(|(_, t)| t == path), "{var} is a secret");
            }
        } else {
            // Only the custodian holds the signing keys.
            assert_eq!(mounted.len(), 1, "{name} gets its own credentials only");
        }
    }
    // No insecure mode anywhere in the deployment.
    let text = read(&compose.dir.join("compose.yaml"));
    assert!(
        !text.contains("--insecure"),
        "compose.yaml runs something insecure"
    );
}

#[test]
fn the_collector_sends_traces_to_jaeger_and_serves_metrics() {
    let compose = compose::load();
    let (name, collector) = compose
        .service_with_image("otel/opentelemetry-collector")
        .expect("a collector service");
    let (source, _) = volumes(collector)
        .into_iter()
        .find(|(source, target)| is_bind_source(source) && target.ends_with(".yaml"))
        .unwrap_or_else(|| panic!("{name} mounts its configuration from deploy/"));
    let config = compose::load_yaml(&compose.dir.join(source));
    let pipelines = config["service"]["pipelines"]
        .as_object()
        .expect("pipelines");
    for (pipeline, p) in pipelines {
        for kind in ["receivers", "processors", "exporters"] {
            for component in p[kind].as_array().into_iter().flatten() {
                let component = component.as_str().unwrap_or_default();
                assert!(
                    config[kind].get(component).is_some(),
                    "pipeline {pipeline} uses {component}, which {kind} does not define"
                );
            }
        }
    }
    let traces = pipelines["traces"]["exporters"][0]
        .as_str()
        .expect("a traces exporter");
    let endpoint = config["exporters"][traces]["endpoint"]
        .as_str()
        .unwrap_or_default();
    let jaeger = compose
        .service_with_image("jaegertracing/")
        .expect("a Jaeger service")
        .0;
    assert!(
        endpoint.starts_with(&format!("{jaeger}:")),
        "traces go to {jaeger}, not {endpoint}"
    );
    assert!(
        pipelines.contains_key("metrics"),
        "the services' metrics have somewhere to go"
    );
}

#[test]
fn the_nats_health_check_passes_against_a_real_server() {
    let compose = compose::load();
    let server = NatsServer::start_with(ServerOptions {
        sync_always: true,
        monitoring: true,
        ..Default::default()
    });
    let monitoring = server.monitoring_url().expect("monitoring is on");
    let (port, _) = local::port_and_path(&monitoring).expect("a port");
    for (name, s) in compose.nats_services() {
        let check = health_command(name, s);
        let url = check
            .iter()
            .find(|w| w.starts_with("http://"))
            .expect("a URL");
        let (_, path) = local::port_and_path(url).expect("a path");
        let (status, body) = local::http_get(port, &path);
        assert_eq!(status, 200, "{name}: GET {path}: {body}");
        assert!(body.contains("ok"), "{body}");
    }
    // The check can fail: a path the server does not serve is not 200.
    assert_ne!(local::http_get(port, "/no-such-page").0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn each_service_health_check_passes_only_while_an_instance_runs() {
    let compose = compose::load();
    let server = NatsServer::start();
    let logs = tempfile::tempdir().unwrap();
    let mut checks = Vec::new();
    for (name, binary, s) in compose.guild_services() {
        let command = health_command(name, s);
        let program = Path::new(&command[0]).file_name().and_then(|f| f.to_str());
        assert_eq!(
            program,
            Some(binary),
            "{name} checks itself with its own binary"
        );
        let keys_root = server
            .layout()
            .and_then(|l| l.keys.parent().map(Path::to_path_buf))
            .expect("a server with Guild's keys");
        let env = local::local_env(
            &environment(s),
            &server.url(),
            &secrets(s),
            &compose.secret_files(),
            &keys_root,
        );
        checks.push((binary, command, env));
    }

    for (binary, command, env) in &checks {
        let out = health_check(command, env).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{binary} with nothing running: {stderr}"
        );
        let micro = format!("guild-{}", binary.trim_end_matches("-svc"));
        assert!(
            stderr.contains(&format!("no instance of {micro}")),
            "{stderr}"
        );
    }

    let mut running = Vec::new();
    for (binary, _, env) in &checks {
        let log_path = logs.path().join(format!("{binary}.log"));
        let child = tokio::process::Command::new(workspace_binary(binary))
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        running.push((child, log_path));
    }
    for ((binary, command, env), (child, log)) in checks.iter().zip(&mut running) {
        until_healthy(binary, command, env, child, log).await;
    }

    for (child, _) in &mut running {
        child.kill().await.unwrap();
    }
    for (binary, command, env) in &checks {
        eventually_async(
            &format!("{binary}'s health check to fail once it stopped"),
            Duration::from_secs(30),
            || async move { (health_check(command, env).await.status.code() == Some(1)).then_some(()) },
        )
        .await;
    }
}

/// Runs a compose health check command here: the workspace's binary in place of the
/// image's, with the same arguments.
async fn health_check(command: &[String], env: &BTreeMap<String, String>) -> Output {
    let program = Path::new(&command[0]).file_name().and_then(|f| f.to_str());
    tokio::process::Command::new(workspace_binary(program.unwrap_or_default()))
        .args(&command[1..])
        .env_clear()
        .envs(env)
        .output()
        .await
        .unwrap()
}

/// Waits (bounded) for `command` to pass, failing early with the service's log if the
/// service exits.
async fn until_healthy(
    binary: &str,
    command: &[String],
    env: &BTreeMap<String, String>,
    child: &mut tokio::process::Child,
    log: &Path,
) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let out = health_check(command, env).await;
        if out.status.success() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{binary} exited with {status}; its log:\n{}", read(log));
        }
        assert!(
            Instant::now() < deadline,
            "{binary} --health-check still fails after 90 s: {}\nthe service's log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            read(log)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The configuration file a NATS service runs with (`--config`/`-c`), on this machine.
fn config_file(compose: &Compose, name: &str, s: &Value) -> PathBuf {
    let command: Vec<&str> = s["command"]
        .as_array()
        .map(|c| c.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let in_container = command
        .windows(2)
        .find(|w| w[0] == "--config" || w[0] == "-c")
        .map(|w| w[1])
        .unwrap_or_else(|| panic!("{name} runs nats-server with --config"));
    let (source, _) = volumes(s)
        .into_iter()
        .find(|(_, target)| target == in_container)
        .unwrap_or_else(|| panic!("{name}: {in_container} is mounted from deploy/"));
    compose.dir.join(source)
}

/// `key: value` in a NATS configuration (the first one, at any depth), unquoted.
fn conf_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line.trim().strip_prefix(key)?.trim_start();
        let value = rest.strip_prefix(':').or_else(|| rest.strip_prefix('='))?;
        Some(value.trim().trim_matches('"').to_owned())
    })
}

/// Whether `nats:<major>.<minor>[...]` is at least `min`.
fn version_at_least(image: &str, min: (u32, u32)) -> bool {
    let tag = image.split_once(':').map(|(_, t)| t).unwrap_or_default();
    let mut parts = tag.split(['.', '-']).map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= min,
        _ => false,
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[test]
fn nats_versions_compare_by_number() {
    assert!(version_at_least("nats:2.12-alpine", (2, 12)));
    assert!(version_at_least("nats:2.15.1-alpine", (2, 12)));
    assert!(!version_at_least("nats:2.9.10", (2, 12)));
    assert!(!version_at_least("nats:latest", (2, 12)));
}
