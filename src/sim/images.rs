//! Image generation.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, HttpResponseBuilder};
use serde_json::{Value, json};

use super::text::content_filter;
use super::{Simulator, json_reply, now};

pub(super) fn images(
    sim: &Simulator,
    mut reply: HttpResponseBuilder,
    request: &Value,
    deployment: &str,
) -> HttpResponse {
    let prompt = request.get("prompt").and_then(Value::as_str).unwrap_or("");
    let n = request
        .get("n")
        .and_then(Value::as_u64)
        .unwrap_or(1)
        .clamp(1, 10);
    let b64 = request.get("response_format").and_then(Value::as_str) == Some("b64_json");
    sim.spend(&mut reply, deployment, 0);
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
