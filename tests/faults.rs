//! Faults, on both sides of the gateway: simulated backends that cut an answer half-way, fail,
//! hang or answer slowly; clients that stall, trickle, send `Upgrade`, speak HTTP/1.0, repeat
//! parameters, use dot segments, send compressed or mislabelled bodies, or leave mid-stream.
//!
//! Each test says what the client sees (a status and Azure's error shape, or a failed stream),
//! how many calls each backend received, and that the gateway still serves afterwards. Clients
//! that must misbehave at the byte level speak raw HTTP over a socket ([`raw_exchange`]).

mod common;

use std::time::{Duration, Instant};

use common::{Backend, CHAT, Running, Setup, metric, raw_exchange, raw_post, run, start};

const HELLO: &str = r#"{"messages":[{"role":"user","content":"Hello!"}]}"#;
const STREAM: &str = r#"{"messages":[{"role":"user","content":"Hello!"}],"stream":true}"#;
const CUT: &str = "/openai/deployments/cut-stream/chat/completions?api-version=2024-10-21";

/// The gateway still answers an ordinary call.
async fn still_serves(gw: &Running) {
    let (status, headers, body) = gw.post_json(CHAT, HELLO).await;
    assert_eq!(
        status,
        200,
        "{headers:?} {}",
        String::from_utf8_lossy(&body)
    );
}

#[test]
fn a_stream_the_backend_cuts_reaches_the_client_as_a_failure() {
    run(async {
        let gw = start(Setup {
            backends: vec![Backend::new("eastus", "East US")],
            ..Setup::default()
        })
        .await;
        for body in [STREAM, HELLO] {
            let reply =
                raw_exchange(gw.addr, raw_post(CUT, body, ""), Duration::from_secs(10)).await;
            assert_eq!(reply.status(), 200, "{}", reply.text());
            let (received, terminated) = reply.dechunked();
            assert!(
                !terminated,
                "a cut answer ended with the terminating chunk: {}",
                reply.text()
            );
            assert!(reply.closed, "the connection was kept open after a cut");
            // What the backend did send before the cut reached the client.
            assert!(!received.is_empty(), "{}", reply.text());
        }
        let (_, _, metrics) = gw.get("/metrics").await;
        let metrics = String::from_utf8_lossy(&metrics);
        assert_eq!(
            metric(
                &metrics,
                "aoai_gateway_backend_streams_cut_total{backend=\"eastus\"}"
            ),
            Some(2),
            "{metrics}"
        );
        // A complete stream still ends properly.
        let reply = raw_exchange(
            gw.addr,
            raw_post(CHAT, STREAM, "Connection: close\r\n"),
            Duration::from_secs(10),
        )
        .await;
        let (received, terminated) = reply.dechunked();
        assert!(terminated, "{}", reply.text());
        assert!(String::from_utf8_lossy(&received).ends_with("data: [DONE]\n\n"));
        still_serves(&gw).await;
    });
}

/// East US serves `gpt` from a deployment that answers 500 (no `retry-after`); West Europe is
/// healthy.
async fn start_with_gpt_failing_in_east_us(
    tweak: fn(&mut aoai_gateway::config::FileConfig),
) -> Running {
    let mut east = Backend::new("eastus", "East US");
    east.deployment_map
        .insert("gpt".into(), "server-error".into());
    start(Setup {
        backends: vec![east, Backend::new("westeurope", "West Europe")],
        tweak,
        ..Setup::default()
    })
    .await
}

const GPT: &str = "/openai/deployments/gpt/chat/completions?api-version=2024-10-21";

#[test]
fn a_failing_backend_is_passed_by_the_rotation_and_then_rested_by_its_circuit() {
    run(async {
        let gw = start_with_gpt_failing_in_east_us(|c| {
            c.failover.circuit_failures = 3;
            c.failover.circuit_cooldown_ms = 60_000;
        })
        .await;
        for _ in 0..20 {
            let (status, headers, _) = gw.post_json(GPT, HELLO).await;
            assert_eq!(status, 200);
            assert_eq!(headers["x-aoai-gateway-backend"], "westeurope");
        }
        // The failing backend took the first attempt of every other call (the rotation moves on
        // past it) until its third failure opened the circuit; then none.
        assert_eq!(gw.sims[0].recorded().len(), 3);
        assert_eq!(gw.sims[1].recorded().len(), 20);
        // Its other deployments are not affected.
        let mut regions = Vec::new();
        for _ in 0..2 {
            let (_, headers, _) = gw.post_json(CHAT, HELLO).await;
            regions.push(headers["x-ms-region"].clone());
        }
        regions.sort();
        assert_eq!(regions, ["East US", "West Europe"]);
    });
}

