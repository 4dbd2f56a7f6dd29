//! From the file as written to [`Settings`]: every value checked, every mistake reported.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use actix_web::http::header::HeaderValue;

use super::identity::{self, Sources};
use super::secrets;
use super::{
    Backend, BackendAuth, BackendCredential, Balancing, ConfigError, DocsConfig, Failover,
    FileConfig, LimitsConfig, MetricsConfig, ObjectSettings, OnStateError, OtelSettings, Settings,
    StateSettings, StatusConfig, Subscription, UnknownFields, UsageSettings, compat, sha256,
};
use crate::balance::MAX_BACKENDS;
use crate::limits::{Limits, SubscriptionLimits};
use crate::tokens::tokenizer::Encoding;

/// Everything wrong with a config, found in one pass: each mistake on a line of its own, as
/// `file: key: reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        ConfigErrors(vec![error])
    }
}

/// Collects mistakes while a config is checked, so that all of them are reported at once.
pub(super) struct Checker<'f> {
    file: &'f str,
    errors: Vec<ConfigError>,
    /// The secret files read, which a change of reloads the config (`reload.watch`).
    pub(super) files: Vec<std::path::PathBuf>,
}

impl Checker<'_> {
    pub(super) fn fail(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.into(),
            key: key.into(),
            reason: reason.into(),
        });
    }

    /// The value, or `None` with the mistake noted under `key`.
    pub(super) fn ok<T>(&mut self, key: impl Into<String>, result: Result<T, String>) -> Option<T> {
        result.map_err(|reason| self.fail(key, reason)).ok()
    }
}

impl FileConfig {
    /// Checks every value; `env` supplies the keys; `versions` are the compiled api-versions.
    /// Every mistake is reported, not only the first.
    pub fn check(
        &self,
        file: &str,
        env: &HashMap<String, String>,
        versions: &[&str],
    ) -> Result<Settings, ConfigErrors> {
        let mut c = Checker {
            file,
            errors: Vec::new(),
            files: vec![std::path::PathBuf::from(file)],
        };
        let listen = c.ok(
            "listen",
            self.listen
                .parse::<SocketAddr>()
                .map_err(|_| format!("`{}` is not an address such as 127.0.0.1:8080", self.listen)),
        );
        let base_path = self.checked_base_path(&mut c);
        self.check_numbers(&mut c);
        if let Some(base_path) = &base_path {
            self.check_pages(&mut c, base_path);
        }
        let backends = self.checked_backends(&mut c, env, versions);
        let subscriptions = self.checked_subscriptions(&mut c, env);
        let usage = self.checked_usage(&mut c);
        let state = self.checked_state(&mut c);
        let otel = self.checked_otel(&mut c, env);
        let names: Vec<&str> = subscriptions.iter().map(|s| s.name.as_str()).collect();
        let callers = identity::callers(&mut c, &self.auth.entra, env, &names);
        let a = &self.auth;
        if !(a.ocp_apim_subscription_key_header
            || a.api_key_header
            || a.subscription_key_query
            || a.bearer_header)
        {
            c.fail(
                "auth",
                "at least one place for the subscription key must be allowed",
            );
        }
        let objects = ObjectSettings {
            isolation: self.stored_objects.isolation,
            path: self.checked_state_path(&mut c, state.is_some()),
        };
        let (Some(listen), Some(base_path), true) = (listen, base_path, c.errors.is_empty()) else {
            return Err(ConfigErrors(c.errors));
        };
        Ok(Settings {
            listen,
            base_path,
            workers: self.workers,
            max_body_bytes: self.limits.max_body_bytes,
            validation: aoai_runtime::schema::Policy {
                reject_unknown_fields: self.validation.unknown_fields == UnknownFields::Reject,
            },
            connect_timeout: Duration::from_millis(self.timeouts.connect_ms),
            response_timeout: Duration::from_millis(self.timeouts.response_ms),
            client_head_timeout: Duration::from_millis(self.timeouts.client_head_ms),
            client_body_timeout: Duration::from_millis(self.timeouts.client_body_ms),
            failover: Failover {
                attempts: self.failover.attempts,
                unreachable_rest: Duration::from_millis(self.failover.unreachable_rest_ms),
                max_rest: Duration::from_millis(self.failover.max_rest_ms),
                circuit_failures: self.failover.circuit_failures,
                circuit_window: Duration::from_millis(self.failover.circuit_window_ms),
                circuit_cooldown: Duration::from_millis(self.failover.circuit_cooldown_ms),
                skip_low_headroom: self.failover.skip_low_headroom,
                headroom_ttl: Duration::from_millis(self.failover.headroom_ttl_ms),
            },
            balancing: Balancing {
                policy: self.balancing.policy,
                load_factor: self.balancing.load_factor,
                deployments: self
                    .balancing
                    .deployments
                    .iter()
                    .map(|(name, d)| (name.clone(), d.policy))
                    .collect(),
            },
            shutdown_drain: Duration::from_secs(self.shutdown.drain_s),
            shutdown_grace: Duration::from_secs(self.shutdown.grace_s),
            auth: self.auth.clone(),
            callers,
            docs: DocsConfig {
                path: self.docs.path.trim_end_matches('/').to_string(),
                ..self.docs.clone()
            },
            metrics: MetricsConfig {
                path: self.metrics.path.trim_end_matches('/').to_string(),
                ..self.metrics.clone()
            },
            status: StatusConfig {
                path: self.status.path.trim_end_matches('/').to_string(),
                ..self.status.clone()
            },
            reload: self.reload.clone(),
            otel,
            watched: c.files,
            usage,
            objects,
            state,
            log: self.log.clone(),
            backends,
            subscriptions,
        })
    }

