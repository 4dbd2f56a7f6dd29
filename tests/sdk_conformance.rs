//! Conformance with a real client: the official `openai` Python SDK. Its `AzureOpenAI` client,
//! pointed at the gateway with a subscription key, for each dated api-version: chat, streaming
//! chat with `stream_options.include_usage`, a stream the backend cuts half-way (which must
//! raise), embeddings, audio transcription, image generation, an Assistants call where the
//! version has them, and the gateway's errors as SDK exceptions. On the same gateway, its plain
//! `OpenAI` client on the v1 API (`base_url=<gateway>/openai/v1`, the key as a bearer token):
//! chat, streaming, a cut stream, embeddings, a Responses call, a file's whole life, and the
//! errors.
//!
//! Against a subscription's limit, the SDK raises `RateLimitError` with the gateway's
//! `retry-after`, and with `max_retries=1` waits what it was told and gets through.
//!
//! The calls users make most (`sdk_everyday.py`: tools and a tool-call round trip, structured
//! outputs, image parts, streaming with usage, `max_completion_tokens`, embeddings with
//! `dimensions` and base64, responses with tools, reasoning, a JSON schema and streaming,
//! assistants with threads and runs, files, batches) run on every compiled version that has
//! their operations, and the gateway may refuse none of them.
//!
//! The SDK lives in a virtualenv that the README's test command creates (`scripts/test.sh`);
//! `AOAI_TEST_PYTHON` names its interpreter, defaulting to `.venv/bin/python`.

mod common;

use std::process::Output;

use common::{Backend, CLIENT_KEY, Setup, run, start};

/// Runs one of the conformance scripts against the gateway at `base`, with `env`.
async fn script(name: &'static str, base: &str, env: &[(&'static str, &'static str)]) -> Output {
    common::script(name, &[], base, CLIENT_KEY, env).await
}

/// The script's summary line, after insisting it succeeded.
fn summary(what: &str, output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "SDK run for {what} failed:\n{stderr}\n{stdout}"
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|_| panic!("summary line, got {stdout}"));
    let regions = seen["regions"].as_array().expect("regions");
    assert_ne!(
        regions[0], regions[1],
        "{what}: two calls in a row should be served by both regions: {seen}"
    );
    assert!(seen["stream_chunks"].as_u64().unwrap_or(0) > 3, "{seen}");
    assert!(seen["cut_stream_raised"].is_string(), "{seen}");
    seen
}

/// East US knows `gpt-4o` by another name, which the gateway must put in the path (dated
/// versions) or in the body's `model` (v1).
const EAST_GPT: &str = "gpt-4o-2024-08-06";

