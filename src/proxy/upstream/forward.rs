//! Forwards a checked request to a backend with awc and streams the answer back untouched
//! (through a [`Relay`], which fails the client's response if the backend cuts its body).
//!
//! One awc client per worker (awc clients are not `Send`), HTTP/1.1 with TCP_NODELAY on both
//! sides so that small SSE chunks are not held back, no redirects, no decompression (the body
//! goes back exactly as the backend encoded it), and explicit timeouts: connecting (TLS
//! included) and waiting for the response headers. A streamed body is not timed out.
//!
//! Going up, the client's credentials and every hop-by-hop header are dropped and the backend's
//! own `api-key` (or Entra ID token) is set. Coming back, hop-by-hop headers are dropped, everything else (Azure's
//! `x-ms-region`, `apim-request-id`, `x-ratelimit-*`, `retry-after`, …) passes, and
//! `x-aoai-gateway-backend` names the backend that answered.

use std::time::Duration;

use actix_service::ServiceExt;
use actix_web::HttpResponse;
use actix_web::body::{BodyStream, SizedStream};
use actix_web::http::header::{self, HeaderMap, HeaderName};
use actix_web::http::{ConnectionType, Method, StatusCode, Version};
use awc::error::SendRequestError;
use bytes::Bytes;

use super::{Failure, UpstreamError};
use crate::config::{Backend, BackendCredential};
use crate::proxy::answer::relay::{End, Ended, Framing, Learn, Relay, WatchedStream};
use crate::proxy::call::CLIENT_REQUEST_ID;
use crate::proxy::inbound::auth::{API_KEY_HEADER, AUTHORIZATION, OCP_APIM_HEADER};
use crate::tokens::meter::Meter;
use crate::traces::Propagation;

pub const BACKEND_HEADER: &str = "x-aoai-gateway-backend";

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Client credentials: the gateway's own, never the backend's business.
const CLIENT_CREDENTIALS: [&str; 3] = [API_KEY_HEADER, OCP_APIM_HEADER, AUTHORIZATION];

/// A client for one worker.
pub fn client(connect_timeout: Duration, response_timeout: Duration) -> awc::Client {
    // rustls needs a process-wide crypto provider before the first TLS connector exists; a
    // second install (another worker) is refused harmlessly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tcp = actix_tls::connect::Connector::new(actix_tls::connect::Resolver::default())
        .service()
        .map(
            |connection: actix_tls::connect::Connection<awc::http::Uri, tokio::net::TcpStream>| {
                // Best effort: a socket that refuses it still works, only slower.
                let _ = connection.io_ref().set_nodelay(true);
                // Watched, so that a body cut by a closed connection is told from a finished
                // one (see `relay`).
                let (stream, connection) = connection.replace_io(());
                connection.replace_io(WatchedStream(stream)).1
            },
        );
    let connector = awc::Connector::new()
        .connector(tcp)
        .timeout(connect_timeout)
        .handshake_timeout(connect_timeout)
        .max_http_version(Version::HTTP_11)
        .limit(1024);
    awc::Client::builder()
        .connector(connector)
        .timeout(response_timeout)
        .disable_redirects()
        .no_default_headers()
        .finish()
}

/// Header names the `Connection` header lists as hop-by-hop for this message.
pub(crate) fn connection_tokens(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

pub(crate) fn is_hop_by_hop(name: &HeaderName, tokens: &[String]) -> bool {
    let name = name.as_str();
    HOP_BY_HOP.contains(&name) || tokens.iter().any(|t| t == name)
}

/// Drops from a backend's response headers what is not the client's: hop-by-hop headers, the
/// length (the client's connection frames the body itself) and any `api-key`.
pub(crate) fn trim_response_headers(headers: &mut HeaderMap) {
    // Looking for what is there costs less than removing every name that might be.
    let tokens = connection_tokens(headers);
    let unwanted: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            *name == header::CONTENT_LENGTH
                || is_hop_by_hop(name, &tokens)
                || name.as_str() == API_KEY_HEADER
        })
        .cloned()
        .collect();
    for name in unwanted {
        headers.remove(name);
    }
}

