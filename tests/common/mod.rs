//! The test harness: simulated Azure OpenAI resources that record what they receive, and the
//! gateway in front of them, all on 127.0.0.1 with ports the OS picks.

#![allow(dead_code)]

pub mod browser;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::TcpListener;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use actix_web::rt::System;
use aoai_gateway::config::{
    BackendConfig, DocsConfig, FileConfig, StateConfig, SubscriptionConfig,
};
use aoai_gateway::live::Live;
use aoai_gateway::proxy::{self, Gateway};
use aoai_gateway::sim::{self, Simulator, SimulatorConfig};
use bytes::Bytes;

pub const CLIENT_KEY: &str = "client-secret-key";
/// A realtime WebSocket, as awc's client holds it.
pub type Socket = actix_codec::Framed<awc::BoxedSocket, actix_http::ws::Codec>;
pub const CHAT: &str = "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21";

pub struct Backend {
    pub name: &'static str,
    pub region: &'static str,
    pub key: String,
    pub deployment_map: BTreeMap<String, String>,
    /// Point the gateway at a port nobody listens on.
    pub dead: bool,
    /// The simulated resource's quota per deployment (see `sim::quota`).
    pub tokens_per_minute: Option<u64>,
    /// The `retry-after` of its `rate-limited` deployment.
    pub rate_limited_retry_after: Duration,
    /// Entra ID tokens it takes (those starting with this), besides its key.
    pub bearer_prefix: Option<&'static str>,
}

impl Backend {
    pub fn new(name: &'static str, region: &'static str) -> Backend {
        Backend {
            name,
            region,
            key: format!("backend-key-{name}-0123456789"),
            deployment_map: BTreeMap::new(),
            dead: false,
            tokens_per_minute: None,
            rate_limited_retry_after: Duration::from_secs(7),
            bearer_prefix: None,
        }
    }
}

/// A change to the gateway's config that needs the test's values.
pub type Configure = Box<dyn Fn(&mut FileConfig)>;

pub struct Setup {
    pub backends: Vec<Backend>,
    pub max_body_bytes: usize,
    pub response_ms: u64,
    pub chunk_delay: Duration,
    pub docs: DocsConfig,
    /// Changes the gateway's config before it is checked.
    pub tweak: fn(&mut FileConfig),
    /// Gateways started with the same config, as replicas of one another (at least 1).
    pub replicas: usize,
    /// Their shared state (`[state]`).
    pub state: StateConfig,
    /// Environment variables the config is checked with, besides the keys.
    pub env: Vec<(String, String)>,
    /// Like `tweak`, for changes that need the test's values (run after it).
    pub configure: Option<Configure>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            backends: vec![
                Backend::new("eastus", "East US"),
                Backend::new("westeurope", "West Europe"),
            ],
            max_body_bytes: 1 << 20,
            response_ms: 10_000,
            chunk_delay: Duration::from_millis(0),
            docs: DocsConfig::default(),
            tweak: |_| {},
            replicas: 1,
            state: StateConfig::default(),
            env: Vec::new(),
            configure: None,
        }
    }
}

pub struct Running {
    /// `http://127.0.0.1:port`, of the first replica.
    pub base: String,
    /// Every replica's.
    pub bases: Vec<String>,
    /// `127.0.0.1:port`
    pub addr: std::net::SocketAddr,
    pub sims: Vec<Arc<Simulator>>,
    /// Each live simulated resource's own URL, `http://127.0.0.1:port`, to call it directly.
    pub sim_urls: Vec<String>,
    pub keys: Vec<String>,
    pub client: awc::Client,
    /// Each replica's server, to stop it.
    pub servers: Vec<actix_web::dev::ServerHandle>,
    /// Each live simulated resource's server, to take it down.
    pub sim_servers: Vec<actix_web::dev::ServerHandle>,
    /// What the replicas were started with, to start them again.
    config: FileConfig,
    env: HashMap<String, String>,
}

