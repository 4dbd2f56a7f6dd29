//! Serves the route docs generated at build time and each api-version's spec.
//!
//! - `<docs path>/` and `<docs path>/<page>.html`: the pages, with the configured base path
//!   filled in when a page is first asked for; `<docs path>` itself redirects to
//!   `<docs path>/` so that the pages' relative links work.
//! - `/openapi/<api-version>.json`: the spec as compiled in, with `servers` pointing at this
//!   gateway's base path (rewritten when first asked for), for Swagger UI, Postman or client
//!   generators.
//!
//! Neither needs a subscription key unless `docs.require_key` says so. Pages are sent with a
//! content security policy that allows nothing from the network but calls to this gateway
//! itself (the "Try it" panels): they need nothing else.

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use bytes::Bytes;

use crate::config::DocsConfig;
use crate::generated::{API_VERSIONS, DOCS, DOCS_BASE_PATH, DOCUMENTS};
use crate::proxy::error::GatewayError;
use crate::proxy::inbound::auth::Auth;

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub struct Docs {
    path: String,
    require_key: bool,
    base_path: String,
    /// Each page of `DOCS` with the base path filled in, made when first asked for: until
    /// then no page costs memory (they are megabytes, and most gateways never serve them).
    pages: Vec<OnceLock<Bytes>>,
    /// Each spec of `DOCUMENTS` with its `servers` pointing here, made when first asked for.
    specs: Vec<OnceLock<Bytes>>,
}

impl Docs {
    /// `None` when the docs are switched off.
    pub fn new(config: &DocsConfig, base_path: &str) -> Option<Docs> {
        if !config.enabled {
            return None;
        }
        Some(Docs {
            path: config.path.clone(),
            require_key: config.require_key,
            base_path: base_path.to_string(),
            pages: DOCS.iter().map(|_| OnceLock::new()).collect(),
            specs: DOCUMENTS.iter().map(|_| OnceLock::new()).collect(),
        })
    }

    /// Page `name`, with this gateway's base path in place of the placeholder it was compiled
    /// with.
    fn page(&self, name: &str) -> Option<Bytes> {
        let at = DOCS.iter().position(|(n, _)| *n == name)?;
        let html = DOCS[at].1;
        Some(
            self.pages[at]
                .get_or_init(|| Bytes::from(html.replace(DOCS_BASE_PATH, &self.base_path)))
                .clone(),
        )
    }

    /// The spec of `version`, its `servers` this gateway's base path (and the version's mount).
    fn spec(&self, version: &str) -> Option<Bytes> {
        let at = DOCUMENTS.iter().position(|(v, _)| *v == version)?;
        let (version, json) = DOCUMENTS[at];
        Some(
            self.specs[at]
                .get_or_init(|| {
                    let mut doc: serde_json::Value =
                        serde_json::from_str(json).unwrap_or(serde_json::Value::Null);
                    // The version's routes live under its mount (`/v1`), if it has one.
                    let mount = API_VERSIONS
                        .iter()
                        .find(|a| a.version == version)
                        .map_or("", |a| a.mount);
                    if let Some(obj) = doc.as_object_mut() {
                        obj.insert(
                            "servers".into(),
                            serde_json::json!([{ "url": format!("{}{mount}", self.base_path), "description": "this gateway" }]),
                        );
                    }
                    Bytes::from(doc.to_string())
                })
                .clone(),
        )
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
            let spec = self.spec(version).ok_or(GatewayError::NotFound)?;
            return Ok(Some(
                HttpResponse::Ok()
                    .content_type("application/json")
                    .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
                    .body(spec),
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
        let html = self.page(page).ok_or(GatewayError::NotFound)?;
        Ok(Some(
            HttpResponse::Ok()
                .content_type("text/html; charset=utf-8")
                .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
                .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                .body(html),
        ))
    }
}
