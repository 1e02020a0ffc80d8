//! Someone past the broker (here the test's unrestricted credentials, standing in for
//! whoever stole the broker's keys) appends audit records that link correctly into the
//! chain. Only the signatures can tell them apart: verification, with nothing but the
//! services' public keys, must report each forged record by its sequence.

use async_nats::HeaderMap;
use async_nats::header::{NATS_EXPECTED_LAST_SEQUENCE, NATS_MESSAGE_ID};
use async_nats::jetstream;
use guild_auth::Credentials;
use guild_domain::{Principal, Service, Timestamp};
use guild_wire::audit::{
    AuditEntry, AuditKind, AuditRecord, Problem, SIGNATURE_HEADER, SignedBy, VerifyReport, hash_hex,
};
use guild_wire::store;
use serde_json::json;

use crate::broker::{Guild, id, last_seq, messages_after};

/// Signs `text` with the nkey `seed`, with no signing library at hand: a NATS client
/// signs the nonce a server sends it, so a one-connection server offering `text` as its
/// nonce gets the client's Ed25519 signature of exactly those bytes back in CONNECT
/// (base64url without padding, as `Guild-Signature` carries it).
async fn sign(seed: &str, text: &str) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let nonce = text.to_owned();
    let server = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let (read, mut write) = socket.into_split();
        let info = json!({
            "server_id": "signer", "server_name": "signer", "version": "2.10.0",
            "host": "127.0.0.1", "port": port, "headers": true, "max_payload": 1_048_576,
            "proto": 1, "auth_required": true, "nonce": nonce,
        });
        write
            .write_all(format!("INFO {info}\r\n").as_bytes())
            .await
            .unwrap();
        let mut lines = BufReader::new(read).lines();
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(connect) = line.strip_prefix("CONNECT ") {
                let c: serde_json::Value = serde_json::from_str(connect).unwrap();
                return c["sig"].as_str().expect("a signed CONNECT").to_owned();
            }
        }
        panic!("no CONNECT");
    });
    let client =
        async_nats::ConnectOptions::with_nkey(seed.to_owned()).connect(format!("127.0.0.1:{port}"));
    tokio::select! {
        biased;
        sig = server => sig.unwrap(),
        r = client => panic!("the signing connection ended first: {:?}", r.err()),
    }
}

/// A fresh key pair: its public key and seed.
fn key_pair() -> (String, String) {
    let c = Credentials::generate(|pk| Ok(pk.to_owned())).unwrap();
    (c.jwt, c.seed)
}

