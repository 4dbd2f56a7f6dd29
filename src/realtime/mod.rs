//! The Realtime API: WebSocket sessions (`/openai/realtime` on dated api-versions,
//! `/openai/v1/realtime` on v1) and the REST calls around them: an ephemeral client secret
//! minted (`/openai/v1/realtime/client_secrets`, or `/openai/realtimeapi/sessions` on dated
//! previews), and a WebRTC call's SDP offer (`/openai/v1/realtime/calls`).
//!
//! No OpenAPI document describes the WebSocket, and the shipped documents have none of the REST
//! calls, so these are the gateway's own routes, matched ahead of the generated tables
//! ([`endpoint`]); every other `Upgrade` is still refused.
//!
//! A session is opened like any deployment call (the caller, its limits, a backend by tiers,
//! weights, rests and circuits; [`session`]), with a failover while the backend's handshake
//! fails, then stays on that backend for its life while [`relay`] carries frames both ways,
//! counting the usage each `response.done` reports and refusing, with a realtime `error` event,
//! a `response.create` its subscription cannot afford ([`events`]). A secret minted through the
//! gateway is remembered in the stored-objects directory ([`secrets`]) and opens sessions, and
//! WebRTC calls ([`rest`]), on the backend that minted it only.

pub mod credential;
pub mod events;
pub mod relay;
pub mod rest;
pub mod secrets;
pub mod session;
pub mod wire;

use std::borrow::Cow;
use std::sync::Mutex;

use actix_web::HttpRequest;
use actix_web::http::Method;
use aoai_runtime::catalog::{self, Objects, Route};

use crate::generated::API_VERSIONS;
use crate::proxy::error::GatewayError;
use crate::proxy::inbound::query;

/// The largest event either side may send, in bytes: an audio append of a few seconds is
/// under 1 MiB as base64; OpenAI documents 15 MiB as the most a client event may be.
pub const MAX_EVENT_BYTES: usize = 16 << 20;

/// A realtime route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// The WebSocket; `v1`: on the v1 API (the deployment in `model`), else on a dated
    /// api-version (the deployment in `deployment`).
    Socket { v1: bool },
    /// An ephemeral client secret minted.
    Mint { v1: bool },
    /// A WebRTC call's SDP offer.
    Calls,
}

impl Endpoint {
    /// The route, as access records and traces name it.
    pub fn route(self) -> &'static Route {
        match self {
            Endpoint::Socket { v1: false } => &SOCKET,
            Endpoint::Socket { v1: true } => &SOCKET_V1,
            Endpoint::Mint { v1: false } => &MINT,
            Endpoint::Mint { v1: true } => &MINT_V1,
            Endpoint::Calls => &CALLS,
        }
    }

    fn v1(self) -> bool {
        match self {
            Endpoint::Socket { v1 } | Endpoint::Mint { v1 } => v1,
            Endpoint::Calls => true,
        }
    }
}

/// The realtime routes, as the access records, metrics and traces name them: nothing the
/// generated tables check (no parameters, no body schema), since no spec describes them.
const fn route(operation_id: &'static str, method: catalog::Method, path: &'static str) -> Route {
    Route {
        operation_id,
        method,
        path,
        summary: "",
        tags: &["Realtime"],
        deprecated: false,
        parameters: &[],
        request: None,
        responses: &[],
        stream_flag: None,
        deployment_field: None,
        reports_usage: false,
        unchecked: &[],
        overlaid: &[],
        objects: Objects::NONE,
    }
}

static SOCKET: Route = route("realtime", catalog::Method::Get, "/realtime");
static SOCKET_V1: Route = route("realtime", catalog::Method::Get, "/v1/realtime");
static MINT: Route = route(
    "realtimeapi_sessions",
    catalog::Method::Post,
    "/realtimeapi/sessions",
);
static MINT_V1: Route = route(
    "realtime_client_secrets",
    catalog::Method::Post,
    "/v1/realtime/client_secrets",
);
static CALLS: Route = route(
    "realtime_calls",
    catalog::Method::Post,
    "/v1/realtime/calls",
);

/// The realtime route a request is for, if any (`base_path` is the gateway's, `/openai`).
pub fn endpoint(req: &HttpRequest, base_path: &str) -> Option<Endpoint> {
    let below = req.path().strip_prefix(base_path)?;
    let post = req.method() == Method::POST;
    match below {
        "/realtime" => Some(Endpoint::Socket { v1: false }),
        "/v1/realtime" => Some(Endpoint::Socket { v1: true }),
        "/v1/realtime/client_secrets" if post => Some(Endpoint::Mint { v1: true }),
        "/realtimeapi/sessions" if post => Some(Endpoint::Mint { v1: false }),
        "/v1/realtime/calls" if post => Some(Endpoint::Calls),
        _ => None,
    }
}