#[test]
fn after_its_cool_down_a_failed_backend_gets_one_trial_call() {
    run(async {
        let gw = start_with_gpt_failing_in_east_us(|c| {
            c.failover.circuit_failures = 2;
            c.failover.circuit_cooldown_ms = 300;
        })
        .await;
        for _ in 0..4 {
            assert_eq!(gw.post_json(GPT, HELLO).await.0, 200);
        }
        assert_eq!(gw.sims[0].recorded().len(), 2);
        actix_web::rt::time::sleep(Duration::from_millis(400)).await;
        for _ in 0..4 {
            assert_eq!(gw.post_json(GPT, HELLO).await.0, 200);
        }
        // One trial, which failed: open again.
        assert_eq!(gw.sims[0].recorded().len(), 3);
    });
}

#[test]
fn a_slow_failing_backend_costs_only_the_calls_before_its_circuit_opens() {
    run(async {
        // East US answers `gpt` slowly and then with 500.
        let mut east = Backend::new("eastus", "East US");
        east.deployment_map.insert("gpt".into(), "slow".into());
        let gw = start(Setup {
            backends: vec![east, Backend::new("westeurope", "West Europe")],
            response_ms: 200,
            tweak: |c| c.failover.circuit_failures = 2,
            ..Setup::default()
        })
        .await;
        let started = Instant::now();
        let mut statuses = Vec::new();
        for _ in 0..10 {
            statuses.push(gw.post_json(GPT, HELLO).await.0);
        }
        // A timeout is not retried (the backend may be billing the call): the two calls that
        // started in East US got 504; after that the circuit kept calls away from it.
        assert_eq!(
            statuses.iter().filter(|s| **s == 504).count(),
            2,
            "{statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            8,
            "{statuses:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(gw.sims[0].recorded().len(), 2);
    });
}

#[test]
fn when_every_backend_rests_the_first_to_wake_takes_the_call() {
    run(async {
        // Both deployments over quota: East US asks for 7 s, West Europe (mapped to a
        // deployment that fails without retry-after) gets the cool-down of its circuit.
        let mut west = Backend::new("westeurope", "West Europe");
        west.deployment_map
            .insert("rate-limited".into(), "server-error".into());
        let gw = start(Setup {
            backends: vec![Backend::new("eastus", "East US"), west],
            tweak: |c| {
                c.failover.circuit_failures = 1;
                c.failover.circuit_cooldown_ms = 60_000;
            },
            ..Setup::default()
        })
        .await;
        let rate_limited =
            "/openai/deployments/rate-limited/chat/completions?api-version=2024-10-21";
        let (status, _, _) = gw.post_json(rate_limited, HELLO).await;
        assert!(status == 429 || status == 500, "{status}");
        assert_eq!(gw.all_recorded().len(), 2);
        // East US's rest (7 s) ends before West Europe's (60 s): every next call goes there.
        for _ in 0..3 {
            let (status, headers, _) = gw.post_json(rate_limited, HELLO).await;
            assert_eq!((status, headers["x-ms-region"].as_str()), (429, "East US"));
        }
        assert_eq!(gw.sims[0].recorded().len(), 4);
        assert_eq!(gw.sims[1].recorded().len(), 1);
    });
}

/// Writes `pieces`, each after its pause (ignoring write errors: the gateway may have closed),
/// then reads until the gateway closes the connection (at most `timeout`).
async fn trickle(
    addr: std::net::SocketAddr,
    pieces: Vec<(Duration, Vec<u8>)>,
    timeout: Duration,
) -> (common::RawReply, Duration) {
    actix_web::rt::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let started = Instant::now();
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(timeout)).expect("timeout");
        stream.set_nonblocking(false).expect("blocking");
        for (pause, piece) in pieces {
            std::thread::sleep(pause);
            if stream.write_all(&piece).is_err() {
                break;
            }
        }
        let mut bytes = Vec::new();
        let closed = stream.read_to_end(&mut bytes).is_ok();
        (common::RawReply { bytes, closed }, started.elapsed())
    })
    .await
    .expect("client thread")
}

