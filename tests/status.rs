//! The status page: `/status.json` says what the gateway knows (tiers, the last minute, rests,
//! headroom, limit windows, the compiled specs' hashes) and never a key; `/status` shows it in
//! a real browser, on a desktop and a phone, with screenshots kept for a person to look at.

mod common;

use std::path::Path;

use common::browser::headless;
use common::{CHAT, CLIENT_KEY, Setup, run, start};
use serde_json::Value;

const BODY: &str = r#"{"messages":[{"role":"user","content":"Hello"}],"max_tokens":5}"#;
const RESTING: &str = "/openai/deployments/rate-limited/chat/completions?api-version=2024-10-21";

/// A provisioned backend and a pay-as-you-go one, a subscription with limits.
fn setup() -> Setup {
    Setup {
        tweak: |c| {
            c.backends[1].priority = 2;
            c.subscriptions[0].limits.tokens_per_minute = Some(100_000);
            c.subscriptions[0].limits.requests_per_minute = Some(600);
        },
        ..Setup::default()
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Calls that give the page something to show: chats, and a deployment that answers 429 and
/// so rests on every backend.
async fn traffic(gw: &common::Running) {
    for _ in 0..5 {
        let (status, _, _) = gw.post_json(CHAT, BODY).await;
        assert_eq!(status, 200);
    }
    let (status, _, _) = gw.post_json(RESTING, BODY).await;
    assert_eq!(status, 429);
}

#[test]
fn the_json_says_what_the_gateway_knows_and_no_key() {
    run(async {
        let gw = start(setup()).await;
        traffic(&gw).await;
        let (code, headers, body) = gw.get("/status.json").await;
        assert_eq!(code, 200);
        assert_eq!(
            headers.get("cache-control").map(String::as_str),
            Some("no-store")
        );
        let status: Value = serde_json::from_slice(&body).expect("JSON");

        let tiers = status["tiers"].as_array().expect("tiers");
        let names: Vec<(u64, &str)> = tiers
            .iter()
            .flat_map(|t| {
                let p = t["priority"].as_u64().unwrap_or(0);
                t["backends"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(move |b| (p, b["name"].as_str().unwrap_or("")))
            })
            .collect();
        assert_eq!(names, vec![(1, "eastus"), (2, "westeurope")]);
        let east = &tiers[0]["backends"][0];
        assert_eq!(east["region"], "East US");
        assert_eq!(east["credential"]["kind"], "api_key");
        assert_eq!(east["in_flight"], 0, "every call has ended");
        assert_eq!(east["sessions"], 0);
        assert_eq!(status["balancing"]["policy"], "round_robin");
        // Five chats, and the 429 of the resting deployment.
        assert_eq!(east["last_minute"]["calls"], 6, "{east}");
        assert_eq!(east["last_minute"]["errors"], 1, "{east}");
        assert_eq!(
            east["last_minute"]["per_second"].as_array().map(Vec::len),
            Some(60)
        );
        let rest = &east["condition"]["deployments"][0];
        assert_eq!(rest[0], "rate-limited", "{east}");
        assert_eq!(rest[1]["state"], "resting");
        assert!(
            rest[1]["ms"]
                .as_u64()
                .is_some_and(|ms| ms > 0 && ms <= 7000),
            "{rest}"
        );
        let headroom = east["condition"]["headroom"].as_array().expect("headroom");
        assert!(
            headroom
                .iter()
                .any(|h| h[0] == "gpt-4o" && h[1].as_u64().is_some_and(|t| t > 0)),
            "the simulator reports its room: {east}"
        );
        assert!(east["remaining_tokens"].as_i64().is_some());

        let team = &status["subscriptions"][0];
        assert_eq!(team["name"], "team-a");
        let window = &team["windows"][0];
        assert_eq!(window["limits"]["requests_per_minute"], 600);
        assert_eq!(window["requests_left"], 600 - 6, "{window}");
        assert!(window["tokens_left"].as_u64().is_some_and(|t| t < 100_000));

        for v in status["api_versions"].as_array().expect("versions") {
            let source = v["source"].as_str().expect("source");
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("spec")
                .join(source);
            let published = std::fs::read(&path).expect("the spec file");
            assert_eq!(v["sha256"], sha256_hex(&published), "{source}");
        }
        assert!(status["config"]["loaded_at_ms"].as_u64().is_some());
        assert_eq!(status["unready"], Value::Null);

        let (code, _, page) = gw.get("/status").await;
        assert_eq!(code, 200);
        let page = String::from_utf8_lossy(&page);
        let json = String::from_utf8_lossy(&body);
        for secret in gw.keys.iter().map(String::as_str).chain([CLIENT_KEY]) {
            assert!(!json.contains(secret), "a key in the JSON");
            assert!(!page.contains(secret), "a key in the page");
        }
    });
}

#[test]
fn the_status_can_ask_for_a_key() {
    run(async {
        let gw = start(Setup {
            tweak: |c| c.status.require_key = true,
            ..Setup::default()
        })
        .await;
        for path in ["/status", "/status.json"] {
            assert_eq!(gw.get(path).await.0, 401, "{path}");
            assert_eq!(gw.get_with_key(path).await.0, 200, "{path}");
        }
        let off = start(Setup {
            tweak: |c| c.status.enabled = false,
            ..Setup::default()
        })
        .await;
        assert_eq!(off.get("/status").await.0, 404);
    });
}

#[test]
#[ignore = "needs Chromium: scripts/test.sh installs it and runs this"]
fn chromium_renders_the_status_page() {
    run(async {
        let gw = start(setup()).await;
        traffic(&gw).await;
        let url = format!("{}/status", gw.base);
        let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
        for (name, size) in [
            ("status-screenshot.png", "1280,1100"),
            ("status-phone.png", "390,1400"),
        ] {
            let shot = target.join(name);
            let _ = std::fs::remove_file(&shot);
            let args = vec![
                format!("--screenshot={}", shot.display()),
                format!("--window-size={size}"),
                url.clone(),
            ];
            let out = actix_web::rt::task::spawn_blocking(move || headless(&args))
                .await
                .expect("runner");
            let png = std::fs::read(&shot).unwrap_or_else(|_| {
                panic!("no screenshot: {}", String::from_utf8_lossy(&out.stderr))
            });
            assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{name}");
        }
        let dom =
            actix_web::rt::task::spawn_blocking(move || headless(&["--dump-dom".into(), url]))
                .await
                .expect("runner");
        let html = String::from_utf8_lossy(&dom.stdout).into_owned();
        for seen in [
            "Tier 1",
            "Tier 2",
            "eastus",
            "westeurope",
            "resting,",
            "1 deployment resting",
            r#"<svg class="bars""#,
            "team-a",
            "600 requests/min",
            "2024-10-21",
        ] {
            assert!(html.contains(seen), "{seen} not on the page:\n{html}");
        }
        for secret in gw.keys.iter().map(String::as_str).chain([CLIENT_KEY]) {
            assert!(!html.contains(secret), "a key on the page");
        }
    });
}
