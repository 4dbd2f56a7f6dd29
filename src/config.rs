//! The gateway's configuration: a TOML file, every value of which an environment variable can
//! override, checked completely at start-up.
//!
//! Overrides are named `AOAI_GATEWAY__` followed by the key path in upper case with `__` between
//! parts: `AOAI_GATEWAY__LISTEN=0.0.0.0:8080`, `AOAI_GATEWAY__LIMITS__MAX_BODY_BYTES=1048576`.
//! Inside `backends` and `subscriptions` the next part is the entry's `name` (or its index):
//! `AOAI_GATEWAY__BACKENDS__EASTUS__ENDPOINT=https://…`; a name not in the file adds an entry.
//! Values are read as TOML (`8080`, `true`, `["a", "b"]`) and otherwise taken as strings.
//!
//! Secrets never sit in the file: a backend names the environment variable holding its key, and
//! a subscription either names one or stores the key's SHA-256.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use actix_web::http::header::HeaderValue;
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub const ENV_PREFIX: &str = "AOAI_GATEWAY__";

/// A configuration that cannot be used: which file, which key, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file, self.reason)
        } else {
            write!(f, "{}: {}: {}", self.file, self.key, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

// ----- the file, as written -----

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Where the routes live; `/openai` is what Azure OpenAI clients call.
    #[serde(default = "default_base_path")]
    pub base_path: String,
    /// Worker threads; defaults to the number of CPUs.
    pub workers: Option<usize>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub validation: ValidationConfig,
    #[serde(default)]
    pub timeouts: Timeouts,
    #[serde(default)]
    pub failover: FailoverConfig,
    #[serde(default)]
    pub shutdown: ShutdownConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub docs: DocsConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub backends: Vec<BackendConfig>,
    #[serde(default)]
    pub subscriptions: Vec<SubscriptionConfig>,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

fn default_base_path() -> String {
    "/openai".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest request body accepted; audio uploads to Azure may be 25 MB.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
}

fn default_max_body() -> usize {
    32 * 1024 * 1024
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: default_max_body(),
        }
    }
}

/// How requests are held to the spec beyond what it requires.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationConfig {
    /// `"accept"` (the default): fields a schema does not list are accepted and forwarded,
    /// because Azure adds fields to the service before it republishes the spec. `"reject"`:
    /// they get 400, except where the schema allows other fields (`additionalProperties`).
    #[serde(default)]
    pub unknown_fields: UnknownFields,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownFields {
    #[default]
    Accept,
    Reject,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    /// Connecting to a backend, TLS included.
    #[serde(default = "default_connect_ms")]
    pub connect_ms: u64,
    /// From sending the request to the backend's response headers. A streamed body may take
    /// longer; it is not cut off.
    #[serde(default = "default_response_ms")]
    pub response_ms: u64,
    /// For a client to send a request's head (line and headers); then 408. At least 1000: the
    /// HTTP server measures it in steps of 500 ms.
    #[serde(default = "default_client_head_ms")]
    pub client_head_ms: u64,
    /// For a client to send a request's whole body, from the end of its head; a body that
    /// stalls or trickles gets 408 and its connection is closed. Together with `client_head_ms`
    /// this bounds how long a request can hold a connection before anything is sent upstream.
    #[serde(default = "default_client_body_ms")]
    pub client_body_ms: u64,
}

fn default_client_head_ms() -> u64 {
    10_000
}

fn default_client_body_ms() -> u64 {
    60_000
}

fn default_connect_ms() -> u64 {
    5_000
}

fn default_response_ms() -> u64 {
    300_000
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect_ms: default_connect_ms(),
            response_ms: default_response_ms(),
            client_head_ms: default_client_head_ms(),
            client_body_ms: default_client_body_ms(),
        }
    }
}

/// `/metrics`, in Prometheus' text format.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_metrics_path")]
    pub path: String,
    /// Ask for a subscription key to read the metrics, which name subscriptions and backends.
    #[serde(default)]
    pub require_key: bool,
}

fn default_metrics_path() -> String {
    "/metrics".into()
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            path: default_metrics_path(),
            require_key: false,
        }
    }
}

