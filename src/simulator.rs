//! A simulated Azure OpenAI resource on loopback, for the demo, the tests and the benchmark,
//! until real endpoints are configured. It answers the shipped operations the way the service
//! does: the same paths under `/openai`, an `api-key` check, Azure's error bodies, server-sent
//! events framed as `data: {json}\n\n` ending in `data: [DONE]`, and Azure's response headers
//! (`x-ms-region`, `apim-request-id`, `x-request-id`, `x-ratelimit-remaining-requests`,
//! `x-ratelimit-remaining-tokens`, and `retry-after` on a 429).
//!
//! A few deployment names act out what a real resource does under stress:
//! - `rate-limited` answers 429 with `retry-after`, as a deployment over its quota;
//! - `slow` waits [`SimulatorConfig::slow_delay`] before answering;
//! - `server-error` answers 500 without `retry-after`, as a failing deployment;
//! - `cut-stream` starts its answer, then drops the connection half-way, as a backend whose
//!   process dies or whose connection is reset mid-answer;
//! - any name outside [`SimulatorConfig::deployments`] (when that list is not empty) is 404
//!   `DeploymentNotFound`.
//!
//! Objects the Assistants API creates (assistants, threads, messages, runs, vector stores) are
//! kept in memory, so a create followed by a get works.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{App, HttpRequest, HttpResponse, HttpResponseBuilder, HttpServer, web};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::{multipart, query};

pub const MODEL: &str = "gpt-4o-2024-08-06";

#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// Reported in `x-ms-region` and in answers, e.g. `East US`.
    pub region: String,
    /// The key clients must send in `api-key`.
    pub api_key: String,
    /// Deployment names this resource has; empty means any name works.
    pub deployments: Vec<String>,
    /// Pause between server-sent events.
    pub chunk_delay: Duration,
    /// How long the `slow` deployment waits before answering.
    pub slow_delay: Duration,
    /// Keep every request for inspection (tests).
    pub record: bool,
    pub workers: usize,
}

impl SimulatorConfig {
    pub fn new(region: &str, api_key: &str) -> SimulatorConfig {
        SimulatorConfig {
            region: region.into(),
            api_key: api_key.into(),
            deployments: Vec::new(),
            chunk_delay: Duration::from_millis(20),
            slow_delay: Duration::from_secs(30),
            record: false,
            workers: 1,
        }
    }
}

/// A request as the simulated resource received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct Simulator {
    config: SimulatorConfig,
    recorded: Mutex<Vec<Recorded>>,
    /// id → (collection path, object)
    objects: Mutex<HashMap<String, (String, Value)>>,
    counter: AtomicU64,
}

impl Simulator {
    pub fn new(config: SimulatorConfig) -> Arc<Simulator> {
        Arc::new(Simulator {
            config,
            recorded: Mutex::new(Vec::new()),
            objects: Mutex::new(HashMap::new()),
            counter: AtomicU64::new(1),
        })
    }

    pub fn config(&self) -> &SimulatorConfig {
        &self.config
    }

    /// Every request received so far (with `record` on).
    pub fn recorded(&self) -> Vec<Recorded> {
        self.recorded.lock().map(|r| r.clone()).unwrap_or_default()
    }

    fn next_id(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    /// A UUID-shaped id, unique per resource and request, like Azure's `apim-request-id`.
    fn request_id(&self) -> String {
        let n = self.next_id();
        let region = self
            .config
            .region
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x1000_0000_01b3)
            });
        let mixed = (n ^ region).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            now() as u32,
            region & 0xffff,
            n & 0xfff,
            (mixed >> 12) & 0xfff,
            mixed & 0xffff_ffff_ffff
        )
    }
}

/// Starts a simulated resource on an already bound listener.
pub fn start(
    sim: Arc<Simulator>,
    listener: TcpListener,
) -> std::io::Result<(actix_web::dev::Server, SocketAddr)> {
    let addr = listener.local_addr()?;
    let workers = sim.config.workers.max(1);
    let data = web::Data::from(sim);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .default_service(web::to(handle))
    })
    .workers(workers)
    .tcp_nodelay(true)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok((server, addr))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Azure's error body.
fn azure_error(status: StatusCode, code: &str, message: &str) -> (StatusCode, Value) {
    (
        status,
        json!({ "error": { "code": code, "message": message } }),
    )
}

