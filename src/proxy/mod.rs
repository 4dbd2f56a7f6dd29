//! The proxy: the HTTP service that serves every generated route, a call's path through it, and
//! what every call shares ([`Gateway`]). This module starts and stops the server.
//!
//! The folders follow a call's phases ([`handler`] runs them in order):
//! - [`pages`] (and [`docs`]): the gateway's own pages, answered first;
//! - [`inbound`]: what the request calls, who calls, and whether it is what the spec says;
//! - [`body`]: what a checked body says that the gateway acts on, and the edits a backend needs;
//! - [`budget`]: the call's limits, reserved with its first backend's turn;
//! - [`upstream`]: the failover loop and one attempt with awc;
//! - [`answer`]: the answer streamed back, then accounted for and recorded.
//!
//! [`call`] is the call's context (its id and [`Trace`](call::Trace)), [`error`] every way a
//! request can fail, in Azure's error shape.

pub mod answer;
pub mod body;
pub(crate) mod budget;
pub mod call;
pub mod docs;
pub mod error;
mod handler;
pub mod inbound;
mod pages;
pub mod upstream;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::{App, HttpServer, web};
use aoai_runtime::schema::Policy;

use crate::balance::Balancer;
use crate::config::{
    BackendCredential, Failover, MetricsConfig, ReloadConfig, Settings, StatusConfig, UsageSettings,
};
use crate::limits::Limiter;
use crate::live::Live;
use crate::metrics::Metrics;
use crate::objects::StoredObjects;
use crate::objects::directory::Kept;
use crate::state::shared::Shared;
use crate::traces::Traces;
use answer::access::CountedRuns;
use docs::Docs;
use inbound::auth::Auth;
use inbound::router::Router;

/// Everything the handler needs, shared by all workers: one configuration's gateway. A reload
/// builds another ([`Gateway::renewed`]) and [`Live`] swaps it in.
pub struct Gateway {
    pub router: Router,
    pub auth: Auth,
    pub balancer: Balancer,
    pub base_path: String,
    pub max_body_bytes: usize,
    pub validation: Policy,
    /// `None` when the docs are switched off.
    pub docs: Option<Docs>,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub client_head_timeout: Duration,
    pub client_body_timeout: Duration,
    pub failover: Failover,
    pub usage: UsageSettings,
    pub limiter: Limiter,
    /// Runs whose usage has been counted (see `access`).
    pub counted_runs: Arc<CountedRuns>,
    /// State shared with other replicas through Redis, when configured.
    pub shared: Option<Arc<Shared>>,
    /// The directory of stored objects, and whose each is.
    pub objects: StoredObjects,
    pub metrics: Metrics,
    pub metrics_page: MetricsConfig,
    pub status_page: StatusConfig,
    pub reload: ReloadConfig,
    /// The config file and the secret files it names, for `reload.watch`.
    pub watched: Vec<PathBuf>,
    /// What only a restart changes, as the process started with it.
    pub start_only: StartOnly,
    /// The tracer, when `otel.endpoint` is set (read at start-up only).
    pub traces: Option<Arc<Traces>>,
    pub workers: Option<usize>,
    pub shutdown_drain: Duration,
    pub shutdown_grace: Duration,
    /// Set once the gateway has been told to stop: `/readyz` answers 503 from then on. Shared
    /// by every configuration the process runs.
    draining: Arc<Draining>,
}

/// Whether the gateway is stopping, and a wake-up for those who wait for it to.
#[derive(Default)]
struct Draining {
    begun: AtomicBool,
    told: tokio::sync::Notify,
}

/// The settings read once, when the process starts; a reload that changes them says they wait
/// for a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct StartOnly {
    listen: std::net::SocketAddr,
    workers: Option<usize>,
    /// Redis URL and key prefix.
    state: Option<(String, String)>,
    objects_path: Option<PathBuf>,
    log: (crate::config::LogFormat, String),
    otel: Option<crate::config::OtelSettings>,
    client_head_timeout: Duration,
    shutdown: (Duration, Duration),
}

