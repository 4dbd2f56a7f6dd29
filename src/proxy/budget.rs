//! The budget phase: what a call holds itself to, and its reservation, made as the call begins.
//!
//! A call of a subscription with limits reserves one request and, when it counts tokens (the
//! rule is [`reserves_tokens`](super::inbound::reserves_tokens), the same that decided whether
//! its prompt was counted), its estimate: its prompt and its completion allowance. The
//! reservation is made together with the rotation's turn of its first attempt, because with
//! shared state both are one round trip to Redis (`state::begin`); so this phase ends with the
//! backend the call goes to first, or a refusal (429 over a limit, 404 when no backend serves
//! it) before any backend is called.

use aoai_runtime::catalog::Route;

use super::Gateway;
use super::body::cache_key;
use super::error::GatewayError;
use super::inbound::{Checked, Deployment, reserves_tokens};
use crate::balance::{Affinity, Ask, Placement};
use crate::config::Backend;
use crate::limits::Reservation;
use crate::metrics::ObjectOutcome;
use crate::objects::follow::Holder;
use crate::objects::refusal::Refused;
use crate::state;

/// What a call holds itself to.
#[derive(Debug, Clone, Copy, Default)]
pub struct Budget {
    /// (subscription, tokens) to reserve, when the subscription has limits.
    pub reserve: Option<(usize, u64)>,
    /// At most what the call may spend, for the balancer to pass over a backend that reported
    /// less room; `None` for a call that spends no tokens.
    pub at_most: Option<u64>,
    /// Its prompt-cache key, when its deployment is placed by one (`balancing.policy`).
    pub cache_key: Option<u64>,
}

/// The budget of a checked call. Its prompt is counted here if a backend lately reported less
/// room than the call's upper bound, so that only then is the exact figure needed.
pub fn plan(gw: &Gateway, subscription: usize, route: &Route, checked: &mut Checked) -> Budget {
    let deployment = checked.deployment.as_ref().map(|d| d.name.as_str());
    let reserve = gw.limiter.limits(subscription).map(|limits| {
        let counted = reserves_tokens(limits, route, Deployment::Known(deployment));
        let tokens = match &checked.facts {
            Some(facts) if counted => facts.tokens(),
            _ => 0,
        };
        (subscription, tokens)
    });
    let source = checked.meant().clone();
    let at_most = match (&mut checked.facts, deployment) {
        (Some(facts), Some(name)) if route.reports_usage => {
            if facts.prompt_tokens.is_none() && gw.balancer.any_short_of_room(name, facts.at_most())
            {
                facts.count_prompt(&source);
            }
            Some(facts.at_most())
        }
        _ => None,
    };
    let cache_key = match (&checked.facts, deployment) {
        (Some(facts), Some(name)) if gw.balancer.places_by_prompt(name) => {
            cache_key::of(&facts.members, checked.meant())
        }
        _ => None,
    };
    Budget {
        reserve,
        at_most,
        cache_key,
    }
}

/// How a call began: the backend of its first attempt, and its reservation.
pub struct Begun<'g> {
    pub first: (usize, &'g Backend),
    pub reservation: Option<Reservation>,
}

/// Begins a call: its reservation and its first backend (see the module note).
pub async fn begin<'g>(
    gw: &'g Gateway,
    version: &'static str,
    deployment: Option<&str>,
    holder: Option<&Holder>,
    budget: Budget,
) -> Result<Begun<'g>, GatewayError> {
    let no_backend = || GatewayError::NoBackend {
        deployment: deployment.map(str::to_string),
        version: version.to_string(),
    };
    let ask = Ask {
        version,
        deployment,
        tried: &[],
        at_most: budget.at_most,
        pinned: holder.map(|h| h.index),
        affinity: budget.cache_key.map(|key| Affinity {
            key,
            loads: &gw.metrics,
        }),
    };
    let placement = gw.balancer.place(ask);
    match (placement, holder) {
        (Placement::Nowhere, _) => return Err(no_backend()),
        (Placement::HolderRests { index, wait_ms }, Some(holder)) => {
            return Err(holder_unavailable(gw, holder, index, wait_ms));
        }
        _ => {}
    }
    let reserve = budget.reserve.map(|(subscription, tokens)| state::Reserve {
        subscription,
        deployment,
        tokens,
    });
    // A call placed by its key takes no turn: its key decides, the same in every replica.
    let turn = placement
        .turn()
        .filter(|_| ask.affinity.is_none())
        .zip(deployment)
        .map(|(candidates, name)| state::Turn {
            version,
            deployment: name,
            candidates,
        });
    let begun = state::begin(gw, reserve, turn).await?;
    let first = gw
        .balancer
        .take(ask, placement, begun.chosen)
        .ok_or_else(no_backend)?;
    Ok(Begun {
        first,
        reservation: begun.reservation,
    })
}

/// The refusal of a call pinned to `holder` (backend `index`), which cannot take it for
/// `wait_ms` more: no other backend has the object.
pub fn holder_unavailable(
    gw: &Gateway,
    holder: &Holder,
    index: usize,
    wait_ms: u64,
) -> GatewayError {
    gw.metrics.object_call(ObjectOutcome::HolderUnavailable);
    Refused::HolderUnavailable {
        object: holder.object.clone(),
        backend: gw
            .balancer
            .backends()
            .get(index)
            .map(|b| b.name.clone())
            .unwrap_or_default(),
        retry_after_ms: wait_ms,
    }
    .into()
}
