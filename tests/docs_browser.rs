//! The route docs in a real browser: headless Chromium loads `/docs` from a running gateway, the
//! rendered DOM must show the operations, the filter script must run, and a screenshot is
//! written to `target/docs-screenshot.png` for a person to look at. Then, driven through the
//! DevTools protocol, the "Try it" panels call the gateway as a person would: fill, send, read
//! what the page shows.
//!
//! Chromium is found as `common::browser` says.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use aoai_gateway::generated::API_VERSIONS;
use common::browser::{chromium, headless};
use common::{Setup, run, start};

#[test]
#[ignore = "needs Chromium: scripts/test.sh installs it and runs this"]
fn chromium_renders_the_docs() {
    run(async {
        let gw = start(Setup::default()).await;
        let preview = format!("{}/docs/2024-09-01-preview.html", gw.base);

        let url = preview.clone();
        let dom =
            actix_web::rt::task::spawn_blocking(move || headless(&["--dump-dom".into(), url]))
                .await
                .expect("runner");
        let html = String::from_utf8_lossy(&dom.stdout).into_owned();
        assert!(
            html.contains("</html>"),
            "no DOM from Chromium: {}",
            String::from_utf8_lossy(&dom.stderr)
        );
        let api = API_VERSIONS
            .iter()
            .find(|v| v.version == "2024-09-01-preview")
            .expect("preview");
        for route in api.routes {
            assert!(
                html.contains(&format!(r#"id="op-{}""#, route.operation_id)),
                "{} not rendered",
                route.operation_id
            );
        }
        assert!(
            html.contains("/openai/threads/{thread_id}/runs"),
            "base path filled in"
        );

        // The filter script runs in the browser: `?q=` hides what does not match.
        let url = format!("{preview}?q=vector_stores");
        let dom =
            actix_web::rt::task::spawn_blocking(move || headless(&["--dump-dom".into(), url]))
                .await
                .expect("runner");
        let html = String::from_utf8_lossy(&dom.stdout).into_owned();
        assert!(
            html.contains(r#"class="op hidden" id="op-Create_Assistant""#),
            "the filter did not hide assistants"
        );
        assert!(
            html.contains(r#"class="op" id="op-Create_Vector_Store""#),
            "the filter hid a match"
        );

        let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/docs-screenshot.png");
        let _ = std::fs::remove_file(&shot);
        let args = vec![
            format!("--screenshot={}", shot.display()),
            "--window-size=1400,1600".into(),
            preview,
        ];
        let out = actix_web::rt::task::spawn_blocking(move || headless(&args))
            .await
            .expect("runner");
        let png = std::fs::read(&shot)
            .unwrap_or_else(|_| panic!("no screenshot: {}", String::from_utf8_lossy(&out.stderr)));
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 20_000,
            "screenshot of {} bytes",
            png.len()
        );
    });
}

/// A headless Chromium driven through the DevTools protocol, for a test that clicks.
struct Browser {
    child: std::process::Child,
    profile: PathBuf,
    socket: actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>,
    next_id: u64,
}

impl Browser {
    async fn start() -> Browser {
        let profile =
            std::env::temp_dir().join(format!("aoai-try-chromium-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        let child = Command::new(chromium())
            .args(common::browser::QUIET)
            .arg("--remote-debugging-port=0")
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromium starts");
        // Chromium writes the port it chose into the profile.
        let port_file = profile.join("DevToolsActivePort");
        let mut port = None;
        for _ in 0..300 {
            if let Some(p) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|s| s.lines().next().and_then(|l| l.parse::<u16>().ok()))
            {
                port = Some(p);
                break;
            }
            actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let port = port.expect("Chromium opened its DevTools port");
        let client = awc::Client::default();
        let mut list = client
            .get(format!("http://127.0.0.1:{port}/json/list"))
            .send()
            .await
            .expect("DevTools answers");
        let targets: serde_json::Value = list.json().await.expect("target list");
        let page = targets
            .as_array()
            .and_then(|t| t.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page")
            .to_string();
        let (_, socket) = client
            .ws(page)
            .max_frame_size(16 << 20)
            .connect()
            .await
            .expect("DevTools socket");
        Browser {
            child,
            profile,
            socket,
            next_id: 0,
        }
    }

    async fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        use futures_util::{SinkExt, StreamExt};
        self.next_id += 1;
        let id = self.next_id;
        let message = serde_json::json!({"id": id, "method": method, "params": params});
        self.socket
            .send(awc::ws::Message::Text(message.to_string().into()))
            .await
            .expect("sent");
        // Events arrive in between: skip to the answer.
        while let Some(frame) = self.socket.next().await {
            if let Ok(awc::ws::Frame::Text(text)) = frame {
                let answer: serde_json::Value = serde_json::from_slice(&text).expect("JSON");
                if answer["id"] == id {
                    assert!(answer.get("error").is_none(), "{method}: {answer}");
                    return answer["result"].clone();
                }
            }
        }
        panic!("DevTools closed the socket")
    }

    /// Evaluates `expression` in the page and returns its value.
    async fn eval(&mut self, expression: &str) -> serde_json::Value {
        let result = self
            .call(
                "Runtime.evaluate",
                serde_json::json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression}: {result}"
        );
        result["result"]["value"].clone()
    }

    async fn open(&mut self, url: &str) {
        self.call("Page.navigate", serde_json::json!({ "url": url }))
            .await;
        for _ in 0..200 {
            if self
                .eval("document.readyState === 'complete' && !!document.querySelector('.try')")
                .await
                == true
            {
                return;
            }
            actix_web::rt::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("{url} did not load");
    }

    /// Fills the "Try it" panel of operation `id` (`fields`: `data-name` → value; `body`),
    /// sends it, and returns (status, headers, bodies shown while it was sending, final body).
    async fn try_it(
        &mut self,
        id: &str,
        key: &str,
        fields: &[(&str, &str)],
        body: Option<&str>,
    ) -> (String, String, Vec<String>, String) {
        let panel = format!("document.querySelector('#op-{id} .try')");
        let mut script = format!(
            "(() => {{ const p = {panel}; p.open = true; p.querySelector('.try-key').value = {key};",
            key = serde_json::to_string(key).expect("text")
        );
        for (name, value) in fields {
            script += &format!(
                "p.querySelector('[data-name=\"{name}\"]').value = {};",
                serde_json::to_string(value).expect("text")
            );
        }
        if let Some(body) = body {
            script += &format!(
                "p.querySelector('.try-body').value = {};",
                serde_json::to_string(body).expect("text")
            );
        }
        script += "p.querySelector('form').requestSubmit(); return p.dataset.state; })()";
        assert_eq!(self.eval(&script).await, "sending");
        let mut while_sending = Vec::new();
        for _ in 0..1000 {
            let state = self
                .eval(&format!(
                    "[{panel}.dataset.state, {panel}.querySelector('.try-response').textContent]"
                ))
                .await;
            if state[0] != "sending" {
                break;
            }
            while_sending.push(state[1].as_str().unwrap_or_default().to_string());
            actix_web::rt::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let shown = self
            .eval(&format!(
                "[{panel}.dataset.state, ...['.try-status', '.try-headers', '.try-response'].map(s => {panel}.querySelector(s).textContent)]"
            ))
            .await;
        let text = |i: usize| shown[i].as_str().unwrap_or_default().to_string();
        assert_eq!(text(0), "done", "{shown}");
        (text(1), text(2), while_sending, text(3))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

#[test]
#[ignore = "needs Chromium: scripts/test.sh installs it and runs this"]
fn the_try_it_panel_calls_the_gateway_and_shows_events_as_they_arrive() {
    run(async {
        let gw = start(Setup {
            chunk_delay: std::time::Duration::from_millis(40),
            ..Setup::default()
        })
        .await;
        let mut browser = Browser::start().await;

        browser
            .open(&format!("{}/docs/2024-10-21.html", gw.base))
            .await;
        let (status, headers, while_sending, body) = browser
            .try_it(
                "ChatCompletions_Create",
                common::CLIENT_KEY,
                &[("deployment-id", "gpt-4o")],
                Some(r#"{"messages": [{"role": "user", "content": "Hi"}], "stream": true}"#),
            )
            .await;
        assert_eq!(status, "200 OK");
        assert!(headers.contains("x-ms-region: "), "{headers}");
        assert!(
            headers.contains("content-type: text/event-stream"),
            "{headers}"
        );
        assert!(
            body.starts_with("data: {") && body.ends_with("data: [DONE]\n\n"),
            "{body}"
        );
        // Shown event by event: part of the stream was on the page before its end arrived.
        assert!(
            while_sending
                .iter()
                .any(|b| b.contains("data: {") && !b.contains("[DONE]")),
            "only the whole stream was shown: {while_sending:?}"
        );

        // The v1 API from its page: the deployment in the body, the example key kept for the tab.
        browser.open(&format!("{}/docs/v1.html", gw.base)).await;
        let (status, _, _, body) = browser
            .try_it(
                "createChatCompletion",
                common::CLIENT_KEY,
                &[],
                Some(r#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}"#),
            )
            .await;
        assert_eq!(status, "200 OK", "{body}");
        assert!(body.contains("\"choices\": ["), "pretty JSON: {body}");

        // A wrong key: the gateway's refusal, shown as it is.
        let (status, _, _, body) = browser
            .try_it(
                "createChatCompletion",
                "not-a-key",
                &[],
                Some(r#"{"model": "gpt-4o", "messages": []}"#),
            )
            .await;
        assert_eq!(status, "401 Unauthorized", "{body}");
        assert!(body.contains("\"error\""), "{body}");
        let calls: usize = gw.sims.iter().map(|s| s.recorded().len()).sum();
        assert_eq!(calls, 2, "the refused call reached no backend");
    });
}