impl StartOnly {
    fn of(settings: &Settings) -> StartOnly {
        StartOnly {
            listen: settings.listen,
            workers: settings.workers,
            state: settings
                .state
                .as_ref()
                .map(|s| (s.redis_url.clone(), s.key_prefix.clone())),
            objects_path: settings.objects.path.clone(),
            log: (settings.log.format, settings.log.level.clone()),
            otel: settings.otel.clone(),
            client_head_timeout: settings.client_head_timeout,
            shutdown: (settings.shutdown_drain, settings.shutdown_grace),
        }
    }

    /// The keys `settings` changes among these.
    pub fn changed(&self, settings: &Settings) -> Vec<&'static str> {
        let new = StartOnly::of(settings);
        [
            ("listen", self.listen != new.listen),
            ("workers", self.workers != new.workers),
            ("state", self.state != new.state),
            ("state.path", self.objects_path != new.objects_path),
            ("log", self.log != new.log),
            ("otel", self.otel != new.otel),
            (
                "timeouts.client_head_ms",
                self.client_head_timeout != new.client_head_timeout,
            ),
            ("shutdown", self.shutdown != new.shutdown),
        ]
        .into_iter()
        .filter_map(|(key, changed)| changed.then_some(key))
        .collect()
    }
}

impl Gateway {
    /// A gateway for checked settings; it fails only if the object directory's file cannot be
    /// opened (another process holds it).
    pub fn new(settings: Settings) -> Result<Gateway, String> {
        let metrics = Metrics::new(
            settings.subscriptions.iter().map(|s| s.name.as_str()),
            settings.backends.iter().map(|b| b.name.as_str()),
        );
        let limits = settings
            .subscriptions
            .iter()
            .map(|s| s.limits.clone())
            .collect();
        let shared = settings.state.as_ref().and_then(|state| {
            Shared::new(state)
                .map_err(|e| tracing::error!("shared state: {e}; each replica keeps its own"))
                .ok()
                .map(Arc::new)
        });
        let objects = StoredObjects::new(
            &settings.objects,
            shared.clone(),
            crate::generated::API_VERSIONS,
        )?;
        let start_only = StartOnly::of(&settings);
        let traces = match &settings.otel {
            Some(otel) => Some(Arc::new(Traces::start(otel)?)),
            None => None,
        };
        Ok(Gateway::assemble(
            settings,
            Carried {
                metrics,
                limiter: Limiter::new(limits),
                balancer: None,
                objects,
                shared,
                counted_runs: Arc::default(),
                start_only,
                traces,
                draining: Arc::default(),
            },
        ))
    }

    /// The gateway of a reloaded configuration, keeping what `old` knows: each backend it keeps
    /// (by name) goes on with its rests, circuit, headroom and counters; each subscription it
    /// keeps, with its windows (under the new limits) and counters; an Entra ID credential of
    /// the same identity starts with the token in use; an issuer's keys already fetched are not
    /// fetched again; the object directory and the shared state are the same. Credentials and
    /// issuers that are new get the identity thread's care before the gateway is returned.
    pub fn renewed(mut settings: Settings, old: &Gateway) -> Result<Gateway, String> {
        let old_sources = old.balancer.token_sources();
        for backend in &settings.backends {
            if let BackendCredential::Entra(source) = &backend.credential {
                for previous in old_sources.iter().filter_map(std::sync::Weak::upgrade) {
                    source.seed_from(&previous);
                }
            }
        }
        let mut new_key_sets = Vec::new();
        for issuer in &mut settings.callers {
            let kept = old
                .auth
                .issuers()
                .iter()
                .find(|o| o.keys.url == issuer.keys.url);
            match kept {
                Some(o) => issuer.keys = o.keys.clone(),
                None => new_key_sets.push(issuer.keys.clone()),
            }
        }
        let metrics = old.metrics.renewed(
            settings.subscriptions.iter().map(|s| s.name.as_str()),
            settings.backends.iter().map(|b| b.name.as_str()),
        );
        let limiter = Limiter::renewed(
            settings
                .subscriptions
                .iter()
                .map(|s| s.limits.clone())
                .collect(),
            |i| {
                let name = &settings.subscriptions[i].name;
                old.auth
                    .index_of(name)
                    .and_then(|o| old.limiter.windows_of(o))
            },
        );
        let kept = Carried {
            metrics,
            limiter,
            balancer: Some(&old.balancer),
            objects: old.objects.renewed(&settings.objects),
            shared: old.shared.clone(),
            counted_runs: old.counted_runs.clone(),
            start_only: old.start_only.clone(),
            traces: old.traces.clone(),
            draining: old.draining.clone(),
        };
        let gateway = Gateway::assemble(settings, kept);
        crate::identity::start(gateway.balancer.token_sources(), new_key_sets)?;
        Ok(gateway)
    }

