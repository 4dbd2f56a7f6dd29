//! A list of stored objects (`GET /files`, `/vector_stores`, `/assistants`…) for a caller who
//! may see only its own: the gateway reads the backend's pages and keeps the caller's objects,
//! page after page, until it has as many as the client asked for, so that pagination stays
//! coherent: the client's next page starts after the last object it was given, and no other
//! subscription's id appears in any answer.
//!
//! Pages are read by the list's own `after` cursor, where the operation has one (and `limit`,
//! set to the largest page Azure gives); a list without a cursor (the v1 API's `GET /files`)
//! is one page, filtered. A list read backwards (`before`) is one page too, filtered. At most
//! 50 backend pages (`PAGES`) are read for one answer: past that, the answer says `has_more` with
//! what was found.

use actix_web::HttpResponse;
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use serde_json::Value;

use crate::config::Backend;
use crate::proxy::Gateway;
use crate::proxy::call::Trace;
use crate::proxy::error::GatewayError;
use crate::proxy::inbound::query;
use crate::proxy::upstream::dispatch::Call;
use crate::proxy::upstream::forward::{self, Outgoing};
use crate::proxy::upstream::{Failure, UpstreamError};

/// The largest page Azure's lists give.
const PAGE: usize = 100;
/// The page a client gets when it names no `limit` (Azure's default).
const DEFAULT_LIMIT: usize = 20;
/// Backend pages read for one answer, at most.
const PAGES: usize = 50;
/// A list page's body, at most.
const BODY_LIMIT: usize = 16 << 20;

/// The caller's objects of the list `call` asks `first` for (see the module note).
pub async fn own(
    call: &Call<'_>,
    first: (usize, &Backend),
    gw: &Gateway,
    client: &awc::Client,
    trace: &mut Trace,
    owner: &str,
    kind: &str,
) -> Result<HttpResponse, GatewayError> {
    let (index, backend) = first;
    trace.backend = Some(index);
    let declared = |name: &str| call.route.parameters.iter().any(|p| p.name == name);
    let raw = call.query.as_ref();
    let backwards = query::get(raw, "before").is_some();
    let paged = declared("after") && declared("limit") && !backwards;
    let wanted = query::get(raw, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .map_or(DEFAULT_LIMIT, |l| l.clamp(1, PAGE));
    let mut cursor = query::get(raw, "after").map(|a| a.into_owned());
    let mut kept: Vec<Value> = Vec::new();
    let mut more = false;
    let mut last = None;
    for _ in 0..PAGES {
        let page_query = if paged {
            page_query(raw, cursor.as_deref())
        } else {
            raw.to_string()
        };
        trace.attempts += 1;
        let sent = std::time::Instant::now();
        let answer = forward::forward(
            client,
            backend,
            Outgoing {
                method: &Method::GET,
                headers: call.req.headers(),
                path: &call.path_for(backend),
                query: &page_query,
                body: bytes::Bytes::new(),
                decoded: false,
                request_id: (!trace.client_sent_id).then(|| trace.id.clone()),
                trace: trace
                    .spans
                    .as_mut()
                    .map(|s| s.attempt(backend, trace.attempts, call.route.path, call.deployment)),
                bearer: None,
            },
        )
        .await;
        let status = answer.as_ref().ok().map(|a| a.status.as_u16());
        gw.metrics
            .backend_call(index, status, sent.elapsed(), Default::default());
        if let Some(spans) = trace.spans.as_mut() {
            let failure = answer.as_ref().err().map(|e| e.kind.as_str());
            spans.answered(status, failure, status.is_some());
        }
        let answer = answer?;
        if !answer.status.is_success() {
            // The backend's refusal, as it gave it.
            return Ok(answer.into_response(call.req.version(), None, None, |_| {}));
        }
        let (status, headers, body) = answer.read_whole(&backend.name, BODY_LIMIT).await?;
        let mut page: Value = serde_json::from_slice(&body).map_err(|_| unreadable(backend))?;
        let items = match page.get_mut("data").map(Value::take) {
            Some(Value::Array(items)) => items,
            _ => return Err(unreadable(backend).into()),
        };
        let has_more = page.get("has_more").and_then(Value::as_bool) == Some(true);
        let ids: Vec<&str> = items
            .iter()
            .map(|item| item.get("id").and_then(Value::as_str).unwrap_or(""))
            .collect();
        let entries = gw.objects.directory.look_up(&ids).await.map_err(|error| {
            tracing::debug!("object directory: {error}");
            GatewayError::DirectoryUnavailable
        })?;
        let page_last = ids.last().map(|id| id.to_string());
        let mut theirs = items
            .into_iter()
            .zip(entries)
            .filter(|(_, entry)| {
                entry
                    .as_ref()
                    .is_some_and(|e| e.owner == owner && e.kind == kind)
            })
            .map(|(item, _)| item);
        kept.extend(theirs.by_ref().take(wanted - kept.len()));
        more = theirs.next().is_some() || has_more;
        last = Some((status, headers, page));
        if kept.len() >= wanted || !has_more || !paged {
            break;
        }
        cursor = page_last;
    }
    let Some((status, headers, mut page)) = last else {
        return Err(GatewayError::Internal("no page was read".into()));
    };
    let id = |item: Option<&Value>| item.and_then(|i| i.get("id")).cloned();
    page["first_id"] = id(kept.first()).unwrap_or(Value::Null);
    page["last_id"] = id(kept.last()).unwrap_or(Value::Null);
    page["has_more"] = Value::Bool(more);
    page["data"] = Value::Array(kept);
    let mut response = HttpResponse::build(status);
    for (name, value) in &headers {
        if name != header::CONTENT_LENGTH && name != header::CONTENT_ENCODING {
            response.append_header((name.clone(), value.clone()));
        }
    }
    response.insert_header((
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    ));
    Ok(response.body(page.to_string()))
}

/// The client's query for one backend page: its own, with the largest page and `after` the
/// cursor.
fn page_query(raw: &str, after: Option<&str>) -> String {
    let mut out: Vec<String> = query::pairs(raw)
        .filter(|(k, _)| *k != "limit" && *k != "after")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    out.push(format!("limit={PAGE}"));
    if let Some(after) = after {
        out.push(format!("after={}", query::encode(after)));
    }
    out.join("&")
}

fn unreadable(backend: &Backend) -> UpstreamError {
    UpstreamError::new(
        &backend.name,
        Failure::Broken,
        "its list is not a JSON object with `data`",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_asks_for_the_most_after_the_cursor_and_keeps_the_rest() {
        assert_eq!(
            page_query("api-version=v1&limit=5&order=desc&after=x", Some("vs_a b")),
            "api-version=v1&order=desc&limit=100&after=vs_a%20b"
        );
        assert_eq!(page_query("", None), "limit=100");
    }
}
