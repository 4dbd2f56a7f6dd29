//! Stored objects through the gateway: every follow-up reaches the backend that holds its
//! object, and never another; each subscription sees, uses and lists only its own objects; the
//! directory survives a restart with `state.path`.
//!
//! The simulated resources give objects random ids and answer like Azure for an id they do
//! not hold (404, or 400 for a `previous_response_id`), so a follow-up sent to the wrong
//! backend fails here as it would on Azure.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use aoai_gateway::config::FileConfig;
use bytes::Bytes;
use common::{Backend, CLIENT_KEY, Running, Setup, collect, error_code, metric, run, start};
use serde_json::{Value, json};

const TEAM_B_KEY: &str = "team-b-secret-key-0123456789";
const PLATFORM_KEY: &str = "platform-secret-key-0123456789";
const PREVIEW: &str = "2024-09-01-preview";

/// Two more subscriptions beside the harness's team-a: team-b, and the platform team's own
/// tooling, which may use every object.
fn teams(setup: Setup) -> Setup {
    Setup {
        env: vec![
            ("TEAM_B_KEY".into(), TEAM_B_KEY.into()),
            ("PLATFORM_KEY".into(), PLATFORM_KEY.into()),
        ],
        tweak: |c: &mut FileConfig| {
            use aoai_gateway::config::SubscriptionConfig;
            c.subscriptions
                .push(SubscriptionConfig::with_key_env("team-b", "TEAM_B_KEY"));
            c.subscriptions.push(SubscriptionConfig {
                stored_objects_admin: true,
                ..SubscriptionConfig::with_key_env("platform", "PLATFORM_KEY")
            });
        },
        ..setup
    }
}

fn json_of(body: &Bytes) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("a JSON body, got {}", String::from_utf8_lossy(body)))
}

/// Creates an object with `key`: its id and the backend that holds it.
async fn create(gw: &Running, key: &str, path: &str, body: &str) -> (String, String) {
    let (status, headers, body) = gw.send("POST", path, key, Some(body)).await;
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    let id = json_of(&body)["id"].as_str().expect("an id").to_string();
    (id, headers["x-aoai-gateway-backend"].clone())
}

/// Uploads a small file with `key` (`POST /openai/v1/files`): its id.
async fn upload(gw: &Running, key: &str) -> String {
    let boundary = "b0undary";
    let form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nassistants\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhello\r\n\
         --{boundary}--\r\n"
    );
    let (status, body) = gw.upload(key, boundary, form).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    json_of(&body)["id"].as_str().expect("an id").to_string()
}

fn calls_to_backends(gw: &Running) -> usize {
    gw.all_recorded().len()
}

