//! What each backend's deployments last said of their room: the `x-ratelimit-remaining-tokens`
//! of their latest answers, trusted for `failover.headroom_ttl_ms`, so that a call is passed
//! over to a backend with the room rather than spend a round trip on a 429.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::lock;

/// Readings kept per backend at most; past this (deployment names a client invents) they start
/// afresh.
const MAX_READINGS: usize = 4096;

/// One backend's readings: deployment → (tokens left, when read).
#[derive(Default)]
pub(super) struct Readings {
    /// Whether `readings` holds anything; read without the lock.
    any: AtomicBool,
    readings: Mutex<HashMap<Box<str>, (u64, u64)>>,
}

impl Readings {
    pub(super) fn note(&self, deployment: &str, remaining: u64, now: u64) {
        let mut readings = lock(&self.readings);
        if let Some(reading) = readings.get_mut(deployment) {
            *reading = (remaining, now);
            return;
        }
        if readings.len() >= MAX_READINGS {
            readings.clear();
        }
        readings.insert(deployment.into(), (remaining, now));
        self.any.store(true, Ordering::Release);
    }

    /// Each deployment's last reading: (deployment, tokens left, milliseconds since), newest
    /// first.
    pub(super) fn readings(&self, now: u64) -> Vec<(String, u64, u64)> {
        if !self.any.load(Ordering::Acquire) {
            return Vec::new();
        }
        let mut all: Vec<_> = lock(&self.readings)
            .iter()
            .map(|(d, &(left, at))| (d.to_string(), left, now.saturating_sub(at)))
            .collect();
        all.sort_by_key(|r| r.2);
        all
    }

    /// Whether `deployment` said, less than `ttl` ago, that it has less room than `tokens`.
    pub(super) fn short(&self, deployment: &str, tokens: u64, now: u64, ttl: u64) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return false;
        }
        lock(&self.readings)
            .get(deployment)
            .is_some_and(|&(left, at)| now.saturating_sub(at) < ttl && left < tokens)
    }
}