/// Whether a client's request header goes up to a backend: not hop-by-hop (`tokens`: those its
/// `Connection` header lists), not a credential of the client's, not `Host` or the length.
pub(crate) fn passes_up(name: &HeaderName, tokens: &[String]) -> bool {
    !(is_hop_by_hop(name, tokens)
        || CLIENT_CREDENTIALS.contains(&name.as_str())
        || name == header::HOST
        || name == header::CONTENT_LENGTH)
}

/// The backend's own credential: its `api-key`, or a keyless backend's bearer token (none: the
/// call is not sent, and may go to another backend).
pub(crate) async fn credential(
    backend: &Backend,
) -> Result<(HeaderName, header::HeaderValue), UpstreamError> {
    match &backend.credential {
        BackendCredential::ApiKey(key) => {
            Ok((HeaderName::from_static(API_KEY_HEADER), key.clone()))
        }
        BackendCredential::Entra(source) => source
            .bearer()
            .await
            .map(|bearer| (header::AUTHORIZATION, bearer))
            .map_err(|detail| UpstreamError::new(&backend.name, Failure::Credential, detail)),
    }
}

/// What goes to the backend.
pub struct Outgoing<'a> {
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    /// Path below the backend's base URL, with the backend's deployment name in it.
    pub path: &'a str,
    /// Query string without the client's subscription key; empty for none.
    pub query: &'a str,
    pub body: Bytes,
    /// `body` is the decoded form of what the client sent compressed (to edit it): its
    /// `Content-Encoding` no longer applies.
    pub decoded: bool,
    /// The call's id, for Azure's logs, when the client sent none of its own.
    pub request_id: Option<header::HeaderValue>,
    /// The attempt's trace context, when the gateway traces: it replaces the client's.
    pub trace: Option<Propagation>,
    /// An `Authorization` value to send instead of the backend's own credential: an ephemeral
    /// secret the backend minted.
    pub bearer: Option<&'a header::HeaderValue>,
}

/// A backend's answer: its status and headers (already trimmed for the client) and its body,
/// not yet read. Failover looks at the head; only the answer handed to the client is read.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    body: awc::ClientResponse,
    length: Option<u64>,
    framing: Framing,
}

impl Answer {
    /// The length of the answer's body, when the backend announced it.
    pub fn length(&self) -> Option<u64> {
        self.length
    }

    /// The answer's media type, without its parameters (as written: compare it ignoring case).
    pub fn media_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map_or("", str::trim)
    }

    /// The whole body, up to `limit` bytes, for an answer the gateway rewrites (a list of
    /// stored objects); `backend` names the backend for the error.
    pub async fn read_whole(
        mut self,
        backend: &str,
        limit: usize,
    ) -> Result<(StatusCode, HeaderMap, Bytes), UpstreamError> {
        let body = self
            .body
            .body()
            .limit(limit)
            .await
            .map_err(|e| UpstreamError::new(backend, Failure::Broken, e.to_string()))?;
        Ok((self.status, self.headers, body))
    }

    /// The client's response, streaming the body as it arrives, read by `meter` (and, for an
    /// answer that creates a stored object, `learn`) on the way;
    /// `on_end` hears how the body ended (see [`relay`](crate::proxy::answer::relay)). `client` is the
    /// client's HTTP version: an HTTP/1.0 client knows no chunked encoding, so a body of
    /// unknown length is delimited by closing its connection.
    pub fn into_response(
        self,
        client: Version,
        meter: Option<Meter>,
        learn: Option<Learn>,
        on_end: impl FnOnce(Ended) + Unpin + 'static,
    ) -> HttpResponse {
        // actix never reads a body it knows to be empty, so such an answer ends here.
        let empty = self.length == Some(0)
            || matches!(
                self.status,
                StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
            );
        if empty {
            on_end(Ended {
                end: End::Complete { bytes: 0 },
                reading: None,
                first_byte: None,
            });
            let mut reply = HttpResponse::build(self.status).finish();
            *reply.headers_mut() = self.headers;
            return reply;
        }
        // A meter that may take bytes out cannot keep the length the backend announced.
        let length = self
            .length
            .filter(|_| meter.as_ref().is_none_or(|m| !m.edits()));
        let relay = Relay::new(self.body, self.framing, meter, on_end).learning(learn);
        // A known length is kept so the client sees it.
        let mut reply = match length {
            Some(length) => HttpResponse::build(self.status).body(SizedStream::new(length, relay)),
            None => HttpResponse::build(self.status).body(BodyStream::new(relay)),
        };
        *reply.headers_mut() = self.headers;
        if length.is_none() && client < Version::HTTP_11 {
            reply.head_mut().no_chunking(true);
            reply.head_mut().set_connection_type(ConnectionType::Close);
        }
        reply
    }
}

