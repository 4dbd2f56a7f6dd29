//! The Realtime API of a simulated resource: the WebSocket (`/openai/realtime?deployment=…` on
//! dated versions, `/openai/v1/realtime?model=…` on v1), ephemeral secrets minted
//! (`/openai/v1/realtime/client_secrets`, `/openai/realtimeapi/sessions`) that open this
//! resource only and only until they expire, and a WebRTC call's SDP offer answered
//! (`/openai/v1/realtime/calls`).
//!
//! A session starts with `session.created`; `session.update` is answered `session.updated`,
//! audio appends are kept (and counted) until committed, items are created, and a
//! `response.create` is answered as the service does: `response.created`, text or audio deltas
//! (`response.output_audio.delta` and its transcript on v1, `response.audio.delta` on dated
//! versions), `response.done` with its usage, and `rate_limits.updated`. An event it does not
//! know is an `error` event. The conversation's tokens grow with each turn, so each response's
//! input is larger than the last.

use std::sync::Arc;
use std::time::Duration;

use actix_http::ws::{CloseCode, CloseReason, Frame, OpCode};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{ConnectionType, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::deployments::act_out;
use super::{Simulator, azure_error, denied, json_reply, now};
use crate::proxy::inbound::auth::INSECURE_KEY_PROTOCOL;
use crate::proxy::inbound::query;
use crate::realtime::wire::{self, Incoming};

/// Audio bytes per audio token: pcm16 at 24 kHz is 48,000 bytes a second, about 10 tokens.
const AUDIO_BYTES_PER_TOKEN: u64 = 4_800;

/// The key (or secret) a browser puts in the `openai-insecure-api-key.` subprotocol.
pub(super) fn offered_key(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix(INSECURE_KEY_PROTOCOL))
}

impl Simulator {
    /// Whether `secret` is one this resource minted, not yet expired.
    pub(super) fn minted_opens(&self, secret: &str) -> bool {
        self.minted
            .lock()
            .map(|m| m.get(secret).is_some_and(|expires| *expires > now()))
            .unwrap_or(false)
    }

    fn mint(&self, prefix: &str, life_s: u64) -> (String, u64) {
        let secret = self.object_id(prefix);
        let expires = now() + life_s;
        if let Ok(mut minted) = self.minted.lock() {
            minted.retain(|_, e| *e > now());
            minted.insert(secret.clone(), expires);
        }
        (secret, expires)
    }
}

/// A realtime WebSocket handshake: refused as the service refuses a call (a key it does not
/// take, an unknown deployment, the acted-out stresses), or accepted and conversed with.
pub(super) async fn socket(
    req: HttpRequest,
    payload: web::Payload,
    sim: web::Data<Simulator>,
) -> HttpResponse {
    sim.record(&req, &Bytes::new());
    let refused = |mut response: HttpResponse| {
        response
            .head_mut()
            .set_connection_type(ConnectionType::Close);
        response
    };
    let reply = sim.reply();
    if let Err(e) = actix_http::ws::verify_handshake(req.head()) {
        return refused(json_reply(
            reply,
            azure_error(StatusCode::BAD_REQUEST, "BadRequest", &e.to_string()),
        ));
    }
    if !sim.admits(&req, true) {
        return refused(denied(reply));
    }
    let v1 = req.path().starts_with("/openai/v1/");
    let raw_query = req.query_string();
    if !v1 && query::get(raw_query, "api-version").is_none_or(|v| v.is_empty()) {
        return refused(json_reply(
            reply,
            azure_error(StatusCode::NOT_FOUND, "404", "Resource not found"),
        ));
    }
    let param = if v1 { "model" } else { "deployment" };
    let Some(deployment) = query::get(raw_query, param).map(|d| d.into_owned()) else {
        return refused(json_reply(
            reply,
            azure_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("The '{param}' query parameter is required."),
            ),
        ));
    };
    let mut reply = match act_out(&sim, reply, &req, &deployment, "realtime").await {
        Ok(reply) => reply,
        Err(answer) => return refused(answer),
    };
    wire::accept(&req, &mut reply);
    let offered_realtime = req
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == "realtime");
    if offered_realtime {
        reply.insert_header((
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("realtime"),
        ));
    }
    let (response, to_client) = wire::open(reply);
    let conversation = Conversation::new(sim.clone().into_inner(), deployment, v1, to_client);
    actix_web::rt::spawn(conversation.run(Incoming::new(payload)));
    response
}

