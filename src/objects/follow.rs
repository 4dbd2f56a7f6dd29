//! The objects phase of a call, between its checks and its budget: the objects it names are
//! looked up in the directory (one round trip, and none for a call that names none), the
//! caller's right to each is checked, and the call is pinned to the backend that holds them.
//!
//! With `stored_objects.isolation = "subscription"`, a caller (not an admin) may name only its
//! own objects: another subscription's, or one the directory never saw, is answered 404 exactly
//! as an id that does not exist, before any backend is called. Objects a call names must live
//! together: on one backend, which serves the call's api-version and deployment; else 400,
//! before any backend is called. A call naming no object the directory knows keeps the rule for
//! operations on stored objects: their home backend (or, for a deployment's call, the rotation).

use super::directory::Entry;
use super::named::{self, Named};
use super::refusal::{Object, Refused};
use crate::metrics::ObjectOutcome;
use crate::proxy::Gateway;
use crate::proxy::error::GatewayError;
use crate::proxy::inbound::{Checked, Target};

/// The backend a call must go to, and the object that pins it there.
#[derive(Debug, Clone)]
pub struct Holder {
    pub index: usize,
    pub object: Object,
}

/// What the objects phase decided.
#[derive(Debug, Default)]
pub struct Followed {
    pub holder: Option<Holder>,
    /// The first object the call names, for its access record: `kind id`.
    pub object: Option<String>,
    /// The object its path names last, the one a delete deletes: (kind, id).
    pub target: Option<(&'static str, String)>,
}

/// Checks and pins a call by the objects it names (see the module note).
pub async fn follow(
    gw: &Gateway,
    target: &Target<'_>,
    subscription: usize,
    checked: &Checked,
) -> Result<Followed, GatewayError> {
    let route = target.route;
    let stored = &gw.objects;
    if !route.objects.any() {
        return Ok(Followed::default());
    }
    let mut named = named::in_path(&route.objects, |p| target.param(p), |k| stored.keeps(k));
    if !route.objects.fields.is_empty() {
        named.extend(named::in_body(route.objects.fields, checked.meant(), |k| {
            stored.keeps(k)
        }));
    }
    let isolated = stored.isolates(gw.auth.subscription(subscription));
    // What a call creates must be recorded for its owner to use it again.
    let records = !route.objects.records.is_empty();
    if named.is_empty() {
        if records && isolated && !stored.available() {
            return Err(GatewayError::DirectoryUnavailable);
        }
        return Ok(Followed::default());
    }
    let ids: Vec<&str> = named.iter().map(|n| n.id.as_ref()).collect();
    // Boxed: a lookup's future (a Redis round trip) would otherwise weigh on every call's.
    let entries = match Box::pin(stored.directory.look_up(&ids)).await {
        Ok(entries) => entries,
        Err(error) => {
            // The store logs its going down once; this is every call's.
            tracing::debug!("object directory: {error}");
            if isolated {
                return Err(GatewayError::DirectoryUnavailable);
            }
            // Shared objects: the home backend, as before there was a directory.
            vec![None; named.len()]
        }
    };
    let owner = gw.auth.subscription_name(subscription).unwrap_or_default();
    let decided = decide(gw, target, checked, &named, &entries, isolated, owner);
    let outcome = match &decided {
        Err(GatewayError::Object(refused)) => match **refused {
            Refused::NotFound(_) => Some(ObjectOutcome::Refused),
            _ => Some(ObjectOutcome::Elsewhere),
        },
        Err(_) => None,
        Ok(followed) => followed.holder.as_ref().map(|_| ObjectOutcome::Pinned),
    };
    if let Some(outcome) = outcome {
        gw.metrics.object_call(outcome);
    }
    decided
}

fn decide(
    gw: &Gateway,
    target: &Target<'_>,
    checked: &Checked,
    named: &[Named<'_>],
    entries: &[Option<Entry>],
    isolated: bool,
    owner: &str,
) -> Result<Followed, GatewayError> {
    let mut holder: Option<(&Named<'_>, &Entry)> = None;
    for (name, entry) in named.iter().zip(entries) {
        let theirs = entry.as_ref().is_none_or(|e| e.owner != owner);
        if isolated && theirs {
            return Err(Refused::NotFound(object(name)).into());
        }
        let Some(entry) = entry else { continue };
        match holder {
            None => holder = Some((name, entry)),
            Some((first, held)) if held.backend != entry.backend => {
                return Err(Refused::Apart(object(first), object(name)).into());
            }
            Some(_) => {}
        }
    }
    let first = &named[0];
    let target_object = named
        .iter()
        .rev()
        .find(|n| matches!(n.by, named::By::Path(_)))
        .map(|n| (n.kind, n.id.to_string()));
    let mut followed = Followed {
        holder: None,
        object: Some(format!("{} {}", first.kind, first.id)),
        target: target_object,
    };
    let Some((name, entry)) = holder else {
        return Ok(followed);
    };
    let deployment = checked.deployment.as_ref().map(|d| d.name.as_str());
    let elsewhere = || Refused::Elsewhere {
        object: object(name),
        backend: entry.backend.clone(),
        deployment: deployment.map(str::to_string),
        version: target.api.version,
    };
    let Some(index) = gw.balancer.index_of(&entry.backend) else {
        // Its backend left the config: nothing can reach the object.
        return Err(elsewhere().into());
    };
    let backend = &gw.balancer.backends()[index];
    if !backend.serves_version(target.api.version)
        || deployment.is_some_and(|d| !backend.serves_deployment(d))
    {
        return Err(elsewhere().into());
    }
    followed.holder = Some(Holder {
        index,
        object: object(name),
    });
    Ok(followed)
}

/// A named object, as a refusal or a holder tells it.
fn object(name: &Named<'_>) -> Object {
    Object {
        kind: name.kind,
        id: name.id.to_string(),
        param: name.by.param().into_owned(),
    }
}
