//! What each call spent, and its one access record, written when its answer has ended.
//!
//! What a call spent is the usage its answer reported, read as it passed, or, where the answer
//! had none (a stream on an api-version that cannot ask for it, an answer cut short), an
//! estimate: the prompt as counted before the call and the text seen. Its reservation against
//! the subscription's limits is settled with that, and the tokens counted in the metrics, by
//! subscription, deployment, backend, kind and source. Retrievals are not spending: a `GET` of a
//! stored response counts nothing. A run is the exception, since its tokens are spent after the
//! call that started it: its usage is counted once, from the first answer that shows it finished
//! (a stream's last event, or a poll), by the run's id.

use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use actix_web::HttpRequest;
use actix_web::http::Method;

use super::relay::{End, Ended};
use crate::proxy::Gateway;
use crate::proxy::call::Trace;
use crate::tokens::meter::Reading;
use crate::tokens::usage::{Source, Spent, Usage};
use crate::traces::Ending;

/// Ids of runs whose usage has been counted, the newest [`RUNS_KEPT`].
#[derive(Default)]
pub struct CountedRuns {
    state: Mutex<Recent>,
}

/// A set of ids, and the order they came in, to forget the oldest.
type Recent = (HashSet<Box<str>>, VecDeque<Box<str>>);

const RUNS_KEPT: usize = 65_536;

impl CountedRuns {
    /// Whether run `id` is counted for the first time now.
    fn first_time(&self, id: &str) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (seen, order) = &mut *state;
        if !seen.insert(id.into()) {
            return false;
        }
        order.push_back(id.into());
        if order.len() > RUNS_KEPT
            && let Some(oldest) = order.pop_front()
        {
            seen.remove(&oldest);
        }
        true
    }
}

const RUN_DONE: [&str; 5] = ["completed", "failed", "cancelled", "expired", "incomplete"];

/// Whether a reported usage is spending to count: not a retrieval, and a run's only once.
fn counts(gw: &Gateway, method: &Method, reading: &Reading) -> bool {
    if reading.object.as_deref() == Some("thread.run") {
        let done = reading
            .status
            .as_deref()
            .is_some_and(|s| RUN_DONE.contains(&s));
        return done
            && reading
                .id
                .as_deref()
                .is_some_and(|id| gw.counted_runs.first_time(id));
    }
    method != Method::GET
}

/// What the call spent, by its answer: settles its reservation and counts its tokens.
pub fn account(
    gw: &Gateway,
    method: &Method,
    trace: &Trace,
    status: u16,
    ended: Option<&Ended>,
) -> Option<Spent> {
    let spent = spent(gw, method, trace, status, ended);
    if let Some(reservation) = &trace.reservation {
        crate::state::settle(gw, reservation, spent.map_or(0, |s| s.usage.total));
    }
    if let Some(spent) = &spent {
        gw.metrics.tokens(
            trace.subscription,
            trace.deployment.as_deref().unwrap_or("-"),
            trace.backend,
            spent,
        );
    }
    spent
}

fn spent(
    gw: &Gateway,
    method: &Method,
    trace: &Trace,
    status: u16,
    ended: Option<&Ended>,
) -> Option<Spent> {
    if !(200..300).contains(&status) {
        return None;
    }
    let ended = ended?;
    let reading = ended.reading.as_ref()?;
    if let Some(usage) = reading.usage {
        return counts(gw, method, reading).then_some(Spent {
            usage,
            source: Source::Reported,
        });
    }
    // No usage came: what a call that generates spent is estimated (a poll of a run still
    // going spends nothing yet).
    let generating =
        *method != Method::GET && reading.object.is_none_or(|o| o.as_str() != "thread.run");
    if !generating {
        return None;
    }
    let prompt = trace.prompt_tokens.unwrap_or(0);
    let completion = reading.text_tokens;
    Some(Spent {
        usage: Usage {
            prompt,
            completion,
            total: prompt + completion,
            reasoning: 0,
            cached: 0,
        },
        source: Source::Estimated,
    })
}

/// The call's access record, once its answer has ended (`ended`, for a backend's answer) or
/// been sent (the gateway's own). Never the query string, which may hold a subscription key.
pub fn record(
    gw: &Gateway,
    req: &HttpRequest,
    status: u16,
    started: Instant,
    trace: &Trace,
    ended: Option<&Ended>,
    spent: Option<&Spent>,
) {
    let subscription = trace
        .subscription
        .and_then(|i| gw.auth.subscription_name(i))
        .unwrap_or("-");
    let backend = trace
        .backend
        .and_then(|i| gw.balancer.backends().get(i))
        .map_or("-", |b| b.name.as_str());
    // Milliseconds to the microsecond.
    let ms = |d: std::time::Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
    let duration_ms = ms(started.elapsed());
    let ttfb_ms = ended
        .and_then(|e| e.first_byte)
        .map(|t| ms(t.duration_since(started)));
    let (end, bytes, detail) = match ended.map(|e| &e.end) {
        Some(End::Complete { bytes }) => ("complete", Some(*bytes), None),
        Some(End::Cut { bytes, detail }) => ("cut", Some(*bytes), Some(detail.as_str())),
        Some(End::Abandoned { bytes }) => ("abandoned", Some(*bytes), None),
        None => ("complete", None, None),
    };
    let usage = spent.map(|s| s.usage);
    if let Some(spans) = &trace.spans {
        let model = ended
            .and_then(|e| e.reading.as_ref())
            .and_then(|r| r.model.as_ref());
        spans.end(&Ending {
            status,
            route: trace.route.map(|r| r.path),
            operation_id: trace.route.map(|r| r.operation_id),
            deployment: trace.deployment.as_deref(),
            subscription: trace
                .subscription
                .and_then(|i| gw.auth.subscription_name(i)),
            request_id: trace.id(),
            end: ended.map(|_| end),
            first_byte: ended.and_then(|e| e.first_byte),
            model: model.map(|m| &**m),
            usage: usage.map(|u| [u.prompt, u.completion, u.reasoning, u.cached]),
        });
    }
    macro_rules! emit {
        ($level:ident, $message:literal) => {
            tracing::$level!(
                target: "access",
                request_id = trace.id(),
                method = %req.method(),
                path = req.path(),
                route = trace.route.map(|r| r.operation_id),
                status,
                subscription,
                deployment = trace.deployment.as_deref(),
                object = trace.object.as_deref(),
                backend,
                attempts = trace.attempts,
                ttfb_ms,
                duration_ms,
                bytes,
                end,
                detail,
                prompt_tokens = usage.map(|u| u.prompt),
                completion_tokens = usage.map(|u| u.completion),
                reasoning_tokens = usage.map(|u| u.reasoning),
                cached_tokens = usage.map(|u| u.cached),
                tokens = spent.map(|s| s.source.as_str()),
                $message
            )
        };
    }
    if end == "cut" {
        emit!(
            warn,
            "the backend cut its answer off; the client's response was failed"
        );
    } else {
        emit!(info, "call");
    }
}
