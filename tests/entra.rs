//! Entra ID on both sides, against a simulated identity provider on loopback: its token
//! endpoint (client secret, certificate assertion, federated token), the instance metadata and
//! App Service identity endpoints, and a JWKS document, all with RSA keys this test generates.
//!
//! Backends with `auth = "entra"` get a bearer token and no `api-key`, one exchange for many
//! calls, refreshed before it expires; a failed refresh fails no call while the token lasts.
//! Callers with a token are accepted when it checks out, counted under the subscription their
//! application or role maps to, and refused with one and the same 401 otherwise, without any
//! backend being called.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use aoai_gateway::config::{
    Audiences, BackendAuth, CredentialKind, EntraCallerConfig, EntraCredentialConfig, FileConfig,
    SubscriptionConfig,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use common::{Backend, CHAT, CLIENT_KEY, Running, Setup, collect, metric, run, start};
use futures_util::future::join_all;
use ring::signature::{
    RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair, RsaPublicKeyComponents,
};
use rsa::RsaPrivateKey;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

const TENANT: &str = "tenant-1";
const SECRET: &str = "client-secret-value-0123456789";
const SCOPE: &str = "https://cognitiveservices.azure.com/.default";
const IDENTITY_HEADER: &str = "identity-header-secret";
const FEDERATED: &str = "federated-service-account-token";
const ISSUER: &str = "https://login.test/tenant-1/v2.0";
const AUDIENCE: &str = "api://aoai-gateway";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// An RSA key of the test's own.
struct Key {
    pair: RsaKeyPair,
    n: Vec<u8>,
    e: Vec<u8>,
    pem: String,
}

impl Key {
    fn new() -> Key {
        let private = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("an RSA key");
        let der = private.to_pkcs8_der().expect("PKCS#8");
        Key {
            pair: RsaKeyPair::from_pkcs8(der.as_bytes()).expect("ring takes it"),
            n: private.n().to_bytes_be(),
            e: private.e().to_bytes_be(),
            pem: private
                .to_pkcs8_pem(LineEnding::LF)
                .expect("PEM")
                .to_string(),
        }
    }

    fn jwk(&self, kid: &str) -> Value {
        json!({"kty": "RSA", "use": "sig", "kid": kid, "n": b64(&self.n), "e": b64(&self.e)})
    }

    /// A JWT with this header and these claims, signed RS256 with this key.
    fn sign(&self, header: &Value, claims: &Value) -> String {
        let signed = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let mut signature = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                signed.as_bytes(),
                &mut signature,
            )
            .expect("signs");
        format!("{signed}.{}", b64(&signature))
    }

    fn verifies(&self, signed: &str, signature: &[u8]) -> bool {
        RsaPublicKeyComponents {
            n: &self.n,
            e: &self.e,
        }
        .verify(&RSA_PKCS1_2048_8192_SHA256, signed.as_bytes(), signature)
        .is_ok()
    }
}

/// The simulated identity provider.
struct Idp {
    lifetime_s: AtomicU64,
    fail: AtomicBool,
    delay_ms: AtomicU64,
    /// The credential kind of each token issued, in order.
    issued: Mutex<Vec<String>>,
    jwks: Mutex<Vec<Value>>,
    jwks_fetches: AtomicUsize,
    /// The certificate credential's key and its certificate's thumbprint.
    certificate: Option<(Key, String)>,
}

fn decode_form(text: &str) -> HashMap<String, String> {
    let unescape = |s: &str| {
        let bytes = s.replace('+', " ").into_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                if let Ok(b) = u8::from_str_radix(hex, 16) {
                    out.push(b);
                    i += 3;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8(out).unwrap_or_default()
    };
    text.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (unescape(k), unescape(v)))
        .collect()
}

