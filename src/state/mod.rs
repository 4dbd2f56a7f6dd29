//! The state the gateway keeps between calls: rotations, backends' rests and circuits, and
//! subscriptions' limit windows. Without `state.redis_url`, each replica keeps its own, in
//! memory (the [`Balancer`](crate::balance::Balancer) and the
//! [`Limiter`](crate::limits::Limiter)); with it, replicas share them through Redis
//! ([`shared`]), and fall back to their own while Redis does not answer.
//!
//! The proxy sees three calls, whichever the state: [`begin`] (a call's reservation and its
//! rotation's turn, at once), [`settle`] (the reservation, once the call's usage is known) and
//! [`tell`] (what a call taught about its backend).

pub mod begin;
pub mod events;
pub mod shared;

use crate::balance::{Outcome, Set};
use crate::limits::{Refusal, Remaining, Reservation, now_ms};
use crate::proxy::Gateway;
use crate::proxy::error::GatewayError;
use begin::{Admission, Rotation, Scope, Windows};
use shared::{Settlement, Shared};

/// A call's reservation: `tokens` for the subscription's windows, and one request.
#[derive(Debug, Clone, Copy)]
pub struct Reserve<'a> {
    pub subscription: usize,
    pub deployment: Option<&'a str>,
    pub tokens: u64,
}

/// A rotation's turn among backends of one tier.
#[derive(Debug, Clone, Copy)]
pub struct Turn<'a> {
    pub version: &'static str,
    pub deployment: &'a str,
    pub candidates: Set,
}

/// What [`begin`] gave a call.
#[derive(Debug, Default)]
pub struct Begun {
    pub reservation: Option<Reservation>,
    /// The backend whose turn it is, by index, when the shared rotation took the turn; `None`
    /// leaves it to this replica's rotation (see `Balancer::take`).
    pub chosen: Option<usize>,
}

/// Begins a call: reserves it against its subscription's limits (refused with 429 when over
/// one) and, with shared state, takes its rotation's turn; one round trip to Redis.
pub async fn begin(
    gw: &Gateway,
    reserve: Option<Reserve<'_>>,
    turn: Option<Turn<'_>>,
) -> Result<Begun, GatewayError> {
    let reserve = reserve.filter(|r| gw.limiter.limits(r.subscription).is_some());
    if reserve.is_none() && turn.is_none() {
        return Ok(Begun::default());
    }
    if let Some(shared) = &gw.shared {
        if shared.is_up()
            && let Some(begun) = begin_shared(gw, shared, reserve, turn).await
        {
            return begun;
        }
        if shared.rejects() {
            return Err(GatewayError::StateUnavailable);
        }
    }
    let reservation = match reserve {
        Some(r) => gw
            .limiter
            .reserve(r.subscription, r.deployment, r.tokens)
            .map_err(|refused| GatewayError::LimitExceeded(Box::new(refused)))?,
        None => None,
    };
    Ok(Begun {
        reservation,
        chosen: None,
    })
}

/// [`begin`] through Redis; `None` when it did not answer.
async fn begin_shared(
    gw: &Gateway,
    shared: &Shared,
    reserve: Option<Reserve<'_>>,
    turn: Option<Turn<'_>>,
) -> Option<Result<Begun, GatewayError>> {
    let held = reserve.and_then(|r| Some((r, gw.limiter.limits(r.subscription)?)));
    let windows = held.map(|(r, limits)| Windows {
        subscription: gw.auth.subscription_name(r.subscription).unwrap_or("-"),
        own: &limits.own,
        deployment: r
            .deployment
            .and_then(|d| Some((d, limits.deployments.get(d)?))),
        tokens: r.tokens,
    });
    let backends = gw.balancer.backends();
    let rotation = turn.map(|t| Rotation {
        version: t.version,
        deployment: t.deployment,
        members: t
            .candidates
            .iter()
            .map(|i| (backends[i].name.as_str(), backends[i].weight))
            .collect(),
    });
    let now = now_ms();
    let reply = shared
        .begin(windows.as_ref(), rotation.as_ref(), now)
        .await
        .ok()?;
    Some(match reply {
        Admission::Admitted { remaining, chosen } => {
            let reservation = held.map(|(r, limits)| {
                // As in the replica's own windows: the deployment, when it has windows of its own.
                let own_windows = r.deployment.filter(|d| limits.deployments.contains_key(*d));
                Reservation::shared(
                    r.subscription,
                    own_windows.map(str::to_string),
                    r.tokens,
                    now,
                    remaining,
                )
            });
            let chosen = chosen
                .and_then(|name| gw.balancer.index_of(&name))
                .filter(|&i| turn.is_some_and(|t| t.candidates.contains(i)));
            Ok(Begun {
                reservation,
                chosen,
            })
        }
        Admission::Refused {
            which,
            scope,
            limit,
            wait_ms,
            remaining,
        } => Err(GatewayError::LimitExceeded(Box::new(Refusal {
            which,
            limit,
            deployment: reserve
                .and_then(|r| r.deployment)
                .filter(|_| scope == Scope::Deployment)
                .map(str::to_string),
            retry_after_ms: wait_ms,
            tokens: reserve.map_or(0, |r| r.tokens),
            remaining,
        }))),
    })
}

/// The call that made `reservation` spent `tokens`.
pub fn settle(gw: &Gateway, reservation: &Reservation, tokens: u64) {
    if !reservation.shared {
        gw.limiter.settle(reservation, tokens);
        return;
    }
    let Some(shared) = &gw.shared else {
        return;
    };
    if tokens == reservation.tokens() {
        return;
    }
    shared.settle(Settlement {
        subscription: gw
            .auth
            .subscription_name(reservation.subscription)
            .unwrap_or("-")
            .to_string(),
        deployment: reservation.deployment.clone(),
        second: reservation.second,
        day: reservation.day,
        delta: i64::try_from(tokens)
            .unwrap_or(i64::MAX)
            .saturating_sub(i64::try_from(reservation.tokens()).unwrap_or(i64::MAX)),
    });
}

/// Tells the other replicas what a call taught about backend `index` (the balancer said it is
/// news).
pub fn tell(gw: &Gateway, index: usize, deployment: Option<&str>, outcome: Outcome) {
    if let (Some(shared), Some(backend)) = (&gw.shared, gw.balancer.backends().get(index)) {
        shared.tell(&backend.name, deployment, outcome.into());
    }
}

/// What is left of a subscription's windows (and its deployment's, when that has its own), for
/// an answer that reserved nothing: read from the windows in use, the shared ones while Redis
/// answers (one round trip, counting nothing), else this replica's. `None` for a subscription
/// without limits.
pub async fn remaining(
    gw: &Gateway,
    subscription: usize,
    deployment: Option<&str>,
) -> Option<Remaining> {
    let limits = gw.limiter.limits(subscription)?;
    if let Some(shared) = gw.shared.as_ref().filter(|s| s.is_up()) {
        let windows = Windows {
            subscription: gw.auth.subscription_name(subscription).unwrap_or("-"),
            own: &limits.own,
            deployment: deployment.and_then(|d| Some((d, limits.deployments.get(d)?))),
            tokens: 0,
        };
        if let Ok(remaining) = shared.remaining(&windows, now_ms()).await {
            return Some(remaining);
        }
    }
    gw.limiter.remaining(subscription, deployment)
}

/// Whether shared state is configured, and if so whether it answers.
pub fn up(gw: &Gateway) -> Option<bool> {
    gw.shared.as_ref().map(|s| s.is_up())
}
