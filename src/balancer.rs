//! Picks the backend for a request.
//!
//! Calls to a deployment rotate round-robin over the backends that serve that deployment and
//! api-version: one shared counter, so with two eligible regions consecutive calls alternate.
//! Picking allocates nothing: it counts the eligible backends, then walks to the chosen one.
//!
//! A deployment over its quota (429 with `retry-after`) is left out of the rotation on that
//! backend for a while, its *rest*; Azure's quotas are per deployment, so the backend's other
//! deployments stay in. A backend that cannot be reached rests as a whole. While every eligible
//! backend rests, a first attempt still goes to one of them, so the client gets a real answer
//! (with Azure's own `retry-after`) rather than the gateway's guess; a failover attempt does not.
//!
//! Operations on stored objects (assistants, threads, vector stores, files, batches) have no
//! deployment in their path, and what they create lives in one Azure resource; rotating them
//! would lose a thread created a moment ago. They go to the first backend, in config order, that
//! serves the api-version and allows such operations.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use crate::config::Backend;

pub struct Balancer {
    backends: Vec<Backend>,
    next: AtomicUsize,
    /// Per backend, when its rests end, in milliseconds since `epoch`.
    rests: Vec<Rests>,
    epoch: Instant,
}

#[derive(Default)]
struct Rests {
    /// The whole backend; 0 when it is not resting.
    backend: AtomicU64,
    /// Single deployments, by the client's deployment name. Rarely written, so a lock is fine;
    /// `any` spares the common case, no deployment resting, from taking it.
    deployments: RwLock<HashMap<String, u64>>,
    any: AtomicUsize,
}

impl Rests {
    fn resting(&self, deployment: &str, now: u64) -> bool {
        if self.backend.load(Ordering::Relaxed) > now {
            return true;
        }
        if self.any.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let deployments = self
            .deployments
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        deployments.get(deployment).is_some_and(|&end| end > now)
    }

    fn rest_deployment(&self, deployment: &str, end: u64, now: u64) {
        let mut deployments = self
            .deployments
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        deployments.retain(|_, &mut until| until > now);
        let until = deployments.entry(deployment.to_string()).or_insert(0);
        *until = (*until).max(end);
        self.any.store(deployments.len(), Ordering::Relaxed);
    }
}

impl Balancer {
    pub fn new(backends: Vec<Backend>) -> Balancer {
        Balancer {
            rests: backends.iter().map(|_| Rests::default()).collect(),
            backends,
            next: AtomicUsize::new(0),
            epoch: Instant::now(),
        }
    }

