//! The gateway end to end: real sockets on 127.0.0.1, simulated Azure OpenAI resources that
//! record what they receive, and an awc client.

mod common;

use std::time::{Duration, Instant};

use common::{Backend, CHAT, CLIENT_KEY, Running, Setup, collect, error_code, run, start};
use futures_util::StreamExt;

const HELLO: &str = r#"{ "messages" : [ {"role":"user",   "content":"Hello!"} ], "x_future_field": {"kept": true} }"#;

#[test]
fn rotation_alternates_and_each_backend_gets_its_own_key_and_the_clients_bytes() {
    run(async {
        let gw = start(Setup::default()).await;
        let mut regions = Vec::new();
        for _ in 0..4 {
            let (status, headers, _) = gw.post_json(CHAT, HELLO).await;
            assert_eq!(status, 200);
            regions.push(headers["x-ms-region"].clone());
            assert!(
                headers.contains_key("apim-request-id")
                    && headers.contains_key("x-ratelimit-remaining-tokens")
            );
            assert_eq!(
                headers["x-aoai-gateway-backend"],
                if headers["x-ms-region"] == "East US" {
                    "eastus"
                } else {
                    "westeurope"
                }
            );
        }
        assert_eq!(
            regions,
            ["East US", "West Europe", "East US", "West Europe"]
        );
        for (sim, key) in gw.sims.iter().zip(&gw.keys) {
            let recorded = sim.recorded();
            assert_eq!(recorded.len(), 2);
            for r in recorded {
                assert_eq!(r.header("api-key"), Some(key.as_str()));
                assert_eq!(r.path, "/openai/deployments/gpt-4o/chat/completions");
                assert_eq!(r.query, "api-version=2024-10-21");
                // Forwarded as the client wrote it, never re-serialized.
                assert_eq!(r.body, HELLO.as_bytes());
                let all_headers = format!("{:?}", r.headers);
                assert!(
                    !all_headers.contains(CLIENT_KEY),
                    "client key reached a backend: {all_headers}"
                );
            }
        }
    });
}

