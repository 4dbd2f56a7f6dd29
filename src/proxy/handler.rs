//! One request's path through the gateway, from its head to the end of its answer: the phases
//! the [module note](super) lists, then [`dispatch`](super::dispatch) to the backends, and
//! the call's accounting and access record ([`access`](super::access)) once its answer ends.

use std::borrow::Cow;
use std::time::Instant;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use aoai_runtime::catalog::{ContentKind, Route};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use super::access::{self, REQUEST_ID_HEADER, Trace};
use super::auth::QUERY_PARAM;
use super::deployment::{self, Place};
use super::dispatch::{Call, Sent, dispatch};
use super::error::{GatewayError, remaining_headers};
use super::relay::End;
use super::request::{Count, Facts};
use super::{Gateway, encoding, query, validate};
use crate::tokens::meter::Meter;

const API_VERSION: &str = "api-version";

/// What a request is answered with: a reply of the gateway's own, or a backend's answer that
/// streams through.
enum Reply {
    Own(HttpResponse),
    Backend(Sent),
}

pub(super) async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    gw: web::Data<Gateway>,
    client: web::Data<awc::Client>,
) -> HttpResponse {
    let started = Instant::now();
    let mut trace = Trace::new(req.headers());
    let mut response = match route(&req, payload, &gw, &client, &mut trace).await {
        Ok(Reply::Own(response)) => response,
        Ok(Reply::Backend(sent)) => return backend_reply(req, gw, trace, started, sent),
        Err(error) => refusal(&gw, &req, &trace, error),
    };
    let status = response.status().as_u16();
    count_request(&gw, &trace, status);
    let spent = access::account(&gw, req.method(), &trace, status, None);
    access::record(&gw, &req, status, started, &trace, None, spent.as_ref());
    if trace.api {
        stamp(response.headers_mut(), &trace);
    }
    close_if_draining(&gw, &mut response);
    response
}

/// The gateway's own answer to a request it refuses, in Azure's error shape.
fn refusal(gw: &Gateway, req: &HttpRequest, trace: &Trace, error: GatewayError) -> HttpResponse {
    use actix_web::ResponseError;
    if error.status_code().is_server_error() {
        tracing::warn!(
            request_id = trace.id(),
            "{} {}: {}",
            req.method(),
            req.path(),
            error.internal()
        );
    }
    if let (GatewayError::LimitExceeded(refused), Some(subscription)) = (&error, trace.subscription)
    {
        gw.metrics.refused(subscription, refused.which);
    }
    let mut response = error.to_response(trace.api.then(|| trace.id()));
    // A refused call still tells the subscription where it stands.
    if !matches!(error, GatewayError::LimitExceeded(_))
        && let Some(subscription) = trace.subscription
        && let Some(remaining) = gw
            .limiter
            .remaining(subscription, trace.deployment.as_deref())
    {
        remaining_headers(response.headers_mut(), &remaining);
    }
    response
}

/// A backend's answer, streaming to the client; the call is accounted for when it ends.
fn backend_reply(
    req: HttpRequest,
    gw: web::Data<Gateway>,
    mut trace: Trace,
    started: Instant,
    sent: Sent,
) -> HttpResponse {
    let Sent {
        mut answer,
        asked_usage,
    } = sent;
    let status = answer.status.as_u16();
    count_request(&gw, &trace, status);
    // The subscription's own headroom, not that of whichever backend answered.
    if let Some(reservation) = &trace.reservation {
        remaining_headers(&mut answer.headers, &reservation.remaining);
    }
    stamp(&mut answer.headers, &trace);
    let meter = meter_for(&gw, &trace, &answer, asked_usage);
    trace.streaming |= asked_usage;
    let gateway = gw.clone();
    let request = req.clone();
    let mut response = answer.into_response(req.version(), meter, move |ended| {
        if let End::Cut { .. } = &ended.end {
            gateway.metrics.stream_cut(trace.backend);
        }
        let spent = access::account(&gateway, request.method(), &trace, status, Some(&ended));
        access::record(
            &gateway,
            &request,
            status,
            started,
            &trace,
            Some(&ended),
            spent.as_ref(),
        );
    });
    close_if_draining(&gw, &mut response);
    response
}

