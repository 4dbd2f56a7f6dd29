//! The v1 API (`/openai/v1/…`) through the gateway: the deployment named by the body's `model`
//! drives rotation, allow-lists and renaming exactly as a path deployment does; operations
//! without one stay on one backend; the plain OpenAI client's `Authorization: Bearer` key is
//! accepted and never forwarded.

mod common;

use std::collections::HashMap;

use bytes::Bytes;
use common::{Backend, CLIENT_KEY, Running, Setup, collect, error_code, run, start};

const CHAT: &str = "/openai/v1/chat/completions";

/// POSTs `body` as JSON with the key as the plain OpenAI client sends it.
async fn post_bearer(
    gw: &Running,
    path: &str,
    body: &str,
) -> (u16, HashMap<String, String>, Bytes) {
    let response = gw
        .client
        .post(gw.url(path))
        .insert_header(("authorization", format!("Bearer {CLIENT_KEY}")))
        .insert_header(("content-type", "application/json"))
        .send_body(body.to_string())
        .await;
    collect(response.expect("gateway answers")).await
}

#[test]
fn the_body_model_rotates_and_is_renamed_byte_for_byte() {
    run(async {
        let mut east = Backend::new("eastus", "East US");
        east.deployment_map
            .insert("chat".into(), "gpt-4o-2024-08-06".into());
        let gw = start(Setup {
            backends: vec![east, Backend::new("westeurope", "West Europe")],
            ..Setup::default()
        })
        .await;
        // Odd spacing, an escaped character and a `model` inside a message: only the top-level
        // value may change.
        let body = "{ \"messages\" : [{\"role\":\"user\",\"content\":\"model \\u00e9\",\"name\":\"model\"}],\n  \"model\":   \"chat\" , \"temperature\":0.5}";
        let mut regions = Vec::new();
        for _ in 0..2 {
            let (status, headers, reply) = post_bearer(&gw, CHAT, body).await;
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
            regions.push(headers["x-ms-region"].clone());
        }
        regions.sort();
        assert_eq!(regions, ["East US", "West Europe"]);

        let east = &gw.sims[0].recorded()[0];
        assert_eq!(east.path, CHAT);
        assert_eq!(
            String::from_utf8_lossy(&east.body),
            body.replace("\"chat\"", "\"gpt-4o-2024-08-06\"")
        );
        let west = &gw.sims[1].recorded()[0];
        assert_eq!(west.body, body.as_bytes(), "unmapped: forwarded as sent");
        for (sent, recorded) in [(0, east), (1, west)] {
            // The backend's own key, never the client's.
            assert_eq!(recorded.header("api-key"), Some(gw.keys[sent].as_str()));
            assert_eq!(recorded.header("authorization"), None);
            assert!(
                recorded
                    .headers
                    .iter()
                    .all(|(_, v)| !v.contains(CLIENT_KEY))
            );
        }
    });
}

#[test]
fn the_body_model_obeys_allow_lists() {
    run(async {
        let gw = start(Setup {
            tweak: |config| config.backends[0].deployments = vec!["embedder".into()],
            ..Setup::default()
        })
        .await;
        for _ in 0..3 {
            let (status, headers, _) = post_bearer(
                &gw,
                CHAT,
                r#"{"model":"chat","messages":[{"role":"user","content":"hi"}]}"#,
            )
            .await;
            assert_eq!(status, 200);
            assert_eq!(headers["x-ms-region"], "West Europe");
        }
        for _ in 0..2 {
            let (status, _, _) = post_bearer(
                &gw,
                "/openai/v1/embeddings",
                r#"{"model":"embedder","input":"hello"}"#,
            )
            .await;
            assert_eq!(status, 200);
        }
        // Both serve `embedder`: it rotates.
        assert_eq!(gw.sims[0].recorded().len(), 1);
        assert_eq!(gw.sims[1].recorded().len(), 4);
    });
}