fn head_of(path: &str, length: usize, extra: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: gateway\r\napi-key: {}\r\nContent-Type: application/json\r\n{extra}Content-Length: {length}\r\n\r\n",
        common::CLIENT_KEY
    )
    .into_bytes()
}

#[test]
fn a_body_that_stalls_or_trickles_gets_408_and_its_connection_closed() {
    run(async {
        let gw = start(Setup {
            tweak: |c| c.timeouts.client_body_ms = 400,
            ..Setup::default()
        })
        .await;
        // Stalls after 20 bytes.
        let body = HELLO.as_bytes();
        let (reply, took) = trickle(
            gw.addr,
            vec![
                (Duration::ZERO, head_of(CHAT, body.len(), "")),
                (Duration::ZERO, body[..20].to_vec()),
            ],
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(reply.status(), 408, "{}", reply.text());
        assert!(
            reply.text().contains("\"code\":\"RequestTimeout\""),
            "{}",
            reply.text()
        );
        assert!(reply.closed && took < Duration::from_secs(3), "{took:?}");
        // Trickles a byte every 50 ms: each byte comes in time, the body does not.
        let mut pieces = vec![(Duration::ZERO, head_of(CHAT, body.len(), ""))];
        pieces.extend(body.iter().map(|b| (Duration::from_millis(50), vec![*b])));
        let (reply, took) = trickle(gw.addr, pieces, Duration::from_secs(10)).await;
        assert_eq!(reply.status(), 408, "{}", reply.text());
        assert!(took < Duration::from_secs(3), "{took:?}");
        assert!(gw.all_recorded().is_empty());
        still_serves(&gw).await;
    });
}

#[test]
fn a_head_that_never_ends_is_cut_off() {
    run(async {
        let gw = start(Setup {
            tweak: |c| c.timeouts.client_head_ms = 1_000,
            ..Setup::default()
        })
        .await;
        let (reply, took) = trickle(
            gw.addr,
            vec![(
                Duration::ZERO,
                b"POST /openai/deployments/x/chat/completions HTTP/1.1\r\nHost: g\r\n".to_vec(),
            )],
            Duration::from_secs(10),
        )
        .await;
        assert!(reply.closed, "{}", reply.text());
        assert!(took < Duration::from_secs(3), "{took:?}");
        assert_eq!(reply.status(), 408, "{}", reply.text());
        still_serves(&gw).await;
    });
}

#[test]
fn a_request_asking_to_upgrade_is_answered_at_once() {
    run(async {
        let gw = start(Setup::default()).await;
        let request = raw_post(
            CHAT,
            HELLO,
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        );
        let started = Instant::now();
        let reply = raw_exchange(gw.addr, request, Duration::from_secs(10)).await;
        assert_eq!(reply.status(), 400, "{}", reply.text());
        assert!(reply.text().contains("Upgrade"), "{}", reply.text());
        assert!(reply.closed && started.elapsed() < Duration::from_secs(2));
        assert!(gw.all_recorded().is_empty());
        still_serves(&gw).await;
    });
}

#[test]
fn an_http_1_0_client_gets_a_stream_delimited_by_closing() {
    run(async {
        let gw = start(Setup::default()).await;
        let request = format!(
            "POST {CHAT} HTTP/1.0\r\nHost: gateway\r\napi-key: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{STREAM}",
            common::CLIENT_KEY,
            STREAM.len()
        );
        let reply = raw_exchange(gw.addr, request.into_bytes(), Duration::from_secs(10)).await;
        let head = reply.head();
        assert!(
            head.starts_with("http/1.0 200") || head.starts_with("http/1.1 200"),
            "{head}"
        );
        assert!(!head.contains("transfer-encoding"), "{head}");
        assert!(reply.closed);
        let text = reply.text();
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        assert!(body.starts_with("data: {"), "{body}");
        assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
        // A body of known length keeps it.
        let request = format!(
            "POST {CHAT} HTTP/1.0\r\nHost: gateway\r\napi-key: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{HELLO}",
            common::CLIENT_KEY,
            HELLO.len()
        );
        let reply = raw_exchange(gw.addr, request.into_bytes(), Duration::from_secs(10)).await;
        assert!(reply.head().contains("content-length:"), "{}", reply.head());
    });
}

#[test]
fn a_repeated_api_version_or_parameter_is_refused() {
    run(async {
        let gw = start(Setup::default()).await;
        for path in [
            "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21&api-version=evil",
            "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21&api-version=2024-10-21",
        ] {
            let (status, _, body) = gw.post_json(path, HELLO).await;
            assert_eq!(
                (status, common::error_code(&body).as_str()),
                (400, "InvalidRequest")
            );
            assert!(String::from_utf8_lossy(&body).contains("api-version"));
        }
        let (status, _, body) = gw
            .get_with_key("/openai/assistants?api-version=2024-09-01-preview&limit=5&limit=7")
            .await;
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
        assert!(String::from_utf8_lossy(&body).contains("'limit'"));
        assert!(gw.all_recorded().is_empty());
    });
}

#[test]
fn dot_segments_and_encoded_slashes_are_refused_before_routing() {
    run(async {
        let gw = start(Setup::default()).await;
        for path in [
            "/openai/deployments/../chat/completions?api-version=2024-10-21",
            "/openai/deployments/gpt-4o/chat/./completions?api-version=2024-10-21",
            "/openai/deployments/%2e%2e/chat/completions?api-version=2024-10-21",
            "/openai/deployments/gpt-4o%2F..%2F..%2Fassistants/chat/completions?api-version=2024-10-21",
        ] {
            let reply =
                raw_exchange(gw.addr, raw_post(path, HELLO, ""), Duration::from_secs(5)).await;
            assert_eq!(reply.status(), 400, "{path}: {}", reply.text());
            assert!(
                reply.text().contains("\"code\":\"InvalidRequest\""),
                "{}",
                reply.text()
            );
        }
        assert!(gw.all_recorded().is_empty());
        still_serves(&gw).await;
    });
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

/// POSTs `body` to chat completions with `Content-Encoding: encoding`.
async fn post_encoded(gw: &Running, encoding: &str, body: Vec<u8>) -> (u16, bytes::Bytes) {
    let response = gw
        .client
        .post(gw.url(CHAT))
        .insert_header(("api-key", common::CLIENT_KEY))
        .insert_header(("content-type", "application/json"))
        .insert_header(("content-encoding", encoding))
        .send_body(body)
        .await
        .expect("answer");
    let (status, _, body) = common::collect(response).await;
    (status, body)
}

#[test]
fn compressed_bodies_are_checked_decoded_and_forwarded_as_sent() {
    run(async {
        let gw = start(Setup {
            backends: vec![Backend::new("eastus", "East US")],
            max_body_bytes: 64 * 1024,
            ..Setup::default()
        })
        .await;
        // Valid gzip JSON: checked, and the backend receives the client's compressed bytes.
        let compressed = gzip(HELLO.as_bytes());
        // The simulator cannot read gzip (it answers 400); what matters is what reached it.
        let (status, _) = post_encoded(&gw, "gzip", compressed.clone()).await;
        let recorded = gw.all_recorded();
        assert_eq!(recorded.len(), 1, "status {status}");
        assert_eq!(recorded[0].body, compressed);
        assert_eq!(recorded[0].header("content-encoding"), Some("gzip"));
        // Invalid JSON inside gzip: named as usual, backend not called.
        let (status, body) = post_encoded(
            &gw,
            "gzip",
            gzip(br#"{"messages": [{"role": "robot", "content": "x"}]}"#),
        )
        .await;
        assert_eq!(status, 400);
        assert!(String::from_utf8_lossy(&body).contains("messages[0].role"));
        // Plain JSON labelled gzip: refused, not forwarded mislabelled.
        let (status, body) = post_encoded(&gw, "gzip", HELLO.as_bytes().to_vec()).await;
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
        // A small bomb: 413 on the decoded size.
        let bomb = gzip(&[b' '; 2_000_000]);
        assert!(bomb.len() < 64 * 1024);
        let (status, _) = post_encoded(&gw, "gzip", bomb).await;
        assert_eq!(status, 413);
        // An encoding the gateway cannot read: 415.
        let (status, body) = post_encoded(&gw, "zstd", HELLO.as_bytes().to_vec()).await;
        assert_eq!(
            (status, common::error_code(&body).as_str()),
            (415, "UnsupportedMediaType")
        );
        assert_eq!(gw.all_recorded().len(), 1);
        still_serves(&gw).await;
    });
}

/// A chat body of about `mb` megabytes whose last message has a role the spec does not allow,
/// so that the whole body is read before it is refused.
fn large_invalid_chat(mb: usize) -> String {
    let message = r#"{"role":"user","content":"hello world, this is one of many messages"},"#;
    let count = mb * 1024 * 1024 / message.len();
    let mut body = String::with_capacity(count * message.len() + 64);
    body.push_str(r#"{"messages":["#);
    for _ in 0..count {
        body.push_str(message);
    }
    body.push_str(r#"{"role":"robot","content":"x"}]}"#);
    body
}

#[test]
fn large_bodies_are_checked_without_holding_up_other_calls() {
    run(async {
        let gw = start(Setup {
            max_body_bytes: 32 << 20,
            ..Setup::default()
        })
        .await;
        // One worker (the harness's setting): a body checked on it would stall the rest.
        let body = bytes::Bytes::from(large_invalid_chat(20));
        let finished = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let mut large = Vec::new();
        for _ in 0..4 {
            let (request, body, finished) = (
                gw.client
                    .post(gw.url(CHAT))
                    .timeout(Duration::from_secs(120))
                    .insert_header(("api-key", common::CLIENT_KEY))
                    .insert_header(("content-type", "application/json")),
                body.clone(),
                finished.clone(),
            );
            large.push(actix_web::rt::spawn(async move {
                let response = request.send_body(body).await.expect("answer");
                let (status, _, reply) = common::collect(response).await;
                finished.borrow_mut().push(Instant::now());
                (status, reply)
            }));
        }
        // Let the uploads arrive and the checks start.
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
        let (status, _, _) = gw.get("/healthz").await;
        let healthz_answered = Instant::now();
        assert_eq!(status, 200);
        for handle in large {
            let (status, reply) = handle.await.expect("task");
            assert_eq!(status, 400, "{}", String::from_utf8_lossy(&reply));
            assert!(String::from_utf8_lossy(&reply).contains("].role"));
        }
        let first_large = finished
            .borrow()
            .iter()
            .min()
            .copied()
            .expect("four answers");
        assert!(
            healthz_answered < first_large,
            "/healthz waited for a large body's check"
        );
        assert!(gw.all_recorded().is_empty());
        still_serves(&gw).await;
    });
}

#[test]
fn a_client_that_leaves_mid_stream_costs_nothing_more() {
    run(async {
        let gw = start(Setup {
            backends: vec![Backend::new("eastus", "East US")],
            chunk_delay: Duration::from_millis(200),
            ..Setup::default()
        })
        .await;
        let addr = gw.addr;
        actix_web::rt::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut stream = std::net::TcpStream::connect(addr).expect("connect");
            stream
                .write_all(&raw_post(CHAT, STREAM, ""))
                .expect("write");
            let mut first = [0u8; 1024];
            let n = stream.read(&mut first).expect("first bytes");
            assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
            // Gone, with the answer half-sent.
        })
        .await
        .expect("client");
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
        let (_, _, metrics) = gw.get("/metrics").await;
        let metrics = String::from_utf8_lossy(&metrics);
        assert_eq!(
            metric(
                &metrics,
                "aoai_gateway_backend_streams_cut_total{backend=\"eastus\"}"
            ),
            Some(0),
            "a client leaving is not the backend's fault: {metrics}"
        );
        still_serves(&gw).await;
    });
}

#[test]
fn unknown_fields_are_forwarded_unless_the_config_refuses_them() {
    run(async {
        let body =
            r#"{"messages":[{"role":"user","content":"Hello!"}],"added_by_azure_later":true}"#;
        let gw = start(Setup::default()).await;
        let (status, _, _) = gw.post_json(CHAT, body).await;
        assert_eq!(status, 200);
        assert_eq!(gw.all_recorded()[0].body, body.as_bytes());

        let gw = start(Setup {
            tweak: |c| c.validation.unknown_fields = aoai_gateway::config::UnknownFields::Reject,
            ..Setup::default()
        })
        .await;
        let (status, _, reply) = gw.post_json(CHAT, body).await;
        assert_eq!(status, 400);
        let error: serde_json::Value = serde_json::from_slice(&reply).expect("json");
        assert_eq!(error["error"]["param"], "added_by_azure_later");
        assert!(gw.all_recorded().is_empty());
        still_serves(&gw).await;
    });
}
