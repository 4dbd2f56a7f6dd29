//! The configuration checked, as the gateway runs with it.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::HeaderValue;
use sha2::{Digest, Sha256};

use super::{AuthConfig, DocsConfig, LogConfig, MetricsConfig};
use crate::identity::tokens::TokenSource;
use crate::limits::SubscriptionLimits;
use crate::tokens::tokenizer::Encoding;

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
    pub credential: BackendCredential,
    pub deployment_map: HashMap<String, String>,
    /// `None` serves every deployment.
    pub deployments: Option<HashSet<String>>,
    /// `None` serves every api-version.
    pub api_versions: Option<HashSet<String>>,
    /// May hold stored objects (see `BackendConfig::stored_objects`).
    pub stored_objects: bool,
    /// Its tier: lower is tried first.
    pub priority: u32,
    /// Its share of its tier's calls.
    pub weight: u32,
    /// By client deployment name: what that deployment here takes differently.
    pub compat: HashMap<String, Compat>,
}

/// How the gateway proves itself to a backend.
pub enum BackendCredential {
    /// Its `api-key`, marked sensitive (so it never shows in debug output).
    ApiKey(HeaderValue),
    /// An Entra ID token, sent as `Authorization: Bearer`.
    Entra(Arc<TokenSource>),
}

/// The parameters a backend deployment renames or refuses, checked against the request models
/// of the api-versions the backend serves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compat {
    /// (the client's field, the name this deployment takes it by)
    pub rename: Vec<(String, String)>,
    pub drop: Vec<String>,
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
    /// `None` for a subscription only Entra ID callers map to.
    pub key_sha256: Option<[u8; 32]>,
    pub limits: SubscriptionLimits,
    /// May use every stored object (`stored_objects_admin`).
    pub objects_admin: bool,
}

/// [`StateConfig`](super::StateConfig) with a Redis, checked.
#[derive(Clone)]
pub struct StateSettings {
    pub redis_url: String,
    pub key_prefix: String,
    pub timeout: Duration,
    pub reject: bool,
}

impl fmt::Debug for StateSettings {
    // The URL may hold a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateSettings")
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .field("reject", &self.reject)
            .finish_non_exhaustive()
    }
}

/// [`UsageConfig`](super::UsageConfig), checked.
#[derive(Debug, Clone)]
pub struct UsageSettings {
    pub stream_include_usage: bool,
    pub default_completion_tokens: u64,
    /// By client deployment name, where the name does not say.
    pub encodings: HashMap<String, Encoding>,
}

impl UsageSettings {
    /// The tokenizer for a client deployment (or model) name.
    pub fn encoding(&self, deployment: &str) -> Encoding {
        self.encoding_on(deployment, deployment)
    }

    /// The tokenizer for a client deployment that a backend knows as `backend_name` (its
    /// `deployment_map`, which often names the model).
    pub fn encoding_on(&self, deployment: &str, backend_name: &str) -> Encoding {
        self.encodings
            .get(deployment)
            .copied()
            .unwrap_or_else(|| Encoding::for_model(backend_name))
    }
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
    pub balancing: Balancing,
    /// How long the gateway keeps accepting once told to stop, and how long calls in flight
    /// may then take to finish.
    pub shutdown_drain: Duration,
    pub shutdown_grace: Duration,
    pub auth: AuthConfig,
    /// Issuers whose tokens callers may present (`auth.entra`).
    pub callers: Vec<crate::identity::callers::Issuer>,
    pub docs: DocsConfig,
    pub metrics: MetricsConfig,
    pub status: super::StatusConfig,
    pub reload: super::ReloadConfig,
    /// `None`: no traces.
    pub otel: Option<OtelSettings>,
    /// The config file and every secret file it names: a change of any reloads the config when
    /// `reload.watch` is set.
    pub watched: Vec<std::path::PathBuf>,
    pub usage: UsageSettings,
    pub log: LogConfig,
    /// `None`: in-process state.
    pub state: Option<StateSettings>,
    pub objects: ObjectSettings,
    pub backends: Vec<Backend>,
    pub subscriptions: Vec<Subscription>,
}

/// Where the directory of stored objects lives, and whose objects a subscription may use.
#[derive(Debug, Clone)]
pub struct ObjectSettings {
    pub isolation: super::Isolation,
    /// The embedded database's file (`state.path`), when there is no Redis.
    pub path: Option<std::path::PathBuf>,
}

/// [`FailoverConfig`](super::FailoverConfig), checked.
#[derive(Debug, Clone, Copy)]
pub struct Failover {
    pub attempts: usize,
    pub unreachable_rest: Duration,
    pub max_rest: Duration,
    pub circuit_failures: u32,
    pub circuit_window: Duration,
    pub circuit_cooldown: Duration,
    pub skip_low_headroom: bool,
    pub headroom_ttl: Duration,
}

/// [`BalancingConfig`](super::BalancingConfig), checked.
#[derive(Debug, Clone)]
pub struct Balancing {
    pub policy: super::Policy,
    pub load_factor: f64,
    pub deployments: HashMap<String, super::Policy>,
}

impl Default for Balancing {
    fn default() -> Self {
        let file = super::BalancingConfig::default();
        Balancing {
            policy: file.policy,
            load_factor: file.load_factor,
            deployments: HashMap::new(),
        }
    }
}

impl Balancing {
    /// The policy of calls to client deployment `name`.
    pub fn policy(&self, name: &str) -> super::Policy {
        self.deployments.get(name).copied().unwrap_or(self.policy)
    }
}

pub fn sha256(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// [`OtelConfig`](super::OtelConfig), checked and completed from the environment.
#[derive(Clone, PartialEq)]
pub struct OtelSettings {
    /// The full URL spans are posted to (`…/v1/traces`).
    pub endpoint: String,
    pub service_name: String,
    pub sample_ratio: f64,
    /// Headers for the collector (an API key, say): never logged.
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for OtelSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtelSettings")
            .field("endpoint", &self.endpoint)
            .field("service_name", &self.service_name)
            .field("sample_ratio", &self.sample_ratio)
            .field("headers", &self.headers.len())
            .finish()
    }
}
