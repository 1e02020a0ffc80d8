//! A service's operations as NATS micro endpoints.
//!
//! Each operation of the service's `OPS` table becomes an endpoint `<op>.*` in the group
//! `guild.<service>.v1`, in the service's queue group, so every instance shares the load and
//! `$SRV.INFO` lists exactly the operations. Requests are handled concurrently (up to
//! `--max-in-flight` per instance, waiting consumers included). On shutdown the endpoints
//! stop taking requests and the ones in flight finish before `serve` returns.
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
use futures_util::StreamExt;
use guild_domain::Principal;
use guild_telemetry::trace::{self, SpanExt};
use guild_wire::api::operations_of;
use guild_wire::subject::{Service, endpoint};
use guild_wire::{ErrorBody, ErrorReply, header, payload};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;

use crate::lost::Storage;

/// The operation every service serves through the runtime (`recover`).
struct Recover;
impl Recover {
    const NAME: &'static str = "recover";
}
use tracing::Instrument;

/// One decoded request.
#[derive(Debug)]
pub struct Request {
    /// The operation's name.
    pub op: &'static str,
    /// Who asked (the subject's last token).
    pub by: Principal,
    /// The body.
    pub body: Bytes,
    /// Its headers (trace context).
    pub headers: Option<HeaderMap>,
}

/// What a service does with a request: a reply body, or an error.
pub trait Handler: Send + Sync + 'static {
    /// Handles one request.
    fn handle(&self, request: Request) -> impl Future<Output = Result<Bytes, ErrorBody>> + Send;
}

/// How deep a request body may nest. serde_json reads at most 128 levels, and what a
/// service stores or sends wraps a request's values in a few more (a journal entry's
/// records, a delivery's message, a question's state): a body nested up to 128 levels was
/// accepted and then could not be read back by its recipient, or from the journal (found
/// by the wire fuzzer, docs/FUZZING.md). Half the parser's limit leaves room for every
/// envelope.
pub const MAX_DEPTH: usize = 64;

/// Decodes a request body, which is exactly one JSON object: an empty body reads as `{}`
/// (so it is accepted only where no field is required), and anything else (an array, a
/// second value, trailing bytes) is refused with `malformed_json` and changes nothing.
/// The field at fault is named by its path (`id`, `authority.scoped_to_phases[0]`). A
/// body nested deeper than [`MAX_DEPTH`] is refused with `too_deep`, naming the member
/// that holds the depth.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ErrorBody> {
    let body: &[u8] = match body.trim_ascii_start().first() {
        None => b"{}",
        Some(b'{') => body,
        Some(_) => {
            return Err(ErrorBody::new(
                guild_wire::ErrorCode::BadRequest,
                "malformed_json",
                "the request body must be one JSON object (`{...}`), or empty",
            ));
        }
    };
    if let Some(error) = too_deep(body) {
        return Err(error);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let mut error = ErrorBody::malformed(e.inner());
        let top = path.is_empty() || path == ".";
        // A missing or unknown member is named by serde inside the object the path
        // reaches: `context_window` + `window_tokens` is `context_window.window_tokens`.
        let field = match error.field.take() {
            Some(member) if !top && path.rsplit('.').next() != Some(member.as_str()) => {
                Some(format!("{path}.{member}"))
            }
            Some(_) if !top => Some(path),
            Some(member) => Some(member),
            None if !top => Some(path),
            None => None,
        };
        error.field = field;
        error
    })?;
    // Nothing but whitespace may follow the object.
    de.end().map_err(|e| ErrorBody::malformed(&e))?;
    Ok(value)
}

