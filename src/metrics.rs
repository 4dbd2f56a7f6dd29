//! Counters for `/metrics`, in Prometheus' text format.
//!
//! Everything is a fixed array of atomics laid out when a configuration is loaded (its
//! subscriptions and backends are known then, status codes are 100 to 599), so counting a
//! request takes no lock and allocates nothing; only a scrape walks the arrays and skips what is
//! zero. A reload's configuration shares the counters of the subscriptions and backends it keeps
//! ([`Metrics::renewed`]), so no counter goes back. Each backend also keeps its last minute of
//! calls and its calls in flight, for the status page.
//!
//! What is counted: requests per subscription and status (the gateway's own refusals included,
//! under `subscription="-"` when none was identified: no key, a wrong key, or a request refused
//! before its key is checked, such as one without an api-version); calls per backend and status
//! with the time to the backend's response headers; calls handed on to another backend; answers
//! whose body the backend cut off half-way; the
//! rate-limit headroom each backend last reported (`x-ratelimit-remaining-tokens` and
//! `-requests`), which is what a dashboard needs to see a region filling up; tokens spent, by
//! subscription, deployment, backend, kind and source; calls refused by a subscription's
//! limits; and log lines dropped because the log writer fell behind.
//!
//! Tokens are counted under one lock per call, when its answer ends, since deployments are
//! named by clients and only known then; everything else is atomics.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::limits::Which;
use crate::tokens::usage::{Kind, Source, Spent};

/// Token series kept at most (deployments times subscriptions times backends); past this, new
/// deployments are counted under `deployment="(other)"`.
const MAX_TOKEN_SERIES: usize = 10_000;

/// The headroom a backend's answer reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Headroom {
    pub tokens: Option<i64>,
    pub requests: Option<i64>,
}

/// Tokens by kind, reported then estimated.
type TokenCounts = [[u64; 4]; 2];

/// By (subscription, backend) name ("-": none), then by deployment.
type TokenSeries = HashMap<(Arc<str>, Arc<str>), HashMap<Box<str>, TokenCounts>>;

/// Status codes 100..=599, plus slot 0 for "no answer" (unreachable, timed out).
const CODES: usize = 501;
/// Upper bounds, in seconds, of the response-time histogram buckets; the last bucket is +Inf.
const BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

fn slot(code: Option<u16>) -> usize {
    match code {
        Some(code @ 100..=599) => usize::from(code) - 99,
        _ => 0,
    }
}

fn code_of(slot: usize) -> String {
    if slot == 0 {
        "none".into()
    } else {
        (slot + 99).to_string()
    }
}

struct Histogram {
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_micros: AtomicU64::new(0),
        }
    }

    fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, count) in self.buckets.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let le = BUCKETS
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

/// One backend's counters. They outlive a reload that keeps the backend (the new
/// configuration's [`Metrics`] shares them), so counters never go back.
pub struct BackendCounters {
    name: Arc<str>,
    label: String,
    calls: Box<[AtomicU64]>,
    response_time: Histogram,
    handed_on: AtomicU64,
    /// Answers whose body the backend cut off half-way.
    streams_cut: AtomicU64,
    /// Last reported headroom; -1 until a backend reports it.
    remaining_tokens: AtomicI64,
    remaining_requests: AtomicI64,
    /// The last minute's calls, for the status page.
    pub recent: crate::status::recent::Recent,
    /// Calls sent and not yet answered to their end.
    in_flight: AtomicI64,
    /// Realtime sessions open on it (each is among the calls in flight too).
    sessions: AtomicI64,
}

/// One subscription's counters, shared across reloads as a backend's are.
struct SubscriptionCounters {
    name: Arc<str>,
    /// By status code slot.
    requests: Box<[AtomicU64]>,
    /// By window, as in [`WINDOWS`].
    refused: [AtomicU64; WINDOWS.len()],
}

