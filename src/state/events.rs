//! What replicas tell each other about backends: each outcome that changes a backend's health
//! (a failure, a rest it asked for, an answer that ends its trouble), as one JSON message on
//! the shared channel. Every replica applies the others' to its own balancer, so a rest one
//! replica learns of rests the deployment on all of them, and circuits count every replica's
//! failures.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::balance::Outcome;
use crate::limits::millis;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Who learnt it (a replica skips its own).
    #[serde(rename = "r")]
    pub replica: u64,
    #[serde(rename = "b")]
    pub backend: String,
    /// The client's deployment name; absent for the backend as a whole.
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    #[serde(rename = "o")]
    pub outcome: Told,
}

/// An [`Outcome`] as it travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Told {
    Answered,
    Failed { rest_ms: Option<u64> },
    Unreachable { rest_ms: u64 },
}

impl From<Outcome> for Told {
    fn from(outcome: Outcome) -> Told {
        match outcome {
            Outcome::Answered => Told::Answered,
            Outcome::DeploymentFailed { rest } => Told::Failed {
                rest_ms: rest.map(millis),
            },
            Outcome::Unreachable { rest } => Told::Unreachable {
                rest_ms: millis(rest),
            },
        }
    }
}

impl From<Told> for Outcome {
    fn from(told: Told) -> Outcome {
        match told {
            Told::Answered => Outcome::Answered,
            Told::Failed { rest_ms } => Outcome::DeploymentFailed {
                rest: rest_ms.map(Duration::from_millis),
            },
            Told::Unreachable { rest_ms } => Outcome::Unreachable {
                rest: Duration::from_millis(rest_ms),
            },
        }
    }
}

impl Told {
    /// How long it rests its backend or deployment, if it does.
    pub fn rest(self) -> Option<Duration> {
        match self {
            Told::Failed { rest_ms } => rest_ms.map(Duration::from_millis),
            Told::Unreachable { rest_ms } => Some(Duration::from_millis(rest_ms)),
            Told::Answered => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_travel_as_small_json() {
        let event = Event {
            replica: 7,
            backend: "eastus".into(),
            deployment: Some("gpt-4o".into()),
            outcome: Outcome::DeploymentFailed {
                rest: Some(Duration::from_secs(5)),
            }
            .into(),
        };
        let text = serde_json::to_string(&event).unwrap();
        assert_eq!(
            text,
            r#"{"r":7,"b":"eastus","d":"gpt-4o","o":{"kind":"failed","rest_ms":5000}}"#
        );
        let back: Event = serde_json::from_str(&text).unwrap();
        assert_eq!(back, event);
        assert_eq!(
            Outcome::from(back.outcome),
            Outcome::DeploymentFailed {
                rest: Some(Duration::from_secs(5))
            }
        );
    }
}
