//! One request's path through the gateway, as a sequence of phases, each a function that
//! returns what the next needs (the call's [`Trace`] is filled in as they return):
//!
//! 1. the gateway's own pages ([`pages`](super::pages));
//! 2. the target: version, route, and the deployment a path names ([`inbound::target`]); the
//!    realtime routes, which no spec describes, are the gateway's own ([`realtime`]): a
//!    WebSocket session goes its own way from here;
//! 3. the caller: subscription key or Entra ID token ([`inbound::caller`]);
//! 4. the checks: parameters and body against the version's spec, and what the gateway acts
//!    on read from the body once, the deployment among it ([`inbound::check`]);
//! 5. the objects it names: whose they are, and the backend that holds them ([`follow`]);
//! 6. the budget: the call's limits, reserved with its first backend's turn ([`budget`]);
//! 7. the call: the failover loop ([`dispatch`]), or for a list of stored objects, the pages
//!    of it that are the caller's ([`list`]);
//! 8. the answer, streamed back and accounted for when it ends ([`answer`]), learning the
//!    objects it creates.
//!
//! A phase that refuses the call returns a [`GatewayError`], answered in Azure's shape by
//! [`refusal`]; either way the call is counted and gets one access record.

use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, web};

use super::answer::{self, access};
use super::budget;
use super::call::Trace;
use super::error::{GatewayError, remaining_headers};
use super::inbound::{self, query};
use super::pages;
use super::upstream::dispatch::{Call, Sent, dispatch};
use super::{Gateway, inbound::auth::QUERY_PARAM};
use crate::live::Live;
use crate::objects::follow::follow;
use crate::objects::list;
use crate::realtime::{self, Endpoint, rest, session};

pub(super) async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    live: web::Data<Live>,
    client: web::Data<awc::Client>,
) -> HttpResponse {
    let started = Instant::now();
    // The configuration this call runs with to its end, whatever a reload does meanwhile.
    let gw = web::Data::from(live.current());
    let mut trace = Trace::new(req.headers());
    let outcome = match pages::serve(&req, &gw, &live).await {
        Some(page) => page,
        None => {
            trace.api = true;
            trace.spans = gw
                .traces
                .as_ref()
                .map(|t| t.call(req.method().as_str(), req.headers()));
            match call(&req, payload, &gw, &client, &mut trace).await {
                Ok(Reply::Relayed { sent, stores }) => {
                    let status = sent.answer.status.as_u16();
                    count_request(&gw, &trace, status);
                    let mut response =
                        answer::stream(req, gw.clone(), trace, started, sent, stores);
                    close_if_draining(&gw, &mut response);
                    return response;
                }
                Ok(Reply::Session(response)) => {
                    // Its access record is written when the session ends.
                    count_request(&gw, &trace, response.status().as_u16());
                    return response;
                }
                Ok(Reply::Answered(response)) => Ok(response),
                Err(error) => Err(error),
            }
        }
    };
    let mut response = match outcome {
        Ok(page) => page,
        Err(error) => refusal(&gw, &req, &trace, error).await,
    };
    let status = response.status().as_u16();
    count_request(&gw, &trace, status);
    let spent = access::account(&gw, req.method(), &trace, status, None);
    access::record(&gw, &req, status, started, &trace, None, spent.as_ref());
    if trace.api {
        trace.stamp(response.headers_mut());
    }
    close_if_draining(&gw, &mut response);
    response
}

/// What a call comes to.
enum Reply {
    /// The answer of the backend that took it, to relay; `stores`: what it creates is stored.
    Relayed { sent: Sent, stores: bool },
    /// The gateway's own answer, made of the backend's (a list of the caller's objects, a
    /// minted realtime secret).
    Answered(HttpResponse),
    /// A realtime session, open: its `101`, whose body the session's relay writes.
    Session(HttpResponse),
}

/// A realtime route's call: a WebSocket session, a secret minted, a WebRTC offer.
async fn realtime_call(
    endpoint: Endpoint,
    req: &HttpRequest,
    payload: web::Payload,
    gw: &web::Data<Gateway>,
    client: &awc::Client,
    trace: &mut Trace,
) -> Result<Reply, GatewayError> {
    trace.route = Some(endpoint.route());
    match endpoint {
        Endpoint::Socket { .. } => session::open(endpoint, req, payload, gw, client, trace)
            .await
            .map(Reply::Session),
        Endpoint::Mint { .. } => rest::mint(endpoint, req, payload, gw, client, trace)
            .await
            .map(Reply::Answered),
        Endpoint::Calls => rest::call(req, payload, gw, client, trace)
            .await
            .map(|sent| Reply::Relayed {
                sent,
                stores: false,
            }),
    }
}

