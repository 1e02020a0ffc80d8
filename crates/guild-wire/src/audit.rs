//! The audit log's record and its hash chain.
//!
//! Every service appends to one JetStream stream (`GUILD_AUDIT`, subjects `guild.audit.>`).
//! Each record carries its position (`seq`, which must equal its stream sequence) and the
//! SHA-256 of the exact bytes of the record before it (`prev_hash`). Appends are made with
//! `Nats-Expected-Last-Sequence`, so two writers can never both extend the same position:
//! the chain cannot fork. [`verify`] re-reads the stream and finds a gap (a missing
//! sequence), an altered record (the next record's `prev_hash` no longer matches), or a
//! record in the wrong place. The last record has no successor to vouch for it;
//! [`VerifyReport::head_hash`] is what to anchor elsewhere to cover it too.

use std::fmt::Write as _;

use guild_domain::message::DecisionRecord;
use guild_domain::{MissionId, Principal, Service, Timestamp};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The audit record format's version: 2 names its signer. 1 is a record with none (made
/// before records were signed, or by a service run `--insecure`): it still verifies as a
/// chain and is reported unsigned, unless it comes after a signed record.
pub const AUDIT_VERSION: u32 = 2;

/// The version of a record that names no signer.
pub const UNSIGNED_VERSION: u32 = 1;

/// The header carrying a record's signature: Ed25519 by the signer's key over the stored
/// bytes of the record, base64url without padding. A header, because the signature cannot
/// be part of the bytes it signs; the record itself names the key (`signed_by`).
pub const SIGNATURE_HEADER: &str = "Guild-Signature";

/// `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a record is about: decided by the domain ([`guild_domain::audit`]), spelled here
/// on the wire as the domain spells it (one type, so the two cannot drift apart).
pub use guild_domain::audit::AuditKind;

/// What a writer hands to the append function; it becomes an [`AuditRecord`] once its
/// place in the chain is known.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AuditEntry {
    /// A stable id: the JetStream de-duplication id, so a retried append is stored once.
    pub id: String,
    /// What it is about.
    pub kind: AuditKind,
    /// Who acted.
    pub actor: Principal,
    /// The agent, mission or question concerned (a subject token).
    pub about: String,
    /// The mission concerned, when one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mission_id: Option<MissionId>,
    /// When it happened.
    pub at: Timestamp,
    /// The fact itself: a decision record, or the event.
    pub data: serde_json::Value,
    /// The W3C trace id of the operation, to find its trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

/// Who appended a record: the service and the public key it signs with (the key id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SignedBy {
    /// The service (`spawner`, `bus`, `mission`).
    pub service: Service,
    /// Its public nkey (`U...`), listed in the audit key history.
    pub key: String,
}

/// One record of the chain, as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AuditRecord {
    /// Format version.
    pub v: u32,
    /// Its position: equal to its stream sequence.
    pub seq: u64,
    /// SHA-256 (hex) of the stored bytes of record `seq - 1`; [`GENESIS_HASH`] for the first.
    pub prev_hash: String,
    /// The service that appended it and the key that signed it (absent in records made
    /// before records were signed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<SignedBy>,
    /// The entry.
    #[serde(flatten)]
    pub entry: AuditEntry,
}

impl AuditRecord {
    /// The entry placed at `seq` after a record whose bytes hash to `prev_hash`.
    pub fn chain(
        entry: AuditEntry,
        seq: u64,
        prev_hash: String,
        signed_by: Option<SignedBy>,
    ) -> Self {
        Self {
            v: if signed_by.is_some() {
                AUDIT_VERSION
            } else {
                UNSIGNED_VERSION
            },
            seq,
            prev_hash,
            signed_by,
            entry,
        }
    }

