//! The configuration file as written: one type per section, each key with its default.

use std::collections::BTreeMap;

use serde::Deserialize;

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
    pub balancing: BalancingConfig,
    #[serde(default)]
    pub shutdown: ShutdownConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub docs: DocsConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub status: StatusConfig,
    #[serde(default)]
    pub reload: ReloadConfig,
    #[serde(default)]
    pub otel: OtelConfig,
    #[serde(default)]
    pub usage: UsageConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub state: StateConfig,
    #[serde(default)]
    pub stored_objects: StoredObjectsConfig,
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

/// `/status` (a page for people) and `/status.json`: each backend, subscription and the
/// gateway's own health at a glance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The page's path; the JSON is at the same path with `.json` appended.
    #[serde(default = "default_status_path")]
    pub path: String,
    /// Ask for a subscription key to read it, as `/metrics` can.
    #[serde(default)]
    pub require_key: bool,
}

fn default_status_path() -> String {
    "/status".into()
}

impl Default for StatusConfig {
    fn default() -> Self {
        StatusConfig {
            enabled: true,
            path: default_status_path(),
            require_key: false,
        }
    }
}

/// When the configuration is read again while the gateway runs (SIGHUP always reloads it).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReloadConfig {
    /// Reload when the configuration file, or a secret file it names, changes (checked every
    /// second; a Kubernetes mount's swap of its files is a change).
    #[serde(default)]
    pub watch: bool,
}

/// OpenTelemetry traces, exported over OTLP/HTTP (protobuf). Without an endpoint (here or in
/// `OTEL_EXPORTER_OTLP_ENDPOINT`), nothing is traced.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtelConfig {
    /// The collector's OTLP/HTTP base URL, e.g. `http://localhost:4318` (`/v1/traces` is
    /// appended unless the path ends with it); default `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub endpoint: Option<String>,
    /// `service.name`; default `OTEL_SERVICE_NAME`, else `aoai-gateway`.
    pub service_name: Option<String>,
    /// The share of traces started here that are kept (a client's sampled `traceparent` is
    /// followed); default `OTEL_TRACES_SAMPLER_ARG`, else 1.0.
    pub sample_ratio: Option<f64>,
    /// The environment variable holding headers the collector needs (`key=value,…`, as
    /// `OTEL_EXPORTER_OTLP_HEADERS`, which is read when this is not set).
    pub headers_env: Option<String>,
}

/// How the gateway learns what calls spend.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageConfig {
    /// For a streaming call whose api-version can ask for usage (`stream_options`), ask for it
    /// when the client did not, and take the usage chunk out of what the client receives.
    #[serde(default = "yes")]
    pub stream_include_usage: bool,
    /// Completion tokens a call is assumed to spend, for limits and headroom, when its body sets
    /// no `max_tokens`, `max_completion_tokens` or `max_output_tokens`.
    #[serde(default = "default_completion_tokens")]
    pub default_completion_tokens: u64,
    /// Client deployment name → tokenizer (`o200k_base` or `cl100k_base`), where the name does
    /// not say the model family (see the README).
    #[serde(default)]
    pub encodings: BTreeMap<String, String>,
}

fn default_completion_tokens() -> u64 {
    512
}

impl Default for UsageConfig {
    fn default() -> Self {
        UsageConfig {
            stream_include_usage: true,
            default_completion_tokens: default_completion_tokens(),
            encodings: BTreeMap::new(),
        }
    }
}

/// Where the state many replicas share lives: rotations, rests and circuits, limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// `redis://[user:password@]host:port[/db]` (or `rediss://` for TLS); unset, each replica
    /// keeps its own state in memory. A secret when it holds a password: set it from the
    /// environment (`AOAI_GATEWAY__STATE__REDIS_URL`).
    pub redis_url: Option<String>,
    /// Every key and channel starts with this, so that gateways can share a Redis.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// A call waits this long for Redis, at most, before it goes on without it.
    #[serde(default = "default_state_timeout_ms")]
    pub timeout_ms: u64,
    /// While Redis cannot be reached: `"local"` (the default) carries on with each replica's own
    /// state; `"reject"` answers 503, for teams that prefer no over-spend.
    #[serde(default)]
    pub on_error: OnStateError,
    /// Without `redis_url`: a file for the directory of stored objects (an embedded database),
    /// so that follow-ups find their objects' backends after a restart. One replica only: the
    /// file is locked while the gateway runs. Unset (and no Redis), the directory is in memory.
    pub path: Option<String>,
}

