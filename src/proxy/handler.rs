//! One request's path through the gateway, from its head to the end of its answer: the phases
//! the [module note](super) lists, the failover loop over backends, and the access record
//! written once the answer has ended.

use std::borrow::Cow;
use std::time::Instant;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use aoai_runtime::catalog::Route;
use aoai_runtime::schema::Policy;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use super::auth::QUERY_PARAM;
use super::deployment::{self, Place};
use super::error::GatewayError;
use super::relay::End;
use super::upstream::{self, Answer, Outgoing};
use super::{Gateway, encoding, failover, query, validate};
use crate::config::Backend;

const API_VERSION: &str = "api-version";

/// What the access record says about a request besides method, path and status.
#[derive(Default, Clone, Copy)]
struct Trace {
    /// Whether the request was for the API, so the metrics count it; not for the gateway's own
    /// pages.
    api: bool,
    /// Indexes in the config.
    subscription: Option<usize>,
    backend: Option<usize>,
    operation: Option<&'static str>,
}

/// What a request is answered with: a reply of the gateway's own, or a backend's answer that
/// streams through.
enum Reply {
    Own(HttpResponse),
    Backend(Answer),
}

pub(super) async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    gw: web::Data<Gateway>,
    client: web::Data<awc::Client>,
) -> HttpResponse {
    let started = Instant::now();
    let mut trace = Trace::default();
    let mut response = match route(&req, payload, &gw, &client, &mut trace).await {
        Ok(Reply::Own(response)) => response,
        Ok(Reply::Backend(answer)) => {
            let status = answer.status.as_u16();
            count_request(&gw, &trace, status);
            let (request, gateway) = (req.clone(), gw.clone());
            // The record is written when the body has ended, the way it ended.
            let mut response = answer.into_response(req.version(), move |end| {
                if let End::Cut { .. } = &end {
                    gateway.metrics.stream_cut(trace.backend);
                }
                access_record(&gateway, &request, status, started, &trace, Some(&end));
            });
            close_if_draining(&gw, &mut response);
            return response;
        }
        Err(error) => {
            if error.status_code().is_server_error() {
                log::warn!("{} {}: {}", req.method(), req.path(), error.internal());
            }
            error.error_response()
        }
    };
    let status = response.status().as_u16();
    count_request(&gw, &trace, status);
    access_record(&gw, &req, status, started, &trace, None);
    close_if_draining(&gw, &mut response);
    response
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

/// One line per request, once its answer has ended (`end`, for a backend's answer) or been
/// sent (the gateway's own). Never the query string, which may hold a subscription key.
fn access_record(
    gw: &Gateway,
    req: &HttpRequest,
    status: u16,
    started: Instant,
    trace: &Trace,
    end: Option<&End>,
) {
    let subscription = trace
        .subscription
        .and_then(|i| gw.auth.subscription_name(i))
        .unwrap_or("-");
    let backend = trace
        .backend
        .and_then(|i| gw.balancer.backends().get(i))
        .map_or("-", |b| b.name.as_str());
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (method, path, op) = (req.method(), req.path(), trace.operation.unwrap_or("-"));
    match end {
        Some(End::Cut { bytes, detail }) => log::warn!(
            "{method} {path} {status} {elapsed_ms:.1}ms op={op} subscription={subscription} backend={backend} bytes={bytes} end=cut: the backend's answer was cut off ({detail}); the client's response was failed"
        ),
        Some(End::Abandoned { bytes }) => log::info!(
            "{method} {path} {status} {elapsed_ms:.1}ms op={op} subscription={subscription} backend={backend} bytes={bytes} end=abandoned"
        ),
        Some(End::Complete { bytes }) => log::info!(
            "{method} {path} {status} {elapsed_ms:.1}ms op={op} subscription={subscription} backend={backend} bytes={bytes}"
        ),
        None => log::info!(
            "{method} {path} {status} {elapsed_ms:.1}ms op={op} subscription={subscription} backend={backend}"
        ),
    }
}

async fn route(
    req: &HttpRequest,
    payload: web::Payload,
    gw: &Gateway,
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
        // Ready once serving (the config is loaded and the listener is up) until told to stop.
        return Ok(Reply::Own(if gw.draining() {
            HttpResponse::ServiceUnavailable().json(serde_json::json!({ "status": "stopping" }))
        } else {
            HttpResponse::Ok().json(serde_json::json!({ "status": "ready" }))
        }));
    }
    if let Some(docs) = &gw.docs
        && let Some(reply) = docs.serve(req, &gw.auth)?
    {
        return Ok(Reply::Own(reply));
    }
    if gw.metrics_page.enabled && path == gw.metrics_page.path {
        gw.auth.allows_page(
            gw.metrics_page.require_key,
            req.headers(),
            req.query_string(),
        )?;
        return Ok(Reply::Own(
            HttpResponse::Ok()
                .content_type("text/plain; version=0.0.4; charset=utf-8")
                .body(gw.metrics.render()),
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
    trace.operation = Some(route.operation_id);

    trace.subscription = Some(gw.auth.authenticate(req.headers(), raw_query)?.0);

    validate::parameters(route, &matched, raw_query, req.headers())?;
    let reading = read_body(req, payload, gw.max_body_bytes);
    let body = actix_web::rt::time::timeout(gw.client_body_timeout, reading)
        .await
        .map_err(|_| GatewayError::ClientTimeout {
            limit_ms: gw.client_body_timeout.as_millis(),
        })??;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let codings = encoding::codings(req.headers())?;
    let (limit, policy) = (gw.max_body_bytes, gw.validation);
    let checked = if body.len() <= INLINE_BODY_BYTES && codings.is_empty() {
        check_body(route, &codings, content_type, &body, limit, policy)?
    } else {
        // A large or compressed body (which may inflate to the limit) is checked on the
        // blocking pool, so that it never holds up the other calls of this worker.
        let (bytes, content_type) = (body.clone(), content_type.map(str::to_string));
        web::block(move || {
            check_body(
                route,
                &codings,
                content_type.as_deref(),
                &bytes,
                limit,
                policy,
            )
        })
        .await
        .map_err(|e| GatewayError::Internal(format!("body check did not finish: {e}")))??
    };

    let (deployment, place) = match (matched.deployment_segment, checked.deployment) {
        (Some(index), _) => {
            let name = route_path[1..]
                .split('/')
                .nth(index)
                .map(query::decode_path);
            (name.map(Cow::into_owned), Some(Place::Path { index }))
        }
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
    let call = Call {
        req,
        version: table.api.version,
        mount: table.api.mount,
        route_path,
        deployment: deployment.as_deref(),
        place,
        query: query::without(raw_query, QUERY_PARAM),
        body,
        decoded: checked.decoded,
    };
    dispatch(&call, gw, client, trace).await.map(Reply::Backend)
}

/// Bodies up to this size are checked on the worker itself: that costs less than handing them
/// to another thread (a 256 KiB body takes about a millisecond).
const INLINE_BODY_BYTES: usize = 256 * 1024;

/// What checking a body found out.
struct Checked {
    /// The deployment the body names, and where (routes with a `deployment_field`).
    deployment: Option<(String, Place)>,
    /// The body decoded, when it came compressed and names the deployment: a backend that calls
    /// the deployment otherwise gets this, renamed, since compressed bytes cannot be edited.
    decoded: Option<Bytes>,
}

/// Checks a body as the client meant it (decoded, when compressed); what is forwarded is what
/// it sent.
fn check_body(
    route: &Route,
    codings: &[encoding::Coding],
    content_type: Option<&str>,
    body: &[u8],
    limit: usize,
    policy: Policy,
) -> Result<Checked, GatewayError> {
    let meant = encoding::decode_all(codings, body, limit)?;
    validate::body(route, content_type, &meant, policy)?;
    let Some(field) = route.deployment_field else {
        return Ok(Checked {
            deployment: None,
            decoded: None,
        });
    };
    let deployment = deployment::in_body(field, content_type, &meant)?;
    let decoded = match meant {
        Cow::Owned(decoded) if deployment.is_some() => Some(Bytes::from(decoded)),
        _ => None,
    };
    Ok(Checked {
        deployment,
        decoded,
    })
}

/// A checked call, ready for a backend.
struct Call<'r> {
    req: &'r HttpRequest,
    version: &'static str,
    /// Where the api-version is mounted below the base path (`/v1`), or empty.
    mount: &'static str,
    /// The path below the mount.
    route_path: &'r str,
    /// The client's deployment name, decoded; `None` for operations on stored objects.
    deployment: Option<&'r str>,
    /// Where the request names it.
    place: Option<Place>,
    /// Without the client's subscription key.
    query: Cow<'r, str>,
    body: Bytes,
    /// See [`Checked::decoded`].
    decoded: Option<Bytes>,
}

impl Call<'_> {
    /// The path below the base path for `backend`, with its own name for the deployment.
    fn path_for(&self, backend: &Backend) -> Cow<'_, str> {
        let path = match (&self.place, self.deployment) {
            (Some(Place::Path { index }), Some(name)) if backend.deployment_name(name) != name => {
                Cow::Owned(deployment::replace_segment(
                    self.route_path,
                    *index,
                    &deployment::encode_segment(backend.deployment_name(name)),
                ))
            }
            _ => Cow::Borrowed(self.route_path),
        };
        if self.mount.is_empty() {
            path
        } else {
            Cow::Owned(format!("{}{path}", self.mount))
        }
    }

    /// The body for `backend`, with its own name for a deployment the body names, and whether
    /// that body is the decoded form of a compressed one.
    fn body_for(&self, backend: &Backend) -> Result<(Bytes, bool), GatewayError> {
        match (&self.place, self.deployment) {
            (Some(place @ (Place::Json { .. } | Place::Form { .. })), Some(name))
                if backend.deployment_name(name) != name =>
            {
                let (source, decoded) = match &self.decoded {
                    Some(decoded) => (decoded, true),
                    None => (&self.body, false),
                };
                let body = deployment::renamed_body(source, place, backend.deployment_name(name))?;
                Ok((body, decoded))
            }
            _ => Ok((self.body.clone(), false)),
        }
    }
}

/// Sends the call to a backend and, while backends refuse it, to the next (see [`failover`]).
async fn dispatch(
    call: &Call<'_>,
    gw: &Gateway,
    client: &awc::Client,
    trace: &mut Trace,
) -> Result<Answer, GatewayError> {
    let mut tried: Vec<usize> = Vec::new();
    let (mut index, mut backend) = gw
        .balancer
        .pick(call.version, call.deployment, &tried)
        .ok_or_else(|| GatewayError::NoBackend {
            deployment: call.deployment.map(str::to_string),
            version: call.version.to_string(),
        })?;
    loop {
        trace.backend = Some(index);
        let sent = Instant::now();
        let (body, decoded) = call.body_for(backend)?;
        let result = upstream::forward(
            client,
            backend,
            Outgoing {
                method: call.req.method(),
                headers: call.req.headers(),
                path: &call.path_for(backend),
                query: &call.query,
                body,
                decoded,
            },
        )
        .await;
        let answer = result.as_ref().ok();
        gw.metrics.backend_call(
            index,
            answer.map(|a| a.status.as_u16()),
            sent.elapsed(),
            answer.map(|a| &a.headers),
        );
        let verdict = failover::judge(&result, &gw.failover);
        gw.balancer.record(index, call.deployment, verdict.outcome);
        // Stored objects live on one backend: there is nowhere else to go.
        if !verdict.move_on || call.deployment.is_none() {
            return result;
        }
        tried.push(index);
        if tried.len() >= gw.failover.attempts {
            return result;
        }
        let Some(next) = gw.balancer.pick(call.version, call.deployment, &tried) else {
            return result;
        };
        gw.metrics.handed_on(index);
        log::info!(
            "{} {}: backend {} answered {}; trying {}",
            call.req.method(),
            call.req.path(),
            backend.name,
            match &result {
                Ok(answer) => answer.status.as_u16().to_string(),
                Err(error) => error.internal(),
            },
            next.1.name
        );
        (index, backend) = next;
    }
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