    /// The bytes to store (and to hash for the next record).
    pub fn to_bytes(&self) -> Vec<u8> {
        // A struct of strings, numbers and JSON values always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The subject it is stored under.
    pub fn subject(&self) -> String {
        crate::subject::audit(self.entry.kind.as_str(), &self.entry.about)
    }

    /// The decision it carries, for decision kinds.
    pub fn decision(&self) -> Option<DecisionRecord> {
        if !self.entry.kind.is_decision() {
            return None;
        }
        serde_json::from_value(self.entry.data.clone()).ok()
    }
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn hash_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A chain problem found by [`verify`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    /// Stream sequences are missing: records were lost.
    Gap {
        /// First missing sequence.
        from: u64,
        /// Last missing sequence.
        to: u64,
    },
    /// A record's `prev_hash` does not match the bytes of the record before it: that
    /// record (or this one) was altered.
    BrokenLink {
        /// The record whose `prev_hash` does not match.
        seq: u64,
    },
    /// A record claims another position than the one it is stored at.
    Misplaced {
        /// Its stream sequence.
        seq: u64,
        /// The position it claims.
        claims: u64,
    },
    /// A record is not an audit record.
    Unreadable {
        /// Its stream sequence.
        seq: u64,
    },
    /// A record names no signer where every record is signed (a record of version 2 or
    /// later, or one after a signed record): written by someone who could write to the
    /// stream, not by a service.
    Unsigned {
        /// Its stream sequence.
        seq: u64,
    },
    /// A record names a signer but its signature is missing or does not verify: forged,
    /// or altered after it was signed.
    BadSignature {
        /// Its stream sequence.
        seq: u64,
    },
    /// A record is signed with a key the key history does not list.
    UnknownKey {
        /// Its stream sequence.
        seq: u64,
        /// The key it names.
        key: String,
    },
    /// A record was signed by a service that does not append its kind (a mission-svc key
    /// on a decision, say).
    WrongSigner {
        /// Its stream sequence.
        seq: u64,
        /// The service that signed it.
        service: Service,
        /// The record's kind.
        kind: AuditKind,
    },
}

/// One service key of the audit key history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuditKey {
    /// The service that signs with it.
    pub service: Service,
    /// Its public key (`U...`): the key id records name.
    pub public_key: String,
}

/// Every key a service has signed audit records with, oldest first: records signed
/// before a key rotation keep verifying, their keys stay listed. Made with the keys
/// (`audit-keys.json`) and kept in the `guild_audit_keys` bucket by the services.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuditKeys {
    /// The keys.
    pub keys: Vec<AuditKey>,
}

impl AuditKeys {
    /// The services `public_key` signs for.
    pub fn services_of(&self, public_key: &str) -> Vec<Service> {
        self.keys
            .iter()
            .filter(|k| k.public_key == public_key)
            .map(|k| k.service)
            .collect()
    }
}

/// A record as read back from the stream: its sequence, its exact stored bytes and the
/// signature its message carries ([`SIGNATURE_HEADER`]).
#[derive(Clone, Copy, Debug)]
pub struct Stored<'a> {
    /// The stream sequence.
    pub seq: u64,
    /// The stored bytes.
    pub bytes: &'a [u8],
    /// The signature header, when there is one.
    pub signature: Option<&'a str>,
}

/// The result of verifying the chain and its signatures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VerifyReport {
    /// No problems (unsigned records are not a problem: they predate signing).
    pub ok: bool,
    /// Records read.
    pub records: u64,
    /// The last record's sequence (0 when empty).
    pub last_seq: u64,
    /// The hash of the last record's bytes: keep it elsewhere, and a truncated or
    /// rewritten chain is caught by comparing (`guild decisions verify --expect-head`).
    pub head_hash: String,
    /// Whether signatures were checked (a key history was at hand).
    #[serde(default)]
    pub signatures_checked: bool,
    /// Records whose signature verified, by a key of a service that appends their kind.
    #[serde(default)]
    pub signed: u64,
    /// Records that name no signer, made before records were signed: reported as
    /// unsigned, not as forged.
    #[serde(default)]
    pub unsigned: Vec<u64>,
    /// What is wrong, in stream order.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Whether the chain ends where a head kept elsewhere says it did.
    pub fn has_head(&self, expected: &str) -> bool {
        self.head_hash.eq_ignore_ascii_case(expected.trim())
    }
}

/// Signs a record's stored bytes with `key`: the [`SIGNATURE_HEADER`] value.
pub fn sign(bytes: &[u8], key: &nkeys::KeyPair) -> Result<String, String> {
    key.sign(bytes)
        .map(|sig| data_encoding::BASE64URL_NOPAD.encode(&sig))
        .map_err(|e| format!("signing an audit record: {e}"))
}

/// Whether `signature` is `key`'s over `bytes`.
pub fn signature_holds(bytes: &[u8], signature: &str, key: &str) -> bool {
    let Ok(sig) = data_encoding::BASE64URL_NOPAD.decode(signature.trim().as_bytes()) else {
        return false;
    };
    nkeys::KeyPair::from_public_key(key).is_ok_and(|k| k.verify(bytes, &sig).is_ok())
}

