//! OpenTelemetry traces: one server span per call and one client span per backend attempt, so
//! a failover shows as two attempts under one call; exported over OTLP/HTTP by [`export`]'s
//! queue and thread, with [`http`]'s client. Without `otel.endpoint` there is no [`Traces`], and
//! a call pays one `None` check.
//!
//! A client's `traceparent` (and `tracestate`) continues its trace; each attempt sends the
//! backend its own `traceparent`, replacing the client's. The attributes follow the OpenTelemetry
//! HTTP and GenAI semantic conventions, plus the gateway's own under `aoai.*`. No key, token or
//! query string is ever an attribute.

pub mod export;
pub mod http;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use actix_web::http::header::{HeaderMap, HeaderValue};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider, SpanExporter as _};

use crate::config::{Backend, OtelSettings};
use export::{Counts, EXPORT_TIMEOUT, Queue};

/// The tracer of a gateway that exports traces.
pub struct Traces {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    propagator: TraceContextPropagator,
    counts: Arc<Counts>,
}

/// A request's headers, as the propagator reads them.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// What the span of a call says when it ends.
pub struct Ending<'a> {
    pub status: u16,
    /// The operation's path template, below the base path.
    pub route: Option<&'static str>,
    pub operation_id: Option<&'static str>,
    pub deployment: Option<&'a str>,
    pub subscription: Option<&'a str>,
    pub request_id: &'a str,
    /// `complete`, `cut` or `abandoned`, for a relayed answer.
    pub end: Option<&'static str>,
    pub first_byte: Option<Instant>,
    pub model: Option<&'a str>,
    /// Input, output, reasoning and cached tokens, when known.
    pub usage: Option<[u64; 4]>,
}

impl Ending<'_> {
    /// What became of the call, which its answering attempt's span says too: the model that
    /// answered, the tokens, how the answer ended.
    fn outcome(&self) -> Vec<KeyValue> {
        let mut attributes = Vec::with_capacity(12);
        if let Some(model) = self.model {
            attributes.push(KeyValue::new("gen_ai.response.model", model.to_string()));
        }
        if let Some([input, output, reasoning, cached]) = self.usage {
            attributes.push(KeyValue::new("gen_ai.usage.input_tokens", input as i64));
            attributes.push(KeyValue::new("gen_ai.usage.output_tokens", output as i64));
            if reasoning > 0 {
                attributes.push(KeyValue::new(
                    "gen_ai.usage.reasoning.output_tokens",
                    reasoning as i64,
                ));
            }
            if cached > 0 {
                attributes.push(KeyValue::new(
                    "gen_ai.usage.cache_read.input_tokens",
                    cached as i64,
                ));
            }
        }
        if let Some(end) = self.end {
            attributes.push(KeyValue::new("aoai.end", end));
        }
        attributes
    }
}

impl Traces {
    /// Builds the exporter and starts its thread.
    pub fn start(settings: &OtelSettings) -> Result<Traces, String> {
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(&settings.endpoint)
            .with_timeout(EXPORT_TIMEOUT)
            .with_headers(settings.headers.iter().cloned().collect())
            .with_http_client(http::Poster::new(EXPORT_TIMEOUT)?)
            .build()
            .map_err(|e| format!("otel.endpoint: {e}"))?;
        let resource = Resource::builder_empty()
            .with_service_name(settings.service_name.clone())
            .with_attributes([KeyValue::new("service.version", env!("CARGO_PKG_VERSION"))])
            .build();
        exporter.set_resource(&resource);
        let counts = Arc::new(Counts::default());
        let queue = Queue::start(exporter, counts.clone())
            .map_err(|e| format!("the trace exporter's thread cannot start: {e}"))?;
        let provider = SdkTracerProvider::builder()
            .with_span_processor(queue)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                settings.sample_ratio,
            ))))
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("aoai-gateway");
        Ok(Traces {
            provider,
            tracer,
            propagator: TraceContextPropagator::new(),
            counts,
        })
    }

    /// The server span of a call that has just arrived, continuing the client's trace if it
    /// sent one.
    pub fn call(&self, method: &str, headers: &HeaderMap) -> CallSpans {
        let parent = self.propagator.extract(&Headers(headers));
        let method = known_method(method);
        let span = self
            .tracer
            .span_builder(method)
            .with_kind(SpanKind::Server)
            .with_attributes([KeyValue::new("http.request.method", method)])
            .start_with_context(&self.tracer, &parent);
        CallSpans {
            call: parent.with_span(span),
            attempt: None,
            tracer: self.tracer.clone(),
            method,
        }
    }

    /// Sends what is queued, waiting for it (a few seconds at most): at a graceful stop.
    pub fn flush(&self) {
        let _ = self.provider.force_flush();
    }

    /// The `aoai_gateway_trace_spans_total` lines for `/metrics`.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let name = "aoai_gateway_trace_spans_total";
        let _ = writeln!(
            out,
            "# HELP {name} Spans sent to the trace collector, and dropped (queue full, or the collector failed or was slow).\n# TYPE {name} counter"
        );
        for (outcome, count) in [
            ("exported", &self.counts.exported),
            ("dropped", &self.counts.dropped),
        ] {
            let _ = writeln!(
                out,
                "{name}{{outcome=\"{outcome}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
    }
}