/// The meter for a successful answer of an operation that reports usage.
fn meter_for(
    gw: &Gateway,
    trace: &Trace,
    answer: &super::upstream::Answer,
    asked_usage: bool,
) -> Option<Meter> {
    let reports = trace.route.is_some_and(|r| r.reports_usage);
    if !reports || !answer.status.is_success() {
        return None;
    }
    let backend = trace.backend.and_then(|i| gw.balancer.backends().get(i));
    let encoding = match (trace.deployment.as_deref(), backend) {
        (Some(d), Some(b)) => gw.usage.encoding_on(d, b.deployment_name(d)),
        (Some(d), None) => gw.usage.encoding(d),
        (None, _) => gw.usage.encoding(""),
    };
    match ContentKind::of(answer.media_type()) {
        ContentKind::EventStream => Some(Meter::events(encoding, asked_usage)),
        ContentKind::Json => Some(Meter::json(encoding, answer.length())),
        _ => None,
    }
}

/// The call's id on its response.
fn stamp(headers: &mut header::HeaderMap, trace: &Trace) {
    headers.insert(REQUEST_ID_HEADER, trace.id.clone());
}

/// While the gateway drains, each connection is closed after its answer, so clients reconnect
/// (to another replica) rather than keep using this one.
fn close_if_draining(gw: &Gateway, response: &mut HttpResponse) {
    if gw.draining() {
        response
            .head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
    }
}

fn count_request(gw: &Gateway, trace: &Trace, status: u16) {
    if trace.api {
        gw.metrics.request(trace.subscription, status);
    }
}