/// OpenAI-style error body, which the Assistants API returns.
fn openai_error(status: StatusCode, message: &str) -> (StatusCode, Value) {
    (
        status,
        json!({ "error": { "message": message, "type": "invalid_request_error", "param": null, "code": null } }),
    )
}

async fn handle(req: HttpRequest, body: Bytes, sim: web::Data<Simulator>) -> HttpResponse {
    if sim.config.record
        && let Ok(mut recorded) = sim.recorded.lock()
    {
        recorded.push(Recorded {
            method: req.method().to_string(),
            path: req.path().to_string(),
            query: req.query_string().to_string(),
            headers: req
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.clone(),
        });
    }
    let mut reply = HttpResponse::build(StatusCode::OK);
    reply.insert_header(("x-ms-region", sim.config.region.as_str()));
    let request_id = sim.request_id();
    reply.insert_header(("apim-request-id", request_id.as_str()));
    reply.insert_header(("x-request-id", request_id.as_str()));
    reply.insert_header(("x-content-type-options", "nosniff"));

    let Some(rest) = req.path().strip_prefix("/openai/") else {
        return json_reply(
            reply,
            azure_error(StatusCode::NOT_FOUND, "404", "Resource not found"),
        );
    };
    let key_ok = req
        .headers()
        .get("api-key")
        .is_some_and(|k| k.as_bytes() == sim.config.api_key.as_bytes());
    if !key_ok {
        return json_reply(
            reply,
            azure_error(
                StatusCode::UNAUTHORIZED,
                "401",
                "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
            ),
        );
    }
    if query::get(req.query_string(), "api-version").is_none_or(|v| v.is_empty()) {
        return json_reply(
            reply,
            azure_error(StatusCode::NOT_FOUND, "404", "Resource not found"),
        );
    }
    let segments: Vec<&str> = rest.split('/').collect();
    match segments.as_slice() {
        ["deployments", deployment, operation @ ..] => {
            deployment_call(&sim, reply, &req, deployment, operation, &body).await
        }
        _ => resource_call(&sim, reply, &req, &segments, &body),
    }
}

fn json_reply(mut reply: HttpResponseBuilder, (status, body): (StatusCode, Value)) -> HttpResponse {
    reply.status(status);
    reply.insert_header((
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    ));
    reply.body(body.to_string())
}

fn rate_limit_headers(reply: &mut HttpResponseBuilder, tokens_used: u64) {
    reply.insert_header(("x-ratelimit-remaining-requests", "999"));
    reply.insert_header((
        "x-ratelimit-remaining-tokens",
        (150_000u64.saturating_sub(tokens_used)).to_string(),
    ));
}