/// Sends raw HTTP/1.1, because awc rewrites `Connection` on its own; reads until the server
/// closes.
fn raw_request(base: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(request.as_bytes()).expect("write");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

#[test]
fn client_credentials_and_hop_by_hop_headers_never_reach_a_backend() {
    run(async {
        let gw = start(Setup::default()).await;
        let body = r#"{"input": "hi"}"#;
        let request = format!(
            "POST /openai/deployments/gpt-4o/embeddings?api-version=2024-10-21&subscription-key={CLIENT_KEY} HTTP/1.1\r\n\
             Host: gateway\r\nOcp-Apim-Subscription-Key: {CLIENT_KEY}\r\nAuthorization: Bearer client-token\r\n\
             Connection: close, x-hop\r\nX-Hop: dropped\r\nKeep-Alive: timeout=5\r\nX-Custom: kept\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let base = gw.base.clone();
        let response = actix_web::rt::task::spawn_blocking(move || raw_request(&base, &request))
            .await
            .expect("raw client");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        let r = &gw.all_recorded()[0];
        assert_eq!(r.query, "api-version=2024-10-21");
        for header in [
            "ocp-apim-subscription-key",
            "authorization",
            "x-hop",
            "keep-alive",
        ] {
            assert_eq!(r.header(header), None, "{header} was forwarded");
        }
        assert_eq!(r.header("x-custom"), Some("kept"));
        assert_eq!(r.body, body.as_bytes());
        assert!(!format!("{r:?}").contains(CLIENT_KEY));
    });
}

#[test]
fn the_client_never_sees_a_backend_key() {
    run(async {
        let gw = start(Setup::default()).await;
        let requests = [
            (CHAT, HELLO),
            (
                "/openai/deployments/rate-limited/chat/completions?api-version=2024-10-21",
                HELLO,
            ),
            (
                "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
                r#"{"messages":[{"role":"user","content":"x"}],"stream":true}"#,
            ),
        ];
        for (path, body) in requests {
            let (_, headers, body) = gw.post_json(path, body).await;
            let everything = format!("{headers:?}{}", String::from_utf8_lossy(&body));
            for key in &gw.keys {
                assert!(
                    !everything.contains(key.as_str()),
                    "backend key leaked: {everything}"
                );
            }
            assert!(!headers.contains_key("api-key"));
        }
    });
}

#[test]
fn server_sent_events_reach_the_client_before_the_backend_has_finished() {
    run(async {
        let setup = Setup {
            chunk_delay: Duration::from_millis(150),
            ..Setup::default()
        };
        let gw = start(setup).await;
        let body = r#"{"messages":[{"role":"user","content":"tell me a story"}],"stream":true,"stream_options":{"include_usage":true}}"#;
        let started = Instant::now();
        let mut response = gw
            .client
            .post(gw.url(CHAT))
            .insert_header(("api-key", CLIENT_KEY))
            .insert_header(("content-type", "application/json"))
            .send_body(body)
            .await
            .expect("answer");
        assert_eq!(response.status().as_u16(), 200);
        assert!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/event-stream"))
        );
        let mut arrivals = Vec::new();
        let mut text = Vec::new();
        while let Some(chunk) = response.next().await {
            let chunk = chunk.expect("chunk");
            arrivals.push(started.elapsed());
            text.extend_from_slice(&chunk);
        }
        let total = started.elapsed();
        let text = String::from_utf8(text).expect("utf-8");
        let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert!(
            events.iter().all(|e| e.starts_with("data: ")),
            "SSE framing: {text}"
        );
        assert_eq!(events.last(), Some(&"data: [DONE]"));
        assert!(events.len() >= 10, "{} events", events.len());
        // The backend pauses 150 ms between ~12 events, so it needs well over a second; the
        // first event must be at the client long before that.
        assert!(
            total >= Duration::from_millis(1200),
            "stream took {total:?}"
        );
        assert!(
            arrivals[0] < total / 3,
            "first chunk at {:?} of {total:?}: buffered",
            arrivals[0]
        );
        assert!(
            arrivals.len() >= 5,
            "only {} reads: chunks were coalesced",
            arrivals.len()
        );
        let usage_event = events[events.len() - 2];
        assert!(
            usage_event.contains("\"total_tokens\""),
            "include_usage chunk missing: {usage_event}"
        );
    });
}

fn multipart(boundary: &str, audio: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"clip.wav\"\r\nContent-Type: audio/wav\r\n\r\n").as_bytes());
    body.extend_from_slice(audio);
    body.extend_from_slice(format!("\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"response_format\"\r\n\r\nverbose_json\r\n--{boundary}--\r\n").as_bytes());
    body
}

#[test]
fn multipart_and_binary_bodies_pass_byte_for_byte() {
    run(async {
        let gw = start(Setup::default()).await;
        let audio: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        let body = multipart("----aoai-test-boundary", &audio);
        let response = gw
            .client
            .post(gw.url("/openai/deployments/whisper/audio/transcriptions?api-version=2024-10-21"))
            .insert_header(("api-key", CLIENT_KEY))
            .insert_header((
                "content-type",
                "multipart/form-data; boundary=----aoai-test-boundary",
            ))
            .send_body(body.clone())
            .await
            .expect("answer");
        let (status, _, reply) = collect(response).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
        assert!(String::from_utf8_lossy(&reply).contains("\"segments\""));
        assert_eq!(gw.all_recorded()[0].body, body);

        // Binary audio back: the same bytes the resource sends, length kept.
        let speech = r#"{"input": "Hello", "voice": "alloy"}"#;
        let (status, headers, through_gateway) = gw
            .post_json(
                "/openai/deployments/tts/audio/speech?api-version=2024-09-01-preview",
                speech,
            )
            .await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&through_gateway));
        assert_eq!(headers["content-type"], "audio/mpeg");
        assert_eq!(headers["content-length"], through_gateway.len().to_string());
        let recorded = gw.all_recorded();
        let sim = gw
            .sims
            .iter()
            .find(|s| s.config().region == headers["x-ms-region"])
            .expect("answering simulator");
        let direct = awc::Client::default()
            .post(format!(
                "http://{}/openai/deployments/tts/audio/speech?api-version=2024-09-01-preview",
                recorded
                    .last()
                    .and_then(|r| r.header("host"))
                    .unwrap_or_default()
            ))
            .insert_header(("api-key", sim.config().api_key.as_str()))
            .insert_header(("content-type", "application/json"))
            .send_body(speech)
            .await
            .expect("direct");
        let (_, _, direct_bytes) = collect(direct).await;
        assert_eq!(through_gateway, direct_bytes);
        assert!(
            std::str::from_utf8(&through_gateway).is_err(),
            "the audio is binary"
        );
    });
}

