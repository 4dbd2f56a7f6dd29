//! A backend credential's access token, kept fresh: got by the identity thread before it is
//! needed and again well before it expires, so that a call takes the current one without
//! waiting. Only that thread fetches, so concurrent calls never cause more than one exchange;
//! a call waits only when there is no usable token (at start-up, or after refreshes failed
//! until the last one expired), and then at most `wait`.

use std::sync::{PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use actix_web::http::header::HeaderValue;
use tokio::sync::Notify;

use super::credential::{Credential, read_token};
use super::http::fetch;

const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(30);
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

struct Current {
    /// `Bearer …`, marked sensitive.
    header: HeaderValue,
    /// A little before it expires, so that it is not sent expiring.
    usable_until: Instant,
}

pub struct TokenSource {
    pub credential: Credential,
    pub scope: String,
    wait: Duration,
    current: RwLock<Option<Current>>,
    /// Why the latest exchange failed, for the call that finds no token.
    failure: RwLock<Option<String>>,
    /// A token was stored, or an exchange failed.
    stored: Notify,
    /// A call found no usable token.
    wanted: Notify,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("credential", &self.credential.describe())
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    pub fn new(credential: Credential, scope: String, wait: Duration) -> TokenSource {
        TokenSource {
            credential,
            scope,
            wait,
            current: RwLock::new(None),
            failure: RwLock::new(None),
            stored: Notify::new(),
            wanted: Notify::new(),
        }
    }

    /// Starts with the token of the source this one replaces on a reload (the same identity and
    /// scope, perhaps a new secret), so that no call waits for this one's first exchange: a
    /// token got with a secret since rotated stays valid until it expires.
    pub fn seed_from(&self, old: &TokenSource) {
        // The debug form names the identity (endpoint, tenant, client, thumbprint), never a
        // secret.
        let identity = |s: &TokenSource| format!("{:?}", s.credential);
        if self.scope != old.scope || identity(self) != identity(old) {
            return;
        }
        let current = old.current.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = current.as_ref() {
            *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Current {
                header: c.header.clone(),
                usable_until: c.usable_until,
            });
        }
    }

    /// For the status page: how long the current token is usable, and why the latest exchange
    /// failed, if it did. Never the token.
    pub fn condition(&self) -> (Option<Duration>, Option<String>) {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        let usable = current
            .as_ref()
            .map(|c| c.usable_until.saturating_duration_since(Instant::now()))
            .filter(|d| !d.is_zero());
        let failure = self.failure.read().unwrap_or_else(PoisonError::into_inner);
        (usable, failure.clone())
    }

    fn usable(&self) -> Option<HeaderValue> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        current
            .as_ref()
            .filter(|c| Instant::now() < c.usable_until)
            .map(|c| c.header.clone())
    }

    /// `Authorization` for a call: the current token, or (when there is none usable) the next
    /// one within `wait`; the error says why there is none.
    pub async fn bearer(&self) -> Result<HeaderValue, String> {
        if let Some(header) = self.usable() {
            return Ok(header);
        }
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            let stored = self.stored.notified();
            tokio::pin!(stored);
            stored.as_mut().enable();
            if let Some(header) = self.usable() {
                return Ok(header);
            }
            self.wanted.notify_one();
            let waited = tokio::time::timeout_at(deadline, stored).await;
            if let Some(header) = self.usable() {
                return Ok(header);
            }
            // The exchange the call waited for failed (or none ended in time): the call fails
            // over rather than wait for the next.
            let failure = self.failure.read().unwrap_or_else(PoisonError::into_inner);
            if waited.is_err() || failure.is_some() {
                return Err(failure
                    .clone()
                    .unwrap_or_else(|| "no Entra ID token yet".into()));
            }
        }
    }

    /// One exchange; when the next is due.
    async fn refresh(&self, client: &awc::Client) -> Result<Instant, String> {
        let exchange = self.credential.exchange(&self.scope)?;
        let (status, body) = fetch(client, &exchange).await?;
        let token = read_token(status, &body)?;
        let mut header = HeaderValue::try_from(format!("Bearer {}", token.access_token))
            .map_err(|_| "the token holds characters a header cannot carry".to_string())?;
        header.set_sensitive(true);
        let now = Instant::now();
        // A day at most: no endpoint's answer may overflow the clock.
        let lifetime = token.lifetime.min(MAX_LIFETIME);
        // Azure's SDKs refresh five minutes early; a short-lived token at half its life (but
        // never at once: an endpoint that gives tokens of no life must not be hammered).
        let refresh_at =
            (now + lifetime - (lifetime / 2).min(Duration::from_secs(300))).max(now + FIRST_RETRY);
        let usable_until = now + lifetime - (lifetime / 10).min(Duration::from_secs(60));
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Current {
            header,
            usable_until,
        });
        Ok(refresh_at)
    }

    /// Keeps the token fresh while the source exists (on the identity thread).
    pub async fn keep(this: Weak<TokenSource>, client: awc::Client) {
        let mut retry = FIRST_RETRY;
        let mut failing = false;
        loop {
            let Some(source) = this.upgrade() else { return };
            let attempted = Instant::now();
            let next = match source.refresh(&client).await {
                Ok(next) => {
                    if failing {
                        tracing::info!(
                            "Entra ID token for {} got again",
                            source.credential.describe()
                        );
                    }
                    failing = false;
                    retry = FIRST_RETRY;
                    *source
                        .failure
                        .write()
                        .unwrap_or_else(PoisonError::into_inner) = None;
                    next
                }
                Err(why) => {
                    if !failing {
                        // The current token, if any, is used until it expires.
                        tracing::warn!(
                            "Entra ID token for {} could not be got: {why}; trying again",
                            source.credential.describe()
                        );
                    }
                    failing = true;
                    *source
                        .failure
                        .write()
                        .unwrap_or_else(PoisonError::into_inner) =
                        Some(format!("no Entra ID token: {why}"));
                    let next = Instant::now() + retry;
                    retry = (retry * 2).min(MAX_RETRY);
                    next
                }
            };
            source.stored.notify_waiters();
            drop(source);
            // Until the next is due, or a call needs a token there is none of (but not sooner
            // than the first retry: calls must not hammer a failing endpoint); checking each
            // second that the gateway still exists.
            loop {
                let now = Instant::now();
                if now >= next {
                    break;
                }
                let Some(source) = this.upgrade() else { return };
                let asked = tokio::select! {
                    () = source.wanted.notified() => true,
                    () = tokio::time::sleep((next - now).min(Duration::from_secs(1))) => false,
                };
                if asked && source.usable().is_none() && attempted.elapsed() >= FIRST_RETRY {
                    break;
                }
            }
        }
    }
}