async fn deployment_call(
    sim: &Simulator,
    mut reply: HttpResponseBuilder,
    req: &HttpRequest,
    deployment: &str,
    operation: &[&str],
    body: &Bytes,
) -> HttpResponse {
    let op = operation.join("/");
    let operation_id = match op.as_str() {
        "chat/completions" => "ChatCompletions_Create",
        "completions" => "Completions_Create",
        "embeddings" => "Embeddings_Create",
        "audio/transcriptions" => "Transcriptions_Create",
        "audio/translations" => "Translations_Create",
        "audio/speech" => "Speech_Create",
        "images/generations" => "ImageGenerations_Create",
        _ => {
            return json_reply(
                reply,
                azure_error(StatusCode::NOT_FOUND, "404", "Resource not found"),
            );
        }
    };
    if req.method() != actix_web::http::Method::POST {
        return json_reply(
            reply,
            azure_error(StatusCode::METHOD_NOT_ALLOWED, "405", "Method not allowed"),
        );
    }
    if deployment == "rate-limited" {
        reply.insert_header(("retry-after", "7"));
        reply.insert_header(("retry-after-ms", "7000"));
        reply.insert_header(("x-ratelimit-remaining-requests", "0"));
        reply.insert_header(("x-ratelimit-remaining-tokens", "0"));
        let version = query::get(req.query_string(), "api-version")
            .unwrap_or_default()
            .into_owned();
        let message = format!(
            "Requests to the {operation_id} Operation under Azure OpenAI API version {version} have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 7 seconds."
        );
        return json_reply(
            reply,
            azure_error(StatusCode::TOO_MANY_REQUESTS, "429", &message),
        );
    }
    if deployment == "server-error" {
        return json_reply(
            reply,
            azure_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "The server had an error while processing your request. Sorry about that!",
            ),
        );
    }
    if deployment == "slow" {
        tokio::time::sleep(sim.config.slow_delay).await;
    }
    if !sim.config.deployments.is_empty()
        && !sim.config.deployments.iter().any(|d| d == deployment)
        && !ACTED_OUT.contains(&deployment)
    {
        return json_reply(
            reply,
            azure_error(
                StatusCode::NOT_FOUND,
                "DeploymentNotFound",
                "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.",
            ),
        );
    }
    reply.insert_header(("x-ms-deployment-name", deployment));
    reply.insert_header((
        "azureml-model-session",
        format!(
            "d{}-{}",
            sim.next_id() % 97,
            sim.config.region.to_ascii_lowercase().replace(' ', "")
        ),
    ));
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match operation_id {
        "ChatCompletions_Create" | "Completions_Create" => {
            let Ok(request) = serde_json::from_slice::<Value>(body) else {
                return json_reply(
                    reply,
                    azure_error(
                        StatusCode::BAD_REQUEST,
                        "BadRequest",
                        "The request body is not valid JSON.",
                    ),
                );
            };
            text_completion(
                sim,
                reply,
                &request,
                operation_id == "ChatCompletions_Create",
                deployment == "cut-stream",
            )
        }
        "Embeddings_Create" => {
            let Ok(request) = serde_json::from_slice::<Value>(body) else {
                return json_reply(
                    reply,
                    azure_error(
                        StatusCode::BAD_REQUEST,
                        "BadRequest",
                        "The request body is not valid JSON.",
                    ),
                );
            };
            embeddings(reply, &request)
        }
        "Transcriptions_Create" | "Translations_Create" => audio_text(
            sim,
            reply,
            content_type,
            body,
            operation_id == "Transcriptions_Create",
        ),
        "Speech_Create" => speech(sim, reply, content_type, body),
        _ => {
            let request = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
            images(sim, reply, &request)
        }
    }
}

/// Deployment names that act out a stressed resource (see the module note).
const ACTED_OUT: [&str; 4] = ["rate-limited", "slow", "server-error", "cut-stream"];

/// Sends the first half of `frames`, `delay` apart, then drops the connection: the response
/// ends without its terminating chunk, as when a backend dies mid-answer.
fn cut_half_way(
    mut reply: HttpResponseBuilder,
    frames: Vec<Bytes>,
    delay: Duration,
) -> HttpResponse {
    let half = frames.len().div_ceil(2);
    let frames: Vec<Bytes> = frames.into_iter().take(half).collect();
    let stream = futures_util::stream::unfold(frames.into_iter(), move |mut frames| async move {
        // A pause before each frame, and before the cut, lets actix write what came before:
        // it drops unwritten bytes when a body fails.
        tokio::time::sleep(delay.max(Duration::from_millis(20))).await;
        Some(match frames.next() {
            Some(frame) => (Ok(frame), frames),
            None => (
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "simulated: the backend dropped the connection",
                )),
                frames,
            ),
        })
    });
    reply.streaming(stream)
}

fn content_filter() -> Value {
    let safe = json!({ "filtered": false, "severity": "safe" });
    json!({ "hate": safe, "self_harm": safe, "sexual": safe, "violence": safe })
}