#[test]
fn a_v1_call_without_its_deployment_or_with_a_dated_version_is_refused() {
    run(async {
        let gw = start(Setup::default()).await;
        let (status, _, body) = post_bearer(
            &gw,
            CHAT,
            r#"{"messages":[{"role":"user","content":"hi"}]}"#,
        )
        .await;
        assert_eq!(status, 400);
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("model"), "{text}");

        let (status, _, body) = post_bearer(
            &gw,
            &format!("{CHAT}?api-version=2024-10-21"),
            r#"{"model":"chat","messages":[{"role":"user","content":"hi"}]}"#,
        )
        .await;
        assert_eq!(status, 400);
        assert!(String::from_utf8_lossy(&body).contains("v1"));

        let (status, _, _) = post_bearer(
            &gw,
            &format!("{CHAT}?api-version=v1"),
            r#"{"model":"chat","messages":[{"role":"user","content":"hi"}]}"#,
        )
        .await;
        assert_eq!(status, 200);

        // The bearer value must be a known key; nothing reached a backend for these.
        let response = gw
            .client
            .post(gw.url(CHAT))
            .insert_header(("authorization", "Bearer not-a-key"))
            .insert_header(("content-type", "application/json"))
            .send_body(r#"{"model":"chat","messages":[]}"#)
            .await
            .expect("answer");
        let (status, _, body) = collect(response).await;
        assert_eq!(status, 401, "{}", String::from_utf8_lossy(&body));
        assert_eq!(error_code(&body), "Unauthorized");
        assert_eq!(gw.all_recorded().len(), 1);
    });
}

#[test]
fn bearer_keys_can_be_switched_off() {
    run(async {
        let gw = start(Setup {
            tweak: |config| config.auth.bearer_header = false,
            ..Setup::default()
        })
        .await;
        let (status, _, _) = post_bearer(
            &gw,
            CHAT,
            r#"{"model":"chat","messages":[{"role":"user","content":"hi"}]}"#,
        )
        .await;
        assert_eq!(status, 401);
        let (status, _, _) = gw
            .post_json(
                CHAT,
                r#"{"model":"chat","messages":[{"role":"user","content":"hi"}]}"#,
            )
            .await;
        assert_eq!(status, 200, "the api-key header still works");
    });
}

#[test]
fn files_stay_on_one_backend() {
    run(async {
        let gw = start(Setup::default()).await;
        let boundary = "XyZ";
        // Azure's v1 spec requires `expires_after`; forms send it as bracketed parts, as the
        // openai SDK does.
        let part = |name: &str, value: &str| {
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
        };
        let form = format!(
            "{}{}{}--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"notes.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n",
            part("purpose", "assistants"),
            part("expires_after[anchor]", "created_at"),
            part("expires_after[seconds]", "86400"),
        );
        let response = gw
            .client
            .post(gw.url("/openai/v1/files"))
            .insert_header(("authorization", format!("Bearer {CLIENT_KEY}")))
            .insert_header((
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            ))
            .send_body(form)
            .await
            .expect("answer");
        let (status, created_headers, body) = collect(response).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let file: serde_json::Value = serde_json::from_slice(&body).expect("json");
        let id = file["id"].as_str().expect("id");
        for path in [
            format!("/openai/v1/files/{id}"),
            format!("/openai/v1/files/{id}/content"),
            "/openai/v1/files".to_string(),
        ] {
            let (status, headers, body) = gw.get_with_key(&path).await;
            assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
            assert_eq!(headers["x-ms-region"], created_headers["x-ms-region"]);
        }
        let (_, _, content) = gw
            .get_with_key(&format!("/openai/v1/files/{id}/content"))
            .await;
        assert_eq!(content, "hello");
    });
}

/// A form part: name, content type, content.
type Part<'a> = (&'a str, Option<&'a str>, &'a str);

/// A form of text parts and one small file, as the SDKs upload one: (name, content type,
/// value) of each part.
fn form(parts: &[Part], boundary: &str) -> String {
    let mut form = String::new();
    for (name, content_type, value) in parts {
        form += &format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n");
        if let Some(t) = content_type {
            form += &format!("Content-Type: {t}\r\n");
        }
        form += &format!("\r\n{value}\r\n");
    }
    form + &format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhello\r\n--{boundary}--\r\n"
    )
}

