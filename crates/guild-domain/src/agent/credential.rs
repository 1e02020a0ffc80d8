//! The public half of an agent's credentials: which key the broker knows it by, and which
//! keys it must no longer accept. The secret (the key's seed) never reaches the registry.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Registry;
use crate::Rejection;
use crate::time::Timestamp;

/// A user public nkey: `U` and 55 more base32 letters (the checksum is checked where keys
/// are handled; here only the shape, so a typo is refused with the field named).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(try_from = "String", into = "String")]
pub struct PublicKey(
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^U[A-Z2-7]{55}$")))] String,
);

impl PublicKey {
    /// Checks the shape of a user public nkey.
    pub fn new(value: impl Into<String>) -> Result<Self, Rejection> {
        let value = value.into();
        let ok = value.len() == 56
            && value.starts_with('U')
            && value
                .bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b));
        if ok {
            Ok(Self(value))
        } else {
            Err(Rejection::invalid(
                "public_key",
                "not a user public nkey (U followed by 55 base32 letters)",
            ))
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PublicKey {
    type Error = Rejection;
    fn try_from(value: String) -> Result<Self, Rejection> {
        Self::new(value)
    }
}

impl From<PublicKey> for String {
    fn from(k: PublicKey) -> Self {
        k.0
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A key an agent held before new credentials replaced it, and when it was revoked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RevokedKey {
    /// The key.
    pub public_key: PublicKey,
    /// When it stopped being accepted.
    pub at: Timestamp,
}

impl Registry {
    /// Every key the broker must refuse, with when it was revoked (seconds since the epoch,
    /// as NATS's account revocations count): keys replaced by a re-issue, and the current
    /// key of every agent that is no longer live (terminated or FAILED).
    pub fn revocations(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for a in self.agents.values() {
            for r in &a.revoked_keys {
                out.insert(r.public_key.to_string(), seconds(r.at));
            }
            if !a.is_live()
                && let Some(key) = &a.credential_key
            {
                let at = a.ended_at.unwrap_or(a.updated_at);
                out.insert(key.to_string(), seconds(at));
            }
        }
        out
    }
}

/// NATS revokes every credential of a key issued at or before the revocation's second:
/// rounding up covers credentials minted in the same second as the revocation.
fn seconds(at: Timestamp) -> u64 {
    at.as_millis().div_ceil(1000)
}
