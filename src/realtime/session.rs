//! Opening a realtime session: the client's handshake checked, the caller known, one request
//! reserved against its limits (429 when over one, before any backend is asked), a backend
//! placed as for any deployment call, and its handshake made; while a backend refuses (429,
//! 5xx) or cannot be reached, the next is tried, and the client's handshake completes only once
//! one accepts. Then the client gets its `101` with the backend's headers (`x-ms-region`,
//! `apim-request-id`, the subprotocol it chose) and [`relay`](super::relay) carries the session.
//!
//! Going up, the backend gets its own `api-key` (or Entra token), or the ephemeral secret it
//! minted; never the client's key, wherever the client put it. A WebSocket extension
//! (`permessage-deflate`) is not negotiated on either side: the gateway reads the frames.

use std::time::Instant;

use actix_http::ws;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use awc::error::{SendRequestError, WsClientError};

use super::credential::{self, Caller};
use super::relay::{self, Session, Upstream};
use super::{Endpoint, MAX_EVENT_BYTES, wire};
use crate::balance::Ask;
use crate::config::Backend;
use crate::metrics::Headroom;
use crate::proxy::Gateway;
use crate::proxy::budget::{self, Budget};
use crate::proxy::call::Trace;
use crate::proxy::error::GatewayError;
use crate::proxy::inbound::auth::{INSECURE_KEY_PROTOCOL, SEC_WEBSOCKET_PROTOCOL};
use crate::proxy::upstream::forward::{self, BACKEND_HEADER};
use crate::proxy::upstream::{Failure, UpstreamError, failover};
use crate::state;
use crate::traces::Propagation;

/// Opens a session for the WebSocket handshake `req` (see the module note).
pub async fn open(
    endpoint: Endpoint,
    req: &HttpRequest,
    payload: web::Payload,
    gw: &web::Data<Gateway>,
    client: &awc::Client,
    trace: &mut Trace,
) -> Result<HttpResponse, GatewayError> {
    ws::verify_handshake(req.head()).map_err(|e| GatewayError::BadHandshake(e.to_string()))?;
    let caller = credential::caller(req, gw, true).await?;
    let subscription = caller.subscription();
    trace.subscription = Some(subscription);
    let raw_query = req.query_string();
    let version = super::version(endpoint, raw_query)?;
    let deployment = super::deployment(endpoint, raw_query)?;
    trace.deployment = Some(deployment.clone());

    let holder = caller.holder("api-key");
    // One request, and a token, so that a subscription whose token window is spent cannot
    // open a session it could not use; the token is given back once the session is open.
    let reserve = gw.limiter.limits(subscription).map(|_| (subscription, 1));
    let budget = Budget {
        reserve,
        at_most: None,
        cache_key: None,
    };
    let begun = budget::begin(gw, version, Some(&deployment), holder.as_ref(), budget).await?;
    // The token goes back now; the request stays spent, as a refused call's does. The
    // reservation is not the trace's, so that a failed handshake does not settle it twice.
    let opened = begun.reservation;
    if let Some(reservation) = &opened {
        state::settle(gw, reservation, 0);
    }

    let mut tried = Vec::new();
    let (mut index, mut backend) = begun.first;
    let connected = loop {
        trace.backend = Some(index);
        trace.attempts += 1;
        let sent = Instant::now();
        let route = endpoint.route().path;
        let propagation = trace
            .spans
            .as_mut()
            .map(|s| s.attempt(backend, trace.attempts, route, Some(&deployment)));
        let attempt = Attempt {
            endpoint,
            req,
            deployment: &deployment,
            caller: &caller,
            request_id: (!trace.client_sent_id).then(|| trace.id.clone()),
            propagation,
        };
        let result = connect(attempt, backend, client).await;
        let status = match &result {
            Ok(_) => Some(StatusCode::SWITCHING_PROTOCOLS.as_u16()),
            Err(Refused::Status(status)) => Some(status.as_u16()),
            Err(Refused::Failed(_)) => None,
        };
        gw.metrics
            .backend_call(index, status, sent.elapsed(), Headroom::default());
        let verdict = match &result {
            Ok(_) => failover::judge_answer(101, &HeaderMap::new(), &gw.failover),
            // awc keeps no headers of a refused handshake: the rest is the policy's own.
            Err(Refused::Status(status)) => {
                failover::judge_answer(status.as_u16(), &HeaderMap::new(), &gw.failover)
            }
            Err(Refused::Failed(error)) => failover::judge_failure(error, &gw.failover),
        };
        if gw.balancer.learn(index, Some(&deployment), verdict.outcome) {
            state::tell(gw, index, Some(&deployment), verdict.outcome);
        }
        tried.push(index);
        let refused = match result {
            Ok(connected) => {
                if let Some(spans) = trace.spans.as_mut() {
                    spans.answered(status, None, false);
                }
                break connected;
            }
            Err(refused) => refused,
        };
        let next = if verdict.move_on && tried.len() < gw.failover.attempts {
            gw.balancer.next(Ask {
                version,
                deployment: Some(&deployment),
                tried: &tried,
                at_most: None,
                pinned: caller.pinned(),
                affinity: None,
            })
        } else {
            None
        };
        if let Some(spans) = trace.spans.as_mut() {
            let failure = match &refused {
                Refused::Failed(error) => Some(error.kind.as_str()),
                Refused::Status(_) => None,
            };
            spans.answered(status, failure, next.is_some());
        }
        let Some(next) = next else {
            return Err(refused.into_error(&backend.name));
        };
        gw.metrics.handed_on(index);
        tracing::info!(
            request_id = trace.id(),
            "realtime session: backend {} refused the handshake ({}); trying {}",
            backend.name,
            refused.said(),
            next.1.name
        );
        (index, backend) = next;
    };

    let mut response = HttpResponse::build(StatusCode::SWITCHING_PROTOCOLS);
    wire::accept(req, &mut response);
    let mut headers = connected.headers;
    forward::trim_response_headers(&mut headers);
    for (name, value) in &headers {
        if name != header::SEC_WEBSOCKET_ACCEPT && name != header::SEC_WEBSOCKET_EXTENSIONS {
            response.append_header((name.clone(), value.clone()));
        }
    }
    response.insert_header((
        HeaderName::from_static(BACKEND_HEADER),
        backend.name_header.clone(),
    ));
    let (mut response, to_client) = wire::open(response);
    trace.stamp(response.headers_mut());

    let session = Session {
        gw: gw.clone(),
        subscription,
        deployment,
        backend: index,
        request_id: trace.id().to_string(),
        path: req.path().to_string(),
        started: Instant::now(),
        opened,
        spans: trace.spans.take(),
        in_flight: gw.metrics.sending(index),
        open: gw.metrics.session(index),
    };
    actix_web::rt::spawn(relay::run(session, payload, connected.framed, to_client));
    Ok(response)
}

