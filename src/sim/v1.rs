//! The v1 API (`/openai/v1/…`): no deployment in the path (chat completions, embeddings and
//! responses name theirs in the body's `model`), `api-version` optional, and files kept in
//! memory (uploaded, listed, read back, deleted). Responses answer as JSON or as the Responses
//! API's event stream.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use bytes::Bytes;
use serde_json::{Value, json};

use super::deployments::{act_out, not_json};
use super::text::{
    Generation, embeddings, event_stream, forced_tool, reasoning, structured_text, text_completion,
    words,
};
use super::{Simulator, collect_ids, invalid_reference, json_reply, now, openai_error, stored};
use crate::proxy::inbound::multipart;
use crate::proxy::inbound::query;

pub(super) async fn v1_call(
    sim: &Simulator,
    reply: HttpResponseBuilder,
    req: &HttpRequest,
    segments: &[&str],
    body: &Bytes,
) -> HttpResponse {
    match (req.method().as_str(), segments) {
        ("POST", ["chat", "completions"]) => {
            inference(sim, reply, req, body, "createChatCompletion").await
        }
        ("POST", ["embeddings"]) => inference(sim, reply, req, body, "createEmbedding").await,
        ("POST", ["responses"]) => inference(sim, reply, req, body, "createResponse").await,
        ("GET", ["responses", id]) => get_response(sim, reply, id),
        ("GET", ["responses", id, "input_items"]) => input_items(sim, reply, req, id),
        ("POST", ["files"]) => create_file(sim, reply, req, body),
        ("GET", ["files"]) => {
            // Azure lists every file unless asked for fewer.
            json_reply(
                reply,
                (StatusCode::OK, sim.list("file", req.query_string(), 10_000)),
            )
        }
        ("GET", ["files", id]) => stored(sim, reply, "file", id),
        ("DELETE", [kind @ ("files" | "responses"), id]) => delete(sim, reply, kind, id),
        ("GET", ["files", id, "content"]) => file_content(sim, reply, id),
        (_, ["vector_stores", ..]) => stored::resource_call(sim, reply, req, segments, body),
        _ => json_reply(
            reply,
            openai_error(StatusCode::NOT_FOUND, "Unknown v1 operation"),
        ),
    }
}

/// A call that spends a deployment's tokens: the deployment is the body's `model`.
async fn inference(
    sim: &Simulator,
    reply: HttpResponseBuilder,
    req: &HttpRequest,
    body: &Bytes,
    operation_id: &str,
) -> HttpResponse {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return not_json(reply);
    };
    let Some(model) = request.get("model").and_then(Value::as_str) else {
        return json_reply(
            reply,
            openai_error(
                StatusCode::BAD_REQUEST,
                "Missing required parameter: 'model'.",
            ),
        );
    };
    let reply = match act_out(sim, reply, req, model, operation_id).await {
        Ok(reply) => reply,
        Err(answered) => return answered,
    };
    match operation_id {
        "createChatCompletion" => text_completion(
            sim,
            reply,
            &request,
            Generation {
                deployment: model,
                operation_id,
                chat: true,
                cut: model == "cut-stream",
            },
        ),
        "createEmbedding" => embeddings(sim, reply, &request, model),
        _ => response(sim, reply, &request, model),
    }
}