    fn assemble(settings: Settings, kept: Carried<'_>) -> Gateway {
        let mut balancer = Balancer::new(
            settings.backends,
            &settings.failover,
            settings.balancing,
            settings.response_timeout,
        );
        if let Some(old) = kept.balancer {
            balancer.keep_state_of(old);
        }
        Gateway {
            balancer,
            metrics: kept.metrics,
            objects: kept.objects,
            shared: kept.shared,
            limiter: kept.limiter,
            counted_runs: kept.counted_runs,
            start_only: kept.start_only,
            traces: kept.traces,
            draining: kept.draining,
            usage: settings.usage,
            metrics_page: settings.metrics,
            status_page: settings.status,
            reload: settings.reload,
            watched: settings.watched,
            docs: Docs::new(&settings.docs, &settings.base_path),
            router: Router::new(crate::generated::API_VERSIONS),
            auth: Auth::new(settings.auth, settings.subscriptions, settings.callers),
            base_path: settings.base_path,
            max_body_bytes: settings.max_body_bytes,
            validation: settings.validation,
            connect_timeout: settings.connect_timeout,
            response_timeout: settings.response_timeout,
            client_head_timeout: settings.client_head_timeout,
            client_body_timeout: settings.client_body_timeout,
            failover: settings.failover,
            workers: settings.workers,
            shutdown_drain: settings.shutdown_drain,
            shutdown_grace: settings.shutdown_grace,
        }
    }

    /// Whether the gateway is shutting down.
    pub fn draining(&self) -> bool {
        self.draining.begun.load(Ordering::Relaxed)
    }

    /// Completes once the gateway has been told to stop (at once if it has been): what a
    /// long-lived realtime session waits for, to close before the grace period ends.
    pub async fn drained(&self) {
        // Registered before the flag is read, so that a stop in between is not missed.
        let told = self.draining.told.notified();
        if self.draining() {
            return;
        }
        told.await;
    }

    /// Why the gateway is not ready to take calls, if it is not: it is stopping, or it refuses
    /// calls while its shared state does not answer.
    pub fn unready(&self) -> Option<&'static str> {
        if self.draining() {
            return Some("stopping");
        }
        self.shared
            .as_ref()
            .filter(|s| s.rejects() && !s.is_up())
            .map(|_| "shared state unreachable")
    }
}

/// What a gateway is built with besides its settings: made new at start, carried over by a
/// reload.
struct Carried<'a> {
    metrics: Metrics,
    limiter: Limiter,
    /// The balancer whose backends' state the new one keeps.
    balancer: Option<&'a Balancer>,
    objects: StoredObjects,
    shared: Option<Arc<Shared>>,
    counted_runs: Arc<CountedRuns>,
    start_only: StartOnly,
    traces: Option<Arc<Traces>>,
    draining: Arc<Draining>,
}

