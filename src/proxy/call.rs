//! A call's context as it travels the phases: its id, and the [`Trace`] that its access
//! record, its metrics and its accounting read, filled in as each phase returns.
//!
//! The id is the client's `x-ms-client-request-id` (or `x-request-id`) when it sent a usable
//! one, else a new UUID; it goes back in `x-aoai-gateway-request-id` and in the gateway's own
//! error bodies, and up to the backend as `x-ms-client-request-id`, so one id finds a call in the
//! client's logs, the gateway's and Azure's.

use std::hash::{BuildHasher, RandomState};

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use aoai_runtime::catalog::Route;
use bytes::Bytes;

use crate::limits::Reservation;

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
pub fn new_id() -> String {
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
    /// The stored object the call names first (`response resp_…`), when it names one.
    pub object: Option<String>,
    /// Backends the call was sent to.
    pub attempts: u32,
    pub streaming: bool,
    /// Prompt tokens estimated before the call, when counted.
    pub prompt_tokens: Option<u64>,
    pub reservation: Option<Reservation>,
    /// Holds the call's place among its backend's calls in flight until its answer ends.
    pub in_flight: Option<crate::metrics::InFlight>,
    /// The call's trace spans, when the gateway exports traces.
    pub spans: Option<crate::traces::CallSpans>,
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
            object: None,
            attempts: 0,
            streaming: false,
            prompt_tokens: None,
            reservation: None,
            in_flight: None,
            spans: None,
        }
    }

    /// The call's id as text (it is visible ASCII).
    pub fn id(&self) -> &str {
        self.id.to_str().unwrap_or("-")
    }

    /// Puts the call's id on its response.
    pub fn stamp(&self, headers: &mut HeaderMap) {
        headers.insert(REQUEST_ID_HEADER, self.id.clone());
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
