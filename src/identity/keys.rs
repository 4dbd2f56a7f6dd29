//! The signing keys of a token issuer, from its JWKS document: fetched at start-up, refreshed
//! on a schedule, and fetched again (at most so often) when a token names a key not in it, as
//! when the issuer rotates its keys.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use serde::Deserialize;
use tokio::sync::Notify;

use super::http::{Exchange, fetch};

/// How long a call waits for a key set fetched again because of its token's key id.
const REFETCH_WAIT: Duration = Duration::from_secs(5);

struct PublicKey {
    n: Vec<u8>,
    e: Vec<u8>,
}

/// What a key set says of a signature.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    Invalid,
    /// No key of that id: fetching the set again may find it.
    UnknownKey,
}

pub struct KeySet {
    pub url: String,
    refresh_every: Duration,
    refetch_min: Duration,
    keys: RwLock<HashMap<String, PublicKey>>,
    /// When the set was last fetched (or tried).
    fetched_at: Mutex<Option<Instant>>,
    /// Counts the fetches, so that a waiting call sees one has ended.
    fetches: AtomicU64,
    wanted: Notify,
    fetched: Notify,
}

impl KeySet {
    /// How many keys the set holds now.
    pub fn len(&self) -> usize {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn new(url: String, refresh_every: Duration, refetch_min: Duration) -> KeySet {
        KeySet {
            url,
            refresh_every,
            refetch_min,
            keys: RwLock::new(HashMap::new()),
            fetched_at: Mutex::new(None),
            fetches: AtomicU64::new(0),
            wanted: Notify::new(),
            fetched: Notify::new(),
        }
    }

    pub fn verify(&self, kid: &str, signed: &[u8], signature: &[u8]) -> Verdict {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        let Some(key) = keys.get(kid) else {
            return Verdict::UnknownKey;
        };
        let public = RsaPublicKeyComponents {
            n: &key.n,
            e: &key.e,
        };
        match public.verify(&RSA_PKCS1_2048_8192_SHA256, signed, signature) {
            Ok(()) => Verdict::Valid,
            Err(_) => Verdict::Invalid,
        }
    }

    /// Fetches the set again for a token naming a key it lacks, unless it was fetched less
    /// than `refetch_min` ago; whether a fetch ended within a few seconds.
    pub async fn refetched(&self) -> bool {
        let recent = self
            .fetched_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|at| at.elapsed() < self.refetch_min);
        if recent {
            return false;
        }
        let before = self.fetches.load(Ordering::Acquire);
        let waiting = async {
            loop {
                let fetched = self.fetched.notified();
                tokio::pin!(fetched);
                fetched.as_mut().enable();
                if self.fetches.load(Ordering::Acquire) != before {
                    return;
                }
                self.wanted.notify_one();
                fetched.await;
            }
        };
        actix_web::rt::time::timeout(REFETCH_WAIT, waiting)
            .await
            .is_ok()
    }

    /// Fetches the set now; how many keys it holds.
    pub async fn fetch(&self, client: &awc::Client) -> Result<usize, String> {
        *self
            .fetched_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        let got = fetch(client, &Exchange::get(self.url.clone()))
            .await
            .and_then(|(status, body)| {
                if status != 200 {
                    return Err(format!("it answered {status}"));
                }
                parse(&body)
            });
        let result = got.map(|keys| {
            let n = keys.len();
            *self.keys.write().unwrap_or_else(PoisonError::into_inner) = keys;
            n
        });
        self.fetches.fetch_add(1, Ordering::AcqRel);
        self.fetched.notify_waiters();
        result
    }

    /// Keeps the set fresh while it exists (on the identity thread); the first fetch is the
    /// caller's.
    pub async fn keep(this: Weak<KeySet>, client: awc::Client) {
        let mut since = Instant::now();
        loop {
            let Some(set) = this.upgrade() else { return };
            let due = since.elapsed() >= set.refresh_every;
            let wanted = tokio::select! {
                () = set.wanted.notified() => true,
                () = tokio::time::sleep(Duration::from_secs(1)) => false,
            };
            if due || wanted {
                if let Err(why) = set.fetch(&client).await {
                    tracing::warn!(
                        "the signing keys at {} could not be fetched: {why}",
                        set.url
                    );
                }
                since = Instant::now();
            }
        }
    }
}

#[derive(Deserialize)]
struct Document {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

/// The RSA signing keys of a JWKS document, by key id.
fn parse(body: &[u8]) -> Result<HashMap<String, PublicKey>, String> {
    let document: Document = serde_json::from_slice(body)
        .map_err(|_| "its answer is not a JWKS document".to_string())?;
    let mut keys = HashMap::new();
    for jwk in document.keys {
        if jwk.kty != "RSA" || jwk.usage.as_deref().is_some_and(|u| u != "sig") {
            continue;
        }
        let decoded =
            |v: &Option<String>| v.as_deref().and_then(|v| URL_SAFE_NO_PAD.decode(v).ok());
        if let (Some(kid), Some(n), Some(e)) = (jwk.kid.clone(), decoded(&jwk.n), decoded(&jwk.e)) {
            keys.insert(kid, PublicKey { n, e });
        }
    }
    if keys.is_empty() {
        return Err("it holds no RSA signing key".into());
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rsa_signing_keys_are_kept() {
        let keys = parse(
            br#"{"keys":[
                {"kty":"RSA","use":"sig","kid":"a","n":"AQAB","e":"AQAB"},
                {"kty":"RSA","use":"enc","kid":"b","n":"AQAB","e":"AQAB"},
                {"kty":"EC","kid":"c","crv":"P-256"},
                {"kty":"RSA","kid":"d","n":"AQAB","e":"AQAB"}]}"#,
        )
        .unwrap();
        let mut ids: Vec<&String> = keys.keys().collect();
        ids.sort();
        assert_eq!(ids, ["a", "d"]);
        assert!(parse(br#"{"keys":[]}"#).is_err());
        assert!(parse(b"<html>").is_err());
    }
}
