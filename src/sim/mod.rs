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
//! - any name outside [`SimulatorConfig::deployments`] (when that list is empty: any name Azure
//!   would not allow, as a body's `model` may hold) is 404 `DeploymentNotFound`.
//!
//! - `cut-session` (realtime) drops its WebSocket's connection in the middle of a response;
//! - `short-session` (realtime) ends its session with close code 1008 after one response.
//!
//! The Realtime API's WebSocket is served too (`realtime`): session events, responses with text
//! and audio deltas and their usage, and ephemeral secrets minted that open this resource only.
//!
//! Objects the Assistants API creates (assistants, threads, messages, runs, vector stores) are
//! kept in memory, so a create followed by a get works. The v1 API (`/openai/v1/…`) is answered
//! too: chat completions, embeddings and responses, with the deployment (and its acted-out
//! stresses) named by the body's `model`, and files.

mod audio;
mod cache;
pub mod demo;
mod deployments;
mod images;
mod quota;
mod realtime;
mod stored;
mod text;
mod v1;

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

use crate::proxy::inbound::query;

pub const MODEL: &str = "gpt-4o-2024-08-06";

#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// Reported in `x-ms-region` and in answers, e.g. `East US`.
    pub region: String,
    /// The key clients must send in `api-key`.
    pub api_key: String,
    /// Deployment names this resource has; empty means any name Azure allows.
    pub deployments: Vec<String>,
    /// Pause between server-sent events.
    pub chunk_delay: Duration,
    /// How long the `slow` deployment waits before answering.
    pub slow_delay: Duration,
    /// How long every other deployment call takes before its answer starts (a model's time to
    /// answer, so that a benchmark's calls are in flight as long as on Azure); zero by default.
    pub latency: Duration,
    /// The `retry-after` of the `rate-limited` deployment's 429.
    pub rate_limited_retry_after: Duration,
    /// Each deployment's quota, as a provisioned or pay-as-you-go deployment has one (see
    /// `quota`); `None`: plenty.
    pub tokens_per_minute: Option<u64>,
    /// Entra ID access tokens it takes in `Authorization: Bearer` (those starting with this),
    /// as a resource does that trusts the tenant that issues them; `None`: keys only.
    pub bearer_prefix: Option<String>,
    /// How long a prompt stays in the resource's cache after its last use: minutes on Azure;
    /// a benchmark that makes minutes of calls in seconds scales it down with them.
    pub prompt_cache_life: Duration,
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
            prompt_cache_life: cache::LIFE,
            slow_delay: Duration::from_secs(30),
            latency: Duration::ZERO,
            rate_limited_retry_after: Duration::from_secs(7),
            tokens_per_minute: None,
            bearer_prefix: None,
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

/// An object the resource keeps: where it lives (a kind, such as `file`, or a collection's
/// path, such as `/threads/thread_…/runs`), the object, and its place in the order of
/// creation.
struct Kept {
    value: Value,
    seq: u64,
}

pub struct Simulator {
    config: SimulatorConfig,
    recorded: Mutex<Vec<Recorded>>,
    /// By place and id (a vector store's file has its file's id).
    objects: Mutex<HashMap<(String, String), Kept>>,
    /// id → the bytes of an uploaded file.
    contents: Mutex<HashMap<String, Bytes>>,
    counter: AtomicU64,
    quota: quota::Windows,
    /// The resource's prompt cache.
    prompt_cache: cache::PromptCache,
    /// The resource's two keys (`config.api_key` is the first); either opens it, as on Azure.
    keys: std::sync::RwLock<[String; 2]>,
    /// Ephemeral secrets it minted, and when each expires (Unix seconds).
    minted: Mutex<HashMap<String, u64>>,
}

impl Simulator {
    pub fn new(config: SimulatorConfig) -> Arc<Simulator> {
        Arc::new(Simulator {
            recorded: Mutex::new(Vec::new()),
            objects: Mutex::new(HashMap::new()),
            contents: Mutex::new(HashMap::new()),
            counter: AtomicU64::new(1),
            quota: quota::Windows::default(),
            prompt_cache: cache::PromptCache::default(),
            keys: std::sync::RwLock::new([config.api_key.clone(), String::new()]),
            minted: Mutex::new(HashMap::new()),
            config,
        })
    }

    /// Sets the resource's two keys, as regenerating one in the portal does: a key not among
    /// them opens it no more. An empty key opens nothing.
    pub fn set_keys(&self, key1: &str, key2: &str) {
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = [key1.into(), key2.into()];
    }

    fn opens(&self, presented: &[u8]) -> bool {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .any(|k| !k.is_empty() && k.as_bytes() == presented)
    }