/// A call's spans: its server span, and its current backend attempt's.
pub struct CallSpans {
    /// The context holding the server span.
    call: Context,
    /// The context holding the attempt's client span, while one is out.
    attempt: Option<Context>,
    tracer: SdkTracer,
    /// The request's method, for the span's final name (`POST /chat/completions`).
    method: &'static str,
}

impl std::fmt::Debug for CallSpans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let span = self.call.span();
        f.debug_struct("CallSpans")
            .field("trace_id", &span.span_context().trace_id())
            .finish_non_exhaustive()
    }
}

/// The method as the HTTP conventions write it: one they know, else `_OTHER` (a static string,
/// so that a span that is not sampled allocates nothing for it).
fn known_method(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT",
    ];
    KNOWN.into_iter().find(|m| *m == method).unwrap_or("_OTHER")
}

/// The GenAI operation a route is, where the conventions name one.
fn operation_name(route: &str) -> Option<&'static str> {
    if route.ends_with("/chat/completions") {
        Some("chat")
    } else if route.ends_with("/completions") {
        Some("text_completion")
    } else if route.ends_with("/embeddings") {
        Some("embeddings")
    } else if route.ends_with("/responses") {
        Some("chat")
    } else {
        None
    }
}

/// Names an attempt's span and gives it its attributes.
fn describe_attempt(
    attempt: &Context,
    backend: &Backend,
    number: u32,
    route: &str,
    deployment: Option<&str>,
) {
    let span = attempt.span();
    let operation = operation_name(route);
    span.update_name(match (operation, deployment) {
        (Some(op), Some(d)) => format!("{op} {d}"),
        _ => format!("{} {}", backend.name, route),
    });
    let mut attributes = vec![
        KeyValue::new("gen_ai.provider.name", "azure.ai.openai"),
        KeyValue::new(
            "server.address",
            backend.host.to_str().unwrap_or_default().to_string(),
        ),
        KeyValue::new("aoai.backend", backend.name.clone()),
        KeyValue::new("aoai.tier", i64::from(backend.priority)),
        KeyValue::new("aoai.attempt", i64::from(number)),
        KeyValue::new("aoai.region", backend.region.clone()),
    ];
    if let Some(op) = operation {
        attributes.push(KeyValue::new("gen_ai.operation.name", op));
    }
    if let Some(d) = deployment {
        attributes.push(KeyValue::new("gen_ai.request.model", d.to_string()));
    }
    span.set_attributes(attributes);
}

/// The trace context headers an attempt sends its backend.
pub struct Propagation {
    pub traceparent: HeaderValue,
    pub tracestate: Option<HeaderValue>,
}

