//! Parameter compatibility for reasoning deployments: a backend deployment declared to take
//! `max_completion_tokens` instead of `max_tokens`, and to refuse `temperature` and `top_p`,
//! gets exactly those changes and every other byte as the client sent it.

mod common;

use common::{Backend, Setup, run, start};
use serde_json::Value;

const O1: &str = "/openai/deployments/o1-mini/chat/completions?api-version=2024-10-21";

/// What an SDK written for GPT-4o sends.
const BODY: &str = r#"{"messages": [{"role": "user", "content": "Prove that 17 is prime."}],
  "max_tokens": 2000, "temperature": 0.2, "top_p": 0.9, "seed": 42, "user": "u-1"}"#;

#[test]
fn a_reasoning_deployment_gets_the_parameters_it_takes_and_nothing_else_changes() {
    run(async {
        let gw = start(Setup {
            backends: vec![Backend::new("eastus", "East US")],
            tweak: |c| {
                let compat = aoai_gateway::config::CompatConfig {
                    rename: [(
                        "max_tokens".to_string(),
                        "max_completion_tokens".to_string(),
                    )]
                    .into(),
                    drop: vec!["temperature".into(), "top_p".into()],
                };
                c.backends[0].compat.insert("o1-mini".into(), compat);
            },
            ..Setup::default()
        })
        .await;
        let (status, _, body) = gw.post_json(O1, BODY).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let sent = &gw.all_recorded()[0].body;
        assert_eq!(
            String::from_utf8_lossy(sent),
            BODY.replace("\"max_tokens\"", "\"max_completion_tokens\"")
                .replace(" \"temperature\": 0.2,", "")
                .replace(" \"top_p\": 0.9,", "")
        );
        let answer: Value = serde_json::from_slice(&body).unwrap();
        assert!(
            answer["usage"]["completion_tokens_details"]["reasoning_tokens"].as_u64() > Some(0)
        );
        // Another deployment on the same backend is sent the client's bytes.
        let gpt = O1.replace("o1-mini", "gpt-4o");
        let (status, _, _) = gw.post_json(&gpt, BODY).await;
        assert_eq!(status, 200);
        assert_eq!(gw.all_recorded()[1].body, BODY.as_bytes());
    });
}

#[test]
fn without_it_the_reasoning_deployment_refuses_the_call() {
    run(async {
        let gw = start(Setup {
            backends: vec![Backend::new("eastus", "East US")],
            ..Setup::default()
        })
        .await;
        let (status, _, body) = gw.post_json(O1, BODY).await;
        assert_eq!(status, 400);
        let error: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(error["error"]["code"], "unsupported_parameter");
        assert_eq!(error["error"]["param"], "max_tokens");
    });
}