    fn checked_otel(&self, c: &mut Checker, env: &HashMap<String, String>) -> Option<OtelSettings> {
        let o = &self.otel;
        let from_env = |var: &str| env.get(var).filter(|v| !v.trim().is_empty()).cloned();
        let endpoint = o
            .endpoint
            .clone()
            .filter(|e| !e.trim().is_empty())
            .or_else(|| from_env("OTEL_EXPORTER_OTLP_ENDPOINT"))?;
        let trimmed = endpoint.trim().trim_end_matches('/');
        let endpoint = if !(trimmed.starts_with("http://") || trimmed.starts_with("https://"))
            || trimmed.contains(['?', '#', ' '])
        {
            c.fail(
                "otel.endpoint",
                format!("`{endpoint}` is not an http(s) URL such as http://localhost:4318"),
            );
            None
        } else if trimmed.ends_with("/v1/traces") {
            Some(trimmed.to_string())
        } else {
            Some(format!("{trimmed}/v1/traces"))
        };
        let ratio = match o.sample_ratio {
            Some(r) => Some(r),
            None => match from_env("OTEL_TRACES_SAMPLER_ARG") {
                Some(v) => c.ok(
                    "otel.sample_ratio",
                    v.trim()
                        .parse::<f64>()
                        .map_err(|_| format!("OTEL_TRACES_SAMPLER_ARG `{v}` is not a number")),
                ),
                None => Some(1.0),
            },
        };
        let ratio = ratio.filter(|r| {
            let fits = (0.0..=1.0).contains(r);
            if !fits {
                c.fail("otel.sample_ratio", format!("{r} is not between 0 and 1"));
            }
            fits
        });
        let headers = match &o.headers_env {
            Some(var) => match env.get(var) {
                Some(v) => Some(v.clone()),
                None => {
                    c.fail(
                        "otel.headers_env",
                        format!("environment variable `{var}` is not set"),
                    );
                    None
                }
            },
            None => from_env("OTEL_EXPORTER_OTLP_HEADERS"),
        };
        let headers = match headers.as_deref().map(otel_headers) {
            Some(Err(why)) => {
                c.fail("otel.headers_env", why);
                None
            }
            Some(Ok(h)) => Some(h),
            None => Some(Vec::new()),
        };
        let service_name = o
            .service_name
            .clone()
            .or_else(|| from_env("OTEL_SERVICE_NAME"))
            .unwrap_or_else(|| "aoai-gateway".into());
        Some(OtelSettings {
            endpoint: endpoint?,
            service_name,
            sample_ratio: ratio?,
            headers: headers?,
        })
    }

