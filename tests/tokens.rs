//! Tokens: the usage of every answer read exactly as it passes (JSON answers and streams, with
//! and without the client asking for it), reasoning and cached tokens, estimates where no usage
//! comes (a version that cannot ask, a stream cut short), retrievals and runs counted once, and
//! one access record per call with its id and tokens.

mod common;

use aoai_gateway::sim::MODEL;
use aoai_gateway::tokens::tokenizer::Encoding;
use common::{Backend, CLIENT_KEY, Running, Setup, capture_log, run, start, tokens};
use serde_json::Value;

const PREVIEW: &str = "2024-09-01-preview";
const STABLE: &str = "2024-10-21";

fn chat(deployment: &str, version: &str) -> String {
    format!("/openai/deployments/{deployment}/chat/completions?api-version={version}")
}

/// One backend, so that a call through the gateway and a call straight to the backend meet the
/// same simulated resource.
async fn one_backend() -> Running {
    start(Setup {
        backends: vec![Backend::new("eastus", "East US")],
        ..Setup::default()
    })
    .await
}

/// A call straight to the simulated resource, as the gateway would make it.
async fn direct(gw: &Running, path: &str, body: &str) -> String {
    let mut response = gw
        .client
        .post(format!("{}{path}", gw.sim_urls[0]))
        .insert_header(("api-key", gw.keys[0].as_str()))
        .insert_header(("content-type", "application/json"))
        .send_body(body.to_string())
        .await
        .expect("simulator answers");
    let body = response.body().await.expect("body");
    String::from_utf8_lossy(&body).into_owned()
}

/// What differs between two answers to the same request: their ids and times.
fn normalized(answer: &str) -> String {
    let mut out = String::with_capacity(answer.len());
    let mut rest = answer;
    loop {
        let next = ["\"created\":", "\"id\":\"chatcmpl-"]
            .iter()
            .filter_map(|m| rest.find(m).map(|i| (i, *m)))
            .min();
        let Some((i, marker)) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..i + marker.len()]);
        rest = &rest[i + marker.len()..];
        let end = rest
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(rest.len());
        out.push('_');
        rest = &rest[end..];
    }
}

/// The `data` of each event of a stream.
fn events(stream: &str) -> Vec<&str> {
    stream
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .collect()
}

/// The usage chunk's usage.
fn stream_usage(stream: &str) -> Option<Value> {
    events(stream)
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find_map(|v| v.get("usage").filter(|u| !u.is_null()).cloned())
}

/// Tokens of the text a stream's chunks carry, counted delta by delta.
fn delta_tokens(stream: &str) -> u64 {
    events(stream)
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
                .map(|t| Encoding::O200k.count(t))
        })
        .sum()
}

