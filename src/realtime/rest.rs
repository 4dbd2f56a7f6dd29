//! The realtime REST calls: minting an ephemeral client secret, and a WebRTC call's SDP offer.
//!
//! A mint is a deployment call like any other (the deployment in the body: `session.model` on
//! v1, `model` on dated previews), balanced with failover; its answer is read whole, and the
//! secret in it remembered as the minting backend's ([`secrets`]) before the client gets it.
//! A WebRTC call made with such a secret goes to that backend, with the secret; made with a
//! subscription's key, it is balanced by its `model` query parameter. Either way only the
//! offer and its SDP answer pass the gateway: the call's media then flows between the browser
//! and Azure directly.

use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;

use super::credential::{self, Caller};
use super::{Endpoint, secrets};
use crate::proxy::Gateway;
use crate::proxy::body::deployment::Place;
use crate::proxy::body::edit::Members;
use crate::proxy::budget::{self, Budget};
use crate::proxy::call::Trace;
use crate::proxy::error::GatewayError;
use crate::proxy::inbound::auth::QUERY_PARAM;
use crate::proxy::inbound::{self, query};
use crate::proxy::upstream::dispatch::{Call, Sent, dispatch};

/// A mint's answer is a small JSON object; more is no answer of the service's.
const MINT_ANSWER_LIMIT: usize = 1 << 20;

/// Mints an ephemeral client secret through a backend, and remembers it as that backend's.
pub async fn mint(
    endpoint: Endpoint,
    req: &HttpRequest,
    payload: web::Payload,
    gw: &web::Data<Gateway>,
    client: &awc::Client,
    trace: &mut Trace,
) -> Result<HttpResponse, GatewayError> {
    let v1 = matches!(endpoint, Endpoint::Mint { v1: true });
    let subscription = inbound::caller(req, gw).await?;
    trace.subscription = Some(subscription);
    let version = super::version(endpoint, req.query_string())?;
    let body = inbound::body(req, payload, gw).await?;
    let (deployment, place) = model_in(&body, v1)?;
    trace.deployment = Some(deployment.clone());
    let route = endpoint.route();
    let sent = send(
        gw,
        client,
        trace,
        Sending {
            req,
            route,
            version,
            deployment: Some(&deployment),
            place,
            body,
            caller: &Caller::Subscription(subscription),
        },
    )
    .await?;
    let backend = trace
        .backend
        .and_then(|i| gw.balancer.backends().get(i))
        .ok_or_else(|| GatewayError::Internal("a mint answered by no backend".into()))?;
    let (status, headers, answer) = sent
        .answer
        .read_whole(&backend.name, MINT_ANSWER_LIMIT)
        .await
        .map_err(GatewayError::Upstream)?;
    if status.is_success()
        && let Some(minted) = secrets::minted(&answer)
    {
        let owner = gw.auth.subscription_name(subscription).unwrap_or("-");
        secrets::remember(gw, &minted, &backend.name, owner).await?;
    }
    let mut response = HttpResponse::build(status).body(answer);
    *response.headers_mut() = headers;
    Ok(response)
}

/// Sends a WebRTC call's SDP offer to the backend its secret names, or balances it by its
/// `model`; the answer is relayed as it comes.
pub async fn call(
    req: &HttpRequest,
    payload: web::Payload,
    gw: &web::Data<Gateway>,
    client: &awc::Client,
    trace: &mut Trace,
) -> Result<Sent, GatewayError> {
    let caller = credential::caller(req, gw, false).await?;
    trace.subscription = Some(caller.subscription());
    let endpoint = Endpoint::Calls;
    let version = super::version(endpoint, req.query_string())?;
    // A secret's session names its model; a key's call must.
    let deployment = match super::deployment(endpoint, req.query_string()) {
        Ok(name) => Some(name),
        Err(_) if caller.pinned().is_some() => None,
        Err(missing) => return Err(missing),
    };
    trace.deployment = deployment.clone();
    let body = inbound::body(req, payload, gw).await?;
    send(
        gw,
        client,
        trace,
        Sending {
            req,
            route: endpoint.route(),
            version,
            deployment: deployment.as_deref(),
            place: Place::Query {
                name: super::deployment_param(endpoint),
            },
            body,
            caller: &caller,
        },
    )
    .await
}

