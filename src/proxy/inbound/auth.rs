//! Subscription keys: where a client may send one (`Ocp-Apim-Subscription-Key`, `api-key`,
//! `Authorization: Bearer`, `?subscription-key=`, each switchable), and checking it; or, with
//! `[[auth.entra]]`, an Entra ID token in `Authorization: Bearer` instead (checked in
//! [`identity::callers`](crate::identity::callers)).
//!
//! Keys are compared as SHA-256 digests with a constant-time equality, against every
//! subscription without stopping at the first hit, so neither a key's prefix nor its position in
//! the list shows in the response time. Only digests are kept in memory after start-up, and a
//! key is never logged: the log names the subscription.

use std::borrow::Cow;

use actix_web::http::header::HeaderMap;
use subtle::ConstantTimeEq;

use crate::config::{AuthConfig, Subscription, sha256};
use crate::identity::callers::{self, Issuer};
use crate::identity::jwt::looks_like_jwt;
use crate::proxy::error::GatewayError;
use crate::proxy::inbound::query;

pub const OCP_APIM_HEADER: &str = "ocp-apim-subscription-key";
pub const API_KEY_HEADER: &str = "api-key";
pub const QUERY_PARAM: &str = "subscription-key";
pub const AUTHORIZATION: &str = "authorization";
pub const SEC_WEBSOCKET_PROTOCOL: &str = "sec-websocket-protocol";
/// The prefix of the WebSocket subprotocol entry that carries a browser's key.
pub const INSECURE_KEY_PROTOCOL: &str = "openai-insecure-api-key.";

pub struct Auth {
    places: AuthConfig,
    subscriptions: Vec<Subscription>,
    issuers: Vec<Issuer>,
}

/// What a request presents.
pub enum Presented<'r> {
    Key(Cow<'r, str>),
    Token(&'r str),
}

impl Auth {
    pub fn new(places: AuthConfig, subscriptions: Vec<Subscription>, issuers: Vec<Issuer>) -> Auth {
        Auth {
            places,
            subscriptions,
            issuers,
        }
    }

    /// The index of the subscription named `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.subscriptions.iter().position(|s| s.name == name)
    }

    /// The subscriptions, by index.
    pub fn subscriptions(&self) -> &[Subscription] {
        &self.subscriptions
    }

    /// The issuers whose tokens callers may present.
    pub fn issuers(&self) -> &[Issuer] {
        &self.issuers
    }

    /// The subscription the request's key (or token) belongs to: its index in the config and
    /// its name.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        raw_query: &str,
    ) -> Result<(usize, &str), GatewayError> {
        let index = match self.presented(headers, raw_query) {
            Some(Presented::Key(key)) => self.by_key(&key),
            Some(Presented::Token(token)) => Some(self.by_token(token).await?),
            None => None,
        };
        index
            .and_then(|i| Some((i, self.subscriptions.get(i)?.name.as_str())))
            .ok_or(GatewayError::Unauthorized)
    }

    /// The subscription a caller's Entra ID token maps to.
    pub async fn by_token(&self, token: &str) -> Result<usize, GatewayError> {
        callers::authenticate(&self.issuers, token)
            .await
            .map_err(|why| {
                tracing::debug!("a caller's token was refused: {why:?}");
                GatewayError::InvalidToken
            })
    }

    /// The subscription whose key `key` is.
    pub fn by_key(&self, key: &str) -> Option<usize> {
        let digest = sha256(key);
        let mut found = None;
        for (i, s) in self.subscriptions.iter().enumerate() {
            let Some(own) = &s.key_sha256 else { continue };
            if bool::from(own.ct_eq(&digest)) && found.is_none() {
                found = Some(i);
            }
        }
        found
    }

    /// What a realtime WebSocket handshake presents: what any request may, else what a browser
    /// can send, which sets no headers: the `openai-insecure-api-key.<key>` entry of
    /// `Sec-WebSocket-Protocol`, or an `api-key` query parameter.
    pub fn presented_by_socket<'r>(
        &self,
        headers: &'r HeaderMap,
        raw_query: &'r str,
    ) -> Option<Presented<'r>> {
        if let Some(presented) = self.presented(headers, raw_query) {
            return Some(presented);
        }
        let offered = headers
            .get_all(SEC_WEBSOCKET_PROTOCOL)
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .find_map(|p| p.trim().strip_prefix(INSECURE_KEY_PROTOCOL))
            .filter(|k| !k.is_empty());
        if let Some(key) = offered {
            return Some(Presented::Key(Cow::Borrowed(key)));
        }
        query::get(raw_query, API_KEY_HEADER)
            .filter(|k| !k.is_empty())
            .map(Presented::Key)
    }

    /// What the request presents, in the first allowed place that has something; borrowed
    /// from the request unless the query string had to decode it.
    pub fn presented<'r>(
        &self,
        headers: &'r HeaderMap,
        raw_query: &'r str,
    ) -> Option<Presented<'r>> {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        if self.places.ocp_apim_subscription_key_header
            && let Some(key) = header(OCP_APIM_HEADER)
        {
            return Some(Presented::Key(Cow::Borrowed(key)));
        }
        if self.places.api_key_header
            && let Some(key) = header(API_KEY_HEADER)
        {
            return Some(Presented::Key(Cow::Borrowed(key)));
        }
        let credentials = header(AUTHORIZATION)
            .and_then(bearer)
            .filter(|k| !k.is_empty());
        if let Some(credentials) = credentials {
            if !self.issuers.is_empty() && looks_like_jwt(credentials) {
                return Some(Presented::Token(credentials));
            }
            if self.places.bearer_header {
                return Some(Presented::Key(Cow::Borrowed(credentials)));
            }
        }
        if self.places.subscription_key_query {
            return query::get(raw_query, QUERY_PARAM)
                .filter(|k| !k.is_empty())
                .map(Presented::Key);
        }
        None
    }

    /// The name of subscription `index`, for logs.
    pub fn subscription_name(&self, index: usize) -> Option<&str> {
        self.subscription(index).map(|s| s.name.as_str())
    }

    pub fn subscription(&self, index: usize) -> Option<&Subscription> {
        self.subscriptions.get(index)
    }

    /// Whether a page of the gateway's own (docs, metrics) may be read: with no key required,
    /// always.
    pub async fn allows_page(
        &self,
        required: bool,
        headers: &HeaderMap,
        raw_query: &str,
    ) -> Result<(), GatewayError> {
        if required {
            self.authenticate(headers, raw_query).await.map(|_| ())
        } else {
            Ok(())
        }
    }
}

