//! Sending a checked call to its backends. [`dispatch`] runs the failover loop, [`forward`]
//! sends one attempt with awc, [`failover`] judges each answer: hand it to the client, or try
//! the next backend.
//!
//! An attempt that gets no answer fails with an [`UpstreamError`], which says what happened,
//! whether another backend may take the call and what it blames; it becomes a
//! [`GatewayError`] only at the edge, when no backend is left to try.

pub mod dispatch;
pub mod failover;
pub mod forward;

use super::error::GatewayError;

/// Why one attempt got no answer from its backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamError {
    /// The backend's name (for the log; never told the client).
    pub backend: String,
    pub kind: Failure,
    /// What the socket or the identity provider said (for the log).
    pub detail: String,
}

/// What went wrong with an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The connection could not be made: the backend never saw the call.
    Connect,
    /// A keyless backend's credential gave no token: the call was not sent.
    Credential,
    /// No response headers in time: the backend may be working on, and billing, the call.
    Timeout,
    /// The exchange failed after the call was sent: the backend may have it.
    Broken,
}

/// What a failure says is at fault, for the balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The backend as a whole (it cannot be reached).
    Backend,
    /// The deployment the call was to.
    Deployment,
    /// The backend's credential: no call can be sent to it until a token comes.
    Credential,
}

impl Failure {
    /// Its name, as an `error.type` of a trace.
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Connect => "connect",
            Failure::Credential => "credential",
            Failure::Timeout => "timeout",
            Failure::Broken => "broken",
        }
    }

    /// Whether another backend may take the call: only when this one cannot have it.
    pub fn may_retry(self) -> bool {
        match self {
            Failure::Connect | Failure::Credential => true,
            Failure::Timeout | Failure::Broken => false,
        }
    }

    pub fn blames(self) -> Blame {
        match self {
            Failure::Connect => Blame::Backend,
            Failure::Credential => Blame::Credential,
            Failure::Timeout | Failure::Broken => Blame::Deployment,
        }
    }
}

impl UpstreamError {
    pub fn new(backend: &str, kind: Failure, detail: impl Into<String>) -> UpstreamError {
        UpstreamError {
            backend: backend.to_string(),
            kind,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (backend, detail) = (&self.backend, &self.detail);
        match self.kind {
            Failure::Connect => write!(f, "cannot connect to backend {backend}: {detail}"),
            Failure::Credential => write!(f, "no token for backend {backend}: {detail}"),
            Failure::Timeout => write!(f, "backend {backend} did not answer in time"),
            Failure::Broken => write!(f, "backend {backend} failed: {detail}"),
        }
    }
}

impl From<UpstreamError> for GatewayError {
    fn from(error: UpstreamError) -> GatewayError {
        GatewayError::Upstream(error)
    }
}
