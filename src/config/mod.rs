//! The gateway's configuration: a TOML file, every value of which an environment variable can
//! override, checked completely at start-up.
//!
//! Overrides are named `AOAI_GATEWAY__` followed by the key path in upper case with `__` between
//! parts: `AOAI_GATEWAY__LISTEN=0.0.0.0:8080`, `AOAI_GATEWAY__LIMITS__MAX_BODY_BYTES=1048576`.
//! Inside `backends` and `subscriptions` the next part is the entry's `name` (or its index):
//! `AOAI_GATEWAY__BACKENDS__EASTUS__ENDPOINT=https://…`; a name not in the file adds an entry.
//! Values are read as TOML (`8080`, `true`, `["a", "b"]`) and otherwise taken as strings.
//!
//! Secrets never sit in the file: a backend names the environment variable or the file holding
//! its key, and a subscription names one or stores the key's SHA-256. Files are read again on
//! every reload (SIGHUP, or a change when `reload.watch` is set).

//!
//! The keys of the file are `file`'s types; `env` applies the overrides; `check` turns the
//! file into [`Settings`], the checked values the gateway runs with, and reports every mistake
//! at once.

mod check;
pub mod compat;
mod env;
mod file;
mod identity;
mod secrets;
mod settings;

use std::collections::HashMap;
use std::fmt;

pub use check::ConfigErrors;
pub use env::ENV_PREFIX;
pub use file::*;
pub use settings::*;

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

/// Reads a config file and applies the environment's overrides.
pub fn load(path: &str, env: &HashMap<String, String>) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.into(),
        key: String::new(),
        reason: format!("cannot read: {e}"),
    })?;
    parse(&text, path, env)
}