/// A decision record placed where the next record goes (its sequence, the hash of the
/// last record), appended with `Nats-Expected-Last-Sequence` as the services append, and
/// `signature` when given. Returns its sequence.
async fn append_forged(
    js: &jetstream::Context,
    signed_by: Option<SignedBy>,
    sign_with: Option<&str>,
) -> u64 {
    let last = last_seq(js, store::AUDIT_STREAM).await;
    let head = messages_after(js, store::AUDIT_STREAM, last - 1)
        .await
        .pop()
        .unwrap();
    let entry = AuditEntry {
        id: format!("forged-{}", last + 1),
        kind: AuditKind::Decision,
        actor: Principal::Agent(id("b")),
        about: "q-forged".into(),
        mission_id: None,
        at: Timestamp(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64,
        ),
        data: json!({
            "question_id": "q-forged",
            "asker": "a",
            "approver": "b",
            "choice": "give a everything",
            "impact": null,
            "decided_at": 0,
        }),
        trace_id: None,
    };
    let record = AuditRecord::chain(entry, last + 1, hash_hex(&head.payload), signed_by);
    let bytes = record.to_bytes();
    let mut headers = HeaderMap::new();
    headers.insert(NATS_EXPECTED_LAST_SEQUENCE, last.to_string().as_str());
    headers.insert(NATS_MESSAGE_ID, record.entry.id.as_str());
    if let Some(seed) = sign_with {
        let sig = sign(seed, std::str::from_utf8(&bytes).unwrap()).await;
        headers.insert(SIGNATURE_HEADER, sig.as_str());
    }
    let ack = js
        .publish_with_headers(record.subject(), headers, bytes.into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(ack.sequence, last + 1);
    ack.sequence
}

/// The audit log as anyone with read rights verifies it: exported by the operator,
/// checked against the key history the services registered.
async fn verify(g: &Guild) -> VerifyReport {
    let records = guild_sdk::audit::export(g.operator()).await.unwrap();
    let keys = guild_sdk::audit::keys(g.operator()).await.unwrap();
    assert!(!keys.keys.is_empty());
    guild_sdk::audit::verify(&records, Some(&keys))
}

#[tokio::test]
async fn the_signing_helper_makes_signatures_that_verify() {
    let (public, seed) = key_pair();
    let text = r#"{"v":2,"seq":1}"#;
    let sig = sign(&seed, text).await;
    assert!(guild_wire::audit::signature_holds(
        text.as_bytes(),
        &sig,
        &public
    ));
    assert!(!guild_wire::audit::signature_holds(b"other", &sig, &public));
}

#[tokio::test]
async fn a_forged_unsigned_audit_record_is_reported_by_its_sequence() {
    let g = Guild::start().await;
    let js = g.admin_js().await;
    let clean = verify(&g).await;
    assert!(clean.ok, "{clean:?}");
    assert!(clean.unsigned.is_empty());
    let seq = append_forged(&js, None, None).await;
    let report = verify(&g).await;
    // The chain links: only the missing signature tells.
    assert!(
        !report
            .problems
            .iter()
            .any(|p| matches!(p, Problem::BrokenLink { .. } | Problem::Gap { .. })),
        "{report:?}"
    );
    assert_eq!(report.unsigned, vec![seq], "{report:?}");
    // A record of the current format (v2 names its signer) without a signer, in a log
    // whose every other record is signed, is a forgery, not a record from before signing:
    // neither the SDK's verification nor bus-svc's `verify_audit` may call the log ok.
    let service = g.operator().bus().verify_audit().await.unwrap();
    assert!(
        !report.ok && !service.ok,
        "a forged unsigned record at #{seq} verifies as ok:\n{report:?}\n{service:?}"
    );
    g.stop().await;
}

#[tokio::test]
async fn an_audit_record_naming_a_services_key_with_a_wrong_signature_is_reported_by_its_sequence()
{
    let g = Guild::start().await;
    let js = g.admin_js().await;
    // It names bus-svc's registered key (decisions are the bus's), and is signed by
    // another key: the forger does not hold the bus's seed.
    let keys = guild_sdk::audit::keys(g.operator()).await.unwrap();
    let bus_key = keys
        .keys
        .iter()
        .find(|k| k.service == Service::Bus)
        .expect("bus-svc registered its key")
        .public_key
        .clone();
    let (_, forger) = key_pair();
    let seq = append_forged(
        &js,
        Some(SignedBy {
            service: Service::Bus,
            key: bus_key,
        }),
        Some(&forger),
    )
    .await;
    let report = verify(&g).await;
    assert!(!report.ok);
    assert_eq!(
        report.problems,
        vec![Problem::BadSignature { seq }],
        "{report:?}"
    );
    g.stop().await;
}

#[tokio::test]
async fn an_audit_record_signed_with_a_key_no_service_has_is_reported_by_its_sequence() {
    let g = Guild::start().await;
    let js = g.admin_js().await;
    // Well signed, by the forger's own key, which it names as bus-svc's.
    let (public, seed) = key_pair();
    let seq = append_forged(
        &js,
        Some(SignedBy {
            service: Service::Bus,
            key: public.clone(),
        }),
        Some(&seed),
    )
    .await;
    let report = verify(&g).await;
    assert!(!report.ok);
    assert_eq!(
        report.problems,
        vec![Problem::UnknownKey { seq, key: public }],
        "{report:?}"
    );
    g.stop().await;
}