    pub fn backends(&self) -> &[Backend] {
        &self.backends
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn end_of(&self, rest: Duration) -> (u64, u64) {
        let now = self.now_ms();
        let rest = u64::try_from(rest.as_millis()).unwrap_or(u64::MAX);
        (now.saturating_add(rest), now)
    }

    /// Leaves backend `index` out of the rotation for `rest`, for every deployment; a longer
    /// rest already running is kept.
    pub fn rest_backend(&self, index: usize, rest: Duration) {
        if let Some(rests) = self.rests.get(index) {
            let (end, _) = self.end_of(rest);
            rests.backend.fetch_max(end, Ordering::Relaxed);
        }
    }

    /// Leaves `deployment` (the client's name) on backend `index` out of the rotation for
    /// `rest`; a longer rest already running is kept.
    pub fn rest_deployment(&self, index: usize, deployment: &str, rest: Duration) {
        if let Some(rests) = self.rests.get(index) {
            let (end, now) = self.end_of(rest);
            rests.rest_deployment(deployment, end, now);
        }
    }

    /// The next backend for a call and its index. `deployment` is the client's deployment name,
    /// decoded; `None` for operations on stored objects. `tried` holds the indexes of backends
    /// this call has already been to: non-empty means a failover attempt.
    pub fn pick(
        &self,
        version: &str,
        deployment: Option<&str>,
        tried: &[usize],
    ) -> Option<(usize, &Backend)> {
        let Some(deployment) = deployment else {
            return self
                .backends
                .iter()
                .enumerate()
                .find(|(_, b)| b.resources && b.serves_version(version));
        };
        let now = self.now_ms();
        let eligible = |(i, b): &(usize, &Backend)| {
            b.serves_version(version) && b.serves_deployment(deployment) && !tried.contains(i)
        };
        let awake = |entry: &(usize, &Backend)| {
            eligible(entry) && !self.rests[entry.0].resting(deployment, now)
        };
        let candidates = self.backends.iter().enumerate();
        let count = candidates.clone().filter(awake).count();
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        if count > 0 {
            return candidates.filter(awake).nth(turn % count);
        }
        if !tried.is_empty() {
            return None;
        }
        let count = candidates.clone().filter(eligible).count();
        if count == 0 {
            return None;
        }
        candidates.filter(eligible).nth(turn % count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;
    use std::collections::{HashMap, HashSet};

    fn backend(name: &str, deployments: Option<&[&str]>, resources: bool) -> Backend {
        Backend {
            name: name.into(),
            region: String::new(),
            base_url: String::new(),
            host: HeaderValue::from_static("h"),
            name_header: HeaderValue::from_static("n"),
            api_key: HeaderValue::from_static("k"),
            deployment_map: HashMap::new(),
            deployments: deployments
                .map(|d| d.iter().map(|s| s.to_string()).collect::<HashSet<_>>()),
            api_versions: None,
            resources,
        }
    }

    #[test]
    fn rotates_over_eligible_backends_only() {
        let b = Balancer::new(vec![
            backend("a", None, false),
            backend("b", Some(&["embed"]), true),
            backend("c", None, true),
        ]);
        let picks: Vec<&str> = (0..4)
            .map(|_| b.pick("v", Some("gpt"), &[]).unwrap().1.name.as_str())
            .collect();
        assert_eq!(picks, ["a", "c", "a", "c"]);
        assert!(b.pick("v", Some("embed"), &[]).is_some());
        assert!(
            Balancer::new(vec![backend("b", Some(&["embed"]), true)])
                .pick("v", Some("gpt"), &[])
                .is_none()
        );
    }

    #[test]
    fn stored_objects_stay_on_one_backend() {
        let b = Balancer::new(vec![
            backend("a", None, false),
            backend("b", None, true),
            backend("c", None, true),
        ]);
        for _ in 0..3 {
            assert_eq!(b.pick("v", None, &[]).unwrap().1.name, "b");
        }
    }

    #[test]
    fn resting_backends_are_skipped_until_all_rest() {
        let b = Balancer::new(vec![
            backend("a", None, false),
            backend("b", None, false),
            backend("c", None, false),
        ]);
        b.rest_backend(0, Duration::from_secs(60));
        let picks: Vec<&str> = (0..4)
            .map(|_| b.pick("v", Some("gpt"), &[]).unwrap().1.name.as_str())
            .collect();
        assert_eq!(picks, ["b", "c", "b", "c"]);
        // A failover attempt skips what it tried and what rests.
        assert_eq!(b.pick("v", Some("gpt"), &[1]).unwrap().1.name, "c");
        assert!(b.pick("v", Some("gpt"), &[1, 2]).is_none());
        // When every backend rests, a first attempt still goes somewhere.
        b.rest_backend(1, Duration::from_secs(60));
        b.rest_backend(2, Duration::from_secs(60));
        assert!(b.pick("v", Some("gpt"), &[]).is_some());
    }

    #[test]
    fn a_deployment_rests_alone_and_rests_end() {
        let b = Balancer::new(vec![backend("a", None, false), backend("b", None, false)]);
        b.rest_deployment(0, "busy", Duration::from_secs(60));
        for _ in 0..3 {
            assert_eq!(b.pick("v", Some("busy"), &[]).unwrap().1.name, "b");
        }
        let other: Vec<&str> = (0..2)
            .map(|_| b.pick("v", Some("gpt"), &[]).unwrap().1.name.as_str())
            .collect();
        assert!(other.contains(&"a") && other.contains(&"b"), "{other:?}");
        // A rest that is over is dropped when the next one is recorded.
        b.rest_deployment(1, "gpt", Duration::ZERO);
        b.rest_deployment(1, "other", Duration::from_secs(60));
        assert_eq!(b.rests[1].deployments.read().unwrap().len(), 1);
        assert_eq!(b.pick("v", Some("gpt"), &[0]).unwrap().1.name, "b");
    }
}
