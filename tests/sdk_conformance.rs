//! Conformance with a real client: the official `openai` Python SDK's `AzureOpenAI`, pointed at
//! the gateway with a subscription key, for each compiled api-version: chat, streaming chat with
//! `stream_options.include_usage`, a stream the backend cuts half-way (which must raise),
//! embeddings, audio transcription, image generation, an Assistants call where the version has
//! them, and the gateway's errors as SDK exceptions.
//!
//! The SDK lives in a virtualenv that the README's test command creates (`scripts/test.sh`);
//! `AOAI_TEST_PYTHON` names its interpreter, defaulting to `.venv/bin/python`.

mod common;

use std::process::Command;

use common::{CLIENT_KEY, Setup, python, run, start};

#[test]
#[ignore = "needs the openai SDK in .venv: scripts/test.sh installs it and runs this"]
fn the_openai_sdk_works_through_the_gateway() {
    let python = python();
    run(async move {
        let gw = start(Setup::default()).await;
        for (version, assistants) in [("2024-10-21", false), ("2024-09-01-preview", true)] {
            let (python, base) = (python.clone(), gw.base.clone());
            let output = actix_web::rt::task::spawn_blocking(move || {
                Command::new(python)
                    .arg(concat!(
                        env!("CARGO_MANIFEST_DIR"),
                        "/tests/conformance/sdk_calls.py"
                    ))
                    .env("GATEWAY_ENDPOINT", base)
                    .env("GATEWAY_KEY", CLIENT_KEY)
                    .env("API_VERSION", version)
                    .env("ASSISTANTS", if assistants { "1" } else { "0" })
                    .output()
            })
            .await
            .expect("runner")
            .expect("python starts");
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                output.status.success(),
                "SDK run for {version} failed:\n{stderr}\n{stdout}"
            );
            let seen: serde_json::Value = serde_json::from_str(stdout.trim())
                .unwrap_or_else(|_| panic!("summary line, got {stdout}"));
            let regions = seen["regions"].as_array().expect("regions");
            assert_ne!(
                regions[0], regions[1],
                "two calls in a row should be served by both regions: {seen}"
            );
            assert!(seen["stream_chunks"].as_u64().unwrap_or(0) > 3, "{seen}");
            assert!(seen["cut_stream_raised"].is_string(), "{seen}");
            assert_eq!(seen["assistant"].is_string(), assistants, "{seen}");
        }
        // What the SDK sent reached the backends with their own keys and never the client's.
        let recorded = gw.all_recorded();
        assert!(recorded.len() >= 16, "{} requests recorded", recorded.len());
        for r in &recorded {
            assert!(
                gw.keys
                    .iter()
                    .any(|k| r.header("api-key") == Some(k.as_str()))
            );
            assert!(
                !format!("{r:?}").contains(CLIENT_KEY),
                "client key reached a backend: {r:?}"
            );
        }
        let transcription = recorded
            .iter()
            .find(|r| r.path.ends_with("/audio/transcriptions"))
            .expect("a transcription");
        assert!(
            transcription
                .header("content-type")
                .is_some_and(|c| c.starts_with("multipart/form-data; boundary="))
        );
        assert!(
            transcription.body.windows(4).any(|w| w == b"RIFF"),
            "the WAV file reached the backend"
        );
    });
}
