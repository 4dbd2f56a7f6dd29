//! Sends a checked call to its first backend and, while backends refuse it, to the next: the
//! failover loop ([`failover`] judges each answer, the [`balancer`] picks and learns), and the
//! request each backend gets: its own name for the deployment, its deployment's parameter
//! compatibility, and the stream's usage asked for on the client's behalf, all as splices of
//! the client's bytes.
//!
//! [`failover`]: super::failover
//! [`balancer`]: crate::balance

use std::borrow::Cow;
use std::time::Instant;

use actix_web::HttpRequest;
use actix_web::http::header::HeaderMap;
use aoai_runtime::catalog::Route;
use bytes::Bytes;

use super::failover;
use super::forward::{self, Answer, Outgoing};
use crate::balance::{Affinity, Ask};
use crate::config::Backend;
use crate::limits::millis;
use crate::metrics::Headroom;
use crate::objects::follow::Holder;
use crate::proxy::Gateway;
use crate::proxy::body::deployment::{self, Place};
use crate::proxy::body::request::Facts;
use crate::proxy::body::{compat, edit};
use crate::proxy::budget;
use crate::proxy::call::Trace;
use crate::proxy::error::{GatewayError, REMAINING_REQUESTS, REMAINING_TOKENS};
use crate::state;

/// A checked call, ready for a backend.
pub struct Call<'r> {
    pub req: &'r HttpRequest,
    pub route: &'static Route,
    pub version: &'static str,
    /// Where the api-version is mounted below the base path (`/v1`), or empty.
    pub mount: &'static str,
    /// The path below the mount.
    pub route_path: &'r str,
    /// The client's deployment name, decoded; `None` for operations on stored objects.
    pub deployment: Option<&'r str>,
    /// Where the request names it.
    pub place: Option<Place>,
    /// Without the client's subscription key.
    pub query: Cow<'r, str>,
    pub body: Bytes,
    /// The body decoded, when it came compressed and may be edited: a backend whose body is
    /// edited gets this, since compressed bytes cannot be.
    pub decoded: Option<Bytes>,
    /// What a JSON body says (in `decoded`, when there is one).
    pub facts: Option<Facts>,
    /// At most what the call may spend, for the balancer's headroom check.
    pub at_most: Option<u64>,
    /// Its prompt-cache key, which picks its failover's backend as it picked its first.
    pub cache_key: Option<u64>,
    /// The backend holding a stored object the call names: the only one it may go to.
    pub holder: Option<Holder>,
    /// The client's ephemeral secret, sent to the backend that minted it (its holder) in place
    /// of that backend's own credential.
    pub bearer: Option<actix_web::http::header::HeaderValue>,
}

/// A backend's answer, and whether the body it was sent asked for the stream's usage on the
/// client's behalf.
pub struct Sent {
    pub answer: Answer,
    pub asked_usage: bool,
}

/// The body one backend gets.
struct Body {
    bytes: Bytes,
    /// The decoded form of a compressed body: its `Content-Encoding` no longer applies.
    decoded: bool,
    asked_usage: bool,
}

impl Call<'_> {
    /// The path below the base path for `backend`, with its own name for the deployment.
    pub(crate) fn path_for(&self, backend: &Backend) -> Cow<'_, str> {
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

    /// The query for `backend`: the client's, with its own name for the deployment where the
    /// query names it.
    fn query_for(&self, backend: &Backend) -> Cow<'_, str> {
        match (&self.place, self.deployment) {
            (Some(Place::Query { name: param }), Some(name)) => Cow::Owned(
                crate::realtime::backend_query(&self.query, param, backend.deployment_name(name)),
            ),
            _ => Cow::Borrowed(&self.query),
        }
    }

    /// The body for `backend`: the client's bytes, or, where this backend needs edits, those
    /// bytes spliced in one copy.
    fn body_for(&self, backend: &Backend) -> Result<Body, GatewayError> {
        let source = self.decoded.as_ref().unwrap_or(&self.body);
        let compat = self.deployment.and_then(|d| backend.compat.get(d));
        let mut splices = Vec::new();
        let mut asked_usage = false;
        if let Some(facts) = &self.facts {
            let own_options = compat.is_some_and(|c| compat::touches(c, "stream_options"));
            if !facts.ask_usage.is_empty() && !own_options {
                splices.extend(facts.ask_usage.iter().cloned());
                asked_usage = true;
            }
            if let Some(compat) = compat {
                splices.extend(compat::splices(compat, self.route, source, &facts.members));
            }
        }
        if let (Some(place), Some(name)) = (&self.place, self.deployment)
            && backend.deployment_name(name) != name
        {
            splices.extend(deployment::rename(place, backend.deployment_name(name)));
        }
        if splices.is_empty() {
            return Ok(Body {
                bytes: self.body.clone(),
                decoded: false,
                asked_usage: false,
            });
        }
        Ok(Body {
            bytes: edit::apply(source, splices).map_err(GatewayError::Internal)?,
            decoded: self.decoded.is_some(),
            asked_usage,
        })
    }
}