/// Reads the config file at `path` with the process's environment and checks it against the
/// compiled api-versions, as `serve`, `check-config` and a reload do.
pub fn read(path: &str) -> Result<Settings, ConfigErrors> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let versions: Vec<&str> = crate::generated::API_VERSIONS
        .iter()
        .map(|v| v.version)
        .collect();
    load(path, &env)?.check(path, &env, &versions)
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
        env::apply_override(&mut table, name, value)
            .map_err(|reason| error(name.clone(), reason))?;
    }
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let key = e.path().to_string();
        error(
            if key == "." { String::new() } else { key },
            e.into_inner().message().to_string(),
        )
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
        assert!(
            matches!(&s.backends[0].credential, BackendCredential::ApiKey(key) if key.is_sensitive())
        );
        assert_eq!(s.subscriptions[0].key_sha256, Some(sha256("client-secret")));
        assert!(!format!("{:?}", s.backends[0]).contains("backend-secret"));
    }

    #[test]
    fn stored_objects_is_also_read_under_its_old_name() {
        let old = CONFIG.replace(
            "region = \"East US\"",
            "region = \"East US\"\nresources = false",
        );
        let c = parse(&old, "gw.toml", &HashMap::new()).unwrap();
        assert!(!c.backends[0].stored_objects);
        let s = c.check("gw.toml", &keys(), &[]).unwrap();
        assert!(!s.backends[0].stored_objects);
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

    /// Every error checking `text` gives, as `key: reason`, with the keys and `extra` set.
    fn errors_with(text: &str, extra: &[(&str, &str)]) -> Vec<String> {
        let mut env = keys();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        match parse(text, "gw.toml", &HashMap::new())
            .unwrap()
            .check("gw.toml", &env, &[])
        {
            Ok(_) => Vec::new(),
            Err(e) => {
                e.0.iter()
                    .map(|e| format!("{}: {}", e.key, e.reason))
                    .collect()
            }
        }
    }

    #[test]
    fn entra_backend_credentials_are_checked() {
        let keyless = |entra: &str| {
            CONFIG.replace(
                "api_key_env = \"EASTUS_KEY\"",
                &format!("auth = \"entra\"\nentra = {{ {entra} }}"),
            )
        };
        let secret = keyless(
            r#"credential = "client_secret", tenant_id = "t", client_id = "c", client_secret_env = "EASTUS_SECRET""#,
        );
        assert_eq!(
            errors_with(&secret, &[]),
            [
                "backends[0].entra.client_secret_env: environment variable `EASTUS_SECRET` is not set"
            ]
        );
        let s = parse(&secret, "gw.toml", &HashMap::new())
            .unwrap()
            .check(
                "gw.toml",
                &env(&[("EASTUS_SECRET", "s3cr3t"), ("TEAM_A_KEY", "k")]),
                &[],
            )
            .unwrap();
        assert!(matches!(
            s.backends[0].credential,
            BackendCredential::Entra(_)
        ));
        assert!(!format!("{:?}", s.backends).contains("s3cr3t"));

        assert_eq!(
            errors_with(
                &CONFIG.replace("api_key_env = \"EASTUS_KEY\"", "auth = \"entra\""),
                &[]
            ),
            ["backends[0].entra: `auth = \"entra\"` needs an `entra` credential"]
        );
        let workload = keyless(r#"credential = "workload_identity""#);
        assert_eq!(
            errors_with(&workload, &[]),
            [
                "backends[0].entra.tenant_id: must be set (or the environment variable `AZURE_TENANT_ID`)",
                "backends[0].entra.client_id: must be set (or the environment variable `AZURE_CLIENT_ID`)",
                "backends[0].entra.token_file: must be set (or the environment variable `AZURE_FEDERATED_TOKEN_FILE`)",
            ]
        );
        let missing = [
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_FEDERATED_TOKEN_FILE", "/nonexistent/token"),
        ];
        let errors = errors_with(&workload, &missing);
        assert!(
            errors[0]
                .starts_with("backends[0].entra.token_file: `/nonexistent/token` cannot be read"),
            "{errors:?}"
        );
        let certificate = keyless(
            r#"credential = "client_certificate", tenant_id = "t", client_id = "c", certificate_file = "Cargo.toml""#,
        );
        assert_eq!(
            errors_with(&certificate, &[]),
            ["backends[0].entra.certificate_file: `Cargo.toml` holds no RSA private key"]
        );
        assert_eq!(
            errors_with(&keyless(r#"credential = "managed_identity""#), &[]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn entra_callers_are_checked() {
        let with = |entry: &str| format!("{CONFIG}\n[[auth.entra]]\n{entry}\n");
        assert_eq!(
            errors_with(&with(r#"audience = "api://gw""#), &[]),
            [
                "auth.entra[0].issuer: give `tenant_id`, or `issuer` and `jwks_url`",
                "auth.entra[0].jwks_url: give `tenant_id`, or `issuer` and `jwks_url`",
                "auth.entra[0].applications: map at least one application or role to a subscription",
            ]
        );
        assert_eq!(
            errors_with(
                &with(
                    "tenant_id = \"t\"\naudience = \"api://gw\"\nroles = { \"Chat\" = \"team-z\" }"
                ),
                &[]
            ),
            ["auth.entra[0].roles.Chat: `team-z` is not a subscription"]
        );
        let entry = "tenant_id = \"t1\"\naudience = [\"api://gw\", \"c1\"]\napplications = { \"app\" = \"team-b\" }";
        let text = format!("{}\n[[subscriptions]]\nname = \"team-b\"\n", with(entry));
        let s = parse(&text, "gw.toml", &HashMap::new())
            .unwrap()
            .check("gw.toml", &keys(), &[])
            .unwrap();
        let issuer = &s.callers[0];
        assert_eq!(issuer.issuer, "https://login.microsoftonline.com/t1/v2.0");
        assert_eq!(
            issuer.keys.url,
            "https://login.microsoftonline.com/t1/discovery/v2.0/keys"
        );
        assert_eq!(issuer.audiences, ["api://gw", "c1"]);
        // Only a subscription callers with tokens map to may go without a key.
        assert_eq!(s.subscriptions[1].key_sha256, None);
        let unmapped = format!("{CONFIG}\n[[subscriptions]]\nname = \"team-c\"\n");
        assert_eq!(
            errors_with(&unmapped, &[]),
            [
                "subscriptions[1].key_env: give one of `key_env`, `key_file` and `key_sha256` (or map Entra ID callers to it in `auth.entra`)"
            ]
        );
    }
}

#[cfg(test)]
mod example {
    use super::*;

    /// The documented example must stay valid.
    #[test]
    fn the_example_config_checks() {
        let text = include_str!("../../gateway.example.toml");
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
        assert_eq!(settings.subscriptions[1].key_sha256, Some(sha256("test")));
        assert!(!settings.backends[1].serves_deployment("other"));
        assert!(settings.backends[1].serves_deployment("embeddings"));
    }
}