impl SubscriptionCounters {
    fn new(name: &str) -> SubscriptionCounters {
        SubscriptionCounters {
            name: name.into(),
            requests: zeros(CODES),
            refused: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// What is counted for the gateway as a whole, whatever its configuration.
struct Totals {
    started: Instant,
    /// Requests of no identified subscription.
    anonymous: SubscriptionCounters,
    tokens: Mutex<TokenSeries>,
    /// Deployments in `tokens`, all told.
    token_series: std::sync::atomic::AtomicUsize,
    /// By [`ObjectOutcome`].
    object_calls: [AtomicU64; ObjectOutcome::ALL.len()],
    /// Reloads of the configuration, applied and refused.
    reloads: [AtomicU64; 2],
}

/// The counters of one configuration: its subscriptions' and backends', by the indexes the
/// gateway gives them, and the totals.
pub struct Metrics {
    subscriptions: Vec<Arc<SubscriptionCounters>>,
    backends: Vec<Arc<BackendCounters>>,
    totals: Arc<Totals>,
}

impl crate::balance::Loads for Metrics {
    fn in_flight(&self, index: usize) -> u64 {
        self.backends
            .get(index)
            .map_or(0, |b| b.in_flight().unsigned_abs())
    }
}

/// Holds one call's place among a backend's calls in flight until dropped.
pub struct InFlight(Arc<BackendCounters>);

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InFlight({})", self.0.name)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Holds one realtime session's place among a backend's open sessions until dropped.
pub struct OpenSession(Arc<BackendCounters>);

impl Drop for OpenSession {
    fn drop(&mut self) {
        self.0.sessions.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What became of a reload of the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadOutcome {
    Applied,
    Refused,
}

/// What the gateway did with a call that names a stored object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectOutcome {
    /// Sent to the backend that holds the object.
    Pinned,
    /// Refused 404: another subscription's object, or one the directory never saw.
    Refused,
    /// Refused 400: the objects it names are on a backend that cannot take the call.
    Elsewhere,
    /// Answered 503: the backend that holds the object rests or could not be reached.
    HolderUnavailable,
}

impl ObjectOutcome {
    const ALL: [ObjectOutcome; 4] = [
        ObjectOutcome::Pinned,
        ObjectOutcome::Refused,
        ObjectOutcome::Elsewhere,
        ObjectOutcome::HolderUnavailable,
    ];

    fn as_str(self) -> &'static str {
        match self {
            ObjectOutcome::Pinned => "pinned",
            ObjectOutcome::Refused => "refused",
            ObjectOutcome::Elsewhere => "elsewhere",
            ObjectOutcome::HolderUnavailable => "holder_unavailable",
        }
    }
}

fn zeros(n: usize) -> Box<[AtomicU64]> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

/// A label value as Prometheus wants it quoted.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

const WINDOWS: [Which; 3] = [
    Which::TokensPerMinute,
    Which::RequestsPerMinute,
    Which::TokensPerDay,
];

fn backend_counters(name: &str) -> BackendCounters {
    BackendCounters {
        name: name.into(),
        label: escape(name),
        calls: zeros(CODES),
        response_time: Histogram::new(),
        handed_on: AtomicU64::new(0),
        streams_cut: AtomicU64::new(0),
        sessions: AtomicI64::new(0),
        remaining_tokens: AtomicI64::new(-1),
        remaining_requests: AtomicI64::new(-1),
        recent: crate::status::recent::Recent::default(),
        in_flight: AtomicI64::new(0),
    }
}

impl BackendCounters {
    /// Calls sent and not yet answered to their end.
    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed).max(0)
    }

    /// Realtime sessions open on it now.
    pub fn sessions(&self) -> i64 {
        self.sessions.load(Ordering::Relaxed).max(0)
    }

    /// The last `x-ratelimit-remaining-tokens` and `-requests` it reported.
    pub fn remaining(&self) -> Headroom {
        let read = |n: &AtomicI64| Some(n.load(Ordering::Relaxed)).filter(|n| *n >= 0);
        Headroom {
            tokens: read(&self.remaining_tokens),
            requests: read(&self.remaining_requests),
        }
    }
}

impl Metrics {
    /// `subscriptions` and `backends` are names, in the order the gateway indexes them.
    pub fn new<'a>(
        subscriptions: impl IntoIterator<Item = &'a str>,
        backends: impl IntoIterator<Item = &'a str>,
    ) -> Metrics {
        let totals = Arc::new(Totals {
            started: Instant::now(),
            anonymous: SubscriptionCounters::new("-"),
            tokens: Mutex::new(HashMap::new()),
            token_series: std::sync::atomic::AtomicUsize::new(0),
            object_calls: std::array::from_fn(|_| AtomicU64::new(0)),
            reloads: std::array::from_fn(|_| AtomicU64::new(0)),
        });
        Metrics::with_totals(totals, subscriptions, backends, |_| None, |_| None)
    }

