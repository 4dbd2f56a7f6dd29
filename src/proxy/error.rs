//! Every way a request can fail, mapped to a status and an Azure-shaped body in one place.
//!
//! The client gets `{"error": {"code": "...", "message": "..."}}` (plus `param` when one field
//! is at fault), the shape Azure OpenAI and its SDKs use. The message is written for the client:
//! it never carries a backend's address, its key or the client's key. What the operator needs
//! (which backend, what the socket said) goes to the log through [`GatewayError::internal`].

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use aoai_runtime::catalog::Method;
use aoai_runtime::schema::ValidationError;

use super::upstream::{Failure, UpstreamError};
use crate::limits::{Refusal, Remaining, Which};
use crate::objects::refusal::Refused;

pub const REMAINING_TOKENS: header::HeaderName =
    header::HeaderName::from_static("x-ratelimit-remaining-tokens");
pub const REMAINING_REQUESTS: header::HeaderName =
    header::HeaderName::from_static("x-ratelimit-remaining-requests");

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("no route matches the path")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allowed: Vec<Method> },
    #[error("missing api-version")]
    MissingApiVersion { supported: Vec<&'static str> },
    #[error("unsupported api-version {given}")]
    UnsupportedApiVersion {
        given: String,
        supported: Vec<&'static str>,
    },
    #[error("missing or invalid subscription key")]
    Unauthorized,
    /// A caller's Entra ID token did not check out (why is logged at debug, never told).
    #[error("invalid access token")]
    InvalidToken,
    #[error("invalid parameter {name}: {message}")]
    InvalidParameter { name: String, message: String },
    /// The body is not what the named api-version's spec says.
    #[error("invalid body for the {spec} spec: {error}")]
    InvalidBody {
        error: ValidationError,
        spec: &'static str,
    },
    #[error("invalid body: {0}")]
    MalformedBody(String),
    #[error("missing body")]
    MissingBody,
    #[error("unsupported content encoding {given}")]
    UnsupportedEncoding { given: String },
    #[error("the path has a dot segment or an encoded slash")]
    InvalidPath,
    #[error("parameter {name} is given more than once")]
    RepeatedParameter { name: String },
    #[error("unsupported media type {given}")]
    UnsupportedMediaType {
        given: String,
        accepted: Vec<&'static str>,
    },
    #[error("body over {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("no backend serves this deployment")]
    NoBackend {
        deployment: Option<String>,
        version: String,
    },
    /// The last backend tried gave no answer (see [`UpstreamError`]).
    #[error("{0}")]
    Upstream(UpstreamError),
    #[error("reading the request failed: {0}")]
    ClientRead(String),
    #[error("the client did not send its body within {limit_ms} ms")]
    ClientTimeout { limit_ms: u128 },
    #[error("the client asked to upgrade the connection")]
    UpgradeRefused,
    /// A realtime WebSocket handshake that is not one.
    #[error("bad WebSocket handshake: {0}")]
    BadHandshake(String),
    /// Every backend tried refused a realtime session's handshake; the last with `status`.
    #[error("backend {backend} refused the realtime handshake with {status}")]
    HandshakeRefused { status: StatusCode, backend: String },
    #[error("over the subscription's {} limit", .0.which.as_str())]
    LimitExceeded(Box<Refusal>),
    #[error("shared state does not answer, and the gateway refuses calls without it")]
    StateUnavailable,
    /// A call refused for the stored objects it names.
    #[error("{0}")]
    Object(Box<Refused>),
    #[error("the object directory does not answer")]
    DirectoryUnavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

impl GatewayError {
    /// A stable code clients can match on.
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::NotFound => "NotFound",
            GatewayError::MethodNotAllowed { .. } => "MethodNotAllowed",
            GatewayError::MissingApiVersion { .. } => "MissingApiVersion",
            GatewayError::UnsupportedApiVersion { .. } => "UnsupportedApiVersion",
            GatewayError::Unauthorized => "Unauthorized",
            // Azure OpenAI's own code for a refused token.
            GatewayError::InvalidToken => "401",
            GatewayError::InvalidParameter { .. }
            | GatewayError::InvalidBody { .. }
            | GatewayError::MalformedBody(_)
            | GatewayError::MissingBody
            | GatewayError::ClientRead(_)
            | GatewayError::UpgradeRefused
            | GatewayError::BadHandshake(_) => "InvalidRequest",
            GatewayError::HandshakeRefused { status, .. } => match status.as_u16() {
                429 => "429",
                404 => "DeploymentNotFound",
                400 => "InvalidRequest",
                _ => "BadGateway",
            },
            GatewayError::ClientTimeout { .. } => "RequestTimeout",
            GatewayError::Internal(_) => "InternalError",
            GatewayError::UnsupportedMediaType { .. }
            | GatewayError::UnsupportedEncoding { .. } => "UnsupportedMediaType",
            GatewayError::InvalidPath | GatewayError::RepeatedParameter { .. } => "InvalidRequest",
            GatewayError::PayloadTooLarge { .. } => "PayloadTooLarge",
            GatewayError::NoBackend { .. } => "DeploymentNotFound",
            GatewayError::Upstream(e) if e.kind == Failure::Timeout => "GatewayTimeout",
            GatewayError::Upstream(_) => "BadGateway",
            // Azure's own code for a rate limit, which clients match on.
            GatewayError::LimitExceeded(_) => "429",
            GatewayError::StateUnavailable | GatewayError::DirectoryUnavailable => {
                "ServiceUnavailable"
            }
            GatewayError::Object(refused) => refused.code(),
        }
    }

    /// What the client is told.
    pub fn message(&self) -> String {
        match self {
            GatewayError::NotFound => "Resource not found: no operation of this gateway has this path.".into(),
            GatewayError::MethodNotAllowed { allowed } => {
                let allowed: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
                format!("This path does not accept this method; it accepts {}.", allowed.join(", "))
            }
            GatewayError::MissingApiVersion { supported } => {
                format!("Missing the api-version query parameter. Supported api-versions: {}.", supported.join(", "))
            }
            GatewayError::UnsupportedApiVersion { given, supported } => {
                format!("api-version '{}' is not supported. Supported api-versions: {}.", printable(given), supported.join(", "))
            }
            GatewayError::Unauthorized => "Access denied due to a missing or invalid subscription key. Send it in the api-key or Ocp-Apim-Subscription-Key header.".into(),
            GatewayError::InvalidToken => "Unauthorized. Access token is missing, invalid, audience is incorrect, or has expired.".into(),
            GatewayError::InvalidParameter { name, message } => format!("Invalid parameter '{name}': {message}"),
            GatewayError::InvalidBody { error, spec } => format!("The request body does not match the {spec} spec: {error}"),
            GatewayError::MalformedBody(m) => format!("The request body is malformed: {m}"),
            GatewayError::MissingBody => "This operation needs a request body.".into(),
            GatewayError::UnsupportedMediaType { given, accepted } => {
                format!("Content-Type '{}' is not accepted here; use {}.", printable(given), accepted.join(" or "))
            }
            GatewayError::UnsupportedEncoding { given } => format!("Content-Encoding '{}' is not accepted here; send the body as it is, or compressed with gzip, deflate or br.", printable(given)),
            GatewayError::InvalidPath => "The path has a '.' or '..' segment, or a segment with an encoded '/' or '\\', which the gateway does not forward: a server that normalises paths would see another route.".into(),
            GatewayError::RepeatedParameter { name } => format!("The query parameter '{}' is given more than once; give it once.", printable(name)),
            GatewayError::PayloadTooLarge { limit } => format!("The request body is larger than the gateway's limit of {limit} bytes."),
            GatewayError::NoBackend { deployment: Some(d), version } => {
                format!("No backend serves deployment '{}' with api-version {version}.", printable(d))
            }
            GatewayError::NoBackend { deployment: None, version } => format!("No backend serves this operation with api-version {version}."),
            GatewayError::Upstream(e) if e.kind == Failure::Timeout => "The backend did not answer in time. Try again later.".into(),
            GatewayError::Upstream(_) => "The backend could not be reached. Try again later.".into(),
            GatewayError::ClientRead(_) => "The request body could not be read.".into(),
            GatewayError::ClientTimeout { limit_ms } => format!("The request body did not arrive within {limit_ms} ms."),
            GatewayError::Internal(_) => "The gateway failed to handle the request. Try again.".into(),
            GatewayError::UpgradeRefused => "This gateway switches protocols only for the realtime WebSocket (/openai/realtime, /openai/v1/realtime): send this request without an Upgrade header.".into(),
            GatewayError::BadHandshake(why) => format!("This path takes a WebSocket handshake: {why}."),
            GatewayError::HandshakeRefused { status, .. } => match status.as_u16() {
                429 => "Every backend of this deployment is over its quota for new realtime sessions. Retry shortly.".into(),
                404 => "The deployment was not found on the backend that serves it.".into(),
                400 => "The backend refused the realtime session's parameters.".into(),
                _ => "No backend accepted the realtime session. Try again later.".into(),
            },
            GatewayError::StateUnavailable => "The gateway cannot reach the state its replicas share, and is set to refuse calls rather than risk over-spending. Try again shortly.".into(),
            GatewayError::Object(refused) => refused.message(),
            GatewayError::DirectoryUnavailable => "The gateway cannot reach its directory of stored objects, which says whose each object is. Try again shortly.".into(),
            GatewayError::LimitExceeded(refusal) => {
                let what = match refusal.which {
                    Which::TokensPerMinute => "tokens per minute",
                    Which::RequestsPerMinute => "requests per minute",
                    Which::TokensPerDay => "tokens per day (UTC)",
                };
                let on = refusal
                    .deployment
                    .as_deref()
                    .map(|d| format!(" on deployment '{}'", printable(d)))
                    .unwrap_or_default();
                let needs = match refusal.which {
                    Which::RequestsPerMinute => String::new(),
                    _ => format!(" (this call needs an estimated {} tokens)", refusal.tokens),
                };
                format!(
                    "This subscription has exceeded its limit of {} {what}{on}{needs}. Please retry after {} seconds.",
                    refusal.limit,
                    retry_after_s(refusal.retry_after_ms)
                )
            }
        }
    }

    /// The field at fault, as Azure's `error.param`.
    pub fn param(&self) -> Option<String> {
        match self {
            GatewayError::InvalidParameter { name, .. }
            | GatewayError::RepeatedParameter { name } => Some(name.clone()),
            GatewayError::InvalidBody { error, .. } => error.path().map(str::to_string),
            GatewayError::Object(refused) => refused.param().map(str::to_string),
            _ => None,
        }
    }

    /// What the operator is told in the log.
    pub fn internal(&self) -> String {
        self.to_string()
    }
}