fn default_key_prefix() -> String {
    "aoai-gateway".into()
}

fn default_state_timeout_ms() -> u64 {
    50
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            redis_url: None,
            key_prefix: default_key_prefix(),
            timeout_ms: default_state_timeout_ms(),
            on_error: OnStateError::Local,
            path: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnStateError {
    #[default]
    Local,
    Reject,
}

/// Who may use the objects Azure stores (responses, files, vector stores, assistants, threads…).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredObjectsConfig {
    #[serde(default)]
    pub isolation: Isolation,
}

/// Whose objects a subscription may use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// Its own: an object belongs to the subscription that created it; another gets 404, and
    /// lists show each only its own.
    #[default]
    Subscription,
    /// Every subscription may use every object, as the backends' shared keys allow.
    Shared,
}

/// Where the log goes, and in which shape.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `"text"`: a line of `key=value` per event; `"json"`: one JSON object per line.
    #[serde(default)]
    pub format: LogFormat,
    /// The least level written (`error`, `warn`, `info`, `debug`, `trace`), or a filter such as
    /// `info,aoai_gateway=debug`; `RUST_LOG` overrides it.
    #[serde(default = "default_log_level")]
    pub level: String,
}

fn default_log_level() -> String {
    "info".into()
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: default_log_level(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
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
    /// Pass over a backend whose latest `x-ratelimit-remaining-tokens` for the deployment is
    /// below the call's estimate (prompt plus completion allowance), rather than spend a 429;
    /// a reading older than `headroom_ttl_ms` no longer counts.
    #[serde(default = "yes")]
    pub skip_low_headroom: bool,
    #[serde(default = "default_headroom_ttl_ms")]
    pub headroom_ttl_ms: u64,
}

fn default_headroom_ttl_ms() -> u64 {
    10_000
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
            skip_low_headroom: true,
            headroom_ttl_ms: default_headroom_ttl_ms(),
        }
    }
}

/// How a call picks among the backends of its tier that are fit to take it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalancingConfig {
    #[serde(default)]
    pub policy: Policy,
    /// Under `prompt_cache`, a backend takes a key only while its calls in flight stay within
    /// this many times its weighted share of the tier's; above 1.
    #[serde(default = "default_load_factor")]
    pub load_factor: f64,
    /// Per client deployment name: a policy other than the global one.
    #[serde(default)]
    pub deployments: BTreeMap<String, DeploymentBalancing>,
}

fn default_load_factor() -> f64 {
    1.25
}

impl Default for BalancingConfig {
    fn default() -> Self {
        BalancingConfig {
            policy: Policy::default(),
            load_factor: default_load_factor(),
            deployments: BTreeMap::new(),
        }
    }
}

/// `[balancing.deployments.<name>]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentBalancing {
    pub policy: Policy,
}

/// How a call picks its backend within a tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Smooth weighted round-robin: calls spread by weight, one after another.
    #[default]
    RoundRobin,
    /// Calls with the same cache key (`prompt_cache_key`, else `user` or `safety_identifier`,
    /// else the beginning of the prompt) go to the same backend, whose prompt cache has it,
    /// within a bound on its load.
    PromptCache,
}