/// Verifies stored records given in stream order: the hash chain always, and with a key
/// history every signature, its key, and that the signer appends that kind of record.
pub fn verify<'a>(
    stored: impl IntoIterator<Item = Stored<'a>>,
    keys: Option<&AuditKeys>,
) -> VerifyReport {
    let mut report = VerifyReport {
        ok: true,
        records: 0,
        last_seq: 0,
        head_hash: GENESIS_HASH.into(),
        signatures_checked: keys.is_some(),
        signed: 0,
        unsigned: Vec::new(),
        problems: Vec::new(),
    };
    let mut expected_next = 1u64;
    let mut prev_hash = GENESIS_HASH.to_owned();
    // Once one record is signed, every later one must be: unsigned records only predate
    // signing.
    let mut signing_began = false;
    for Stored {
        seq,
        bytes,
        signature,
    } in stored
    {
        report.records += 1;
        if seq > expected_next {
            report.problems.push(Problem::Gap {
                from: expected_next,
                to: seq - 1,
            });
        }
        match serde_json::from_slice::<AuditRecord>(bytes) {
            Ok(record) => {
                if record.seq != seq {
                    report.problems.push(Problem::Misplaced {
                        seq,
                        claims: record.seq,
                    });
                }
                // After a gap the true predecessor is unknown; the gap is the finding.
                if seq == expected_next && record.prev_hash != prev_hash {
                    report.problems.push(Problem::BrokenLink { seq });
                }
                if record.signed_by.is_some() {
                    signing_began = true;
                } else if record.v >= 2 || signing_began {
                    report.problems.push(Problem::Unsigned { seq });
                }
                check_signer(&mut report, &record, bytes, signature, keys);
            }
            Err(_) => report.problems.push(Problem::Unreadable { seq }),
        }
        prev_hash = hash_hex(bytes);
        expected_next = seq + 1;
        report.last_seq = seq;
    }
    report.head_hash = prev_hash;
    report.ok = report.problems.is_empty();
    report
}

fn check_signer(
    report: &mut VerifyReport,
    record: &AuditRecord,
    bytes: &[u8],
    signature: Option<&str>,
    keys: Option<&AuditKeys>,
) {
    let seq = record.seq;
    let Some(by) = &record.signed_by else {
        report.unsigned.push(seq);
        return;
    };
    let Some(keys) = keys else {
        return;
    };
    if !signature.is_some_and(|s| signature_holds(bytes, s, &by.key)) {
        report.problems.push(Problem::BadSignature { seq });
        return;
    }
    if !keys.services_of(&by.key).contains(&by.service) {
        report.problems.push(Problem::UnknownKey {
            seq,
            key: by.key.clone(),
        });
        return;
    }
    if !record.entry.kind.appended_by().contains(&by.service) {
        report.problems.push(Problem::WrongSigner {
            seq,
            service: by.service,
            kind: record.entry.kind,
        });
        return;
    }
    report.signed += 1;
}

/// A decision as the log keeps it: the record and where it sits in the chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LoggedDecision {
    /// Its audit sequence.
    pub audit_seq: u64,
    /// Decision, completion or override.
    pub kind: AuditKind,
    /// The decision.
    pub record: DecisionRecord,
}

