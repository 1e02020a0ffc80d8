//! A service's operations as NATS micro endpoints.
//!
//! Each operation of the service's `OPS` table becomes an endpoint `<op>.*` in the group
//! `guild.<service>.v1`, in the service's queue group, so every instance shares the load and
//! `$SRV.INFO` lists exactly the operations. `recover` is answered here, from the
//! service's storage; every other operation goes to the service's generated router
//! (`guild_wire::api::Router`: decode, call its handler method, encode). Requests are
//! handled concurrently (up to `--max-in-flight` per instance, waiting consumers
//! included). On shutdown the endpoints stop taking requests and the ones in flight
//! finish before `serve` returns.
//!
//! Each request is handled in a SERVER span `process guild.<service>.v1.<op>.{principal}`
//! whose parent is the caller's span, read from the request's `traceparent` header; the
//! handler's own spans (journal append, messages created, audit entries, calls to other
//! services) are its children. Without an exporter the span is disabled.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::service::ServiceExt;
use async_nats::{HeaderMap, HeaderValue};
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use guild_domain::Principal;
use guild_telemetry::trace::{self, SpanExt};
use guild_wire::api::{RECOVER, Router, operations_of, unknown_operation};
use guild_wire::subject::{Service, endpoint};
use guild_wire::{ErrorBody, ErrorReply, header, payload};
use tokio::sync::Semaphore;

use tracing::Instrument;

use crate::lost::Storage;

/// The body rules, kept in `guild_wire::body` where the generated routers apply them.
pub use guild_wire::body::{MAX_DEPTH, decode};

/// Serves the operations of `router`'s service until `shutdown` resolves.
pub async fn serve<R: Router>(
    client: async_nats::Client,
    description: &str,
    router: Arc<R>,
    storage: Arc<dyn Storage>,
    options: &crate::CommonOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), async_nats::Error> {
    let service = R::SERVICE;
    let max_in_flight = options.max_in_flight;
    let limits = Limits {
        request: options.max_payload,
        reply: client.server_info().max_payload,
        bound_replies: !options.insecure,
    };
    let quota = Arc::new(crate::quota::Quota::new(options.max_requests_per_second));
    let in_flight = Arc::new(Semaphore::new(max_in_flight));
    // Whenever what is lost changes, the service registers again: its `$SRV.INFO`
    // metadata says `degraded` (and what is missing) or `ok`.
    let mut changes = futures_util::stream::select_all(
        storage
            .watch()
            .into_iter()
            .map(changes_of)
            .collect::<Vec<_>>(),
    );
    tokio::pin!(shutdown);
    'serving: loop {
        let lost = storage.lost();
        let (svc, mut requests) = register(&client, service, description, &lost).await?;
        tracing::info!(
            service = service.micro_name(),
            degraded = !lost.is_empty(),
            "serving"
        );
        loop {
            let request = tokio::select! {
                () = &mut shutdown => {
                    svc.stop().await?;
                    break 'serving;
                }
                Some(()) = changes.next() => {
                    if storage.lost() != lost {
                        svc.stop().await?;
                        continue 'serving;
                    }
                    continue;
                }
                next = requests.next() => match next {
                    Some(r) => r,
                    None => {
                        svc.stop().await?;
                        break 'serving;
                    }
                },
            };
            let Ok(permit) = in_flight.clone().acquire_owned().await else {
                break 'serving;
            };
            let router = router.clone();
            let quota = quota.clone();
            let storage = storage.clone();
            tokio::spawn(async move {
                answer(router.as_ref(), storage.as_ref(), &quota, request, limits).await;
                drop(permit);
            });
        }
    }
    // Every permit back means every request in flight has been answered.
    let drained = tokio::time::timeout(
        Duration::from_secs(30),
        in_flight.acquire_many(max_in_flight as u32),
    )
    .await;
    if drained.is_err() {
        tracing::warn!(
            service = service.micro_name(),
            "requests still running after 30 s at shutdown"
        );
    }
    tracing::info!(service = service.micro_name(), "stopped");
    Ok(())
}

