//! Picks the backend for a call, and keeps track of which backends are fit to take one.
//!
//! Its parts: [`set`] (backends as a bitset), [`health`] (rests and circuit breakers),
//! [`headroom`] (what deployments last said of their room) and [`rotation`] (weighted
//! round-robin). The proxy and the shared state (`state/`) both use it; it uses neither.
//!
//! Backends come in tiers (`priority`: provisioned deployments first, pay-as-you-go after). A
//! call to a deployment goes to the best tier that has a backend fit to take it, and within the
//! tier by smooth weighted round-robin (`weight`), one rotation per api-version and deployment:
//! with equal weights consecutive calls alternate strictly, with weights 3 and 1 three calls in
//! four go to the first, evenly spread. A call that fails over does not take a turn of the
//! rotation: it moves on to the next fit backend after the one that failed, in the same tier
//! while there is one, then in the next tier. So traffic spills from a provisioned deployment
//! that answers 429 to pay-as-you-go, and comes back when the provisioned one's rest ends.
//!
//! A backend out of the rotation *rests*:
//! - a deployment that answered with `retry-after` rests for that long on that backend (Azure's
//!   quotas are per deployment, so the backend's other deployments stay in); a backend that
//!   could not be reached rests as a whole for `failover.unreachable_rest_ms`;
//! - a circuit breaker: `failover.circuit_failures` failures within `circuit_window_ms` (429s and
//!   5xx without `retry-after` or answers not in time, of one deployment; connection failures of
//!   the whole backend) open its circuit, and
//!   it rests for `circuit_cooldown_ms`. Then exactly one call is let through as a trial: if it
//!   succeeds the circuit closes, if it fails the circuit opens again. A trial that never
//!   reports (its client went away) gives way to another after `trial_timeout`.
//!
//! A backend whose latest `x-ratelimit-remaining-tokens` for the deployment (younger than
//! `failover.headroom_ttl_ms`) is below the call's estimate is passed over as long as another
//! backend, in any tier, is fit and has the room: a 429 costs a round trip and a rest.
//!
//! While every eligible backend rests, a first attempt still goes to the one whose rest ends
//! first, so the client gets a real answer (with Azure's own `retry-after`) rather than the
//! gateway's guess; a failover attempt does not.
//!
//! The common case, a healthy backend, costs one atomic load: the health record behind its lock
//! is only read while something is wrong with the backend.
//!
//! Operations on stored objects (assistants, threads, vector stores, files, batches) have no
//! deployment in their path, and what they create lives in one Azure resource; rotating them
//! would lose a thread created a moment ago. They go to the first backend, in config order, that
//! serves the api-version and allows such operations: their home. A call that names an object
//! the directory knows (`objects/`) is pinned to the backend that holds it ([`Ask::pinned`]):
//! it goes there or, while that backend rests, nowhere ([`Placement::HolderRests`]), and never
//! fails over.
//!
//! A first attempt is picked in two steps, [`Balancer::place`] then [`Balancer::take`], because
//! the rotation's turn between them may be taken in Redis (with the call's reservation, in one
//! round trip); [`Balancer::first`] does both with this replica's rotation. A failover attempt
//! is [`Balancer::next`].

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::config::{Backend, BackendCredential, Balancing, Failover, Policy};
use crate::identity::tokens::TokenSource;
use crate::limits::millis;

pub mod affinity;
pub mod headroom;
pub mod health;
pub mod rotation;
pub mod set;

pub use affinity::{Affinity, Loads};
use headroom::Readings;
pub use health::Outcome;
use health::{Breaker, Fitness, Health};
use rotation::Rotations;
pub use set::{MAX_BACKENDS, Set};

/// Where a call's first attempt may go, before its rotation's turn is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// The backends of the best tier fit to take the call: the rotation's turn picks one.
    Turn(Set),
    /// Every backend that serves the call rests: this one wakes first, and takes it.
    Waking(usize),
    /// An operation on stored objects: their home backend.
    Home(usize),
    /// A call that names a stored object: the backend that holds it, and no other.
    Pinned(usize),
    /// The same, while that backend rests (as a whole, or the call's deployment on it) for
    /// `wait_ms` more: no other backend can have the object, so the call waits or is refused.
    HolderRests { index: usize, wait_ms: u64 },
    /// No backend serves the deployment (or the stored objects) and version.
    Nowhere,
}