/// The text of the last user message (or the prompt), for an answer that shows what was asked.
fn prompt_text(request: &Value) -> String {
    let text = match request.get("messages").and_then(Value::as_array) {
        Some(messages) => messages
            .iter()
            .rev()
            .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
            .and_then(|m| m.get("content"))
            .map(|c| match c {
                Value::String(s) => s.clone(),
                Value::Array(parts) => parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join(" "),
                _ => String::new(),
            }),
        None => request.get("prompt").map(|p| match p {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
    };
    text.unwrap_or_default().chars().take(60).collect()
}

fn words(text: &str) -> u64 {
    text.split_whitespace().count().max(1) as u64
}

fn text_completion(
    sim: &Simulator,
    mut reply: HttpResponseBuilder,
    request: &Value,
    chat: bool,
    cut: bool,
) -> HttpResponse {
    let asked = prompt_text(request);
    let answer = format!("Hello from {}! You asked: {asked}", sim.config.region);
    let prompt_tokens = words(&asked) + 8;
    let completion_tokens = words(&answer);
    let usage = json!({ "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens });
    rate_limit_headers(&mut reply, prompt_tokens + completion_tokens);
    let id = format!(
        "{}-{:x}",
        if chat { "chatcmpl" } else { "cmpl" },
        sim.next_id()
    );
    let created = now();
    let prompt_filter = json!([{ "prompt_index": 0, "content_filter_results": content_filter() }]);
    let streaming = request
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !streaming {
        let body = if chat {
            json!({
                "id": id, "object": "chat.completion", "created": created, "model": MODEL,
                "system_fingerprint": "fp_sim",
                "prompt_filter_results": prompt_filter,
                "choices": [{ "index": 0, "finish_reason": "stop", "logprobs": null,
                              "message": { "role": "assistant", "content": answer, "refusal": null },
                              "content_filter_results": content_filter() }],
                "usage": usage,
            })
        } else {
            json!({
                "id": id, "object": "text_completion", "created": created, "model": MODEL,
                "prompt_filter_results": prompt_filter,
                "choices": [{ "index": 0, "text": answer, "finish_reason": "stop", "logprobs": null,
                              "content_filter_results": content_filter() }],
                "usage": usage,
            })
        };
        if cut {
            let text = body.to_string();
            let (a, b) = text.split_at(text.len() / 2);
            reply.insert_header((header::CONTENT_TYPE, "application/json"));
            let frames = vec![Bytes::from(a.to_string()), Bytes::from(b.to_string())];
            return cut_half_way(reply, frames, sim.config.chunk_delay);
        }
        return json_reply(reply, (StatusCode::OK, body));
    }

    let include_usage = request
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let chunk = |choices: Value| {
        let mut c = json!({ "id": id, "created": created, "model": MODEL, "system_fingerprint": "fp_sim", "choices": choices });
        c["object"] = json!(if chat {
            "chat.completion.chunk"
        } else {
            "text_completion"
        });
        if include_usage {
            c["usage"] = Value::Null;
        }
        c
    };
    let mut events: Vec<Value> = Vec::new();
    let mut first = chunk(json!([]));
    first["prompt_filter_results"] = prompt_filter;
    events.push(first);
    if chat {
        events.push(chunk(json!([{ "index": 0, "delta": { "role": "assistant", "content": "" }, "finish_reason": null, "logprobs": null }])));
    }
    for word in answer.split_inclusive(' ') {
        let mut choice = json!({ "index": 0, "finish_reason": null, "logprobs": null, "content_filter_results": content_filter() });
        if chat {
            choice["delta"] = json!({ "content": word });
        } else {
            choice["text"] = json!(word);
        }
        events.push(chunk(json!([choice])));
    }
    let mut last = json!({ "index": 0, "finish_reason": "stop", "logprobs": null });
    if chat {
        last["delta"] = json!({});
    } else {
        last["text"] = json!("");
    }
    events.push(chunk(json!([last])));
    if include_usage {
        let mut u = chunk(json!([]));
        u["usage"] = usage;
        events.push(u);
    }
    let mut frames: Vec<Bytes> = events
        .into_iter()
        .map(|e| Bytes::from(format!("data: {e}\n\n")))
        .collect();
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    reply.insert_header((header::CONTENT_TYPE, "text/event-stream; charset=utf-8"));
    reply.insert_header((header::CACHE_CONTROL, "no-cache"));
    let delay = sim.config.chunk_delay;
    if cut {
        return cut_half_way(reply, frames, delay);
    }
    let stream = futures_util::stream::unfold(
        (frames.into_iter(), true),
        move |(mut frames, first)| async move {
            let frame = frames.next()?;
            if !first && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Some((Ok::<Bytes, std::io::Error>(frame), (frames, false)))
        },
    );
    reply.streaming(stream)
}

fn embeddings(mut reply: HttpResponseBuilder, request: &Value) -> HttpResponse {
    let inputs: Vec<String> = match request.get("input") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => vec![String::new()],
    };
    let dimensions = request
        .get("dimensions")
        .and_then(Value::as_u64)
        .unwrap_or(1536)
        .clamp(1, 3072) as usize;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            // A deterministic unit-ish vector from the text, so equal inputs embed equally.
            let mut seed = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x1000_0000_01b3)
            });
            let vector: Vec<f64> = (0..dimensions)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    ((seed % 2000) as f64 / 1000.0 - 1.0) / (dimensions as f64).sqrt()
                })
                .collect();
            json!({ "object": "embedding", "index": index, "embedding": vector })
        })
        .collect();
    let tokens: u64 = inputs.iter().map(|i| words(i)).sum();
    rate_limit_headers(&mut reply, tokens);
    json_reply(
        reply,
        (
            StatusCode::OK,
            json!({
                "object": "list", "data": data, "model": "text-embedding-3-small",
                "usage": { "prompt_tokens": tokens, "total_tokens": tokens },
            }),
        ),
    )
}

