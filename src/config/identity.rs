//! The Entra ID settings checked: each backend's credential, and the issuers whose tokens
//! callers may present. Environment variables are read from the checked environment, as keys
//! are, so that a missing one is reported at start-up with the key that needs it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::check::Checker;
use super::secrets;
use super::{BackendAuth, BackendConfig, CredentialKind, EntraCallerConfig, EntraCredentialConfig};
use crate::identity::callers::Issuer;
use crate::identity::credential::{Credential, Secret, SigningKey};
use crate::identity::keys::KeySet;
use crate::identity::tokens::TokenSource;

const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
const IMDS: &str = "http://169.254.169.254/metadata/identity/oauth2/token";

/// Backends' token sources, one per distinct credential and scope, so that backends sharing a
/// credential share its token.
#[derive(Default)]
pub(super) struct Sources(HashMap<String, Arc<TokenSource>>);

/// `http(s)://…` without a trailing slash.
fn url(c: &mut Checker, at: &str, given: &str) -> Option<String> {
    let trimmed = given.trim().trim_end_matches('/');
    if trimmed.starts_with("https://") || trimmed.starts_with("http://") {
        Some(trimmed.to_string())
    } else {
        c.fail(at, format!("`{given}` is not an http(s) URL"));
        None
    }
}

/// A setting of the config, or else of an environment variable; reported as missing under `at`.
fn given_or_env(
    c: &mut Checker,
    at: &str,
    given: &Option<String>,
    env: &HashMap<String, String>,
    var: Option<&str>,
) -> Option<String> {
    let found = given
        .clone()
        .or_else(|| var.and_then(|v| env.get(v).cloned()))
        .filter(|v| !v.trim().is_empty());
    if found.is_none() {
        match var {
            Some(var) => c.fail(
                at,
                format!("must be set (or the environment variable `{var}`)"),
            ),
            None => c.fail(at, "must be set"),
        }
    }
    found
}

fn authority(
    c: &mut Checker,
    at: &str,
    given: &Option<String>,
    env: &HashMap<String, String>,
) -> Option<String> {
    let host = given
        .clone()
        .or_else(|| env.get("AZURE_AUTHORITY_HOST").cloned())
        .unwrap_or_else(|| DEFAULT_AUTHORITY.into());
    url(c, at, &host)
}

/// `Some(None)` for a backend with an `api-key`; `Some(Some(source))` for one with Entra ID;
/// `None` when its settings are wrong (reported).
pub(super) fn backend_source(
    c: &mut Checker,
    at: &dyn Fn(&str) -> String,
    b: &BackendConfig,
    env: &HashMap<String, String>,
    wait: Duration,
    sources: &mut Sources,
) -> Option<Option<Arc<TokenSource>>> {
    match (b.auth, &b.entra) {
        (BackendAuth::ApiKey, None) => Some(None),
        (BackendAuth::ApiKey, Some(_)) => {
            c.fail(at("entra"), "is for `auth = \"entra\"`");
            None
        }
        (BackendAuth::Entra, None) => {
            c.fail(
                at("entra"),
                "`auth = \"entra\"` needs an `entra` credential",
            );
            None
        }
        (BackendAuth::Entra, Some(entra)) => {
            if b.api_key_env.is_some() {
                c.fail(at("api_key_env"), "is for `auth = \"api_key\"`");
            }
            let at = |field: &str| at(&format!("entra.{field}"));
            let (credential, identity) = credential(c, &at, entra, env)?;
            if entra.scope.trim().is_empty() {
                c.fail(at("scope"), "must not be empty");
                return None;
            }
            let key = format!("{identity}\u{1f}{}", entra.scope);
            let source = sources.0.entry(key).or_insert_with(|| {
                Arc::new(TokenSource::new(credential, entra.scope.clone(), wait))
            });
            Some(Some(source.clone()))
        }
    }
}

