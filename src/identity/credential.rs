//! The credentials a backend's Entra ID tokens are got with, and the one exchange each makes:
//! client credentials (a secret, or a certificate's signed assertion) and workload identity
//! (a federated token) at the tenant's token endpoint; managed identity at the instance
//! metadata endpoint or the App Service / Container Apps identity endpoint.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde::Deserialize;

use super::http::{Exchange, encode};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A value never shown: not in debug output, logs or errors.
#[derive(Clone)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

#[derive(Debug, Clone)]
pub enum Credential {
    ClientSecret {
        token_url: String,
        client_id: String,
        secret: Secret,
    },
    ClientCertificate {
        token_url: String,
        client_id: String,
        key: Arc<SigningKey>,
    },
    /// The instance metadata endpoint (VMs, AKS node identity); `client_id` picks a
    /// user-assigned identity.
    Imds {
        url: String,
        client_id: Option<String>,
    },
    /// `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`, as App Service and Container Apps set them.
    AppService {
        url: String,
        header: Secret,
        client_id: Option<String>,
    },
    /// A Kubernetes service account token, exchanged as a client assertion; read at each
    /// exchange, since the kubelet rotates it.
    WorkloadIdentity {
        token_url: String,
        client_id: String,
        token_file: PathBuf,
    },
}

/// A certificate credential's private key and its certificate's SHA-1 thumbprint.
pub struct SigningKey {
    pair: RsaKeyPair,
    /// `x5t`: the certificate's thumbprint, base64url.
    thumbprint: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("thumbprint", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// From a PEM file's text holding the private key (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA
    /// PRIVATE KEY`) and its `CERTIFICATE`, as Azure's tools export them.
    pub fn from_pem(pem: &str) -> Result<SigningKey, String> {
        let blocks = pem_blocks(pem)?;
        let find = |label: &str| {
            blocks
                .iter()
                .find(|(l, _)| l == label)
                .map(|(_, der)| der.as_slice())
        };
        let pair = match (find("PRIVATE KEY"), find("RSA PRIVATE KEY")) {
            (Some(der), _) => RsaKeyPair::from_pkcs8(der),
            (None, Some(der)) => RsaKeyPair::from_der(der),
            (None, None) => return Err("holds no RSA private key".into()),
        }
        .map_err(|e| format!("its private key is not a usable RSA key ({e})"))?;
        let certificate = find("CERTIFICATE").ok_or("holds no CERTIFICATE")?;
        let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, certificate);
        Ok(SigningKey {
            pair,
            thumbprint: URL_SAFE_NO_PAD.encode(digest.as_ref()),
        })
    }

    /// A client assertion for `audience` (the token endpoint), valid ten minutes.
    fn assertion(&self, client_id: &str, audience: &str) -> Result<String, String> {
        let now = unix_now();
        let rng = SystemRandom::new();
        let mut id = [0u8; 16];
        rng.fill(&mut id).map_err(|_| "no randomness".to_string())?;
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t": self.thumbprint});
        let claims = serde_json::json!({
            "aud": audience, "iss": client_id, "sub": client_id,
            "jti": id.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "iat": now, "nbf": now, "exp": now + 600,
        });
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &rng, signed.as_bytes(), &mut signature)
            .map_err(|_| "the assertion could not be signed".to_string())?;
        Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// (label, DER) of each block of a PEM text.
fn pem_blocks(pem: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in pem.lines().map(str::trim) {
        if let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            open = Some((label.to_string(), String::new()));
        } else if let Some(label) = line
            .strip_prefix("-----END ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            let Some((opened, text)) = open.take().filter(|(l, _)| l == label) else {
                return Err(format!("its END {label} has no BEGIN"));
            };
            let der = STANDARD
                .decode(text)
                .map_err(|_| format!("its {label} is not base64"))?;
            blocks.push((opened, der));
        } else if let Some((_, text)) = &mut open {
            text.push_str(line);
        }
    }
    Ok(blocks)
}

/// Seconds since the epoch.
fn unix_now() -> u64 {
    crate::limits::now_ms() / 1000
}

/// An access token and how long it lives from when it was got.
pub struct Token {
    pub access_token: String,
    pub lifetime: Duration,
}

impl Credential {
    /// What the log may say of it: the kind and the client, never a secret.
    pub fn describe(&self) -> String {
        match self {
            Credential::ClientSecret { client_id, .. } => format!("client secret of {client_id}"),
            Credential::ClientCertificate { client_id, .. } => {
                format!("certificate of {client_id}")
            }
            Credential::Imds { client_id, .. } => match client_id {
                Some(id) => format!("managed identity {id}"),
                None => "system-assigned managed identity".into(),
            },
            Credential::AppService { client_id, .. } => match client_id {
                Some(id) => format!("managed identity {id} (identity endpoint)"),
                None => "managed identity (identity endpoint)".into(),
            },
            Credential::WorkloadIdentity { client_id, .. } => {
                format!("workload identity {client_id}")
            }
        }
    }

