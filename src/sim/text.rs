//! Chat completions, completions (as JSON or server-sent events) and embeddings.
//!
//! What the models do, as far as a gateway can tell: a reasoning deployment (named `o1`, `o3`,
//! `o4`… or with `reasoning` in its name) refuses `max_tokens` and any `temperature` or
//! `top_p` but the default, as Azure's o-series do, and spends most of its completion tokens
//! thinking (`completion_tokens_details.reasoning_tokens`); a prompt of 1,024 tokens or more
//! whose beginning matches a recent one's is served partly from the resource's cache
//! (`prompt_tokens_details.cached_tokens`, see [`super::cache`]). Tokens are counted as words,
//! plus 8 for a prompt.
//!
//! A chat whose `tool_choice` requires a function (`"required"`, or one named) is answered with
//! a call of it (`tool_calls`, no content, `finish_reason: tool_calls`); one that asks for
//! structured output (`response_format` of type `json_schema` or `json_object`) gets JSON text
//! shaped by the schema. Embeddings come as float lists, or as base64 of little-endian `f32`s
//! when `encoding_format` is `base64`, as Azure sends them.

use base64::Engine;

use actix_web::http::StatusCode;
use actix_web::http::header::{self};
use actix_web::{HttpResponse, HttpResponseBuilder};
use bytes::Bytes;
use serde_json::{Value, json};

use super::deployments::cut_half_way;
use super::{MODEL, Simulator, json_reply, now, openai_error};

/// A call to a deployment that generates text.
pub(super) struct Generation<'a> {
    pub deployment: &'a str,
    pub operation_id: &'a str,
    pub chat: bool,
    /// Act out a backend that drops the connection half-way.
    pub cut: bool,
}

/// Whether a deployment is a reasoning model's.
pub(super) fn reasoning(deployment: &str) -> bool {
    let name = deployment.to_ascii_lowercase();
    name.contains("reasoning")
        || ["o1", "o3", "o4"]
            .iter()
            .any(|m| name == *m || name.starts_with(&format!("{m}-")))
}

/// The 400 a reasoning deployment answers a parameter it does not take with.
fn refused_parameter(request: &Value) -> Option<(StatusCode, Value)> {
    let refuse = |param: &str, code: &str, message: String| {
        let (status, mut body) = openai_error(StatusCode::BAD_REQUEST, &message);
        body["error"]["param"] = json!(param);
        body["error"]["code"] = json!(code);
        (status, body)
    };
    if request.get("max_tokens").is_some_and(|v| !v.is_null()) {
        return Some(refuse(
            "max_tokens",
            "unsupported_parameter",
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.".into(),
        ));
    }
    for param in ["temperature", "top_p"] {
        if let Some(value) = request
            .get(param)
            .filter(|v| v.as_f64() != Some(1.0) && !v.is_null())
        {
            return Some(refuse(
                param,
                "unsupported_value",
                format!(
                    "Unsupported value: '{param}' does not support {value} with this model. Only the default (1) value is supported."
                ),
            ));
        }
    }
    None
}

/// The texts the prompt sends, in order: all messages' text, or the prompt.
fn prompt_texts(request: &Value) -> Vec<&str> {
    fn add<'v>(value: &'v Value, texts: &mut Vec<&'v str>) {
        match value {
            Value::String(s) => texts.push(s),
            Value::Array(parts) => texts.extend(
                parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str).or(p.as_str())),
            ),
            _ => {}
        }
    }
    let mut texts = Vec::new();
    match request.get("messages").and_then(Value::as_array) {
        Some(messages) => messages
            .iter()
            .filter_map(|m| m.get("content"))
            .for_each(|c| add(c, &mut texts)),
        None => request
            .get("prompt")
            .into_iter()
            .for_each(|p| add(p, &mut texts)),
    }
    texts
}

/// Every word the prompt sends.
fn prompt_words(request: &Value) -> u64 {
    prompt_texts(request).into_iter().map(words).sum()
}

pub(super) fn content_filter() -> Value {
    let safe = json!({ "filtered": false, "severity": "safe" });
    json!({ "hate": safe, "self_harm": safe, "sexual": safe, "violence": safe })
}