/// One session's state.
struct Conversation {
    sim: Arc<Simulator>,
    deployment: String,
    v1: bool,
    to_client: mpsc::Sender<Bytes>,
    session: Value,
    /// Audio appended and not yet committed, in bytes.
    buffered_audio: u64,
    /// The conversation so far, as the next response reads it: text and audio tokens.
    text_tokens: u64,
    audio_tokens: u64,
    responses: u64,
}

/// How a session ends.
enum Ending {
    /// The client closed it (answered with its own close frame), or went away.
    Client,
    /// The resource ends it: a close frame with this code, or (`None`) a dropped connection.
    Resource(Option<CloseReason>),
}

impl Conversation {
    fn new(
        sim: Arc<Simulator>,
        deployment: String,
        v1: bool,
        to_client: mpsc::Sender<Bytes>,
    ) -> Conversation {
        let id = sim.object_id("sess_");
        let session = json!({
            "id": id,
            "object": "realtime.session",
            "type": "realtime",
            "model": deployment,
            "output_modalities": ["audio"],
            "modalities": ["text", "audio"],
            "voice": "alloy",
            "instructions": "",
            "turn_detection": null,
            "max_output_tokens": "inf",
        });
        Conversation {
            sim,
            deployment,
            v1,
            to_client,
            session,
            buffered_audio: 0,
            text_tokens: 0,
            audio_tokens: 0,
            responses: 0,
        }
    }

    async fn run(mut self, mut incoming: Incoming) {
        let created = json!({ "type": "session.created", "session": self.session });
        if self.event(created).await.is_err() {
            return;
        }
        let ending = loop {
            let step = match incoming.next().await {
                Ok(Frame::Text(data)) => self.on_event(&data).await,
                Ok(Frame::Binary(_)) => {
                    let error = self.error(
                        "invalid_request_error",
                        "binary_not_supported",
                        "Events are JSON text frames.",
                        None,
                    );
                    self.event(error).await.map(|_| None)
                }
                Ok(Frame::Ping(data)) => self
                    .send(wire::frame(OpCode::Pong, &data))
                    .await
                    .map(|_| None),
                Ok(Frame::Close(reason)) => {
                    let _ = self.send(wire::close(reason)).await;
                    Ok(Some(Ending::Client))
                }
                Ok(Frame::Pong(_) | Frame::Continuation(_)) => Ok(None),
                Err(_) => Ok(Some(Ending::Client)),
            };
            match step {
                Ok(None) => {}
                Ok(Some(ending)) => break ending,
                Err(()) => return,
            }
        };
        if let Ending::Resource(Some(reason)) = ending {
            let _ = self.send(wire::close(Some(reason))).await;
            // The client's answering close frame, briefly.
            let _ = tokio::time::timeout(Duration::from_secs(2), incoming.next()).await;
        }
        // Dropping the queue ends the connection; after a `cut-session` it ends with no close
        // frame at all.
    }

    /// Handles one client event; `Some` when the session ends with it.
    async fn on_event(&mut self, data: &[u8]) -> Result<Option<Ending>, ()> {
        let event: Value = match serde_json::from_slice(data) {
            Ok(event @ Value::Object(_)) => event,
            _ => {
                let error = self.error(
                    "invalid_request_error",
                    "invalid_json",
                    "The event is not a JSON object.",
                    None,
                );
                return self.event(error).await.map(|_| None);
            }
        };
        let client_id = event["event_id"].as_str().map(str::to_string);
        let kind = event["type"].as_str().unwrap_or_default().to_string();
        match kind.as_str() {
            "session.update" => {
                if let (Some(session), Some(update)) =
                    (self.session.as_object_mut(), event["session"].as_object())
                {
                    for (key, value) in update {
                        session.insert(key.clone(), value.clone());
                    }
                }
                let updated = json!({ "type": "session.updated", "session": self.session });
                self.event(updated).await?;
            }
            "input_audio_buffer.append" => {
                let audio = event["audio"].as_str().unwrap_or_default();
                self.buffered_audio += (audio.len() as u64 * 3) / 4;
            }
            "input_audio_buffer.commit" => {
                self.audio_tokens += self.buffered_audio.div_ceil(AUDIO_BYTES_PER_TOKEN);
                self.buffered_audio = 0;
                let item_id = self.sim.object_id("item_");
                let committed = json!({ "type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": null });
                self.event(committed).await?;
            }
            "input_audio_buffer.clear" => {
                self.buffered_audio = 0;
                self.event(json!({ "type": "input_audio_buffer.cleared" }))
                    .await?;
            }
            "conversation.item.create" => {
                let mut item = event["item"].clone();
                let text: usize = item["content"]
                    .as_array()
                    .map(|parts| {
                        parts
                            .iter()
                            .filter_map(|p| p["text"].as_str())
                            .map(str::len)
                            .sum()
                    })
                    .unwrap_or(0);
                self.text_tokens += (text as u64).div_ceil(4).max(1);
                if item.get("id").is_none() {
                    item["id"] = self.sim.object_id("item_").into();
                }
                let created = json!({ "type": "conversation.item.created", "previous_item_id": null, "item": item });
                self.event(created).await?;
            }
            "response.create" => return self.respond().await,
            "response.cancel" => {}
            other => {
                let message = format!(
                    "Invalid value: '{}'. Supported values are: 'session.update', 'input_audio_buffer.append', 'input_audio_buffer.commit', 'input_audio_buffer.clear', 'conversation.item.create', 'response.create', and 'response.cancel'.",
                    other.chars().take(64).collect::<String>()
                );
                let error = self.error(
                    "invalid_request_error",
                    "invalid_value",
                    &message,
                    client_id.as_deref(),
                );
                self.event(error).await?;
            }
        }
        Ok(None)
    }