/// What happens when a backend is over its quota or cannot be reached.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailoverConfig {
    /// Backends tried for one call, the first included; 1 turns failover off. A call moves on
    /// when a backend answers 429, 500, 502, 503 or 504 or cannot be connected to, and only
    /// while another backend serves the deployment.
    #[serde(default = "default_attempts")]
    pub attempts: usize,
    /// How long a backend that could not be connected to is left out of the rotation. One that
    /// answered with `retry-after` is left out for that long, at most `max_rest_ms`.
    #[serde(default = "default_unreachable_rest_ms")]
    pub unreachable_rest_ms: u64,
    #[serde(default = "default_max_rest_ms")]
    pub max_rest_ms: u64,
    /// Failures of one deployment on a backend (429 or 5xx without `retry-after`, no answer in
    /// time), or connection
    /// failures of the whole backend, within `circuit_window_ms` that open its circuit: it then
    /// rests for `circuit_cooldown_ms`, after which one trial call decides whether it rejoins.
    /// 0 turns the circuit breaker off.
    #[serde(default = "default_circuit_failures")]
    pub circuit_failures: u32,
    #[serde(default = "default_circuit_window_ms")]
    pub circuit_window_ms: u64,
    #[serde(default = "default_circuit_cooldown_ms")]
    pub circuit_cooldown_ms: u64,
}

fn default_circuit_failures() -> u32 {
    5
}

fn default_circuit_window_ms() -> u64 {
    10_000
}

fn default_circuit_cooldown_ms() -> u64 {
    30_000
}

fn default_attempts() -> usize {
    3
}

fn default_unreachable_rest_ms() -> u64 {
    5_000
}

fn default_max_rest_ms() -> u64 {
    60_000
}

impl Default for FailoverConfig {
    fn default() -> Self {
        FailoverConfig {
            attempts: default_attempts(),
            unreachable_rest_ms: default_unreachable_rest_ms(),
            max_rest_ms: default_max_rest_ms(),
            circuit_failures: default_circuit_failures(),
            circuit_window_ms: default_circuit_window_ms(),
            circuit_cooldown_ms: default_circuit_cooldown_ms(),
        }
    }
}

/// What happens on SIGTERM (or Ctrl-C): `/readyz` answers 503 at once; for `drain_s` seconds the
/// gateway still accepts and serves calls, closing each connection after its answer, so that a
/// load balancer probing `/readyz` sees it leave; then it stops accepting, and calls and streams
/// in flight have `grace_s` seconds to finish before the process exits 0.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    #[serde(default)]
    pub drain_s: u64,
    #[serde(default = "default_grace_s")]
    pub grace_s: u64,
}

fn default_grace_s() -> u64 {
    30
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            drain_s: 0,
            grace_s: default_grace_s(),
        }
    }
}

/// Where a client may put its subscription key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The `Ocp-Apim-Subscription-Key` header, as API Management uses.
    #[serde(default = "yes")]
    pub ocp_apim_subscription_key_header: bool,
    /// The `api-key` header, which the Azure OpenAI SDKs send.
    #[serde(default = "yes")]
    pub api_key_header: bool,
    /// The `subscription-key` query parameter.
    #[serde(default = "yes")]
    pub subscription_key_query: bool,
}

fn yes() -> bool {
    true
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            ocp_apim_subscription_key_header: true,
            api_key_header: true,
            subscription_key_query: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocsConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_docs_path")]
    pub path: String,
    /// Ask for a subscription key to read the docs and the served specs.
    #[serde(default)]
    pub require_key: bool,
}

fn default_docs_path() -> String {
    "/docs".into()
}

impl Default for DocsConfig {
    fn default() -> Self {
        DocsConfig {
            enabled: true,
            path: default_docs_path(),
            require_key: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    pub name: String,
    /// The Azure OpenAI resource endpoint, e.g. `https://contoso-eastus.openai.azure.com`.
    /// Without a path, `/openai` is appended; with one, it is used as given.
    pub endpoint: String,
    /// A label for logs and docs; Azure reports the real one in `x-ms-region`.
    #[serde(default)]
    pub region: String,
    /// The environment variable holding this resource's `api-key`.
    pub api_key_env: String,
    /// Client deployment names this backend serves; empty means every one.
    #[serde(default)]
    pub deployments: Vec<String>,
    /// Client deployment name → this resource's deployment name. A mapped name is served.
    #[serde(default)]
    pub deployment_map: BTreeMap<String, String>,
    /// api-versions this backend serves; empty means every compiled one.
    #[serde(default)]
    pub api_versions: Vec<String>,
    /// Whether operations on stored objects (assistants, threads, vector stores…) may go here.
    /// They are not rotated: such objects live in one resource, so they go to the first backend
    /// in this list that allows them.
    #[serde(default = "yes")]
    pub resources: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionConfig {
    pub name: String,
    /// The environment variable holding the key.
    pub key_env: Option<String>,
    /// Or the key's SHA-256, as 64 hex digits (`printf %s KEY | sha256sum`).
    pub key_sha256: Option<String>,
}

// ----- reading -----

/// Reads a config file and applies the environment's overrides.
pub fn load(path: &str, env: &HashMap<String, String>) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.into(),
        key: String::new(),
        reason: format!("cannot read: {e}"),
    })?;
    parse(&text, path, env)
}