/// Sends one attempt to `backend`; its answer's head, or why there is none.
pub async fn forward(
    client: &awc::Client,
    backend: &Backend,
    out: Outgoing<'_>,
) -> Result<Answer, UpstreamError> {
    let mut url =
        String::with_capacity(backend.base_url.len() + out.path.len() + out.query.len() + 1);
    url.push_str(&backend.base_url);
    url.push_str(out.path);
    if !out.query.is_empty() {
        url.push('?');
        url.push_str(out.query);
    }
    let mut request = client.request(out.method.clone(), url.as_str());
    // Filled in place: awc's builder would move the whole request for every header.
    let headers = request.headers_mut();
    let tokens = connection_tokens(out.headers);
    for (name, value) in out.headers {
        if !passes_up(name, &tokens) || (out.decoded && name == header::CONTENT_ENCODING) {
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
    headers.insert(header::HOST, backend.host.clone());
    let (name, value) = match out.bearer {
        // A secret this backend minted is the credential it wants for it.
        Some(bearer) => (header::AUTHORIZATION, bearer.clone()),
        None => credential(backend).await?,
    };
    headers.insert(name, value);
    if let Some(id) = out.request_id {
        headers.insert(CLIENT_REQUEST_ID, id);
    }
    if let Some(trace) = out.trace {
        headers.insert(HeaderName::from_static("traceparent"), trace.traceparent);
        match trace.tracestate {
            Some(state) => {
                headers.insert(HeaderName::from_static("tracestate"), state);
            }
            None => {
                headers.remove("tracestate");
            }
        }
    }

    let response = request.send_body(out.body).await.map_err(|e| {
        let kind = match &e {
            SendRequestError::Connect(_) => Failure::Connect,
            SendRequestError::Timeout => Failure::Timeout,
            _ => Failure::Broken,
        };
        UpstreamError::new(&backend.name, kind, e.to_string())
    })?;

    let status = response.status();
    // The backend's header map is taken, not copied, and trimmed in place.
    let mut headers = HeaderMap::new();
    let body = response.map_body(|head, payload| {
        headers = std::mem::take(&mut head.headers);
        payload
    });
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let chunked = headers
        .get_all(header::TRANSFER_ENCODING)
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("chunked"));
    let framing = if chunked || length.is_some() {
        Framing::Delimited
    } else {
        Framing::UntilClose
    };
    trim_response_headers(&mut headers);
    headers.insert(
        HeaderName::from_static(BACKEND_HEADER),
        backend.name_header.clone(),
    );
    Ok(Answer {
        status,
        headers,
        body,
        length,
        framing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    #[test]
    fn response_headers_lose_hop_by_hop_length_and_keys_only() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "dropped"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("content-length", "12"),
            ("api-key", "leaked"),
            ("x-ms-region", "East US"),
            ("retry-after", "7"),
            ("content-type", "application/json"),
        ] {
            headers.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        trim_response_headers(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort();
        assert_eq!(left, ["content-type", "retry-after", "x-ms-region"]);
    }
}
