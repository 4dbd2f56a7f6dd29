//! Whether a backend is fit to take a call: its rests and its circuit breaker, as a whole and
//! per deployment (Azure's quotas are per deployment; a backend that cannot be reached rests as
//! a whole). See the [module note](super) for the rules.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::MutexGuard;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::lock;
use crate::limits::millis;

/// What a call taught us about the backend it went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It answered (any status but those below).
    Answered,
    /// The deployment refused or failed the call (429, 5xx) or did not answer in time;
    /// `rest`: how long it asked to be left alone.
    DeploymentFailed { rest: Option<Duration> },
    /// The backend could not be reached at all.
    Unreachable { rest: Duration },
}

/// The circuit breaker's settings, from [`Failover`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Breaker {
    pub(super) failures: u32,
    pub(super) window: u64,
    pub(super) cooldown: u64,
    pub(super) trial_timeout: u64,
}

/// The health of a backend as a whole, or of one deployment on it. Times are milliseconds
/// since the balancer's epoch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Circuit {
    /// Out of the rotation until then.
    rest_until: u64,
    /// Failures in the window that opened at `window_start`.
    failures: u32,
    window_start: u64,
    /// The circuit opened: when the rest is over, one trial call decides.
    open: bool,
    /// A trial call is out, and counts as such until then.
    trial_until: u64,
}

/// Whether a backend may take a call now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fitness {
    Fit,
    /// Its circuit is open and its rest over: it may take one trial call.
    Trial,
    Resting {
        until: u64,
    },
}

impl Fitness {
    pub(super) fn is_resting(self) -> bool {
        matches!(self, Fitness::Resting { .. })
    }
}

impl Circuit {
    /// Forgets a rest that is over when nothing else is recorded; `true` when clear.
    fn settle(&mut self, now: u64) -> bool {
        if !self.open && self.failures == 0 && self.rest_until <= now {
            *self = Circuit::default();
        }
        *self == Circuit::default()
    }

    fn fitness(&self, now: u64) -> Fitness {
        if self.rest_until > now {
            return Fitness::Resting {
                until: self.rest_until,
            };
        }
        if self.open {
            return if self.trial_until > now {
                Fitness::Resting {
                    until: self.trial_until,
                }
            } else {
                Fitness::Trial
            };
        }
        Fitness::Fit
    }

    fn rest(&mut self, until: u64) {
        self.rest_until = self.rest_until.max(until);
    }

    fn failed(&mut self, now: u64, breaker: &Breaker) {
        self.trial_until = 0;
        if self.open {
            // The trial failed: open again.
            self.rest(now.saturating_add(breaker.cooldown));
            return;
        }
        if self.failures == 0 || now.saturating_sub(self.window_start) > breaker.window {
            self.window_start = now;
            self.failures = 0;
        }
        self.failures += 1;
        if breaker.failures > 0 && self.failures >= breaker.failures {
            self.open = true;
            self.failures = 0;
            self.rest(now.saturating_add(breaker.cooldown));
        }
    }

    fn succeeded(&mut self, now: u64) {
        self.failures = 0;
        self.open = false;
        self.trial_until = 0;
        if self.rest_until <= now {
            self.rest_until = 0;
        }
    }
}

/// One backend's health: the backend as a whole and each deployment that had trouble, by the
/// client's deployment name.
#[derive(Default)]
pub(super) struct Health {
    /// Whether `state` holds anything but clear circuits; read without the lock.
    pub(super) troubled: AtomicBool,
    state: Mutex<HealthState>,
}

#[derive(Default)]
struct HealthState {
    backend: Circuit,
    deployments: HashMap<String, Circuit>,
}

impl HealthState {
    fn fitness(&self, deployment: Option<&str>, now: u64) -> Fitness {
        let whole = self.backend.fitness(now);
        let part = deployment
            .and_then(|d| self.deployments.get(d))
            .map_or(Fitness::Fit, |c| c.fitness(now));
        match (whole, part) {
            (Fitness::Resting { until: a }, Fitness::Resting { until: b }) => {
                Fitness::Resting { until: a.max(b) }
            }
            (resting @ Fitness::Resting { .. }, _) | (_, resting @ Fitness::Resting { .. }) => {
                resting
            }
            (Fitness::Trial, _) | (_, Fitness::Trial) => Fitness::Trial,
            _ => Fitness::Fit,
        }
    }

    /// Drops what is over; `true` when nothing is left.
    fn tidy(&mut self, now: u64) -> bool {
        self.deployments.retain(|_, c| !c.settle(now));
        self.backend.settle(now) && self.deployments.is_empty()
    }
}

