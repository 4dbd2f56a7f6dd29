//! Each call's id, what it spent, and its one access record, written when its answer has ended.
//!
//! The id is the client's `x-ms-client-request-id` (or `x-request-id`) when it sent a usable
//! one, else a new UUID; it goes back in `x-aoai-gateway-request-id` and in the gateway's own
//! error bodies, and up to the backend as `x-ms-client-request-id`, so one id finds a call in the
//! client's logs, the gateway's and Azure's.
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
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use actix_web::HttpRequest;
use actix_web::http::Method;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use aoai_runtime::catalog::Route;
use bytes::Bytes;

use super::Gateway;
use super::relay::{End, Ended};
use crate::limits::Reservation;
use crate::tokens::meter::Reading;
use crate::tokens::usage::{Source, Spent, Usage};

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-aoai-gateway-request-id");
/// Azure's header for the client's own request id.
pub const CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("x-ms-client-request-id");
const OTHER_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The call's id: the client's, when usable (1 to 128 visible ASCII characters), else new;
/// and whether the client sent it as `x-ms-client-request-id`.
pub fn request_id(headers: &HeaderMap) -> (HeaderValue, bool) {
    for name in [CLIENT_REQUEST_ID, OTHER_REQUEST_ID] {
        if let Some(id) = headers.get(&name).filter(|v| {
            let bytes = v.as_bytes();
            (1..=128).contains(&bytes.len()) && bytes.iter().all(u8::is_ascii_graphic)
        }) {
            // Shared with the request, not copied.
            return (id.clone(), name == CLIENT_REQUEST_ID);
        }
    }
    let id = HeaderValue::from_maybe_shared(Bytes::from(new_id()))
        .unwrap_or_else(|_| HeaderValue::from_static("-"));
    (id, false)
}

/// A random (version 4) UUID, from a generator each thread seeds once from the process's
/// random keys: unique and unpredictable enough for ids, and a few nanoseconds each.
fn new_id() -> String {
    thread_local! {
        static STATE: std::cell::Cell<u64> = std::cell::Cell::new(
            RandomState::new().hash_one(std::thread::current().id()) | 1
        );
    }
    // wyrand: a 64-bit multiply-xorshift generator.
    let next = || {
        STATE.with(|state| {
            let s = state.get().wrapping_add(0xa076_1d64_78bd_642f);
            state.set(s);
            let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
            ((t >> 64) ^ t) as u64
        })
    };
    let bits = (u128::from(next()) << 64) | u128::from(next());
    // Version 4, variant 10.
    let bits = (bits & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 36];
    let mut nibble = 32;
    for (i, slot) in out.iter_mut().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            *slot = b'-';
            continue;
        }
        nibble -= 1;
        *slot = HEX[((bits >> (nibble * 4)) & 0xf) as usize];
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a call's record says beyond method, path and status, filled in as it goes.
#[derive(Debug)]
pub struct Trace {
    /// The call's id, as the header that carries it.
    pub id: HeaderValue,
    /// The client sent `x-ms-client-request-id` itself (so it need not be added upstream).
    pub client_sent_id: bool,
    /// Whether the request was for the API, so the metrics count it; not for the gateway's own
    /// pages.
    pub api: bool,
    /// Indexes in the config.
    pub subscription: Option<usize>,
    pub backend: Option<usize>,
    pub route: Option<&'static Route>,
    pub deployment: Option<String>,
    /// Backends the call was sent to.
    pub attempts: u32,
    pub streaming: bool,
    /// Prompt tokens estimated before the call, when counted.
    pub prompt_tokens: Option<u64>,
    pub reservation: Option<Reservation>,
}

impl Trace {
    pub fn new(headers: &HeaderMap) -> Trace {
        let (id, client_sent_id) = request_id(headers);
        Trace {
            id,
            client_sent_id,
            api: false,
            subscription: None,
            backend: None,
            route: None,
            deployment: None,
            attempts: 0,
            streaming: false,
            prompt_tokens: None,
            reservation: None,
        }
    }

    /// The call's id as text (it is visible ASCII).
    pub fn id(&self) -> &str {
        self.id.to_str().unwrap_or("-")
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clients_id_is_kept_when_usable() {
        let mut headers = HeaderMap::new();
        let (id, _) = request_id(&headers);
        let id = id.to_str().unwrap().to_string();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        assert_eq!(id.matches('-').count(), 4);
        assert_ne!(request_id(&headers).0, id.as_str());
        headers.insert(OTHER_REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(
            request_id(&headers),
            (HeaderValue::from_static("abc-123"), false)
        );
        headers.insert(CLIENT_REQUEST_ID, HeaderValue::from_static("mine"));
        assert_eq!(
            request_id(&headers),
            (HeaderValue::from_static("mine"), true)
        );
        headers.insert(CLIENT_REQUEST_ID, HeaderValue::from_static("has spaces"));
        assert_eq!(request_id(&headers).0, "abc-123");
    }
}