#[test]
#[ignore = "needs the openai SDK in .venv: scripts/test.sh installs it and runs this"]
fn the_openai_sdk_works_through_the_gateway() {
    run(async move {
        let mut east = Backend::new("eastus", "East US");
        east.deployment_map.insert("gpt-4o".into(), EAST_GPT.into());
        let gw = start(Setup {
            backends: vec![east, Backend::new("westeurope", "West Europe")],
            ..Setup::default()
        })
        .await;
        // Both clients on one gateway: the AzureOpenAI client on each dated version, the plain
        // OpenAI client on v1. One after the other, so that each sees the rotation's turns.
        let stable = script(
            "sdk_calls.py",
            &gw.base,
            &[("API_VERSION", "2024-10-21"), ("ASSISTANTS", "0")],
        )
        .await;
        let preview = script(
            "sdk_calls.py",
            &gw.base,
            &[("API_VERSION", "2024-09-01-preview"), ("ASSISTANTS", "1")],
        )
        .await;
        let v1 = script("sdk_v1_calls.py", &gw.base, &[]).await;
        assert!(summary("2024-10-21", &stable)["assistant"].is_null());
        assert!(summary("2024-09-01-preview", &preview)["assistant"].is_string());
        let v1 = summary("v1", &v1);
        assert!(
            v1["response"]
                .as_str()
                .is_some_and(|id| id.starts_with("resp_")),
            "{v1}"
        );
        assert!(v1["file"].is_string(), "{v1}");

        // What the SDKs sent reached the backends with their own keys and never the client's.
        let recorded = gw.all_recorded();
        assert!(recorded.len() >= 30, "{} requests recorded", recorded.len());
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
        // The mapped deployment arrived at East US under its own name, in the path and in the
        // body; West Europe got the name the client sent.
        let model_of = |r: &aoai_gateway::sim::Recorded| {
            serde_json::from_slice::<serde_json::Value>(&r.body)
                .ok()
                .and_then(|v| v["model"].as_str().map(str::to_string))
        };
        let v1_chats = |sim: usize| -> Vec<Option<String>> {
            gw.sims[sim]
                .recorded()
                .iter()
                .filter(|r| r.path == "/openai/v1/chat/completions")
                .map(model_of)
                .filter(|m| {
                    m.as_deref() != Some("cut-stream") && m.as_deref() != Some("rate-limited")
                })
                .collect()
        };
        let (east_models, west_models) = (v1_chats(0), v1_chats(1));
        assert!(!east_models.is_empty() && !west_models.is_empty());
        assert!(
            east_models.iter().all(|m| m.as_deref() == Some(EAST_GPT)),
            "{east_models:?}"
        );
        assert!(
            west_models.iter().all(|m| m.as_deref() == Some("gpt-4o")),
            "{west_models:?}"
        );
        assert!(
            gw.sims[0]
                .recorded()
                .iter()
                .any(|r| r.path == format!("/openai/deployments/{EAST_GPT}/chat/completions"))
        );

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

/// Each compiled version's mount and operations, as `sdk_everyday.py` matches cases to them:
/// `POST /chat/completions`, the deployment segment of dated paths left out.
fn compiled_versions() -> String {
    let versions: Vec<serde_json::Value> = aoai_gateway::generated::API_VERSIONS
        .iter()
        .map(|api| {
            let operations: Vec<String> = api
                .routes
                .iter()
                .map(|r| {
                    let path = r.path.replacen("/deployments/{deployment-id}", "", 1);
                    format!("{} {path}", r.method.as_str())
                })
                .collect();
            serde_json::json!({ "version": api.version, "mount": api.mount, "operations": operations })
        })
        .collect();
    serde_json::Value::from(versions).to_string()
}

#[test]
#[ignore = "needs the openai SDK in .venv: scripts/test.sh installs it and runs this"]
fn the_calls_users_make_most_are_never_refused_on_any_version_that_has_them() {
    run(async move {
        let gw = start(Setup::default()).await;
        let versions = compiled_versions();
        let versions: &'static str = Box::leak(versions.into_boxed_str());
        let output = script("sdk_everyday.py", &gw.base, &[("VERSIONS", versions)]).await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}\n{stdout}");
        let seen: serde_json::Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|_| panic!("summary line, got {stdout}\n{stderr}"));
        assert_eq!(seen["failed"], serde_json::json!([]), "{stderr}");
        let ran = |version: &str| -> Vec<String> {
            seen["ran"][version]
                .as_array()
                .map(|cases| {
                    cases
                        .iter()
                        .filter_map(|c| c.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let chat = [
            "chat_with_tools",
            "tool_call_round_trip",
            "structured_outputs",
            "image_parts",
            "streaming_with_usage",
            "max_completion_tokens",
            "embeddings_dimensions_base64",
        ];
        for version in ["2024-10-21", "2024-09-01-preview", "v1"] {
            let done = ran(version);
            for case in chat {
                assert!(
                    done.iter().any(|c| c == case),
                    "{version}: {case} did not run: {seen}"
                );
            }
        }
        // The two the published specs' typos refused: structured outputs above, and runs.
        assert!(ran("2024-09-01-preview").contains(&"assistants_threads_runs".to_string()));
        let v1 = ran("v1");
        for case in [
            "responses_with_tools",
            "responses_with_reasoning",
            "responses_json_schema",
            "responses_streaming",
            "files",
        ] {
            assert!(
                v1.iter().any(|c| c == case),
                "v1: {case} did not run: {seen}"
            );
        }
        // No compiled spec has the Batch API: said, not skipped silently.
        assert_eq!(seen["no_version"], serde_json::json!(["batches"]));
        // Every call reached a backend: the gateway answered none of them itself.
        let metrics = gw.metrics().await;
        assert_eq!(
            common::metric(
                &metrics,
                "aoai_gateway_requests_total{subscription=\"team-a\",code=\"400\"}"
            ),
            None,
            "{metrics}"
        );
    });
}

#[test]
#[ignore = "needs the openai SDK in .venv: scripts/test.sh installs it and runs this"]
fn the_sdk_waits_the_retry_after_a_limit_gives_and_gets_through() {
    run(async move {
        let gw = start(Setup {
            backends: vec![Backend::new("eastus", "East US")],
            tweak: |c| c.subscriptions[0].limits.requests_per_minute = Some(1),
            ..Setup::default()
        })
        .await;
        // About a minute: the first call leaves the window 60 s after it was made.
        let output = script("sdk_limits.py", &gw.base, &[]).await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{}\n{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
        let seen: serde_json::Value = serde_json::from_str(stdout.trim()).expect("summary");
        assert_eq!(seen["refused_code"], "429", "{seen}");
        let first_wait = seen["refused_retry_after"].as_f64().unwrap();
        assert!((58.0..=61.0).contains(&first_wait), "{seen}");
        // The retry waited the 2-4 s it was told (the SDK sleeps retry-after-ms), no more.
        let waited = seen["waited"].as_f64().unwrap();
        assert!((1.5..=6.0).contains(&waited), "{seen}");
        assert!(
            seen["answered"]
                .as_str()
                .is_some_and(|a| a.starts_with("Hello from"))
        );
        // The backend saw the two calls that were let through, not the refusals.
        assert_eq!(gw.all_recorded().len(), 2);
        let metrics = gw.metrics().await;
        assert_eq!(
            common::metric(
                &metrics,
                "aoai_gateway_limit_refusals_total{subscription=\"team-a\",limit=\"requests_per_minute\"}"
            ),
            Some(2)
        );
    });
}

/// The key of the second subscription of the realtime test, which has a small token limit.
const LIMITED_KEY: &str = "limited-team-key";

#[test]
#[ignore = "needs the openai SDK in .venv: scripts/test.sh installs it and runs this"]
fn the_sdk_realtime_client_holds_sessions_through_the_gateway() {
    run(async move {
        // East US refuses new realtime sessions on `gpt-realtime` (429): the SDK's sessions on
        // it open on West Europe, the client none the wiser.
        let mut east = Backend::new("eastus", "East US");
        east.deployment_map
            .insert("gpt-realtime".into(), "rate-limited".into());
        let gw = start(Setup {
            backends: vec![east, Backend::new("westeurope", "West Europe")],
            env: vec![("LIMITED_KEY".into(), LIMITED_KEY.into())],
            tweak: |c| {
                let mut limited = aoai_gateway::config::SubscriptionConfig::with_key_env(
                    "team-limited",
                    "LIMITED_KEY",
                );
                limited.limits.tokens_per_minute = Some(100);
                c.subscriptions.push(limited);
            },
            ..Setup::default()
        })
        .await;
        let seen = gw
            .script_summary(
                "sdk_realtime.py",
                &[],
                CLIENT_KEY,
                &[("LIMITED_KEY", LIMITED_KEY)],
            )
            .await;
        let sessions = ["v1", "azure", "secret"];
        for session in sessions {
            let regions = seen[session]["regions"].as_array().expect("regions");
            assert!(!regions.is_empty(), "{seen}");
            if session != "azure" {
                assert!(
                    regions.iter().all(|r| r == "West Europe"),
                    "{session}: {seen}"
                );
            }
        }
        // Every response's usage counted, per subscription and deployment, once.
        let metrics = gw.metrics().await;
        let total = |sessions: &[&str], what: &str| -> u64 {
            sessions
                .iter()
                .map(|s| seen[*s][what].as_u64().unwrap_or(0))
                .sum()
        };
        let counted = |deployment: &str, kind: &str| {
            common::tokens(&metrics, "team-a", deployment, kind, "reported")
        };
        assert_eq!(
            counted("gpt-realtime", "prompt"),
            total(&["v1", "secret"], "input_tokens"),
            "{seen}\n{metrics}"
        );
        assert_eq!(
            counted("gpt-realtime", "completion"),
            total(&["v1", "secret"], "output_tokens")
        );
        assert_eq!(
            counted("gpt-4o-realtime-preview", "prompt"),
            total(&["azure"], "input_tokens")
        );
        assert_eq!(
            common::tokens(
                &metrics,
                "team-limited",
                "gpt-realtime",
                "prompt",
                "reported"
            ),
            total(&["limited"], "input_tokens")
        );
        // No backend saw a subscription's key.
        for r in gw.all_recorded() {
            let seen = format!("{r:?}");
            assert!(
                !seen.contains(CLIENT_KEY) && !seen.contains(LIMITED_KEY),
                "{seen}"
            );
        }
    });
}