impl Placement {
    /// The candidates of a rotation's turn, when one is to be taken (more than one backend).
    pub fn turn(self) -> Option<Set> {
        match self {
            Placement::Turn(set) if set.len() > 1 => Some(set),
            _ => None,
        }
    }
}

/// What a call asks of the balancer.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    pub version: &'static str,
    /// The client's deployment name, decoded; `None` for operations on stored objects.
    pub deployment: Option<&'a str>,
    /// Indexes of the backends this call has been to, in order: non-empty for a failover.
    pub tried: &'a [usize],
    /// An upper bound of the tokens the call may spend: a backend that reported less headroom
    /// is passed over.
    pub at_most: Option<u64>,
    /// The backend holding a stored object the call names: it goes there, or nowhere.
    pub pinned: Option<usize>,
    /// The call's prompt-cache key, when its deployment's policy is `prompt_cache` and it has
    /// one: it picks the backend within the tier in place of the rotation.
    pub affinity: Option<Affinity<'a>>,
}

pub struct Balancer {
    backends: Vec<Backend>,
    rotations: Rotations,
    balancing: Balancing,
    /// Per backend, what its name mixes into prompt-cache keys.
    seeds: Vec<u64>,
    /// Shared with the balancer of a reloaded configuration that keeps the backend.
    health: Vec<Arc<Health>>,
    headroom: Vec<Arc<Readings>>,
    breaker: Breaker,
    skip_low_headroom: bool,
    headroom_ttl: u64,
    epoch: Instant,
}

impl Balancer {
    /// `trial_timeout`: how long a trial call may take before another may be let through; the
    /// longest a call can wait for its answer's headers is a good value.
    pub fn new(
        backends: Vec<Backend>,
        failover: &Failover,
        balancing: Balancing,
        trial_timeout: Duration,
    ) -> Balancer {
        Balancer {
            seeds: backends.iter().map(|b| affinity::seed(&b.name)).collect(),
            balancing,
            health: backends.iter().map(|_| Arc::default()).collect(),
            headroom: backends.iter().map(|_| Arc::default()).collect(),
            backends,
            rotations: Rotations::default(),
            skip_low_headroom: failover.skip_low_headroom,
            headroom_ttl: millis(failover.headroom_ttl),
            breaker: Breaker {
                failures: failover.circuit_failures,
                window: millis(failover.circuit_window),
                cooldown: millis(failover.circuit_cooldown),
                trial_timeout: millis(trial_timeout),
            },
            epoch: Instant::now(),
        }
    }

    pub fn backends(&self) -> &[Backend] {
        &self.backends
    }

    /// Takes over what `old` knows of the backends this balancer keeps, by name: their rests,
    /// circuits and headroom readings, on `old`'s clock, and shared with it, so that what the
    /// calls still in flight on `old` teach is not lost. A backend of another name starts fresh;
    /// rotations start afresh (a turn or two off, once).
    pub fn keep_state_of(&mut self, old: &Balancer) {
        self.epoch = old.epoch;
        for (i, backend) in self.backends.iter().enumerate() {
            if let Some(o) = old.index_of(&backend.name) {
                self.health[i] = old.health[o].clone();
                self.headroom[i] = old.headroom[o].clone();
            }
        }
    }

    /// What is wrong with backend `index` now, as a whole and per deployment, and what its
    /// deployments last said of their room: for the status page.
    pub fn report(&self, index: usize) -> Option<health::Report> {
        let now = self.now_ms();
        let mut report = self.health.get(index)?.report(now);
        report.headroom = self.headroom.get(index)?.readings(now);
        Some(report)
    }

    /// The Entra ID token sources of the backends, each once (backends may share one).
    pub fn token_sources(&self) -> Vec<std::sync::Weak<TokenSource>> {
        let mut sources: Vec<&Arc<TokenSource>> = Vec::new();
        for b in &self.backends {
            if let BackendCredential::Entra(source) = &b.credential
                && !sources.iter().any(|s| Arc::ptr_eq(s, source))
            {
                sources.push(source);
            }
        }
        sources.iter().map(|s| Arc::downgrade(s)).collect()
    }

