//! Spans leave the request path at once: a span that ends goes into a bounded queue (a full
//! queue drops it, and counts it), and a thread of its own sends the queue to the collector in
//! batches, every second or when a batch is full. A collector that is down or slow costs the calls nothing and the gateway no more
//! memory than the queue holds: its batches fail, are counted as dropped, and are not retried.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};

/// Spans the queue holds at most: at about 1 KiB each, a megabyte or two.
const QUEUE: usize = 2048;
/// Spans sent in one request at most.
const BATCH: usize = 512;
/// How long a span may wait in the queue for its batch to fill.
const LINGER: Duration = Duration::from_secs(1);
/// How long one export may take.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// What became of the spans.
#[derive(Debug, Default)]
pub struct Counts {
    pub exported: AtomicU64,
    /// Dropped because the queue was full, or their batch failed.
    pub dropped: AtomicU64,
}

/// What the calls' threads and the exporting thread share.
#[derive(Debug, Default)]
struct Shared {
    pending: Mutex<Pending>,
    /// Signalled when a batch is full, a flush is asked for, or the queue closes: not for
    /// each span, so that ending a span costs a lock and a push, never a wake-up.
    ready: Condvar,
}

#[derive(Debug, Default)]
struct Pending {
    spans: Vec<SpanData>,
    /// Those waiting for the spans queued before they asked to be sent.
    flushes: Vec<SyncSender<()>>,
    closed: bool,
}

/// The span processor: a bounded queue in front of the exporting thread.
#[derive(Debug)]
pub struct Queue {
    shared: Arc<Shared>,
    counts: Arc<Counts>,
}

impl Queue {
    /// Starts the thread that sends what the queue holds with `exporter`.
    pub fn start<E: SpanExporter + 'static>(
        exporter: E,
        counts: Arc<Counts>,
    ) -> std::io::Result<Queue> {
        let shared = Arc::new(Shared::default());
        let (thread_shared, thread_counts) = (shared.clone(), counts.clone());
        std::thread::Builder::new()
            .name("trace-export".into())
            .spawn(move || send_batches(exporter, &thread_shared, &thread_counts))?;
        Ok(Queue { shared, counts })
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.shared
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        self.pending().closed = true;
        self.shared.ready.notify_one();
    }
}

impl SpanProcessor for Queue {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        let mut pending = self.pending();
        if pending.spans.len() >= QUEUE {
            drop(pending);
            self.counts.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        pending.spans.push(span);
        let full = pending.spans.len() == BATCH;
        drop(pending);
        if full {
            self.shared.ready.notify_one();
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        let (done, wait) = std::sync::mpsc::sync_channel(1);
        self.pending().flushes.push(done);
        self.shared.ready.notify_one();
        let _ = wait.recv_timeout(EXPORT_TIMEOUT * 2);
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.force_flush()
    }
}

fn send_batches<E: SpanExporter>(exporter: E, shared: &Shared, counts: &Counts) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let Ok(runtime) = runtime else {
        tracing::error!("the trace exporter's thread cannot start its runtime: no traces");
        return;
    };
    let mut failing: Option<Instant> = None;
    let mut send = |batch: Vec<SpanData>| {
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as u64;
        let sent = runtime
            .block_on(async { tokio::time::timeout(EXPORT_TIMEOUT, exporter.export(batch)).await });
        match sent {
            Ok(Ok(())) => {
                counts.exported.fetch_add(n, Ordering::Relaxed);
                if failing.take().is_some() {
                    tracing::info!("the trace collector takes spans again");
                }
            }
            outcome => {
                counts.dropped.fetch_add(n, Ordering::Relaxed);
                // Said once, then once a minute while it lasts.
                if failing.is_none_or(|since| since.elapsed() > Duration::from_secs(60)) {
                    let why = match outcome {
                        Ok(Err(e)) => e.to_string(),
                        _ => "it did not answer in time".into(),
                    };
                    tracing::warn!("{n} spans dropped: the trace collector refused them: {why}");
                    failing = Some(Instant::now());
                }
            }
        }
    };
    loop {
        let (spans, flushes, closed) = {
            let pending = shared
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let (mut pending, _) = shared
                .ready
                .wait_timeout_while(pending, LINGER, |p| {
                    p.spans.len() < BATCH && p.flushes.is_empty() && !p.closed
                })
                .unwrap_or_else(PoisonError::into_inner);
            (
                std::mem::take(&mut pending.spans),
                std::mem::take(&mut pending.flushes),
                pending.closed,
            )
        };
        let mut spans = spans;
        while !spans.is_empty() {
            let rest = spans.split_off(spans.len().min(BATCH));
            send(spans);
            spans = rest;
        }
        for done in flushes {
            let _ = done.send(());
        }
        if closed {
            return;
        }
    }
}