/// A backend's condition, for people: what rests and for how long.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    /// The backend as a whole.
    pub backend: Condition,
    /// Deployments whose condition is not `fit`, by the client's name.
    pub deployments: Vec<(String, Condition)>,
    /// (deployment, `x-ratelimit-remaining-tokens`, milliseconds since it was read).
    pub headroom: Vec<(String, u64, u64)>,
}

/// A circuit's condition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Condition {
    #[default]
    Fit,
    /// Out of the rotation for `ms` more; `circuit_open` when its breaker, not a
    /// `retry-after`, put it there.
    Resting { ms: u64, circuit_open: bool },
    /// Its circuit is open and its rest over: the next call is a trial.
    Trial,
}

impl Circuit {
    fn condition(&self, now: u64) -> Condition {
        match self.fitness(now) {
            Fitness::Fit => Condition::Fit,
            Fitness::Trial => Condition::Trial,
            Fitness::Resting { until } => Condition::Resting {
                ms: until.saturating_sub(now),
                circuit_open: self.open,
            },
        }
    }
}

impl Health {
    pub(super) fn report(&self, now: u64) -> Report {
        if !self.troubled.load(Ordering::Acquire) {
            return Report::default();
        }
        let state = self.state();
        let mut deployments: Vec<_> = state
            .deployments
            .iter()
            .map(|(d, c)| (d.clone(), c.condition(now)))
            .filter(|(_, c)| *c != Condition::Fit)
            .collect();
        deployments.sort_by(|a, b| a.0.cmp(&b.0));
        Report {
            backend: state.backend.condition(now),
            deployments,
            headroom: Vec::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, HealthState> {
        lock(&self.state)
    }

    pub(super) fn fitness(&self, deployment: Option<&str>, now: u64) -> Fitness {
        if !self.troubled.load(Ordering::Acquire) {
            return Fitness::Fit;
        }
        self.state().fitness(deployment, now)
    }

    /// Takes the trial call if the backend is due one; `false` if another call took it first.
    pub(super) fn claim(&self, deployment: Option<&str>, now: u64, trial_timeout: u64) -> bool {
        if !self.troubled.load(Ordering::Acquire) {
            return true;
        }
        let mut state = self.state();
        match state.fitness(deployment, now) {
            Fitness::Fit => true,
            Fitness::Resting { .. } => false,
            Fitness::Trial => {
                let until = now.saturating_add(trial_timeout);
                if state.backend.open && state.backend.fitness(now) == Fitness::Trial {
                    state.backend.trial_until = until;
                }
                if let Some(c) = deployment.and_then(|d| state.deployments.get_mut(d))
                    && c.fitness(now) == Fitness::Trial
                {
                    c.trial_until = until;
                }
                true
            }
        }
    }

    fn update(&self, f: impl FnOnce(&mut HealthState), now: u64) {
        let mut state = self.state();
        f(&mut state);
        let clear = state.tidy(now);
        self.troubled.store(!clear, Ordering::Release);
    }

    /// Records what a call to this backend taught: `deployment` is the client's name for it,
    /// `None` for an operation on stored objects (the backend answers for itself).
    pub(super) fn learn(
        &self,
        deployment: Option<&str>,
        outcome: Outcome,
        now: u64,
        breaker: &Breaker,
    ) {
        match outcome {
            Outcome::Answered => {
                if self.troubled.load(Ordering::Acquire) {
                    self.update(
                        |s| {
                            s.backend.succeeded(now);
                            if let Some(c) = deployment.and_then(|d| s.deployments.get_mut(d)) {
                                c.succeeded(now);
                            }
                        },
                        now,
                    );
                }
            }
            Outcome::Unreachable { rest } => self.update(
                |s| {
                    s.backend.rest(now.saturating_add(millis(rest)));
                    s.backend.failed(now, breaker);
                },
                now,
            ),
            Outcome::DeploymentFailed { rest } => self.update(
                |s| {
                    let circuit = match deployment {
                        Some(d) => s.deployments.entry(d.to_string()).or_default(),
                        None => &mut s.backend,
                    };
                    // A refusal that says how long to wait (a quota's `retry-after`) rests
                    // exactly that long; only failures without one count toward the circuit.
                    match rest {
                        Some(rest) => circuit.rest(now.saturating_add(millis(rest))),
                        None => circuit.failed(now, breaker),
                    }
                },
                now,
            ),
        }
    }
}
