//! Calls to a deployment (`/deployments/{name}/…`): which operation, and the deployment names
//! that act out a stressed resource (see the [module note](super)).

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use bytes::Bytes;
use serde_json::Value;

use super::audio::{audio_text, speech};
use super::images::images;
use super::text::{Generation, embeddings, text_completion};
use super::{Simulator, azure_error, json_reply};
use crate::proxy::inbound::query;

pub(super) async fn deployment_call(
    sim: &Simulator,
    reply: HttpResponseBuilder,
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
    let reply = match act_out(sim, reply, req, deployment, operation_id).await {
        Ok(reply) => reply,
        Err(answered) => return answered,
    };
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match operation_id {
        "ChatCompletions_Create" | "Completions_Create" => {
            let Ok(request) = serde_json::from_slice::<Value>(body) else {
                return not_json(reply);
            };
            text_completion(
                sim,
                reply,
                &request,
                Generation {
                    deployment,
                    operation_id,
                    chat: operation_id == "ChatCompletions_Create",
                    cut: deployment == "cut-stream",
                },
            )
        }
        "Embeddings_Create" => {
            let Ok(request) = serde_json::from_slice::<Value>(body) else {
                return not_json(reply);
            };
            embeddings(sim, reply, &request, deployment)
        }
        "Transcriptions_Create" | "Translations_Create" => audio_text(
            sim,
            reply,
            content_type,
            body,
            operation_id == "Transcriptions_Create",
            deployment,
        ),
        "Speech_Create" => speech(sim, reply, content_type, body, deployment),
        _ => {
            let request = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
            images(sim, reply, &request, deployment)
        }
    }
}

pub(super) fn not_json(reply: HttpResponseBuilder) -> HttpResponse {
    json_reply(
        reply,
        azure_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The request body is not valid JSON.",
        ),
    )
}

/// What a deployment does before it answers: the names that act out a stressed resource answer
/// here (`Err`), `slow` waits; an unknown deployment is 404. Otherwise the reply to build on,
/// with the deployment's headers.
pub(super) async fn act_out(
    sim: &Simulator,
    mut reply: HttpResponseBuilder,
    req: &HttpRequest,
    deployment: &str,
    operation_id: &str,
) -> Result<HttpResponseBuilder, HttpResponse> {
    if deployment == "rate-limited" {
        let wait = sim.config.rate_limited_retry_after;
        reply.insert_header(("retry-after", wait.as_secs().max(1).to_string()));
        reply.insert_header(("retry-after-ms", wait.as_millis().to_string()));
        reply.insert_header(("x-ratelimit-remaining-requests", "0"));
        reply.insert_header(("x-ratelimit-remaining-tokens", "0"));
        let version = query::get(req.query_string(), "api-version")
            .unwrap_or_default()
            .into_owned();
        let message = format!(
            "Requests to the {operation_id} Operation under Azure OpenAI API version {version} have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after {} seconds.",
            wait.as_secs().max(1)
        );
        return Err(json_reply(
            reply,
            azure_error(StatusCode::TOO_MANY_REQUESTS, "429", &message),
        ));
    }
    if deployment == "server-error" {
        return Err(json_reply(
            reply,
            azure_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "The server had an error while processing your request. Sorry about that!",
            ),
        ));
    }
    if deployment == "slow" {
        tokio::time::sleep(sim.config.slow_delay).await;
    } else if !sim.config.latency.is_zero() {
        tokio::time::sleep(sim.config.latency).await;
    }
    let known = if sim.config.deployments.is_empty() {
        is_deployment_name(deployment)
    } else {
        sim.config.deployments.iter().any(|d| d == deployment)
    };
    if !known && !ACTED_OUT.contains(&deployment) {
        return Err(json_reply(
            reply,
            azure_error(
                StatusCode::NOT_FOUND,
                "DeploymentNotFound",
                "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.",
            ),
        ));
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
    Ok(reply)
}

/// Whether Azure would let a deployment have this name: 1 to 64 letters, digits, `-`, `_` and
/// `.`. A body's `model` can hold anything; no resource has a deployment by any other name.
fn is_deployment_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Deployment names that act out a stressed resource (see the module note).
const ACTED_OUT: [&str; 4] = ["rate-limited", "slow", "server-error", "cut-stream"];

/// Sends the first half of `frames`, `delay` apart, then drops the connection: the response
/// ends without its terminating chunk, as when a backend dies mid-answer.
pub(super) fn cut_half_way(
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
