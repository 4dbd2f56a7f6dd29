//! Serves the route docs generated at build time and each api-version's spec.
//!
//! - `<docs path>/` and `<docs path>/<page>.html`: the pages, with the configured base path
//!   filled in once at start-up; `<docs path>` itself redirects to `<docs path>/` so that the
//!   pages' relative links work.
//! - `/openapi/<api-version>.json`: the spec as compiled in, with `servers` pointing at this
//!   gateway's base path, for Swagger UI, Postman or client generators.
//!
//! Neither needs a subscription key unless `docs.require_key` says so. Pages are sent with a
//! content security policy that allows nothing from the network but calls to this gateway
//! itself (the "Try it" panels): they need nothing else.

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};

use crate::config::DocsConfig;
use crate::generated::{API_VERSIONS, DOCS, DOCS_BASE_PATH, DOCUMENTS};
use crate::proxy::error::GatewayError;
use crate::proxy::inbound::auth::Auth;

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub struct Docs {
    path: String,
    require_key: bool,
    pages: HashMap<&'static str, String>,
    specs: HashMap<&'static str, String>,
}

impl Docs {
    /// `None` when the docs are switched off.
    pub fn new(config: &DocsConfig, base_path: &str) -> Option<Docs> {
        if !config.enabled {
            return None;
        }
        let pages = DOCS
            .iter()
            .map(|(name, html)| (*name, html.replace(DOCS_BASE_PATH, base_path)))
            .collect();
        let specs = DOCUMENTS
            .iter()
            .map(|(version, json)| {
                let mut doc: serde_json::Value =
                    serde_json::from_str(json).unwrap_or(serde_json::Value::Null);
                // The version's routes live under its mount (`/v1`), if it has one.
                let mount = API_VERSIONS
                    .iter()
                    .find(|a| a.version == *version)
                    .map_or("", |a| a.mount);
                if let Some(obj) = doc.as_object_mut() {
                    obj.insert(
                        "servers".into(),
                        serde_json::json!([{ "url": format!("{base_path}{mount}"), "description": "this gateway" }]),
                    );
                }
                (*version, doc.to_string())
            })
            .collect();
        Some(Docs {
            path: config.path.clone(),
            require_key: config.require_key,
            pages,
            specs,
        })
    }

    /// Answers the request if it is for the docs or a spec.
    pub async fn serve(
        &self,
        req: &HttpRequest,
        auth: &Auth,
    ) -> Result<Option<HttpResponse>, GatewayError> {
        let path = req.path();
        let page = path
            .strip_prefix(self.path.as_str())
            .and_then(|r| r.strip_prefix('/'));
        let spec = path
            .strip_prefix("/openapi/")
            .and_then(|r| r.strip_suffix(".json"));
        if path != self.path && page.is_none() && spec.is_none() {
            return Ok(None);
        }
        auth.allows_page(self.require_key, req.headers(), req.query_string())
            .await?;
        if let Some(version) = spec {
            let spec = self.specs.get(version).ok_or(GatewayError::NotFound)?;
            return Ok(Some(
                HttpResponse::Ok()
                    .content_type("application/json")
                    .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
                    .body(spec.clone()),
            ));
        }
        let Some(page) = page else {
            // The bare docs path: the pages' relative links need the trailing slash.
            let location = format!("{}/", self.path);
            return Ok(Some(
                HttpResponse::PermanentRedirect()
                    .insert_header((header::LOCATION, location))
                    .finish(),
            ));
        };
        let page = if page.is_empty() { "index.html" } else { page };
        let html = self.pages.get(page).ok_or(GatewayError::NotFound)?;
        Ok(Some(
            HttpResponse::Ok()
                .content_type("text/html; charset=utf-8")
                .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
                .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                .body(html.clone()),
        ))
    }
}