async fn route(
    req: &HttpRequest,
    payload: web::Payload,
    gw: &web::Data<Gateway>,
    client: &awc::Client,
    trace: &mut Trace,
) -> Result<Reply, GatewayError> {
    let path = req.path();
    if path == "/healthz" {
        return Ok(Reply::Own(
            HttpResponse::Ok().json(serde_json::json!({ "status": "ok" })),
        ));
    }
    if path == "/readyz" {
        // Ready once serving (the config is loaded and the listener is up) until told to stop,
        // and not while it refuses calls for want of its shared state.
        return Ok(Reply::Own(match gw.unready() {
            Some(why) => {
                HttpResponse::ServiceUnavailable().json(serde_json::json!({ "status": why }))
            }
            None => HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })),
        }));
    }
    if let Some(docs) = &gw.docs
        && let Some(reply) = docs.serve(req, &gw.auth).await?
    {
        return Ok(Reply::Own(reply));
    }
    if gw.metrics_page.enabled && path == gw.metrics_page.path {
        gw.auth
            .allows_page(
                gw.metrics_page.require_key,
                req.headers(),
                req.query_string(),
            )
            .await?;
        return Ok(Reply::Own(
            HttpResponse::Ok()
                .content_type("text/plain; version=0.0.4; charset=utf-8")
                .body(gw.metrics.render(crate::state::up(gw))),
        ));
    }
    trace.api = true;
    // actix reads the body of an `Upgrade: websocket` request until the connection closes,
    // which a client waiting for an answer never does.
    if req.headers().contains_key(header::UPGRADE) {
        return Err(GatewayError::UpgradeRefused);
    }
    if query::has_unsafe_segment(path) {
        return Err(GatewayError::InvalidPath);
    }
    let subpath = path
        .strip_prefix(gw.base_path.as_str())
        .filter(|r| r.starts_with('/'))
        .ok_or(GatewayError::NotFound)?;
    let raw_query = req.query_string();
    // Checked on one value and forwarded with all of them, a repeated api-version would reach a
    // backend restricted to one version with another.
    if query::count(raw_query, API_VERSION) > 1 {
        return Err(GatewayError::RepeatedParameter {
            name: API_VERSION.into(),
        });
    }
    let version = query::get(raw_query, API_VERSION);
    let (table, route_path) = gw.router.select(subpath, version.as_deref())?;
    let matched = table.find(req.method().as_str(), route_path)?;
    let route = matched.route;
    trace.route = Some(route);

    let subscription = gw.auth.authenticate(req.headers(), raw_query).await?.0;
    trace.subscription = Some(subscription);

    validate::parameters(route, table.api.version, &matched, raw_query, req.headers())?;
    let reading = read_body(req, payload, gw.max_body_bytes);
    let body = actix_web::rt::time::timeout(gw.client_body_timeout, reading)
        .await
        .map_err(|_| GatewayError::ClientTimeout {
            limit_ms: gw.client_body_timeout.as_millis(),
        })??;
    let path_deployment = matched.deployment_segment.and_then(|index| {
        route_path[1..]
            .split('/')
            .nth(index)
            .map(|segment| (query::decode_path(segment).into_owned(), index))
    });
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let codings = encoding::codings(req.headers())?;
    let in_path = path_deployment.as_ref().map(|(name, _)| name.clone());
    // The prompt is counted for a call that reserves tokens (a v1 body names its deployment,
    // so any limit of the subscription may apply), else only for a stream.
    let called = Called {
        route,
        version: table.api.version,
    };
    let count = match gw.limiter.limits(subscription) {
        Some(limits) if route.reports_usage => {
            let reserves = match &in_path {
                Some(deployment) => limits.counts_tokens(Some(deployment)),
                None => limits.counts_tokens(None) || !limits.deployments.is_empty(),
            };
            if reserves {
                Count::Always
            } else {
                Count::IfStreaming
            }
        }
        _ => Count::IfStreaming,
    };
    let checked = if body.len() <= INLINE_BODY_BYTES && codings.is_empty() {
        check_body(
            gw,
            called,
            &codings,
            content_type,
            &body,
            in_path.as_deref(),
            count,
        )?
    } else {
        // A large or compressed body (which may inflate to the limit) is checked on the
        // blocking pool, so that it never holds up the other calls of this worker.
        let (bytes, content_type) = (body.clone(), content_type.map(str::to_string));
        let gateway = gw.clone();
        web::block(move || {
            check_body(
                &gateway,
                called,
                &codings,
                content_type.as_deref(),
                &bytes,
                in_path.as_deref(),
                count,
            )
        })
        .await
        .map_err(|e| GatewayError::Internal(format!("body check did not finish: {e}")))??
    };

    let (deployment, place) = match (path_deployment, checked.deployment) {
        (Some((name, index)), _) => (Some(name), Some(Place::Path { index })),
        (None, Some((name, place))) => (Some(name), Some(place)),
        (None, None) => {
            if let Some(field) = route.deployment_field {
                return Err(GatewayError::InvalidParameter {
                    name: field.into(),
                    message: "names the deployment to call, so it is required".into(),
                });
            }
            (None, None)
        }
    };
    trace.deployment = deployment.clone();
    trace.streaming = checked.facts.as_ref().is_some_and(|f| f.stream);
    trace.prompt_tokens = checked.facts.as_ref().and_then(|f| f.prompt_tokens);

    // Held to the subscription's limits: reserved as the call begins (with its rotation's
    // turn, in one round trip when state is shared), before any backend is called.
    let estimate = checked.facts.as_ref().map(Facts::tokens);
    let reserve = gw.limiter.limits(subscription).map(|limits| {
        let tokens = if route.reports_usage && limits.counts_tokens(deployment.as_deref()) {
            estimate.unwrap_or(0)
        } else {
            0
        };
        (subscription, tokens)
    });

    // The balancer passes over a backend reporting less room than the call may spend: the
    // exact figure is counted only if some backend reports less than the call's upper bound.
    let mut facts = checked.facts;
    let tokens = match (&mut facts, deployment.as_deref()) {
        (Some(facts), Some(name)) if route.reports_usage => {
            if facts.prompt_tokens.is_none() && gw.balancer.any_short_of_room(name, facts.at_most())
            {
                let source = checked.decoded.as_ref().unwrap_or(&body);
                facts.count_prompt(source, gw.usage.encoding(name));
                trace.prompt_tokens = facts.prompt_tokens;
            }
            Some(facts.at_most())
        }
        _ => None,
    };
    let call = Call {
        req,
        reserve,
        route,
        version: table.api.version,
        mount: table.api.mount,
        route_path,
        deployment: deployment.as_deref(),
        place,
        query: query::without(raw_query, QUERY_PARAM),
        body,
        decoded: checked.decoded,
        tokens,
        facts,
    };
    dispatch(&call, gw, client, trace).await.map(Reply::Backend)
}