/// A realtime REST call, ready for its backends.
struct Sending<'a> {
    req: &'a HttpRequest,
    route: &'static aoai_runtime::catalog::Route,
    version: &'static str,
    deployment: Option<&'a str>,
    place: Place,
    body: Bytes,
    caller: &'a Caller,
}

/// Reserves one request, places the call (on the secret's backend, if pinned to one) and sends
/// it with failover.
async fn send(
    gw: &web::Data<Gateway>,
    client: &awc::Client,
    trace: &mut Trace,
    sending: Sending<'_>,
) -> Result<Sent, GatewayError> {
    let Sending {
        req,
        route,
        version,
        deployment,
        place,
        body,
        caller,
    } = sending;
    let subscription = caller.subscription();
    let holder = caller.holder("authorization");
    let budget = Budget {
        reserve: gw.limiter.limits(subscription).map(|_| (subscription, 0)),
        at_most: None,
        cache_key: None,
    };
    let begun = budget::begin(gw, version, deployment, holder.as_ref(), budget).await?;
    trace.reservation = begun.reservation;
    let below = route.path;
    let (mount, route_path) = match below.strip_prefix("/v1") {
        Some(rest) => ("/v1", rest),
        None => ("", below),
    };
    let call = Call {
        req,
        route,
        version,
        mount,
        route_path,
        deployment,
        place: Some(place),
        query: query::without(req.query_string(), QUERY_PARAM),
        body,
        decoded: None,
        facts: None,
        at_most: None,
        cache_key: None,
        holder,
        bearer: caller.bearer().cloned(),
    };
    dispatch(&call, begun.first, gw, client, trace).await
}

/// The deployment a mint's body names, and where: `session.model` on v1 (else a top-level
/// `model`), `model` on dated previews.
fn model_in(body: &[u8], v1: bool) -> Result<(String, Place), GatewayError> {
    let malformed = || GatewayError::MalformedBody("expected a JSON object".into());
    let top = Members::read(body, None).ok_or_else(malformed)?;
    let nested = v1
        .then(|| top.find(body, "session"))
        .flatten()
        .and_then(|(_, session)| {
            let start = session.value.start;
            let inner = Members::read(body.get(session.value.clone())?, None)?;
            let (_, model) = inner.find(&body[start..], "model")?;
            Some(model.value.start + start..model.value.end + start)
        });
    let value = nested
        .or_else(|| top.find(body, "model").map(|(_, m)| m.value.clone()))
        .ok_or_else(|| GatewayError::InvalidParameter {
            name: if v1 { "session.model" } else { "model" }.into(),
            message: "names the deployment of the realtime session, so it is required".into(),
        })?;
    let name: String = body
        .get(value.clone())
        .and_then(|raw| serde_json::from_slice(raw).ok())
        .filter(|name: &String| !name.is_empty())
        .ok_or_else(|| GatewayError::InvalidParameter {
            name: if v1 { "session.model" } else { "model" }.into(),
            message: "must be a deployment's name".into(),
        })?;
    Ok((name, Place::Json { value }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mint_names_its_deployment_where_each_version_puts_it() {
        let body = br#"{"expires_after":{"anchor":"created_at","seconds":600},"session":{"type":"realtime","model":"gpt-realtime","voice":"marin"}}"#;
        let (name, place) = model_in(body, true).unwrap();
        assert_eq!(name, "gpt-realtime");
        let Place::Json { value } = place else {
            panic!("a JSON place")
        };
        assert_eq!(&body[value], br#""gpt-realtime""#);
        let dated = br#"{"model":"gpt-4o-realtime-preview","voice":"verse"}"#;
        assert_eq!(model_in(dated, false).unwrap().0, "gpt-4o-realtime-preview");
        assert!(model_in(br#"{"session":{"type":"realtime"}}"#, true).is_err());
        assert!(model_in(br#"{"model":7}"#, false).is_err());
        assert!(model_in(b"[1]", false).is_err());
    }
}