/// The query parameter that names the deployment of a realtime call.
pub fn deployment_param(endpoint: Endpoint) -> &'static str {
    if endpoint.v1() { "model" } else { "deployment" }
}

/// The api-version a realtime call is balanced under: `v1`, or the dated version it names,
/// which must look like one (`2025-04-01-preview`): the realtime previews are not among the
/// compiled specs, and a backend's `api_versions` allow-list still applies to them.
pub fn version(endpoint: Endpoint, raw_query: &str) -> Result<&'static str, GatewayError> {
    let given = query::get(raw_query, "api-version");
    if endpoint.v1() {
        return match given.as_deref() {
            None | Some("v1" | "preview") => Ok("v1"),
            Some(other) => Err(GatewayError::InvalidParameter {
                name: "api-version".into(),
                message: format!(
                    "the v1 API takes `v1` or `preview`, not `{}`",
                    crate::proxy::error::printable(other)
                ),
            }),
        };
    }
    let given = given.ok_or_else(|| GatewayError::InvalidParameter {
        name: "api-version".into(),
        message: "a realtime call on a dated api-version needs one".into(),
    })?;
    interned(&given).ok_or_else(|| GatewayError::InvalidParameter {
        name: "api-version".into(),
        message: format!(
            "`{}` is not an api-version (YYYY-MM-DD, or YYYY-MM-DD-preview)",
            crate::proxy::error::printable(&given)
        ),
    })
}

/// Dated versions seen in realtime calls, kept for the process's life (the balancer keys its
/// rotations by a static version); bounded, so that a client cannot grow it.
static SEEN_VERSIONS: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
const MAX_SEEN_VERSIONS: usize = 32;

fn interned(version: &str) -> Option<&'static str> {
    if let Some(api) = API_VERSIONS.iter().find(|a| a.version == version) {
        return Some(api.version);
    }
    if !looks_dated(version) {
        return None;
    }
    let mut seen = SEEN_VERSIONS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(known) = seen.iter().find(|v| **v == version) {
        return Some(known);
    }
    if seen.len() >= MAX_SEEN_VERSIONS {
        return None;
    }
    let leaked: &'static str = Box::leak(version.to_string().into_boxed_str());
    seen.push(leaked);
    Some(leaked)
}

/// `YYYY-MM-DD` or `YYYY-MM-DD-preview`.
fn looks_dated(version: &str) -> bool {
    let date = version.strip_suffix("-preview").unwrap_or(version);
    let bytes = date.as_bytes();
    bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        })
}

/// The deployment a realtime call names in its query.
pub fn deployment(endpoint: Endpoint, raw_query: &str) -> Result<String, GatewayError> {
    let name = deployment_param(endpoint);
    query::get(raw_query, name)
        .filter(|d| !d.is_empty())
        .map(Cow::into_owned)
        .ok_or_else(|| GatewayError::InvalidParameter {
            name: name.into(),
            message: "names the deployment of the realtime session, so it is required".into(),
        })
}

/// The query a backend gets: the client's, without credentials (`api-key`, `subscription-key`),
/// with `param` (the deployment) set to `name`, the backend's own name for it.
pub fn backend_query(raw_query: &str, param: &str, name: &str) -> String {
    let dropped = ["api-key", crate::proxy::inbound::auth::QUERY_PARAM, param];
    let mut parts: Vec<Cow<'_, str>> = raw_query
        .split('&')
        .filter(|p| !p.is_empty() && !dropped.contains(&p.split('=').next().unwrap_or_default()))
        .map(Cow::Borrowed)
        .collect();
    parts.push(Cow::Owned(format!("{param}={}", query::encode(name))));
    parts.join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_dates_and_kept_once() {
        assert!(looks_dated("2025-04-01-preview"));
        assert!(looks_dated("2024-12-17"));
        assert!(!looks_dated("2025-4-01"));
        assert!(!looks_dated("latest"));
        let a = interned("2025-04-01-preview").unwrap();
        let b = interned("2025-04-01-preview").unwrap();
        assert!(std::ptr::eq(a, b));
        assert_eq!(interned("2024-10-21"), Some("2024-10-21"));
        assert_eq!(interned("nope"), None);
    }

    #[test]
    fn the_backend_query_names_its_deployment_and_no_key() {
        assert_eq!(
            backend_query(
                "api-version=2025-04-01-preview&deployment=gpt-rt&api-key=secret",
                "deployment",
                "east rt"
            ),
            "api-version=2025-04-01-preview&deployment=east%20rt"
        );
        assert_eq!(
            backend_query("subscription-key=k&call_id=rtc_1", "model", "m"),
            "call_id=rtc_1&model=m"
        );
        assert_eq!(backend_query("model=a&model=b", "model", "m"), "model=m");
    }
}
