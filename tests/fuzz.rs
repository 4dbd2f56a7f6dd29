//! The API surface fuzzed with schemathesis, an OpenAPI fuzzer, for every compiled
//! api-version: the gateway in front of the simulated regions, each version's served spec as
//! the fuzzer's input, and the checks `not_a_server_error`, `negative_data_rejection` and
//! `positive_data_acceptance`. Any finding that `tests/fuzz/accepted.toml` does not explain
//! fails the test (see `tests/fuzz/schemathesis_run.py`).
//!
//! Bounded for CI: a fixed seed, `FUZZ_EXAMPLES` cases per operation (default 25) and
//! `FUZZ_SECONDS` per api-version (default 60).

mod common;

use std::process::Command;

use aoai_gateway::generated::API_VERSIONS;
use common::{CLIENT_KEY, Setup, python, run, start};

#[test]
#[ignore = "needs schemathesis in .venv: scripts/test.sh installs it and runs this"]
fn schemathesis_finds_nothing_the_gateway_cannot_explain() {
    let python = python();
    run(async move {
        let gw = start(Setup {
            max_body_bytes: 4 << 20,
            ..Setup::default()
        })
        .await;
        let reports = std::env::temp_dir().join(format!("aoai-fuzz-{}", std::process::id()));
        for api in API_VERSIONS {
            let (python, base, version) = (python.clone(), gw.base.clone(), api.version);
            let report_dir = reports.join(version);
            let output = actix_web::rt::task::spawn_blocking(move || {
                Command::new(python)
                    .arg(concat!(
                        env!("CARGO_MANIFEST_DIR"),
                        "/tests/fuzz/schemathesis_run.py"
                    ))
                    .args([&base, version, CLIENT_KEY])
                    .arg(&report_dir)
                    .env(
                        "FUZZ_SECONDS",
                        std::env::var("FUZZ_SECONDS").unwrap_or("60".into()),
                    )
                    .output()
            })
            .await
            .expect("runner")
            .expect("python starts");
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                output.status.success(),
                "schemathesis on {version}: unexplained findings\n{stdout}\n{stderr}"
            );
            let summary: serde_json::Value = serde_json::from_str(stdout.trim())
                .unwrap_or_else(|_| panic!("summary line, got {stdout}"));
            eprintln!("{summary}");
            assert!(summary["events"].as_u64().unwrap_or(0) > 100, "{summary}");
        }
        let _ = std::fs::remove_dir_all(&reports);
    });
}
