//! OpenTelemetry traces against a real OTLP/HTTP receiver: the test runs one on loopback that
//! decodes what the gateway posts with the published OTLP definitions (`opentelemetry-proto`),
//! then checks the spans of a call that fails over (one server span, two attempts under it),
//! their attributes, the `traceparent` the backend received, a stream's span, and that a dead
//! collector costs the calls nothing and is counted.

mod common;

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use common::{Backend, CHAT, CLIENT_KEY, Setup, run, start};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;

const BODY: &str = r#"{"messages":[{"role":"user","content":"Hello"}],"max_tokens":5}"#;
const STREAM: &str =
    r#"{"messages":[{"role":"user","content":"Hello"}],"max_tokens":5,"stream":true}"#;
const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

/// A collector on loopback: every span it was sent, with its resource's service name.
struct Collector {
    url: String,
    spans: Arc<Mutex<Vec<(String, Span)>>>,
}

fn collector() -> Collector {
    let spans: Arc<Mutex<Vec<(String, Span)>>> = Arc::default();
    let kept = spans.clone();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = HttpServer::new(move || {
        let kept = kept.clone();
        App::new().route(
            "/v1/traces",
            web::post().to(move |body: web::Bytes, req: actix_web::HttpRequest| {
                let kept = kept.clone();
                async move {
                    assert_eq!(
                        req.headers()
                            .get("content-type")
                            .and_then(|v| v.to_str().ok()),
                        Some("application/x-protobuf")
                    );
                    let export = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                    let mut kept = kept.lock().expect("lock");
                    for resource in export.resource_spans {
                        let service = resource
                            .resource
                            .iter()
                            .flat_map(|r| &r.attributes)
                            .find(|a| a.key == "service.name")
                            .and_then(|a| text(a.value.as_ref()?.value.as_ref()?))
                            .unwrap_or_default();
                        for scope in resource.scope_spans {
                            for span in scope.spans {
                                kept.push((service.clone(), span));
                            }
                        }
                    }
                    HttpResponse::Ok()
                        .content_type("application/x-protobuf")
                        .finish()
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .expect("listen")
    .run();
    actix_web::rt::spawn(server);
    Collector {
        url: format!("http://{addr}"),
        spans,
    }
}

fn text(value: &Any) -> Option<String> {
    match value {
        Any::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

/// A span's attributes as text (numbers written out).
fn attributes(span: &Span) -> HashMap<String, String> {
    span.attributes
        .iter()
        .filter_map(|a| {
            let value = match a.value.as_ref()?.value.as_ref()? {
                Any::StringValue(s) => s.clone(),
                Any::IntValue(i) => i.to_string(),
                Any::BoolValue(b) => b.to_string(),
                Any::DoubleValue(d) => d.to_string(),
                _ => return None,
            };
            Some((a.key.clone(), value))
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Waits until the collector holds at least `n` spans of the trace `trace_id` (hex).
async fn spans_of(c: &Collector, trace_id: &str, n: usize) -> Vec<Span> {
    let started = Instant::now();
    loop {
        let found: Vec<Span> = c
            .spans
            .lock()
            .expect("lock")
            .iter()
            .filter(|(_, s)| hex(&s.trace_id) == trace_id)
            .map(|(_, s)| s.clone())
            .collect();
        if found.len() >= n || started.elapsed() > Duration::from_secs(10) {
            return found;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

fn traced(url: String, backends: Vec<Backend>) -> Setup {
    Setup {
        backends,
        configure: Some(Box::new(move |c| {
            c.otel.endpoint = Some(url.clone());
            c.otel.service_name = Some("gateway-under-test".into());
            // The provisioned one is dead: every call's first attempt fails over.
            c.backends[0].priority = 1;
            c.backends[1].priority = 2;
        })),
        ..Setup::default()
    }
}

#[test]
fn a_failover_is_one_call_with_two_attempts_and_the_backend_gets_the_attempts_context() {
    run(async {
        let c = collector();
        let dead = Backend {
            dead: true,
            ..Backend::new("eastus", "East US")
        };
        let gw = start(traced(
            c.url.clone(),
            vec![dead, Backend::new("westeurope", "West Europe")],
        ))
        .await;
        let traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
        let mut reply = gw
            .client
            .post(gw.url(CHAT))
            .insert_header(("api-key", CLIENT_KEY))
            .insert_header(("content-type", "application/json"))
            .insert_header(("traceparent", traceparent.as_str()))
            .insert_header(("tracestate", "vendor=abc"))
            .send_body(BODY)
            .await
            .expect("answers");
        assert_eq!(reply.status().as_u16(), 200);
        let _ = reply.body().await;

        let spans = spans_of(&c, CLIENT_TRACE, 3).await;
        assert_eq!(spans.len(), 3, "one server span, two attempts: {spans:#?}");
        let server = spans
            .iter()
            .find(|s| s.kind == SpanKind::Server as i32)
            .expect("a server span");
        assert_eq!(
            hex(&server.parent_span_id),
            CLIENT_SPAN,
            "the client's trace goes on"
        );
        assert_eq!(
            server.name,
            "POST /deployments/{deployment-id}/chat/completions"
        );
        let a = attributes(server);
        for (key, value) in [
            ("http.request.method", "POST"),
            (
                "http.route",
                "/deployments/{deployment-id}/chat/completions",
            ),
            ("http.response.status_code", "200"),
            ("gen_ai.operation.name", "chat"),
            ("gen_ai.request.model", "gpt-4o"),
            ("gen_ai.provider.name", "azure.ai.openai"),
            ("aoai.subscription", "team-a"),
            ("aoai.end", "complete"),
        ] {
            assert_eq!(a.get(key).map(String::as_str), Some(value), "{key}: {a:?}");
        }
        assert!(
            a.get("gen_ai.response.model")
                .is_some_and(|m| !m.is_empty()),
            "{a:?}"
        );
        assert!(a["gen_ai.usage.input_tokens"].parse::<u64>().unwrap() > 0);
        assert!(a["gen_ai.usage.output_tokens"].parse::<u64>().unwrap() > 0);
        assert!(a.contains_key("aoai.request_id"));
        assert!(server.events.iter().any(|e| e.name == "first_byte"));

        let mut attempts: Vec<&Span> = spans
            .iter()
            .filter(|s| s.kind == SpanKind::Client as i32)
            .collect();
        attempts.sort_by_key(|s| attributes(s)["aoai.attempt"].clone());
        assert_eq!(attempts.len(), 2);
        for attempt in &attempts {
            assert_eq!(attempt.parent_span_id, server.span_id, "under the call");
            assert_eq!(attempt.name, "chat gpt-4o");
        }
        let (first, second) = (attributes(attempts[0]), attributes(attempts[1]));
        assert_eq!(first["aoai.backend"], "eastus");
        assert_eq!(first["aoai.tier"], "1");
        assert_eq!(first["error.type"], "connect");
        assert_eq!(second["aoai.backend"], "westeurope");
        assert_eq!(second["aoai.attempt"], "2");
        assert_eq!(second["http.response.status_code"], "200");
        assert!(second["server.address"].starts_with("127.0.0.1:"));
        assert!(attempts[1].end_time_unix_nano >= attempts[1].start_time_unix_nano);

        // The backend got the second attempt's context, not the client's, and the state.
        let recorded = gw.all_recorded();
        let sent = recorded.last().expect("the backend was called");
        let expected = format!("00-{CLIENT_TRACE}-{}-01", hex(&attempts[1].span_id));
        assert_eq!(sent.header("traceparent"), Some(expected.as_str()));
        assert_eq!(sent.header("tracestate"), Some("vendor=abc"));

        // No key or token in any attribute.
        for (_, span) in c.spans.lock().expect("lock").iter() {
            for value in attributes(span).values() {
                for key in gw.keys.iter().map(String::as_str).chain([CLIENT_KEY]) {
                    assert!(!value.contains(key), "a key in a span");
                }
            }
        }
        let services: Vec<String> = c
            .spans
            .lock()
            .expect("lock")
            .iter()
            .map(|(s, _)| s.clone())
            .collect();
        assert!(services.iter().all(|s| s == "gateway-under-test"));
    });
}

#[test]
fn a_stream_span_ends_with_the_stream_and_a_trace_starts_without_a_parent() {
    run(async {
        let c = collector();
        let gw = start(traced(
            c.url.clone(),
            vec![
                Backend::new("eastus", "East US"),
                Backend::new("westeurope", "West Europe"),
            ],
        ))
        .await;
        let mut reply = gw
            .client
            .post(gw.url(CHAT))
            .insert_header(("api-key", CLIENT_KEY))
            .insert_header(("content-type", "application/json"))
            .send_body(STREAM)
            .await
            .expect("answers");
        let body = reply.body().await.expect("stream");
        assert!(body.ends_with(b"data: [DONE]\n\n"));
        let trace_id = {
            let started = Instant::now();
            loop {
                let found = c.spans.lock().expect("lock").iter().find_map(|(_, s)| {
                    (s.kind == SpanKind::Server as i32).then(|| hex(&s.trace_id))
                });
                if let Some(id) = found {
                    break id;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "no span exported"
                );
                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            }
        };
        let spans = spans_of(&c, &trace_id, 2).await;
        let server = spans
            .iter()
            .find(|s| s.kind == SpanKind::Server as i32)
            .expect("server");
        assert!(server.parent_span_id.is_empty(), "a new trace");
        let a = attributes(server);
        assert_eq!(a["aoai.end"], "complete");
        assert!(
            a["gen_ai.usage.output_tokens"].parse::<u64>().unwrap() > 0,
            "{a:?}"
        );
        let first_byte = server
            .events
            .iter()
            .find(|e| e.name == "first_byte")
            .expect("time to first byte");
        assert!(first_byte.time_unix_nano < server.end_time_unix_nano);
        let attempt = spans
            .iter()
            .find(|s| s.kind == SpanKind::Client as i32)
            .expect("attempt");
        assert!(
            attempt.end_time_unix_nano >= first_byte.time_unix_nano,
            "the attempt's span lasts as long as its stream"
        );
    });
}

#[test]
fn a_dead_collector_drops_spans_and_counts_them_and_no_call_waits() {
    run(async {
        let dead = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port");
        let gw = start(traced(
            format!("http://{dead}"),
            vec![
                Backend::new("eastus", "East US"),
                Backend::new("westeurope", "West Europe"),
            ],
        ))
        .await;
        let started = Instant::now();
        for _ in 0..50 {
            let (status, _, _) = gw.post_json(CHAT, BODY).await;
            assert_eq!(status, 200);
        }
        assert!(started.elapsed() < Duration::from_secs(10));
        let started = Instant::now();
        loop {
            let metrics = gw.metrics().await;
            let dropped = common::metric(
                &metrics,
                "aoai_gateway_trace_spans_total{outcome=\"dropped\"}",
            )
            .unwrap_or(0);
            if dropped >= 100 {
                assert_eq!(
                    common::metric(
                        &metrics,
                        "aoai_gateway_trace_spans_total{outcome=\"exported\"}"
                    ),
                    Some(0)
                );
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(15), "{metrics}");
            actix_web::rt::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

#[test]
fn a_realtime_session_is_one_server_span_that_ends_with_the_session() {
    run(async {
        use actix_http::ws::{CloseCode, Message};
        use futures_util::{SinkExt, StreamExt};
        let c = collector();
        let gw = start(traced(
            c.url.clone(),
            vec![
                Backend::new("eastus", "East US"),
                Backend::new("westeurope", "West Europe"),
            ],
        ))
        .await;
        let parent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
        let (_, mut socket) = gw
            .socket(
                &gw.base,
                "/openai/v1/realtime?model=gpt-realtime",
                &[("api-key", CLIENT_KEY), ("traceparent", &parent)],
                &[],
            )
            .await
            .expect("the session opens");
        let create = r#"{"type":"response.create"}"#;
        socket.send(Message::Text(create.into())).await.unwrap();
        while let Some(Ok(frame)) = socket.next().await {
            if let actix_http::ws::Frame::Text(text) = frame
                && String::from_utf8_lossy(&text).contains("\"response.done\"")
            {
                break;
            }
        }
        // Nothing is exported before the session ends.
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !c.spans
                .lock()
                .unwrap()
                .iter()
                .any(|(_, s)| s.kind == SpanKind::Server as i32),
            "the server span waits for the session's end"
        );
        socket
            .send(Message::Close(Some(CloseCode::Normal.into())))
            .await
            .unwrap();
        while socket.next().await.is_some() {}

        let spans = spans_of(&c, CLIENT_TRACE, 2).await;
        let server = spans
            .iter()
            .find(|s| s.kind == SpanKind::Server as i32)
            .expect("server");
        assert_eq!(hex(&server.parent_span_id), CLIENT_SPAN);
        let a = attributes(server);
        assert_eq!(a["aoai.end"], "closed", "{a:?}");
        assert!(
            a["gen_ai.usage.output_tokens"].parse::<u64>().unwrap() > 0,
            "{a:?}"
        );
        let attempt = spans
            .iter()
            .find(|s| s.kind == SpanKind::Client as i32)
            .expect("the handshake's attempt");
        assert_eq!(attempt.parent_span_id, server.span_id);
        // The backend's handshake carried the attempt's context.
        let handshake = gw
            .all_recorded()
            .into_iter()
            .find(|r| r.path == "/openai/v1/realtime")
            .expect("a handshake");
        let sent = handshake
            .header("traceparent")
            .unwrap_or_default()
            .to_string();
        assert!(
            sent.contains(CLIENT_TRACE) && sent.contains(&hex(&attempt.span_id)),
            "{sent}"
        );
    });
}
