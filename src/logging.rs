//! The log: `tracing` events, one line each on standard error, as text (`key=value`) or as
//! JSON objects (`log.format`), for the level `log.level` or `RUST_LOG` allows.
//!
//! Lines are formatted where they happen and written by a thread of their own, so a slow
//! terminal or pipe never holds up a call; if that thread falls more than
//! [`BUFFERED_LINES`] behind, lines are dropped rather than calls delayed, and counted
//! (`aoai_gateway_log_lines_dropped_total`). An event filtered out costs a level check: no
//! string is built for it. actix-web's and awc's own `log` records join the same log.

use std::sync::OnceLock;

use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// Lines the writer may fall behind before lines are dropped: about half a second of access
/// records at the gateway's top rate. The queue is allocated whole at start-up (32 bytes a
/// line), so it is not made larger than that needs: 128 Ki lines cost 4 MB of idle memory.
pub const BUFFERED_LINES: usize = 16 * 1024;

static DROPPED: OnceLock<ErrorCounter> = OnceLock::new();

/// Keeps the writer thread; dropping it writes what is still buffered.
pub struct Guard(#[allow(dead_code)] WorkerGuard);

/// The filter `level` describes, unless `RUST_LOG` says otherwise.
pub fn filter(level: &str) -> Result<EnvFilter, String> {
    if let Ok(from_env) = EnvFilter::try_from_default_env() {
        return Ok(from_env);
    }
    EnvFilter::try_new(level).map_err(|e| format!("`{level}` is not a log level or filter: {e}"))
}

/// Starts the log; once per process.
pub fn init(format: LogFormat, level: &str) -> Result<Guard, String> {
    let filter = filter(level)?;
    let (writer, guard) = NonBlockingBuilder::default()
        .buffered_lines_limit(BUFFERED_LINES)
        .lossy(true)
        .thread_name("log-writer")
        .finish(std::io::stderr());
    let _ = DROPPED.set(writer.error_counter());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let started = match format {
        LogFormat::Text => builder.with_ansi(false).finish().try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .finish()
            .try_init(),
    };
    started.map_err(|e| format!("cannot start the log: {e}"))?;
    Ok(Guard(guard))
}

/// Lines dropped because the writer fell behind.
pub fn dropped_lines() -> u64 {
    DROPPED.get().map_or(0, |c| c.dropped_lines() as u64)
}