#[test]
#[ignore = "needs the openai SDK in .venv: scripts/test.sh installs it and runs this"]
fn the_sdk_follows_every_object_to_the_backend_that_holds_it() {
    run(async {
        let gw = start(Setup::default()).await;
        let seen = gw
            .script_summary("sdk_objects.py", &[], CLIENT_KEY, &[])
            .await;
        let created: Vec<&str> = seen["created_on"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        // Creates rotate: both backends hold responses, so every follow-up had to find its own.
        for backend in ["eastus", "westeurope"] {
            assert!(created.contains(&backend), "{created:?}");
        }
        // Each turn of a conversation goes where the previous one is.
        let turns = seen["turns_on"].as_array().unwrap();
        assert!(turns.windows(2).all(|t| t[0] == t[1]), "{turns:?}");
        let metrics = gw.metrics().await;
        let pinned = metric(
            &metrics,
            "aoai_gateway_object_calls_total{outcome=\"pinned\"}",
        );
        // 20 retrieves, input-item lists and deletes, 4 chained turns, the polls, the file's
        // use and deletion.
        assert!(pinned.unwrap_or(0) >= 66, "{metrics}");
    });
}

#[test]
fn each_team_sees_only_its_own_objects_and_a_refusal_calls_no_backend() {
    run(async {
        let gw = start(teams(Setup::default())).await;
        let dated = |path: &str| format!("/openai{path}?api-version={PREVIEW}");
        let (response, _) = create(
            &gw,
            CLIENT_KEY,
            "/openai/v1/responses",
            r#"{"model":"gpt-4o","input":"mine"}"#,
        )
        .await;
        let file = upload(&gw, CLIENT_KEY).await;
        let (store, _) = create(
            &gw,
            CLIENT_KEY,
            "/openai/v1/vector_stores",
            r#"{"name":"docs"}"#,
        )
        .await;
        let (assistant, _) = create(
            &gw,
            CLIENT_KEY,
            &dated("/assistants"),
            r#"{"model":"gpt-4o"}"#,
        )
        .await;
        let (thread, _) = create(&gw, CLIENT_KEY, &dated("/threads"), "{}").await;

        let uses_file = json!({"model": "gpt-4o", "input": [{"role": "user", "content": [
            {"type": "input_file", "file_id": file}, {"type": "input_text", "text": "hi"}]}]});
        let uses_store = json!({"model": "gpt-4o", "input": "hi",
            "tools": [{"type": "file_search", "vector_store_ids": [store]}]});
        let attempts: Vec<(&str, String, Option<String>)> = vec![
            ("GET", format!("/openai/v1/responses/{response}"), None),
            (
                "GET",
                format!("/openai/v1/responses/{response}/input_items"),
                None,
            ),
            ("DELETE", format!("/openai/v1/responses/{response}"), None),
            (
                "POST",
                "/openai/v1/responses".into(),
                Some(format!(
                    r#"{{"model":"gpt-4o","input":"next","previous_response_id":"{response}"}}"#
                )),
            ),
            ("GET", format!("/openai/v1/files/{file}"), None),
            ("GET", format!("/openai/v1/files/{file}/content"), None),
            ("DELETE", format!("/openai/v1/files/{file}"), None),
            (
                "POST",
                "/openai/v1/responses".into(),
                Some(uses_file.to_string()),
            ),
            ("GET", format!("/openai/v1/vector_stores/{store}"), None),
            (
                "POST",
                format!("/openai/v1/vector_stores/{store}"),
                Some(r#"{"name":"mine now"}"#.into()),
            ),
            ("DELETE", format!("/openai/v1/vector_stores/{store}"), None),
            (
                "POST",
                "/openai/v1/responses".into(),
                Some(uses_store.to_string()),
            ),
            (
                "POST",
                "/openai/v1/vector_stores".into(),
                Some(format!(r#"{{"name":"copy","file_ids":["{file}"]}}"#)),
            ),
            ("GET", dated(&format!("/assistants/{assistant}")), None),
            (
                "POST",
                dated(&format!("/assistants/{assistant}")),
                Some(r#"{"name":"taken"}"#.into()),
            ),
            ("DELETE", dated(&format!("/assistants/{assistant}")), None),
            ("GET", dated(&format!("/threads/{thread}")), None),
            (
                "POST",
                dated(&format!("/threads/{thread}/messages")),
                Some(r#"{"role":"user","content":"hi"}"#.into()),
            ),
            ("DELETE", dated(&format!("/threads/{thread}")), None),
            (
                "POST",
                dated("/threads/runs"),
                Some(format!(r#"{{"assistant_id":"{assistant}"}}"#)),
            ),
        ];
        let before = calls_to_backends(&gw);
        for (method, path, body) in &attempts {
            let (status, _, answer) = gw.send(method, path, TEAM_B_KEY, body.as_deref()).await;
            assert_eq!(
                status,
                404,
                "team-b {method} {path}: {}",
                String::from_utf8_lossy(&answer)
            );
            assert_eq!(error_code(&answer), "NotFound");
        }
        assert_eq!(
            calls_to_backends(&gw),
            before,
            "a refused call reached a backend"
        );
        // The same answer as for an id that exists nowhere.
        let (_, _, nowhere) = gw
            .send("GET", "/openai/v1/responses/resp_nowhere", TEAM_B_KEY, None)
            .await;
        let (_, _, theirs) = gw
            .send(
                "GET",
                &format!("/openai/v1/responses/{response}"),
                TEAM_B_KEY,
                None,
            )
            .await;
        let shape = |body: &Bytes| {
            let mut v = json_of(body);
            v["error"]["message"] = Value::Null;
            v["error"]["request_id"] = Value::Null;
            v
        };
        assert_eq!(shape(&nowhere), shape(&theirs));

        // Lists show team-b none of team-a's objects.
        for list in [
            "/openai/v1/files".to_string(),
            "/openai/v1/vector_stores".into(),
            dated("/assistants"),
        ] {
            let (status, _, body) = gw.send("GET", &list, TEAM_B_KEY, None).await;
            assert_eq!(status, 200, "{list}");
            let text = String::from_utf8_lossy(&body);
            for id in [&file, &store, &assistant] {
                assert!(!text.contains(id.as_str()), "{list} shows {id}: {text}");
            }
        }
        // team-a's objects are intact, and its own.
        for path in [
            format!("/openai/v1/responses/{response}"),
            format!("/openai/v1/files/{file}"),
            format!("/openai/v1/vector_stores/{store}"),
            dated(&format!("/assistants/{assistant}")),
            dated(&format!("/threads/{thread}")),
        ] {
            let (status, _, body) = gw.send("GET", &path, CLIENT_KEY, None).await;
            assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        }
        let (_, _, listed) = gw.send("GET", "/openai/v1/files", CLIENT_KEY, None).await;
        assert_eq!(json_of(&listed)["data"][0]["id"], json!(file));

        // An object the gateway never saw created: only the platform team may use it.
        let direct = gw
            .client
            .post(format!("{}/openai/v1/vector_stores", gw.sim_urls[0]))
            .insert_header(("api-key", gw.keys[0].as_str()))
            .insert_header(("content-type", "application/json"))
            .send_body(r#"{"name":"made elsewhere"}"#)
            .await
            .expect("the simulator answers");
        let (_, _, made) = collect(direct).await;
        let elsewhere = json_of(&made)["id"].as_str().unwrap().to_string();
        let path = format!("/openai/v1/vector_stores/{elsewhere}");
        assert_eq!(gw.send("GET", &path, CLIENT_KEY, None).await.0, 404);
        assert_eq!(gw.send("GET", &path, PLATFORM_KEY, None).await.0, 200);
        let (_, _, all) = gw
            .send("GET", "/openai/v1/vector_stores", PLATFORM_KEY, None)
            .await;
        assert_eq!(json_of(&all)["data"].as_array().map(Vec::len), Some(2));

        let metrics = gw.metrics().await;
        assert_eq!(
            metric(
                &metrics,
                "aoai_gateway_object_calls_total{outcome=\"refused\"}"
            ),
            // And the two lookups of a foreign id above, and team-a's of one never seen.
            Some(attempts.len() as u64 + 3)
        );
        for kind in ["response", "file", "vector_store", "assistant", "thread"] {
            let line = format!("aoai_gateway_stored_objects{{kind=\"{kind}\"}}");
            assert_eq!(metric(&metrics, &line), Some(1), "{line}");
        }
    });
}

#[test]
#[ignore = "needs the openai SDK in .venv: scripts/test.sh installs it and runs this"]
fn the_sdks_auto_pagination_yields_exactly_the_callers_objects() {
    run(async {
        // One backend holding 250 vector stores, 100 of them team-a's, and 25 files, 10 of
        // them team-a's.
        let gw = start(teams(Setup {
            backends: vec![Backend::new("eastus", "East US")],
            ..Setup::default()
        }))
        .await;
        let mut mine = Vec::new();
        let mut theirs = Vec::new();
        for n in 0..250 {
            let key = if n % 5 < 2 { CLIENT_KEY } else { TEAM_B_KEY };
            let body = format!(r#"{{"name":"store {n}"}}"#);
            let (id, _) = create(&gw, key, "/openai/v1/vector_stores", &body).await;
            if key == CLIENT_KEY {
                &mut mine
            } else {
                &mut theirs
            }
            .push(id);
        }
        let mut my_files = Vec::new();
        for n in 0..25 {
            let key = if n % 5 < 2 { CLIENT_KEY } else { TEAM_B_KEY };
            let id = upload(&gw, key).await;
            if key == CLIENT_KEY {
                my_files.push(id);
            }
        }
        assert_eq!((mine.len(), my_files.len()), (100, 10));
        let seen = gw
            .script_summary("sdk_objects.py", &["list"], CLIENT_KEY, &[("PAGE", "7")])
            .await;
        let ids = |key: &str| -> Vec<String> {
            let mut ids: Vec<String> = seen[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            ids.sort();
            ids
        };
        mine.sort();
        my_files.sort();
        assert_eq!(ids("vector_stores"), mine);
        assert_eq!(ids("files"), my_files);
    });
}

/// `POST /openai/v1/responses` with the client's key.
async fn respond(gw: &Running, body: &str) -> (u16, HashMap<String, String>, Bytes) {
    gw.send("POST", "/openai/v1/responses", CLIENT_KEY, Some(body))
        .await
}

/// A response created by `key` and held by `backend` (created until the rotation lands there).
async fn response_on(gw: &Running, backend: &str) -> String {
    for _ in 0..4 {
        let (id, holder) = create(
            gw,
            CLIENT_KEY,
            "/openai/v1/responses",
            r#"{"model":"gpt-4o","input":"hi"}"#,
        )
        .await;
        if holder == backend {
            return id;
        }
    }
    panic!("no response landed on {backend}");
}

#[test]
fn a_follow_up_waits_for_its_holder_and_is_never_sent_elsewhere() {
    run(async {
        let gw = start(Setup::default()).await;
        let held = response_on(&gw, "westeurope").await;
        let east_calls = gw.sims[0].recorded().len();
        let follow_up = |model: &str| {
            format!(r#"{{"model":"{model}","input":"next","previous_response_id":"{held}"}}"#)
        };

        // The holder's deployment answers 429: the client gets Azure's answer, and the call is
        // not handed to the other backend, which cannot have the response.
        let (status, headers, _) = respond(&gw, &follow_up("rate-limited")).await;
        assert_eq!(status, 429);
        assert_eq!(headers["x-aoai-gateway-backend"], "westeurope");
        // It rests now: the gateway answers for it, saying who and for how long.
        let (status, headers, body) = respond(&gw, &follow_up("rate-limited")).await;
        assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
        assert!(headers["retry-after"].parse::<u64>().unwrap() >= 1);
        let message = json_of(&body)["error"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            message.contains("'westeurope'") && message.contains(&held),
            "{message}"
        );
        // The rest is the deployment's: the response itself is still there to read.
        let read = format!("/openai/v1/responses/{held}");
        assert_eq!(gw.send("GET", &read, CLIENT_KEY, None).await.0, 200);

        // The holder goes away: not reachable, then resting as a whole.
        gw.sim_servers[1].stop(false).await;
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        for _ in 0..2 {
            let (status, headers, body) = gw.send("GET", &read, CLIENT_KEY, None).await;
            assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
            assert_eq!(headers["retry-after"], "5");
            assert_eq!(error_code(&body), "ServiceUnavailable");
        }
        let (status, _, _) = respond(&gw, &follow_up("gpt-4o")).await;
        assert_eq!(status, 503);
        assert_eq!(
            gw.sims[0].recorded().len(),
            east_calls,
            "a pinned call went to the backend that does not hold its object"
        );
        let metrics = gw.metrics().await;
        assert_eq!(
            metric(
                &metrics,
                "aoai_gateway_object_calls_total{outcome=\"holder_unavailable\"}"
            ),
            Some(4)
        );
    });
}

#[test]
fn a_follow_up_to_a_deployment_its_holder_lacks_is_refused_before_any_call() {
    run(async {
        let gw = start(Setup {
            tweak: |c: &mut FileConfig| {
                c.backends[0].deployments = vec!["gpt-4o".into(), "mini".into()];
                c.backends[1].deployments = vec!["gpt-4o".into()];
            },
            ..Setup::default()
        })
        .await;
        let held = response_on(&gw, "westeurope").await;
        let before = calls_to_backends(&gw);
        let body = format!(r#"{{"model":"mini","input":"next","previous_response_id":"{held}"}}"#);
        let (status, _, answer) = respond(&gw, &body).await;
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(&answer));
        let error = &json_of(&answer)["error"];
        assert_eq!(error["param"], "previous_response_id");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains("'westeurope'") && message.contains("'mini'"),
            "{message}"
        );
        assert_eq!(calls_to_backends(&gw), before);
        // Where the holder serves the deployment, the call goes there.
        let body =
            format!(r#"{{"model":"gpt-4o","input":"next","previous_response_id":"{held}"}}"#);
        for _ in 0..2 {
            let (status, headers, _) = respond(&gw, &body).await;
            assert_eq!(status, 200);
            assert_eq!(headers["x-aoai-gateway-backend"], "westeurope");
        }
    });
}

#[test]
fn after_a_restart_the_directory_on_disk_still_knows_every_holder() {
    run(async {
        let folder = std::env::temp_dir().join(format!("aoai-objects-{}", std::process::id()));
        std::fs::create_dir_all(&folder).unwrap();
        let path = folder.join("objects.redb");
        let _ = std::fs::remove_file(&path);
        let state_path = path.display().to_string();
        let mut gw = start(Setup {
            configure: Some(Box::new(move |c: &mut FileConfig| {
                c.state.path = Some(state_path.clone());
            })),
            ..Setup::default()
        })
        .await;
        let east = response_on(&gw, "eastus").await;
        let west = response_on(&gw, "westeurope").await;
        gw.restart().await;
        let mut holders = HashMap::new();
        for id in [&east, &west] {
            let (status, headers, body) = gw
                .send(
                    "GET",
                    &format!("/openai/v1/responses/{id}"),
                    CLIENT_KEY,
                    None,
                )
                .await;
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            holders.insert(id.clone(), headers["x-aoai-gateway-backend"].clone());
        }
        assert_eq!(holders[&east], "eastus");
        assert_eq!(holders[&west], "westeurope");
        let _ = std::fs::remove_dir_all(&folder);
    });
}

#[test]
fn shared_isolation_lets_every_team_use_every_object_on_its_holder() {
    run(async {
        let gw = start(Setup {
            configure: Some(Box::new(|c: &mut FileConfig| {
                c.stored_objects.isolation = aoai_gateway::config::Isolation::Shared;
            })),
            ..teams(Setup::default())
        })
        .await;
        let held = response_on(&gw, "westeurope").await;
        let (status, headers, _) = gw
            .send(
                "GET",
                &format!("/openai/v1/responses/{held}"),
                TEAM_B_KEY,
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(headers["x-aoai-gateway-backend"], "westeurope");
        // An id the directory never saw goes home, and the backend answers for it.
        let (status, headers, _) = gw
            .send("GET", "/openai/v1/responses/resp_unknown", TEAM_B_KEY, None)
            .await;
        assert_eq!(status, 404);
        assert_eq!(headers["x-aoai-gateway-backend"], "eastus");
    });
}