/// The text fields of a form body (file parts left out).
fn form_fields(content_type: &str, body: &[u8]) -> Option<HashMap<String, String>> {
    let boundary = multipart::boundary(content_type)?;
    let parts = multipart::parts(body, boundary).ok()?;
    Some(
        parts
            .iter()
            .filter(|p| p.filename.is_none())
            .filter_map(|p| Some((p.name.clone(), p.text()?.to_string())))
            .collect(),
    )
}

fn audio_text(
    sim: &Simulator,
    mut reply: HttpResponseBuilder,
    content_type: &str,
    body: &[u8],
    transcribe: bool,
) -> HttpResponse {
    let Some(fields) = form_fields(content_type, body) else {
        return json_reply(
            reply,
            azure_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Expected a multipart/form-data body with a file.",
            ),
        );
    };
    let text = format!(
        "Simulated {} from {}.",
        if transcribe {
            "transcript"
        } else {
            "translation"
        },
        sim.config.region
    );
    rate_limit_headers(&mut reply, 0);
    match fields
        .get("response_format")
        .map(String::as_str)
        .unwrap_or("json")
    {
        "text" => reply
            .content_type("text/plain; charset=utf-8")
            .body(format!("{text}\n")),
        "srt" => reply
            .content_type("text/plain; charset=utf-8")
            .body(format!("1\n00:00:00,000 --> 00:00:02,000\n{text}\n\n")),
        "vtt" => reply
            .content_type("text/plain; charset=utf-8")
            .body(format!(
                "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n{text}\n\n"
            )),
        "verbose_json" => json_reply(
            reply,
            (
                StatusCode::OK,
                json!({
                    "task": if transcribe { "transcribe" } else { "translate" },
                    "language": "english", "duration": 2.0, "text": text,
                    "segments": [{ "id": 0, "seek": 0, "start": 0.0, "end": 2.0, "text": text, "tokens": [50364, 4532, 1223],
                                   "temperature": 0.0, "avg_logprob": -0.25, "compression_ratio": 0.9, "no_speech_prob": 0.01 }],
                }),
            ),
        ),
        _ => json_reply(reply, (StatusCode::OK, json!({ "text": text }))),
    }
}

fn speech(
    sim: &Simulator,
    mut reply: HttpResponseBuilder,
    content_type: &str,
    body: &[u8],
) -> HttpResponse {
    let request: Value = if content_type.starts_with("application/json") {
        serde_json::from_slice(body).unwrap_or(Value::Null)
    } else {
        form_fields(content_type, body)
            .map(|f| json!(f))
            .unwrap_or(Value::Null)
    };
    let format = request
        .get("response_format")
        .and_then(Value::as_str)
        .unwrap_or("mp3");
    let media = match format {
        "opus" => "audio/ogg",
        "aac" => "audio/aac",
        "flac" => "audio/flac",
        "wav" => "audio/wav",
        "pcm" => "audio/pcm",
        _ => "audio/mpeg",
    };
    // Recognizable, binary and not UTF-8: an ID3 tag, then bytes of every value.
    let mut audio = b"ID3\x04\x00\x00\x00\x00\x00\x00".to_vec();
    audio.extend(sim.config.region.bytes());
    audio.extend((0..4096u32).map(|i| (i * 7 % 256) as u8));
    reply.content_type(media).body(audio)
}