/// The credential, and what tells it from another.
fn credential(
    c: &mut Checker,
    at: &dyn Fn(&str) -> String,
    e: &EntraCredentialConfig,
    env: &HashMap<String, String>,
) -> Option<(Credential, String)> {
    let token_url = |c: &mut Checker, tenant: &str| {
        authority(c, &at("authority_host"), &e.authority_host, env)
            .map(|host| format!("{host}/{tenant}/oauth2/v2.0/token"))
    };
    match e.credential {
        CredentialKind::ClientSecret => {
            let tenant = given_or_env(c, &at("tenant_id"), &e.tenant_id, env, None);
            let client_id = given_or_env(c, &at("client_id"), &e.client_id, env, None);
            let secret = secrets::read(
                env,
                e.client_secret_env.as_deref(),
                e.client_secret_file.as_deref(),
                &mut c.files,
            );
            let secret = match c.ok(at("client_secret_env"), secret) {
                Some(None) => {
                    c.fail(
                        at("client_secret_env"),
                        "must name the variable holding the secret, or `client_secret_file` the file",
                    );
                    None
                }
                found => found.flatten(),
            };
            let token_url = token_url(c, tenant.as_deref()?)?;
            let (client_id, secret) = (client_id?, secret?);
            let identity = format!("secret\u{1f}{token_url}\u{1f}{client_id}");
            Some((
                Credential::ClientSecret {
                    token_url,
                    client_id,
                    secret: Secret(secret),
                },
                identity,
            ))
        }
        CredentialKind::ClientCertificate => {
            let tenant = given_or_env(c, &at("tenant_id"), &e.tenant_id, env, None);
            let client_id = given_or_env(c, &at("client_id"), &e.client_id, env, None);
            if let Some(path) = &e.certificate_file {
                c.files.push(path.into());
            }
            let key = match &e.certificate_file {
                Some(path) => c.ok(
                    at("certificate_file"),
                    std::fs::read_to_string(path)
                        .map_err(|err| format!("`{path}` cannot be read ({err})"))
                        .and_then(|pem| {
                            SigningKey::from_pem(&pem).map_err(|why| format!("`{path}` {why}"))
                        }),
                ),
                None => {
                    c.fail(at("certificate_file"), "must name the PEM file");
                    None
                }
            };
            let token_url = token_url(c, tenant.as_deref()?)?;
            let (client_id, key) = (client_id?, key?);
            let identity = format!(
                "certificate\u{1f}{token_url}\u{1f}{client_id}\u{1f}{}",
                e.certificate_file.as_deref().unwrap_or("")
            );
            Some((
                Credential::ClientCertificate {
                    token_url,
                    client_id,
                    key: Arc::new(key),
                },
                identity,
            ))
        }
        CredentialKind::ManagedIdentity => {
            let client_id = e.client_id.clone().filter(|id| !id.trim().is_empty());
            let app_service = (env.get("IDENTITY_ENDPOINT"), env.get("IDENTITY_HEADER"));
            let who = client_id.clone().unwrap_or_default();
            match (&e.identity_endpoint, app_service) {
                (None, (Some(endpoint), Some(header))) => {
                    let url = url(c, "IDENTITY_ENDPOINT", endpoint)?;
                    let identity = format!("app-service\u{1f}{url}\u{1f}{who}");
                    Some((
                        Credential::AppService {
                            url,
                            header: Secret(header.clone()),
                            client_id,
                        },
                        identity,
                    ))
                }
                (given, _) => {
                    let url = url(
                        c,
                        &at("identity_endpoint"),
                        given.as_deref().unwrap_or(IMDS),
                    )?;
                    let identity = format!("imds\u{1f}{url}\u{1f}{who}");
                    Some((Credential::Imds { url, client_id }, identity))
                }
            }
        }
        CredentialKind::WorkloadIdentity => {
            let tenant = given_or_env(
                c,
                &at("tenant_id"),
                &e.tenant_id,
                env,
                Some("AZURE_TENANT_ID"),
            );
            let client_id = given_or_env(
                c,
                &at("client_id"),
                &e.client_id,
                env,
                Some("AZURE_CLIENT_ID"),
            );
            let file = given_or_env(
                c,
                &at("token_file"),
                &e.token_file,
                env,
                Some("AZURE_FEDERATED_TOKEN_FILE"),
            );
            if let Some(file) = &file
                && let Err(err) = std::fs::metadata(file)
            {
                c.fail(at("token_file"), format!("`{file}` cannot be read ({err})"));
                return None;
            }
            let token_url = token_url(c, tenant.as_deref()?)?;
            let (client_id, file) = (client_id?, file?);
            let identity = format!("workload\u{1f}{token_url}\u{1f}{client_id}\u{1f}{file}");
            Some((
                Credential::WorkloadIdentity {
                    token_url,
                    client_id,
                    token_file: file.into(),
                },
                identity,
            ))
        }
    }
}

