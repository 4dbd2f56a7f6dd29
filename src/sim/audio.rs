//! Transcription and translation (multipart forms in, text out) and speech (JSON in, audio out).

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, HttpResponseBuilder};
use serde_json::{Value, json};

use super::{Simulator, azure_error, json_reply};
use crate::proxy::inbound::multipart;

/// The text fields of a form body (file parts left out).
pub(super) fn form_fields(content_type: &str, body: &[u8]) -> Option<HashMap<String, String>> {
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

pub(super) fn audio_text(
    sim: &Simulator,
    mut reply: HttpResponseBuilder,
    content_type: &str,
    body: &[u8],
    transcribe: bool,
    deployment: &str,
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
    sim.spend(&mut reply, deployment, 0);
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

pub(super) fn speech(
    sim: &Simulator,
    mut reply: HttpResponseBuilder,
    content_type: &str,
    body: &[u8],
    deployment: &str,
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
    sim.spend(&mut reply, deployment, 0);
    reply.content_type(media).body(audio)
}