/// The headroom an answer reports.
fn headroom(headers: &HeaderMap) -> Headroom {
    Headroom {
        tokens: failover::number(headers, REMAINING_TOKENS.as_str()),
        requests: failover::number(headers, REMAINING_REQUESTS.as_str()),
    }
}

/// Sends the call to `first` and, while backends refuse it, to the next; the last backend's
/// answer, or why it gave none, is the call's.
pub async fn dispatch(
    call: &Call<'_>,
    first: (usize, &Backend),
    gw: &Gateway,
    client: &awc::Client,
    trace: &mut Trace,
) -> Result<Sent, GatewayError> {
    let mut tried: Vec<usize> = Vec::new();
    let (mut index, mut backend) = first;
    let request_id = (!trace.client_sent_id).then(|| trace.id.clone());
    loop {
        trace.backend = Some(index);
        trace.attempts += 1;
        let sent = Instant::now();
        let body = call.body_for(backend)?;
        let in_flight = gw.metrics.sending(index);
        let propagation = trace
            .spans
            .as_mut()
            .map(|s| s.attempt(backend, trace.attempts, call.route.path, call.deployment));
        let result = forward::forward(
            client,
            backend,
            Outgoing {
                method: call.req.method(),
                headers: call.req.headers(),
                path: &call.path_for(backend),
                query: &call.query_for(backend),
                body: body.bytes,
                decoded: body.decoded,
                request_id: request_id.clone(),
                trace: propagation,
                bearer: call.bearer.as_ref(),
            },
        )
        .await;
        let answer = result.as_ref().ok();
        let room = answer.map(|a| headroom(&a.headers)).unwrap_or_default();
        gw.metrics.backend_call(
            index,
            answer.map(|a| a.status.as_u16()),
            sent.elapsed(),
            room,
        );
        if let Some(tokens) = room.tokens.and_then(|t| u64::try_from(t).ok()) {
            gw.balancer.note_headroom(index, call.deployment, tokens);
        }
        let verdict = failover::judge(&result, &gw.failover);
        if gw.balancer.learn(index, call.deployment, verdict.outcome) {
            state::tell(gw, index, call.deployment, verdict.outcome);
        }
        tried.push(index);
        // Stored objects have one home: the balancer has nowhere else for them.
        let next = if verdict.move_on && tried.len() < gw.failover.attempts {
            gw.balancer.next(Ask {
                version: call.version,
                deployment: call.deployment,
                tried: &tried,
                at_most: call.at_most,
                pinned: call.holder.as_ref().map(|h| h.index),
                affinity: call.cache_key.map(|key| Affinity {
                    key,
                    loads: &gw.metrics,
                }),
            })
        } else {
            None
        };
        if let Some(spans) = trace.spans.as_mut() {
            let failure = result.as_ref().err().map(|e| e.kind.as_str());
            let status = result.as_ref().ok().map(|a| a.status.as_u16());
            spans.answered(status, failure, next.is_some());
        }
        let Some(next) = next else {
            return match result {
                Ok(answer) => {
                    trace.in_flight = in_flight;
                    Ok(Sent {
                        answer,
                        asked_usage: body.asked_usage,
                    })
                }
                Err(failed) => match &call.holder {
                    // The holder never had the call: it may be sent again once the holder is
                    // back, and to no other backend.
                    Some(holder) if failed.kind.may_retry() => Err(budget::holder_unavailable(
                        gw,
                        holder,
                        index,
                        millis(gw.failover.unreachable_rest),
                    )),
                    _ => Err(failed.into()),
                },
            };
        };
        gw.metrics.handed_on(index);
        tracing::info!(
            request_id = trace.id(),
            "{} {}: backend {} answered {}; trying {}",
            call.req.method(),
            call.req.path(),
            backend.name,
            match &result {
                Ok(answer) => answer.status.as_u16().to_string(),
                Err(failed) => failed.to_string(),
            },
            next.1.name
        );
        (index, backend) = next;
    }
}