/// Parses config text; `file` names it in errors.
pub fn parse(
    text: &str,
    file: &str,
    env: &HashMap<String, String>,
) -> Result<FileConfig, ConfigError> {
    let error = |key: String, reason: String| ConfigError {
        file: file.into(),
        key,
        reason,
    };
    let mut table: toml::Table = toml::from_str(text).map_err(|e| {
        let reason = e.message().to_string();
        match e.span() {
            Some(span) => {
                let line = text[..span.start.min(text.len())].lines().count().max(1);
                error(format!("line {line}"), reason)
            }
            None => error(String::new(), reason),
        }
    })?;
    let mut overrides: Vec<(&String, &String)> = env
        .iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    overrides.sort();
    for (name, value) in overrides {
        apply_override(&mut table, name, value).map_err(|reason| error(name.clone(), reason))?;
    }
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let key = e.path().to_string();
        error(
            if key == "." { String::new() } else { key },
            e.into_inner().message().to_string(),
        )
    })
}

fn apply_override(table: &mut toml::Table, name: &str, value: &str) -> Result<(), String> {
    let path: Vec<String> = name[ENV_PREFIX.len()..]
        .split("__")
        .map(|s| s.to_ascii_lowercase())
        .collect();
    if path.iter().any(String::is_empty) {
        return Err("empty key part in the variable name".into());
    }
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    let mut current = table;
    let mut i = 0;
    while i + 1 < path.len() {
        let key = &path[i];
        if key == "backends" || key == "subscriptions" {
            let list = current
                .entry(key.clone())
                .or_insert_with(|| toml::Value::Array(Vec::new()));
            let toml::Value::Array(items) = list else {
                return Err(format!("`{key}` is not a list"));
            };
            let selector = &path[i + 1];
            let index = match selector.parse::<usize>() {
                Ok(n) if n < items.len() => n,
                Ok(n) => return Err(format!("`{key}` has no entry {n}")),
                Err(_) => match items.iter().position(|t| {
                    t.get("name")
                        .and_then(toml::Value::as_str)
                        .is_some_and(|n| n.eq_ignore_ascii_case(selector))
                }) {
                    Some(n) => n,
                    None => {
                        let mut entry = toml::Table::new();
                        entry.insert("name".into(), toml::Value::String(selector.clone()));
                        items.push(toml::Value::Table(entry));
                        items.len() - 1
                    }
                },
            };
            let toml::Value::Table(entry) = &mut items[index] else {
                return Err(format!("`{key}` entry {index} is not a table"));
            };
            current = entry;
            i += 2;
            continue;
        }
        let next = current
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(next) = next else {
            return Err(format!("`{key}` is not a table"));
        };
        current = next;
        i += 1;
    }
    match path.get(i) {
        Some(last) => {
            current.insert(last.clone(), parsed);
            Ok(())
        }
        None => Err("the variable names a list entry, not a key in it".into()),
    }
}

// ----- checked, ready to serve -----