fn images(sim: &Simulator, mut reply: HttpResponseBuilder, request: &Value) -> HttpResponse {
    let prompt = request.get("prompt").and_then(Value::as_str).unwrap_or("");
    let n = request
        .get("n")
        .and_then(Value::as_u64)
        .unwrap_or(1)
        .clamp(1, 10);
    let b64 = request.get("response_format").and_then(Value::as_str) == Some("b64_json");
    rate_limit_headers(&mut reply, 0);
    let data: Vec<Value> = (0..n)
        .map(|i| {
            let mut image = json!({
                "revised_prompt": format!("A picture of: {prompt}"),
                "content_filter_results": content_filter(),
                "prompt_filter_results": content_filter(),
            });
            if b64 {
                // A 1×1 PNG.
                image["b64_json"] = json!("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==");
            } else {
                image["url"] = json!(format!("https://dalleprodsec.blob.core.windows.net/private/images/sim-{}/generated_{i:02}.png", sim.next_id()));
            }
            image
        })
        .collect();
    json_reply(
        reply,
        (StatusCode::OK, json!({ "created": now(), "data": data })),
    )
}

// ----- stored objects -----

/// (object type, id prefix) of each collection.
fn collection_kind(name: &str) -> Option<(&'static str, &'static str)> {
    Some(match name {
        "assistants" => ("assistant", "asst_"),
        "threads" => ("thread", "thread_"),
        "messages" => ("thread.message", "msg_"),
        "runs" => ("thread.run", "run_"),
        "steps" => ("thread.run.step", "step_"),
        "vector_stores" => ("vector_store", "vs_"),
        "files" => ("vector_store.file", "file-"),
        "file_batches" => ("vector_store.files_batch", "vsfb_"),
        _ => return None,
    })
}