impl Idp {
    /// Which credential a token request is from, if it is a right one.
    fn token_request(&self, token_url: &str, form: &HashMap<String, String>) -> Option<String> {
        let get = |k: &str| form.get(k).map(String::as_str);
        if get("grant_type") != Some("client_credentials") || get("scope") != Some(SCOPE) {
            return None;
        }
        let assertion = get("client_assertion").filter(|_| {
            get("client_assertion_type")
                == Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        });
        match (get("client_id"), get("client_secret"), assertion) {
            (Some("app-secret"), Some(SECRET), None) => Some("secret".into()),
            (Some("app-workload"), None, Some(FEDERATED)) => Some("workload".into()),
            (Some("app-cert"), None, Some(jwt)) => {
                let (key, thumbprint) = self.certificate.as_ref()?;
                let (signed, signature) = jwt.rsplit_once('.')?;
                let (header, claims) = signed.split_once('.')?;
                let header: Value =
                    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
                let claims: Value =
                    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).ok()?).ok()?;
                let valid = key.verifies(signed, &URL_SAFE_NO_PAD.decode(signature).ok()?)
                    && header["alg"] == "RS256"
                    && header["x5t"] == thumbprint.as_str()
                    && claims["aud"] == token_url
                    && claims["iss"] == "app-cert"
                    && claims["sub"] == "app-cert"
                    && claims["exp"].as_u64()? > now();
                valid.then(|| "cert".into())
            }
            _ => None,
        }
    }

    fn issue(&self, kind: &str, lifetime_as_text: bool) -> HttpResponse {
        let mut issued = self.issued.lock().unwrap();
        issued.push(kind.to_string());
        let token = format!("entra-{kind}-{}", issued.len());
        let lifetime = self.lifetime_s.load(Ordering::SeqCst);
        let answer = match kind {
            "appservice" => json!({
                "access_token": token, "token_type": "Bearer",
                "expires_on": (now() + lifetime).to_string(), "resource": "https://cognitiveservices.azure.com",
            }),
            _ if lifetime_as_text => json!({
                "access_token": token, "token_type": "Bearer", "expires_in": lifetime.to_string(),
            }),
            _ => json!({"access_token": token, "token_type": "Bearer", "expires_in": lifetime}),
        };
        HttpResponse::Ok().json(answer)
    }
}

async fn idp_handler(req: HttpRequest, body: Bytes, idp: web::Data<Idp>) -> HttpResponse {
    let delay = idp.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        actix_web::rt::time::sleep(Duration::from_millis(delay)).await;
    }
    if req.path() == "/keys" {
        idp.jwks_fetches.fetch_add(1, Ordering::SeqCst);
        return HttpResponse::Ok().json(json!({"keys": *idp.jwks.lock().unwrap()}));
    }
    if idp.fail.load(Ordering::SeqCst) {
        return HttpResponse::ServiceUnavailable().json(json!({
            "error": "temporarily_unavailable", "error_description": "AADSTS50000: try again",
        }));
    }
    let query = decode_form(req.query_string());
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let refused = || HttpResponse::BadRequest().json(json!({"error": "invalid_request"}));
    match req.path() {
        "/tenant-1/oauth2/v2.0/token" => {
            let form = decode_form(std::str::from_utf8(&body).unwrap_or(""));
            let info = req.connection_info();
            let token_url = format!("{}://{}{}", info.scheme(), info.host(), req.path());
            match idp.token_request(&token_url, &form) {
                Some(kind) => idp.issue(&kind, false),
                None => HttpResponse::Unauthorized().json(json!({"error": "invalid_client"})),
            }
        }
        "/metadata/identity/oauth2/token" => {
            let right = header("metadata") == Some("true")
                && query.get("api-version").map(String::as_str) == Some("2018-02-01")
                && query.get("resource").map(String::as_str)
                    == Some("https://cognitiveservices.azure.com")
                && query.get("client_id").map(String::as_str) == Some("mi-client");
            if right {
                idp.issue("imds", true)
            } else {
                refused()
            }
        }
        "/msi/token" => {
            let right = header("x-identity-header") == Some(IDENTITY_HEADER)
                && query.get("api-version").map(String::as_str) == Some("2019-08-01")
                && query.get("resource").map(String::as_str)
                    == Some("https://cognitiveservices.azure.com");
            if right {
                idp.issue("appservice", true)
            } else {
                refused()
            }
        }
        _ => HttpResponse::NotFound().finish(),
    }
}

