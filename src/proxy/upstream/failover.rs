//! When a call moves on to another backend, and how long the one it leaves should rest.
//!
//! A call moves on only where it is safe to send it again: the backend refused it before doing
//! any work (429, 503), failed (500, 502, 504: the same codes the openai SDKs retry), or could
//! not be reached, so never saw it (no connection, or no token for a keyless backend). A
//! response timeout is not retried: the backend may still be generating, and billing, the
//! first answer; nor is an exchange that broke after the call was sent. Nothing has reached the client when the
//! choice is made, because it is made on the backend's status line and headers.
//!
//! Whether or not the call moves on, what happened is the backend's record for the balancer
//! ([`Outcome`]): a timeout is not retried, but it counts against the backend's circuit.

use std::time::Duration;

use actix_web::http::header::HeaderMap;

use super::forward::Answer;
use super::{Blame, UpstreamError};
use crate::balance::Outcome;
use crate::config::Failover;

/// Statuses after which another backend may take the call.
const MOVE_ON: [u16; 5] = [429, 500, 502, 503, 504];

/// What to do with one backend's answer, and what it says about the backend.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Try another backend rather than hand this answer to the client.
    pub move_on: bool,
    /// For the balancer: whether the backend (or its deployment) failed, and how long it asked
    /// to rest (Azure's quotas are per deployment; an unreachable backend rests as a whole).
    pub outcome: Outcome,
}

pub fn judge(result: &Result<Answer, UpstreamError>, policy: &Failover) -> Verdict {
    match result {
        Ok(answer) => judge_answer(answer.status.as_u16(), &answer.headers, policy),
        Err(error) => judge_failure(error, policy),
    }
}

/// The verdict on an answer's status and headers.
pub fn judge_answer(status: u16, headers: &HeaderMap, policy: &Failover) -> Verdict {
    if MOVE_ON.contains(&status) {
        Verdict {
            move_on: true,
            outcome: Outcome::DeploymentFailed {
                rest: retry_after(headers).map(|d| d.min(policy.max_rest)),
            },
        }
    } else {
        Verdict {
            move_on: false,
            outcome: Outcome::Answered,
        }
    }
}

/// The verdict on an attempt that got no answer.
pub fn judge_failure(error: &UpstreamError, policy: &Failover) -> Verdict {
    let outcome = match error.kind.blames() {
        // It cannot be called at all (unreachable, or no token for it): it rests as a whole.
        Blame::Backend | Blame::Credential => Outcome::Unreachable {
            rest: policy.unreachable_rest,
        },
        // No answer in time, or the connection failed after the call was sent: the deployment
        // failed the call.
        Blame::Deployment => Outcome::DeploymentFailed { rest: None },
    };
    Verdict {
        move_on: error.kind.may_retry(),
        outcome,
    }
}

/// A header's value as a number (`x-ratelimit-remaining-tokens`, `retry-after`), when it is one.
pub fn number<T: std::str::FromStr>(headers: &HeaderMap, name: &str) -> Option<T> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Azure's `retry-after-ms`, else `retry-after` in seconds. The HTTP-date form of
/// `retry-after` is not used by Azure OpenAI and is ignored.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    number(headers, "retry-after-ms")
        .map(Duration::from_millis)
        .or_else(|| number(headers, "retry-after").map(Duration::from_secs))
}

#[cfg(test)]
mod tests {
    use super::super::Failure;
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    const POLICY: Failover = Failover {
        attempts: 3,
        unreachable_rest: Duration::from_secs(5),
        max_rest: Duration::from_secs(60),
        circuit_failures: 5,
        circuit_window: Duration::from_secs(10),
        circuit_cooldown: Duration::from_secs(30),
        skip_low_headroom: true,
        headroom_ttl: Duration::from_secs(10),
    };

    const ANSWER: Verdict = Verdict {
        move_on: false,
        outcome: Outcome::Answered,
    };

    fn refused(rest: Option<Duration>) -> Verdict {
        Verdict {
            move_on: true,
            outcome: Outcome::DeploymentFailed { rest },
        }
    }

    fn reply(status: u16, headers: &[(&'static str, &'static str)]) -> (u16, HeaderMap) {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        (status, map)
    }

    #[test]
    fn quota_and_server_errors_move_on_and_rest_as_told() {
        let verdict = |(status, headers): (u16, HeaderMap)| judge_answer(status, &headers, &POLICY);
        assert_eq!(verdict(reply(200, &[])), ANSWER);
        assert_eq!(verdict(reply(400, &[("retry-after", "3")])), ANSWER);
        assert_eq!(
            verdict(reply(
                429,
                &[("retry-after", "7"), ("retry-after-ms", "6500")]
            )),
            refused(Some(Duration::from_millis(6500)))
        );
        assert_eq!(
            verdict(reply(429, &[("retry-after", "7")])),
            refused(Some(Duration::from_secs(7)))
        );
        assert_eq!(
            verdict(reply(503, &[("retry-after", "86400")])),
            refused(Some(Duration::from_secs(60)))
        );
        assert_eq!(
            verdict(reply(
                500,
                &[("retry-after", "Wed, 21 Oct 2026 07:28:00 GMT")]
            )),
            refused(None)
        );
    }

    impl Verdict {
        fn not_moving_on(self) -> Verdict {
            Verdict {
                move_on: false,
                ..self
            }
        }
    }

    #[test]
    fn only_a_backend_that_cannot_have_the_call_is_passed_over_among_failures() {
        let unreachable = Verdict {
            move_on: true,
            outcome: Outcome::Unreachable {
                rest: Duration::from_secs(5),
            },
        };
        let failure = |kind| judge_failure(&UpstreamError::new("a", kind, "x"), &POLICY);
        assert_eq!(failure(Failure::Connect), unreachable);
        assert_eq!(failure(Failure::Credential), unreachable);
        assert_eq!(failure(Failure::Timeout), refused(None).not_moving_on());
        assert_eq!(failure(Failure::Broken), refused(None).not_moving_on());
    }
}
