//! The gateway's own pages, answered before any API route is looked at: `/healthz` (the
//! process runs), `/readyz` (it takes calls: not while stopping, nor while it refuses calls for
//! want of its shared state), `/metrics` (Prometheus, see `metrics.*`), `/status` and
//! `/status.json` ([`status`](crate::status), see `status.*`) and the route docs and served
//! specs ([`docs`](super::docs)).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};

use super::Gateway;
use super::error::GatewayError;
use crate::live::Live;

/// The page `req` asks for, if it is one of the gateway's own; `None` for an API call.
pub async fn serve(
    req: &HttpRequest,
    gw: &Gateway,
    live: &Live,
) -> Option<Result<HttpResponse, GatewayError>> {
    let path = req.path();
    if path == "/healthz" {
        return Some(Ok(
            HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
        ));
    }
    if path == "/readyz" {
        return Some(Ok(match gw.unready() {
            Some(why) => {
                HttpResponse::ServiceUnavailable().json(serde_json::json!({ "status": why }))
            }
            None => HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })),
        }));
    }
    if let Some(docs) = &gw.docs {
        match docs.serve(req, &gw.auth).await {
            Ok(Some(page)) => return Some(Ok(page)),
            Ok(None) => {}
            Err(refused) => return Some(Err(refused)),
        }
    }
    if gw.metrics_page.enabled && path == gw.metrics_page.path {
        let allowed = gw
            .auth
            .allows_page(
                gw.metrics_page.require_key,
                req.headers(),
                req.query_string(),
            )
            .await;
        return Some(allowed.map(|()| {
            let mut text = gw
                .metrics
                .render(crate::state::up(gw), gw.objects.directory.sizes());
            if let Some(traces) = &gw.traces {
                traces.render(&mut text);
            }
            HttpResponse::Ok()
                .content_type("text/plain; version=0.0.4; charset=utf-8")
                .body(text)
        }));
    }
    let status = &gw.status_page;
    if status.enabled {
        let json = path
            .strip_prefix(status.path.as_str())
            .is_some_and(|rest| rest == ".json");
        if json || path == status.path {
            let allowed = gw
                .auth
                .allows_page(status.require_key, req.headers(), req.query_string())
                .await;
            if let Err(refused) = allowed {
                return Some(Err(refused));
            }
            let now = crate::status::gather(gw, live).await;
            let page = if json {
                HttpResponse::Ok()
                    .insert_header((header::CACHE_CONTROL, "no-store"))
                    .json(now)
            } else {
                HttpResponse::Ok()
                    .content_type("text/html; charset=utf-8")
                    .insert_header((header::CACHE_CONTROL, "no-store"))
                    .insert_header((header::CONTENT_SECURITY_POLICY, STATUS_CSP))
                    .body(crate::status::page::render(&now))
            };
            return Some(Ok(page));
        }
    }
    None
}

/// The status page loads nothing and runs nothing: its style is inline.
const STATUS_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'";