    /// A response: its events, as the service sends them, and its usage.
    async fn respond(&mut self) -> Result<Option<Ending>, ()> {
        let response_id = self.sim.object_id("resp_");
        let item_id = self.sim.object_id("item_");
        let pending = json!({ "id": response_id, "object": "realtime.response", "status": "in_progress", "output": [], "usage": null });
        self.event(json!({ "type": "response.created", "response": pending }))
            .await?;
        let item = json!({ "id": item_id, "object": "realtime.item", "type": "message", "role": "assistant", "status": "in_progress", "content": [] });
        self.event(json!({ "type": "response.output_item.added", "response_id": response_id, "output_index": 0, "item": item })).await?;
        let audio = self.speaks();
        let (text_delta, audio_delta) = match (self.v1, audio) {
            (true, true) => (
                "response.output_audio_transcript.delta",
                "response.output_audio.delta",
            ),
            (true, false) => ("response.output_text.delta", ""),
            (false, true) => ("response.audio_transcript.delta", "response.audio.delta"),
            (false, false) => ("response.text.delta", ""),
        };
        let words = ["Hello ", "from ", &self.sim.config.region, "."];
        let delay = self.sim.config.chunk_delay;
        for (i, word) in words.iter().enumerate() {
            tokio::time::sleep(delay).await;
            let delta = json!({ "type": text_delta, "response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0, "delta": word });
            self.event(delta).await?;
            if audio && i % 2 == 1 {
                // 1,200 bytes of silence: 25 ms of pcm16 at 24 kHz.
                let chunk = json!({ "type": audio_delta, "response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0, "delta": "A".repeat(1600) });
                self.event(chunk).await?;
            }
            if i == 1 && self.deployment == "cut-session" {
                return Ok(Some(Ending::Resource(None)));
            }
        }
        let (out_text, out_audio) = (12, if audio { 25 } else { 0 });
        let input = self.text_tokens + self.audio_tokens;
        // What an earlier turn read is served from the cache in 64-token steps, past 1,024.
        let cached = if self.responses > 0 && input >= 1024 {
            (input - 64) / 64 * 64
        } else {
            0
        };
        let usage = json!({
            "total_tokens": input + out_text + out_audio,
            "input_tokens": input,
            "output_tokens": out_text + out_audio,
            "input_token_details": { "text_tokens": self.text_tokens, "audio_tokens": self.audio_tokens, "cached_tokens": cached },
            "output_token_details": { "text_tokens": out_text, "audio_tokens": out_audio },
        });
        let done = json!({ "id": response_id, "object": "realtime.response", "status": "completed",
            "output": [{ "id": item_id, "object": "realtime.item", "type": "message", "role": "assistant", "status": "completed",
                "content": [{ "type": if audio { "output_audio" } else { "output_text" }, "transcript": words.concat() }] }],
            "usage": usage });
        self.event(json!({ "type": "response.done", "response": done }))
            .await?;
        self.responses += 1;
        // The answer joins the conversation the next turn reads.
        self.text_tokens += out_text;
        self.audio_tokens += out_audio;
        let limits = json!({ "type": "rate_limits.updated", "rate_limits": [
            { "name": "requests", "limit": 1000, "remaining": 1000 - self.responses.min(1000), "reset_seconds": 60.0 },
            { "name": "tokens", "limit": 100_000, "remaining": 100_000u64.saturating_sub(input + out_text + out_audio), "reset_seconds": 60.0 },
        ] });
        self.event(limits).await?;
        if self.deployment == "short-session" {
            return Ok(Some(Ending::Resource(Some(CloseReason {
                code: CloseCode::Policy,
                description: Some("the session reached its time limit".into()),
            }))));
        }
        Ok(None)
    }

    /// Whether responses have audio: the session's `output_modalities` (v1) or `modalities`.
    fn speaks(&self) -> bool {
        let field = if self.v1 {
            "output_modalities"
        } else {
            "modalities"
        };
        self.session[field]
            .as_array()
            .is_none_or(|m| m.iter().any(|v| v == "audio"))
    }

    fn error(&self, kind: &str, code: &str, message: &str, client_event: Option<&str>) -> Value {
        json!({ "type": "error", "event_id": self.sim.object_id("event_"), "error": {
            "type": kind, "code": code, "message": message, "param": null, "event_id": client_event } })
    }

    /// Sends a server event, with its own id.
    async fn event(&self, mut event: Value) -> Result<(), ()> {
        if event.get("event_id").is_none() {
            event["event_id"] = self.sim.object_id("event_").into();
        }
        let text = event.to_string();
        self.send(wire::frame(OpCode::Text, text.as_bytes())).await
    }

    async fn send(&self, frame: Bytes) -> Result<(), ()> {
        self.to_client.send(frame).await.map_err(|_| ())
    }
}

/// The realtime REST calls (`segments` below `/openai/`), or `None` for another call.
pub(super) async fn rest_call(
    sim: &Simulator,
    req: &HttpRequest,
    segments: &[&str],
    body: &Bytes,
) -> Option<HttpResponse> {
    if req.method() != actix_web::http::Method::POST {
        return None;
    }
    let reply = sim.reply();
    let asked: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    Some(match segments {
        ["v1", "realtime", "client_secrets"] => {
            let mut session = asked["session"].clone();
            let Some(model) = session["model"].as_str().map(str::to_string) else {
                return Some(json_reply(
                    reply,
                    azure_error(
                        StatusCode::BAD_REQUEST,
                        "BadRequest",
                        "session.model is required.",
                    ),
                ));
            };
            let reply = match act_out(sim, reply, req, &model, "realtime_client_secrets").await {
                Ok(reply) => reply,
                Err(answer) => return Some(answer),
            };
            let life = asked["expires_after"]["seconds"].as_u64().unwrap_or(600);
            let (value, expires_at) = sim.mint("ek_", life);
            session["id"] = sim.object_id("sess_").into();
            session["object"] = "realtime.session".into();
            json_reply(
                reply,
                (
                    StatusCode::OK,
                    json!({ "value": value, "expires_at": expires_at, "session": session }),
                ),
            )
        }
        ["realtimeapi", "sessions"] => {
            let Some(model) = asked["model"].as_str().map(str::to_string) else {
                return Some(json_reply(
                    reply,
                    azure_error(StatusCode::BAD_REQUEST, "BadRequest", "model is required."),
                ));
            };
            let reply = match act_out(sim, reply, req, &model, "realtime_sessions").await {
                Ok(reply) => reply,
                Err(answer) => return Some(answer),
            };
            let (value, expires_at) = sim.mint("eph_", 60);
            let session = json!({ "id": sim.object_id("sess_"), "object": "realtime.session", "model": model,
                "modalities": ["audio", "text"], "voice": asked["voice"].as_str().unwrap_or("alloy"), "expires_at": 0,
                "client_secret": { "value": value, "expires_at": expires_at } });
            json_reply(reply, (StatusCode::OK, session))
        }
        ["v1", "realtime", "calls"] => {
            let mut reply = reply;
            let call_id = sim.object_id("rtc_");
            reply.status(StatusCode::CREATED);
            reply.insert_header((header::LOCATION, format!("/v1/realtime/calls/{call_id}")));
            reply.insert_header((header::CONTENT_TYPE, "application/sdp"));
            let region = &sim.config.region;
            reply.body(format!("v=0\r\no=- {call_id} 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=setup:active\r\na=x-region:{region}\r\n"))
        }
        _ => return None,
    })
}
