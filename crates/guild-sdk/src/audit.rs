//! The audit log read straight from its stream, with the operator's or the observer's
//! read-only rights (Direct Get; no consumer), for exporting it and verifying it outside
//! Guild's services, with nothing but the services' public keys.
//!
//! ```no_run
//! # async fn demo(guild: guild_sdk::Guild) -> Result<(), guild_sdk::Error> {
//! let records = guild_sdk::audit::export(&guild).await?;
//! let keys = guild_sdk::audit::keys(&guild).await?;
//! let report = guild_sdk::audit::verify(&records, Some(&keys));
//! println!("{} records, head {}", report.records, report.head_hash);
//! # Ok(()) }
//! ```

use guild_wire::audit::{AuditKey, AuditKeys, SIGNATURE_HEADER, Stored, VerifyReport};
use guild_wire::store;
use serde::{Deserialize, Serialize};

use crate::{Error, ErrorKind, Guild};

/// One record as exported (a JSON line): its sequence, its exact stored bytes as text (the
/// chain hashes them, so they are kept as they are), and its signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exported {
    /// The stream sequence.
    pub seq: u64,
    /// The stored record, byte for byte.
    pub record: String,
    /// Its `Guild-Signature`, when signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

fn failed(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Transport, "audit", format!("{what}: {e}"))
}

/// Every message of `stream`, in order, by Direct Get.
async fn read_stream(
    guild: &Guild,
    stream: &str,
) -> Result<Vec<async_nats::jetstream::message::StreamMessage>, Error> {
    let js = async_nats::jetstream::new(guild.client().clone());
    let mut s = match js.get_stream(stream).await {
        Ok(s) => s,
        Err(e) => return Err(failed(&format!("stream {stream}"), e)),
    };
    let state = s
        .info()
        .await
        .map_err(|e| failed(&format!("stream {stream}"), e))?
        .state
        .clone();
    let mut out = Vec::new();
    if state.messages == 0 {
        return Ok(out);
    }
    for seq in state.first_sequence..=state.last_sequence {
        match s.direct_get(seq).await {
            Ok(m) => out.push(m),
            // A deleted message (never in the audit log, which denies deletes): a gap the
            // verifier reports.
            Err(e) if e.kind() == async_nats::jetstream::stream::DirectGetErrorKind::NotFound => {}
            Err(e) => return Err(failed(&format!("{stream} #{seq}"), e)),
        }
    }
    Ok(out)
}

/// The whole audit log, in order.
pub async fn export(guild: &Guild) -> Result<Vec<Exported>, Error> {
    Ok(read_stream(guild, store::AUDIT_STREAM)
        .await?
        .into_iter()
        .map(|m| Exported {
            seq: m.sequence,
            record: String::from_utf8_lossy(&m.payload).into_owned(),
            signature: m
                .headers
                .get(SIGNATURE_HEADER)
                .map(|v| v.as_str().to_owned()),
        })
        .collect())
}

/// The services' audit keys, as they registered them.
pub async fn keys(guild: &Guild) -> Result<AuditKeys, Error> {
    let stream = guild_wire::subject::js::kv_stream(store::AUDIT_KEYS_BUCKET);
    let mut keys = AuditKeys::default();
    for m in read_stream(guild, &stream).await? {
        if m.payload.is_empty() {
            continue;
        }
        let key: AuditKey = serde_json::from_slice(&m.payload)
            .map_err(|e| failed(&format!("{} #{}", stream, m.sequence), e))?;
        if !keys.keys.contains(&key) {
            keys.keys.push(key);
        }
    }
    Ok(keys)
}

/// Verifies exported records: the chain, and with `keys` every signature.
pub fn verify(records: &[Exported], keys: Option<&AuditKeys>) -> VerifyReport {
    guild_wire::audit::verify(
        records.iter().map(|r| Stored {
            seq: r.seq,
            bytes: r.record.as_bytes(),
            signature: r.signature.as_deref(),
        }),
        keys,
    )
}