impl Policy {
    /// Its name, as the config file writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::RoundRobin => "round_robin",
            Policy::PromptCache => "prompt_cache",
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
    /// `Authorization: Bearer <key>`, which the plain OpenAI SDK sends (the v1 API).
    #[serde(default = "yes")]
    pub bearer_header: bool,
    /// Issuers whose Entra ID tokens callers may present in `Authorization: Bearer`.
    #[serde(default)]
    pub entra: Vec<EntraCallerConfig>,
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
            bearer_header: true,
            entra: Vec::new(),
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
    /// How the gateway proves itself to this resource: its `api-key` (the default) or an Entra
    /// ID token (`entra`, for resources with key authentication turned off).
    #[serde(default)]
    pub auth: BackendAuth,
    /// The environment variable holding this resource's `api-key` (`auth = "api_key"`).
    pub api_key_env: Option<String>,
    /// Or a file holding it, as Kubernetes mounts a secret: read again on every reload, so that
    /// rotating the key (key1 to key2) needs no restart.
    pub api_key_file: Option<String>,
    /// The credential its Entra ID tokens are got with (`auth = "entra"`).
    pub entra: Option<EntraCredentialConfig>,
    /// Client deployment names this backend serves; empty means every one.
    #[serde(default)]
    pub deployments: Vec<String>,
    /// Client deployment name → this resource's deployment name. A mapped name is served.
    #[serde(default)]
    pub deployment_map: BTreeMap<String, String>,
    /// api-versions this backend serves; empty means every compiled one.
    #[serde(default)]
    pub api_versions: Vec<String>,
    /// Whether operations on stored objects (assistants, threads, vector stores, files…) may
    /// go here. They are not rotated: such objects live in one resource, so they go to the first
    /// backend in this list that allows them. (Formerly `resources`, still accepted.)
    #[serde(default = "yes", alias = "resources")]
    pub stored_objects: bool,
    /// Lower is tried first: provisioned (PTU) deployments 1, pay-as-you-go 2. A call goes to
    /// the best tier with a backend fit to take it, and fails over within the tier first.
    #[serde(default = "default_priority")]
    pub priority: u32,
    /// This backend's share of its tier's calls (smooth weighted round-robin).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Client deployment name → the parameters this backend's deployment refuses (a reasoning
    /// model's): fields renamed and fields dropped from the body it is sent.
    #[serde(default)]
    pub compat: BTreeMap<String, CompatConfig>,
}

fn default_priority() -> u32 {
    1
}

fn default_weight() -> u32 {
    1
}