    fn checked_state(&self, c: &mut Checker) -> Option<StateSettings> {
        let s = &self.state;
        let prefix = s.key_prefix.trim();
        if prefix.is_empty() || prefix.contains(['{', '}', ' ', ':']) {
            c.fail(
                "state.key_prefix",
                format!("`{prefix}` must be non-empty, without braces, spaces or colons"),
            );
        }
        if s.timeout_ms == 0 {
            c.fail("state.timeout_ms", "must be more than 0 ms");
        }
        let url = s.redis_url.as_deref()?.trim();
        // The URL may hold a password: a mistake names the key, never the value.
        if let Err(e) = redis::Client::open(url) {
            c.fail(
                "state.redis_url",
                format!(
                    "is not a Redis URL (redis://host:port or rediss://host:port): {:?}",
                    e.kind()
                ),
            );
            return None;
        }
        Some(StateSettings {
            redis_url: url.to_string(),
            key_prefix: prefix.to_string(),
            timeout: Duration::from_millis(s.timeout_ms),
            reject: s.on_error == OnStateError::Reject,
        })
    }

    /// `state.path`, which only matters without Redis; its folder must exist.
    fn checked_state_path(&self, c: &mut Checker, redis: bool) -> Option<std::path::PathBuf> {
        let path = std::path::PathBuf::from(self.state.path.as_deref()?.trim());
        if redis {
            // Redis holds the directory; the file would be a second truth.
            return None;
        }
        let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
        if path.as_os_str().is_empty() || folder.is_some_and(|f| !f.is_dir()) {
            c.fail(
                "state.path",
                format!(
                    "`{}` must be a file in a folder that exists",
                    path.display()
                ),
            );
            return None;
        }
        Some(path)
    }

    fn checked_usage(&self, c: &mut Checker) -> UsageSettings {
        let mut encodings = HashMap::new();
        for (deployment, name) in &self.usage.encodings {
            match Encoding::parse(name) {
                Some(encoding) => {
                    encodings.insert(deployment.clone(), encoding);
                }
                None => c.fail(
                    format!("usage.encodings.{deployment}"),
                    format!("`{name}` is not an encoding; use o200k_base or cl100k_base"),
                ),
            }
        }
        UsageSettings {
            stream_include_usage: self.usage.stream_include_usage,
            default_completion_tokens: self.usage.default_completion_tokens,
            encodings,
        }
    }

    fn checked_base_path(&self, c: &mut Checker) -> Option<String> {
        let base_path = self.base_path.trim_end_matches('/').to_string();
        if !self.base_path.starts_with('/') || base_path.contains(['?', '#']) {
            c.fail(
                "base_path",
                format!(
                    "`{}` must be a path starting with `/`, such as /openai",
                    self.base_path
                ),
            );
            return None;
        }
        Some(base_path)
    }

    fn check_numbers(&self, c: &mut Checker) {
        if self.workers == Some(0) {
            c.fail("workers", "must be at least 1");
        }
        if self.limits.max_body_bytes == 0 {
            c.fail("limits.max_body_bytes", "must be more than 0");
        }
        let t = &self.timeouts;
        for (key, ms) in [
            ("timeouts.connect_ms", t.connect_ms),
            ("timeouts.response_ms", t.response_ms),
            ("timeouts.client_body_ms", t.client_body_ms),
        ] {
            if ms == 0 {
                c.fail(key, "must be more than 0 ms");
            }
        }
        if t.client_head_ms < 1_000 {
            // actix times request heads on a clock it updates every 500 ms.
            c.fail(
                "timeouts.client_head_ms",
                format!(
                    "{} is under 1000: the HTTP server measures it in steps of 500 ms",
                    t.client_head_ms
                ),
            );
        }
        if self.failover.headroom_ttl_ms == 0 {
            c.fail("failover.headroom_ttl_ms", "must be more than 0 ms");
        }
        let factor = self.balancing.load_factor;
        if !(factor > 1.0 && factor <= 100.0) {
            c.fail(
                "balancing.load_factor",
                format!("{factor} is not above 1 (and at most 100): 1.25 lets a backend take a quarter more than its share"),
            );
        }
        if !(1..=10).contains(&self.failover.attempts) {
            c.fail(
                "failover.attempts",
                format!("{} is not between 1 and 10", self.failover.attempts),
            );
        }
    }

