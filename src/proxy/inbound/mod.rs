//! The inbound phases: what a request calls ([`target`]), who calls ([`caller`]), and whether
//! the request is what that api-version's spec says ([`check`]), all before any backend quota
//! is spent.
//!
//! [`router`] picks the version's route table and the route; [`query`] reads the query string
//! and refuses paths a normalising server would read otherwise; [`auth`] checks the
//! subscription key or the caller's Entra ID token; the body is read within its size and time
//! limits, decoded when compressed ([`encoding`]), and checked by [`validate`] (forms by
//! [`multipart`]); then what the gateway acts on is read from it once (`body/`).

pub mod auth;
pub mod encoding;
pub mod multipart;
pub mod query;
pub mod router;
pub mod validate;

use std::borrow::Cow;

use actix_web::http::header;
use actix_web::{HttpRequest, web};
use aoai_runtime::catalog::{ApiVersion, ContentKind, Route};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use super::Gateway;
use super::body::deployment::{self, Place};
use super::body::request::{Count, Facts};
use super::error::GatewayError;
use crate::limits::SubscriptionLimits;
use router::Matched;

const API_VERSION: &str = "api-version";

/// What a request calls: found from its path, method and `api-version`.
pub struct Target<'r> {
    pub api: &'static ApiVersion,
    pub route: &'static Route,
    /// The path below the version's mount.
    pub path: &'r str,
    matched: Matched<'r>,
    /// The deployment the path names, decoded, and its segment's index, if it names one.
    pub path_deployment: Option<(String, usize)>,
}

impl Target<'_> {
    /// A path parameter's value, decoded.
    pub fn param(&self, name: &str) -> Option<Cow<'_, str>> {
        self.matched.param(name).map(query::decode_path)
    }
}

/// The route a request calls. Refused before routing: an `Upgrade` (the body would never
/// end), a path with dot segments or encoded slashes, a repeated `api-version`.
pub fn target<'r>(req: &'r HttpRequest, gw: &Gateway) -> Result<Target<'r>, GatewayError> {
    // actix reads the body of an `Upgrade: websocket` request until the connection closes,
    // which a client waiting for an answer never does.
    if req.headers().contains_key(header::UPGRADE) {
        return Err(GatewayError::UpgradeRefused);
    }
    let path = req.path();
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
    let path_deployment = matched.deployment_segment.and_then(|index| {
        route_path[1..]
            .split('/')
            .nth(index)
            .map(|segment| (query::decode_path(segment).into_owned(), index))
    });
    Ok(Target {
        api: table.api,
        route: matched.route,
        path: route_path,
        matched,
        path_deployment,
    })
}

/// The subscription that calls, by its index.
pub async fn caller(req: &HttpRequest, gw: &Gateway) -> Result<usize, GatewayError> {
    Ok(gw
        .auth
        .authenticate(req.headers(), req.query_string())
        .await?
        .0)
}

/// The deployment a call is to, and where the request names it.
#[derive(Debug, Clone)]
pub struct Named {
    pub name: String,
    pub place: Place,
}

/// A request that passed its checks, with what the gateway acts on.
pub struct Checked {
    /// The body as the client sent it.
    pub body: Bytes,
    /// The body decoded, when it came compressed and may be edited: a backend whose body is
    /// edited gets this, since compressed bytes cannot be.
    pub decoded: Option<Bytes>,
    /// What a JSON body of a deployment call says.
    pub facts: Option<Facts>,
    /// The deployment, named in the path or in the body.
    pub deployment: Option<Named>,
}

impl Checked {
    /// The bytes the client meant: decoded, if it sent them compressed.
    pub fn meant(&self) -> &Bytes {
        self.decoded.as_ref().unwrap_or(&self.body)
    }
}

/// Where a call's deployment is, as the rule for its token budget needs to know it.
#[derive(Debug, Clone, Copy)]
pub enum Deployment<'a> {
    /// Named in the path (or by the body, once read), or none at all.
    Known(Option<&'a str>),
    /// To be read from the body.
    InBody,
}

/// Whether a call reserves tokens against its subscription's limits: its operation reports
/// usage, and a token window applies to it (the subscription's, or its deployment's own). While
/// the deployment is still in the unread body, whether one could. The one rule for both the
/// prompt counting that a reservation needs and the reservation itself.
pub fn reserves_tokens(
    limits: &SubscriptionLimits,
    route: &Route,
    deployment: Deployment<'_>,
) -> bool {
    route.reports_usage
        && match deployment {
            Deployment::Known(name) => limits.counts_tokens(name),
            Deployment::InBody => {
                limits.counts_tokens(None) || limits.deployments.values().any(|l| l.counts_tokens())
            }
        }
}