#[test]
fn a_form_field_named_with_brackets_is_checked_as_the_spec_names_it() {
    run(async {
        let gw = start(Setup::default()).await;
        let boundary = "b0undary";
        for (granularity, expected) in [("word", 200), ("sentence", 400)] {
            let mut body = multipart(boundary, b"RIFF");
            let extra = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"timestamp_granularities[]\"\r\n\r\n{granularity}\r\n--{boundary}--\r\n"
            );
            body.truncate(body.len() - format!("--{boundary}--\r\n").len());
            body.extend_from_slice(extra.as_bytes());
            let response = gw
                .client
                .post(gw.url(
                    "/openai/deployments/whisper/audio/transcriptions?api-version=2024-09-01-preview",
                ))
                .insert_header(("api-key", CLIENT_KEY))
                .insert_header((
                    "content-type",
                    format!("multipart/form-data; boundary={boundary}"),
                ))
                .send_body(body)
                .await
                .expect("answer");
            let (status, _, reply) = collect(response).await;
            let reply = String::from_utf8_lossy(&reply);
            assert_eq!(status, expected, "{granularity}: {reply}");
            if expected == 400 {
                assert!(reply.contains("timestamp_granularities[]"), "{reply}");
                assert!(reply.contains("\\\"sentence\\\""), "{reply}");
            }
        }
        assert_eq!(gw.all_recorded().len(), 1);
    });
}