/// The refusal of a body nested deeper than [`MAX_DEPTH`], naming the top-level member
/// it happens in; `None` when it does not. A scan of the bytes (strings skipped), so it
/// costs nothing like a parse and stops at the first level too deep.
fn too_deep(body: &[u8]) -> Option<ErrorBody> {
    let (mut depth, mut in_string, mut escaped, mut expect_key) = (0usize, false, false, false);
    let (mut key_start, mut member) = (None, None::<String>);
    for (i, &b) in body.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
                if let Some(start) = key_start.take() {
                    member = serde_json::from_slice::<String>(&body[start..=i]).ok();
                }
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                if depth == 1 && expect_key {
                    key_start = Some(i);
                    expect_key = false;
                }
            }
            b'{' | b'[' => {
                depth += 1;
                if depth == 1 {
                    expect_key = b == b'{';
                }
                if depth > MAX_DEPTH {
                    let error = ErrorBody::new(
                        guild_wire::ErrorCode::BadRequest,
                        "too_deep",
                        format!("the request nests deeper than {MAX_DEPTH} levels"),
                    );
                    return Some(match member {
                        Some(m) => error.with_field(m),
                        None => error,
                    });
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' if depth == 1 => expect_key = true,
            _ => {}
        }
    }
    None
}

/// Encodes a reply.
pub fn encode<T: Serialize>(value: &T) -> Result<Bytes, ErrorBody> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| ErrorBody::internal(format!("encode reply: {e}")))
}

/// Serves `service`'s operations through `handler` until `shutdown` resolves.
pub async fn serve<H: Handler>(
    client: async_nats::Client,
    service: Service,
    description: &str,
    handler: Arc<H>,
    storage: Arc<dyn Storage>,
    options: &crate::CommonOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), async_nats::Error> {
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
            let handler = handler.clone();
            let quota = quota.clone();
            let storage = storage.clone();
            tokio::spawn(async move {
                answer(
                    service,
                    handler.as_ref(),
                    storage.as_ref(),
                    &quota,
                    request,
                    limits,
                )
                .await;
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

async fn answer<H: Handler>(
    service: Service,
    handler: &H,
    storage: &dyn Storage,
    quota: &crate::quota::Quota,
    request: async_nats::service::Request,
    limits: Limits,
) {
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
            .ok_or_else(|| {
                ErrorBody::new(
                    guild_wire::ErrorCode::NotFound,
                    "unknown_operation",
                    format!("{op_token} is not an operation of {}", service.micro_name()),
                )
            })?;
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
        let reply = if op == Recover::NAME {
            // Every service's, answered by the runtime that holds its storage.
            let request: guild_wire::api::Recover = decode(&message.payload)?;
            encode(&storage.recover(&by, request).await?)?
        } else {
            handler
                .handle(Request {
                    op,
                    by,
                    body: message.payload.clone(),
                    headers: message.headers.clone(),
                })
                .await?
        };
        payload::check_reply_size(reply.len(), limits.reply)?;
        Ok(reply)
    }
    .instrument(span.clone())
    .await;
    let sent = match result {
        Ok(body) => request.respond(Ok(body)).await,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Spawn {
        id: String,
        #[serde(default)]
        budget: u64,
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Nothing {
        #[serde(default)]
        limit: Option<u32>,
    }

    /// Each of these was once accepted and changed state (issue 17).
    #[test]
    fn a_body_is_exactly_one_json_object() {
        let refused: [&[u8]; 7] = [
            br#"{"id":"a"}garbage"#,
            br#"{"id":"a"}{"id":"b"}"#,
            br#"["a", 5]"#,
            br#"{"id":"a"}]]"#,
            b"{\"id\":\"a\"}\xff",
            br#""a""#,
            b"null",
        ];
        for body in refused {
            let e = decode::<Spawn>(body).expect_err(&String::from_utf8_lossy(body));
            assert_eq!(e.code, guild_wire::ErrorCode::BadRequest);
            assert_eq!(
                e.rule,
                "malformed_json",
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(
            decode::<Spawn>(b" {\"id\":\"a\",\"budget\":5}\n ").ok(),
            Some(Spawn {
                id: "a".into(),
                budget: 5
            })
        );
    }

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

    #[test]
    fn an_empty_body_is_an_empty_object() {
        assert_eq!(decode::<Nothing>(b"").ok(), Some(Nothing { limit: None }));
        assert_eq!(
            decode::<Nothing>(b" \n").ok(),
            Some(Nothing { limit: None })
        );
        let e = decode::<Spawn>(b"").expect_err("id is required");
        assert_eq!(e.field.as_deref(), Some("id"));
    }
}
