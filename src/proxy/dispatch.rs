//! Sends a checked call to a backend and, while backends refuse it, to the next: the failover
//! loop ([`failover`] judges each answer, the [`balancer`] picks and learns), and the request
//! each backend gets: its own name for the deployment, its deployment's parameter
//! compatibility, and the stream's usage asked for on the client's behalf, all as splices of
//! the client's bytes.
//!
//! [`failover`]: super::failover
//! [`balancer`]: super::balancer

use std::borrow::Cow;
use std::time::Instant;

use actix_web::HttpRequest;
use actix_web::http::header::{HeaderMap, HeaderName};
use aoai_runtime::catalog::Route;
use bytes::Bytes;

use super::access::Trace;
use super::balancer::{Ask, Candidates};
use super::deployment::{self, Place};
use super::error::{GatewayError, REMAINING_REQUESTS, REMAINING_TOKENS};
use super::request::Facts;
use super::upstream::{self, Answer, Outgoing};
use super::{Gateway, compat, edit, failover};
use crate::config::Backend;
use crate::metrics::Headroom;
use crate::state;

/// A checked call, ready for a backend.
pub(super) struct Call<'r> {
    pub req: &'r HttpRequest,
    /// (subscription, tokens) to reserve, when the subscription has limits.
    pub reserve: Option<(usize, u64)>,
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
    /// What the call may spend, for the balancer's headroom check.
    pub tokens: Option<u64>,
}

/// A backend's answer, and whether the body it was sent asked for the stream's usage on the
/// client's behalf.
pub(super) struct Sent {
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
    let number = |name: &HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    Headroom {
        tokens: number(&REMAINING_TOKENS),
        requests: number(&REMAINING_REQUESTS),
    }
}

/// The backend for a call's first attempt, as the call begins (see [`state::begin`]): its
/// reservation made (or the call refused) and its rotation's turn taken.
async fn first<'g>(
    call: &Call<'_>,
    gw: &'g Gateway,
    trace: &mut Trace,
) -> Result<(usize, &'g Backend), GatewayError> {
    let no_backend = || GatewayError::NoBackend {
        deployment: call.deployment.map(str::to_string),
        version: call.version.to_string(),
    };
    let reserve = call.reserve.map(|(subscription, tokens)| state::Reserve {
        subscription,
        deployment: call.deployment,
        tokens,
    });
    let Some(name) = call.deployment else {
        let home = gw.balancer.home(call.version).ok_or_else(no_backend)?;
        trace.reservation = state::begin(gw, reserve, None).await?.reservation;
        return Ok(home);
    };
    let ask = Ask {
        version: call.version,
        deployment: call.deployment,
        tried: &[],
        tokens: call.tokens,
    };
    let (turn, fallback) = match gw.balancer.candidates(ask) {
        Candidates::None => return Err(no_backend()),
        Candidates::Waking(i) => (None, i),
        Candidates::Tier(set) => {
            let only = set.iter().next().ok_or_else(no_backend)?;
            let turn = (set.len() > 1).then_some(state::Turn {
                version: call.version,
                deployment: name,
                candidates: set,
            });
            (turn, only)
        }
    };
    let begun = state::begin(gw, reserve, turn).await?;
    trace.reservation = begun.reservation;
    gw.balancer
        .take(ask, begun.chosen.unwrap_or(fallback))
        .ok_or_else(no_backend)
}

/// Sends the call to a backend and, while backends refuse it, to the next.
pub(super) async fn dispatch(
    call: &Call<'_>,
    gw: &Gateway,
    client: &awc::Client,
    trace: &mut Trace,
) -> Result<Sent, GatewayError> {
    let mut tried: Vec<usize> = Vec::new();
    let ask = |tried: &[usize]| {
        gw.balancer.pick(Ask {
            version: call.version,
            deployment: call.deployment,
            tried,
            tokens: call.tokens,
        })
    };
    let (mut index, mut backend) = first(call, gw, trace).await?;
    let request_id = (!trace.client_sent_id).then(|| trace.id.clone());
    loop {
        trace.backend = Some(index);
        trace.attempts += 1;
        let sent = Instant::now();
        let body = call.body_for(backend)?;
        let result = upstream::forward(
            client,
            backend,
            Outgoing {
                method: call.req.method(),
                headers: call.req.headers(),
                path: &call.path_for(backend),
                query: &call.query,
                body: body.bytes,
                decoded: body.decoded,
                request_id: request_id.clone(),
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
        if gw.balancer.record(index, call.deployment, verdict.outcome) {
            state::tell(gw, index, call.deployment, verdict.outcome);
        }
        // Stored objects live on one backend: there is nowhere else to go.
        if !verdict.move_on || call.deployment.is_none() {
            return result.map(|answer| Sent {
                answer,
                asked_usage: body.asked_usage,
            });
        }
        tried.push(index);
        let next = if tried.len() < gw.failover.attempts {
            ask(&tried)
        } else {
            None
        };
        let Some(next) = next else {
            return result.map(|answer| Sent {
                answer,
                asked_usage: body.asked_usage,
            });
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
                Err(error) => error.internal(),
            },
            next.1.name
        );
        (index, backend) = next;
    }
}
