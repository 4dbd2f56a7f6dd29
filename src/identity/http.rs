//! The identity thread's HTTP: one request to a token or key endpoint, its answer read whole.
//!
//! Written with awc (the gateway's client) rather than an Azure SDK crate: those bring an HTTP
//! stack and runtime of their own, and what the gateway needs of them is a form POST or a GET
//! and a JSON answer.

use std::time::Duration;

use awc::http::Method;
use bytes::Bytes;

/// The longest answer a token or key endpoint may give.
const MAX_ANSWER: usize = 1 << 20;

/// One request to an identity endpoint.
pub struct Exchange {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    /// An `application/x-www-form-urlencoded` body.
    pub form: Option<String>,
}

impl Exchange {
    pub fn get(url: String) -> Exchange {
        Exchange {
            method: Method::GET,
            url,
            headers: Vec::new(),
            form: None,
        }
    }

    pub fn post_form(url: String, form: &[(&str, &str)]) -> Exchange {
        Exchange {
            method: Method::POST,
            url,
            headers: Vec::new(),
            form: Some(encode(form)),
        }
    }
}

/// A client for the identity thread (an actix system of its own).
pub fn client(timeout: Duration) -> awc::Client {
    // rustls needs a process-wide crypto provider; the gateway's may not be installed yet.
    let _ = rustls::crypto::ring::default_provider().install_default();
    awc::Client::builder()
        .timeout(timeout)
        .disable_redirects()
        .finish()
}

/// Sends the exchange; the status and body of the answer. The error names what failed, never
/// what was sent (it may hold a secret).
pub async fn fetch(client: &awc::Client, exchange: &Exchange) -> Result<(u16, Bytes), String> {
    let mut request = client.request(exchange.method.clone(), exchange.url.as_str());
    for (name, value) in &exchange.headers {
        request = request.insert_header((*name, value.as_str()));
    }
    let sent = match &exchange.form {
        Some(form) => {
            request
                .content_type("application/x-www-form-urlencoded")
                .send_body(form.clone())
                .await
        }
        None => request.send().await,
    };
    let mut response = sent.map_err(|e| format!("no answer ({e})"))?;
    let body = response
        .body()
        .limit(MAX_ANSWER)
        .await
        .map_err(|e| format!("the answer could not be read ({e})"))?;
    Ok((response.status().as_u16(), body))
}

/// `a=1&b=2`, each part percent-encoded but for RFC 3986's unreserved characters.
pub fn encode(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        escape_into(&mut out, name);
        out.push('=');
        escape_into(&mut out, value);
    }
    out
}

fn escape_into(out: &mut String, text: &str) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_escape_all_but_unreserved_characters() {
        assert_eq!(
            encode(&[
                ("scope", "https://cognitiveservices.azure.com/.default"),
                ("a b", "x&y=z~")
            ]),
            "scope=https%3A%2F%2Fcognitiveservices.azure.com%2F.default&a%20b=x%26y%3Dz~"
        );
    }
}