/// A backend as the balancer and the forwarder use it.
pub struct Backend {
    pub name: String,
    pub region: String,
    /// Scheme, host, port and base path, e.g. `https://contoso.openai.azure.com/openai`.
    pub base_url: String,
    /// `Host` for requests to it, made once rather than per request.
    pub host: HeaderValue,
    /// `name` as the value of the header that tells clients which backend answered.
    pub name_header: HeaderValue,
    /// Marked sensitive, so it never shows in debug output.
    pub api_key: HeaderValue,
    pub deployment_map: HashMap<String, String>,
    /// `None` serves every deployment.
    pub deployments: Option<HashSet<String>>,
    /// `None` serves every api-version.
    pub api_versions: Option<HashSet<String>>,
    pub resources: bool,
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backend")
            .field("name", &self.name)
            .field("region", &self.region)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Backend {
    pub fn serves_version(&self, version: &str) -> bool {
        self.api_versions
            .as_ref()
            .is_none_or(|v| v.contains(version))
    }

    pub fn serves_deployment(&self, deployment: &str) -> bool {
        self.deployment_map.contains_key(deployment)
            || self
                .deployments
                .as_ref()
                .is_none_or(|d| d.contains(deployment))
    }

    /// This resource's name for a client's deployment.
    pub fn deployment_name<'a>(&'a self, client_name: &'a str) -> &'a str {
        self.deployment_map
            .get(client_name)
            .map_or(client_name, String::as_str)
    }
}

#[derive(Debug)]
pub struct Subscription {
    pub name: String,
    pub key_sha256: [u8; 32],
}

/// Everything the gateway needs, checked.
#[derive(Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    pub base_path: String,
    pub workers: Option<usize>,
    pub max_body_bytes: usize,
    pub validation: aoai_runtime::schema::Policy,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub client_head_timeout: Duration,
    pub client_body_timeout: Duration,
    pub failover: Failover,
    /// How long the gateway keeps accepting once told to stop, and how long calls in flight
    /// may then take to finish.
    pub shutdown_drain: Duration,
    pub shutdown_grace: Duration,
    pub auth: AuthConfig,
    pub docs: DocsConfig,
    pub metrics: MetricsConfig,
    pub backends: Vec<Backend>,
    pub subscriptions: Vec<Subscription>,
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

/// [`FailoverConfig`], checked.
#[derive(Debug, Clone, Copy)]
pub struct Failover {
    pub attempts: usize,
    pub unreachable_rest: Duration,
    pub max_rest: Duration,
    pub circuit_failures: u32,
    pub circuit_window: Duration,
    pub circuit_cooldown: Duration,
}

pub fn sha256(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
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
struct Checker<'f> {
    file: &'f str,
    errors: Vec<ConfigError>,
}

impl Checker<'_> {
    fn fail(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.into(),
            key: key.into(),
            reason: reason.into(),
        });
    }

    /// The value, or `None` with the mistake noted under `key`.
    fn ok<T>(&mut self, key: impl Into<String>, result: Result<T, String>) -> Option<T> {
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
        let a = &self.auth;
        if !(a.ocp_apim_subscription_key_header || a.api_key_header || a.subscription_key_query) {
            c.fail(
                "auth",
                "at least one place for the subscription key must be allowed",
            );
        }
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
            },
            shutdown_drain: Duration::from_secs(self.shutdown.drain_s),
            shutdown_grace: Duration::from_secs(self.shutdown.grace_s),
            auth: self.auth.clone(),
            docs: DocsConfig {
                path: self.docs.path.trim_end_matches('/').to_string(),
                ..self.docs.clone()
            },
            metrics: MetricsConfig {
                path: self.metrics.path.trim_end_matches('/').to_string(),
                ..self.metrics.clone()
            },
            backends,
            subscriptions,
        })
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
        let mut names = HashSet::new();
        let mut backends = Vec::new();
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
            let api_key = c.ok(at("api_key_env"), header_secret(env, &b.api_key_env));
            for v in &b.api_versions {
                if !versions.contains(&v.as_str()) {
                    c.fail(
                        at("api_versions"),
                        format!("`{v}` is not compiled in; known: {}", versions.join(", ")),
                    );
                }
            }
            let (Some(name_header), Some(base_url), Some(host), Some(api_key)) =
                (name_header, base_url, host, api_key)
            else {
                continue;
            };
            backends.push(Backend {
                name: b.name.clone(),
                region: b.region.clone(),
                base_url,
                host,
                name_header,
                api_key,
                deployment_map: b
                    .deployment_map
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                deployments: (!b.deployments.is_empty())
                    .then(|| b.deployments.iter().cloned().collect()),
                api_versions: (!b.api_versions.is_empty())
                    .then(|| b.api_versions.iter().cloned().collect()),
                resources: b.resources,
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
        for (i, s) in self.subscriptions.iter().enumerate() {
            let at = |field: &str| format!("subscriptions[{i}].{field}");
            if s.name.trim().is_empty() || !names.insert(s.name.clone()) {
                c.fail(
                    at("name"),
                    format!("`{}` must be non-empty and unique", s.name),
                );
            }
            let key_sha256 = match (&s.key_env, &s.key_sha256) {
                (Some(var), None) => c.ok(
                    at("key_env"),
                    env.get(var)
                        .filter(|k| !k.is_empty())
                        .map(|k| sha256(k))
                        .ok_or_else(|| format!("environment variable `{var}` is not set")),
                ),
                (None, Some(hex)) => c.ok(
                    at("key_sha256"),
                    parse_hex_digest(hex).ok_or_else(|| "must be 64 hex digits (a SHA-256)".into()),
                ),
                _ => {
                    c.fail(
                        at("key_env"),
                        "give exactly one of `key_env` and `key_sha256`",
                    );
                    None
                }
            };
            if let Some(key_sha256) = key_sha256 {
                subscriptions.push(Subscription {
                    name: s.name.clone(),
                    key_sha256,
                });
            }
        }
        subscriptions
    }
}

