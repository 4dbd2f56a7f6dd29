//! When a call moves on to another backend, and how long the one it leaves should rest.
//!
//! A call moves on only where it is safe to send it again: the backend refused it before doing
//! any work (429, 503), failed (500, 502, 504: the same codes the openai SDKs retry), or could
//! not be connected to, so never saw it. A response timeout is not retried: the backend may
//! still be generating, and billing, the first answer. Nothing has reached the client when the
//! choice is made, because it is made on the backend's status line and headers.
//!
//! Whether or not the call moves on, what happened is the backend's record for the balancer
//! ([`Outcome`]): a timeout is not retried, but it counts against the backend's circuit.

use std::time::Duration;

use actix_web::http::header::HeaderMap;

use crate::config::Failover;
use crate::proxy::balancer::Outcome;
use crate::proxy::error::GatewayError;
use crate::proxy::upstream::Answer;

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

pub fn judge(result: &Result<Answer, GatewayError>, policy: &Failover) -> Verdict {
    match result {
        Ok(answer) => judge_answer(answer.status.as_u16(), &answer.headers, policy),
        Err(error) => judge_failure(error, policy),
    }
}

fn judge_answer(status: u16, headers: &HeaderMap, policy: &Failover) -> Verdict {
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

fn judge_failure(error: &GatewayError, policy: &Failover) -> Verdict {
    match error {
        GatewayError::UpstreamConnect { .. } => Verdict {
            move_on: true,
            outcome: Outcome::Unreachable {
                rest: policy.unreachable_rest,
            },
        },
        // No answer in time, or the connection failed after the call was sent: the backend
        // may have the call, so it is not sent again, but the backend did fail it.
        _ => Verdict {
            move_on: false,
            outcome: Outcome::DeploymentFailed { rest: None },
        },
    }
}

/// Azure's `retry-after-ms`, else `retry-after` in seconds. The HTTP-date form of
/// `retry-after` is not used by Azure OpenAI and is ignored.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    number("retry-after-ms")
        .map(Duration::from_millis)
        .or_else(|| number("retry-after").map(Duration::from_secs))
}

#[cfg(test)]
mod tests {
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
    fn only_an_unreachable_backend_is_retried_among_failures() {
        let connect = GatewayError::UpstreamConnect {
            backend: "a".into(),
            detail: "refused".into(),
        };
        assert_eq!(
            judge_failure(&connect, &POLICY),
            Verdict {
                move_on: true,
                outcome: Outcome::Unreachable {
                    rest: Duration::from_secs(5)
                }
            }
        );
        let timeout = GatewayError::UpstreamTimeout {
            backend: "a".into(),
        };
        assert_eq!(
            judge_failure(&timeout, &POLICY),
            refused(None).not_moving_on()
        );
    }
}