/// Checks a request's parameters and body against its version's spec, and reads, once, what
/// the gateway acts on: the facts of a JSON body and the deployment it names.
pub async fn check(
    req: &HttpRequest,
    payload: web::Payload,
    gw: &web::Data<Gateway>,
    target: &Target<'_>,
    subscription: usize,
) -> Result<Checked, GatewayError> {
    let (route, version) = (target.route, target.api.version);
    validate::parameters(
        route,
        version,
        &target.matched,
        req.query_string(),
        req.headers(),
    )?;
    let body = body(req, payload, gw).await?;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let codings = encoding::codings(req.headers())?;
    let in_path = target
        .path_deployment
        .as_ref()
        .map(|(name, _)| name.as_str());
    // The prompt is counted for a call that reserves tokens, else only for a stream.
    let where_named = match in_path {
        Some(name) => Deployment::Known(Some(name)),
        None if route.deployment_field.is_some() => Deployment::InBody,
        None => Deployment::Known(None),
    };
    let count = match gw.limiter.limits(subscription) {
        Some(limits) if reserves_tokens(limits, route, where_named) => Count::Always,
        _ => Count::IfStreaming,
    };
    let rules = BodyRules {
        route,
        version,
        count,
    };
    let read = if body.len() <= INLINE_BODY_BYTES && codings.is_empty() {
        check_body(gw, rules, &codings, content_type, &body, in_path)?
    } else {
        // A large or compressed body (which may inflate to the limit) is checked on the
        // blocking pool, so that it never holds up the other calls of this worker.
        let (bytes, content_type) = (body.clone(), content_type.map(str::to_string));
        let in_path = in_path.map(str::to_string);
        let gateway = gw.clone();
        web::block(move || {
            check_body(
                &gateway,
                rules,
                &codings,
                content_type.as_deref(),
                &bytes,
                in_path.as_deref(),
            )
        })
        .await
        .map_err(|e| GatewayError::Internal(format!("body check did not finish: {e}")))??
    };
    let deployment = match (&target.path_deployment, read.in_body) {
        (Some((name, index)), _) => Some(Named {
            name: name.clone(),
            place: Place::Path { index: *index },
        }),
        (None, Some(named)) => Some(named),
        (None, None) => {
            if let Some(field) = route.deployment_field {
                return Err(GatewayError::InvalidParameter {
                    name: field.into(),
                    message: "names the deployment to call, so it is required".into(),
                });
            }
            None
        }
    };
    Ok(Checked {
        body,
        decoded: read.decoded,
        facts: read.facts,
        deployment,
    })
}

/// Bodies up to this size are checked on the worker itself: that costs less than handing them
/// to another thread (a 256 KiB body takes about a millisecond).
const INLINE_BODY_BYTES: usize = 256 * 1024;

/// What a body is checked against, and how much of it is read.
#[derive(Clone, Copy)]
struct BodyRules {
    route: &'static Route,
    /// The api-version whose spec the route is.
    version: &'static str,
    count: Count,
}

/// What checking a body read from it.
struct BodyRead {
    /// The deployment the body names, and where (routes with a `deployment_field`).
    in_body: Option<Named>,
    decoded: Option<Bytes>,
    facts: Option<Facts>,
}

/// Checks a body as the client meant it (decoded, when compressed), and reads what the gateway
/// acts on; what is forwarded is what it sent, unless a backend needs it edited.
fn check_body(
    gw: &Gateway,
    BodyRules {
        route,
        version,
        count,
    }: BodyRules,
    codings: &[encoding::Coding],
    content_type: Option<&str>,
    body: &[u8],
    path_deployment: Option<&str>,
) -> Result<BodyRead, GatewayError> {
    let meant = encoding::decode_all(codings, body, gw.max_body_bytes)?;
    let form = validate::body(route, version, content_type, &meant, gw.validation)?;
    let calls_deployment = route.deployment_field.is_some() || path_deployment.is_some();
    let json = content_type.is_some_and(|t| ContentKind::of(t) == ContentKind::Json);
    let facts = if calls_deployment && json && !meant.is_empty() {
        Facts::read(route, &meant, &gw.usage, path_deployment, count)
    } else {
        None
    };
    let in_body = match route.deployment_field {
        Some(field) => deployment::in_body(field, &meant, form.as_deref(), facts.as_ref())?
            .map(|(name, place)| Named { name, place }),
        None => None,
    };
    drop(form);
    let decoded = match meant {
        Cow::Owned(decoded) if in_body.is_some() || facts.is_some() => Some(Bytes::from(decoded)),
        _ => None,
    };
    Ok(BodyRead {
        in_body,
        decoded,
        facts,
    })
}

/// The request's whole body, within the gateway's size and time limits.
pub async fn body(
    req: &HttpRequest,
    payload: web::Payload,
    gw: &Gateway,
) -> Result<Bytes, GatewayError> {
    let reading = read_body(req, payload, gw.max_body_bytes);
    actix_web::rt::time::timeout(gw.client_body_timeout, reading)
        .await
        .map_err(|_| GatewayError::ClientTimeout {
            limit_ms: gw.client_body_timeout.as_millis(),
        })?
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