/// Registers the NATS micro service with its endpoints, its metadata saying its state.
async fn register(
    client: &async_nats::Client,
    service: Service,
    description: &str,
    lost: &[guild_store::Lost],
) -> Result<
    (
        async_nats::service::Service,
        futures_util::stream::SelectAll<async_nats::service::endpoint::Endpoint>,
    ),
    async_nats::Error,
> {
    let svc = client
        .service_builder()
        .description(description)
        .queue_group(service.queue_group())
        .metadata(crate::lost::metadata(lost))
        .start(service.micro_name(), env!("CARGO_PKG_VERSION"))
        .await?;
    let group = svc.group(guild_wire::subject::group(service));
    let mut endpoints = Vec::new();
    for op in operations_of(service) {
        endpoints.push(
            group
                .endpoint_builder()
                .name(op.name)
                .add(endpoint(op.name))
                .await?,
        );
    }
    Ok((svc, futures_util::stream::select_all(endpoints)))
}

/// A watch receiver as a stream of "it changed".
fn changes_of(
    rx: tokio::sync::watch::Receiver<Vec<guild_store::Lost>>,
) -> std::pin::Pin<Box<dyn futures_util::Stream<Item = ()> + Send>> {
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.changed().await.ok().map(|()| ((), rx))
    }))
}

/// The largest request a service takes (Guild's wire limit) and the largest reply it can
/// send (nats-server's), and whether replies are bound to the caller's inbox.
#[derive(Clone, Copy)]
struct Limits {
    request: usize,
    reply: usize,
    /// With authentication: see [`reply_allowed`].
    bound_replies: bool,
}

/// Whether a service may answer `by` on `reply`. nats-server checks what a client
/// publishes on, never the reply subject it names, and a service answers with its own
/// rights (its journal, its events, its audit kinds): so an answer goes only where the
/// caller could receive it itself, its own reply-inbox prefix, or to a service (which
/// calls on behalf of an agent from its own inbox, and drops replies it did not ask for).
pub fn reply_allowed(by: &Principal, reply: &str) -> bool {
    let own = format!("{}.", guild_wire::subject::inbox_prefix(by));
    let services = format!("{}.", guild_wire::subject::SERVICE_INBOXES);
    reply.starts_with(&own) || reply.starts_with(&services)
}