impl Running {
    /// Stops every replica and starts them again with the same config, in front of the same
    /// backends, as a restart does; `base` and `bases` change.
    pub async fn restart(&mut self) {
        for server in self.servers.drain(..) {
            server.stop(true).await;
        }
        // The workers let go of the gateway once they have stopped.
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
        let (servers, bases) = replicas(&self.config, &self.env, self.bases.len()).await;
        self.servers = servers;
        self.base = bases[0].clone();
        self.bases = bases;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn all_recorded(&self) -> Vec<aoai_gateway::sim::Recorded> {
        self.sims.iter().flat_map(|s| s.recorded()).collect()
    }

    /// GET without a key; status, headers and body.
    pub async fn get(&self, path: &str) -> (u16, HashMap<String, String>, Bytes) {
        collect(
            self.client
                .get(self.url(path))
                .send()
                .await
                .expect("gateway answers"),
        )
        .await
    }

    /// GET with the client's key; status, headers and body.
    pub async fn get_with_key(&self, path: &str) -> (u16, HashMap<String, String>, Bytes) {
        collect(
            self.client
                .get(self.url(path))
                .insert_header(("api-key", CLIENT_KEY))
                .send()
                .await
                .expect("gateway answers"),
        )
        .await
    }

    /// The gateway's `/metrics` text.
    pub async fn metrics(&self) -> String {
        let (_, _, body) = self.get("/metrics").await;
        String::from_utf8_lossy(&body).into_owned()
    }

    /// `method` on `path` with the subscription key `key` and a JSON body, if any.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        key: &str,
        json: Option<&str>,
    ) -> (u16, HashMap<String, String>, Bytes) {
        self.send_as(&self.base, method, path, ("api-key", key.into()), json)
            .await
    }

