//! Reading the configuration again while the gateway runs: on SIGHUP, and when the file or a
//! secret file it names changes (`reload.watch`, checked every second, by content, so that a
//! Kubernetes mount's swap of its files counts and a touch does not).
//!
//! A reload reads the file and the environment and checks them as `check-config` does. A
//! configuration with any mistake is refused: the one in use stays, each mistake is logged, and
//! `aoai_gateway_config_reloads_total{outcome="refused"}` counts it. A valid one is built beside
//! the one in use, keeping what must survive ([`Gateway::renewed`]), and swapped in. Keys read
//! only at start-up (`listen`, `workers`, `state.*`, `log.*`, `otel.*`,
//! `timeouts.client_head_ms`, `shutdown.*`) keep their values until a restart, with a warning
//! naming them.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, Weak};
use std::time::Duration;

use super::{Attempt, Live};
use crate::limits::now_ms;
use crate::metrics::ReloadOutcome;
use crate::proxy::Gateway;

/// How often watched files are read for a change.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// Reads, checks and applies the configuration file again; what became of it is logged,
/// counted and kept for the status page. Blocks (a new Entra ID issuer's keys are fetched
/// before the configuration is applied): call it off the workers.
pub fn reload(live: &Live) -> Attempt {
    let _one = live
        .reloading
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let current = live.current();
    let attempt = match &live.config_path {
        None => Attempt {
            at_ms: now_ms(),
            applied: false,
            notes: vec!["the gateway was started without a configuration file".into()],
        },
        Some(path) => match renew(path, &current) {
            Ok((gateway, notes)) => {
                live.current.store(Arc::new(gateway));
                Attempt {
                    at_ms: now_ms(),
                    applied: true,
                    notes,
                }
            }
            Err(notes) => Attempt {
                at_ms: now_ms(),
                applied: false,
                notes,
            },
        },
    };
    if attempt.applied {
        tracing::info!("configuration reloaded");
        for note in &attempt.notes {
            tracing::warn!("reload: {note}");
        }
        current.metrics.reload(ReloadOutcome::Applied);
    } else {
        tracing::error!("reload refused; the configuration in use stays");
        for note in &attempt.notes {
            tracing::error!("reload refused: {note}");
        }
        current.metrics.reload(ReloadOutcome::Refused);
    }
    live.record(attempt.clone());
    attempt
}

/// The gateway of the configuration at `path` as it is now, and what of it waits for a
/// restart; or every mistake in it.
fn renew(path: &str, current: &Gateway) -> Result<(Gateway, Vec<String>), Vec<String>> {
    let settings = crate::config::read(path)
        .map_err(|errors| errors.0.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    let waiting = current.start_only.changed(&settings);
    let gateway = Gateway::renewed(settings, current).map_err(|e| vec![e])?;
    let notes = waiting
        .into_iter()
        .map(|key| format!("`{key}` changed: it takes effect at the next restart"))
        .collect();
    Ok((gateway, notes))
}

/// Reloads on every SIGHUP, each on a thread of its own; call it inside the server's actix
/// system. From then on SIGHUP no longer ends the process.
pub fn on_hangup(live: Weak<Live>) -> std::io::Result<()> {
    use actix_web::rt::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup())?;
    actix_web::rt::spawn(async move {
        while hangup.recv().await.is_some() {
            let Some(live) = live.upgrade() else { return };
            tracing::info!("SIGHUP: reloading the configuration");
            let spawned = std::thread::Builder::new()
                .name("reload".into())
                .spawn(move || reload(&live));
            if let Err(e) = spawned {
                tracing::error!("the reload thread cannot start: {e}");
            }
        }
    });
    Ok(())
}

/// What the files a configuration reads hold now, as one hash; a file that cannot be read
/// counts as its error.
fn fingerprint(files: &[PathBuf]) -> u64 {
    let mut hasher = DefaultHasher::new();
    for file in files {
        file.hash(&mut hasher);
        match std::fs::read(file) {
            Ok(bytes) => bytes.hash(&mut hasher),
            Err(e) => e.kind().to_string().hash(&mut hasher),
        }
    }
    hasher.finish()
}

/// Starts the thread that reloads when a watched file changes (while the configuration in use
/// sets `reload.watch`); it ends when the gateway is gone.
pub fn watch_while(live: Weak<Live>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("reload-watch".into())
        .spawn(move || {
            let mut seen: Option<u64> = None;
            loop {
                let Some(live) = live.upgrade() else { return };
                let gateway = live.current();
                if gateway.reload.watch && live.config_path.is_some() {
                    let now = fingerprint(&gateway.watched);
                    seen = Some(match seen {
                        Some(seen) if seen != now => {
                            tracing::info!("a configuration file changed: reloading");
                            reload(&live);
                            // What was just applied, or refused, is the new baseline: a broken
                            // file is not tried again until it changes again.
                            let after = live.current();
                            if after.watched == gateway.watched {
                                now
                            } else {
                                fingerprint(&after.watched)
                            }
                        }
                        _ => now,
                    });
                } else {
                    seen = None;
                }
                drop((gateway, live));
                std::thread::sleep(WATCH_EVERY);
            }
        })
        .map(|_| ())
}