/// An API call, phase by phase, to the answer of the backend that took it.
async fn call(
    req: &HttpRequest,
    payload: web::Payload,
    gw: &web::Data<Gateway>,
    client: &awc::Client,
    trace: &mut Trace,
) -> Result<Reply, GatewayError> {
    if let Some(endpoint) = realtime::endpoint(req, &gw.base_path) {
        // Boxed: the rare calls' futures would otherwise weigh on every call's.
        return Box::pin(realtime_call(endpoint, req, payload, gw, client, trace)).await;
    }
    let target = inbound::target(req, gw)?;
    trace.route = Some(target.route);

    let subscription = inbound::caller(req, gw).await?;
    trace.subscription = Some(subscription);

    let mut checked = inbound::check(req, payload, gw, &target, subscription).await?;
    trace.deployment = checked.deployment.as_ref().map(|d| d.name.clone());
    trace.streaming = checked.facts.as_ref().is_some_and(|f| f.stream);

    let followed = follow(gw, &target, subscription, &checked).await?;
    trace.object = followed.object.clone();

    let budget = budget::plan(gw, subscription, target.route, &mut checked);
    trace.prompt_tokens = checked.facts.as_ref().and_then(|f| f.prompt_tokens);
    let deployment = checked.deployment.as_ref();
    let holder = followed.holder.as_ref();
    let begun = budget::begin(
        gw,
        target.api.version,
        deployment.map(|d| d.name.as_str()),
        holder,
        budget,
    )
    .await?;
    trace.reservation = begun.reservation;
    // A Responses call with `store: false` leaves nothing to follow up.
    let stores = checked
        .facts
        .as_ref()
        .is_none_or(|f| f.members.value(checked.meant(), "store") != Some(b"false".as_slice()));

    let call = Call {
        req,
        route: target.route,
        version: target.api.version,
        mount: target.api.mount,
        route_path: target.path,
        deployment: deployment.map(|d| d.name.as_str()),
        place: deployment.map(|d| d.place.clone()),
        query: query::without(req.query_string(), QUERY_PARAM),
        body: checked.body.clone(),
        decoded: checked.decoded.clone(),
        facts: checked.facts.take(),
        at_most: budget.at_most,
        cache_key: budget.cache_key,
        holder: followed.holder.clone(),
        bearer: None,
    };
    if let Some(kind) = target.route.objects.lists
        && gw.objects.isolates(gw.auth.subscription(subscription))
    {
        let owner = gw.auth.subscription_name(subscription).unwrap_or_default();
        // Boxed, as the rare calls' futures below: they would otherwise weigh on every call's.
        let answered = Box::pin(list::own(
            &call,
            begun.first,
            gw,
            client,
            trace,
            owner,
            kind,
        ))
        .await?;
        return Ok(Reply::Answered(answered));
    }
    let sent = dispatch(&call, begun.first, gw, client, trace).await?;
    if target.route.objects.deletes
        && sent.answer.status.is_success()
        && let Some((kind, id)) = &followed.target
        && let Err(error) = Box::pin(gw.objects.directory.forget(id, kind)).await
    {
        // Harmless: the entry points at an object that is gone, and expires in time.
        tracing::warn!(
            request_id = trace.id(),
            "object directory: {id} not forgotten: {error}"
        );
    }
    Ok(Reply::Relayed { sent, stores })
}

/// The gateway's own answer to a request it refuses, in Azure's error shape.
async fn refusal(
    gw: &Gateway,
    req: &HttpRequest,
    trace: &Trace,
    error: GatewayError,
) -> HttpResponse {
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
    // A refused WebSocket handshake: what follows on the connection is no request.
    if req.headers().contains_key(actix_web::http::header::UPGRADE) {
        response
            .head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
    }
    // A refused call still tells the subscription where it stands, in the windows in use.
    if !matches!(error, GatewayError::LimitExceeded(_))
        && let Some(subscription) = trace.subscription
        && let Some(remaining) =
            crate::state::remaining(gw, subscription, trace.deployment.as_deref()).await
    {
        remaining_headers(response.headers_mut(), &remaining);
    }
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