/// The `[[auth.entra]]` issuers; `subscriptions` are the subscriptions' names, by index.
pub(super) fn callers(
    c: &mut Checker,
    entries: &[EntraCallerConfig],
    env: &HashMap<String, String>,
    subscriptions: &[&str],
) -> Vec<Issuer> {
    let mut issuers = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let at = |field: &str| format!("auth.entra[{i}].{field}");
        let host = authority(c, &at("authority_host"), &e.authority_host, env);
        let tenant = e.tenant_id.as_deref().filter(|t| !t.trim().is_empty());
        let issuer = match (&e.issuer, tenant, &host) {
            (Some(issuer), _, _) => Some(issuer.clone()),
            (None, Some(tenant), Some(host)) => Some(format!("{host}/{tenant}/v2.0")),
            _ => {
                c.fail(at("issuer"), "give `tenant_id`, or `issuer` and `jwks_url`");
                None
            }
        };
        let jwks_url = match (&e.jwks_url, tenant, &host) {
            (Some(given), _, _) => url(c, &at("jwks_url"), given),
            (None, Some(tenant), Some(host)) => {
                Some(format!("{host}/{tenant}/discovery/v2.0/keys"))
            }
            _ => {
                c.fail(
                    at("jwks_url"),
                    "give `tenant_id`, or `issuer` and `jwks_url`",
                );
                None
            }
        };
        let audiences: Vec<String> = e
            .audience
            .all()
            .into_iter()
            .filter(|a| !a.trim().is_empty())
            .collect();
        if audiences.is_empty() {
            c.fail(
                at("audience"),
                "must name the audience tokens are issued for",
            );
        }
        if e.applications.is_empty() && e.roles.is_empty() {
            c.fail(
                at("applications"),
                "map at least one application or role to a subscription",
            );
        }
        let mut subscription = |field: &str, from: &str, name: &str| {
            let index = subscriptions.iter().position(|s| *s == name);
            if index.is_none() {
                c.fail(
                    at(&format!("{field}.{from}")),
                    format!("`{name}` is not a subscription"),
                );
            }
            index
        };
        let applications: HashMap<String, usize> = e
            .applications
            .iter()
            .filter_map(|(app, name)| Some((app.clone(), subscription("applications", app, name)?)))
            .collect();
        let roles: Vec<(String, usize)> = e
            .roles
            .iter()
            .filter_map(|(role, name)| Some((role.clone(), subscription("roles", role, name)?)))
            .collect();
        if e.jwks_refresh_s == 0 {
            c.fail(at("jwks_refresh_s"), "must be more than 0");
        }
        let (Some(issuer), Some(jwks_url)) = (issuer, jwks_url) else {
            continue;
        };
        issuers.push(Issuer {
            issuer,
            audiences,
            keys: Arc::new(KeySet::new(
                jwks_url,
                Duration::from_secs(e.jwks_refresh_s.max(1)),
                Duration::from_secs(e.jwks_refetch_min_s),
            )),
            applications,
            roles,
            skew: Duration::from_secs(e.clock_skew_s),
        });
    }
    issuers
}
