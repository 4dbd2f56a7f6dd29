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
mod budget;
pub mod call;
pub mod docs;
pub mod error;
mod handler;
pub mod inbound;
mod pages;
pub mod upstream;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::{App, HttpServer, web};
use aoai_runtime::schema::Policy;

use crate::balance::Balancer;
use crate::config::{Failover, MetricsConfig, Settings, UsageSettings};
use crate::limits::Limiter;
use crate::metrics::Metrics;
use crate::objects::StoredObjects;
use crate::objects::directory::Kept;
use crate::state::shared::Shared;
use answer::access::CountedRuns;
use docs::Docs;
use inbound::auth::Auth;
use inbound::router::Router;

/// Everything the handler needs, shared by all workers.
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
    pub counted_runs: CountedRuns,
    /// State shared with other replicas through Redis, when configured.
    pub shared: Option<Arc<Shared>>,
    /// The directory of stored objects, and whose each is.
    pub objects: StoredObjects,
    pub metrics: Metrics,
    pub metrics_page: MetricsConfig,
    pub workers: Option<usize>,
    pub shutdown_drain: Duration,
    pub shutdown_grace: Duration,
    /// Set once the gateway has been told to stop: `/readyz` answers 503 from then on.
    draining: AtomicBool,
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
        Ok(Gateway {
            metrics,
            objects,
            shared,
            limiter: Limiter::new(limits),
            counted_runs: CountedRuns::default(),
            usage: settings.usage,
            metrics_page: settings.metrics,
            docs: Docs::new(&settings.docs, &settings.base_path),
            router: Router::new(crate::generated::API_VERSIONS),
            auth: Auth::new(settings.auth, settings.subscriptions, settings.callers),
            balancer: Balancer::new(
                settings.backends,
                &settings.failover,
                settings.response_timeout,
            ),
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
            draining: AtomicBool::new(false),
        })
    }

    /// Whether the gateway is shutting down.
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
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

/// Starts serving on an already bound listener; call it inside the actix system that will run
/// the server. With `signals`, SIGTERM and Ctrl-C stop the gateway gracefully (see
/// [`stop_on_signal`]); without, the caller stops it (tests).
pub fn start(
    gateway: Arc<Gateway>,
    listener: TcpListener,
    signals: bool,
) -> std::io::Result<(actix_web::dev::Server, SocketAddr)> {
    let addr = listener.local_addr()?;
    if let Some(shared) = &gateway.shared {
        shared.start(Arc::downgrade(&gateway))?;
    }
    let kept = gateway.objects.describe();
    match gateway.objects.directory.kept() {
        Kept::Memory => tracing::warn!("{kept}"),
        _ => tracing::info!("{kept}"),
    }
    crate::objects::sweep_every_while(Arc::downgrade(&gateway))?;
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
    let workers = gateway.workers;
    let grace = gateway.shutdown_grace;
    let head_timeout = gateway.client_head_timeout;
    let shared = web::Data::from(gateway);
    let draining = shared.clone();
    let mut server = HttpServer::new(move || {
        let client = upstream::forward::client(shared.connect_timeout, shared.response_timeout);
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
async fn stop_on_signal(gw: web::Data<Gateway>, server: actix_web::dev::ServerHandle) {
    use actix_web::rt::signal::unix::{SignalKind, signal};
    let Ok(mut terminate) = signal(SignalKind::terminate()) else {
        tracing::warn!("cannot listen for SIGTERM; stop the gateway with SIGKILL");
        return;
    };
    wait_for_signal(&mut terminate).await;
    gw.draining.store(true, Ordering::Relaxed);
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