#[test]
fn the_usage_of_a_json_answer_is_counted_exactly() {
    let log = capture_log();
    run(async {
        let gw = one_backend().await;
        let (status, headers, body) = gw
            .post_json(
                &chat("gpt-4o", STABLE),
                r#"{"messages":[{"role":"user","content":"How many tokens is this?"}]}"#,
            )
            .await;
        assert_eq!(status, 200);
        let answer: Value = serde_json::from_slice(&body).unwrap();
        let usage = &answer["usage"];
        let metrics = gw.metrics().await;
        let reported = |kind| tokens(&metrics, "team-a", "gpt-4o", kind, "reported");
        assert_eq!(reported("prompt"), usage["prompt_tokens"].as_u64().unwrap());
        assert_eq!(
            reported("completion"),
            usage["completion_tokens"].as_u64().unwrap()
        );
        assert_eq!(
            tokens(&metrics, "team-a", "gpt-4o", "prompt", "estimated"),
            0
        );
        // One id for the call: on the answer, in the access record, and sent to Azure.
        let id = headers
            .get("x-aoai-gateway-request-id")
            .expect("request id")
            .clone();
        let upstream = &gw.all_recorded()[0];
        assert_eq!(upstream.header("x-ms-client-request-id"), Some(id.as_str()));
        let record = log.record(&id);
        assert_eq!(record["route"], "ChatCompletions_Create");
        assert_eq!(record["status"], 200);
        assert_eq!(record["subscription"], "team-a");
        assert_eq!(record["deployment"], "gpt-4o");
        assert_eq!(record["backend"], "eastus");
        assert_eq!(record["attempts"], 1);
        assert_eq!(record["end"], "complete");
        assert_eq!(record["bytes"], body.len());
        assert_eq!(record["prompt_tokens"], usage["prompt_tokens"]);
        assert_eq!(record["completion_tokens"], usage["completion_tokens"]);
        assert_eq!(record["tokens"], "reported");
        assert!(record["ttfb_ms"].as_f64().is_some() && record["duration_ms"].as_f64().is_some());

        // The client's own id is kept, and the gateway's errors carry it.
        let response = gw
            .client
            .post(gw.url(&chat("gpt-4o", STABLE)))
            .insert_header(("api-key", CLIENT_KEY))
            .insert_header(("x-ms-client-request-id", "my-call-17"))
            .insert_header(("content-type", "application/json"))
            .send_body(r#"{"messages":"not a list"}"#)
            .await
            .unwrap();
        let (status, headers, body) = common::collect(response).await;
        assert_eq!(status, 400);
        assert_eq!(headers["x-aoai-gateway-request-id"], "my-call-17");
        let error: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(error["error"]["request_id"], "my-call-17");
        assert_eq!(log.record("my-call-17")["status"], 400);
    });
}

#[test]
fn a_client_that_asks_for_usage_gets_its_stream_as_the_backend_sent_it() {
    run(async {
        let gw = one_backend().await;
        let body = r#"{"messages":[{"role":"user","content":"Count me"}],"stream":true,"stream_options":{"include_usage":true}}"#;
        let (status, _, got) = gw.post_json(&chat("gpt-4o", PREVIEW), body).await;
        assert_eq!(status, 200);
        let got = String::from_utf8_lossy(&got).into_owned();
        let upstream = &gw.all_recorded()[0];
        assert_eq!(upstream.body, body.as_bytes(), "the request went as sent");
        let direct = direct(&gw, &chat("gpt-4o", PREVIEW), body).await;
        assert_eq!(normalized(&got), normalized(&direct));
        let usage = stream_usage(&got).expect("the usage chunk");
        let metrics = gw.metrics().await;
        assert_eq!(
            tokens(&metrics, "team-a", "gpt-4o", "completion", "reported"),
            usage["completion_tokens"].as_u64().unwrap()
        );
        assert_eq!(
            tokens(&metrics, "team-a", "gpt-4o", "prompt", "reported"),
            usage["prompt_tokens"].as_u64().unwrap()
        );
    });
}

#[test]
fn a_client_that_did_not_ask_gets_the_stream_it_would_have_got() {
    run(async {
        let gw = one_backend().await;
        let body = r#"{"messages":[{"role":"user","content":"Count me too"}],"stream":true}"#;
        let (status, _, got) = gw.post_json(&chat("gpt-4o", PREVIEW), body).await;
        assert_eq!(status, 200);
        let got = String::from_utf8_lossy(&got).into_owned();
        // The one change to the client's bytes: the gateway asked for the usage.
        let upstream = &gw.all_recorded()[0];
        assert_eq!(
            String::from_utf8_lossy(&upstream.body),
            r#"{"messages":[{"role":"user","content":"Count me too"}],"stream":true,"stream_options":{"include_usage":true}}"#
        );
        // The client sees neither the usage chunk nor a `usage` member, and every other byte
        // is what the backend sends a client that does not ask.
        assert!(!got.contains("usage"), "{got}");
        let unasked = direct(&gw, &chat("gpt-4o", PREVIEW), body).await;
        assert_eq!(normalized(&got), normalized(&unasked));
        assert!(got.ends_with("data: [DONE]\n\n"));
        // Its tokens are what the backend reports when asked.
        let asked = direct(
            &gw,
            &chat("gpt-4o", PREVIEW),
            &String::from_utf8_lossy(&upstream.body),
        )
        .await;
        let usage = stream_usage(&asked).expect("usage when asked");
        let metrics = gw.metrics().await;
        assert_eq!(
            tokens(&metrics, "team-a", "gpt-4o", "completion", "reported"),
            usage["completion_tokens"].as_u64().unwrap()
        );
        assert_eq!(
            tokens(&metrics, "team-a", "gpt-4o", "completion", "estimated"),
            0
        );
    });
}

#[test]
fn a_stream_on_a_version_that_cannot_ask_is_estimated_with_the_tokenizer() {
    run(async {
        let gw = one_backend().await;
        let body = r#"{"messages":[{"role":"user","content":"Hello world"}],"stream":true}"#;
        let (status, _, got) = gw.post_json(&chat("gpt-4o", STABLE), body).await;
        assert_eq!(status, 200);
        let got = String::from_utf8_lossy(&got).into_owned();
        assert_eq!(
            gw.all_recorded()[0].body,
            body.as_bytes(),
            "2024-10-21 has no stream_options"
        );
        let metrics = gw.metrics().await;
        // "Hello world" is 2 tokens, a message 3 more, priming the reply 3.
        assert_eq!(
            tokens(&metrics, "team-a", "gpt-4o", "prompt", "estimated"),
            8
        );
        let completion = delta_tokens(&got);
        assert!(completion > 5, "{got}");
        assert_eq!(
            tokens(&metrics, "team-a", "gpt-4o", "completion", "estimated"),
            completion
        );
        assert_eq!(
            tokens(&metrics, "team-a", "gpt-4o", "prompt", "reported"),
            0
        );
    });
}

#[test]
fn reasoning_and_cached_tokens_are_counted() {
    run(async {
        let gw = one_backend().await;
        let (status, _, body) = gw
            .post_json(
                &chat("o1-mini", STABLE),
                r#"{"messages":[{"role":"user","content":"Think hard"}],"max_completion_tokens":500}"#,
            )
            .await;
        assert_eq!(status, 200);
        let answer: Value = serde_json::from_slice(&body).unwrap();
        let reasoning = answer["usage"]["completion_tokens_details"]["reasoning_tokens"]
            .as_u64()
            .unwrap();
        assert!(reasoning * 10 > answer["usage"]["completion_tokens"].as_u64().unwrap() * 8);
        let long = "word ".repeat(1200);
        let prompt = format!(r#"{{"messages":[{{"role":"user","content":"{long}"}}]}}"#);
        let mut cached = 0;
        for _ in 0..2 {
            let (status, _, body) = gw.post_json(&chat("gpt-4o", STABLE), &prompt).await;
            assert_eq!(status, 200);
            let answer: Value = serde_json::from_slice(&body).unwrap();
            cached = answer["usage"]["prompt_tokens_details"]["cached_tokens"]
                .as_u64()
                .unwrap();
        }
        assert!(cached >= 1024, "the second is served from the cache");
        let metrics = gw.metrics().await;
        assert_eq!(
            tokens(&metrics, "team-a", "o1-mini", "reasoning", "reported"),
            reasoning
        );
        assert_eq!(
            tokens(&metrics, "team-a", "gpt-4o", "cached", "reported"),
            cached
        );
    });
}

#[test]
fn a_stream_cut_half_way_records_what_was_seen_and_says_so() {
    let log = capture_log();
    run(async {
        let gw = one_backend().await;
        let reply = common::raw_exchange(
            gw.addr,
            common::raw_post(
                &chat("cut-stream", PREVIEW),
                r#"{"messages":[{"role":"user","content":"Hello world"}],"stream":true}"#,
                "x-ms-client-request-id: cut-1\r\n",
            ),
            std::time::Duration::from_secs(10),
        )
        .await;
        let (seen, terminated) = reply.dechunked();
        let failed = !terminated && reply.closed;
        assert!(failed, "a cut stream must fail for the client");
        let seen = String::from_utf8_lossy(&seen).into_owned();
        assert!(!seen.contains("usage"), "{seen}");
        let completion = delta_tokens(&seen);
        assert!(completion > 0, "{seen}");
        let metrics = gw.metrics().await;
        assert_eq!(
            tokens(&metrics, "team-a", "cut-stream", "completion", "estimated"),
            completion
        );
        let record = log.record("cut-1");
        assert_eq!(record["end"], "cut");
        assert_eq!(record["tokens"], "estimated");
        assert_eq!(record["completion_tokens"], completion);
        assert_eq!(record["level"], "WARN");
    });
}

#[test]
fn responses_are_counted_once_and_runs_once_whoever_asks() {
    let log = capture_log();
    run(async {
        let gw = one_backend().await;
        let (status, _, body) = gw
            .post_json(
                "/openai/v1/responses",
                r#"{"model":"gpt-4o","input":"Tell me something"}"#,
            )
            .await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let response: Value = serde_json::from_slice(&body).unwrap();
        let input = response["usage"]["input_tokens"].as_u64().unwrap();
        let id = response["id"].as_str().unwrap();
        let read = gw
            .client
            .get(gw.url(&format!("/openai/v1/responses/{id}")))
            .insert_header(("api-key", common::CLIENT_KEY))
            .insert_header(("x-ms-client-request-id", "read-1"))
            .send()
            .await
            .expect("answer");
        assert_eq!(read.status().as_u16(), 200);
        // Its record names the object it followed.
        assert_eq!(log.record("read-1")["object"], format!("response {id}"));
        let metrics = gw.metrics().await;
        assert_eq!(
            tokens(&metrics, "team-a", "gpt-4o", "prompt", "reported"),
            input
        );

        // A run's usage, from the answer that shows it done, not again from a poll.
        let (_, _, thread) = gw
            .post_json(&format!("/openai/threads?api-version={PREVIEW}"), "{}")
            .await;
        let thread: Value = serde_json::from_slice(&thread).unwrap();
        let runs = format!(
            "/openai/threads/{}/runs?api-version={PREVIEW}",
            thread["id"].as_str().unwrap()
        );
        // The published spec wants the thread's id in the body too; the assistant must be the
        // caller's own.
        let (_, _, assistant) = gw
            .post_json(
                &format!("/openai/assistants?api-version={PREVIEW}"),
                r#"{"model":"gpt-4o"}"#,
            )
            .await;
        let assistant: Value = serde_json::from_slice(&assistant).unwrap();
        let body = format!(
            r#"{{"assistant_id":"{}","thread_id":"{}"}}"#,
            assistant["id"].as_str().unwrap(),
            thread["id"].as_str().unwrap()
        );
        let (status, _, run) = gw.post_json(&runs, &body).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&run));
        let run: Value = serde_json::from_slice(&run).unwrap();
        let total = run["usage"]["total_tokens"].as_u64().unwrap();
        let poll = runs.replace("/runs?", &format!("/runs/{}?", run["id"].as_str().unwrap()));
        for _ in 0..2 {
            assert_eq!(gw.get_with_key(&poll).await.0, 200);
        }
        let metrics = gw.metrics().await;
        let spent = tokens(&metrics, "team-a", "-", "prompt", "reported")
            + tokens(&metrics, "team-a", "-", "completion", "reported");
        assert_eq!(spent, total);
        let _ = MODEL;
    });
}