fn new_object(
    sim: &Simulator,
    collection: &str,
    parents: &[(&str, &str)],
    request: &Value,
) -> Value {
    let (object, prefix) = collection_kind(collection).unwrap_or(("object", "obj_"));
    let id = format!("{prefix}{:024x}", sim.next_id());
    let created_at = now();
    let mut value = match collection {
        "assistants" => json!({
            "name": null, "description": null, "model": MODEL, "instructions": null, "tools": [],
            "tool_resources": {}, "metadata": {}, "temperature": 1.0, "top_p": 1.0, "response_format": "auto",
        }),
        "threads" => json!({ "metadata": {}, "tool_resources": {} }),
        "messages" => {
            let text = match request.get("content") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            json!({
                "status": "completed", "incomplete_details": null, "completed_at": created_at, "incomplete_at": null,
                "role": "user", "assistant_id": null, "run_id": null, "attachments": [], "metadata": {},
                "content": [{ "type": "text", "text": { "value": text, "annotations": [] } }],
            })
        }
        "runs" => json!({
            "status": "completed", "required_action": null, "last_error": null, "expires_at": created_at + 600,
            "started_at": created_at, "cancelled_at": null, "failed_at": null, "completed_at": created_at,
            "incomplete_details": null, "model": MODEL, "instructions": "", "tools": [], "metadata": {},
            "usage": { "prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20 },
            "temperature": 1.0, "top_p": 1.0, "max_prompt_tokens": null, "max_completion_tokens": null,
            "truncation_strategy": { "type": "auto", "last_messages": null }, "tool_choice": "auto",
            "parallel_tool_calls": true, "response_format": "auto",
        }),
        "vector_stores" => json!({
            "name": "", "usage_bytes": 0, "bytes": 0, "status": "completed", "last_active_at": created_at, "metadata": {},
            "file_counts": { "in_progress": 0, "completed": 0, "failed": 0, "cancelled": 0, "total": 0 },
        }),
        _ => json!({}),
    };
    if let (Value::Object(fields), Value::Object(given)) = (&mut value, request) {
        for (k, v) in given {
            // Request-only fields are not part of the stored object; a message's text was
            // already turned into content parts.
            let request_only = matches!(
                k.as_str(),
                "stream" | "additional_messages" | "additional_instructions"
            );
            let reshaped = collection == "messages" && k == "content";
            if !request_only && !reshaped {
                fields.insert(k.clone(), v.clone());
            }
        }
    }
    value["id"] = json!(id);
    value["object"] = json!(object);
    value["created_at"] = json!(created_at);
    for (parent, parent_id) in parents {
        let field = match *parent {
            "threads" => "thread_id",
            "runs" => "run_id",
            "vector_stores" => "vector_store_id",
            "assistants" => "assistant_id",
            _ => continue,
        };
        value[field] = json!(parent_id);
    }
    value
}

fn resource_call(
    sim: &Simulator,
    reply: HttpResponseBuilder,
    req: &HttpRequest,
    segments: &[&str],
    body: &Bytes,
) -> HttpResponse {
    // Split `threads/t1/runs/r1/cancel` into a collection path, an id and an action.
    let mut parents: Vec<(&str, &str)> = Vec::new();
    let mut i = 0;
    let (collection, id, action) = loop {
        let Some(&name) = segments.get(i) else {
            return json_reply(
                reply,
                azure_error(StatusCode::NOT_FOUND, "404", "Resource not found"),
            );
        };
        if collection_kind(name).is_none() {
            return json_reply(
                reply,
                azure_error(StatusCode::NOT_FOUND, "404", "Resource not found"),
            );
        }
        match (segments.get(i + 1), segments.get(i + 2)) {
            (None, _) => break (name, None, None),
            (Some(&id), None) => break (name, Some(id), None),
            (Some(&id), Some(&next))
                if collection_kind(next).is_none() && segments.len() == i + 3 =>
            {
                break (name, Some(id), Some(next));
            }
            (Some(&id), Some(_)) => {
                parents.push((name, id));
                i += 2;
            }
        }
    };
    let path: String = parents
        .iter()
        .map(|(c, id)| format!("/{c}/{id}"))
        .collect::<String>()
        + "/"
        + collection;
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Object(Default::default()));
    let Ok(mut objects) = sim.objects.lock() else {
        return json_reply(
            reply,
            azure_error(StatusCode::INTERNAL_SERVER_ERROR, "500", "Internal error"),
        );
    };
    let (kind, _) = collection_kind(collection).unwrap_or(("object", ""));
    let method = req.method().as_str();
    let not_found = |id: &str| {
        openai_error(
            StatusCode::NOT_FOUND,
            &format!(
                "No {} found with id '{id}'.",
                kind.rsplit('.').next().unwrap_or(kind)
            ),
        )
    };
    let result = match (method, id, action) {
        ("POST", None, None) => {
            // `POST /threads/runs` creates a thread and runs it.
            let value = new_object(sim, collection, &parents, &request);
            let id = value["id"].as_str().unwrap_or_default().to_string();
            objects.insert(id, (path.clone(), value.clone()));
            (StatusCode::OK, value)
        }
        ("GET", None, None) => {
            let limit = query::get(req.query_string(), "limit")
                .and_then(|l| l.parse::<usize>().ok())
                .unwrap_or(20);
            let mut data: Vec<&Value> = objects
                .values()
                .filter(|(p, _)| *p == path)
                .map(|(_, v)| v)
                .collect();
            data.sort_by_key(|v| {
                std::cmp::Reverse(v["id"].as_str().unwrap_or_default().to_string())
            });
            let has_more = data.len() > limit;
            data.truncate(limit);
            let first = data.first().map(|v| v["id"].clone()).unwrap_or(Value::Null);
            let last = data.last().map(|v| v["id"].clone()).unwrap_or(Value::Null);
            (
                StatusCode::OK,
                json!({ "object": "list", "data": data, "first_id": first, "last_id": last, "has_more": has_more }),
            )
        }
        ("GET", Some(id), None) => match objects.get(id) {
            Some((p, value)) if *p == path => (StatusCode::OK, value.clone()),
            _ => not_found(id),
        },
        ("POST", Some(id), action) => match objects.get_mut(id) {
            Some((p, value)) if *p == path => {
                if let (Value::Object(fields), Value::Object(given)) = (&mut *value, &request) {
                    for (k, v) in given {
                        fields.insert(k.clone(), v.clone());
                    }
                }
                match action {
                    Some("cancel") => value["status"] = json!("cancelled"),
                    Some("submit_tool_outputs") => value["status"] = json!("queued"),
                    _ => {}
                }
                (StatusCode::OK, value.clone())
            }
            _ => not_found(id),
        },
        ("DELETE", Some(id), None) => match objects.remove(id) {
            Some((p, _)) if p == path => (
                StatusCode::OK,
                json!({ "id": id, "object": format!("{kind}.deleted"), "deleted": true }),
            ),
            _ => not_found(id),
        },
        _ => azure_error(StatusCode::METHOD_NOT_ALLOWED, "405", "Method not allowed"),
    };
    json_reply(reply, result)
}