    pub fn config(&self) -> &SimulatorConfig {
        &self.config
    }

    /// Every request received so far (with `record` on).
    pub fn recorded(&self) -> Vec<Recorded> {
        self.recorded.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// How many requests it has received (with `record` on), without copying them.
    pub fn received(&self) -> usize {
        self.recorded.lock().map(|r| r.len()).unwrap_or_default()
    }

    /// Keeps an object under `id` at `place` (a kind, or a collection's path), for reads to
    /// come.
    fn keep(&self, id: &str, place: &str, value: Value) {
        let seq = self.next_id();
        if let Ok(mut objects) = self.objects.lock() {
            objects.insert((place.to_string(), id.to_string()), Kept { value, seq });
        }
    }

    /// Changes the object kept under `id` at `place`; what `change` returns, if it is there.
    fn change<T>(&self, id: &str, place: &str, change: impl FnOnce(&mut Value) -> T) -> Option<T> {
        let mut objects = self.objects.lock().ok()?;
        objects
            .get_mut(&(place.to_string(), id.to_string()))
            .map(|k| change(&mut k.value))
    }

    fn keep_content(&self, id: &str, bytes: Bytes) {
        if let Ok(mut contents) = self.contents.lock() {
            contents.insert(id.to_string(), bytes);
        }
    }

    fn get(&self, place: &str, id: &str) -> Option<Value> {
        self.change(id, place, |v| v.clone())
    }

    /// Whether an object of `place` is kept under `id`.
    fn holds(&self, place: &str, id: &str) -> bool {
        self.change(id, place, |_| ()).is_some()
    }

    /// A page of the objects kept at `place`, as Azure lists them: newest first unless the
    /// query asks `order=asc`, after the `after` cursor, at most `limit` (or `default_limit`).
    fn list(&self, place: &str, raw_query: &str, default_limit: usize) -> Value {
        let mut found: Vec<(u64, Value)> = match self.objects.lock() {
            Ok(objects) => objects
                .iter()
                .filter(|((p, _), _)| p == place)
                .map(|(_, k)| (k.seq, k.value.clone()))
                .collect(),
            Err(_) => Vec::new(),
        };
        found.sort_by_key(|(seq, _)| *seq);
        if query::get(raw_query, "order").as_deref() != Some("asc") {
            found.reverse();
        }
        if let Some(after) = query::get(raw_query, "after")
            && let Some(at) = found.iter().position(|(_, v)| v["id"] == after.as_ref())
        {
            found.drain(..=at);
        }
        let limit = query::get(raw_query, "limit")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(default_limit);
        let has_more = found.len() > limit;
        let data: Vec<Value> = found.into_iter().take(limit).map(|(_, v)| v).collect();
        let first = data.first().map(|v| v["id"].clone()).unwrap_or(Value::Null);
        let last = data.last().map(|v| v["id"].clone()).unwrap_or(Value::Null);
        json!({ "object": "list", "data": data, "first_id": first, "last_id": last, "has_more": has_more })
    }

    fn forget(&self, place: &str, id: &str) {
        if let Ok(mut objects) = self.objects.lock() {
            objects.remove(&(place.to_string(), id.to_string()));
        }
        if place == "file"
            && let Ok(mut contents) = self.contents.lock()
        {
            contents.remove(id);
        }
    }

    fn content(&self, id: &str) -> Option<Bytes> {
        self.contents.lock().ok()?.get(id).cloned()
    }

    pub(super) fn next_id(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    /// A new object's id: `prefix` and random hex digits, as Azure's are (random, so that no
    /// two resources ever hold the same id).
    pub(super) fn object_id(&self, prefix: &str) -> String {
        let random = |n: u64| std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), n);
        let n = self.next_id();
        format!("{prefix}{:016x}{:016x}", random(n), random(!n))
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
            .route("/openai/realtime", web::get().to(realtime::socket))
            .route("/openai/v1/realtime", web::get().to(realtime::socket))
            .default_service(web::to(handle))
    })
    .workers(workers)
    .tcp_nodelay(true)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok((server, addr))
}

pub(super) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Azure's error body.
pub(super) fn azure_error(status: StatusCode, code: &str, message: &str) -> (StatusCode, Value) {
    (
        status,
        json!({ "error": { "code": code, "message": message } }),
    )
}