/// A Responses API answer: one assistant message with its text (JSON shaped by the schema of a
/// `text.format` of type `json_schema`), or a call of the function a `tool_choice` requires; a
/// reasoning item first for a reasoning deployment or a request with `reasoning`; the usage.
/// With `stream: true`, the same as the Responses API's events, from `response.created` to
/// `response.completed`.
fn response(
    sim: &Simulator,
    reply: HttpResponseBuilder,
    request: &Value,
    model: &str,
) -> HttpResponse {
    let asked = match request.get("input") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let text = request
        .pointer("/text/format")
        .and_then(structured_text)
        .unwrap_or_else(|| format!("Hello from {}! You asked: {asked}", sim.config.region));
    let thinks = request.get("reasoning").is_some_and(|r| !r.is_null()) || reasoning(model);
    let (input_tokens, visible) = (words(&asked) + 4, words(&text));
    let reasoning_tokens = if thinks { visible * 4 } else { 0 };
    let output_tokens = visible + reasoning_tokens;
    let cap = request
        .get("max_output_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(16);
    if let Some(refused) = missing_references(sim, request) {
        return json_reply(reply, refused);
    }
    let mut reply = match sim.admit(reply, model, "createResponse", input_tokens + cap) {
        Ok(reply) => reply,
        Err(refused) => return *refused,
    };
    sim.spend(&mut reply, model, input_tokens + output_tokens);
    let id = sim.object_id("resp_");
    let mut output = Vec::new();
    if thinks {
        output.push(json!({ "type": "reasoning", "id": format!("rs_{:032x}", sim.next_id()), "summary": [] }));
    }
    let message_id = format!("msg_{:032x}", sim.next_id());
    let answer = match forced_tool(request) {
        Some(name) => json!({
            "type": "function_call", "id": format!("fc_{:032x}", sim.next_id()),
            "call_id": format!("call_{:x}", sim.next_id()), "name": name, "arguments": "{}",
            "status": "completed",
        }),
        None => json!({
            "type": "message", "id": message_id, "status": "completed", "role": "assistant",
            "content": [{ "type": "output_text", "text": text, "annotations": [] }],
        }),
    };
    output.push(answer);
    let value = json!({
        "id": id, "object": "response", "created_at": now(), "status": "completed",
        "model": model, "error": null, "incomplete_details": null,
        "instructions": request.get("instructions").cloned().unwrap_or(Value::Null),
        "metadata": request.get("metadata").cloned().unwrap_or(json!({})),
        "temperature": 1.0, "top_p": 1.0, "user": null, "parallel_tool_calls": true,
        "tool_choice": request.get("tool_choice").cloned().unwrap_or(json!("auto")),
        "tools": request.get("tools").cloned().unwrap_or(json!([])),
        "reasoning": request.get("reasoning").cloned().unwrap_or(Value::Null),
        "text": request.get("text").cloned().unwrap_or(json!({ "format": { "type": "text" } })),
        "output": output,
        "usage": {
            "input_tokens": input_tokens, "input_tokens_details": { "cached_tokens": 0 },
            "output_tokens": output_tokens,
            "output_tokens_details": { "reasoning_tokens": reasoning_tokens },
            "total_tokens": input_tokens + output_tokens,
        },
    });
    let streams = request.get("stream").and_then(Value::as_bool) == Some(true);
    let background = request.get("background").and_then(Value::as_bool) == Some(true);
    let mut answer = value.clone();
    if background && !streams {
        // Queued now; polls see it progress, then completed (see `get_response`).
        answer["status"] = json!("queued");
        answer["output"] = json!([]);
        answer["usage"] = Value::Null;
        sim.keep(&id, FINISHED, value.clone());
    }
    if request.get("store").and_then(Value::as_bool) != Some(false) {
        sim.keep(&id, "response", answer.clone());
        sim.keep(&id, INPUT, json!(input_of(sim, request)));
    }
    if streams {
        return stream_response(sim, reply, value);
    }
    json_reply(reply, (StatusCode::OK, answer))
}

/// Where a background response's finished form waits, and a response's input items.
const FINISHED: &str = "response.finished";
const INPUT: &str = "response.input";

/// The error for a responses call that names what this resource does not hold: a previous
/// response (400, as Azure answers it), a vector store or a file (404).
fn missing_references(sim: &Simulator, request: &Value) -> Option<(StatusCode, Value)> {
    if let Some(previous) = request.get("previous_response_id").and_then(Value::as_str)
        && !sim.holds("response", previous)
    {
        let message = format!("Previous response with id '{previous}' not found.");
        return Some(invalid_reference(
            "previous_response_id",
            &message,
            StatusCode::BAD_REQUEST,
        ));
    }
    let mut stores = Vec::new();
    if let Some(tools) = request.get("tools") {
        collect_ids(tools, &["vector_store_ids"], &mut stores);
    }
    if let Some(missing) = stores.iter().find(|id| !sim.holds("/vector_stores", id)) {
        let message = format!("Vector store with id '{missing}' not found.");
        return Some(invalid_reference("tools", &message, StatusCode::NOT_FOUND));
    }
    stored::missing_files(sim, request)
}

/// A request's input as the response's input items: a text is one user message; each item
/// gets an id.
fn input_of(sim: &Simulator, request: &Value) -> Vec<Value> {
    let items = match request.get("input") {
        Some(Value::Array(items)) => items.clone(),
        Some(Value::String(text)) => vec![json!({
            "type": "message", "role": "user",
            "content": [{ "type": "input_text", "text": text }],
        })],
        _ => Vec::new(),
    };
    items
        .into_iter()
        .map(|mut item| {
            if item.get("id").is_none() {
                item["id"] = json!(sim.object_id("msg_"));
            }
            item
        })
        .collect()
}

/// `GET /responses/{id}`: a background response progresses a step each time it is polled,
/// from queued through in progress to its finished form.
fn get_response(sim: &Simulator, reply: HttpResponseBuilder, id: &str) -> HttpResponse {
    let finished = sim.get(FINISHED, id);
    let polled = sim.change(id, "response", |value| {
        match value["status"].as_str() {
            Some("queued") => value["status"] = json!("in_progress"),
            Some("in_progress") => {
                if let Some(done) = &finished {
                    *value = done.clone();
                }
            }
            _ => {}
        }
        value.clone()
    });
    match polled {
        Some(value) => json_reply(reply, (StatusCode::OK, value)),
        None => not_held(reply, "response", id),
    }
}

/// `GET /responses/{id}/input_items`: the input it was given, as a list.
fn input_items(
    sim: &Simulator,
    reply: HttpResponseBuilder,
    req: &HttpRequest,
    id: &str,
) -> HttpResponse {
    let Some(Value::Array(items)) = sim.get(INPUT, id) else {
        return not_held(reply, "response", id);
    };
    let limit = query::get(req.query_string(), "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(20);
    let has_more = items.len() > limit;
    let data: Vec<Value> = items.into_iter().take(limit).collect();
    let first = data.first().map(|v| v["id"].clone()).unwrap_or(Value::Null);
    let last = data.last().map(|v| v["id"].clone()).unwrap_or(Value::Null);
    json_reply(
        reply,
        (
            StatusCode::OK,
            json!({ "object": "list", "data": data, "first_id": first, "last_id": last, "has_more": has_more }),
        ),
    )
}

fn not_held(reply: HttpResponseBuilder, kind: &str, id: &str) -> HttpResponse {
    json_reply(
        reply,
        openai_error(StatusCode::NOT_FOUND, &format!("No {kind} with id '{id}'.")),
    )
}

/// A finished response told as the Responses API's server-sent events: created, in progress,
/// each output item added and done (a message's text as deltas, word by word), completed.
fn stream_response(sim: &Simulator, reply: HttpResponseBuilder, done: Value) -> HttpResponse {
    let mut events: Vec<Value> = Vec::new();
    let mut started = done.clone();
    started["status"] = json!("in_progress");
    started["output"] = json!([]);
    started["usage"] = Value::Null;
    events.push(json!({ "type": "response.created", "response": started }));
    events.push(json!({ "type": "response.in_progress", "response": started }));
    let items = done["output"].as_array().cloned().unwrap_or_default();
    for (index, item) in items.iter().enumerate() {
        let item_id = item["id"].clone();
        let mut opened = item.clone();
        opened["status"] = json!("in_progress");
        if item["type"] == "message" {
            opened["content"] = json!([]);
        }
        events.push(
            json!({ "type": "response.output_item.added", "output_index": index, "item": opened }),
        );
        if let Some(text) = item.pointer("/content/0/text").and_then(Value::as_str) {
            let part =
                |text: &str| json!({ "type": "output_text", "text": text, "annotations": [] });
            events.push(
                json!({ "type": "response.content_part.added", "item_id": item_id,
                                "output_index": index, "content_index": 0, "part": part("") }),
            );
            for word in text.split_inclusive(' ') {
                events.push(json!({ "type": "response.output_text.delta", "item_id": item_id,
                                    "output_index": index, "content_index": 0, "delta": word, "logprobs": [] }));
            }
            events.push(json!({ "type": "response.output_text.done", "item_id": item_id,
                                "output_index": index, "content_index": 0, "text": text, "logprobs": [] }));
            events.push(
                json!({ "type": "response.content_part.done", "item_id": item_id,
                                "output_index": index, "content_index": 0, "part": part(text) }),
            );
        }
        if item["type"] == "function_call" {
            events.push(
                json!({ "type": "response.function_call_arguments.done", "item_id": item_id,
                                "output_index": index, "arguments": item["arguments"] }),
            );
        }
        events.push(
            json!({ "type": "response.output_item.done", "output_index": index, "item": item }),
        );
    }
    events.push(json!({ "type": "response.completed", "response": done }));
    let frames: Vec<Bytes> = events
        .into_iter()
        .enumerate()
        .map(|(n, mut event)| {
            event["sequence_number"] = json!(n);
            let kind = event["type"].as_str().unwrap_or_default().to_string();
            Bytes::from(format!("event: {kind}\ndata: {event}\n\n"))
        })
        .collect();
    event_stream(reply, frames, sim.config.chunk_delay)
}

fn create_file(
    sim: &Simulator,
    reply: HttpResponseBuilder,
    req: &HttpRequest,
    body: &Bytes,
) -> HttpResponse {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let parts = multipart::boundary(content_type)
        .and_then(|b| multipart::parts(body, b).ok())
        .unwrap_or_default();
    let Some(file) = parts.iter().find(|p| p.name == "file") else {
        return json_reply(
            reply,
            openai_error(
                StatusCode::BAD_REQUEST,
                "Missing required parameter: 'file'.",
            ),
        );
    };
    let purpose = parts
        .iter()
        .find(|p| p.name == "purpose")
        .and_then(|p| p.text())
        .unwrap_or("assistants")
        .to_string();
    let id = sim.object_id("file-");
    let value = json!({
        "id": id, "object": "file", "bytes": file.data.len(), "created_at": now(),
        "filename": file.filename.clone().unwrap_or_else(|| "file".into()),
        "purpose": purpose, "status": "processed",
    });
    sim.keep(&id, "file", value.clone());
    sim.keep_content(&id, Bytes::copy_from_slice(file.data));
    json_reply(reply, (StatusCode::OK, value))
}

/// Reads a kept object of `kind`.
fn stored(sim: &Simulator, reply: HttpResponseBuilder, kind: &str, id: &str) -> HttpResponse {
    match sim.get(kind, id) {
        Some(value) => json_reply(reply, (StatusCode::OK, value)),
        None => not_held(reply, kind, id),
    }
}

/// Deletes a kept file or response (`collection`, as the path names it).
fn delete(sim: &Simulator, reply: HttpResponseBuilder, collection: &str, id: &str) -> HttpResponse {
    let kind = collection.trim_end_matches('s');
    if !sim.holds(kind, id) {
        return not_held(reply, kind, id);
    }
    for place in [kind, FINISHED, INPUT] {
        sim.forget(place, id);
    }
    json_reply(
        reply,
        (
            StatusCode::OK,
            json!({ "id": id, "object": kind, "deleted": true }),
        ),
    )
}

fn file_content(sim: &Simulator, mut reply: HttpResponseBuilder, id: &str) -> HttpResponse {
    match sim.content(id) {
        Some(bytes) => {
            reply.insert_header((header::CONTENT_TYPE, "application/octet-stream"));
            reply.body(bytes)
        }
        None => json_reply(
            reply,
            openai_error(StatusCode::NOT_FOUND, &format!("No file with id '{id}'.")),
        ),
    }
}