/// The secret an environment variable holds, as a header value marked sensitive (so it never
/// shows in debug output).
fn header_secret(env: &HashMap<String, String>, var: &str) -> Result<HeaderValue, String> {
    let value = env
        .get(var)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| format!("environment variable `{var}` is not set"))?;
    let mut header = HeaderValue::from_str(value)
        .map_err(|_| format!("`{var}` holds characters a header cannot carry"))?;
    header.set_sensitive(true);
    Ok(header)
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

    const CONFIG: &str = r#"
listen = "127.0.0.1:0"
[[backends]]
name = "eastus"
endpoint = "https://contoso-eastus.openai.azure.com/"
region = "East US"
api_key_env = "EASTUS_KEY"
deployment_map = { "gpt-4o" = "gpt-4o-2024-08-06" }

[[subscriptions]]
name = "team-a"
key_env = "TEAM_A_KEY"
"#;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn keys() -> HashMap<String, String> {
        env(&[
            ("EASTUS_KEY", "backend-secret"),
            ("TEAM_A_KEY", "client-secret"),
        ])
    }

    /// The (first) error checking `text` gives, with every key set.
    fn check_error(text: &str) -> ConfigError {
        parse(text, "gw.toml", &HashMap::new())
            .unwrap()
            .check("gw.toml", &keys(), &[])
            .unwrap_err()
            .0
            .remove(0)
    }

    #[test]
    fn reads_and_checks_a_config() {
        let c = parse(CONFIG, "gw.toml", &HashMap::new()).unwrap();
        let s = c.check("gw.toml", &keys(), &["2024-10-21"]).unwrap();
        assert_eq!(s.base_path, "/openai");
        assert_eq!(
            s.backends[0].base_url,
            "https://contoso-eastus.openai.azure.com/openai"
        );
        assert_eq!(s.backends[0].deployment_name("gpt-4o"), "gpt-4o-2024-08-06");
        assert!(s.backends[0].api_key.is_sensitive());
        assert_eq!(s.subscriptions[0].key_sha256, sha256("client-secret"));
        assert!(!format!("{:?}", s.backends[0]).contains("backend-secret"));
    }

    #[test]
    fn environment_overrides_any_value() {
        let overrides = env(&[
            ("AOAI_GATEWAY__LISTEN", "0.0.0.0:9000"),
            ("AOAI_GATEWAY__LIMITS__MAX_BODY_BYTES", "1024"),
            ("AOAI_GATEWAY__BACKENDS__EASTUS__REGION", "eastus2"),
            (
                "AOAI_GATEWAY__BACKENDS__WESTUS__ENDPOINT",
                "http://127.0.0.1:9/",
            ),
            ("AOAI_GATEWAY__BACKENDS__WESTUS__API_KEY_ENV", "EASTUS_KEY"),
            (
                "AOAI_GATEWAY__BACKENDS__WESTUS__DEPLOYMENTS",
                "[\"a\", \"b\"]",
            ),
        ]);
        let c = parse(CONFIG, "gw.toml", &overrides).unwrap();
        assert_eq!(c.listen, "0.0.0.0:9000");
        assert_eq!(c.limits.max_body_bytes, 1024);
        assert_eq!(c.backends[0].region, "eastus2");
        assert_eq!(c.backends[1].name, "westus");
        assert_eq!(c.backends[1].deployments, ["a", "b"]);
    }

    #[test]
    fn errors_name_file_key_and_reason() {
        let err = parse("listn = 1", "gw.toml", &HashMap::new()).unwrap_err();
        assert_eq!(err.file, "gw.toml");
        assert!(err.reason.contains("unknown field `listn`"), "{err}");

        let err = parse(
            &CONFIG.replace("region = \"East US\"", "region = 5"),
            "gw.toml",
            &HashMap::new(),
        )
        .unwrap_err();
        assert_eq!(err.key, "backends[0].region");

        let c = parse(CONFIG, "gw.toml", &HashMap::new()).unwrap();
        let err = c
            .check("gw.toml", &env(&[("TEAM_A_KEY", "x")]), &[])
            .unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert_eq!(
            err.to_string(),
            "gw.toml: backends[0].api_key_env: environment variable `EASTUS_KEY` is not set"
        );

        let bad = CONFIG.replace("https://contoso-eastus.openai.azure.com/", "ftp://x");
        let err = check_error(&bad);
        assert_eq!(err.key, "backends[0].endpoint");

        let bad = CONFIG.replace("key_env = \"TEAM_A_KEY\"", "key_sha256 = \"abc\"");
        let err = check_error(&bad);
        assert_eq!(
            err.to_string(),
            "gw.toml: subscriptions[0].key_sha256: must be 64 hex digits (a SHA-256)"
        );

        let bad = format!("{CONFIG}\n[docs]\npath = \"/openai/docs\"\n");
        let err = check_error(&bad);
        assert_eq!(err.key, "docs.path");

        let bad = format!("{CONFIG}\n[metrics]\npath = \"/docs/metrics\"\n");
        let err = check_error(&bad);
        assert_eq!(
            err.to_string(),
            "gw.toml: metrics.path: `/docs/metrics` overlaps `/docs`, which the gateway already serves; pick another"
        );

        let bad = format!("{CONFIG}\n[failover]\nattempts = 0\n");
        let err = check_error(&bad);
        assert_eq!(
            err.to_string(),
            "gw.toml: failover.attempts: 0 is not between 1 and 10"
        );

        let err = parse("listen = [", "gw.toml", &HashMap::new()).unwrap_err();
        assert_eq!(err.key, "line 1");
    }

    #[test]
    fn every_mistake_is_reported_at_once() {
        let bad = CONFIG
            .replace(
                "listen = \"127.0.0.1:0\"",
                "listen = \"nowhere\"\nworkers = 0",
            )
            .replace("https://contoso-eastus.openai.azure.com/", "ftp://x")
            .replace("key_env = \"TEAM_A_KEY\"", "key_sha256 = \"abc\"");
        let bad = format!("{bad}\n[failover]\nattempts = 0\n");
        let errors = parse(&bad, "gw.toml", &HashMap::new())
            .unwrap()
            .check("gw.toml", &env(&[]), &[])
            .unwrap_err();
        let keys: Vec<&str> = errors.0.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "listen",
                "workers",
                "failover.attempts",
                "backends[0].endpoint",
                "backends[0].api_key_env",
                "subscriptions[0].key_sha256"
            ]
        );
        let text = errors.to_string();
        assert_eq!(text.lines().count(), 6);
        assert!(text.lines().all(|l| l.starts_with("gw.toml: ")), "{text}");
    }

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

#[cfg(test)]
mod example {
    use super::*;

    /// The documented example must stay valid.
    #[test]
    fn the_example_config_checks() {
        let text = include_str!("../gateway.example.toml");
        let env: HashMap<String, String> = [
            ("AOAI_EASTUS_KEY", "a"),
            ("AOAI_SWEDEN_KEY", "b"),
            ("TEAM_SEARCH_KEY", "c"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let config = parse(text, "gateway.example.toml", &env).unwrap();
        let versions: Vec<&str> = crate::generated::API_VERSIONS
            .iter()
            .map(|v| v.version)
            .collect();
        let settings = config
            .check("gateway.example.toml", &env, &versions)
            .unwrap();
        assert_eq!(settings.backends.len(), 2);
        assert_eq!(settings.subscriptions[1].key_sha256, sha256("test"));
        assert!(!settings.backends[1].serves_deployment("other"));
        assert!(settings.backends[1].serves_deployment("embeddings"));
    }
}