/// Echoes client input into a message only in a short, printable form.
pub fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(80).collect()
}

impl ResponseError for GatewayError {
    fn status_code(&self) -> StatusCode {
        match self {
            GatewayError::NotFound | GatewayError::NoBackend { .. } => StatusCode::NOT_FOUND,
            GatewayError::Object(refused) => refused.status(),
            GatewayError::DirectoryUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            GatewayError::MissingApiVersion { .. }
            | GatewayError::UnsupportedApiVersion { .. }
            | GatewayError::InvalidParameter { .. }
            | GatewayError::InvalidBody { .. }
            | GatewayError::MalformedBody(_)
            | GatewayError::MissingBody
            | GatewayError::ClientRead(_)
            | GatewayError::UpgradeRefused
            | GatewayError::BadHandshake(_) => StatusCode::BAD_REQUEST,
            // What the backend said, where it is the client's business; its own failures (and a
            // refused credential of the gateway's) are a bad gateway.
            GatewayError::HandshakeRefused { status, .. } => match status.as_u16() {
                400 | 404 | 429 => *status,
                _ => StatusCode::BAD_GATEWAY,
            },
            GatewayError::ClientTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            GatewayError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            GatewayError::Unauthorized | GatewayError::InvalidToken => StatusCode::UNAUTHORIZED,
            GatewayError::UnsupportedMediaType { .. }
            | GatewayError::UnsupportedEncoding { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            GatewayError::InvalidPath | GatewayError::RepeatedParameter { .. } => {
                StatusCode::BAD_REQUEST
            }
            GatewayError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::Upstream(e) if e.kind == Failure::Timeout => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::Upstream(_) => StatusCode::BAD_GATEWAY,
            GatewayError::LimitExceeded(_) => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::StateUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.to_response(None)
    }
}

/// Whole seconds to wait, rounded up, as `retry-after` says them.
pub fn retry_after_s(ms: u64) -> u64 {
    ms.div_ceil(1000).max(1)
}

/// Sets a subscription's `x-ratelimit-remaining-*` on a response, in place of any a backend
/// sent (a window the subscription does not have says nothing).
pub fn remaining_headers(headers: &mut header::HeaderMap, remaining: &Remaining) {
    for (name, value) in [
        (REMAINING_TOKENS, remaining.tokens),
        (REMAINING_REQUESTS, remaining.requests),
    ] {
        match value {
            Some(value) => {
                headers.insert(name, HeaderValue::from(value));
            }
            None => {
                headers.remove(name);
            }
        }
    }
}

impl GatewayError {
    /// The response in Azure's error shape, with the call's id when it has one.
    pub fn to_response(&self, request_id: Option<&str>) -> HttpResponse {
        let mut error = json!({ "code": self.code(), "message": self.message() });
        if let Some(param) = self.param() {
            error["param"] = param.into();
        }
        if let Some(id) = request_id {
            error["request_id"] = id.into();
        }
        let mut response = HttpResponse::build(self.status_code());
        if let GatewayError::LimitExceeded(refusal) = self {
            // What the openai SDKs wait for before retrying.
            let ms = refusal.retry_after_ms.max(1);
            response.insert_header(("retry-after", retry_after_s(ms)));
            response.insert_header(("retry-after-ms", ms));
        }
        match self {
            GatewayError::StateUnavailable | GatewayError::DirectoryUnavailable => {
                response.insert_header(("retry-after", 1));
            }
            GatewayError::HandshakeRefused { status, .. } if status.as_u16() == 429 => {
                response.insert_header(("retry-after", 1));
            }
            GatewayError::Object(refused) => {
                if let Some(ms) = refused.retry_after_ms() {
                    let ms = ms.max(1);
                    response.insert_header(("retry-after", retry_after_s(ms)));
                    response.insert_header(("retry-after-ms", ms));
                }
            }
            _ => {}
        }
        if let GatewayError::MethodNotAllowed { allowed } = self {
            let allow: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
            if let Ok(value) = HeaderValue::from_str(&allow.join(", ")) {
                response.insert_header((header::ALLOW, value));
            }
        }
        // The rest of the request may still be on its way (or never come): the connection
        // cannot carry another request.
        if matches!(
            self,
            GatewayError::ClientTimeout { .. }
                | GatewayError::UpgradeRefused
                | GatewayError::PayloadTooLarge { .. }
                | GatewayError::ClientRead(_)
        ) {
            response.force_close();
        }
        if matches!(self, GatewayError::Unauthorized) {
            response.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("api-key"),
            ));
        }
        if matches!(self, GatewayError::InvalidToken) {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        let mut response = response.json(json!({ "error": error }));
        if let GatewayError::LimitExceeded(refusal) = self {
            remaining_headers(response.headers_mut(), &refusal.remaining);
        }
        response
    }
}