/// Starts the provider on a thread of its own, as a real one is elsewhere: the gateway's
/// start-up waits for its keys.
fn start_idp(idp: Arc<Idp>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let data = web::Data::from(idp);
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            HttpServer::new(move || {
                App::new()
                    .app_data(data.clone())
                    .default_service(web::to(idp_handler))
            })
            .workers(1)
            .disable_signals()
            .listen(listener)
            .expect("listens")
            .run()
            .await
        })
    });
    format!("http://{addr}")
}

fn idp(lifetime_s: u64, certificate: Option<(Key, String)>) -> Arc<Idp> {
    Arc::new(Idp {
        lifetime_s: AtomicU64::new(lifetime_s),
        fail: AtomicBool::new(false),
        delay_ms: AtomicU64::new(0),
        issued: Mutex::new(Vec::new()),
        jwks: Mutex::new(Vec::new()),
        jwks_fetches: AtomicUsize::new(0),
        certificate,
    })
}

fn credential(kind: CredentialKind) -> EntraCredentialConfig {
    EntraCredentialConfig {
        credential: kind,
        tenant_id: None,
        client_id: None,
        client_secret_env: None,
        client_secret_file: None,
        certificate_file: None,
        authority_host: None,
        identity_endpoint: None,
        token_file: None,
        scope: SCOPE.into(),
    }
}

fn keyless(config: &mut FileConfig, backend: usize, entra: EntraCredentialConfig) {
    let b = &mut config.backends[backend];
    b.auth = BackendAuth::Entra;
    b.api_key_env = None;
    b.entra = Some(entra);
}

fn entra_backend(name: &'static str) -> Backend {
    Backend {
        bearer_prefix: Some("entra-"),
        ..Backend::new(name, "East US")
    }
}

async fn chat(gw: &Running, path: &str) -> (u16, HashMap<String, String>, Bytes) {
    gw.post_json(
        path,
        r#"{"messages":[{"role":"user","content":"Hello"}],"max_tokens":5}"#,
    )
    .await
}

/// A secret-credential backend behind the simulated provider at `url`.
fn secret_setup(url: &str, backends: Vec<Backend>) -> Setup {
    let url = url.to_string();
    Setup {
        backends,
        env: vec![("BACKEND_SECRET".into(), SECRET.into())],
        configure: Some(Box::new(move |c: &mut FileConfig| {
            for i in 0..c.backends.len() {
                keyless(
                    c,
                    i,
                    EntraCredentialConfig {
                        tenant_id: Some(TENANT.into()),
                        client_id: Some("app-secret".into()),
                        client_secret_env: Some("BACKEND_SECRET".into()),
                        authority_host: Some(url.clone()),
                        ..credential(CredentialKind::ClientSecret)
                    },
                );
            }
            c.failover.unreachable_rest_ms = 300;
        })),
        ..Setup::default()
    }
}