    /// The metrics of a reloaded configuration: the subscriptions and backends it keeps, by
    /// name, go on with their counters; those it adds start at zero.
    pub fn renewed<'a>(
        &self,
        subscriptions: impl IntoIterator<Item = &'a str>,
        backends: impl IntoIterator<Item = &'a str>,
    ) -> Metrics {
        Metrics::with_totals(
            self.totals.clone(),
            subscriptions,
            backends,
            |name| {
                self.subscriptions
                    .iter()
                    .find(|s| &*s.name == name)
                    .cloned()
            },
            |name| self.backends.iter().find(|b| &*b.name == name).cloned(),
        )
    }

    fn with_totals<'a>(
        totals: Arc<Totals>,
        subscriptions: impl IntoIterator<Item = &'a str>,
        backends: impl IntoIterator<Item = &'a str>,
        kept_subscription: impl Fn(&str) -> Option<Arc<SubscriptionCounters>>,
        kept_backend: impl Fn(&str) -> Option<Arc<BackendCounters>>,
    ) -> Metrics {
        Metrics {
            subscriptions: subscriptions
                .into_iter()
                .map(|name| {
                    kept_subscription(name)
                        .unwrap_or_else(|| Arc::new(SubscriptionCounters::new(name)))
                })
                .collect(),
            backends: backends
                .into_iter()
                .map(|name| kept_backend(name).unwrap_or_else(|| Arc::new(backend_counters(name))))
                .collect(),
            totals,
        }
    }

    fn subscription(&self, subscription: Option<usize>) -> &SubscriptionCounters {
        subscription
            .and_then(|i| self.subscriptions.get(i))
            .map_or(&self.totals.anonymous, |s| s)
    }

    /// Backend `index`'s counters.
    pub fn backend(&self, index: usize) -> Option<&BackendCounters> {
        self.backends.get(index).map(|b| &**b)
    }

    /// A request answered with `status`; `subscription` is the index of the one that
    /// authenticated it.
    pub fn request(&self, subscription: Option<usize>, status: u16) {
        self.subscription(subscription).requests[slot(Some(status))]
            .fetch_add(1, Ordering::Relaxed);
    }

    /// A call is sent to backend `index`: it counts among the backend's calls in flight until
    /// the guard is dropped.
    pub fn sending(&self, index: usize) -> Option<InFlight> {
        let backend = self.backends.get(index)?;
        backend.in_flight.fetch_add(1, Ordering::Relaxed);
        Some(InFlight(backend.clone()))
    }

    /// A realtime session opens on backend `index`: it counts among the backend's open sessions
    /// until the guard is dropped.
    pub fn session(&self, index: usize) -> Option<OpenSession> {
        let backend = self.backends.get(index)?;
        backend.sessions.fetch_add(1, Ordering::Relaxed);
        Some(OpenSession(backend.clone()))
    }

    /// A call to backend `index` that answered `status` (`None`: no answer) after `took`,
    /// reporting `headroom`.
    pub fn backend_call(
        &self,
        index: usize,
        status: Option<u16>,
        took: Duration,
        headroom: Headroom,
    ) {
        let Some(backend) = self.backends.get(index) else {
            return;
        };
        backend.calls[slot(status)].fetch_add(1, Ordering::Relaxed);
        backend.response_time.observe(took);
        let failed = status.is_none_or(|s| s == 429 || s >= 500);
        backend.recent.record(took, failed);
        if let Some(n) = headroom.tokens {
            backend.remaining_tokens.store(n, Ordering::Relaxed);
        }
        if let Some(n) = headroom.requests {
            backend.remaining_requests.store(n, Ordering::Relaxed);
        }
    }

    /// Time since the gateway started.
    pub fn uptime(&self) -> Duration {
        self.totals.started.elapsed()
    }

    /// A reload of the configuration, and what became of it.
    pub fn reload(&self, outcome: ReloadOutcome) {
        self.totals.reloads[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A call of `subscription` to `deployment` on `backend` spent this.
    pub fn tokens(
        &self,
        subscription: Option<usize>,
        deployment: &str,
        backend: Option<usize>,
        spent: &Spent,
    ) {
        let key = (
            self.subscription(subscription).name.clone(),
            backend
                .and_then(|i| self.backends.get(i))
                .map_or_else(|| self.totals.anonymous.name.clone(), |b| b.name.clone()),
        );
        let source = match spent.source {
            Source::Reported => 0,
            Source::Estimated => 1,
        };
        let mut tokens = self
            .totals
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let by_deployment = tokens.entry(key).or_default();
        let counts = match by_deployment.get_mut(deployment) {
            Some(counts) => counts,
            None => {
                let series = self.totals.token_series.fetch_add(1, Ordering::Relaxed);
                let name = if series < MAX_TOKEN_SERIES {
                    deployment
                } else {
                    "(other)"
                };
                by_deployment.entry(name.into()).or_default()
            }
        };
        for (i, kind) in Kind::ALL.iter().enumerate() {
            counts[source][i] += spent.usage.of(*kind);
        }
    }

    /// A call of `subscription` refused by its limit `which`.
    pub fn refused(&self, subscription: usize, which: Which) {
        let column = WINDOWS.iter().position(|w| *w == which).unwrap_or(0);
        if let Some(s) = self.subscriptions.get(subscription) {
            s.refused[column].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A call that named a stored object, and what became of it.
    pub fn object_call(&self, outcome: ObjectOutcome) {
        let i = ObjectOutcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(0);
        self.totals.object_calls[i].fetch_add(1, Ordering::Relaxed);
    }

    /// A call that backend `index` refused or could not take, handed on to another backend.
    pub fn handed_on(&self, index: usize) {
        if let Some(backend) = self.backends.get(index) {
            backend.handed_on.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An answer of backend `index` whose body the backend cut off before its end.
    pub fn stream_cut(&self, index: Option<usize>) {
        if let Some(backend) = index.and_then(|i| self.backends.get(i)) {
            backend.streams_cut.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The metrics as Prometheus text; `shared`: whether shared state answers, when
    /// configured; `objects`: the object directory's size by kind.
    pub fn render(
        &self,
        shared: Option<bool>,
        objects: impl Iterator<Item = (&'static str, u64)>,
    ) -> String {
        let mut out = String::with_capacity(4096);
        let help = |out: &mut String, name: &str, kind: &str, text: &str| {
            let _ = writeln!(out, "# HELP {name} {text}\n# TYPE {name} {kind}");
        };

        let name = "aoai_gateway_requests_total";
        help(
            &mut out,
            name,
            "counter",
            "Requests answered, by subscription (\"-\": none identified) and status code.",
        );
        let rows = self.subscriptions.iter().map(|s| &**s);
        for row in rows.chain([&self.totals.anonymous]) {
            let subscription = &*row.name;
            for (slot, count) in row.requests.iter().enumerate() {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    let _ = writeln!(
                        out,
                        "{name}{{subscription=\"{}\",code=\"{}\"}} {count}",
                        escape(subscription),
                        code_of(slot)
                    );
                }
            }
        }

        let name = "aoai_gateway_backend_calls_total";
        help(
            &mut out,
            name,
            "counter",
            "Calls sent to each backend, by the status it answered (\"none\": no answer).",
        );
        for b in &self.backends {
            for (slot, count) in b.calls.iter().enumerate() {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    let _ = writeln!(
                        out,
                        "{name}{{backend=\"{}\",code=\"{}\"}} {count}",
                        b.label,
                        code_of(slot)
                    );
                }
            }
        }

        let name = "aoai_gateway_backend_response_seconds";
        help(
            &mut out,
            name,
            "histogram",
            "Time from sending a call to a backend to its response headers (or to giving up).",
        );
        for b in &self.backends {
            b.response_time
                .render(&mut out, name, &format!("backend=\"{}\"", b.label));
        }

        let name = "aoai_gateway_backend_handed_on_total";
        help(
            &mut out,
            name,
            "counter",
            "Calls a backend refused (429, 5xx) or could not take, handed on to another backend.",
        );
        for b in &self.backends {
            let count = b.handed_on.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}{{backend=\"{}\"}} {count}", b.label);
        }

        let name = "aoai_gateway_backend_streams_cut_total";
        help(
            &mut out,
            name,
            "counter",
            "Answers whose body the backend cut off half-way (connection closed or failed); the client's response was failed in turn.",
        );
        for b in &self.backends {
            let count = b.streams_cut.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}{{backend=\"{}\"}} {count}", b.label);
        }

        for (name, text, pick) in [
            (
                "aoai_gateway_backend_ratelimit_remaining_tokens",
                "The backend's x-ratelimit-remaining-tokens in its latest answer that had it.",
                (|b: &BackendCounters| &b.remaining_tokens) as fn(&BackendCounters) -> &AtomicI64,
            ),
            (
                "aoai_gateway_backend_ratelimit_remaining_requests",
                "The backend's x-ratelimit-remaining-requests in its latest answer that had it.",
                |b: &BackendCounters| &b.remaining_requests,
            ),
        ] {
            help(&mut out, name, "gauge", text);
            for b in &self.backends {
                let value = pick(b).load(Ordering::Relaxed);
                if value >= 0 {
                    let _ = writeln!(out, "{name}{{backend=\"{}\"}} {value}", b.label);
                }
            }
        }

        let name = "aoai_gateway_realtime_sessions";
        help(
            &mut out,
            name,
            "gauge",
            "Realtime WebSocket sessions open, by the backend that holds each.",
        );
        for b in &self.backends {
            let open = b.sessions.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}{{backend=\"{}\"}} {open}", b.label);
        }

        self.render_tokens(&mut out, help);

        let name = "aoai_gateway_limit_refusals_total";
        help(
            &mut out,
            name,
            "counter",
            "Calls refused with 429 by a subscription's own limit, by subscription and limit.",
        );
        for s in &self.subscriptions {
            for (which, count) in WINDOWS.iter().zip(&s.refused) {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    let _ = writeln!(
                        out,
                        "{name}{{subscription=\"{}\",limit=\"{}\"}} {count}",
                        escape(&s.name),
                        which.as_str()
                    );
                }
            }
        }

        let name = "aoai_gateway_stored_objects";
        help(
            &mut out,
            name,
            "gauge",
            "Stored objects in the gateway's directory, by kind (counted every 30 s, and as this replica records them).",
        );
        for (kind, size) in objects {
            let _ = writeln!(out, "{name}{{kind=\"{kind}\"}} {size}");
        }

        let name = "aoai_gateway_object_calls_total";
        help(
            &mut out,
            name,
            "counter",
            "Calls that named a stored object the directory knows, by outcome: pinned to its backend, refused 404 (not the caller's), refused 400 (its backend cannot take the call), or 503 (its backend unavailable).",
        );
        for (outcome, count) in ObjectOutcome::ALL.iter().zip(&self.totals.object_calls) {
            let _ = writeln!(
                out,
                "{name}{{outcome=\"{}\"}} {}",
                outcome.as_str(),
                count.load(Ordering::Relaxed)
            );
        }

        let name = "aoai_gateway_log_lines_dropped_total";
        help(
            &mut out,
            name,
            "counter",
            "Log lines dropped because the log writer fell behind.",
        );
        let _ = writeln!(out, "{name} {}", crate::logging::dropped_lines());

        if let Some(up) = shared {
            let name = "aoai_gateway_state_store_up";
            help(
                &mut out,
                name,
                "gauge",
                "Whether the state replicas share (Redis) answers: 1, or 0 while each replica uses its own.",
            );
            let _ = writeln!(out, "{name} {}", u8::from(up));
        }

        let name = "aoai_gateway_uptime_seconds";
        help(
            &mut out,
            name,
            "gauge",
            "Seconds since the gateway started.",
        );
        let _ = writeln!(out, "{name} {}", self.totals.started.elapsed().as_secs());

        let name = "aoai_gateway_config_reloads_total";
        help(
            &mut out,
            name,
            "counter",
            "Reloads of the configuration (SIGHUP, or a change of its files), by outcome: applied, or refused (the configuration in use stays).",
        );
        for (outcome, count) in ["applied", "refused"].iter().zip(&self.totals.reloads) {
            let _ = writeln!(
                out,
                "{name}{{outcome=\"{outcome}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        out
    }
}

impl Metrics {
    fn render_tokens(&self, out: &mut String, help: impl Fn(&mut String, &str, &str, &str)) {
        let name = "aoai_gateway_tokens_total";
        help(
            out,
            name,
            "counter",
            "Tokens spent, by subscription, deployment, backend, kind (prompt, completion, and of those reasoning and cached) and source (reported by the backend, or estimated).",
        );
        let tokens = self
            .totals
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut series: Vec<_> = tokens
            .iter()
            .flat_map(|((s, b), by)| by.iter().map(move |(d, c)| ((&**s, &**b, d), c)))
            .collect();
        series.sort_by(|a, b| a.0.cmp(&b.0));
        for ((subscription, backend, deployment), counts) in series {
            let backend = escape(backend);
            for (source, by_kind) in [Source::Reported, Source::Estimated].iter().zip(counts) {
                for (kind, count) in Kind::ALL.iter().zip(by_kind) {
                    if *count > 0 {
                        let _ = writeln!(
                            out,
                            "{name}{{subscription=\"{}\",deployment=\"{}\",backend=\"{backend}\",kind=\"{}\",source=\"{}\"}} {count}",
                            escape(subscription),
                            escape(deployment),
                            kind.as_str(),
                            source.as_str()
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::usage::Usage;

    #[test]
    fn counts_render_as_prometheus_text() {
        let m = Metrics::new(["team-a", "team \"b\""], ["eastus", "westus"]);
        m.request(Some(0), 200);
        m.request(Some(0), 200);
        m.request(Some(1), 429);
        m.request(None, 401);
        let headroom = Headroom {
            tokens: Some(1200),
            requests: None,
        };
        m.backend_call(0, Some(200), Duration::from_millis(30), headroom);
        m.backend_call(1, None, Duration::from_secs(90), Headroom::default());
        m.handed_on(1);
        let usage = Usage {
            prompt: 20,
            completion: 900,
            total: 920,
            reasoning: 800,
            cached: 0,
        };
        m.tokens(
            Some(0),
            "o1",
            Some(1),
            &Spent {
                usage,
                source: Source::Reported,
            },
        );
        m.refused(1, Which::TokensPerMinute);
        let text = m.render(Some(false), std::iter::empty());
        for line in [
            "aoai_gateway_requests_total{subscription=\"team-a\",code=\"200\"} 2",
            "aoai_gateway_requests_total{subscription=\"team \\\"b\\\"\",code=\"429\"} 1",
            "aoai_gateway_requests_total{subscription=\"-\",code=\"401\"} 1",
            "aoai_gateway_backend_calls_total{backend=\"eastus\",code=\"200\"} 1",
            "aoai_gateway_backend_calls_total{backend=\"westus\",code=\"none\"} 1",
            "aoai_gateway_backend_response_seconds_bucket{backend=\"eastus\",le=\"0.025\"} 0",
            "aoai_gateway_backend_response_seconds_bucket{backend=\"eastus\",le=\"0.05\"} 1",
            "aoai_gateway_backend_response_seconds_bucket{backend=\"westus\",le=\"60\"} 0",
            "aoai_gateway_backend_response_seconds_bucket{backend=\"westus\",le=\"+Inf\"} 1",
            "aoai_gateway_backend_response_seconds_sum{backend=\"eastus\"} 0.03",
            "aoai_gateway_backend_response_seconds_count{backend=\"westus\"} 1",
            "aoai_gateway_backend_handed_on_total{backend=\"westus\"} 1",
            "aoai_gateway_backend_ratelimit_remaining_tokens{backend=\"eastus\"} 1200",
            "# TYPE aoai_gateway_backend_response_seconds histogram",
            "aoai_gateway_tokens_total{subscription=\"team-a\",deployment=\"o1\",backend=\"westus\",kind=\"prompt\",source=\"reported\"} 20",
            "aoai_gateway_tokens_total{subscription=\"team-a\",deployment=\"o1\",backend=\"westus\",kind=\"reasoning\",source=\"reported\"} 800",
            "aoai_gateway_limit_refusals_total{subscription=\"team \\\"b\\\"\",limit=\"tokens_per_minute\"} 1",
            "aoai_gateway_log_lines_dropped_total 0",
            "aoai_gateway_state_store_up 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
        assert!(!text.contains("remaining_tokens{backend=\"westus\"}"));
        assert!(!text.contains("code=\"500\""));
        assert!(
            !text.contains("kind=\"cached\""),
            "zero counts are left out"
        );
    }

    #[test]
    fn a_reload_keeps_the_counters_of_what_it_keeps() {
        let old = Metrics::new(["team-a", "team-b"], ["eastus", "westus"]);
        old.request(Some(1), 200);
        old.backend_call(0, Some(200), Duration::from_millis(5), Headroom::default());
        let in_flight = old.sending(0);
        old.reload(ReloadOutcome::Refused);
        // team-b and eastus are kept, in other places; westus goes, centralus comes.
        let new = old.renewed(["team-b"], ["centralus", "eastus"]);
        assert_eq!(new.backend(1).map(BackendCounters::in_flight), Some(1));
        drop(in_flight);
        assert_eq!(new.backend(1).map(BackendCounters::in_flight), Some(0));
        new.request(Some(0), 200);
        let text = new.render(None, std::iter::empty());
        for line in [
            "aoai_gateway_requests_total{subscription=\"team-b\",code=\"200\"} 2",
            "aoai_gateway_backend_calls_total{backend=\"eastus\",code=\"200\"} 1",
            "aoai_gateway_config_reloads_total{outcome=\"refused\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
        assert!(!text.contains("westus") && !text.contains("team-a"));
    }
}
