//! `--health-check`: does an instance of this service answer? Container health checks
//! (`deploy/compose.yaml`) run the service's own binary with this flag, because the images
//! have no shell, curl or `nats` CLI to ask with.
//!
//! The check is a NATS micro ping, `$SRV.PING.<micro name>`: an instance subscribes to it
//! only once it has loaded its state and serves requests, so an answer means "ready". Any
//! instance may answer, so the check says the service is reachable through this NATS, not
//! that the instance in the same container is.

use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use guild_wire::subject::Service;

/// How long connecting, and then waiting for an answer, may each take: together well
/// inside the compose health check's `timeout`, so a failed check prints its reason
/// instead of being killed.
pub const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a health check failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Unhealthy {
    /// No NATS server at the URL(s) accepted a connection, or it refused the credentials.
    #[error("{reason}")]
    Connect {
        /// Why, naming the URL(s) tried.
        reason: String,
    },
    /// NATS is up but no instance of the service is subscribed to its ping.
    #[error("no instance of {service} is running (no responders on {subject})")]
    NoInstance {
        /// The micro service name.
        service: &'static str,
        /// The ping subject.
        subject: String,
    },
    /// Instances may exist but none answered in time.
    #[error("no instance of {service} answered {subject} within {timeout:?}")]
    TimedOut {
        /// The micro service name.
        service: &'static str,
        /// The ping subject.
        subject: String,
        /// How long the check waited.
        timeout: Duration,
    },
    /// The ping request failed for another reason.
    #[error("pinging {subject} failed")]
    Request {
        /// The ping subject.
        subject: String,
        /// Why.
        #[source]
        source: async_nats::RequestError,
    },
    /// Something answered that is not the service's ping response.
    #[error("the answer on {subject} is not a ping response from {service}")]
    NotAPing {
        /// The micro service name.
        service: &'static str,
        /// The ping subject.
        subject: String,
    },
}

/// Pings `service` through the NATS server(s) of `nats` (with the service's own
/// credentials) and returns the id of the instance that answered first.
pub async fn health_check(
    nats: &guild_sdk::NatsOptions,
    service: Service,
    timeout: Duration,
) -> Result<String, Unhealthy> {
    // No retry on the first connect: a health check reports the state it finds now.
    let mut nats = nats.clone();
    nats.retry_initial_connect = false;
    let connected = tokio::time::timeout(
        timeout,
        nats.connect(&format!("{} health check", service.micro_name())),
    )
    .await;
    let client = match connected {
        Ok(Ok(c)) => c.client,
        Ok(Err(e)) => {
            return Err(Unhealthy::Connect {
                reason: e.to_string(),
            });
        }
        Err(_) => {
            return Err(Unhealthy::Connect {
                reason: format!("cannot connect to NATS at {} within {timeout:?}", nats.url),
            });
        }
    };
    let service_name = service.micro_name();
    let subject = guild_wire::subject::discovery("PING", Some(service));
    let reply = tokio::time::timeout(timeout, client.request(subject.clone(), Bytes::new()))
        .await
        .map_err(|_| Unhealthy::TimedOut {
            service: service_name,
            subject: subject.clone(),
            timeout,
        })?
        .map_err(|source| match source.kind() {
            async_nats::RequestErrorKind::NoResponders => Unhealthy::NoInstance {
                service: service_name,
                subject: subject.clone(),
            },
            async_nats::RequestErrorKind::TimedOut => Unhealthy::TimedOut {
                service: service_name,
                subject: subject.clone(),
                timeout,
            },
            _ => Unhealthy::Request {
                subject: subject.clone(),
                source,
            },
        })?;
    let ping: serde_json::Value =
        serde_json::from_slice(&reply.payload).map_err(|_| Unhealthy::NotAPing {
            service: service_name,
            subject: subject.clone(),
        })?;
    if ping.get("name").and_then(|n| n.as_str()) != Some(service_name) {
        return Err(Unhealthy::NotAPing {
            service: service_name,
            subject,
        });
    }
    let id = ping.get("id").and_then(|i| i.as_str()).unwrap_or("?");
    Ok(id.to_owned())
}

/// The service a binary serves: `spawner-svc` serves `guild-spawner`, and so on (the
/// binaries are named `<subject token>-svc`).
pub(crate) fn service_of(binary: &str) -> Option<Service> {
    let token = binary.strip_suffix("-svc")?;
    Service::ALL.into_iter().find(|s| s.token() == token)
}

/// `<binary> --health-check`: 0 when an instance answered, 1 when none did; one line on
/// stderr either way.
pub(crate) fn run(binary: &str, service: Service, nats: &guild_sdk::NatsOptions) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{binary}: --health-check: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(health_check(nats, service, HEALTH_CHECK_TIMEOUT)) {
        Ok(id) => {
            // stderr like every other word a service says; `docker inspect` shows it.
            eprintln!(
                "{binary}: healthy: instance {id} of {} answered",
                service.micro_name()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{binary}: unhealthy: {}", with_causes(&e));
            ExitCode::FAILURE
        }
    }
}

/// `error: cause: cause's cause`, so the one line a health check leaves says everything.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        // Some errors (async-nats') already print their cause; say it once.
        let said = c.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_binary_pings_its_own_micro_service() {
        assert_eq!(service_of("spawner-svc"), Some(Service::Spawner));
        assert_eq!(service_of("bus-svc"), Some(Service::Bus));
        assert_eq!(service_of("mission-svc"), Some(Service::Mission));
        assert_eq!(service_of("guild"), None);
        assert_eq!(service_of("spawner"), None);
    }

    #[tokio::test]
    async fn no_server_is_a_connect_failure_that_names_the_url() {
        // Port 1 is privileged and unused on a test machine: the connection is refused.
        let url = "nats://127.0.0.1:1";
        let nats = guild_sdk::NatsOptions::url(url);
        let e = health_check(&nats, Service::Bus, Duration::from_millis(500))
            .await
            .expect_err("nothing listens on port 1");
        assert!(matches!(e, Unhealthy::Connect { .. }), "{e:?}");
        assert!(with_causes(&e).contains(url), "{}", with_causes(&e));
    }
}