#[test]
fn a_keyless_backend_gets_one_token_for_many_concurrent_calls_and_no_api_key() {
    run(async {
        let provider = idp(3600, None);
        // Slow enough that every call arrives before the first token.
        provider.delay_ms.store(300, Ordering::SeqCst);
        let url = start_idp(provider.clone());
        let gw = start(secret_setup(
            &url,
            vec![entra_backend("eastus"), entra_backend("westeurope")],
        ))
        .await;
        let calls = (0..20).map(|_| chat(&gw, CHAT));
        for (status, headers, body) in join_all(calls).await {
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            assert!(
                headers.values().all(|v| !v.contains("entra-")),
                "a token reached the client: {headers:?}"
            );
        }
        // Both backends share the credential, so one exchange served every call.
        assert_eq!(*provider.issued.lock().unwrap(), ["secret"]);
        let recorded = gw.all_recorded();
        assert_eq!(recorded.len(), 20);
        for r in &recorded {
            assert_eq!(r.header("authorization"), Some("Bearer entra-secret-1"));
            assert_eq!(r.header("api-key"), None, "no api-key to a keyless backend");
            assert!(r.headers.iter().all(|(_, v)| !v.contains(CLIENT_KEY)));
        }
        // The status page says the token's state, and never the token or the secret.
        let (_, _, json) = gw.get("/status.json").await;
        let (_, _, page) = gw.get("/status").await;
        let status: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let credential = &status["tiers"][0]["backends"][0]["credential"];
        assert_eq!(credential["kind"], "entra", "{credential}");
        assert!(
            credential["usable_s"].as_u64().is_some_and(|s| s > 3000),
            "{credential}"
        );
        for form in [&json, &page] {
            let text = String::from_utf8_lossy(form);
            assert!(text.contains("client secret of app-secret"));
            for secret in ["entra-secret-1", SECRET, CLIENT_KEY] {
                assert!(!text.contains(secret), "{secret} in the status");
            }
        }
    });
}