/// Bodies up to this size are checked on the worker itself: that costs less than handing them
/// to another thread (a 256 KiB body takes about a millisecond).
const INLINE_BODY_BYTES: usize = 256 * 1024;

/// The operation a request calls, and the api-version whose spec defines it.
#[derive(Clone, Copy)]
struct Called {
    route: &'static Route,
    version: &'static str,
}

/// What checking a body found out.
struct Checked {
    /// The deployment the body names, and where (routes with a `deployment_field`).
    deployment: Option<(String, Place)>,
    /// The body decoded, when it came compressed and may be edited (see [`Call::decoded`]).
    decoded: Option<Bytes>,
    /// What a JSON body of an operation that calls a deployment says.
    facts: Option<Facts>,
}

/// Checks a body as the client meant it (decoded, when compressed), and reads what the gateway
/// acts on; what is forwarded is what it sent, unless a backend needs it edited.
fn check_body(
    gw: &Gateway,
    Called { route, version }: Called,
    codings: &[encoding::Coding],
    content_type: Option<&str>,
    body: &[u8],
    path_deployment: Option<&str>,
    count: Count,
) -> Result<Checked, GatewayError> {
    let meant = encoding::decode_all(codings, body, gw.max_body_bytes)?;
    validate::body(route, version, content_type, &meant, gw.validation)?;
    let calls_deployment = route.deployment_field.is_some() || path_deployment.is_some();
    let json = content_type.is_some_and(|t| ContentKind::of(t) == ContentKind::Json);
    let facts = if calls_deployment && json && !meant.is_empty() {
        Facts::read(route, &meant, &gw.usage, path_deployment, count)
    } else {
        None
    };
    let deployment = match route.deployment_field {
        Some(field) => deployment::in_body(
            field,
            content_type,
            &meant,
            facts.as_ref().map(|f| &f.members),
        )?,
        None => None,
    };
    let decoded = match meant {
        Cow::Owned(decoded) if deployment.is_some() || facts.is_some() => {
            Some(Bytes::from(decoded))
        }
        _ => None,
    };
    Ok(Checked {
        deployment,
        decoded,
        facts,
    })
}

/// Reads the whole body, refusing more than `limit` bytes before reading them where the client
/// announced its length. A body that arrives in one chunk (most JSON calls) is kept as it came,
/// without a copy.
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Bytes, GatewayError> {
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|n| n > limit) {
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    let mut total = 0;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| GatewayError::ClientRead(e.to_string()))?;
        total += chunk.len();
        if total > limit {
            return Err(GatewayError::PayloadTooLarge { limit });
        }
        match (&first, &mut joined) {
            (None, _) => first = Some(chunk),
            (Some(head), None) => {
                let mut buffer = BytesMut::with_capacity(announced.unwrap_or(total).max(total));
                buffer.extend_from_slice(head);
                buffer.extend_from_slice(&chunk);
                joined = Some(buffer);
            }
            (Some(_), Some(buffer)) => buffer.extend_from_slice(&chunk),
        }
    }
    Ok(joined.map(BytesMut::freeze).or(first).unwrap_or_default())
}