/// The ids a request names in members called one of `names` (a string, or a list of them),
/// wherever they are.
pub(super) fn collect_ids(value: &Value, names: &[&str], out: &mut Vec<String>) {
    match value {
        Value::Object(members) => {
            for (name, member) in members {
                if names.contains(&name.as_str()) {
                    match member {
                        Value::String(id) => out.push(id.clone()),
                        Value::Array(ids) => {
                            out.extend(ids.iter().filter_map(Value::as_str).map(str::to_string))
                        }
                        _ => {}
                    }
                } else {
                    collect_ids(member, names, out);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_ids(item, names, out);
            }
        }
        _ => {}
    }
}

/// The error for a request that names an object this resource does not hold, as the service
/// answers it: the field at fault, and a message that names the id.
pub(super) fn invalid_reference(
    param: &str,
    message: &str,
    status: StatusCode,
) -> (StatusCode, Value) {
    (
        status,
        json!({ "error": { "message": message, "type": "invalid_request_error", "param": param, "code": if status == StatusCode::NOT_FOUND { "not_found" } else { "invalid_value" } } }),
    )
}

/// OpenAI-style error body, which the Assistants API returns.
pub(super) fn openai_error(status: StatusCode, message: &str) -> (StatusCode, Value) {
    (
        status,
        json!({ "error": { "message": message, "type": "invalid_request_error", "param": null, "code": null } }),
    )
}

impl Simulator {
    /// Keeps the request for inspection, with `record` on.
    fn record(&self, req: &HttpRequest, body: &Bytes) {
        if !self.config.record {
            return;
        }
        if let Ok(mut recorded) = self.recorded.lock() {
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
    }

    /// A reply with the headers every answer of the resource has.
    fn reply(&self) -> HttpResponseBuilder {
        let mut reply = HttpResponse::build(StatusCode::OK);
        reply.insert_header(("x-ms-region", self.config.region.as_str()));
        let request_id = self.request_id();
        reply.insert_header(("apim-request-id", request_id.as_str()));
        reply.insert_header(("x-request-id", request_id.as_str()));
        reply.insert_header(("x-content-type-options", "nosniff"));
        reply
    }

    /// Whether the request presents what opens the resource: a key in `api-key`, an Entra
    /// token it trusts or an ephemeral secret it minted in `Authorization: Bearer`, or, on a
    /// realtime WebSocket (`socket`), a key or secret where browsers put one.
    fn admits(&self, req: &HttpRequest, socket: bool) -> bool {
        let headers = req.headers();
        if headers
            .get("api-key")
            .is_some_and(|k| self.opens(k.as_bytes()))
        {
            return true;
        }
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if let Some(token) = bearer {
            let trusted = self
                .config
                .bearer_prefix
                .as_ref()
                .is_some_and(|p| token.starts_with(p.as_str()));
            if trusted || self.minted_opens(token) {
                return true;
            }
        }
        if !socket {
            return false;
        }
        let offered = realtime::offered_key(req);
        let query = query::get(req.query_string(), "api-key");
        offered
            .into_iter()
            .chain(query.as_deref())
            .any(|k| self.opens(k.as_bytes()) || self.minted_opens(k))
    }
}

/// Azure's answer to a request without a valid key.
pub(super) fn denied(reply: HttpResponseBuilder) -> HttpResponse {
    json_reply(
        reply,
        azure_error(
            StatusCode::UNAUTHORIZED,
            "401",
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
        ),
    )
}

async fn handle(req: HttpRequest, body: Bytes, sim: web::Data<Simulator>) -> HttpResponse {
    sim.record(&req, &body);
    let reply = sim.reply();
    let Some(rest) = req.path().strip_prefix("/openai/") else {
        return json_reply(
            reply,
            azure_error(StatusCode::NOT_FOUND, "404", "Resource not found"),
        );
    };
    if !sim.admits(&req, false) {
        return denied(reply);
    }
    let segments: Vec<&str> = rest.split('/').collect();
    if let Some(answer) = realtime::rest_call(&sim, &req, &segments, &body).await {
        return answer;
    }
    // The v1 API takes `api-version` as an option; dated versions need one.
    if let ["v1", rest @ ..] = segments.as_slice() {
        return v1::v1_call(&sim, reply, &req, rest, &body).await;
    }
    if query::get(req.query_string(), "api-version").is_none_or(|v| v.is_empty()) {
        return json_reply(
            reply,
            azure_error(StatusCode::NOT_FOUND, "404", "Resource not found"),
        );
    }
    match segments.as_slice() {
        ["deployments", deployment, operation @ ..] => {
            deployments::deployment_call(&sim, reply, &req, deployment, operation, &body).await
        }
        _ => stored::resource_call(&sim, reply, &req, &segments, &body),
    }
}

pub(super) fn json_reply(
    mut reply: HttpResponseBuilder,
    (status, body): (StatusCode, Value),
) -> HttpResponse {
    reply.status(status);
    reply.insert_header((
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    ));
    reply.body(body.to_string())
}