    /// Pages the gateway serves itself must not hide routes, nor each other.
    fn check_pages(&self, c: &mut Checker, base_path: &str) {
        let mut taken = vec![
            base_path.to_string(),
            "/openapi".into(),
            "/healthz".into(),
            "/readyz".into(),
        ];
        let pages = [
            ("docs.path", self.docs.enabled, &self.docs.path, "/docs"),
            (
                "metrics.path",
                self.metrics.enabled,
                &self.metrics.path,
                "/metrics",
            ),
            (
                "status.path",
                self.status.enabled,
                &self.status.path,
                "/status",
            ),
        ];
        for (key, enabled, path, example) in pages {
            if enabled && let Some(path) = c.ok(key, check_page_path(path, example, &taken)) {
                taken.push(path);
            }
        }
    }

    fn checked_backends(
        &self,
        c: &mut Checker,
        env: &HashMap<String, String>,
        versions: &[&str],
    ) -> Vec<Backend> {
        if self.backends.is_empty() {
            c.fail("backends", "at least one backend is needed");
        }
        if self.backends.len() > MAX_BACKENDS {
            c.fail(
                "backends",
                format!(
                    "{} backends; at most {MAX_BACKENDS} are taken",
                    self.backends.len()
                ),
            );
        }
        let mut names = HashSet::new();
        let mut backends = Vec::new();
        let mut sources = Sources::default();
        for (i, b) in self.backends.iter().enumerate() {
            let at = |field: &str| format!("backends[{i}].{field}");
            if b.name.trim().is_empty() || !names.insert(b.name.clone()) {
                c.fail(
                    at("name"),
                    format!("`{}` must be non-empty and unique", b.name),
                );
            }
            let name_header = c.ok(
                at("name"),
                HeaderValue::from_str(&b.name)
                    .map_err(|_| format!("`{}` holds characters a header cannot carry", b.name)),
            );
            let base_url = c.ok(at("endpoint"), backend_base_url(&b.endpoint));
            let host = base_url.as_deref().and_then(|url| {
                c.ok(
                    at("endpoint"),
                    host_header(url).ok_or_else(|| format!("`{}` has no usable host", b.endpoint)),
                )
            });
            let source = identity::backend_source(
                c,
                &at,
                b,
                env,
                Duration::from_millis(self.timeouts.connect_ms),
                &mut sources,
            );
            let api_key = match b.auth {
                BackendAuth::ApiKey => {
                    let key = secrets::read(
                        env,
                        b.api_key_env.as_deref(),
                        b.api_key_file.as_deref(),
                        &mut c.files,
                    );
                    match c.ok(at("api_key_env"), key) {
                        Some(Some(key)) => c.ok(at("api_key_env"), header_secret(&key)),
                        Some(None) => {
                            c.fail(
                                at("api_key_env"),
                                "must name the variable holding its api-key, or `api_key_file` the file (or set `auth = \"entra\"`)",
                            );
                            None
                        }
                        None => None,
                    }
                }
                BackendAuth::Entra => None,
            };
            let credential = match source {
                Some(Some(source)) => Some(BackendCredential::Entra(source)),
                Some(None) => api_key.map(BackendCredential::ApiKey),
                None => None,
            };
            for v in &b.api_versions {
                if !versions.contains(&v.as_str()) {
                    c.fail(
                        at("api_versions"),
                        format!("`{v}` is not compiled in; known: {}", versions.join(", ")),
                    );
                }
            }
            if !(1..=1000).contains(&b.weight) {
                c.fail(
                    at("weight"),
                    format!("{} is not between 1 and 1000", b.weight),
                );
            }
            let served: Vec<&str> = if b.api_versions.is_empty() {
                versions.to_vec()
            } else {
                b.api_versions.iter().map(String::as_str).collect()
            };
            let compat = compat::checked(c, &at("compat"), &b.compat, &served);
            let (Some(name_header), Some(base_url), Some(host), Some(credential)) =
                (name_header, base_url, host, credential)
            else {
                continue;
            };
            backends.push(Backend {
                name: b.name.clone(),
                region: b.region.clone(),
                base_url,
                host,
                name_header,
                credential,
                deployment_map: b
                    .deployment_map
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                deployments: (!b.deployments.is_empty())
                    .then(|| b.deployments.iter().cloned().collect()),
                api_versions: (!b.api_versions.is_empty())
                    .then(|| b.api_versions.iter().cloned().collect()),
                stored_objects: b.stored_objects,
                priority: b.priority,
                weight: b.weight,
                compat,
            });
        }
        backends
    }