    fn now_ms(&self) -> u64 {
        millis(self.epoch.elapsed())
    }

    /// The index of the backend named `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.backends.iter().position(|b| b.name == name)
    }

    // ----- what calls teach -----

    /// Records what a call to backend `index` taught us. `deployment` is the client's
    /// deployment name; `None` for operations on stored objects. Whether it is news for other
    /// replicas: a failure, or an answer from a backend that was in trouble.
    pub fn learn(&self, index: usize, deployment: Option<&str>, outcome: Outcome) -> bool {
        let news = outcome != Outcome::Answered
            || self
                .health
                .get(index)
                .is_some_and(|h| h.troubled.load(std::sync::atomic::Ordering::Acquire));
        self.learn_at(index, deployment, outcome, self.now_ms());
        news
    }

    fn learn_at(&self, index: usize, deployment: Option<&str>, outcome: Outcome, now: u64) {
        if let Some(health) = self.health.get(index) {
            health.learn(deployment, outcome, now, &self.breaker);
        }
    }

    /// A deployment of backend `index` reported `remaining` tokens of headroom.
    pub fn note_headroom(&self, index: usize, deployment: Option<&str>, remaining: u64) {
        self.note_headroom_at(index, deployment, remaining, self.now_ms());
    }

    fn note_headroom_at(&self, index: usize, deployment: Option<&str>, remaining: u64, now: u64) {
        if let (Some(readings), Some(deployment)) = (self.headroom.get(index), deployment) {
            readings.note(deployment, remaining, now);
        }
    }

    /// Whether any backend lately reported less room for `deployment` than `tokens`: only then
    /// does the call's estimate need to be exact.
    pub fn any_short_of_room(&self, deployment: &str, tokens: u64) -> bool {
        let now = self.now_ms();
        (0..self.backends.len()).any(|i| self.short_of_room(i, deployment, Some(tokens), now))
    }

    /// Whether backend `index` lately reported less room for `deployment` than `tokens`.
    fn short_of_room(&self, index: usize, deployment: &str, tokens: Option<u64>, now: u64) -> bool {
        let (Some(tokens), true) = (tokens, self.skip_low_headroom) else {
            return false;
        };
        self.headroom[index].short(deployment, tokens, now, self.headroom_ttl)
    }

    // ----- picking -----

    /// How calls pick their backend within a tier.
    pub fn balancing(&self) -> &Balancing {
        &self.balancing
    }

    /// Whether calls to client deployment `name` are placed by their prompt-cache key.
    pub fn places_by_prompt(&self, name: &str) -> bool {
        self.balancing.policy(name) == Policy::PromptCache
    }

    /// Where a call's first attempt may go (step one of a first pick).
    pub fn place(&self, ask: Ask<'_>) -> Placement {
        self.place_at(ask, self.now_ms())
    }

    fn place_at(&self, ask: Ask<'_>, now: u64) -> Placement {
        if let Some(i) = ask.pinned {
            return match self.health.get(i).map(|h| h.fitness(ask.deployment, now)) {
                None => Placement::Nowhere,
                Some(Fitness::Resting { until }) => Placement::HolderRests {
                    index: i,
                    wait_ms: until.saturating_sub(now),
                },
                Some(_) => Placement::Pinned(i),
            };
        }
        if ask.deployment.is_none() {
            return self
                .home(ask.version)
                .map_or(Placement::Nowhere, |(i, _)| Placement::Home(i));
        }
        let (pool, eligible) = self.pool(ask, now);
        match self.best_tier(pool) {
            Some(tier) => Placement::Turn(tier),
            None => match self.first_to_wake(ask, eligible, now) {
                Some(i) => Placement::Waking(i),
                None => Placement::Nowhere,
            },
        }
    }

    /// The backend that takes a first attempt (step two): the one whose turn it is, as the
    /// shared rotation chose it (`chosen`), or else as this replica's rotation does. One due a
    /// trial call takes it if no other call took the trial first; else the next fit one does.
    pub fn take(
        &self,
        ask: Ask<'_>,
        placement: Placement,
        chosen: Option<usize>,
    ) -> Option<(usize, &Backend)> {
        self.take_at(ask, placement, chosen, self.now_ms())
    }

    fn take_at(
        &self,
        ask: Ask<'_>,
        placement: Placement,
        chosen: Option<usize>,
        now: u64,
    ) -> Option<(usize, &Backend)> {
        let chosen = match placement {
            Placement::Nowhere | Placement::HolderRests { .. } => return None,
            Placement::Home(i) | Placement::Pinned(i) => return Some((i, self.backends.get(i)?)),
            Placement::Waking(i) => i,
            Placement::Turn(set) => match (chosen.filter(|&i| set.contains(i)), ask.affinity) {
                (Some(i), _) => i,
                (None, Some(affinity)) => self.by_key(set, affinity)?,
                (None, None) => self.rotate(ask.version, ask.deployment.unwrap_or(""), set)?,
            },
        };
        let backend = self.backends.get(chosen)?;
        let resting = self.health[chosen]
            .fitness(ask.deployment, now)
            .is_resting();
        if resting || self.health[chosen].claim(ask.deployment, now, self.breaker.trial_timeout) {
            // A resting one was chosen because every one rests: it gets the call anyway.
            return Some((chosen, backend));
        }
        let tried = [chosen];
        self.next_at(
            Ask {
                tried: &tried,
                ..ask
            },
            now,
        )
    }

    /// A first attempt picked with this replica's own rotation: [`place`](Self::place), then
    /// [`take`](Self::take).
    pub fn first(&self, ask: Ask<'_>) -> Option<(usize, &Backend)> {
        self.first_at(ask, self.now_ms())
    }

    fn first_at(&self, ask: Ask<'_>, now: u64) -> Option<(usize, &Backend)> {
        self.take_at(ask, self.place_at(ask, now), None, now)
    }

    /// The backend a failover moves on to: the next fit one after the one that failed, in its
    /// tier while there is one, then in the next; none when every one rests or was tried, and
    /// none for stored objects, which have one home, or a call pinned to one's holder.
    pub fn next(&self, ask: Ask<'_>) -> Option<(usize, &Backend)> {
        self.next_at(ask, self.now_ms())
    }

    fn next_at(&self, ask: Ask<'_>, now: u64) -> Option<(usize, &Backend)> {
        if ask.pinned.is_some() {
            return None;
        }
        ask.deployment?;
        let (mut pool, _) = self.pool(ask, now);
        let last = ask.tried.last().copied().unwrap_or(0);
        while let Some(candidates) = self.best_tier(pool) {
            let chosen = match ask.affinity {
                // The key's next backend, whose cache it is likeliest to be in after its first.
                Some(affinity) => self.by_key(candidates, affinity)?,
                None => candidates
                    .iter()
                    .find(|&i| i > last)
                    .or_else(|| candidates.iter().next())?,
            };
            if self.health[chosen].claim(ask.deployment, now, self.breaker.trial_timeout) {
                return Some((chosen, &self.backends[chosen]));
            }
            pool.remove(chosen);
        }
        None
    }

    /// Where operations on stored objects go: the first backend that serves the version and
    /// allows them.
    pub fn home(&self, version: &str) -> Option<(usize, &Backend)> {
        self.backends
            .iter()
            .enumerate()
            .find(|(_, b)| b.stored_objects && b.serves_version(version))
    }

    /// Takes the next turn of the rotation of `deployment` on `version` among `candidates`.
    fn rotate(&self, version: &'static str, deployment: &str, candidates: Set) -> Option<usize> {
        self.rotations
            .turn(version, deployment, candidates, self.backends.len(), |i| {
                i64::from(self.backends[i].weight)
            })
    }

    /// The candidate a call with a prompt-cache key goes to (see [`affinity`]).
    fn by_key(&self, candidates: Set, affinity: Affinity<'_>) -> Option<usize> {
        affinity::pick(
            candidates,
            affinity,
            self.balancing.load_factor,
            |i| self.seeds[i],
            |i| self.backends[i].weight,
        )
    }

    /// The members of `pool` in its best (lowest) priority tier; `None` for an empty pool.
    fn best_tier(&self, pool: Set) -> Option<Set> {
        let tier = pool.iter().map(|i| self.backends[i].priority).min()?;
        Some(
            pool.iter()
                .filter(|&i| self.backends[i].priority == tier)
                .collect(),
        )
    }

    /// The backends fit to take the call (those with the room first), and all that serve it.
    fn pool(&self, ask: Ask<'_>, now: u64) -> (Set, Set) {
        let name = ask.deployment.unwrap_or("");
        let mut eligible = Set::default();
        let mut roomy = Set::default();
        let mut short = Set::default();
        for (i, b) in self.backends.iter().enumerate() {
            if !b.serves_version(ask.version)
                || !b.serves_deployment(name)
                || ask.tried.contains(&i)
            {
                continue;
            }
            eligible.insert(i);
            if self.health[i].fitness(ask.deployment, now).is_resting() {
                continue;
            }
            if self.short_of_room(i, name, ask.at_most, now) {
                short.insert(i);
            } else {
                roomy.insert(i);
            }
        }
        (if roomy.is_empty() { short } else { roomy }, eligible)
    }

    fn first_to_wake(&self, ask: Ask<'_>, eligible: Set, now: u64) -> Option<usize> {
        eligible
            .iter()
            .min_by_key(|&i| match self.health[i].fitness(ask.deployment, now) {
                Fitness::Resting { until } => until,
                _ => 0,
            })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;
    use std::collections::{HashMap, HashSet};

    fn backend(name: &str, deployments: Option<&[&str]>, stored_objects: bool) -> Backend {
        Backend {
            name: name.into(),
            region: String::new(),
            base_url: String::new(),
            host: HeaderValue::from_static("h"),
            name_header: HeaderValue::from_static("n"),
            credential: BackendCredential::ApiKey(HeaderValue::from_static("k")),
            deployment_map: HashMap::new(),
            deployments: deployments
                .map(|d| d.iter().map(|s| s.to_string()).collect::<HashSet<_>>()),
            api_versions: None,
            stored_objects,
            priority: 1,
            weight: 1,
            compat: HashMap::new(),
        }
    }

    fn ask<'a>(deployment: &'a str, tried: &'a [usize]) -> Ask<'a> {
        Ask {
            version: "v",
            deployment: Some(deployment),
            tried,
            at_most: None,
            pinned: None,
            affinity: None,
        }
    }

    const FAILOVER: Failover = Failover {
        attempts: 3,
        unreachable_rest: Duration::from_secs(5),
        max_rest: Duration::from_secs(60),
        circuit_failures: 3,
        circuit_window: Duration::from_secs(10),
        circuit_cooldown: Duration::from_secs(30),
        skip_low_headroom: true,
        headroom_ttl: Duration::from_secs(10),
    };

    fn balancer(backends: Vec<Backend>) -> Balancer {
        Balancer::new(
            backends,
            &FAILOVER,
            Balancing::default(),
            Duration::from_secs(5),
        )
    }

    fn names(b: &Balancer, n: usize, deployment: &str, now: u64) -> Vec<String> {
        (0..n)
            .map(|_| {
                b.first_at(ask(deployment, &[]), now)
                    .map_or("-".into(), |(_, x)| x.name.clone())
            })
            .collect()
    }

    #[test]
    fn rotates_over_eligible_backends_only() {
        let b = balancer(vec![
            backend("a", None, false),
            backend("b", Some(&["embed"]), true),
            backend("c", None, true),
        ]);
        assert_eq!(names(&b, 4, "gpt", 0), ["a", "c", "a", "c"]);
        assert!(b.first(ask("embed", &[])).is_some());
        assert!(
            balancer(vec![backend("b", Some(&["embed"]), true)])
                .first(ask("gpt", &[]))
                .is_none()
        );
    }

    #[test]
    fn stored_objects_stay_on_one_backend() {
        let b = balancer(vec![
            backend("a", None, false),
            backend("b", None, true),
            backend("c", None, true),
        ]);
        for _ in 0..3 {
            assert_eq!(
                b.first(Ask {
                    deployment: None,
                    ..ask("x", &[])
                })
                .unwrap()
                .1
                .name,
                "b"
            );
        }
    }

    #[test]
    fn a_failover_attempt_carries_on_after_the_backend_that_failed() {
        let b = balancer(vec![
            backend("a", None, false),
            backend("b", None, false),
            backend("c", None, false),
        ]);
        assert_eq!(b.next_at(ask("gpt", &[1]), 0).unwrap().1.name, "c");
        assert_eq!(b.next_at(ask("gpt", &[2]), 0).unwrap().1.name, "a");
        assert_eq!(b.next_at(ask("gpt", &[2, 0]), 0).unwrap().1.name, "b");
        assert!(b.next_at(ask("gpt", &[2, 0, 1]), 0).is_none());
        // Failover attempts took no turn: the rotation starts where it was.
        assert_eq!(names(&b, 3, "gpt", 0), ["a", "b", "c"]);
    }

    #[test]
    fn resting_backends_are_skipped_and_when_all_rest_the_first_to_wake_is_tried() {
        let b = balancer(vec![
            backend("a", None, false),
            backend("b", None, false),
            backend("c", None, false),
        ]);
        let unreachable = |s| Outcome::Unreachable {
            rest: Duration::from_secs(s),
        };
        b.learn_at(0, Some("gpt"), unreachable(60), 0);
        assert_eq!(names(&b, 4, "gpt", 0), ["b", "c", "b", "c"]);
        assert!(b.next_at(ask("gpt", &[1, 2]), 0).is_none());
        b.learn_at(1, Some("gpt"), unreachable(20), 0);
        b.learn_at(2, Some("gpt"), unreachable(40), 0);
        assert_eq!(names(&b, 3, "gpt", 0), ["b", "b", "b"]);
        // Rests end.
        assert_eq!(names(&b, 2, "gpt", 45_000), ["b", "c"]);
        assert_eq!(names(&b, 3, "gpt", 61_000), ["a", "b", "c"]);
    }

    #[test]
    fn a_deployment_rests_alone_and_rests_end() {
        let b = balancer(vec![backend("a", None, false), backend("b", None, false)]);
        let over_quota = Outcome::DeploymentFailed {
            rest: Some(Duration::from_secs(7)),
        };
        b.learn_at(0, Some("busy"), over_quota, 0);
        assert_eq!(names(&b, 3, "busy", 0), ["b", "b", "b"]);
        let other = names(&b, 2, "gpt", 0);
        assert!(other.contains(&"a".into()) && other.contains(&"b".into()));
        let mut after = names(&b, 2, "busy", 7_001);
        after.sort();
        assert_eq!(after, ["a", "b"]);
    }

    #[test]
    fn a_reload_keeps_the_rests_of_the_backends_it_keeps() {
        let old = balancer(vec![backend("a", None, false), backend("b", None, false)]);
        let over_quota = Outcome::DeploymentFailed {
            rest: Some(Duration::from_secs(7)),
        };
        old.learn_at(0, Some("busy"), over_quota, 0);
        old.learn_at(1, Some("busy"), over_quota, 0);
        // "a" is kept (now second), "b" removed, "c" added.
        let mut new = balancer(vec![backend("c", None, false), backend("a", None, false)]);
        new.keep_state_of(&old);
        assert_eq!(names(&new, 3, "busy", 0), ["c", "c", "c"], "a still rests");
        // Shared: what a call still in flight on the old configuration teaches reaches the new.
        old.learn_at(
            0,
            Some("gpt"),
            Outcome::Unreachable {
                rest: Duration::from_secs(5),
            },
            10,
        );
        assert_eq!(names(&new, 2, "gpt", 10), ["c", "c"]);
        let mut after = names(&new, 2, "busy", 7_001);
        after.sort();
        assert_eq!(after, ["a", "c"], "and wakes when its rest ends");
    }

    #[test]
    fn repeated_failures_open_the_circuit_until_a_trial_call_succeeds() {
        let b = balancer(vec![backend("a", None, false), backend("b", None, false)]);
        let failed = Outcome::DeploymentFailed { rest: None };
        // Two failures: still in the rotation.
        b.learn_at(0, Some("gpt"), failed, 0);
        b.learn_at(0, Some("gpt"), failed, 1_000);
        assert_eq!(names(&b, 2, "gpt", 1_000), ["a", "b"]);
        // Failures outside the window start a new count.
        b.learn_at(0, Some("gpt"), failed, 12_000);
        assert_eq!(names(&b, 2, "gpt", 12_000), ["a", "b"]);
        b.learn_at(0, Some("gpt"), failed, 13_000);
        b.learn_at(0, Some("gpt"), failed, 14_000);
        // Third in the window: open for the cool-down.
        assert_eq!(names(&b, 4, "gpt", 14_000), ["b", "b", "b", "b"]);
        assert_eq!(names(&b, 2, "gpt", 43_999), ["b", "b"]);
        // Cool-down over: one trial call, and only one while it is out.
        let picks = names(&b, 4, "gpt", 44_000);
        assert_eq!(picks.iter().filter(|n| *n == "a").count(), 1, "{picks:?}");
        // The trial fails: open again.
        b.learn_at(0, Some("gpt"), failed, 44_100);
        assert_eq!(names(&b, 4, "gpt", 44_100), ["b", "b", "b", "b"]);
        // Next trial succeeds: back in the rotation.
        let picks = names(&b, 2, "gpt", 74_100);
        assert!(picks.contains(&"a".into()), "{picks:?}");
        b.learn_at(0, Some("gpt"), Outcome::Answered, 74_200);
        let picks = names(&b, 4, "gpt", 74_200);
        assert!(
            picks[0] != picks[1] && picks[..2] == picks[2..],
            "{picks:?}"
        );
        assert!(
            !b.health[0]
                .troubled
                .load(std::sync::atomic::Ordering::Relaxed)
        );
    }

    #[test]
    fn a_trial_that_never_reports_gives_way_to_another() {
        let b = balancer(vec![backend("a", None, false), backend("b", None, false)]);
        for t in 0..3 {
            b.learn_at(
                0,
                None,
                Outcome::Unreachable {
                    rest: Duration::ZERO,
                },
                t,
            );
        }
        assert_eq!(names(&b, 2, "gpt", 10_000), ["b", "b"]);
        let trial = names(&b, 2, "gpt", 30_002);
        assert_eq!(trial.iter().filter(|n| *n == "a").count(), 1);
        assert_eq!(names(&b, 2, "gpt", 31_000), ["b", "b"]);
        let again = names(&b, 2, "gpt", 35_003);
        assert_eq!(again.iter().filter(|n| *n == "a").count(), 1);
    }

    fn tiered(weights: &[(&str, u32, u32)]) -> Balancer {
        balancer(
            weights
                .iter()
                .map(|&(name, priority, weight)| Backend {
                    priority,
                    weight,
                    ..backend(name, None, false)
                })
                .collect(),
        )
    }

    #[test]
    fn the_best_tier_takes_calls_until_it_rests_and_then_again() {
        let b = tiered(&[("ptu", 1, 1), ("payg-a", 2, 1), ("payg-b", 2, 1)]);
        assert_eq!(names(&b, 3, "gpt", 0), ["ptu", "ptu", "ptu"]);
        // The provisioned deployment is full: it answered 429 with retry-after 5 s.
        b.learn_at(
            0,
            Some("gpt"),
            Outcome::DeploymentFailed {
                rest: Some(Duration::from_secs(5)),
            },
            1_000,
        );
        // Its failover goes to the next tier, as do the calls while it rests.
        assert_eq!(b.next_at(ask("gpt", &[0]), 1_000).unwrap().1.name, "payg-a");
        assert_eq!(
            names(&b, 4, "gpt", 2_000),
            ["payg-a", "payg-b", "payg-a", "payg-b"]
        );
        // Its rest is over: back to it.
        assert_eq!(names(&b, 2, "gpt", 6_001), ["ptu", "ptu"]);
    }

    #[test]
    fn a_failover_stays_in_its_tier_while_it_can() {
        let b = tiered(&[("ptu-a", 1, 1), ("payg", 2, 1), ("ptu-b", 1, 1)]);
        assert_eq!(b.next_at(ask("gpt", &[0]), 0).unwrap().1.name, "ptu-b");
        assert_eq!(b.next_at(ask("gpt", &[0, 2]), 0).unwrap().1.name, "payg");
    }

    #[test]
    fn weights_share_a_tier_evenly_spread() {
        let b = tiered(&[("a", 1, 3), ("b", 1, 1), ("c", 2, 5)]);
        let picks = names(&b, 1000, "gpt", 0);
        let a = picks.iter().filter(|n| *n == "a").count();
        assert_eq!((a, 1000 - a), (750, 250));
        // Smooth: never more than three in a row for the heavier one.
        assert_eq!(&picks[..8], ["a", "a", "b", "a", "a", "a", "b", "a"]);
        // Each deployment has its own rotation.
        let b = tiered(&[("a", 1, 1), ("b", 1, 1)]);
        let mut both = Vec::new();
        for _ in 0..2 {
            both.extend(names(&b, 1, "x", 0));
            both.extend(names(&b, 1, "y", 0));
        }
        assert_eq!(both, ["a", "a", "b", "b"]);
    }

    #[test]
    fn a_backend_short_of_room_is_passed_over_while_another_has_it() {
        let b = tiered(&[("ptu", 1, 1), ("payg", 2, 1)]);
        let wants = |tokens| Ask {
            at_most: Some(tokens),
            ..ask("gpt", &[])
        };
        b.note_headroom_at(0, Some("gpt"), 500, 0);
        assert_eq!(b.first_at(wants(400), 100).unwrap().1.name, "ptu");
        assert_eq!(b.first_at(wants(600), 100).unwrap().1.name, "payg");
        // Another deployment's reading says nothing of this one.
        assert_eq!(
            b.first_at(
                Ask {
                    deployment: Some("other"),
                    ..wants(600)
                },
                100
            )
            .unwrap()
            .1
            .name,
            "ptu"
        );
        // Nobody has the room: the best tier is tried anyway.
        b.note_headroom_at(1, Some("gpt"), 100, 0);
        assert_eq!(b.first_at(wants(600), 100).unwrap().1.name, "ptu");
        // Readings age out.
        b.note_headroom_at(1, Some("gpt"), 10_000, 0);
        assert_eq!(b.first_at(wants(600), 10_001).unwrap().1.name, "ptu");
    }

    struct Idle;

    impl Loads for Idle {
        fn in_flight(&self, _: usize) -> u64 {
            0
        }
    }

    fn keyed<'a>(key: u64, tried: &'a [usize]) -> Ask<'a> {
        Ask {
            affinity: Some(Affinity { key, loads: &Idle }),
            ..ask("gpt", tried)
        }
    }

    #[test]
    fn a_keyed_call_keeps_its_backend_and_moves_only_while_it_rests() {
        let b = balancer(vec![
            backend("a", None, false),
            backend("b", None, false),
            backend("c", None, false),
        ]);
        let home = |key, now| b.first_at(keyed(key, &[]), now).unwrap().0;
        let key = 7;
        let first = home(key, 0);
        assert!((0..5).all(|_| home(key, 0) == first), "no rotation");
        // Keys spread over the backends.
        let spread: std::collections::HashSet<usize> = (0..30).map(|k| home(k, 0)).collect();
        assert_eq!(spread.len(), 3);
        // Its backend rests: the key goes to its next, the same each time, and comes back.
        b.learn_at(
            first,
            Some("gpt"),
            Outcome::DeploymentFailed {
                rest: Some(Duration::from_secs(5)),
            },
            0,
        );
        let second = home(key, 1_000);
        assert_ne!(second, first);
        assert!((0..5).all(|_| home(key, 1_000) == second));
        // A failover follows the key's order too.
        assert_eq!(b.next_at(keyed(key, &[first]), 6_000).unwrap().0, second);
        assert_eq!(home(key, 6_000), first, "back after its rest");
    }

    #[test]
    fn tiers_win_over_a_keys_preference() {
        let b = tiered(&[("ptu", 1, 1), ("payg-a", 2, 1), ("payg-b", 2, 1)]);
        for key in 0..20 {
            assert_eq!(b.first_at(keyed(key, &[]), 0).unwrap().1.name, "ptu");
        }
        b.learn_at(
            0,
            Some("gpt"),
            Outcome::DeploymentFailed {
                rest: Some(Duration::from_secs(5)),
            },
            0,
        );
        let spilled: std::collections::HashSet<String> = (0..20)
            .map(|key| b.first_at(keyed(key, &[]), 0).unwrap().1.name.clone())
            .collect();
        assert_eq!(spilled.len(), 2, "{spilled:?}");
        assert!(!spilled.contains("ptu"));
    }
}
