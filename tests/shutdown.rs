//! Stopping the gateway: the real binary, a real SIGTERM, calls in flight.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aoai_gateway::sim::{self, Simulator, SimulatorConfig};
use common::{CLIENT_KEY, RawReply, raw_post, run};

const STREAM: &str = r#"{"messages":[{"role":"user","content":"Tell me a story"}],"stream":true}"#;
const CHAT: &str = "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21";

struct Gateway {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// The gateway binary in front of one simulated backend, with the given `shutdown.drain_s` and
/// `shutdown.grace_s`; returns once `/readyz` answers 200.
fn serve(backend: SocketAddr, drain_s: u64, grace_s: u64) -> Gateway {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let dir = std::env::temp_dir().join(format!("aoai-shutdown-{port}"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            r#"listen = "127.0.0.1:{port}"
workers = 1
[shutdown]
drain_s = {drain_s}
grace_s = {grace_s}
[[backends]]
name = "eastus"
endpoint = "http://{backend}"
api_key_env = "SHUTDOWN_TEST_BACKEND_KEY"
[[subscriptions]]
name = "team"
key_env = "SHUTDOWN_TEST_CLIENT_KEY"
"#
        ),
    )
    .expect("config");
    let child = Command::new(env!("CARGO_BIN_EXE_aoai-gateway"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("SHUTDOWN_TEST_BACKEND_KEY", "backend-key")
        .env("SHUTDOWN_TEST_CLIENT_KEY", CLIENT_KEY)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let gateway = Gateway {
        child,
        addr: format!("127.0.0.1:{port}").parse().expect("address"),
    };
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if get_on(&mut None, gateway.addr, "/readyz").is_some_and(|r| r.starts_with("HTTP/1.1 200"))
        {
            return gateway;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the gateway did not become ready");
}

/// `GET path` on `connection` (opened if `None`, kept open for the next call); the response
/// head and body, read up to the end of a `Content-Length` body.
fn get_on(connection: &mut Option<TcpStream>, addr: SocketAddr, path: &str) -> Option<String> {
    if connection.is_none() {
        let stream = TcpStream::connect(addr).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        *connection = Some(stream);
    }
    let stream = connection.as_mut()?;
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: gateway\r\n\r\n").as_bytes())
        .ok()?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&reply).to_ascii_lowercase();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= length {
                break;
            }
        }
    }
    Some(String::from_utf8_lossy(&reply).into_owned())
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// Starts a streaming call and reads its first bytes; the rest is read by `finish`.
fn start_stream(addr: SocketAddr) -> (TcpStream, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream
        .write_all(&raw_post(CHAT, STREAM, "Connection: close\r\n"))
        .expect("write");
    let mut first = vec![0u8; 4096];
    let n = stream.read(&mut first).expect("first bytes");
    first.truncate(n);
    (stream, first)
}

fn finish(mut stream: TcpStream, mut bytes: Vec<u8>) -> RawReply {
    let closed = stream.read_to_end(&mut bytes).is_ok();
    RawReply { bytes, closed }
}

fn wait_for_exit(gateway: &mut Gateway, within: Duration) -> Option<i32> {
    let started = Instant::now();
    while started.elapsed() < within {
        if let Ok(Some(status)) = gateway.child.try_wait() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// A simulated backend on this test's runtime; events `chunk_delay` apart (a story of ~12).
fn backend(chunk_delay: Duration) -> SocketAddr {
    let mut config = SimulatorConfig::new("East US", "backend-key");
    config.chunk_delay = chunk_delay;
    let sim: Arc<Simulator> = Simulator::new(config);
    let (server, addr) =
        sim::start(sim, TcpListener::bind("127.0.0.1:0").expect("bind")).expect("simulator");
    actix_web::rt::spawn(server);
    addr
}

#[test]
fn sigterm_lets_streams_in_flight_finish_and_readyz_says_so_at_once() {
    run(async {
        let backend = backend(Duration::from_millis(120));
        actix_web::rt::task::spawn_blocking(move || {
            let mut gateway = serve(backend, 1, 30);
            let (stream, first) = start_stream(gateway.addr);
            assert!(String::from_utf8_lossy(&first).starts_with("HTTP/1.1 200"));
            let signalled = Instant::now();
            sigterm(&gateway.child);
            std::thread::sleep(Duration::from_millis(200));
            // Draining: not ready, still serving, each connection closed after its answer.
            let ready = get_on(&mut None, gateway.addr, "/readyz").unwrap_or_default();
            assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
            assert!(
                ready.to_ascii_lowercase().contains("connection: close"),
                "{ready}"
            );
            let health = get_on(&mut None, gateway.addr, "/healthz").unwrap_or_default();
            assert!(health.starts_with("HTTP/1.1 200"), "{health}");
            // After `drain_s`: nothing answers a new connection.
            std::thread::sleep(Duration::from_millis(1_200));
            let fresh = get_on(&mut None, gateway.addr, "/healthz");
            assert!(fresh.as_deref().is_none_or(str::is_empty), "{fresh:?}");
            // The stream in flight finishes, complete.
            let reply = finish(stream, first);
            let (body, terminated) = reply.dechunked();
            assert!(terminated, "{}", reply.text());
            assert!(String::from_utf8_lossy(&body).ends_with("data: [DONE]\n\n"));
            assert!(signalled.elapsed() > Duration::from_millis(1_200));
            assert_eq!(
                wait_for_exit(&mut gateway, Duration::from_secs(10)),
                Some(0)
            );
        })
        .await
        .expect("test thread");
    });
}

#[test]
fn without_a_drain_new_connections_stop_at_once() {
    run(async {
        let backend = backend(Duration::from_millis(100));
        actix_web::rt::task::spawn_blocking(move || {
            let mut gateway = serve(backend, 0, 30);
            let (stream, first) = start_stream(gateway.addr);
            sigterm(&gateway.child);
            std::thread::sleep(Duration::from_millis(200));
            let fresh = get_on(&mut None, gateway.addr, "/readyz");
            assert!(fresh.as_deref().is_none_or(str::is_empty), "{fresh:?}");
            let (_, terminated) = finish(stream, first).dechunked();
            assert!(terminated);
            assert_eq!(
                wait_for_exit(&mut gateway, Duration::from_secs(10)),
                Some(0)
            );
        })
        .await
        .expect("test thread");
    });
}

#[test]
fn a_stream_longer_than_the_grace_is_cut_and_the_gateway_exits() {
    run(async {
        let backend = backend(Duration::from_millis(500));
        actix_web::rt::task::spawn_blocking(move || {
            let mut gateway = serve(backend, 0, 1);
            let (stream, first) = start_stream(gateway.addr);
            let signalled = Instant::now();
            sigterm(&gateway.child);
            assert_eq!(wait_for_exit(&mut gateway, Duration::from_secs(5)), Some(0));
            assert!(signalled.elapsed() < Duration::from_secs(3));
            // The client sees a failed stream, not a short complete one.
            let (_, terminated) = finish(stream, first).dechunked();
            assert!(!terminated);
        })
        .await
        .expect("test thread");
    });
}

#[test]
fn sigterm_closes_realtime_sessions_with_1012_rather_than_cutting_them_at_the_grace() {
    run(async {
        use actix_http::ws::{CloseCode, Frame};
        use futures_util::StreamExt;
        let backend = backend(Duration::from_millis(0));
        let mut gateway = actix_web::rt::task::spawn_blocking(move || serve(backend, 0, 30))
            .await
            .expect("the gateway starts");
        let client = awc::Client::default();
        let url = format!(
            "ws://{}/openai/v1/realtime?model=gpt-realtime",
            gateway.addr
        );
        let (_, mut socket) = client
            .ws(url.as_str())
            .header("api-key", CLIENT_KEY)
            .connect()
            .await
            .expect("a session opens");
        let created = socket.next().await.expect("an event").expect("a frame");
        assert!(matches!(created, Frame::Text(_)), "{created:?}");
        let signalled = Instant::now();
        sigterm(&gateway.child);
        let closed = loop {
            let next = actix_web::rt::time::timeout(Duration::from_secs(5), socket.next())
                .await
                .expect("closed within 5 s, not at the 30 s grace");
            match next {
                Some(Ok(Frame::Close(reason))) => break reason,
                Some(Ok(_)) => continue,
                other => panic!("the session ended without a close frame: {other:?}"),
            }
        };
        assert_eq!(closed.map(|r| r.code), Some(CloseCode::Restart));
        let exited = actix_web::rt::task::spawn_blocking(move || {
            wait_for_exit(&mut gateway, Duration::from_secs(15))
        })
        .await
        .expect("waited");
        assert_eq!(exited, Some(0));
        assert!(signalled.elapsed() < Duration::from_secs(15));
    });
}