/// Uploads `body` as a file (`POST /openai/v1/files`) with the client's key: status and body.
async fn upload_to(gw: &Running, boundary: &str, body: String) -> (u16, String) {
    let (status, body) = gw.upload(CLIENT_KEY, boundary, body).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[test]
fn each_form_part_is_checked_against_its_field() {
    run(async {
        let gw = start(Setup::default()).await;
        let boundary = "XyZ";
        let upload = |parts: &[Part]| form(parts, boundary);
        let send = |body: String| upload_to(&gw, boundary, body);
        let json = Some("application/json");
        // An object field as one JSON part, as OpenAPI has a form send it.
        let (status, body) = send(upload(&[
            ("purpose", None, "assistants"),
            (
                "expires_after",
                json,
                r#"{"anchor":"created_at","seconds":86400}"#,
            ),
        ]))
        .await;
        assert_eq!(status, 200, "{body}");

        let refused: [(&[Part], &str); 6] = [
            (
                &[
                    ("purpose", None, "assistants"),
                    (
                        "expires_after",
                        json,
                        r#"{"anchor":"nope","seconds":86400}"#,
                    ),
                ],
                "anchor: must be one of \\\"created_at\\\"",
            ),
            (
                &[
                    ("purpose", None, "assistants"),
                    (
                        "expires_after",
                        json,
                        r#"{"anchor":"created_at","seconds":2147483648}"#,
                    ),
                ],
                "seconds: 2147483648 is out of range",
            ),
            (
                &[
                    ("purpose", None, "assistants"),
                    ("expires_after", None, "soon"),
                ],
                "not valid JSON",
            ),
            (
                &[
                    ("purpose", None, "assistants"),
                    ("expires_after[anchor]", None, "created_at"),
                    ("expires_after[seconds]", None, "a day"),
                ],
                "expected an integer, got \\\"a day\\\"",
            ),
            (
                &[
                    ("purpose[kind]", None, "assistants"),
                    ("expires_after[anchor]", None, "created_at"),
                    ("expires_after[seconds]", None, "60"),
                ],
                "`purpose` has no members",
            ),
            (
                &[
                    ("purpose", None, "assistants"),
                    ("expires_after[anchor]", None, "created_at"),
                ],
                "expires_after[seconds]",
            ),
        ];
        for (parts, why) in refused {
            let (status, body) = send(upload(parts)).await;
            assert_eq!(status, 400, "{parts:?}: {body}");
            assert!(body.contains(why), "{parts:?}: {body}");
        }
        assert_eq!(gw.sims.iter().map(|s| s.recorded().len()).sum::<usize>(), 1);
    });
}

/// `spec/v1/files-expires-after.overlay.yaml` makes `expires_after` optional, as Azure's REST
/// reference says: the SDK's documented upload goes through, the document served says what
/// was changed, and what the spec still requires is refused naming the spec.
#[test]
fn the_expires_after_overlay_is_enforced_served_and_named() {
    run(async {
        let gw = start(Setup::default()).await;
        let boundary = "XyZ";
        let upload = |fields: &[(&str, &str)]| {
            let parts: Vec<Part> = fields.iter().map(|(n, v)| (*n, None, *v)).collect();
            form(&parts, boundary)
        };
        let send = |body: String| upload_to(&gw, boundary, body);
        let (status, body) = send(upload(&[("purpose", "assistants")])).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = send(upload(&[])).await;
        assert_eq!(status, 400, "{body}");
        let error: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(
            error["error"]["message"],
            "Invalid parameter 'purpose': this form field is required by the v1 spec"
        );
        let (status, body) = send(upload(&[
            ("purpose", "assistants"),
            ("expires_after[anchor]", "created_at"),
        ]))
        .await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body.contains(
                "Invalid parameter 'expires_after[seconds]': this member is required by the v1 spec"
            ),
            "{body}"
        );
        assert_eq!(gw.all_recorded().len(), 1);

        let (status, _, served) = gw.get("/openapi/v1.json").await;
        assert_eq!(status, 200);
        let served: serde_json::Value = serde_json::from_slice(&served).expect("json");
        assert_eq!(
            served["components"]["schemas"]["AzureCreateFileRequestMultiPart"]["required"],
            serde_json::json!(["file", "purpose"])
        );
        let overlay = &served["x-aoai-gateway-overlays"][0];
        assert_eq!(overlay["file"], "spec/v1/files-expires-after.overlay.yaml");
        assert_eq!(
            overlay["actions"][0]["changed"],
            serde_json::json!(["#/components/schemas/AzureCreateFileRequestMultiPart/required/1"])
        );
    });
}