    /// `method` on `path` of the replica at `base`, with the credential header `credential`
    /// (`api-key`, or `authorization` with a token) and a JSON body, if any.
    pub async fn send_as(
        &self,
        base: &str,
        method: &str,
        path: &str,
        credential: (&'static str, String),
        json: Option<&str>,
    ) -> (u16, HashMap<String, String>, Bytes) {
        let method = actix_web::http::Method::from_bytes(method.as_bytes()).expect("a method");
        let request = self
            .client
            .request(method, format!("{base}{path}"))
            .insert_header(credential);
        let response = match json {
            Some(body) => {
                request
                    .insert_header(("content-type", "application/json"))
                    .send_body(body.to_string())
                    .await
            }
            None => request.send().await,
        };
        collect(response.expect("gateway answers")).await
    }

    /// Runs a conformance script (see [`script`]) and insists it succeeded: its summary line.
    pub async fn script_summary(
        &self,
        name: &str,
        args: &[&str],
        key: &str,
        env: &[(&str, &str)],
    ) -> serde_json::Value {
        let output = script(name, args, &self.base, key, env).await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{name} failed:\n{}\n{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_str(stdout.trim()).expect("a summary line")
    }

    /// Uploads `form` (multipart, with `boundary`) to `POST /openai/v1/files` with the
    /// subscription key `key`: status and body.
    pub async fn upload(&self, key: &str, boundary: &str, form: String) -> (u16, Bytes) {
        let response = self
            .client
            .post(self.url("/openai/v1/files"))
            .insert_header(("api-key", key))
            .insert_header((
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            ))
            .send_body(form)
            .await
            .expect("gateway answers");
        let (status, _, body) = collect(response).await;
        (status, body)
    }

    /// Opens a realtime WebSocket at `path` (with its query) of the replica at `base`, with
    /// these headers and subprotocols: the `101`'s headers and the socket, or the refusal's
    /// status.
    pub async fn socket(
        &self,
        base: &str,
        path: &str,
        headers: &[(&str, &str)],
        protocols: &[&str],
    ) -> Result<(awc::http::header::HeaderMap, Socket), u16> {
        let url = format!("{}{path}", base.replacen("http://", "ws://", 1));
        let mut request = self.client.ws(url.as_str()).max_frame_size(16 << 20);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if !protocols.is_empty() {
            request = request.protocols(protocols);
        }
        match request.connect().await {
            Ok((response, socket)) => Ok((response.headers().clone(), socket)),
            Err(awc::error::WsClientError::InvalidResponseStatus(status)) => Err(status.as_u16()),
            Err(other) => panic!("handshake failed: {other}"),
        }
    }

    pub async fn post_json(&self, path: &str, body: &str) -> (u16, HashMap<String, String>, Bytes) {
        let response = self
            .client
            .post(self.url(path))
            .insert_header(("api-key", CLIENT_KEY))
            .insert_header(("content-type", "application/json"))
            .send_body(body.to_string())
            .await;
        collect(response.expect("gateway answers")).await
    }
}

pub async fn collect(
    mut response: awc::ClientResponse<
        impl futures_util::Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin,
    >,
) -> (u16, HashMap<String, String>, Bytes) {
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = response.body().limit(64 << 20).await.expect("body");
    (response.status().as_u16(), headers, body)
}

pub async fn start(setup: Setup) -> Running {
    let mut env = HashMap::new();
    env.insert("CLIENT_KEY".to_string(), CLIENT_KEY.to_string());
    let mut sims = Vec::new();
    let mut sim_urls = Vec::new();
    let mut sim_servers = Vec::new();
    let mut keys = Vec::new();
    let mut backends = Vec::new();
    for b in setup.backends {
        let endpoint = if b.dead {
            // Bound and dropped: nothing listens there any more.
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("free port");
            format!("http://127.0.0.1:{port}")
        } else {
            let mut config = SimulatorConfig::new(b.region, &b.key);
            config.record = true;
            config.chunk_delay = setup.chunk_delay;
            config.slow_delay = Duration::from_secs(5);
            config.tokens_per_minute = b.tokens_per_minute;
            config.rate_limited_retry_after = b.rate_limited_retry_after;
            config.bearer_prefix = b.bearer_prefix.map(str::to_string);
            let sim = Simulator::new(config);
            let (server, addr) =
                sim::start(sim.clone(), TcpListener::bind("127.0.0.1:0").expect("bind"))
                    .expect("simulator starts");
            sim_servers.push(server.handle());
            actix_web::rt::spawn(server);
            sims.push(sim);
            sim_urls.push(format!("http://{addr}"));
            format!("http://{addr}")
        };
        let key_env = format!("{}_KEY", b.name.to_ascii_uppercase());
        env.insert(key_env.clone(), b.key.clone());
        keys.push(b.key);
        let mut backend = BackendConfig::new(b.name, &endpoint, &key_env);
        backend.region = b.region.into();
        backend.deployment_map = b.deployment_map;
        backends.push(backend);
    }
    let mut config: FileConfig = toml::from_str("").expect("defaults");
    config.workers = Some(1);
    config.limits.max_body_bytes = setup.max_body_bytes;
    config.timeouts.response_ms = setup.response_ms;
    config.backends = backends;
    config.docs = setup.docs;
    config.subscriptions = vec![SubscriptionConfig::with_key_env("team-a", "CLIENT_KEY")];
    config.state = setup.state;
    (setup.tweak)(&mut config);
    if let Some(configure) = &setup.configure {
        configure(&mut config);
    }
    env.extend(setup.env);
    let (servers, bases) = replicas(&config, &env, setup.replicas.max(1)).await;
    let addr = bases[0]
        .trim_start_matches("http://")
        .parse()
        .expect("an address");
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    Running {
        base: bases[0].clone(),
        bases,
        addr,
        sims,
        sim_urls,
        keys,
        client,
        servers,
        sim_servers,
        config,
        env,
    }
}

/// A gateway for `config`. After a restart, the stopped gateway's threads may hold its object
/// directory's file a moment longer on a busy machine (as a stopping process would): its lock
/// is waited for, up to five seconds.
async fn gateway_when_free(
    config: &FileConfig,
    env: &HashMap<String, String>,
    versions: &[&str],
) -> Gateway {
    let started = std::time::Instant::now();
    loop {
        let settings = config.check("test", env, versions).expect("valid config");
        match Gateway::new(settings) {
            Ok(gateway) => return gateway,
            Err(why) if why.contains("Cannot acquire lock") && started.elapsed().as_secs() < 5 => {
                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            }
            Err(why) => panic!("gateway: {why}"),
        }
    }
}

/// Starts `n` gateways with `config`, as replicas of one another: their servers and URLs.
async fn replicas(
    config: &FileConfig,
    env: &HashMap<String, String>,
    n: usize,
) -> (Vec<actix_web::dev::ServerHandle>, Vec<String>) {
    let versions: Vec<&str> = aoai_gateway::generated::API_VERSIONS
        .iter()
        .map(|v| v.version)
        .collect();
    let mut servers = Vec::new();
    let mut bases = Vec::new();
    for _ in 0..n {
        let gateway = gateway_when_free(config, env, &versions).await;
        let (server, addr) = proxy::start(
            Arc::new(Live::new(gateway, None)),
            TcpListener::bind("127.0.0.1:0").expect("bind"),
            false,
        )
        .expect("gateway starts");
        servers.push(server.handle());
        actix_web::rt::spawn(server);
        bases.push(format!("http://{addr}"));
    }
    (servers, bases)
}

/// The interpreter of the virtualenv with the test's Python packages (the openai SDK,
/// schemathesis), which the README's test command creates: `AOAI_TEST_PYTHON`, or
/// `.venv/bin/python`.
pub fn python() -> std::path::PathBuf {
    let path = std::env::var_os("AOAI_TEST_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python"))
        });
    assert!(
        path.exists(),
        "{} not found: this test needs the Python packages of tests/conformance/requirements.txt \
         in a virtualenv. Run scripts/test.sh, or: python3 -m venv .venv && \
         .venv/bin/pip install -r tests/conformance/requirements.txt",
        path.display()
    );
    path
}