    fn checked_subscriptions(
        &self,
        c: &mut Checker,
        env: &HashMap<String, String>,
    ) -> Vec<Subscription> {
        if self.subscriptions.is_empty() {
            c.fail(
                "subscriptions",
                "at least one subscription is needed: every call must carry a key",
            );
        }
        let mut subscriptions = Vec::new();
        let mut names = HashSet::new();
        let mapped: HashSet<&str> = self
            .auth
            .entra
            .iter()
            .flat_map(|e| e.applications.values().chain(e.roles.values()))
            .map(String::as_str)
            .collect();
        for (i, s) in self.subscriptions.iter().enumerate() {
            let at = |field: &str| format!("subscriptions[{i}].{field}");
            if s.name.trim().is_empty() || !names.insert(s.name.clone()) {
                c.fail(
                    at("name"),
                    format!("`{}` must be non-empty and unique", s.name),
                );
            }
            let given = secrets::read(
                env,
                s.key_env.as_deref(),
                s.key_file.as_deref(),
                &mut c.files,
            );
            let given = c.ok(at("key_env"), given);
            let key_sha256 = match (given, &s.key_sha256) {
                (Some(Some(_)), Some(_)) => {
                    c.fail(
                        at("key_sha256"),
                        "give one of `key_env`, `key_file` and `key_sha256`",
                    );
                    None
                }
                // A file may hold the key's SHA-256 rather than the key.
                (Some(Some(key)), None) if s.key_file.is_some() => {
                    Some(Some(parse_hex_digest(&key).unwrap_or_else(|| sha256(&key))))
                }
                (Some(Some(key)), None) => Some(Some(sha256(&key))),
                (Some(None), Some(hex)) => c
                    .ok(
                        at("key_sha256"),
                        parse_hex_digest(hex)
                            .ok_or_else(|| "must be 64 hex digits (a SHA-256)".into()),
                    )
                    .map(Some),
                // A subscription only callers with tokens map to needs no key.
                (Some(None), None) if mapped.contains(s.name.as_str()) => Some(None),
                (Some(None), None) => {
                    c.fail(
                        at("key_env"),
                        "give one of `key_env`, `key_file` and `key_sha256` (or map Entra ID callers to it in `auth.entra`)",
                    );
                    None
                }
                (None, _) => None,
            };
            let mut limits = SubscriptionLimits {
                own: checked_limits(c, &at("limits"), &s.limits),
                deployments: HashMap::new(),
            };
            for (deployment, given) in &s.deployment_limits {
                let checked =
                    checked_limits(c, &at(&format!("deployment_limits.{deployment}")), given);
                limits.deployments.insert(deployment.clone(), checked);
            }
            if let Some(key_sha256) = key_sha256 {
                subscriptions.push(Subscription {
                    name: s.name.clone(),
                    key_sha256,
                    limits,
                    objects_admin: s.stored_objects_admin,
                });
            }
        }
        subscriptions
    }
}

/// A subscription's limits: each one set must allow something (leave it out for no limit).
fn checked_limits(c: &mut Checker, at: &str, given: &LimitsConfig) -> Limits {
    for (key, value) in [
        ("tokens_per_minute", given.tokens_per_minute),
        ("requests_per_minute", given.requests_per_minute),
        ("tokens_per_day", given.tokens_per_day),
    ] {
        if value == Some(0) {
            c.fail(
                format!("{at}.{key}"),
                "must be more than 0; leave it out for no limit",
            );
        }
    }
    Limits {
        tokens_per_minute: given.tokens_per_minute,
        requests_per_minute: given.requests_per_minute,
        tokens_per_day: given.tokens_per_day,
    }
}