/// Starts serving on an already bound listener; call it inside the actix system that will run
/// the server. With `signals`, SIGTERM and Ctrl-C stop the gateway gracefully (see
/// [`stop_on_signal`]) and SIGHUP reloads its configuration; without, the caller stops it
/// (tests).
pub fn start(
    live: Arc<Live>,
    listener: TcpListener,
    signals: bool,
) -> std::io::Result<(actix_web::dev::Server, SocketAddr)> {
    let addr = listener.local_addr()?;
    let gateway = live.current();
    if let Some(shared) = &gateway.shared {
        shared.start(Arc::downgrade(&live))?;
    }
    let kept = gateway.objects.describe();
    match gateway.objects.directory.kept() {
        Kept::Memory => tracing::warn!("{kept}"),
        _ => tracing::info!("{kept}"),
    }
    crate::objects::sweep_every_while(Arc::downgrade(&live))?;
    crate::identity::start(
        gateway.balancer.token_sources(),
        gateway
            .auth
            .issuers()
            .iter()
            .map(|i| i.keys.clone())
            .collect(),
    )
    .map_err(std::io::Error::other)?;
    crate::live::reload::watch_while(Arc::downgrade(&live))?;
    let workers = gateway.workers;
    let grace = gateway.shutdown_grace;
    let head_timeout = gateway.client_head_timeout;
    let (connect_timeout, response_timeout) = (gateway.connect_timeout, gateway.response_timeout);
    drop(gateway);
    let weak = Arc::downgrade(&live);
    let shared = web::Data::from(live);
    let draining = shared.clone();
    let mut server = HttpServer::new(move || {
        let client = upstream::forward::client(connect_timeout, response_timeout);
        App::new()
            .app_data(shared.clone())
            .app_data(web::Data::new(client))
            .default_service(web::to(handler::handle))
    })
    .client_request_timeout(head_timeout)
    .tcp_nodelay(true);
    if let Some(n) = workers {
        server = server.workers(n);
    }
    let server = server
        .shutdown_timeout(grace.as_secs())
        // Signals are handled here rather than by actix, so that `/readyz` can say the gateway
        // is going away while the calls in flight finish.
        .disable_signals()
        .listen(listener)?
        .run();
    if signals {
        crate::live::reload::on_hangup(weak)?;
        actix_web::rt::spawn(stop_on_signal(draining, server.handle()));
    }
    Ok((server, addr))
}

async fn wait_for_signal(terminate: &mut actix_web::rt::signal::unix::Signal) {
    let interrupt = Box::pin(actix_web::rt::signal::ctrl_c());
    let terminated = Box::pin(terminate.recv());
    futures_util::future::select(interrupt, terminated).await;
}

/// On SIGTERM or Ctrl-C: `/readyz` answers 503 at once; for `shutdown.drain_s` calls are still
/// accepted, each connection closed after its answer; then no new connections are accepted and
/// calls and streams in flight have `shutdown.grace_s` to finish (actix closes idle connections
/// at once); then the server's future completes and the process exits 0. A second signal stops
/// at once.
async fn stop_on_signal(live: web::Data<Live>, server: actix_web::dev::ServerHandle) {
    use actix_web::rt::signal::unix::{SignalKind, signal};
    let Ok(mut terminate) = signal(SignalKind::terminate()) else {
        tracing::warn!("cannot listen for SIGTERM; stop the gateway with SIGKILL");
        return;
    };
    wait_for_signal(&mut terminate).await;
    let gw = live.current();
    gw.draining.begun.store(true, Ordering::Relaxed);
    gw.draining.told.notify_waiters();
    tracing::info!(
        "stopping: /readyz answers 503; accepting for {} s more, then calls in flight have {} s to finish",
        gw.shutdown_drain.as_secs(),
        gw.shutdown_grace.as_secs()
    );
    if !gw.shutdown_drain.is_zero() {
        let drained = Box::pin(actix_web::rt::time::sleep(gw.shutdown_drain));
        futures_util::future::select(drained, Box::pin(wait_for_signal(&mut terminate))).await;
    }
    let graceful = server.stop(true);
    let forced = async {
        wait_for_signal(&mut terminate).await;
        tracing::warn!("second signal: stopping now");
        server.stop(false).await;
    };
    futures_util::future::select(Box::pin(graceful), Box::pin(forced)).await;
}