#[test]
fn tokens_are_refreshed_before_they_expire_and_a_failed_refresh_fails_no_call() {
    run(async {
        // A 4 s token is refreshed at 2 s and used until 3.6 s.
        let provider = idp(4, None);
        let url = start_idp(provider.clone());
        let gw = start(secret_setup(&url, vec![entra_backend("eastus")])).await;
        let started = Instant::now();
        while provider.issued.lock().unwrap().len() < 2 {
            let (status, _, body) = chat(&gw, CHAT).await;
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            assert!(
                started.elapsed() < Duration::from_millis(3500),
                "no refresh before expiry"
            );
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            started.elapsed() >= Duration::from_millis(1500),
            "refreshed too early"
        );
        let refreshed = Instant::now();
        let (status, _, _) = chat(&gw, CHAT).await;
        assert_eq!(status, 200);
        assert_eq!(
            gw.all_recorded()
                .last()
                .and_then(|r| r.header("authorization").map(str::to_string)),
            Some("Bearer entra-secret-2".into())
        );

        // The provider fails from now on: the refresh due at 2 s from now fails, and calls go on
        // with the current token until it is near its end (3.6 s).
        provider.fail.store(true, Ordering::SeqCst);
        // (Up to 2.5 s: the refresh was seen up to a poll late, and a loaded machine is slow.)
        while refreshed.elapsed() < Duration::from_millis(2500) {
            let (status, _, body) = chat(&gw, CHAT).await;
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(provider.issued.lock().unwrap().len(), 2);

        // Expired, with no new one: the backend counts as unreachable, and the client learns
        // nothing of why.
        actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
        let (status, _, body) = chat(&gw, CHAT).await;
        assert_eq!(status, 502, "{}", String::from_utf8_lossy(&body));
        let text = String::from_utf8_lossy(&body);
        assert!(!text.contains("AADSTS") && !text.contains("entra-") && !text.contains(SECRET));

        // The provider is back: so are the calls.
        provider.fail.store(false, Ordering::SeqCst);
        let back = Instant::now();
        loop {
            let (status, _, _) = chat(&gw, CHAT).await;
            if status == 200 {
                break;
            }
            assert!(back.elapsed() < Duration::from_secs(10), "no token again");
            actix_web::rt::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

/// A fake certificate: the gateway only hashes it (for `x5t`); the provider checks the hash.
fn certificate_pem(key: &Key, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64"))
        .collect();
    format!(
        "{}-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        key.pem,
        lines.join("\n")
    )
}

#[test]
fn managed_identity_workload_identity_and_certificates_get_their_tokens() {
    run(async {
        let certificate_key = Key::new();
        let der: Vec<u8> = (0u8..200).collect();
        let pem = certificate_pem(&certificate_key, &der);
        let thumbprint =
            b64(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &der).as_ref());
        let provider = idp(3600, Some((certificate_key, thumbprint)));
        let url = start_idp(provider.clone());

        let dir = std::env::temp_dir().join(format!("aoai-entra-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let token_file = dir.join("federated-token");
        std::fs::write(&token_file, format!("{FEDERATED}\n")).expect("token file");
        let cert_file = dir.join("cert.pem");
        std::fs::write(&cert_file, pem).expect("cert file");

        let kinds = ["imds", "appservice", "workload", "cert"];
        let (u, cert) = (url.clone(), cert_file.display().to_string());
        let gw = start(Setup {
            backends: kinds.iter().map(|k| entra_backend(k)).collect(),
            env: vec![
                ("IDENTITY_ENDPOINT".into(), format!("{url}/msi/token")),
                ("IDENTITY_HEADER".into(), IDENTITY_HEADER.into()),
                ("AZURE_TENANT_ID".into(), TENANT.into()),
                ("AZURE_CLIENT_ID".into(), "app-workload".into()),
                (
                    "AZURE_FEDERATED_TOKEN_FILE".into(),
                    token_file.display().to_string(),
                ),
                ("AZURE_AUTHORITY_HOST".into(), url.clone()),
            ],
            configure: Some(Box::new(move |c: &mut FileConfig| {
                for (i, kind) in ["imds", "appservice", "workload", "cert"]
                    .iter()
                    .enumerate()
                {
                    c.backends[i].deployments = vec![format!("dep-{kind}")];
                }
                keyless(
                    c,
                    0,
                    EntraCredentialConfig {
                        client_id: Some("mi-client".into()),
                        identity_endpoint: Some(format!("{u}/metadata/identity/oauth2/token")),
                        ..credential(CredentialKind::ManagedIdentity)
                    },
                );
                keyless(c, 1, credential(CredentialKind::ManagedIdentity));
                keyless(c, 2, credential(CredentialKind::WorkloadIdentity));
                keyless(
                    c,
                    3,
                    EntraCredentialConfig {
                        tenant_id: Some(TENANT.into()),
                        client_id: Some("app-cert".into()),
                        certificate_file: Some(cert.clone()),
                        ..credential(CredentialKind::ClientCertificate)
                    },
                );
            })),
            ..Setup::default()
        })
        .await;
        for (i, kind) in kinds.iter().enumerate() {
            let path =
                format!("/openai/deployments/dep-{kind}/chat/completions?api-version=2024-10-21");
            let (status, _, body) = chat(&gw, &path).await;
            assert_eq!(status, 200, "{kind}: {}", String::from_utf8_lossy(&body));
            let recorded = gw.sims[i].recorded();
            let authorization = recorded.last().and_then(|r| r.header("authorization"));
            assert!(
                authorization.is_some_and(|a| a.starts_with(&format!("Bearer entra-{kind}-"))),
                "{kind}: {authorization:?}"
            );
            assert_eq!(recorded.last().and_then(|r| r.header("api-key")), None);
        }
        let mut issued = provider.issued.lock().unwrap().clone();
        issued.sort();
        assert_eq!(issued, ["appservice", "cert", "imds", "workload"]);
        let _ = std::fs::remove_dir_all(&dir);
    });
}

struct Callers {
    gw: Running,
    provider: Arc<Idp>,
    known: Key,
    rotated: Key,
}

async fn callers() -> Callers {
    let (known, rotated) = (Key::new(), Key::new());
    let provider = idp(3600, None);
    provider.jwks.lock().unwrap().push(known.jwk("k1"));
    let url = start_idp(provider.clone());
    let gw = start(Setup {
        configure: Some(Box::new(move |c: &mut FileConfig| {
            c.auth.entra = vec![EntraCallerConfig {
                tenant_id: None,
                issuer: Some(ISSUER.into()),
                audience: Audiences::One(AUDIENCE.into()),
                jwks_url: Some(format!("{url}/keys")),
                authority_host: None,
                applications: BTreeMap::from([("app-search".into(), "team-a".into())]),
                roles: BTreeMap::from([("Gateway.Chat".into(), "team-b".into())]),
                clock_skew_s: 60,
                jwks_refresh_s: 3600,
                jwks_refetch_min_s: 0,
            }];
            // Callers with tokens only: no key.
            c.subscriptions.push(SubscriptionConfig {
                key_env: None,
                ..SubscriptionConfig::with_key_env("team-b", "-")
            });
        })),
        ..Setup::default()
    })
    .await;
    Callers {
        gw,
        provider,
        known,
        rotated,
    }
}

fn claims(changes: Value) -> Value {
    let t = now();
    let mut claims = json!({
        "iss": ISSUER, "aud": AUDIENCE, "iat": t - 10, "nbf": t - 10, "exp": t + 600,
        "azp": "app-search", "ver": "2.0",
    });
    for (k, v) in changes.as_object().expect("an object") {
        claims[k] = v.clone();
    }
    claims
}

async fn with_token(gw: &Running, token: &str) -> (u16, HashMap<String, String>, Bytes) {
    let response = gw
        .client
        .post(gw.url(CHAT))
        .insert_header(("authorization", format!("Bearer {token}")))
        .insert_header(("content-type", "application/json"))
        .send_body(r#"{"messages":[{"role":"user","content":"Hello"}],"max_tokens":5}"#)
        .await
        .expect("gateway answers");
    collect(response).await
}

#[test]
fn callers_with_a_valid_token_are_served_as_their_subscription() {
    run(async {
        let Callers { gw, known, .. } = callers().await;
        let rs256 = json!({"alg": "RS256", "typ": "JWT", "kid": "k1"});
        let app = known.sign(&rs256, &claims(json!({})));
        let (status, _, body) = with_token(&gw, &app).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        // An application without a mapping of its own, with a mapped role; `aud` as a list.
        let role = known.sign(
            &rs256,
            &claims(json!({"azp": "app-other", "roles": ["Reader", "Gateway.Chat"], "aud": ["x", AUDIENCE]})),
        );
        let (status, _, _) = with_token(&gw, &role).await;
        assert_eq!(status, 200);
        let metrics = gw.metrics().await;
        assert_eq!(
            metric(
                &metrics,
                "aoai_gateway_requests_total{subscription=\"team-a\",code=\"200\"}"
            ),
            Some(1)
        );
        assert_eq!(
            metric(
                &metrics,
                "aoai_gateway_requests_total{subscription=\"team-b\",code=\"200\"}"
            ),
            Some(1)
        );
        // The caller's token never reaches a backend: it gets its own key.
        for r in gw.all_recorded() {
            assert_eq!(r.header("authorization"), None);
            assert!(
                r.header("api-key")
                    .is_some_and(|k| k.starts_with("backend-key-"))
            );
        }
    });
}

/// `method` on `path` with an Entra ID token: status and body.
async fn as_caller(
    gw: &Running,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
) -> (u16, Value) {
    let bearer = ("authorization", format!("Bearer {token}"));
    let (status, _, body) = gw.send_as(&gw.base, method, path, bearer, body).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[test]
fn an_entra_caller_uses_the_objects_of_the_subscription_it_maps_to_and_no_others() {
    run(async {
        let Callers { gw, known, .. } = callers().await;
        let rs256 = json!({"alg": "RS256", "typ": "JWT", "kid": "k1"});
        // An application mapped to team-a, whose key also creates objects; a role mapped to
        // team-b.
        let team_a = known.sign(&rs256, &claims(json!({})));
        let team_b = known.sign(
            &rs256,
            &claims(json!({"azp": "app-other", "roles": ["Gateway.Chat"]})),
        );
        let create = r#"{"model":"gpt-4o","input":"hi"}"#;
        let (_, _, by_key) = gw.post_json("/openai/v1/responses", create).await;
        let by_key: Value = serde_json::from_slice(&by_key).unwrap();
        let (status, by_token) =
            as_caller(&gw, "POST", "/openai/v1/responses", &team_b, Some(create)).await;
        assert_eq!(status, 200, "{by_token}");
        let read = |v: &Value| format!("/openai/v1/responses/{}", v["id"].as_str().unwrap());
        // team-a's token reads what team-a's key made; team-b's token does not, and the
        // other way round.
        assert_eq!(
            as_caller(&gw, "GET", &read(&by_key), &team_a, None).await.0,
            200
        );
        assert_eq!(
            as_caller(&gw, "GET", &read(&by_key), &team_b, None).await.0,
            404
        );
        assert_eq!(
            as_caller(&gw, "GET", &read(&by_token), &team_b, None)
                .await
                .0,
            200
        );
        assert_eq!(
            as_caller(&gw, "GET", &read(&by_token), &team_a, None)
                .await
                .0,
            404
        );
        let (status, _, _) = gw.get_with_key(&read(&by_token)).await;
        assert_eq!(status, 404);
        let turn = format!(
            r#"{{"model":"gpt-4o","input":"and?","previous_response_id":"{}"}}"#,
            by_key["id"].as_str().unwrap()
        );
        let (status, refused) =
            as_caller(&gw, "POST", "/openai/v1/responses", &team_b, Some(&turn)).await;
        assert_eq!(status, 404, "{refused}");
        assert_eq!(refused["error"]["param"], "previous_response_id");
    });
}

#[test]
fn wrong_tokens_are_refused_alike_and_no_backend_is_called() {
    run(async {
        let Callers {
            gw,
            provider,
            known,
            rotated,
        } = callers().await;
        let rs256 = json!({"alg": "RS256", "typ": "JWT", "kid": "k1"});
        let t = now();
        let forged = rotated.sign(&rs256, &claims(json!({})));
        let valid = known.sign(&rs256, &claims(json!({})));
        let (head, payload, _) = {
            let mut parts = valid.split('.');
            (
                parts.next().unwrap().to_string(),
                parts.next().unwrap().to_string(),
                (),
            )
        };
        let none_header = b64(br#"{"alg":"none","kid":"k1"}"#);
        let hs256_header = b64(br#"{"alg":"HS256","kid":"k1"}"#);
        let cases = [
            ("wrong signature", forged),
            (
                "wrong audience",
                known.sign(&rs256, &claims(json!({"aud": "api://other"}))),
            ),
            (
                "wrong issuer",
                known.sign(
                    &rs256,
                    &claims(json!({"iss": "https://login.test/evil/v2.0"})),
                ),
            ),
            (
                "expired",
                known.sign(&rs256, &claims(json!({"exp": t - 120}))),
            ),
            (
                "not yet valid",
                known.sign(&rs256, &claims(json!({"nbf": t + 120}))),
            ),
            (
                "no expiry",
                known.sign(
                    &rs256,
                    &json!({"iss": ISSUER, "aud": AUDIENCE, "azp": "app-search"}),
                ),
            ),
            (
                "unmapped application",
                known.sign(&rs256, &claims(json!({"azp": "app-unknown"}))),
            ),
            ("alg none", format!("{none_header}.{payload}.")),
            (
                "alg HS256",
                format!("{hs256_header}.{payload}.{}", b64(b"mac")),
            ),
            (
                "payload swapped",
                format!(
                    "{head}.{}.{}",
                    b64(claims(json!({"azp": "x"})).to_string().as_bytes()),
                    valid.rsplit('.').next().unwrap()
                ),
            ),
        ];
        let mut bodies = Vec::new();
        for (case, token) in &cases {
            let (status, headers, body) = with_token(&gw, token).await;
            assert_eq!(status, 401, "{case}: {}", String::from_utf8_lossy(&body));
            assert_eq!(
                headers.get("www-authenticate").map(String::as_str),
                Some("Bearer")
            );
            let mut error: Value = serde_json::from_slice(&body).expect("Azure's error shape");
            // The one part that differs: each call's id.
            error["error"]
                .as_object_mut()
                .and_then(|e| e.remove("request_id"))
                .expect("a request id");
            bodies.push(error);
        }
        assert!(
            bodies.windows(2).all(|w| w[0] == w[1]),
            "refusals differ: {bodies:?}"
        );
        assert_eq!(bodies[0]["error"]["code"], "401");
        assert!(
            gw.all_recorded().is_empty(),
            "a refused caller reached a backend"
        );

        // A key the set lacks: the set is fetched again, still lacks it, and the token is
        // refused; once the issuer has rotated it in, the same token is accepted.
        let rotated_header = json!({"alg": "RS256", "typ": "JWT", "kid": "k2"});
        let token = rotated.sign(&rotated_header, &claims(json!({})));
        let fetches = provider.jwks_fetches.load(Ordering::SeqCst);
        let (status, _, _) = with_token(&gw, &token).await;
        assert_eq!(status, 401);
        assert_eq!(provider.jwks_fetches.load(Ordering::SeqCst), fetches + 1);
        provider.jwks.lock().unwrap().push(rotated.jwk("k2"));
        let (status, _, body) = with_token(&gw, &token).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(gw.all_recorded().len(), 1);
    });
}

#[test]
fn an_issuer_whose_keys_cannot_be_fetched_stops_start_up_with_a_clear_error() {
    run(async {
        let dead = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a port");
        let mut config: FileConfig = toml::from_str(&format!(
            r#"
            [[backends]]
            name = "eastus"
            endpoint = "http://127.0.0.1:1"
            api_key_env = "K"
            [[subscriptions]]
            name = "team-a"
            [[auth.entra]]
            issuer = "{ISSUER}"
            audience = "{AUDIENCE}"
            jwks_url = "http://{dead}/keys"
            applications = {{ "app-search" = "team-a" }}
            "#
        ))
        .expect("parses");
        config.workers = Some(1);
        let env = HashMap::from([("K".to_string(), "k".to_string())]);
        let settings = config
            .check("gw.toml", &env, &["2024-10-21"])
            .expect("valid");
        let started = aoai_gateway::proxy::start(
            Arc::new(aoai_gateway::live::Live::new(
                aoai_gateway::proxy::Gateway::new(settings).expect("gateway"),
                None,
            )),
            TcpListener::bind("127.0.0.1:0").expect("bind"),
            false,
        );
        let error = started.err().expect("start-up fails").to_string();
        assert!(error.contains(&format!("http://{dead}/keys")), "{error}");
    });
}

#[test]
#[ignore = "needs the Python venv with the openai SDK: scripts/test.sh runs it"]
fn the_openai_sdk_with_an_azure_ad_token_provider_works_through_the_gateway() {
    run(async {
        let Callers {
            gw, known, rotated, ..
        } = callers().await;
        let rs256 = json!({"alg": "RS256", "typ": "JWT", "kid": "k1"});
        let good = known.sign(&rs256, &claims(json!({})));
        let bad = rotated.sign(&rs256, &claims(json!({})));
        let output = common::script(
            "sdk_entra.py",
            &[],
            &gw.base,
            "",
            &[("GATEWAY_TOKEN", &good), ("GATEWAY_BAD_TOKEN", &bad)],
        )
        .await;
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let summary: Value = serde_json::from_slice(&output.stdout).expect("one JSON line");
        assert!(
            summary["chat"].as_str().is_some_and(|c| !c.is_empty()),
            "{summary}"
        );
        assert!(
            summary["usage"].as_u64().is_some_and(|u| u > 0),
            "{summary}"
        );
        assert!(
            summary["streamed"].as_str().is_some_and(|s| !s.is_empty()),
            "{summary}"
        );
        assert_eq!(summary["refused"], json!({"status": 401, "code": "401"}));
        let metrics = gw.metrics().await;
        assert_eq!(
            metric(
                &metrics,
                "aoai_gateway_requests_total{subscription=\"team-a\",code=\"200\"}"
            ),
            Some(2)
        );
    });
}