/// The secret an environment variable holds, as a header value marked sensitive (so it never
/// shows in debug output).
/// `key=value,…` as `OTEL_EXPORTER_OTLP_HEADERS` writes headers (values percent-encoded);
/// the error names the entry's position, never its value.
fn otel_headers(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut headers = Vec::new();
    for (i, entry) in text.split(',').enumerate() {
        if entry.trim().is_empty() {
            continue;
        }
        let (key, value) = entry
            .split_once('=')
            .ok_or_else(|| format!("entry {} is not key=value", i + 1))?;
        let value = percent_decode(value.trim())
            .ok_or_else(|| format!("entry {} has a bad %-escape", i + 1))?;
        let key = key.trim();
        let valid = actix_web::http::header::HeaderName::from_bytes(key.as_bytes()).is_ok()
            && HeaderValue::from_str(&value).is_ok();
        if !valid {
            return Err(format!("entry {} is not a valid header", i + 1));
        }
        headers.push((key.to_string(), value));
    }
    Ok(headers)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn header_secret(value: &str) -> Result<HeaderValue, String> {
    let mut header = HeaderValue::from_str(value)
        .map_err(|_| "holds characters a header cannot carry".to_string())?;
    header.set_sensitive(true);
    Ok(header)
}

/// `path` for a page of the gateway's own, trimmed, unless it is not a path or overlaps one of
/// `taken`.
fn check_page_path(path: &str, example: &str, taken: &[String]) -> Result<String, String> {
    let trimmed = path.trim_end_matches('/');
    if !path.starts_with('/') || trimmed.is_empty() || path.contains(['?', '#']) {
        return Err(format!(
            "`{path}` must be a path starting with `/`, such as {example}"
        ));
    }
    let under =
        |path: &str, prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    match taken
        .iter()
        .find(|t| under(trimmed, t) || under(t, trimmed))
    {
        Some(other) => Err(format!(
            "`{trimmed}` overlaps `{other}`, which the gateway already serves; pick another"
        )),
        None => Ok(trimmed.to_string()),
    }
}

fn parse_hex_digest(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The `Host` header for a base URL: the authority, without a default port.
fn host_header(base_url: &str) -> Option<HeaderValue> {
    let (scheme, rest) = base_url.split_once("://")?;
    let authority = rest.split('/').next()?;
    let authority = match (scheme, authority.rsplit_once(':')) {
        ("https", Some((host, "443"))) | ("http", Some((host, "80"))) => host,
        _ => authority,
    };
    HeaderValue::from_str(authority).ok()
}

/// `https://host` → `https://host/openai`; an endpoint with a path keeps it.
fn backend_base_url(endpoint: &str) -> Result<String, String> {
    let endpoint = endpoint.trim();
    let rest = endpoint
        .strip_prefix("https://")
        .or_else(|| endpoint.strip_prefix("http://"))
        .ok_or_else(|| {
            format!("`{endpoint}` must start with https:// (or http:// for a local test backend)")
        })?;
    if endpoint.contains(['?', '#']) {
        return Err(format!("`{endpoint}` must not have a query or fragment"));
    }
    let (host, path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
    if host.is_empty() || host.contains(['@', ' ']) {
        return Err(format!("`{endpoint}` has no usable host"));
    }
    let scheme = &endpoint[..endpoint.len() - rest.len()];
    let path = path.trim_end_matches('/');
    Ok(if path.is_empty() {
        format!("{scheme}{host}/openai")
    } else {
        format!("{scheme}{host}/{path}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_headers() {
        assert_eq!(
            host_header("https://x.openai.azure.com/openai").unwrap(),
            "x.openai.azure.com"
        );
        assert_eq!(
            host_header("https://x.example:443/openai").unwrap(),
            "x.example"
        );
        assert_eq!(
            host_header("http://127.0.0.1:8081/openai").unwrap(),
            "127.0.0.1:8081"
        );
    }

    #[test]
    fn endpoint_paths() {
        assert_eq!(
            backend_base_url("https://x.openai.azure.com").unwrap(),
            "https://x.openai.azure.com/openai"
        );
        assert_eq!(
            backend_base_url("http://127.0.0.1:5/custom/").unwrap(),
            "http://127.0.0.1:5/custom"
        );
        assert!(backend_base_url("x.openai.azure.com").is_err());
    }
}