impl CallSpans {
    /// A backend attempt begins (ending the one before, which was handed on): its client
    /// span, and the headers that carry its context to the backend.
    pub fn attempt(
        &mut self,
        backend: &Backend,
        attempt_number: u32,
        route: &str,
        deployment: Option<&str>,
    ) -> Propagation {
        if let Some(previous) = self.attempt.take() {
            previous.span().end();
        }
        // Named and described only once sampled: a span that is not recorded costs no
        // allocation but its context.
        let span = self
            .tracer
            .span_builder("attempt")
            .with_kind(SpanKind::Client)
            .start_with_context(&self.tracer, &self.call);
        let attempt = self.call.with_span(span);
        let recording = attempt.span().is_recording();
        if recording {
            describe_attempt(&attempt, backend, attempt_number, route, deployment);
        }
        let context = attempt.span().span_context().clone();
        self.attempt = Some(attempt);
        let traceparent = format!(
            "00-{}-{}-{:02x}",
            context.trace_id(),
            context.span_id(),
            context.trace_flags().to_u8()
        );
        let state = context.trace_state().header();
        Propagation {
            traceparent: HeaderValue::from_str(&traceparent)
                .unwrap_or_else(|_| HeaderValue::from_static("")),
            tracestate: (!state.is_empty())
                .then(|| HeaderValue::from_str(&state).ok())
                .flatten(),
        }
    }

    /// Whether the call's trace is kept (sampled): only then are its spans described.
    pub fn recording(&self) -> bool {
        self.call.span().is_recording()
    }

    /// The attempt's answer: its status, or why there was none; `handed_on`: the call moves
    /// on to another backend, so this attempt's span ends now.
    pub fn answered(&mut self, status: Option<u16>, failure: Option<&str>, handed_on: bool) {
        let Some(attempt) = &self.attempt else {
            return;
        };
        let span = attempt.span();
        if !span.is_recording() {
            if handed_on || failure.is_some() {
                self.attempt = None;
            }
            return;
        }
        if let Some(status) = status {
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
            if status >= 400 {
                span.set_attribute(KeyValue::new("error.type", status.to_string()));
                span.set_status(Status::error(""));
            }
        }
        if let Some(failure) = failure {
            span.set_attribute(KeyValue::new("error.type", failure.to_string()));
            span.set_status(Status::error(failure.to_string()));
        }
        if handed_on || failure.is_some() {
            span.end();
            self.attempt = None;
        }
    }

    /// The call has ended: the attempt's span and the call's end, with what became of it.
    pub fn end(&self, ending: &Ending<'_>) {
        if !self.recording() {
            return;
        }
        let now = SystemTime::now();
        let at = |instant: Instant| now.checked_sub(instant.elapsed()).unwrap_or(now);
        let outcome = ending.outcome();
        if let Some(attempt) = &self.attempt {
            let span = attempt.span();
            span.set_attributes(outcome.iter().cloned());
            if let Some(first) = ending.first_byte {
                span.add_event_with_timestamp("first_byte", at(first), Vec::new());
            }
            if ending.end == Some("cut") {
                span.set_status(Status::error("the backend cut its answer off"));
            }
            span.end();
        }
        let span = self.call.span();
        let mut attributes = outcome;
        attributes.push(KeyValue::new(
            "http.response.status_code",
            i64::from(ending.status),
        ));
        attributes.push(KeyValue::new(
            "aoai.request_id",
            ending.request_id.to_string(),
        ));
        if let Some(route) = ending.route {
            span.update_name(format!("{} {route}", self.method));
            attributes.push(KeyValue::new("http.route", route));
            if let Some(op) = operation_name(route) {
                attributes.push(KeyValue::new("gen_ai.operation.name", op));
                attributes.push(KeyValue::new("gen_ai.provider.name", "azure.ai.openai"));
            }
        }
        if let Some(id) = ending.operation_id {
            attributes.push(KeyValue::new("aoai.operation", id));
        }
        if let Some(d) = ending.deployment {
            attributes.push(KeyValue::new("gen_ai.request.model", d.to_string()));
        }
        if let Some(s) = ending.subscription {
            attributes.push(KeyValue::new("aoai.subscription", s.to_string()));
        }
        span.set_attributes(attributes);
        if let Some(first) = ending.first_byte {
            span.add_event_with_timestamp("first_byte", at(first), Vec::new());
        }
        // A server span is an error for 5xx only: a 4xx is the client's.
        if ending.status >= 500 || ending.end == Some("cut") {
            span.set_status(Status::error(""));
        }
        span.end();
    }
}