    /// The request that gets a token for `scope`.
    pub fn exchange(&self, scope: &str) -> Result<Exchange, String> {
        // Managed identity endpoints take the resource, not the scope.
        let resource = scope.strip_suffix("/.default").unwrap_or(scope);
        Ok(match self {
            Credential::ClientSecret {
                token_url,
                client_id,
                secret,
            } => Exchange::post_form(
                token_url.clone(),
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id),
                    ("scope", scope),
                    ("client_secret", &secret.0),
                ],
            ),
            Credential::ClientCertificate {
                token_url,
                client_id,
                key,
            } => {
                let assertion = key.assertion(client_id, token_url)?;
                assertion_exchange(token_url, client_id, scope, &assertion)
            }
            Credential::WorkloadIdentity {
                token_url,
                client_id,
                token_file,
            } => {
                let assertion = std::fs::read_to_string(token_file).map_err(|e| {
                    format!(
                        "the federated token file {} cannot be read ({e})",
                        token_file.display()
                    )
                })?;
                assertion_exchange(token_url, client_id, scope, assertion.trim())
            }
            Credential::Imds { url, client_id } => {
                let mut query = vec![("api-version", "2018-02-01"), ("resource", resource)];
                if let Some(id) = client_id {
                    query.push(("client_id", id));
                }
                let mut exchange = Exchange::get(format!("{url}?{}", encode(&query)));
                exchange.headers.push(("Metadata", "true".into()));
                exchange
            }
            Credential::AppService {
                url,
                header,
                client_id,
            } => {
                let mut query = vec![("api-version", "2019-08-01"), ("resource", resource)];
                if let Some(id) = client_id {
                    query.push(("client_id", id));
                }
                let mut exchange = Exchange::get(format!("{url}?{}", encode(&query)));
                exchange
                    .headers
                    .push(("X-IDENTITY-HEADER", header.0.clone()));
                exchange
            }
        })
    }
}

fn assertion_exchange(token_url: &str, client_id: &str, scope: &str, assertion: &str) -> Exchange {
    Exchange::post_form(
        token_url.to_string(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("scope", scope),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
        ],
    )
}

/// A number the endpoints send as a number (Entra) or as a string (managed identity).
#[derive(Deserialize)]
#[serde(untagged)]
enum Seconds {
    Number(u64),
    Text(String),
}

impl Seconds {
    fn get(&self) -> Option<u64> {
        match self {
            Seconds::Number(n) => Some(*n),
            Seconds::Text(t) => t.trim().parse().ok(),
        }
    }
}

#[derive(Deserialize)]
struct Answer {
    access_token: Option<String>,
    expires_in: Option<Seconds>,
    expires_on: Option<Seconds>,
    error: Option<String>,
}

/// A token endpoint's answer, as a token; the error says the status and the endpoint's error
/// code, nothing it was sent.
pub fn read_token(status: u16, body: &[u8]) -> Result<Token, String> {
    let answer: Option<Answer> = serde_json::from_slice(body).ok();
    if !(200..300).contains(&status) {
        let code = answer.and_then(|a| a.error);
        return Err(match code {
            Some(code) if code.len() <= 64 => format!("the endpoint answered {status} ({code})"),
            _ => format!("the endpoint answered {status}"),
        });
    }
    let answer = answer.ok_or("the endpoint's answer is not a token")?;
    let access_token = answer
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or("the endpoint's answer has no access_token")?;
    let lifetime = match (
        answer.expires_in.and_then(|s| s.get()),
        answer.expires_on.and_then(|s| s.get()),
    ) {
        (Some(seconds), _) => seconds,
        (None, Some(at)) => at.saturating_sub(unix_now()),
        (None, None) => return Err("the endpoint's answer says no expiry".into()),
    };
    Ok(Token {
        access_token,
        lifetime: Duration::from_secs(lifetime),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_of_each_endpoint_are_read() {
        let entra = read_token(
            200,
            br#"{"token_type":"Bearer","expires_in":3599,"access_token":"t1"}"#,
        )
        .unwrap();
        assert_eq!(
            (entra.access_token.as_str(), entra.lifetime.as_secs()),
            ("t1", 3599)
        );
        let imds = read_token(200, br#"{"access_token":"t2","expires_in":"86399"}"#).unwrap();
        assert_eq!(imds.lifetime.as_secs(), 86399);
        let on = (unix_now() + 600).to_string();
        let app_service = read_token(
            200,
            format!(r#"{{"access_token":"t3","expires_on":"{on}"}}"#).as_bytes(),
        )
        .unwrap();
        assert!((599..=600).contains(&app_service.lifetime.as_secs()));
    }

    #[test]
    fn refusals_name_the_status_and_code_only() {
        let error = read_token(
            401,
            br#"{"error":"invalid_client","error_description":"AADSTS7000215: secret s3cr3t"}"#,
        )
        .err()
        .unwrap();
        assert_eq!(error, "the endpoint answered 401 (invalid_client)");
        assert!(read_token(200, b"{}").is_err());
    }

    #[test]
    fn a_secret_never_shows_in_debug_output() {
        let credential = Credential::ClientSecret {
            token_url: "https://login/t/oauth2/v2.0/token".into(),
            client_id: "app".into(),
            secret: Secret("s3cr3t".into()),
        };
        assert!(!format!("{credential:?}").contains("s3cr3t"));
        assert!(!credential.describe().contains("s3cr3t"));
    }
}