#[test]
fn bad_requests_fail_before_any_backend_is_called() {
    run(async {
        let gw = start(Setup {
            max_body_bytes: 4096,
            ..Setup::default()
        })
        .await;
        /// method, path, subscription key, body, expected status, expected error code
        type Case = (
            &'static str,
            &'static str,
            Option<&'static str>,
            String,
            u16,
            &'static str,
        );
        let cases: Vec<Case> = vec![
            (
                "POST",
                "/openai/deployments/gpt-4o/chat/completions",
                Some(CLIENT_KEY),
                HELLO.into(),
                400,
                "MissingApiVersion",
            ),
            (
                "POST",
                "/openai/deployments/gpt-4o/chat/completions?api-version=2023-05-15",
                Some(CLIENT_KEY),
                HELLO.into(),
                400,
                "UnsupportedApiVersion",
            ),
            (
                "POST",
                "/openai/deployments/gpt-4o/chat/completion?api-version=2024-10-21",
                Some(CLIENT_KEY),
                HELLO.into(),
                404,
                "NotFound",
            ),
            (
                "POST",
                "/elsewhere?api-version=2024-10-21",
                Some(CLIENT_KEY),
                HELLO.into(),
                404,
                "NotFound",
            ),
            (
                "POST",
                "/openai/assistants?api-version=2024-10-21",
                Some(CLIENT_KEY),
                "{}".into(),
                404,
                "NotFound",
            ),
            (
                "GET",
                CHAT,
                Some(CLIENT_KEY),
                String::new(),
                405,
                "MethodNotAllowed",
            ),
            ("POST", CHAT, None, HELLO.into(), 401, "Unauthorized"),
            (
                "POST",
                CHAT,
                Some("wrong-key"),
                HELLO.into(),
                401,
                "Unauthorized",
            ),
            (
                "POST",
                CHAT,
                Some(CLIENT_KEY),
                "{\"messages\": [".into(),
                400,
                "InvalidRequest",
            ),
            (
                "POST",
                CHAT,
                Some(CLIENT_KEY),
                r#"{"messages": [{"role": "user", "content": 5}]}"#.into(),
                400,
                "InvalidRequest",
            ),
            (
                "POST",
                CHAT,
                Some(CLIENT_KEY),
                r#"{"messages": "hi"}"#.into(),
                400,
                "InvalidRequest",
            ),
            (
                "POST",
                CHAT,
                Some(CLIENT_KEY),
                String::new(),
                400,
                "InvalidRequest",
            ),
            (
                "POST",
                CHAT,
                Some(CLIENT_KEY),
                format!(
                    r#"{{"messages": [{{"role": "user", "content": "{}"}}]}}"#,
                    "x".repeat(5000)
                ),
                413,
                "PayloadTooLarge",
            ),
            (
                "GET",
                "/openai/assistants?api-version=2024-09-01-preview&limit=many",
                Some(CLIENT_KEY),
                String::new(),
                400,
                "InvalidRequest",
            ),
        ];
        for (method, path, key, body, status, code) in cases {
            let mut request = gw
                .client
                .request(method.parse().expect("method"), gw.url(path))
                .insert_header(("content-type", "application/json"));
            if let Some(key) = key {
                request = request.insert_header(("api-key", key));
            }
            let (got, headers, reply) =
                collect(request.send_body(body).await.expect("answer")).await;
            assert_eq!(
                (got, error_code(&reply).as_str()),
                (status, code),
                "{method} {path}: {}",
                String::from_utf8_lossy(&reply)
            );
            assert!(headers["content-type"].starts_with("application/json"));
            if status == 405 {
                assert_eq!(headers["allow"], "POST");
            }
        }
        // Missing and unknown versions list what is supported; a bad field is named.
        let (_, _, reply) = gw
            .post_json("/openai/deployments/gpt-4o/chat/completions", HELLO)
            .await;
        assert!(String::from_utf8_lossy(&reply).contains("2024-10-21"));
        let (_, _, reply) = gw
            .post_json(CHAT, r#"{"messages": [{"role": "robot", "content": "x"}]}"#)
            .await;
        let error: serde_json::Value = serde_json::from_slice(&reply).expect("json");
        assert_eq!(error["error"]["param"], "messages[0].role");
        let (status, _, reply) = collect(
            gw.client
                .post(gw.url(CHAT))
                .insert_header(("api-key", CLIENT_KEY))
                .insert_header(("content-type", "text/plain"))
                .send_body("hi")
                .await
                .expect("answer"),
        )
        .await;
        assert_eq!(
            (status, error_code(&reply).as_str()),
            (415, "UnsupportedMediaType")
        );
        assert!(
            gw.all_recorded().is_empty(),
            "a backend was called for a bad request"
        );
    });
}

#[test]
fn unreachable_and_slow_backends_give_502_and_504_without_leaking_addresses() {
    run(async {
        let dead = Backend {
            dead: true,
            ..Backend::new("dead", "Nowhere")
        };
        let gw = start(Setup {
            backends: vec![dead],
            ..Setup::default()
        })
        .await;
        let (status, _, body) = gw.post_json(CHAT, HELLO).await;
        assert_eq!((status, error_code(&body).as_str()), (502, "BadGateway"));
        let text = String::from_utf8_lossy(&body);
        assert!(
            !text.contains("127.0.0.1") && !text.contains(gw.keys[0].as_str()),
            "{text}"
        );

        let gw = start(Setup {
            backends: vec![Backend::new("eastus", "East US")],
            response_ms: 300,
            ..Setup::default()
        })
        .await;
        let started = Instant::now();
        let (status, _, body) = gw
            .post_json(
                "/openai/deployments/slow/chat/completions?api-version=2024-10-21",
                HELLO,
            )
            .await;
        assert_eq!(
            (status, error_code(&body).as_str()),
            (504, "GatewayTimeout")
        );
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(!String::from_utf8_lossy(&body).contains("127.0.0.1"));
    });
}

const GPT: &str = "/openai/deployments/gpt/chat/completions?api-version=2024-10-21";

/// East US and West Europe; East US serves [`GPT`] from a deployment over its quota (429,
/// retry-after 7 s).
async fn start_with_gpt_over_quota_in_east_us() -> Running {
    let mut east = Backend::new("eastus", "East US");
    east.deployment_map
        .insert("gpt".into(), "rate-limited".into());
    start(Setup {
        backends: vec![east, Backend::new("westeurope", "West Europe")],
        ..Setup::default()
    })
    .await
}

#[test]
fn a_backend_over_its_quota_hands_the_call_on_and_rests_for_its_retry_after() {
    run(async {
        let gw = start_with_gpt_over_quota_in_east_us().await;
        for _ in 0..4 {
            let (status, headers, _) = gw.post_json(GPT, HELLO).await;
            assert_eq!(status, 200);
            assert_eq!(headers["x-ms-region"], "West Europe");
            assert_eq!(headers["x-aoai-gateway-backend"], "westeurope");
        }
        // Tried once, then left alone while it rests; the client's bytes went to both.
        assert_eq!(gw.sims[0].recorded().len(), 1);
        assert_eq!(gw.sims[1].recorded().len(), 4);
        assert_eq!(gw.sims[0].recorded()[0].body, HELLO.as_bytes());
        // Quotas are per deployment: East US still takes its turn for the others.
        let mut regions = Vec::new();
        for _ in 0..2 {
            let (status, headers, _) = gw.post_json(CHAT, HELLO).await;
            assert_eq!(status, 200);
            regions.push(headers["x-ms-region"].clone());
        }
        regions.sort();
        assert_eq!(regions, ["East US", "West Europe"]);

        // When every backend is over its quota the client gets Azure's own 429, after one try
        // on each backend.
        let gw = start(Setup::default()).await;
        let (status, headers, _) = gw
            .post_json(
                "/openai/deployments/rate-limited/chat/completions?api-version=2024-10-21",
                HELLO,
            )
            .await;
        assert_eq!((status, headers["retry-after"].as_str()), (429, "7"));
        assert_eq!(gw.all_recorded().len(), 2);
    });
}

#[test]
fn an_unreachable_backend_is_skipped_and_a_timeout_is_not_retried() {
    run(async {
        let dead = Backend {
            dead: true,
            ..Backend::new("dead", "Nowhere")
        };
        let gw = start(Setup {
            backends: vec![dead, Backend::new("eastus", "East US")],
            response_ms: 300,
            ..Setup::default()
        })
        .await;
        for _ in 0..3 {
            let (status, headers, _) = gw.post_json(CHAT, HELLO).await;
            assert_eq!(status, 200);
            assert_eq!(headers["x-aoai-gateway-backend"], "eastus");
        }

        // A backend that timed out may still be working on the call, and billing it.
        let gw = start(Setup {
            response_ms: 300,
            ..Setup::default()
        })
        .await;
        let (status, _, _) = gw
            .post_json(
                "/openai/deployments/slow/chat/completions?api-version=2024-10-21",
                HELLO,
            )
            .await;
        assert_eq!(status, 504);
        assert_eq!(gw.all_recorded().len(), 1);
    });
}

#[test]
fn metrics_count_requests_backend_calls_and_hand_ons() {
    run(async {
        let gw = start_with_gpt_over_quota_in_east_us().await;
        assert_eq!(gw.post_json(GPT, HELLO).await.0, 200);
        assert_eq!(gw.post_json(CHAT, r#"{"messages": 5}"#).await.0, 400);
        let unauthorized = gw
            .client
            .post(gw.url(CHAT))
            .send_body(HELLO)
            .await
            .expect("gateway answers");
        assert_eq!(unauthorized.status().as_u16(), 401);

        let (status, headers, body) = gw.get("/metrics").await;
        assert_eq!(status, 200);
        assert!(headers["content-type"].starts_with("text/plain; version=0.0.4"));
        let text = String::from_utf8_lossy(&body);
        for line in [
            r#"aoai_gateway_requests_total{subscription="team-a",code="200"} 1"#,
            r#"aoai_gateway_requests_total{subscription="team-a",code="400"} 1"#,
            r#"aoai_gateway_requests_total{subscription="-",code="401"} 1"#,
            r#"aoai_gateway_backend_calls_total{backend="eastus",code="429"} 1"#,
            r#"aoai_gateway_backend_calls_total{backend="westeurope",code="200"} 1"#,
            r#"aoai_gateway_backend_handed_on_total{backend="eastus"} 1"#,
            r#"aoai_gateway_backend_handed_on_total{backend="westeurope"} 0"#,
            r#"aoai_gateway_backend_ratelimit_remaining_tokens{backend="eastus"} 0"#,
            r#"aoai_gateway_backend_response_seconds_count{backend="eastus"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
        // The gateway's own pages are not API requests; the metrics hold no key.
        assert!(!text.contains("code=\"404\""));
        for key in &gw.keys {
            assert!(!text.contains(key.as_str()));
        }
        assert!(!text.contains(CLIENT_KEY));
    });
}

#[test]
fn azure_answers_pass_through_with_their_headers() {
    run(async {
        let gw = start(Setup::default()).await;
        let (status, headers, body) = gw
            .post_json(
                "/openai/deployments/rate-limited/chat/completions?api-version=2024-10-21",
                HELLO,
            )
            .await;
        assert_eq!(status, 429);
        assert_eq!(headers["retry-after"], "7");
        assert_eq!(headers["x-ratelimit-remaining-tokens"], "0");
        assert!(headers.contains_key("x-ms-region") && headers.contains_key("apim-request-id"));
        assert_eq!(error_code(&body), "429");
    });
}

#[test]
fn deployment_names_are_mapped_per_backend() {
    run(async {
        let mut east = Backend::new("eastus", "East US");
        east.deployment_map
            .insert("chat".into(), "gpt-4o-2024-08-06".into());
        let gw = start(Setup {
            backends: vec![east],
            ..Setup::default()
        })
        .await;
        let (status, headers, _) = gw
            .post_json(
                "/openai/deployments/chat/chat/completions?api-version=2024-10-21",
                HELLO,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(headers["x-ms-deployment-name"], "gpt-4o-2024-08-06");
        assert_eq!(
            gw.all_recorded()[0].path,
            "/openai/deployments/gpt-4o-2024-08-06/chat/completions"
        );
    });
}

#[test]
fn stored_objects_stay_on_the_backend_that_holds_them() {
    run(async {
        let gw = start(Setup::default()).await;
        let (status, headers, body) = gw
            .post_json(
                "/openai/assistants?api-version=2024-09-01-preview",
                r#"{"model": "gpt-4o", "name": "helper"}"#,
            )
            .await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let created: serde_json::Value = serde_json::from_slice(&body).expect("json");
        let id = created["id"].as_str().expect("id");
        for _ in 0..3 {
            let response = gw
                .client
                .get(gw.url(&format!(
                    "/openai/assistants/{id}?api-version=2024-09-01-preview"
                )))
                .insert_header(("api-key", CLIENT_KEY))
                .send()
                .await
                .expect("answer");
            let (status, again, _) = collect(response).await;
            assert_eq!(status, 200);
            assert_eq!(again["x-ms-region"], headers["x-ms-region"]);
        }
    });
}