/// The text of the last user message (or the prompt), for an answer that shows what was asked.
pub(super) fn prompt_text(request: &Value) -> String {
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

/// The function a chat's `tool_choice` (or a response's) makes the model call: the one named,
/// or with `"required"` the first function tool.
pub(super) fn forced_tool(request: &Value) -> Option<String> {
    let choice = request.get("tool_choice")?;
    let named = choice
        .pointer("/function/name")
        .or_else(|| choice.get("name"))
        .and_then(Value::as_str);
    if let Some(name) = named {
        return Some(name.to_string());
    }
    if choice.as_str() != Some("required") {
        return None;
    }
    request
        .get("tools")?
        .as_array()?
        .iter()
        .find_map(|t| {
            t.pointer("/function/name")
                .or_else(|| t.get("name"))
                .and_then(Value::as_str)
        })
        .map(str::to_string)
}

/// JSON text a structured-output request asks for: shaped by its schema, or an object.
pub(super) fn structured_text(format: &Value) -> Option<String> {
    match format.get("type").and_then(Value::as_str)? {
        "json_schema" => {
            let schema = format
                .pointer("/json_schema/schema")
                .or_else(|| format.get("schema"))?;
            Some(sample(schema, 0).to_string())
        }
        "json_object" => Some(json!({ "answer": "simulated" }).to_string()),
        _ => None,
    }
}

/// A value a JSON schema accepts: its first enum value, its minimum, a word, one item.
fn sample(schema: &Value, depth: usize) -> Value {
    if depth > 8 {
        return Value::Null;
    }
    if let Some(first) = schema.get("enum").and_then(|e| e.get(0)) {
        return first.clone();
    }
    if let Some(constant) = schema.get("const") {
        return constant.clone();
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(first) = schema.get(key).and_then(|v| v.get(0)) {
            return sample(first, depth + 1);
        }
    }
    let kind = match schema.get("type") {
        Some(Value::Array(types)) => types.iter().find_map(Value::as_str).unwrap_or("null"),
        Some(Value::String(t)) => t.as_str(),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    match kind {
        "object" => {
            let mut object = serde_json::Map::new();
            if let Some(Value::Object(properties)) = schema.get("properties") {
                for (name, property) in properties {
                    object.insert(name.clone(), sample(property, depth + 1));
                }
            }
            Value::Object(object)
        }
        "array" => json!([sample(
            schema.get("items").unwrap_or(&Value::Null),
            depth + 1
        )]),
        "integer" => json!(schema.get("minimum").and_then(Value::as_i64).unwrap_or(1)),
        "number" => json!(schema.get("minimum").and_then(Value::as_f64).unwrap_or(1.5)),
        "boolean" => json!(true),
        "null" => Value::Null,
        _ => json!("simulated"),
    }
}

pub(super) fn words(text: &str) -> u64 {
    text.split_whitespace().count().max(1) as u64
}

impl Simulator {
    /// The prompt tokens of a call to `deployment` served from the resource's prompt cache
    /// (see [`super::cache`]).
    fn cached(&self, request: &Value, deployment: &str) -> u64 {
        let texts = prompt_texts(request);
        let words = texts.iter().flat_map(|t| t.split_whitespace());
        self.prompt_cache.serve(
            self.config.prompt_cache_life,
            deployment,
            8,
            words,
            std::time::Instant::now(),
        )
    }
}

pub(super) fn text_completion(
    sim: &Simulator,
    reply: HttpResponseBuilder,
    request: &Value,
    call: Generation<'_>,
) -> HttpResponse {
    let Generation {
        deployment,
        operation_id,
        chat,
        cut,
    } = call;
    let thinks = reasoning(deployment);
    if thinks && let Some(refused) = refused_parameter(request) {
        return json_reply(reply, refused);
    }
    let prompt_tokens = prompt_words(request) + 8;
    let cap = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|f| request.get(*f).and_then(Value::as_u64))
        .unwrap_or(16);
    let mut reply = match sim.admit(reply, deployment, operation_id, prompt_tokens + cap) {
        Ok(reply) => reply,
        Err(refused) => return *refused,
    };
    let asked = prompt_text(request);
    let structured = request.get("response_format").and_then(structured_text);
    let answer = structured
        .unwrap_or_else(|| format!("Hello from {}! You asked: {asked}", sim.config.region));
    let tool = if chat { forced_tool(request) } else { None };
    let visible = words(&answer);
    let reasoning_tokens = if thinks { visible * 8 } else { 0 };
    let completion_tokens = visible + reasoning_tokens;
    let cached_tokens = sim.cached(request, deployment);
    let usage = json!({
        "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": { "cached_tokens": cached_tokens },
        "completion_tokens_details": { "reasoning_tokens": reasoning_tokens },
    });
    sim.spend(&mut reply, deployment, prompt_tokens + completion_tokens);
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
            let (message, finish) = match &tool {
                Some(name) => (
                    json!({ "role": "assistant", "content": null, "refusal": null,
                            "tool_calls": [{ "id": format!("call_{:x}", sim.next_id()), "type": "function",
                                             "function": { "name": name, "arguments": "{}" } }] }),
                    "tool_calls",
                ),
                None => (
                    json!({ "role": "assistant", "content": answer, "refusal": null }),
                    "stop",
                ),
            };
            json!({
                "id": id, "object": "chat.completion", "created": created, "model": MODEL,
                "system_fingerprint": "fp_sim",
                "prompt_filter_results": prompt_filter,
                "choices": [{ "index": 0, "finish_reason": finish, "logprobs": null,
                              "message": message,
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
    let words_streamed: Vec<&str> = match &tool {
        Some(_) => Vec::new(),
        None => answer.split_inclusive(' ').collect(),
    };
    if let Some(name) = &tool {
        let call = json!({ "index": 0, "id": format!("call_{:x}", sim.next_id()), "type": "function",
                           "function": { "name": name, "arguments": "" } });
        events.push(chunk(json!([{ "index": 0, "delta": { "tool_calls": [call] }, "finish_reason": null, "logprobs": null }])));
        let arguments = json!({ "index": 0, "function": { "arguments": "{}" } });
        events.push(chunk(json!([{ "index": 0, "delta": { "tool_calls": [arguments] }, "finish_reason": null, "logprobs": null }])));
    }
    for word in words_streamed {
        let mut choice = json!({ "index": 0, "finish_reason": null, "logprobs": null, "content_filter_results": content_filter() });
        if chat {
            choice["delta"] = json!({ "content": word });
        } else {
            choice["text"] = json!(word);
        }
        events.push(chunk(json!([choice])));
    }
    let finish = if tool.is_some() { "tool_calls" } else { "stop" };
    let mut last = json!({ "index": 0, "finish_reason": finish, "logprobs": null });
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
    let delay = sim.config.chunk_delay;
    if cut {
        reply.insert_header((header::CONTENT_TYPE, "text/event-stream; charset=utf-8"));
        return cut_half_way(reply, frames, delay);
    }
    event_stream(reply, frames, delay)
}

/// An event stream of `frames`, `delay` apart, as Azure sends one.
pub(super) fn event_stream(
    mut reply: HttpResponseBuilder,
    frames: Vec<Bytes>,
    delay: std::time::Duration,
) -> HttpResponse {
    reply.insert_header((header::CONTENT_TYPE, "text/event-stream; charset=utf-8"));
    reply.insert_header((header::CACHE_CONTROL, "no-cache"));
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

pub(super) fn embeddings(
    sim: &Simulator,
    reply: HttpResponseBuilder,
    request: &Value,
    deployment: &str,
) -> HttpResponse {
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
    let base64 = request.get("encoding_format").and_then(Value::as_str) == Some("base64");
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
            let embedding = if base64 {
                let bytes: Vec<u8> = vector
                    .iter()
                    .flat_map(|x| (*x as f32).to_le_bytes())
                    .collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({ "object": "embedding", "index": index, "embedding": embedding })
        })
        .collect();
    let tokens: u64 = inputs.iter().map(|i| words(i)).sum();
    let mut reply = match sim.admit(reply, deployment, "Embeddings_Create", tokens) {
        Ok(reply) => reply,
        Err(refused) => return *refused,
    };
    sim.spend(&mut reply, deployment, tokens);
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