impl BackendConfig {
    /// A backend with every optional key at its default.
    pub fn new(name: &str, endpoint: &str, api_key_env: &str) -> BackendConfig {
        BackendConfig {
            name: name.into(),
            endpoint: endpoint.into(),
            region: String::new(),
            auth: BackendAuth::ApiKey,
            api_key_env: Some(api_key_env.into()),
            api_key_file: None,
            entra: None,
            deployments: Vec::new(),
            deployment_map: BTreeMap::new(),
            api_versions: Vec::new(),
            stored_objects: true,
            priority: default_priority(),
            weight: default_weight(),
            compat: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendAuth {
    #[default]
    ApiKey,
    Entra,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// An app registration's client secret.
    ClientSecret,
    /// An app registration's certificate (a PEM file with its private key).
    ClientCertificate,
    /// The host's managed identity: the App Service / Container Apps identity endpoint when
    /// `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` are set, else the instance metadata endpoint.
    ManagedIdentity,
    /// Kubernetes workload identity: the federated token in `AZURE_FEDERATED_TOKEN_FILE`.
    WorkloadIdentity,
}

/// An Entra ID credential for a backend.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntraCredentialConfig {
    pub credential: CredentialKind,
    /// The directory (tenant) id; workload identity defaults to `AZURE_TENANT_ID`.
    pub tenant_id: Option<String>,
    /// The application (client) id; for a managed identity, picks a user-assigned one; workload
    /// identity defaults to `AZURE_CLIENT_ID`.
    pub client_id: Option<String>,
    /// The environment variable holding the client secret.
    pub client_secret_env: Option<String>,
    /// Or a file holding it, read again on every reload.
    pub client_secret_file: Option<String>,
    /// A PEM file holding the certificate and its private key.
    pub certificate_file: Option<String>,
    /// Where tokens are got, for sovereign clouds: default `https://login.microsoftonline.com`
    /// (or `AZURE_AUTHORITY_HOST`).
    pub authority_host: Option<String>,
    /// The managed identity endpoint, default the instance metadata service's.
    pub identity_endpoint: Option<String>,
    /// The federated token file, default `AZURE_FEDERATED_TOKEN_FILE`.
    pub token_file: Option<String>,
    #[serde(default = "default_entra_scope")]
    pub scope: String,
}

fn default_entra_scope() -> String {
    "https://cognitiveservices.azure.com/.default".into()
}

/// An issuer whose tokens callers may present instead of a subscription key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntraCallerConfig {
    /// The tenant: gives `issuer` and `jwks_url` their Entra ID (v2.0) defaults.
    pub tenant_id: Option<String>,
    /// The `iss` of its tokens, e.g. `https://login.microsoftonline.com/<tenant>/v2.0`.
    pub issuer: Option<String>,
    /// The `aud` a token must carry: the gateway's application id URI or client id (one or a
    /// list).
    pub audience: Audiences,
    /// Where its signing keys are, e.g.
    /// `https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys`.
    pub jwks_url: Option<String>,
    pub authority_host: Option<String>,
    /// Application (client) id, from `azp` or `appid` → subscription name.
    #[serde(default)]
    pub applications: BTreeMap<String, String>,
    /// App role, from `roles` → subscription name (an application's own mapping wins).
    #[serde(default)]
    pub roles: BTreeMap<String, String>,
    /// How far `exp` and `nbf` may be off.
    #[serde(default = "default_clock_skew_s")]
    pub clock_skew_s: u64,
    /// How often the signing keys are fetched again.
    #[serde(default = "default_jwks_refresh_s")]
    pub jwks_refresh_s: u64,
    /// A token naming a key not in the set has it fetched again, but not sooner than this
    /// after the last fetch (so that made-up key ids cannot make the gateway hammer it).
    #[serde(default = "default_jwks_refetch_min_s")]
    pub jwks_refetch_min_s: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Audiences {
    One(String),
    Many(Vec<String>),
}

impl Audiences {
    pub fn all(&self) -> Vec<String> {
        match self {
            Audiences::One(a) => vec![a.clone()],
            Audiences::Many(all) => all.clone(),
        }
    }
}

fn default_clock_skew_s() -> u64 {
    60
}

fn default_jwks_refresh_s() -> u64 {
    3600
}

fn default_jwks_refetch_min_s() -> u64 {
    300
}

/// Parameters a backend deployment takes under another name, or not at all.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompatConfig {
    /// Top-level request field → the name this deployment takes it by, e.g.
    /// `max_tokens = "max_completion_tokens"`.
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    /// Top-level request fields this deployment refuses, e.g. `["temperature", "top_p"]`.
    #[serde(default)]
    pub drop: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionConfig {
    pub name: String,
    /// The environment variable holding the key.
    pub key_env: Option<String>,
    /// Or the key's SHA-256, as 64 hex digits (`printf %s KEY | sha256sum`).
    pub key_sha256: Option<String>,
    /// Or a file holding the key, or its SHA-256 as 64 hex digits; read again on every reload,
    /// so that a team's key can be rotated without a restart.
    pub key_file: Option<String>,
    /// What this subscription may spend, over all its deployments.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Client deployment name → what this subscription may spend on that deployment, on top of
    /// `limits`.
    #[serde(default)]
    pub deployment_limits: BTreeMap<String, LimitsConfig>,
    /// May use every stored object, whoever created it, and those the gateway never saw created
    /// (before it ran, or through another tool): for a platform team's own tooling.
    #[serde(default)]
    pub stored_objects_admin: bool,
}

impl SubscriptionConfig {
    /// A subscription whose key is in the environment variable `key_env`, without limits.
    pub fn with_key_env(name: &str, key_env: &str) -> SubscriptionConfig {
        SubscriptionConfig {
            name: name.into(),
            key_env: Some(key_env.into()),
            key_sha256: None,
            key_file: None,
            limits: LimitsConfig::default(),
            deployment_limits: BTreeMap::new(),
            stored_objects_admin: false,
        }
    }
}

/// A subscription's limits; each is off unless set.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Tokens (prompt and completion) in any 60 seconds.
    pub tokens_per_minute: Option<u64>,
    /// Calls in any 60 seconds.
    pub requests_per_minute: Option<u64>,
    /// Tokens per calendar day (UTC).
    pub tokens_per_day: Option<u64>,
}
