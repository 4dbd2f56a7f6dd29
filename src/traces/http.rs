//! The HTTP client the OTLP exporter posts with: one blocking HTTP/1.1 request per batch, on
//! the exporter's own thread, over TCP or TLS (rustls with ring and the webpki roots, which
//! awc already builds). A batch every second at most needs no connection pool, and this keeps
//! a second HTTP stack (reqwest, hyper) out of the gateway.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};

/// The most of a collector's answer that is read (an OTLP partial-success message is small).
const MAX_ANSWER: u64 = 64 * 1024;

#[derive(Clone)]
pub struct Poster {
    timeout: Duration,
    tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for Poster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poster")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Poster {
    pub fn new(timeout: Duration) -> Result<Poster, String> {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Poster {
            timeout,
            tls: Arc::new(tls),
        })
    }

    fn post(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let uri = request.uri();
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(format!("`{uri}` is not an http(s) URL").into()),
        };
        let host = uri.host().ok_or("the endpoint has no host")?.to_string();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut head = format!(
            "{} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            request.method(),
            uri.authority().map_or(host.as_str(), |a| a.as_str()),
            request.body().len()
        );
        for (name, value) in request.headers() {
            if let Ok(value) = value.to_str() {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        head.push_str("\r\n");

        let address = (host.as_str(), port)
            .to_socket_addrs()?
            .next()
            .ok_or("the endpoint's host has no address")?;
        let tcp = TcpStream::connect_timeout(&address, self.timeout)?;
        tcp.set_read_timeout(Some(self.timeout))?;
        tcp.set_write_timeout(Some(self.timeout))?;
        tcp.set_nodelay(true)?;
        let mut answer = Vec::new();
        if tls {
            let name = rustls::pki_types::ServerName::try_from(host)?;
            let connection = rustls::ClientConnection::new(self.tls.clone(), name)?;
            let mut stream = rustls::StreamOwned::new(connection, tcp);
            exchange(&mut stream, head.as_bytes(), request.body(), &mut answer)?;
        } else {
            let mut stream = tcp;
            exchange(&mut stream, head.as_bytes(), request.body(), &mut answer)?;
        }
        parse(&answer)
    }
}

fn exchange(
    stream: &mut (impl Read + Write),
    head: &[u8],
    body: &[u8],
    answer: &mut Vec<u8>,
) -> std::io::Result<()> {
    stream.write_all(head)?;
    stream.write_all(body)?;
    stream.flush()?;
    match stream.take(MAX_ANSWER).read_to_end(answer) {
        Ok(_) => Ok(()),
        // A server that closes without TLS's close_notify has still answered.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !answer.is_empty() => Ok(()),
        Err(e) => Err(e),
    }
}

/// The status and body of an HTTP/1.1 answer read to its connection's close.
fn parse(answer: &[u8]) -> Result<Response<Bytes>, HttpError> {
    let text_end =
        memchr::memmem::find(answer, b"\r\n\r\n").ok_or("no answer from the collector")?;
    let head = std::str::from_utf8(&answer[..text_end])?;
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("the collector's answer has no status")?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    // A chunked body is not decoded: only the status matters to the exporter.
    let body = if chunked {
        Bytes::new()
    } else {
        Bytes::copy_from_slice(&answer[text_end + 4..])
    };
    Ok(Response::builder().status(status).body(body)?)
}

#[async_trait::async_trait]
impl HttpClient for Poster {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        // The exporter runs on a thread of its own (see `export`), where blocking is the point.
        self.post(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_to_their_status() {
        let ok = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi").unwrap();
        assert_eq!(ok.status(), 200);
        assert_eq!(ok.body().as_ref(), b"hi");
        let busy = parse(b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
        assert_eq!(busy.unwrap().status(), 503);
        assert!(parse(b"garbage").is_err());
    }
}
