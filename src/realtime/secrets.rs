//! Ephemeral client secrets minted through the gateway. A secret opens sessions only on the
//! resource that minted it, so the gateway remembers, in the stored-objects directory, which
//! backend minted it, for which subscription, and until when; a later session (or WebRTC call)
//! that presents it goes to that backend, with the secret as its credential.
//!
//! The directory keys an entry by a digest of the secret, never the secret itself: a copy of
//! Redis or of the state file gives nobody a usable credential.

use std::fmt::Write as _;

use crate::config::sha256;
use crate::objects::directory::{Entry, Write};
use crate::proxy::Gateway;
use crate::proxy::error::GatewayError;

/// The directory's kind for minted secrets.
pub const KIND: &str = "realtime_secret";

/// How long a secret is remembered when its answer does not say when it expires: the longest
/// life the service gives one.
const DEFAULT_LIFE_S: u64 = 7200;

/// A secret as the mint's answer gives it: its value, and when it expires (Unix seconds).
#[derive(Debug, PartialEq, Eq)]
pub struct Minted {
    pub value: String,
    pub expires_at: Option<u64>,
}

/// The secret in a mint's answer: `value` at the top on v1 (`/realtime/client_secrets`),
/// `client_secret.value` on dated previews (`/realtimeapi/sessions`).
pub fn minted(body: &[u8]) -> Option<Minted> {
    let answer: serde_json::Value = serde_json::from_slice(body).ok()?;
    let holder = if answer.get("value").is_some() {
        &answer
    } else {
        answer.get("client_secret")?
    };
    let value = holder.get("value")?.as_str()?.to_string();
    (!value.is_empty()).then(|| Minted {
        value,
        expires_at: holder.get("expires_at").and_then(serde_json::Value::as_u64),
    })
}

/// The directory's key for `secret`.
fn key(secret: &str) -> String {
    let digest = sha256(secret);
    let mut key = String::with_capacity(9 + 64);
    key.push_str("rtsecret_");
    for b in digest {
        let _ = write!(key, "{b:02x}");
    }
    key
}

/// Remembers that `backend` minted `minted` for `owner` (names, as the directory keeps them).
pub async fn remember(
    gw: &Gateway,
    minted: &Minted,
    backend: &str,
    owner: &str,
) -> Result<(), GatewayError> {
    let now_s = crate::limits::now_ms() / 1000;
    let expires_s = minted.expires_at.unwrap_or(now_s + DEFAULT_LIFE_S);
    let entry = Entry {
        backend: backend.to_string(),
        owner: owner.to_string(),
        kind: KIND.to_string(),
        expires_ms: expires_s.saturating_mul(1000),
    };
    gw.objects
        .directory
        .record(vec![(key(&minted.value), entry, Write::Replace)])
        .await
        .map_err(|e| {
            tracing::warn!("object directory: a realtime secret was not recorded: {e}");
            GatewayError::DirectoryUnavailable
        })
}

/// What the directory knows of `secret`, while it has not expired.
pub async fn look_up(gw: &Gateway, secret: &str) -> Result<Option<Entry>, GatewayError> {
    let key = key(secret);
    let found = gw
        .objects
        .directory
        .look_up(&[key.as_str()])
        .await
        .map_err(|e| {
            tracing::warn!("object directory: a realtime secret was not looked up: {e}");
            GatewayError::DirectoryUnavailable
        })?;
    Ok(found
        .into_iter()
        .next()
        .flatten()
        .filter(|e| e.kind == KIND))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_answers_give_their_secret() {
        let v1 = br#"{"value":"ek_abc","expires_at":1900000000,"session":{"type":"realtime","model":"gpt-realtime"}}"#;
        assert_eq!(
            minted(v1),
            Some(Minted {
                value: "ek_abc".into(),
                expires_at: Some(1_900_000_000)
            })
        );
        let dated = br#"{"id":"sess_1","object":"realtime.session","model":"gpt-4o-realtime-preview","client_secret":{"value":"eph_1","expires_at":1900000060}}"#;
        assert_eq!(minted(dated).unwrap().value, "eph_1");
        assert_eq!(minted(br#"{"error":{"code":"429"}}"#), None);
        assert_eq!(minted(br#"{"value":""}"#), None);
    }

    #[test]
    fn the_key_is_a_digest_not_the_secret() {
        let k = key("ek_abc");
        assert!(k.starts_with("rtsecret_") && k.len() == 9 + 64);
        assert!(!k.contains("ek_abc"));
        assert_ne!(k, key("ek_abd"));
    }
}
