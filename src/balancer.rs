//! Picks the backend for a request.
//!
//! Calls to a deployment rotate round-robin over the backends that serve that deployment and
//! api-version: one shared counter, so with two eligible regions consecutive calls alternate.
//! Picking allocates nothing: it counts the eligible backends, then walks to the chosen one.
//!
//! Operations on stored objects (assistants, threads, vector stores, files, batches) have no
//! deployment in their path, and what they create lives in one Azure resource; rotating them
//! would lose a thread created a moment ago. They go to the first backend, in config order, that
//! serves the api-version and allows such operations.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::config::Backend;

pub struct Balancer {
    backends: Vec<Backend>,
    next: AtomicUsize,
}

impl Balancer {
    pub fn new(backends: Vec<Backend>) -> Balancer {
        Balancer {
            backends,
            next: AtomicUsize::new(0),
        }
    }

    pub fn backends(&self) -> &[Backend] {
        &self.backends
    }

    /// `deployment` is the client's deployment name, decoded; `None` for operations on stored
    /// objects.
    pub fn pick(&self, version: &str, deployment: Option<&str>) -> Option<&Backend> {
        let Some(deployment) = deployment else {
            return self
                .backends
                .iter()
                .find(|b| b.resources && b.serves_version(version));
        };
        let eligible = |b: &&Backend| b.serves_version(version) && b.serves_deployment(deployment);
        let count = self.backends.iter().filter(eligible).count();
        if count == 0 {
            return None;
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed) % count;
        self.backends.iter().filter(eligible).nth(turn)
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
            .map(|_| b.pick("v", Some("gpt")).unwrap().name.as_str())
            .collect();
        assert_eq!(picks, ["a", "c", "a", "c"]);
        assert!(b.pick("v", Some("embed")).is_some());
        assert!(
            Balancer::new(vec![backend("b", Some(&["embed"]), true)])
                .pick("v", Some("gpt"))
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
            assert_eq!(b.pick("v", None).unwrap().name, "b");
        }
    }
}