/// Runs `tests/conformance/<name>` with `args` against the gateway at `base` with the
/// subscription key `key` (`GATEWAY_ENDPOINT`, `GATEWAY_KEY`) and `env`.
pub async fn script(
    name: &str,
    args: &[&str],
    base: &str,
    key: &str,
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut command = std::process::Command::new(python());
    command
        .arg(format!(
            "{}/tests/conformance/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .args(args)
        .env("GATEWAY_ENDPOINT", base)
        .env("GATEWAY_KEY", key);
    for (k, v) in env {
        command.env(k, v);
    }
    actix_web::rt::task::spawn_blocking(move || command.output())
        .await
        .expect("runner")
        .expect("python starts")
}

pub fn run<F: std::future::Future<Output = ()>>(test: F) {
    System::new().block_on(test);
}

/// The value of the metric line that starts with `line_start` (name and labels).
pub fn metric(text: &str, line_start: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// `aoai_gateway_tokens_total` for a subscription, deployment, kind and source, over backends.
pub fn tokens(text: &str, subscription: &str, deployment: &str, kind: &str, source: &str) -> u64 {
    let wanted = [
        format!("subscription=\"{subscription}\""),
        format!("deployment=\"{deployment}\""),
        format!("kind=\"{kind}\""),
        format!("source=\"{source}\""),
    ];
    text.lines()
        .filter(|l| l.starts_with("aoai_gateway_tokens_total{"))
        .filter(|l| wanted.iter().all(|w| l.contains(w.as_str())))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

pub fn error_code(body: &Bytes) -> String {
    let v: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("JSON error body, got {}", String::from_utf8_lossy(body)));
    v["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("Azure error shape, got {v}"))
        .to_string()
}

/// What a raw HTTP/1.x exchange gave back: everything the gateway wrote until it closed the
/// connection (or `timeout` passed), and whether it closed it.
pub struct RawReply {
    pub bytes: Vec<u8>,
    pub closed: bool,
}

impl RawReply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    pub fn status(&self) -> u16 {
        self.text()
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    pub fn head(&self) -> String {
        let text = self.text();
        text.split("\r\n\r\n")
            .next()
            .unwrap_or("")
            .to_ascii_lowercase()
    }

    /// The body of a chunked response, and whether it ended with the terminating chunk.
    pub fn dechunked(&self) -> (Vec<u8>, bool) {
        let start = self
            .bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(self.bytes.len(), |i| i + 4);
        let mut rest = &self.bytes[start..];
        let mut body = Vec::new();
        loop {
            let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") else {
                return (body, false);
            };
            let size = std::str::from_utf8(&rest[..line_end])
                .ok()
                .and_then(|s| usize::from_str_radix(s.trim(), 16).ok());
            let Some(size) = size else {
                return (body, false);
            };
            rest = &rest[line_end + 2..];
            if size == 0 {
                return (body, rest.starts_with(b"\r\n"));
            }
            if rest.len() < size + 2 {
                body.extend_from_slice(&rest[..rest.len().min(size)]);
                return (body, false);
            }
            body.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
    }
}

/// Writes `request` as it is and reads until the gateway closes the connection or `timeout`
/// passes; on a blocking thread, so the gateway keeps running on the test's runtime.
pub async fn raw_exchange(
    addr: std::net::SocketAddr,
    request: Vec<u8>,
    timeout: Duration,
) -> RawReply {
    actix_web::rt::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(timeout)).expect("timeout");
        stream.write_all(&request).expect("write");
        let mut bytes = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        let started = std::time::Instant::now();
        let closed = loop {
            match stream.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            }
            if started.elapsed() > timeout {
                break false;
            }
        };
        RawReply { bytes, closed }
    })
    .await
    .expect("raw client")
}

/// A POST of a JSON body with the client's key, as raw HTTP/1.1 bytes.
pub fn raw_post(path: &str, body: &str, extra_headers: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: gateway\r\napi-key: {CLIENT_KEY}\r\n\
         Content-Type: application/json\r\n{extra_headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Access records, as JSON lines, from every gateway in this test binary.
pub struct Log(Arc<Mutex<Vec<u8>>>);

impl Log {
    /// The access record of the call with this id (waiting a little for it to be written).
    pub fn record(&self, id: &str) -> serde_json::Value {
        for _ in 0..100 {
            let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
            let found = text
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|v| v["target"] == "access" && v["request_id"] == id);
            if let Some(found) = found {
                return found;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("no access record for {id}");
    }
}

#[derive(Clone)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs, once, a subscriber that keeps every access record as JSON.
pub fn capture_log() -> Log {
    static SINK: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    let sink = SINK.get_or_init(|| {
        let sink = Arc::new(Mutex::new(Vec::new()));
        let writer = Sink(sink.clone());
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_writer(move || writer.clone())
            .with_env_filter("access=info")
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
        sink
    });
    Log(sink.clone())
}
