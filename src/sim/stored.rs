//! Stored objects (assistants, threads, messages, runs, vector stores, files), kept in memory so
//! that a create followed by a get works, on the one resource that holds them.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use bytes::Bytes;
use serde_json::{Value, json};

use super::{MODEL, Simulator, azure_error, json_reply, now, openai_error};

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
    // A vector store's file is its file, by the file's id.
    let id = match (collection, request.get("file_id")) {
        ("files", Some(Value::String(file))) => file.clone(),
        _ => sim.object_id(prefix),
    };
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

/// `POST /threads/runs`: a thread made of the request's `thread`, and a run of it.
fn thread_and_run(sim: &Simulator, reply: HttpResponseBuilder, body: &Bytes) -> HttpResponse {
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Object(Default::default()));
    let given = request.get("thread").cloned().unwrap_or(json!({}));
    let mut thread = new_object(sim, "threads", &[], &json!({}));
    if let Some(metadata) = given.get("metadata") {
        thread["metadata"] = metadata.clone();
    }
    let thread_id = thread["id"].as_str().unwrap_or_default().to_string();
    let mut run_request = request.clone();
    if let Some(fields) = run_request.as_object_mut() {
        fields.remove("thread");
    }
    let run = new_object(sim, "runs", &[("threads", &thread_id)], &run_request);
    let run_id = run["id"].as_str().unwrap_or_default().to_string();
    sim.keep(&thread_id, "/threads", thread);
    sim.keep(&run_id, &format!("/threads/{thread_id}/runs"), run.clone());
    json_reply(reply, (StatusCode::OK, run))
}

pub(super) fn resource_call(
    sim: &Simulator,
    reply: HttpResponseBuilder,
    req: &HttpRequest,
    segments: &[&str],
    body: &Bytes,
) -> HttpResponse {
    if req.method() == actix_web::http::Method::POST && segments == ["threads", "runs"] {
        return thread_and_run(sim, reply, body);
    }
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
    // A parent that is not here: Azure answers 404 for it.
    if let Some((parent, parent_id)) = parents.last() {
        let above: String = parents
            .iter()
            .take_while(|(c, _)| c != parent)
            .map(|(c, id)| format!("/{c}/{id}"))
            .collect::<String>()
            + "/"
            + parent;
        if !sim.holds(&above, parent_id) {
            let (parent_kind, _) = collection_kind(parent).unwrap_or(("object", ""));
            let message = format!("No {parent_kind} found with id '{parent_id}'.");
            return json_reply(reply, openai_error(StatusCode::NOT_FOUND, &message));
        }
    }
    if let Some(missing) = missing_files(sim, &request) {
        return json_reply(reply, missing);
    }
    let result = match (method, id, action) {
        ("POST", None, None) => {
            let value = new_object(sim, collection, &parents, &request);
            let id = value["id"].as_str().unwrap_or_default().to_string();
            sim.keep(&id, &path, value.clone());
            (StatusCode::OK, value)
        }
        ("GET", None, None) => (StatusCode::OK, sim.list(&path, req.query_string(), 20)),
        ("GET", Some(id), None) => match sim.get(&path, id) {
            Some(value) => (StatusCode::OK, value),
            None => not_found(id),
        },
        ("POST", Some(id), action) => {
            let changed = sim.change(id, &path, |value| {
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
                value.clone()
            });
            match changed {
                Some(value) => (StatusCode::OK, value),
                None => not_found(id),
            }
        }
        ("DELETE", Some(id), None) if sim.holds(&path, id) => {
            sim.forget(&path, id);
            (
                StatusCode::OK,
                json!({ "id": id, "object": format!("{kind}.deleted"), "deleted": true }),
            )
        }
        ("DELETE", Some(id), None) => not_found(id),
        _ => azure_error(StatusCode::METHOD_NOT_ALLOWED, "405", "Method not allowed"),
    };
    json_reply(reply, result)
}

/// The error for a request that names files this resource does not hold (`file_id`,
/// `file_ids`, anywhere in it), as Azure answers it; `None` when it holds every one.
pub(super) fn missing_files(sim: &Simulator, request: &Value) -> Option<(StatusCode, Value)> {
    let mut named = Vec::new();
    super::collect_ids(request, &["file_id", "file_ids"], &mut named);
    let missing = named.iter().find(|id| !sim.holds("file", id))?;
    Some(super::invalid_reference(
        "file_id",
        &format!("No file found with id '{missing}'."),
        StatusCode::NOT_FOUND,
    ))
}
