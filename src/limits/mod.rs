//! Limits per subscription, and per deployment within one: tokens and requests per minute, and
//! a token budget per day.
//!
//! Before a call is forwarded, its estimated tokens are *reserved* in every window that applies
//! (the subscription's, and the deployment's if it has its own): all of them are checked and
//! counted at once, under the subscription's lock, so concurrent callers cannot together push a
//! window past its limit; only a call that turns out to cost more than its reservation can, by
//! that difference. When the call's usage is known, the reservation is *settled*: the difference
//! is added or given back in the second that reserved it. A call that does not fit is refused
//! with how long it must wait, computed from the windows ([`window`]).
//!
//! Operations that spend no tokens (files, stored objects) count as requests only.

pub mod window;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use window::{Day, Minute};

/// The limits of one subscription, or of one deployment within it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub tokens_per_minute: Option<u64>,
    pub requests_per_minute: Option<u64>,
    pub tokens_per_day: Option<u64>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    pub fn counts_tokens(&self) -> bool {
        self.tokens_per_minute.is_some() || self.tokens_per_day.is_some()
    }
}

/// The limits a subscription was given.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionLimits {
    pub own: Limits,
    /// By the client's deployment name.
    pub deployments: HashMap<String, Limits>,
}

impl SubscriptionLimits {
    pub fn is_empty(&self) -> bool {
        self.own.is_empty() && self.deployments.values().all(Limits::is_empty)
    }

    /// Whether a call to `deployment` reserves tokens.
    pub fn counts_tokens(&self, deployment: Option<&str>) -> bool {
        self.own.counts_tokens()
            || deployment
                .and_then(|d| self.deployments.get(d))
                .is_some_and(Limits::counts_tokens)
    }
}

/// Which window refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    TokensPerMinute,
    RequestsPerMinute,
    TokensPerDay,
}

impl Which {
    pub fn as_str(self) -> &'static str {
        match self {
            Which::TokensPerMinute => "tokens_per_minute",
            Which::RequestsPerMinute => "requests_per_minute",
            Which::TokensPerDay => "tokens_per_day",
        }
    }
}

/// What is left in a subscription's windows after a call, for its
/// `x-ratelimit-remaining-tokens` and `-requests`: the least of those that apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Remaining {
    pub tokens: Option<u64>,
    pub requests: Option<u64>,
}

impl Remaining {
    /// From counts where -1 says "no such window".
    pub fn of(tokens: i64, requests: i64) -> Remaining {
        Remaining {
            tokens: u64::try_from(tokens).ok(),
            requests: u64::try_from(requests).ok(),
        }
    }

    fn tokens(&mut self, n: u64) {
        self.tokens = Some(self.tokens.map_or(n, |t| t.min(n)));
    }

    fn requests(&mut self, n: u64) {
        self.requests = Some(self.requests.map_or(n, |r| r.min(n)));
    }
}

/// A call refused by a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub which: Which,
    pub limit: u64,
    /// Whose limit: the subscription's (`None`) or that of this deployment.
    pub deployment: Option<String>,
    pub retry_after_ms: u64,
    /// The call's estimate, for the message.
    pub tokens: u64,
    pub remaining: Remaining,
}

/// Tokens reserved for a call in flight; [`Limiter::settle`] with what it spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub subscription: usize,
    /// The deployment whose own windows it reserved in, if any.
    pub deployment: Option<String>,
    tokens: u64,
    /// The second and the day it reserved in.
    pub second: u64,
    pub day: u64,
    pub remaining: Remaining,
    /// Made in the shared windows (Redis), which settle it; else in this replica's.
    pub shared: bool,
}

impl Reservation {
    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    /// A reservation of nothing in the same windows, made now: settling it counts what was
    /// spent without a reservation (a realtime response the service started on its own).
    pub fn of_nothing_now(&self) -> Reservation {
        let now = now_ms();
        Reservation {
            tokens: 0,
            second: now / 1000,
            day: Day::of(now),
            ..self.clone()
        }
    }

    /// A reservation made in the shared windows at `now`.
    pub fn shared(
        subscription: usize,
        deployment: Option<String>,
        tokens: u64,
        now: u64,
        remaining: Remaining,
    ) -> Reservation {
        Reservation {
            subscription,
            deployment,
            tokens,
            second: now / 1000,
            day: Day::of(now),
            remaining,
            shared: true,
        }
    }
}

#[derive(Debug, Default)]
struct Windows {
    tokens: Option<Minute>,
    requests: Option<Minute>,
    day: Option<Day>,
}

