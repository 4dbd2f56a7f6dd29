//! When a call moves on to another backend, and how long the one it leaves should rest.
//!
//! A call moves on only where it is safe to send it again: the backend refused it before doing
//! any work (429, 503), failed (500, 502, 504: the same codes the openai SDKs retry), or could
//! not be connected to, so never saw it. A response timeout is not retried: the backend may
//! still be generating, and billing, the first answer. Nothing has reached the client when the
//! choice is made, because it is made on the backend's status line and headers.

use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::http::header::HeaderMap;

use crate::config::Failover;
use crate::error::GatewayError;

/// Statuses after which another backend may take the call.
const MOVE_ON: [u16; 5] = [429, 500, 502, 503, 504];

/// What to do with one backend's answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Hand it to the client.
    Answer,
    /// Try another backend; the deployment on this one rests for the time its answer asked for,
    /// if it did (Azure's quotas are per deployment).
    DeploymentRefused { rest: Option<Duration> },
    /// Try another backend; this one rests as a whole.
    Unreachable { rest: Duration },
}

pub fn judge(result: &Result<HttpResponse, GatewayError>, policy: &Failover) -> Verdict {
    match result {
        Ok(reply) if MOVE_ON.contains(&reply.status().as_u16()) => Verdict::DeploymentRefused {
            rest: retry_after(reply.headers()).map(|d| d.min(policy.max_rest)),
        },
        Err(GatewayError::UpstreamConnect { .. }) => Verdict::Unreachable {
            rest: policy.unreachable_rest,
        },
        _ => Verdict::Answer,
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
    use actix_web::http::StatusCode;

    const POLICY: Failover = Failover {
        attempts: 3,
        unreachable_rest: Duration::from_secs(5),
        max_rest: Duration::from_secs(60),
    };

    fn reply(status: u16, headers: &[(&'static str, &'static str)]) -> HttpResponse {
        let mut builder = HttpResponse::build(StatusCode::from_u16(status).expect("status"));
        for header in headers {
            builder.insert_header(*header);
        }
        builder.finish()
    }

    #[test]
    fn quota_and_server_errors_move_on_and_rest_as_told() {
        let verdict = |r| judge(&Ok(r), &POLICY);
        assert_eq!(verdict(reply(200, &[])), Verdict::Answer);
        assert_eq!(
            verdict(reply(400, &[("retry-after", "3")])),
            Verdict::Answer
        );
        assert_eq!(
            verdict(reply(
                429,
                &[("retry-after", "7"), ("retry-after-ms", "6500")]
            )),
            Verdict::DeploymentRefused {
                rest: Some(Duration::from_millis(6500))
            }
        );
        assert_eq!(
            verdict(reply(429, &[("retry-after", "7")])),
            Verdict::DeploymentRefused {
                rest: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(
            verdict(reply(503, &[("retry-after", "86400")])),
            Verdict::DeploymentRefused {
                rest: Some(Duration::from_secs(60))
            }
        );
        assert_eq!(
            verdict(reply(
                500,
                &[("retry-after", "Wed, 21 Oct 2026 07:28:00 GMT")]
            )),
            Verdict::DeploymentRefused { rest: None }
        );
    }

    #[test]
    fn only_an_unreachable_backend_is_retried_among_failures() {
        let connect = GatewayError::UpstreamConnect {
            backend: "a".into(),
            detail: "refused".into(),
        };
        assert_eq!(
            judge(&Err(connect), &POLICY),
            Verdict::Unreachable {
                rest: Duration::from_secs(5)
            }
        );
        let timeout = GatewayError::UpstreamTimeout {
            backend: "a".into(),
        };
        assert_eq!(judge(&Err(timeout), &POLICY), Verdict::Answer);
    }
}
