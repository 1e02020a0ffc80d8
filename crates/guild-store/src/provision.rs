//! Creates the streams and buckets a service needs, idempotently: whichever instance of
//! whichever service starts first creates them; the others find them.

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};

use crate::Error;
use guild_wire::store;

/// Settings that differ between a laptop and production.
#[derive(Clone, Copy, Debug)]
pub struct Durability {
    /// Replicas of every stream and bucket: 1 on a single server, 3 in production.
    pub replicas: usize,
    /// The audit stream's size limit in bytes; `-1` is unlimited (monitor the disk).
    /// When reached, appends are refused (discard new), never old records dropped.
    pub audit_max_bytes: i64,
    /// Journal entries between snapshots; 0 never snapshots (start-up replays everything).
    pub snapshot_every: u64,
}

impl Default for Durability {
    fn default() -> Self {
        Self {
            replicas: 1,
            audit_max_bytes: -1,
            snapshot_every: 50_000,
        }
    }
}

/// The audit stream's settings (nats.md §8): file storage, limits retention, discard new,
/// no deletes, no purges, no rollups, de-duplication by record id for ten minutes.
pub fn audit_stream_config(d: Durability) -> stream::Config {
    stream::Config {
        name: store::AUDIT_STREAM.into(),
        description: Some("Guild's hash-chained audit log".into()),
        subjects: vec![guild_wire::subject::AUDIT_WILDCARD.into()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::New,
        max_bytes: d.audit_max_bytes,
        max_age: Duration::ZERO,
        deny_delete: true,
        deny_purge: true,
        allow_rollup: false,
        allow_direct: true,
        duplicate_window: store::AUDIT_DUPLICATE_WINDOW,
        num_replicas: d.replicas,
        ..Default::default()
    }
}

/// Creates (or finds) the audit stream.
pub async fn audit_stream(js: &jetstream::Context, d: Durability) -> Result<stream::Stream, Error> {
    ensure_stream(js, audit_stream_config(d)).await
}

/// Creates (or finds) the events stream.
pub async fn events_stream(
    js: &jetstream::Context,
    d: Durability,
) -> Result<stream::Stream, Error> {
    ensure_stream(
        js,
        stream::Config {
            name: store::EVENTS_STREAM.into(),
            description: Some("Guild's events, kept for reactors that were down".into()),
            subjects: vec![guild_wire::subject::EVENTS_WILDCARD.into()],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            max_age: store::EVENTS_MAX_AGE,
            duplicate_window: store::AUDIT_DUPLICATE_WINDOW,
            allow_direct: true,
            num_replicas: d.replicas,
            ..Default::default()
        },
    )
    .await
}

/// Creates (or finds) the inbox log, keeping messages for `max_age`.
pub async fn inbox_stream(
    js: &jetstream::Context,
    d: Durability,
    max_age: Duration,
) -> Result<stream::Stream, Error> {
    ensure_stream(
        js,
        stream::Config {
            name: store::INBOX_STREAM.into(),
            description: Some("Guild's inbox log: every message as it entered each inbox".into()),
            subjects: vec![guild_wire::subject::INBOX_WILDCARD.into()],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            max_age,
            duplicate_window: store::AUDIT_DUPLICATE_WINDOW,
            allow_direct: true,
            num_replicas: d.replicas,
            ..Default::default()
        },
    )
    .await
}

/// The stream `name`, once it exists: what a follower of another service's state waits
/// for (its owner creates it). Says once, after a few seconds, what it is waiting for.
pub async fn wait_for_stream(js: &jetstream::Context, name: &str) -> Result<stream::Stream, Error> {
    let started = std::time::Instant::now();
    let mut said = false;
    loop {
        match js.get_stream(name).await {
            Ok(s) => return Ok(s),
            Err(e)
                if matches!(
                    e.kind(),
                    jetstream::context::GetStreamErrorKind::JetStream(ref j)
                        if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
                ) =>
            {
                if !said && started.elapsed() > Duration::from_secs(3) {
                    tracing::warn!(
                        stream = name,
                        "waiting for the stream to be created by its service"
                    );
                    said = true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(Error::unavailable(format!("stream {name}: {e}"))),
        }
    }
}

/// Creates a stream, or returns the existing one of that name. An existing stream keeps
/// its configuration: a difference is logged, not silently overwritten.
pub async fn ensure_stream(
    js: &jetstream::Context,
    config: stream::Config,
) -> Result<stream::Stream, Error> {
    let name = config.name.clone();
    match js.get_or_create_stream(config.clone()).await {
        Ok(mut s) => {
            if let Ok(info) = s.info().await {
                let c = &info.config;
                if c.subjects != config.subjects
                    || c.deny_delete != config.deny_delete
                    || c.deny_purge != config.deny_purge
                {
                    tracing::warn!(stream = %name, "existing stream's settings differ from this version's");
                }
            }
            Ok(s)
        }
        Err(e) => Err(Error::unavailable(format!("create stream {name}: {e}"))),
    }
}

/// Creates (or finds) a KV bucket keeping one revision per key, on file storage, with
/// atomic batch publish allowed so several keys can change in one step.
pub async fn bucket(
    js: &jetstream::Context,
    name: &str,
    d: Durability,
) -> Result<kv::Store, Error> {
    let kv = match js.get_key_value(name).await {
        Ok(kv) => kv,
        Err(_) => {
            let config = kv::Config {
                bucket: name.into(),
                history: 1,
                storage: stream::StorageType::File,
                num_replicas: d.replicas,
                ..Default::default()
            };
            match js.create_key_value(config).await {
                Ok(kv) => kv,
                // Another instance may have created it between our get and our create.
                Err(create) => js
                    .get_key_value(name)
                    .await
                    .map_err(|_| Error::unavailable(format!("create bucket {name}: {create}")))?,
            }
        }
    };
    let stream_name = guild_wire::subject::js::kv_stream(name);
    let mut stream = js
        .get_stream(&stream_name)
        .await
        .map_err(|e| Error::unavailable(format!("{stream_name}: {e}")))?;
    let info = stream.info().await.map_err(Error::unavailable)?.clone();
    if !info.config.allow_atomic_publish {
        let mut config = info.config.clone();
        config.allow_atomic_publish = true;
        js.update_stream(config).await.map_err(|e| {
            Error::unavailable(format!("enable atomic publish on {stream_name}: {e}"))
        })?;
    }
    Ok(kv)
}