impl Windows {
    fn new(limits: &Limits) -> Windows {
        Windows {
            tokens: limits.tokens_per_minute.map(Minute::new),
            requests: limits.requests_per_minute.map(Minute::new),
            day: limits.tokens_per_day.map(Day::new),
        }
    }

    /// Keeps each window the new limits keep, with its new limit.
    fn relimit(&mut self, limits: &Limits) {
        fn minute(w: &mut Option<Minute>, limit: Option<u64>) {
            match (w.as_mut(), limit) {
                (Some(w), Some(limit)) => w.limit = limit,
                (_, limit) => *w = limit.map(Minute::new),
            }
        }
        minute(&mut self.tokens, limits.tokens_per_minute);
        minute(&mut self.requests, limits.requests_per_minute);
        match (self.day.as_mut(), limits.tokens_per_day) {
            (Some(d), Some(limit)) => d.limit = limit,
            (_, limit) => self.day = limit.map(Day::new),
        }
    }

    /// The first window `tokens` (and one request) would overflow, and how long to wait.
    fn refuses(&mut self, now: u64, tokens: u64) -> Option<(Which, u64, u64)> {
        let mut worst: Option<(Which, u64, u64)> = None;
        let mut note = |which, limit, wait: Option<u64>| {
            if let Some(wait) = wait
                && worst.is_none_or(|(_, _, w)| wait > w)
            {
                worst = Some((which, limit, wait));
            }
        };
        if let Some(w) = &mut self.requests {
            let limit = w.limit;
            note(Which::RequestsPerMinute, limit, w.wait(now, 1));
        }
        if tokens > 0 {
            if let Some(w) = &mut self.tokens {
                let limit = w.limit;
                note(Which::TokensPerMinute, limit, w.wait(now, tokens));
            }
            if let Some(d) = &mut self.day {
                let limit = d.limit;
                note(Which::TokensPerDay, limit, d.wait(now, tokens));
            }
        }
        worst
    }

    fn add(&mut self, now: u64, tokens: u64) {
        if let Some(w) = &mut self.requests {
            w.add(now, 1);
        }
        if tokens > 0 {
            if let Some(w) = &mut self.tokens {
                w.add(now, tokens);
            }
            if let Some(d) = &mut self.day {
                d.add(now, tokens);
            }
        }
    }

    fn settle(&mut self, now: u64, second: u64, day: u64, delta: i64) {
        if let Some(w) = &mut self.tokens {
            w.settle(now, second, delta);
        }
        if let Some(d) = &mut self.day {
            d.settle(now, day, delta);
        }
    }

    fn remaining(&mut self, now: u64, into: &mut Remaining) {
        if let Some(w) = &mut self.tokens {
            into.tokens(w.remaining(now));
        }
        if let Some(d) = &mut self.day {
            into.tokens(d.remaining(now));
        }
        if let Some(w) = &mut self.requests {
            into.requests(w.remaining(now));
        }
    }
}

/// One subscription's windows.
#[derive(Debug)]
pub struct State {
    own: Windows,
    deployments: HashMap<String, Windows>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl State {
    fn new(limits: &SubscriptionLimits) -> State {
        State {
            own: Windows::new(&limits.own),
            deployments: limits
                .deployments
                .iter()
                .map(|(d, limits)| (d.clone(), Windows::new(limits)))
                .collect(),
        }
    }

    /// New limits for the same windows: what they counted stays.
    fn relimit(&mut self, limits: &SubscriptionLimits) {
        self.own.relimit(&limits.own);
        self.deployments
            .retain(|d, _| limits.deployments.contains_key(d));
        for (d, l) in &limits.deployments {
            match self.deployments.get_mut(d) {
                Some(w) => w.relimit(l),
                None => {
                    self.deployments.insert(d.clone(), Windows::new(l));
                }
            }
        }
    }
}

/// The windows of every subscription that has limits, in process memory.
pub struct Limiter {
    /// By subscription index; `None` for a subscription without limits. The windows are shared
    /// with the limiter of a reloaded configuration that keeps the subscription.
    subscriptions: Vec<Option<(SubscriptionLimits, Arc<Mutex<State>>)>>,
}

/// Milliseconds since the Unix epoch: the clock of every window, and of shared state.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, millis)
}