async fn answer<R: Router>(
    router: &R,
    storage: &dyn Storage,
    quota: &crate::quota::Quota,
    request: async_nats::service::Request,
    limits: Limits,
) {
    let service = R::SERVICE;
    let message = &request.message;
    if limits.bound_replies {
        let reply = message.reply.as_ref().map_or("", |r| r.as_str());
        let caller = guild_wire::subject::principal_token(message.subject.as_str())
            .and_then(|t| Principal::from_token(t).ok());
        if !caller.is_some_and(|by| reply_allowed(&by, reply)) {
            // Not answered, not handled: the caller named a reply subject it could not
            // receive on itself, to have this service publish there with its rights.
            tracing::warn!(subject = %message.subject, reply, "a request whose reply subject is not the caller's own is dropped");
            return;
        }
    }
    // The handling span: SERVER, a child of the caller's span (its `traceparent`).
    let span = trace::server(
        message.subject.as_str(),
        service.queue_group(),
        message.headers.as_ref(),
    );
    span.attr("messaging.message.body.size", message.payload.len() as u64);
    let result = async {
        let subject = message.subject.as_str();
        // guild.<service>.v1.<op>.<principal>
        let mut tokens = subject.split('.').skip(3);
        let (Some(op_token), Some(by_token), None) = (tokens.next(), tokens.next(), tokens.next())
        else {
            return Err(ErrorBody::new(
                guild_wire::ErrorCode::BadRequest,
                "bad_subject",
                format!("{subject} is not guild.<service>.v1.<op>.<principal>"),
            ));
        };
        let info = operations_of(service)
            .iter()
            .find(|o| o.name == op_token)
            .ok_or_else(|| unknown_operation(service, op_token))?;
        let op = info.name;
        let by = Principal::from_token(by_token)
            .map_err(|r| ErrorBody::from(&r).with_field("subject"))?;
        // The broker already keeps the observer to the read operations; this says why.
        by.may_call(op, info.read_only)
            .map_err(|r| ErrorBody::from(&r))?;
        quota.admit(&by, std::time::Instant::now())?;
        span.attr("guild.op", op);
        span.attr("guild.principal", by.token());
        payload::check_size(message.payload.len(), limits.request)?;
        let reply = if op == RECOVER {
            // Every service's, answered by the runtime that holds its storage.
            let request: guild_wire::api::Recover = decode(&message.payload)?;
            guild_wire::body::encode(&storage.recover(&by, request).await?)?
        } else {
            // A handler that panics is a defect, but its caller still gets an answer
            // (500 `internal`, logged with the panic) instead of waiting out its timeout.
            std::panic::AssertUnwindSafe(router.route(op, by, &message.payload))
                .catch_unwind()
                .await
                .map_err(|panic| handler_panicked(service, op, panic.as_ref()))??
        };
        payload::check_reply_size(reply.len(), limits.reply)?;
        Ok(reply)
    }
    .instrument(span.clone())
    .await;
    let sent = match result {
        Ok(body) => request.respond(Ok(Bytes::from(body))).await,
        Err(error) => {
            span.attr("error.type", error.rule.as_str());
            if matches!(
                error.code,
                guild_wire::ErrorCode::Internal | guild_wire::ErrorCode::Unavailable
            ) {
                span.fail(&error.message);
            }
            if error.code == guild_wire::ErrorCode::Internal {
                tracing::error!(subject = %message.subject, error = %error, "request failed");
            } else {
                tracing::debug!(subject = %message.subject, error = %error, "request refused");
            }
            let mut headers = HeaderMap::new();
            // Header values cannot hold line breaks.
            let text: String = error
                .message
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            headers.insert(header::SERVICE_ERROR, HeaderValue::from(text.as_str()));
            headers.insert(
                header::SERVICE_ERROR_CODE,
                error.code.status().to_string().as_str(),
            );
            let body = serde_json::to_vec(&ErrorReply { error }).unwrap_or_default();
            request
                .respond_with_headers(Ok(Bytes::from(body)), headers)
                .await
        }
    };
    if let Err(e) = sent {
        tracing::warn!(error = %e, "could not send a reply");
    }
}

/// The answer to a request whose handler panicked: `internal`, naming the operation; the
/// panic's message goes to the log (and the span), not to the caller.
fn handler_panicked(service: Service, op: &str, panic: &(dyn std::any::Any + Send)) -> ErrorBody {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into());
    tracing::error!(service = service.micro_name(), op, panic = %what, "a handler panicked");
    ErrorBody::internal(format!(
        "{}.{op} failed inside the service (a defect, logged); the request may be retried",
        service.micro_name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_goes_only_to_the_callers_own_inbox_or_a_service() {
        let a = Principal::from_token("a").unwrap_or(Principal::Operator);
        assert!(reply_allowed(&a, "_INBOX.agent.a.x1"));
        assert!(reply_allowed(&a, "_INBOX.service.mission.x1"));
        assert!(reply_allowed(&Principal::Operator, "_INBOX.operator.x1"));
        for wrong in [
            "_INBOX.agent.b.x1",
            "_INBOX.agent.ab.x1",
            "_INBOX.x1",
            "guild.inbox.b.critical",
            "guild.journal.bus",
            "guild.audit.spawn.ghost",
            "$KV.guild_bus_journal.snapshot",
            "",
        ] {
            assert!(!reply_allowed(&a, wrong), "{wrong}");
        }
        assert!(!reply_allowed(&Principal::Observer, "_INBOX.operator.x1"));
    }
}
