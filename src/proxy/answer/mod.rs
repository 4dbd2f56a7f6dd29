//! The answer phase: a backend's answer streams to the client through a [`relay`], which fails
//! the client's response if the backend cuts it and passes each chunk through a meter that
//! reads the usage; when it has ended, [`access`] settles the call's reservation with what was
//! spent, counts its tokens and writes its one access record.

pub mod access;
pub mod relay;

use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, web};
use aoai_runtime::catalog::ContentKind;

use super::Gateway;
use super::call::Trace;
use super::error::remaining_headers;
use super::upstream::dispatch::Sent;
use super::upstream::forward::Answer;
use crate::objects::learn::{Learner, Plan};
use crate::tokens::meter::Meter;
use crate::traces::CallSpans;
use relay::{End, Learn};

/// The client's response for a backend's answer, streaming; the call is accounted for and
/// recorded when the answer ends. `status` has been counted by the caller. `stores`: the call
/// leaves what it creates stored (it did not ask `store: false`).
pub fn stream(
    req: HttpRequest,
    gw: web::Data<Gateway>,
    mut trace: Trace,
    started: Instant,
    sent: Sent,
    stores: bool,
) -> HttpResponse {
    let Sent {
        mut answer,
        asked_usage,
    } = sent;
    let status = answer.status.as_u16();
    // The subscription's own headroom, not that of whichever backend answered.
    if let Some(reservation) = &trace.reservation {
        remaining_headers(&mut answer.headers, &reservation.remaining);
    }
    trace.stamp(&mut answer.headers);
    let meter = meter_for(&gw, &trace, &answer, asked_usage);
    let learn = learn_for(&gw, &trace, &answer).filter(|_| stores);
    trace.streaming |= asked_usage;
    let gateway = gw.clone();
    let request = req.clone();
    answer.into_response(req.version(), meter, learn, move |ended| {
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
    })
}

/// The meter for a successful answer of an operation that reports usage.
fn meter_for(gw: &Gateway, trace: &Trace, answer: &Answer, asked_usage: bool) -> Option<Meter> {
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
    let meter = match ContentKind::of(answer.media_type()) {
        ContentKind::EventStream => Meter::events(encoding, asked_usage),
        ContentKind::Json => Meter::json(encoding, answer.length()),
        _ => return None,
    };
    // `gen_ai.response.model`, for a call whose trace is kept.
    let traced = trace.spans.as_ref().is_some_and(CallSpans::recording);
    Some(if traced { meter.naming_model() } else { meter })
}

/// What reads a successful answer of an operation that creates stored objects, and records
/// them in the directory as the owner's, on the backend that answered.
fn learn_for(gw: &web::Data<Gateway>, trace: &Trace, answer: &Answer) -> Option<Learn> {
    let route = trace.route?;
    let creates = route.objects.creates?;
    if route.objects.records.is_empty() || !answer.status.is_success() {
        return None;
    }
    let backend = gw.balancer.backends().get(trace.backend?)?;
    let owner = gw.auth.subscription_name(trace.subscription?)?;
    let events = ContentKind::of(answer.media_type()) == ContentKind::EventStream;
    let plan = Plan {
        records: route.objects.records,
        creates,
        owner: owner.to_string(),
        backend: backend.name.clone(),
    };
    let gw = gw.clone();
    let request_id = trace.id().to_string();
    Some(Learn {
        learner: Learner::new(plan, events),
        write: Box::new(move |records| {
            let task = actix_web::rt::spawn(async move {
                let ids: Vec<String> = records.iter().map(|(id, _, _)| id.clone()).collect();
                if let Err(error) = gw.objects.directory.record(records).await {
                    // The object exists, but the gateway cannot route its follow-ups.
                    tracing::error!(
                        request_id,
                        "object directory: {} not recorded: {error}",
                        ids.join(", ")
                    );
                }
            });
            Box::pin(async move {
                let _ = task.await;
            })
        }),
    })
}