/// A backend's accepted handshake.
struct Connected {
    headers: HeaderMap,
    framed: Upstream,
}

/// Why a backend's handshake did not open a session.
enum Refused {
    /// It answered with this status rather than `101`.
    Status(StatusCode),
    /// It gave no answer, or not a WebSocket's.
    Failed(UpstreamError),
}

impl Refused {
    fn said(&self) -> String {
        match self {
            Refused::Status(status) => status.as_u16().to_string(),
            Refused::Failed(error) => error.to_string(),
        }
    }

    /// The client's answer when no backend is left to try.
    fn into_error(self, backend: &str) -> GatewayError {
        match self {
            Refused::Status(status) => GatewayError::HandshakeRefused {
                status,
                backend: backend.to_string(),
            },
            Refused::Failed(error) => GatewayError::Upstream(error),
        }
    }
}

/// One handshake attempt: what the client asked for, and what the backend gets besides.
struct Attempt<'a> {
    endpoint: Endpoint,
    req: &'a HttpRequest,
    deployment: &'a str,
    caller: &'a Caller,
    /// The session's id, when the client sent none of its own.
    request_id: Option<HeaderValue>,
    /// The attempt's trace context, when the gateway traces.
    propagation: Option<Propagation>,
}

/// Makes the handshake with `backend`.
async fn connect(
    attempt: Attempt<'_>,
    backend: &Backend,
    client: &awc::Client,
) -> Result<Connected, Refused> {
    let Attempt {
        endpoint,
        req,
        deployment,
        caller,
        request_id,
        propagation,
    } = attempt;
    let path = match endpoint {
        Endpoint::Socket { v1: true } => "/v1/realtime",
        _ => "/realtime",
    };
    let query = super::backend_query(
        req.query_string(),
        super::deployment_param(endpoint),
        backend.deployment_name(deployment),
    );
    let url = format!("{}{path}?{query}", backend.base_url);
    let mut request = client.ws(url.as_str()).max_frame_size(MAX_EVENT_BYTES);
    let tokens = forward::connection_tokens(req.headers());
    for (name, value) in req.headers() {
        let websocket = name.as_str().starts_with("sec-websocket-");
        if forward::passes_up(name, &tokens) && !websocket && name != header::ORIGIN {
            request = request.header(name.clone(), value.clone());
        }
    }
    request = request.set_header(header::HOST, backend.host.clone());
    let (name, value) = match caller.bearer() {
        Some(bearer) => (header::AUTHORIZATION, bearer.clone()),
        None => forward::credential(backend)
            .await
            .map_err(Refused::Failed)?,
    };
    request = request.set_header(name, value);
    if let Some(id) = request_id {
        request = request.set_header(crate::proxy::call::CLIENT_REQUEST_ID, id);
    }
    if let Some(propagation) = propagation {
        request = request.set_header("traceparent", propagation.traceparent);
        if let Some(state) = propagation.tracestate {
            request = request.set_header("tracestate", state);
        }
    }
    // The subprotocols the client offered, but never the one that carries its key.
    let protocols: Vec<&str> = req
        .headers()
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty() && !p.starts_with(INSECURE_KEY_PROTOCOL))
        .collect();
    if !protocols.is_empty() {
        request = request.protocols(protocols);
    }
    let failed =
        |kind, detail: String| Refused::Failed(UpstreamError::new(&backend.name, kind, detail));
    match request.connect().await {
        Ok((response, framed)) => Ok(Connected {
            headers: response.headers().clone(),
            framed,
        }),
        Err(WsClientError::InvalidResponseStatus(status)) => Err(Refused::Status(status)),
        Err(WsClientError::SendRequest(SendRequestError::Connect(e))) => {
            Err(failed(Failure::Connect, e.to_string()))
        }
        Err(WsClientError::SendRequest(SendRequestError::Timeout)) => Err(failed(
            Failure::Timeout,
            "no handshake answer in time".into(),
        )),
        Err(other) => Err(failed(Failure::Broken, other.to_string())),
    }
}
