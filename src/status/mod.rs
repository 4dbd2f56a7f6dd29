//! The status page: what an operator on call wants at a glance, as `/status` (a page for
//! people, [`page`]) and `/status.json` (the same, for scripts). Both are read from what the
//! gateway already keeps (the balancer's rests and headroom, the counters, the limit windows,
//! the identity thread's tokens and keys) when asked, so keeping them costs the calls nothing
//! but [`recent`]'s minute of counts.
//!
//! No key, token or secret is ever in it: credentials show as their kind and state only.

pub mod page;
pub mod recent;

use serde::Serialize;

use crate::balance::health::Report;
use crate::config::BackendCredential;
use crate::generated::API_VERSIONS;
use crate::limits::{Limits, now_ms};
use crate::live::{History, Live};
use crate::proxy::Gateway;
use recent::Minute;

#[derive(Debug, Serialize)]
pub struct Status {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    pub uptime_s: u64,
    /// Why the gateway does not take calls, if it does not.
    pub unready: Option<&'static str>,
    pub config: History,
    /// `None` without `state.redis_url`.
    pub shared_state_up: Option<bool>,
    /// Backends by tier, best first.
    pub tiers: Vec<Tier>,
    /// How calls pick their backend within a tier.
    pub balancing: BalancingStatus,
    pub subscriptions: Vec<SubscriptionStatus>,
    pub issuers: Vec<IssuerStatus>,
    pub api_versions: Vec<VersionStatus>,
    /// Stored objects in the directory, by kind.
    pub objects: Vec<(&'static str, u64)>,
}

#[derive(Debug, Serialize)]
pub struct BalancingStatus {
    /// `round_robin` or `prompt_cache`.
    pub policy: &'static str,
    pub load_factor: f64,
    /// Deployments with a policy of their own, by name.
    pub deployments: Vec<(String, &'static str)>,
}

#[derive(Debug, Serialize)]
pub struct Tier {
    pub priority: u32,
    pub backends: Vec<BackendStatus>,
}

#[derive(Debug, Serialize)]
pub struct BackendStatus {
    pub name: String,
    pub region: String,
    pub host: String,
    pub weight: u32,
    pub last_minute: Minute,
    pub in_flight: i64,
    /// Realtime sessions open on it (each among `in_flight` too).
    pub sessions: i64,
    pub condition: Report,
    /// The last `x-ratelimit-remaining-tokens` and `-requests` it answered with.
    pub remaining_tokens: Option<i64>,
    pub remaining_requests: Option<i64>,
    pub credential: CredentialStatus,
}

#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CredentialStatus {
    ApiKey,
    /// An Entra ID credential: what it is, how long its token is usable, why the latest
    /// exchange failed.
    Entra {
        describe: String,
        usable_s: Option<u64>,
        failure: Option<String>,
    },
}

#[derive(Debug, Serialize)]
pub struct SubscriptionStatus {
    pub name: String,
    /// The subscription's own limits, then each deployment's.
    pub windows: Vec<WindowStatus>,
}

#[derive(Debug, Serialize)]
pub struct WindowStatus {
    /// `None`: all the subscription's calls; else the deployment.
    pub deployment: Option<String>,
    pub limits: LimitsStatus,
    /// What is left now (the least of the windows that count it).
    pub tokens_left: Option<u64>,
    pub requests_left: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct LimitsStatus {
    pub tokens_per_minute: Option<u64>,
    pub requests_per_minute: Option<u64>,
    pub tokens_per_day: Option<u64>,
}

impl From<&Limits> for LimitsStatus {
    fn from(l: &Limits) -> Self {
        LimitsStatus {
            tokens_per_minute: l.tokens_per_minute,
            requests_per_minute: l.requests_per_minute,
            tokens_per_day: l.tokens_per_day,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct IssuerStatus {
    pub issuer: String,
    pub keys_url: String,
    pub keys: usize,
}

#[derive(Debug, Serialize)]
pub struct VersionStatus {
    pub version: &'static str,
    pub mount: &'static str,
    pub source: &'static str,
    pub sha256: &'static str,
    pub overlays: Vec<&'static str>,
}

/// The status of the gateway now.
pub async fn gather(gw: &Gateway, live: &Live) -> Status {
    let mut tiers: Vec<Tier> = Vec::new();
    for (i, b) in gw.balancer.backends().iter().enumerate() {
        let counters = gw.metrics.backend(i);
        let remaining = counters.map(|c| c.remaining()).unwrap_or_default();
        let credential = match &b.credential {
            BackendCredential::ApiKey(_) => CredentialStatus::ApiKey,
            BackendCredential::Entra(source) => {
                let (usable, failure) = source.condition();
                CredentialStatus::Entra {
                    describe: source.credential.describe(),
                    usable_s: usable.map(|d| d.as_secs()),
                    failure,
                }
            }
        };
        let status = BackendStatus {
            name: b.name.clone(),
            region: b.region.clone(),
            host: b.host.to_str().unwrap_or_default().to_string(),
            weight: b.weight,
            last_minute: counters.map(|c| c.recent.minute()).unwrap_or_default(),
            in_flight: counters.map_or(0, |c| c.in_flight()),
            sessions: counters.map_or(0, |c| c.sessions()),
            condition: gw.balancer.report(i).unwrap_or_default(),
            remaining_tokens: remaining.tokens,
            remaining_requests: remaining.requests,
            credential,
        };
        match tiers.iter_mut().find(|t| t.priority == b.priority) {
            Some(tier) => tier.backends.push(status),
            None => tiers.push(Tier {
                priority: b.priority,
                backends: vec![status],
            }),
        }
    }
    tiers.sort_by_key(|t| t.priority);
    let mut subscriptions = Vec::new();
    for (i, s) in gw.auth.subscriptions().iter().enumerate() {
        let mut windows = Vec::new();
        if let Some(limits) = gw.limiter.limits(i) {
            let mut scopes: Vec<(Option<&str>, &Limits)> = vec![(None, &limits.own)];
            let mut deployments: Vec<_> = limits.deployments.iter().collect();
            deployments.sort_by_key(|(d, _)| d.as_str());
            scopes.extend(deployments.into_iter().map(|(d, l)| (Some(d.as_str()), l)));
            for (deployment, l) in scopes {
                if l.is_empty() {
                    continue;
                }
                let left = crate::state::remaining(gw, i, deployment).await;
                windows.push(WindowStatus {
                    deployment: deployment.map(str::to_string),
                    limits: l.into(),
                    tokens_left: left.and_then(|r| r.tokens),
                    requests_left: left.and_then(|r| r.requests),
                });
            }
        }
        subscriptions.push(SubscriptionStatus {
            name: s.name.clone(),
            windows,
        });
    }
    Status {
        at_ms: now_ms(),
        uptime_s: gw.metrics.uptime().as_secs(),
        unready: gw.unready(),
        config: live.history(),
        shared_state_up: crate::state::up(gw),
        tiers,
        subscriptions,
        issuers: gw
            .auth
            .issuers()
            .iter()
            .map(|i| IssuerStatus {
                issuer: i.issuer.clone(),
                keys_url: i.keys.url.clone(),
                keys: i.keys.len(),
            })
            .collect(),
        api_versions: API_VERSIONS
            .iter()
            .map(|v| VersionStatus {
                version: v.version,
                mount: v.mount,
                source: v.source,
                sha256: v.source_sha256,
                overlays: v.overlays.iter().map(|o| o.file).collect(),
            })
            .collect(),
        objects: gw.objects.directory.sizes().collect(),
        balancing: {
            let b = gw.balancer.balancing();
            let mut deployments: Vec<(String, &'static str)> = b
                .deployments
                .iter()
                .map(|(name, policy)| (name.clone(), policy.as_str()))
                .collect();
            deployments.sort();
            BalancingStatus {
                policy: b.policy.as_str(),
                load_factor: b.load_factor,
                deployments,
            }
        },
    }
}