/// A duration in whole milliseconds, as the gateway's clocks count.
pub fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Limiter {
    /// `limits` by subscription index.
    pub fn new(limits: Vec<SubscriptionLimits>) -> Limiter {
        Limiter::renewed(limits, |_| None)
    }

    /// The limiter of a reloaded configuration: `kept(i)` is the windows subscription `i` had
    /// (the same name's, in the limiter in use), which go on with what they counted, under the
    /// new limits; a window the new limits add starts empty.
    pub fn renewed(
        limits: Vec<SubscriptionLimits>,
        kept: impl Fn(usize) -> Option<Arc<Mutex<State>>>,
    ) -> Limiter {
        let subscriptions = limits
            .into_iter()
            .enumerate()
            .map(|(i, l)| {
                if l.is_empty() {
                    return None;
                }
                let state = match kept(i) {
                    Some(state) => {
                        lock(&state).relimit(&l);
                        state
                    }
                    None => Arc::new(Mutex::new(State::new(&l))),
                };
                Some((l, state))
            })
            .collect();
        Limiter { subscriptions }
    }

    /// Subscription `index`'s windows, to carry into a reloaded configuration's limiter.
    pub fn windows_of(&self, index: usize) -> Option<Arc<Mutex<State>>> {
        let (_, state) = self.subscriptions.get(index)?.as_ref()?;
        Some(state.clone())
    }

    /// The limits of subscription `index`, when it has any.
    pub fn limits(&self, subscription: usize) -> Option<&SubscriptionLimits> {
        self.subscriptions
            .get(subscription)
            .and_then(|s| s.as_ref())
            .map(|(l, _)| l)
    }

    fn state(&self, subscription: usize) -> Option<MutexGuard<'_, State>> {
        let (_, state) = self.subscriptions.get(subscription)?.as_ref()?;
        Some(lock(state))
    }

    /// Reserves `tokens` and one request for a call of `subscription` to `deployment`, or
    /// says which limit refuses it and for how long. `Ok(None)`: the subscription has no
    /// limits.
    pub fn reserve(
        &self,
        subscription: usize,
        deployment: Option<&str>,
        tokens: u64,
    ) -> Result<Option<Reservation>, Refusal> {
        self.reserve_at(subscription, deployment, tokens, now_ms())
    }

    pub fn reserve_at(
        &self,
        subscription: usize,
        deployment: Option<&str>,
        tokens: u64,
        now: u64,
    ) -> Result<Option<Reservation>, Refusal> {
        let Some(mut state) = self.state(subscription) else {
            return Ok(None);
        };
        let State { own, deployments } = &mut *state;
        let mut part = deployment.and_then(|d| deployments.get_mut(d).map(|w| (d, w)));
        let refused = [
            own.refuses(now, tokens).map(|r| (None, r)),
            part.as_mut()
                .and_then(|(d, w)| w.refuses(now, tokens).map(|r| (Some(d.to_string()), r))),
        ]
        .into_iter()
        .flatten()
        .max_by_key(|(_, (_, _, wait))| *wait);
        let mut remaining = Remaining::default();
        if let Some((deployment, (which, limit, wait))) = refused {
            own.remaining(now, &mut remaining);
            if let Some((_, w)) = part.as_mut() {
                w.remaining(now, &mut remaining);
            }
            return Err(Refusal {
                which,
                limit,
                deployment,
                retry_after_ms: wait,
                tokens,
                remaining,
            });
        }
        own.add(now, tokens);
        own.remaining(now, &mut remaining);
        if let Some((_, w)) = part.as_mut() {
            w.add(now, tokens);
            w.remaining(now, &mut remaining);
        }
        Ok(Some(Reservation {
            subscription,
            deployment: part.map(|(d, _)| d.to_string()),
            tokens,
            second: now / 1000,
            day: Day::of(now),
            remaining,
            shared: false,
        }))
    }

    /// What is left for a call of `subscription` to `deployment`, without reserving anything;
    /// `None` when the subscription has no limits.
    pub fn remaining(&self, subscription: usize, deployment: Option<&str>) -> Option<Remaining> {
        self.remaining_at(subscription, deployment, now_ms())
    }

    fn remaining_at(
        &self,
        subscription: usize,
        deployment: Option<&str>,
        now: u64,
    ) -> Option<Remaining> {
        let mut state = self.state(subscription)?;
        let State { own, deployments } = &mut *state;
        let mut remaining = Remaining::default();
        own.remaining(now, &mut remaining);
        if let Some(w) = deployment.and_then(|d| deployments.get_mut(d)) {
            w.remaining(now, &mut remaining);
        }
        Some(remaining)
    }

    /// The call that made `reservation` spent `tokens`.
    pub fn settle(&self, reservation: &Reservation, tokens: u64) {
        self.settle_at(reservation, tokens, now_ms());
    }

    pub fn settle_at(&self, reservation: &Reservation, tokens: u64, now: u64) {
        if tokens == reservation.tokens {
            return;
        }
        let Some(mut state) = self.state(reservation.subscription) else {
            return;
        };
        let delta = i64::try_from(tokens)
            .unwrap_or(i64::MAX)
            .saturating_sub(i64::try_from(reservation.tokens).unwrap_or(i64::MAX));
        let State { own, deployments } = &mut *state;
        own.settle(now, reservation.second, reservation.day, delta);
        if let Some(w) = reservation
            .deployment
            .as_deref()
            .and_then(|d| deployments.get_mut(d))
        {
            w.settle(now, reservation.second, reservation.day, delta);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_800_000_000_000;

    fn limiter_limits() -> SubscriptionLimits {
        SubscriptionLimits {
            own: Limits {
                tokens_per_minute: Some(1000),
                requests_per_minute: Some(3),
                tokens_per_day: None,
            },
            deployments: [(
                "gpt-4o".to_string(),
                Limits {
                    tokens_per_minute: Some(300),
                    ..Limits::default()
                },
            )]
            .into(),
        }
    }

    fn limiter() -> Limiter {
        Limiter::new(vec![limiter_limits(), SubscriptionLimits::default()])
    }

    #[test]
    fn a_reload_keeps_the_windows_under_the_new_limits() {
        let old = limiter();
        let first = old.reserve_at(0, Some("gpt-4o"), 100, T0).unwrap().unwrap();
        assert!(old.reserve_at(0, Some("gpt-4o"), 100, T0).is_ok());
        // Subscription 0 is now the second, with 3 requests a minute become 2, and its
        // deployment's limit dropped.
        let mut lowered = limiter_limits();
        lowered.own.requests_per_minute = Some(2);
        lowered.deployments.clear();
        let new = Limiter::renewed(vec![SubscriptionLimits::default(), lowered], |i| {
            (i == 1).then(|| old.windows_of(0)).flatten()
        });
        let refused = new.reserve_at(1, Some("gpt-4o"), 100, T0).unwrap_err();
        assert_eq!(
            refused.which,
            Which::RequestsPerMinute,
            "the two calls counted"
        );
        assert_eq!(
            new.remaining_at(1, None, T0).and_then(|r| r.tokens),
            Some(800),
            "the tokens counted"
        );
        // A call made under the old configuration settles into the same windows.
        old.settle_at(&first, 0, T0);
        assert_eq!(
            new.remaining_at(1, None, T0).and_then(|r| r.tokens),
            Some(900)
        );
    }

    #[test]
    fn every_window_that_applies_reserves_and_the_longest_wait_is_told() {
        let l = limiter();
        assert_eq!(l.reserve_at(1, Some("gpt-4o"), 10_000, T0), Ok(None));
        let r = l.reserve_at(0, Some("gpt-4o"), 250, T0).unwrap().unwrap();
        assert_eq!(
            r.remaining,
            Remaining {
                tokens: Some(50),
                requests: Some(2)
            }
        );
        // The deployment's own limit refuses what the subscription's would take.
        let refused = l
            .reserve_at(0, Some("gpt-4o"), 100, T0 + 1_500)
            .unwrap_err();
        assert_eq!(refused.which, Which::TokensPerMinute);
        assert_eq!(refused.deployment.as_deref(), Some("gpt-4o"));
        assert_eq!(refused.retry_after_ms, 58_500);
        // Another deployment only meets the subscription's.
        assert!(
            l.reserve_at(0, Some("other"), 700, T0 + 1_500)
                .unwrap()
                .is_some()
        );
        assert!(l.reserve_at(0, None, 0, T0 + 2_000).unwrap().is_some());
        let refused = l.reserve_at(0, None, 0, T0 + 2_000).unwrap_err();
        assert_eq!(refused.which, Which::RequestsPerMinute);
        assert_eq!(refused.retry_after_ms, 58_000);
    }

    #[test]
    fn settling_gives_back_what_was_not_spent() {
        let l = limiter();
        let r = l.reserve_at(0, Some("gpt-4o"), 300, T0).unwrap().unwrap();
        assert!(l.reserve_at(0, Some("gpt-4o"), 10, T0).is_err());
        l.settle_at(&r, 20, T0 + 500);
        let again = l
            .reserve_at(0, Some("gpt-4o"), 200, T0 + 600)
            .unwrap()
            .unwrap();
        assert_eq!(again.remaining.tokens, Some(80));
    }
}
