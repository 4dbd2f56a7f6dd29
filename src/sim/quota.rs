//! A simulated deployment's tokens-per-minute quota, enforced the way Azure does: in windows of
//! 10 seconds, each allowing a sixth of the per-minute quota. A call whose estimate (its prompt
//! plus its `max_tokens`, or 16 when unset) does not fit what is left of the window is refused
//! with 429, `retry-after` and `retry-after-ms` until the next window; every answer says what
//! is left in `x-ratelimit-remaining-tokens` and `-requests`. Without a quota
//! ([`SimulatorConfig::tokens_per_minute`](super::SimulatorConfig)) a deployment has 150,000
//! tokens a minute and never runs out.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, HttpResponseBuilder};

use super::{Simulator, azure_error, json_reply};

const WINDOW_MS: u64 = 10_000;
/// What a deployment without a quota reports it has.
const UNLIMITED: u64 = 150_000;
const REQUESTS_PER_WINDOW: u64 = 1000;

/// Per deployment: the current window, and the tokens and requests spent in it.
#[derive(Default)]
pub(super) struct Windows(Mutex<HashMap<String, Spent>>);

#[derive(Default, Clone, Copy)]
struct Spent {
    window: u64,
    tokens: u64,
    requests: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Windows {
    /// What `deployment` spent in the window of `now`, to read and count.
    fn current<'a>(
        guard: &'a mut MutexGuard<'_, HashMap<String, Spent>>,
        deployment: &str,
        now: u64,
    ) -> &'a mut Spent {
        let window = now / WINDOW_MS;
        let spent = guard.entry(deployment.to_string()).or_default();
        if spent.window != window {
            *spent = Spent {
                window,
                ..Spent::default()
            };
        }
        spent
    }
}

impl Simulator {
    /// The window's share of the quota.
    fn window_budget(&self) -> Option<u64> {
        self.config.tokens_per_minute.map(|tpm| tpm / 6)
    }

    /// The reply to build on, or the 429 for a call estimated at `estimate` tokens that does
    /// not fit what is left of `deployment`'s window.
    pub(super) fn admit(
        &self,
        mut reply: HttpResponseBuilder,
        deployment: &str,
        operation_id: &str,
        estimate: u64,
    ) -> Result<HttpResponseBuilder, Box<HttpResponse>> {
        let (Some(budget), Ok(mut windows)) = (self.window_budget(), self.quota.0.lock()) else {
            return Ok(reply);
        };
        let now = now_ms();
        let spent = *Windows::current(&mut windows, deployment, now);
        if spent.tokens + estimate <= budget {
            return Ok(reply);
        }
        let wait_ms = WINDOW_MS - now % WINDOW_MS;
        let wait_s = wait_ms.div_ceil(1000);
        reply.insert_header(("retry-after", wait_s.to_string()));
        reply.insert_header(("retry-after-ms", wait_ms.to_string()));
        reply.insert_header((
            "x-ratelimit-remaining-tokens",
            budget.saturating_sub(spent.tokens).to_string(),
        ));
        reply.insert_header((
            "x-ratelimit-remaining-requests",
            REQUESTS_PER_WINDOW
                .saturating_sub(spent.requests)
                .to_string(),
        ));
        let message = format!(
            "Requests to the {operation_id} Operation have exceeded token rate limit of your current provisioned throughput. Please retry after {wait_s} seconds."
        );
        Err(Box::new(json_reply(
            reply,
            azure_error(StatusCode::TOO_MANY_REQUESTS, "429", &message),
        )))
    }

    /// Counts what a call of `deployment` spent, and says on `reply` what is left.
    pub(super) fn spend(&self, reply: &mut HttpResponseBuilder, deployment: &str, tokens: u64) {
        let (left, requests) = match (self.window_budget(), self.quota.0.lock()) {
            (Some(budget), Ok(mut windows)) => {
                let spent = Windows::current(&mut windows, deployment, now_ms());
                spent.tokens += tokens;
                spent.requests += 1;
                (
                    budget.saturating_sub(spent.tokens),
                    REQUESTS_PER_WINDOW.saturating_sub(spent.requests),
                )
            }
            _ => (UNLIMITED.saturating_sub(tokens), 999),
        };
        reply.insert_header(("x-ratelimit-remaining-requests", requests.to_string()));
        reply.insert_header(("x-ratelimit-remaining-tokens", left.to_string()));
    }
}
