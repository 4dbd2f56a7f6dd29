//! The simulated backend stands in for Azure in the demo, the tests and the benchmark, so its
//! answers must be what the spec says Azure answers: each JSON body it sends (and each event of
//! a stream) must read into the generated response model of its operation and status.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::rt::System;
use aoai_gateway::generated::API_VERSIONS;
use aoai_gateway::sim::{self, Simulator, SimulatorConfig};
use aoai_runtime::catalog::Roundtrip;
use serde_json::Value;

const KEY: &str = "simulated-key";

/// The roundtrip function for an operation's response of one status and media type.
fn model(version: &str, operation: &str, status: &str) -> Roundtrip {
    let api = API_VERSIONS
        .iter()
        .find(|v| v.version == version)
        .expect("version");
    let route = api
        .routes
        .iter()
        .find(|r| r.operation_id == operation)
        .unwrap_or_else(|| panic!("{operation} in {version}"));
    let response = route
        .responses
        .iter()
        .find(|r| r.status == status)
        .expect("status");
    let media = response
        .content
        .iter()
        .find(|m| m.media_type == "application/json")
        .expect("json media");
    media.roundtrip.expect("a model")
}

fn conforms(version: &str, operation: &str, status: &str, body: &[u8]) {
    let value: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "{operation}: not JSON ({e}): {}",
            String::from_utf8_lossy(body)
        )
    });
    let check = model(version, operation, status);
    if let Err(e) = check(&value) {
        panic!(
            "{version} {operation} {status}: the simulator's answer does not match the spec: {e}\n{value:#}"
        );
    }
}

async fn call(
    base: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Vec<u8>) {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    let mut response = client
        .request(method.parse().expect("method"), format!("{base}{path}"))
        .insert_header(("api-key", KEY))
        .insert_header(("content-type", content_type))
        .send_body(body)
        .await
        .expect("answer");
    let body = response.body().limit(16 << 20).await.expect("body");
    (response.status().as_u16(), body.to_vec())
}

#[test]
fn every_simulated_answer_matches_the_spec() {
    System::new().block_on(async {
        let mut config = SimulatorConfig::new("East US", KEY);
        config.chunk_delay = Duration::ZERO;
        let (server, addr) = sim::start(Simulator::new(config), TcpListener::bind("127.0.0.1:0").expect("bind")).expect("start");
        actix_web::rt::spawn(server);
        let base = format!("http://{addr}/openai");
        let json = "application/json";

        for version in ["2024-10-21", "2024-09-01-preview"] {
            let q = format!("?api-version={version}");
            let chat = br#"{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}]}"#.to_vec();
            let (status, body) = call(&base, "POST", &format!("/deployments/gpt-4o/chat/completions{q}"), json, chat).await;
            assert_eq!(status, 200);
            conforms(version, "ChatCompletions_Create", "200", &body);

            let stream = br#"{"messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}"#.to_vec();
            let (_, body) = call(&base, "POST", &format!("/deployments/gpt-4o/chat/completions{q}"), json, stream).await;
            let text = String::from_utf8(body).expect("utf-8");
            let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).map(|e| e.strip_prefix("data: ").expect("data: framing")).collect();
            assert_eq!(events.last(), Some(&"[DONE]"));
            for event in &events[..events.len() - 1] {
                conforms(version, "ChatCompletions_Create", "200", event.as_bytes());
            }

            let (_, body) = call(&base, "POST", &format!("/deployments/davinci/completions{q}"), json, br#"{"prompt":"once upon"}"#.to_vec()).await;
            conforms(version, "Completions_Create", "200", &body);

            let (_, body) = call(&base, "POST", &format!("/deployments/embed/embeddings{q}"), json, br#"{"input":["a","b"],"dimensions":8}"#.to_vec()).await;
            conforms(version, "embeddings_create", "200", &body);

            for format in ["json", "verbose_json"] {
                let form = format!("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\nRIFF\r\n--b\r\nContent-Disposition: form-data; name=\"response_format\"\r\n\r\n{format}\r\n--b--\r\n");
                let (status, body) = call(&base, "POST", &format!("/deployments/whisper/audio/transcriptions{q}"), "multipart/form-data; boundary=b", form.into_bytes()).await;
                assert_eq!(status, 200);
                conforms(version, "Transcriptions_Create", "200", &body);
            }

            let (_, body) = call(&base, "POST", &format!("/deployments/dalle/images/generations{q}"), json, br#"{"prompt":"a cat"}"#.to_vec()).await;
            conforms(version, "ImageGenerations_Create", "200", &body);

            let (status, body) = call(&base, "POST", &format!("/deployments/rate-limited/chat/completions{q}"), json, br#"{"messages":[]}"#.to_vec()).await;
            assert_eq!(status, 429);
            conforms(version, "ChatCompletions_Create", "default", &body);
        }

        let q = "?api-version=2024-09-01-preview";
        let preview = "2024-09-01-preview";
        let (_, body) = call(&base, "POST", &format!("/assistants{q}"), json, br#"{"model":"gpt-4o","name":"helper"}"#.to_vec()).await;
        conforms(preview, "Create_Assistant", "200", &body);
        let id = serde_json::from_slice::<Value>(&body).expect("json")["id"].as_str().expect("id").to_string();
        let (_, body) = call(&base, "GET", &format!("/assistants/{id}{q}"), json, Vec::new()).await;
        conforms(preview, "Get_Assistant", "200", &body);
        let (_, body) = call(&base, "GET", &format!("/assistants{q}"), json, Vec::new()).await;
        conforms(preview, "List_Assistants", "200", &body);
        let (_, body) = call(&base, "POST", &format!("/threads{q}"), json, b"{}".to_vec()).await;
        conforms(preview, "Create_Thread", "200", &body);
        let thread = serde_json::from_slice::<Value>(&body).expect("json")["id"].as_str().expect("id").to_string();
        let (_, body) = call(&base, "POST", &format!("/threads/{thread}/messages{q}"), json, br#"{"role":"user","content":"hi"}"#.to_vec()).await;
        conforms(preview, "Create_Message", "200", &body);
        let (_, body) = call(&base, "POST", &format!("/threads/{thread}/runs{q}"), json, format!(r#"{{"assistant_id":"{id}"}}"#).into_bytes()).await;
        conforms(preview, "Create_Run", "200", &body);
        let (_, body) = call(&base, "POST", &format!("/vector_stores{q}"), json, br#"{"name":"docs"}"#.to_vec()).await;
        conforms(preview, "Create_Vector_Store", "200", &body);
        let (_, body) = call(&base, "DELETE", &format!("/assistants/{id}{q}"), json, Vec::new()).await;
        conforms(preview, "Delete_Assistant", "200", &body);
    });
}