/// The credentials of an `Authorization: Bearer <credentials>` value (the scheme's name is
/// case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credentials.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn auth(places: AuthConfig) -> Auth {
        Auth::new(
            places,
            vec![
                Subscription {
                    name: "a".into(),
                    key_sha256: Some(sha256("k1")),
                    limits: Default::default(),
                    objects_admin: false,
                },
                Subscription {
                    name: "b".into(),
                    key_sha256: Some(sha256("k2")),
                    limits: Default::default(),
                    objects_admin: false,
                },
            ],
            Vec::new(),
        )
    }

    /// Keys are checked without waiting for anything.
    fn check(a: &Auth, headers: &HeaderMap, query: &str) -> Result<(usize, String), GatewayError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        runtime
            .block_on(a.authenticate(headers, query))
            .map(|(i, name)| (i, name.to_string()))
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn accepts_each_place_and_names_the_subscription() {
        let a = auth(AuthConfig::default());
        assert_eq!(
            check(&a, &headers(&[("api-key", "k2")]), "").unwrap().1,
            "b"
        );
        assert_eq!(
            check(&a, &headers(&[("ocp-apim-subscription-key", "k1")]), "")
                .unwrap()
                .1,
            "a"
        );
        assert_eq!(
            check(&a, &headers(&[]), "api-version=1&subscription-key=k1")
                .unwrap()
                .1,
            "a"
        );
        assert!(check(&a, &headers(&[("api-key", "nope")]), "").is_err());
        assert!(check(&a, &headers(&[]), "").is_err());
    }

    #[test]
    fn a_bearer_token_is_a_key_too() {
        let a = auth(AuthConfig::default());
        let bearer = headers(&[("authorization", "Bearer k2")]);
        assert_eq!(check(&a, &bearer, "").unwrap().1, "b");
        let lower = headers(&[("authorization", "bearer  k2")]);
        assert_eq!(check(&a, &lower, "").unwrap().1, "b");
        assert!(check(&a, &headers(&[("authorization", "Basic k2")]), "").is_err());
        let off = auth(AuthConfig {
            bearer_header: false,
            ..AuthConfig::default()
        });
        assert!(check(&off, &bearer, "").is_err());
    }

    #[test]
    fn places_can_be_switched_off() {
        let a = auth(AuthConfig {
            subscription_key_query: false,
            api_key_header: false,
            ..AuthConfig::default()
        });
        assert!(check(&a, &headers(&[]), "subscription-key=k1").is_err());
        assert!(check(&a, &headers(&[("api-key", "k1")]), "").is_err());
        assert!(check(&a, &headers(&[("ocp-apim-subscription-key", "k1")]), "").is_ok());
    }
}