/// The decision log as Markdown (the seed keeps decisions in a `decisions.md`).
pub fn decisions_markdown(decisions: &[LoggedDecision]) -> String {
    let mut out = String::from("# Decisions\n\n");
    if decisions.is_empty() {
        out.push_str("No decisions recorded.\n");
        return out;
    }
    for d in decisions {
        let r = &d.record;
        let title = match d.kind {
            AuditKind::DecisionCompleted => "Decision completed",
            AuditKind::DecisionOverride => "Decision overridden",
            _ => "Decision",
        };
        let _ = writeln!(
            out,
            "## {title}: {} (question `{}`)\n",
            r.choice, r.question_id
        );
        let _ = writeln!(out, "- **When**: {}", r.decided_at);
        let _ = writeln!(out, "- **Approver**: {}", r.approver);
        let _ = writeln!(out, "- **Asked by**: {}", r.asker);
        if let Some(m) = &r.mission_id {
            let _ = writeln!(out, "- **Mission**: {m}");
        }
        if let Some(why) = &r.rationale {
            let _ = writeln!(out, "- **Rationale**: {why}");
        }
        if !r.impact.is_null() {
            let _ = writeln!(out, "- **Impact**: `{}`", r.impact);
        }
        if let Some(o) = &r.overrides {
            let _ = writeln!(
                out,
                "- **Overrides**: {} by {} at {}",
                o.choice, o.approver, o.decided_at
            );
        }
        let _ = writeln!(out, "- **Audit record**: #{}\n", d.audit_seq);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u64) -> AuditEntry {
        AuditEntry {
            id: format!("e{i}"),
            kind: AuditKind::Spawn,
            actor: Principal::Operator,
            about: format!("agent-{i}"),
            mission_id: None,
            at: Timestamp(i),
            data: serde_json::json!({"i": i}),
            trace_id: None,
        }
    }

    /// Stored records: bytes and signature.
    type Chain = Vec<(u64, Vec<u8>, Option<String>)>;

    /// `n` unsigned records (the format before signing).
    fn chain(n: u64) -> Chain {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let bytes = AuditRecord::chain(entry(seq), seq, prev.clone(), None).to_bytes();
                prev = hash_hex(&bytes);
                (seq, bytes, None)
            })
            .collect()
    }

    /// `n` records signed by `key` as `service`.
    fn signed_chain(n: u64, service: Service, key: &nkeys::KeyPair) -> Chain {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let by = SignedBy {
                    service,
                    key: key.public_key(),
                };
                let bytes = AuditRecord::chain(entry(seq), seq, prev.clone(), Some(by)).to_bytes();
                prev = hash_hex(&bytes);
                let sig = sign(&bytes, key).unwrap();
                (seq, bytes, Some(sig))
            })
            .collect()
    }

    fn check(records: &Chain) -> VerifyReport {
        check_with(records, None)
    }

    fn check_with(records: &Chain, keys: Option<&AuditKeys>) -> VerifyReport {
        verify(
            records.iter().map(|(seq, b, sig)| Stored {
                seq: *seq,
                bytes: b.as_slice(),
                signature: sig.as_deref(),
            }),
            keys,
        )
    }

    fn history(service: Service, key: &nkeys::KeyPair) -> AuditKeys {
        AuditKeys {
            keys: vec![AuditKey {
                service,
                public_key: key.public_key(),
            }],
        }
    }

    #[test]
    fn signed_records_verify_against_the_key_history() {
        let spawner = nkeys::KeyPair::new_user();
        let c = signed_chain(3, Service::Spawner, &spawner);
        let r = check_with(&c, Some(&history(Service::Spawner, &spawner)));
        assert!(r.ok, "{r:?}");
        assert_eq!((r.signed, r.unsigned.len()), (3, 0));
        assert!(r.signatures_checked);
    }

    #[test]
    fn a_rewritten_chain_that_still_links_is_caught_by_its_signatures() {
        // Every record re-linked with a changed fact: the chain alone says ok.
        let spawner = nkeys::KeyPair::new_user();
        let c = signed_chain(3, Service::Spawner, &spawner);
        let mut prev = GENESIS_HASH.to_owned();
        let forged: Chain = c
            .iter()
            .map(|(seq, bytes, sig)| {
                let mut rec: AuditRecord = serde_json::from_slice(bytes).unwrap();
                rec.entry.data = serde_json::json!({"i": "forged"});
                rec.prev_hash = prev.clone();
                let bytes = rec.to_bytes();
                prev = hash_hex(&bytes);
                (*seq, bytes, sig.clone())
            })
            .collect();
        assert!(check(&forged).ok, "the chain alone cannot tell");
        let r = check_with(&forged, Some(&history(Service::Spawner, &spawner)));
        assert!(!r.ok);
        assert_eq!(
            r.problems,
            (1..=3)
                .map(|seq| Problem::BadSignature { seq })
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_record_signed_by_an_unknown_key_or_the_wrong_service_is_reported() {
        let mission = nkeys::KeyPair::new_user();
        let stranger = nkeys::KeyPair::new_user();
        // A spawn record signed by mission-svc's real key: mission-svc appends no spawns.
        let c = signed_chain(1, Service::Mission, &mission);
        let r = check_with(&c, Some(&history(Service::Mission, &mission)));
        assert_eq!(
            r.problems,
            vec![Problem::WrongSigner {
                seq: 1,
                service: Service::Mission,
                kind: AuditKind::Spawn
            }]
        );
        // A well-signed record by a key no service has.
        let c = signed_chain(1, Service::Spawner, &stranger);
        let r = check_with(&c, Some(&history(Service::Spawner, &mission)));
        assert_eq!(
            r.problems,
            vec![Problem::UnknownKey {
                seq: 1,
                key: stranger.public_key()
            }]
        );
        // Naming a signer without a signature.
        let mut c = signed_chain(1, Service::Spawner, &mission);
        c[0].2 = None;
        let r = check_with(&c, Some(&history(Service::Spawner, &mission)));
        assert_eq!(r.problems, vec![Problem::BadSignature { seq: 1 }]);
    }

    #[test]
    fn records_made_before_signing_are_unsigned_not_forged() {
        let r = check_with(&chain(2), Some(&AuditKeys::default()));
        assert!(r.ok, "{r:?}");
        assert_eq!(r.unsigned, vec![1, 2]);
    }

    /// Issue 16's review: a correctly linked record naming no signer, appended by someone
    /// with write access to the stream after signing began, once verified as "ok".
    #[test]
    fn an_unsigned_record_after_signed_ones_is_a_forgery() {
        let key = nkeys::KeyPair::new_user();
        let mut c = signed_chain(2, Service::Spawner, &key);
        let prev = hash_hex(&c[1].1);
        let forged = AuditRecord::chain(entry(3), 3, prev, None).to_bytes();
        c.push((3, forged, None));
        let r = check_with(&c, Some(&history(Service::Spawner, &key)));
        assert!(!r.ok);
        assert_eq!(r.problems, vec![Problem::Unsigned { seq: 3 }]);
        // Even without the key history at hand.
        assert_eq!(check(&c).problems, vec![Problem::Unsigned { seq: 3 }]);
        // A record claiming the signed format with no signer is one too.
        let mut bare = AuditRecord::chain(entry(1), 1, GENESIS_HASH.into(), None);
        bare.v = AUDIT_VERSION;
        let r = check(&vec![(1, bare.to_bytes(), None)]);
        assert_eq!(r.problems, vec![Problem::Unsigned { seq: 1 }]);
    }

    #[test]
    fn the_head_can_be_held_against_a_kept_copy() {
        let c = chain(3);
        let full = check(&c);
        let truncated = check(&c[..2].to_vec());
        assert!(truncated.ok, "a truncation is a shorter valid chain");
        assert!(!truncated.has_head(&full.head_hash));
        assert!(full.has_head(&full.head_hash.to_uppercase()));
    }

    #[test]
    fn an_intact_chain_verifies() {
        let c = chain(5);
        let r = check(&c);
        assert!(r.ok, "{r:?}");
        assert_eq!((r.records, r.last_seq), (5, 5));
        assert_eq!(r.head_hash, hash_hex(&c[4].1));
        assert!(check(&Vec::new()).ok);
    }

    #[test]
    fn a_gap_is_found() {
        let mut c = chain(5);
        c.remove(2);
        let r = check(&c);
        assert_eq!(r.problems, vec![Problem::Gap { from: 3, to: 3 }]);
    }

    #[test]
    fn an_altered_record_breaks_the_next_link() {
        let mut c = chain(4);
        let mut rec: AuditRecord = serde_json::from_slice(&c[1].1).unwrap();
        rec.entry.data = serde_json::json!({"i": "forged"});
        c[1].1 = rec.to_bytes();
        let r = check(&c);
        assert_eq!(r.problems, vec![Problem::BrokenLink { seq: 3 }]);
    }

    #[test]
    fn misplaced_and_unreadable_records_are_found() {
        let mut c = chain(3);
        c[2].1 = b"not json".to_vec();
        let mut rec: AuditRecord = serde_json::from_slice(&c[0].1).unwrap();
        rec.seq = 9;
        c[0].1 = rec.to_bytes();
        let r = check(&c);
        assert!(
            r.problems
                .contains(&Problem::Misplaced { seq: 1, claims: 9 })
        );
        assert!(r.problems.contains(&Problem::Unreadable { seq: 3 }));
        assert!(r.problems.contains(&Problem::BrokenLink { seq: 2 }));
    }

    #[test]
    fn records_live_under_their_kind() {
        let rec = AuditRecord::chain(entry(1), 1, GENESIS_HASH.into(), None);
        assert_eq!(rec.subject(), "guild.audit.spawn.agent-1");
        let json: serde_json::Value = serde_json::from_slice(&rec.to_bytes()).unwrap();
        assert_eq!(json["kind"], "spawn");
        assert_eq!(json["seq"], 1);
    }

    #[test]
    fn markdown_lists_each_decision() {
        let record = DecisionRecord {
            question_id: guild_domain::MessageId::new("msg-xyz").unwrap(),
            asker: Principal::from_token("architect-1").unwrap(),
            approver: Principal::from_token("orchestrator-1").unwrap(),
            choice: "cut_feature_X".into(),
            rationale: Some("Token budget constraints".into()),
            impact: serde_json::json!({"scope_reduction": "15%"}),
            mission_id: None,
            decided_at: Timestamp(0),
            completed_at: None,
            overrides: None,
        };
        let md = decisions_markdown(&[LoggedDecision {
            audit_seq: 7,
            kind: AuditKind::Decision,
            record,
        }]);
        assert!(
            md.contains("## Decision: cut_feature_X (question `msg-xyz`)"),
            "{md}"
        );
        assert!(md.contains("**Rationale**: Token budget constraints"));
        assert!(md.contains("#7"));
    }
}
