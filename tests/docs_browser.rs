//! The route docs in a real browser: headless Chromium loads `/docs` from a running gateway, the
//! rendered DOM must show the operations, the filter script must run, and a screenshot is
//! written to `target/docs-screenshot.png` for a person to look at.
//!
//! Chromium is Debian's `chromium` package, which the README's test command installs;
//! `AOAI_TEST_CHROMIUM` names the binary, defaulting to `chromium` on the PATH.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use aoai_gateway::generated::API_VERSIONS;
use common::{Setup, run, start};

fn chromium() -> PathBuf {
    let configured = std::env::var_os("AOAI_TEST_CHROMIUM")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let found = configured.or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("chromium"))
                .find(|p| p.exists())
        })
    });
    found.unwrap_or_else(|| panic!("Chromium not found: run scripts/test.sh, or apt-get install chromium, or set AOAI_TEST_CHROMIUM"))
}

/// Runs headless Chromium with a fresh profile and no background traffic.
fn headless(args: &[String]) -> std::process::Output {
    let profile = std::env::temp_dir().join(format!(
        "aoai-docs-chromium-{}-{}",
        std::process::id(),
        args.len()
    ));
    let _ = std::fs::remove_dir_all(&profile);
    let output = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--no-first-run",
            "--hide-scrollbars",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium starts");
    let _ = std::fs::remove_dir_all(&profile);
    output
}

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
