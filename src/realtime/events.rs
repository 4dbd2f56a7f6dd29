//! The few realtime events the gateway reads as they pass: a client's `response.create` (what
//! it may cost, before it is forwarded) and a server's `response.done` (what it cost), plus the
//! `error` event the gateway sends in the API's shape when it refuses one. Every other event,
//! audio appends above all, is passed on without being parsed: a cheap search for the event's
//! name decides.

use memchr::memmem;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::tokens::usage::Usage;

/// A client's `response.create`: its id, and the output it allows (`max_output_tokens`, or
/// `max_response_output_tokens` on preview versions), when a number.
#[derive(Debug, PartialEq, Eq)]
pub struct Create {
    pub event_id: Option<String>,
    pub max_output: Option<u64>,
}

#[derive(Deserialize)]
struct ClientEvent {
    #[serde(rename = "type")]
    kind: String,
    event_id: Option<String>,
    response: Option<ResponseParams>,
}

#[derive(Deserialize)]
struct ResponseParams {
    max_output_tokens: Option<serde_json::Value>,
    max_response_output_tokens: Option<serde_json::Value>,
}

/// The client event `text` is a `response.create`: what it says.
pub fn response_create(text: &[u8]) -> Option<Create> {
    memmem::find(text, b"\"response.create\"")?;
    let event: ClientEvent = serde_json::from_slice(text).ok()?;
    if event.kind != "response.create" {
        return None;
    }
    let max_output = event.response.and_then(|r| {
        r.max_output_tokens
            .or(r.max_response_output_tokens)
            .and_then(|v| v.as_u64())
    });
    Some(Create {
        event_id: event.event_id,
        max_output,
    })
}

#[derive(Deserialize)]
struct ServerEvent<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(borrow)]
    response: Option<DoneResponse<'a>>,
}

#[derive(Deserialize)]
struct DoneResponse<'a> {
    #[serde(borrow)]
    usage: Option<&'a RawValue>,
}

/// The server event `text` is a `response.done`: the usage it reports (`None` inside when it
/// reports none, as a cancelled response may not).
pub fn response_done(text: &[u8]) -> Option<Option<Usage>> {
    memmem::find(text, b"\"response.done\"")?;
    let event: ServerEvent<'_> = serde_json::from_slice(text).ok()?;
    if event.kind != "response.done" {
        return None;
    }
    Some(
        event
            .response
            .and_then(|r| r.usage)
            .and_then(|raw| Usage::parse(raw.get().as_bytes())),
    )
}

/// A realtime `error` event, as the service sends one: `code`, the message, and the id of the
/// client event at fault.
pub fn error(code: &str, message: &str, client_event: Option<&str>) -> String {
    serde_json::json!({
        "type": "error",
        "event_id": format!("event_gw_{}", crate::proxy::call::new_id().replace('-', "")),
        "error": {
            "type": "invalid_request_error",
            "code": code,
            "message": message,
            "param": null,
            "event_id": client_event,
        }
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_create_is_read_and_other_events_are_not() {
        let create =
            br#"{"type":"response.create","event_id":"e1","response":{"max_output_tokens":300}}"#;
        assert_eq!(
            response_create(create),
            Some(Create {
                event_id: Some("e1".into()),
                max_output: Some(300)
            })
        );
        let preview =
            br#"{"type":"response.create","response":{"max_response_output_tokens":"inf"}}"#;
        assert_eq!(response_create(preview).unwrap().max_output, None);
        let item = br#"{"type":"conversation.item.create","item":{"content":[{"type":"input_text","text":"say \"response.create\""}]}}"#;
        assert_eq!(response_create(item), None);
        assert_eq!(
            response_create(br#"{"type":"input_audio_buffer.append","audio":"AAAA"}"#),
            None
        );
        assert_eq!(response_create(b"not json \"response.create\""), None);
    }

    #[test]
    fn a_response_done_gives_its_usage_with_audio_and_cached_tokens() {
        let done = br#"{"type":"response.done","event_id":"ev","response":{"id":"resp_1","status":"completed",
            "usage":{"total_tokens":330,"input_tokens":200,"output_tokens":130,
            "input_token_details":{"text_tokens":50,"audio_tokens":150,"cached_tokens":64},
            "output_token_details":{"text_tokens":30,"audio_tokens":100}}}}"#;
        let usage = response_done(done).unwrap().unwrap();
        assert_eq!(
            (usage.prompt, usage.completion, usage.total, usage.cached),
            (200, 130, 330, 64)
        );
        let cancelled =
            br#"{"type":"response.done","response":{"status":"cancelled","usage":null}}"#;
        assert_eq!(response_done(cancelled), Some(None));
        assert_eq!(
            response_done(br#"{"type":"response.output_audio.delta","delta":"AAAA"}"#),
            None
        );
    }

    #[test]
    fn the_error_event_names_the_client_event() {
        let event: serde_json::Value =
            serde_json::from_str(&error("rate_limit_exceeded", "over", Some("e7"))).unwrap();
        assert_eq!(event["type"], "error");
        assert_eq!(event["error"]["code"], "rate_limit_exceeded");
        assert_eq!(event["error"]["event_id"], "e7");
        assert!(event["event_id"].as_str().unwrap().starts_with("event_gw_"));
    }
}
