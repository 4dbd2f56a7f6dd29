//! Prompt-cache placement through real (simulated) backends, whose resources each keep their
//! own prompt cache: two applications with distinct long system prompts call in turn. Placed by
//! their prompt (`balancing.deployments.<name>.policy = "prompt_cache"`), every call after each
//! application's first is served from the cache; rotated over three backends, each application
//! meets a cold cache on every backend once, so only about half are.

mod common;

use common::{Backend, Setup, metric, run, start};
use serde_json::Value;

fn chat(deployment: &str) -> String {
    format!("/openai/deployments/{deployment}/chat/completions?api-version=2024-10-21")
}

/// An application's call: its own 1,500-word system prompt, then a question.
fn call(app: &str, question: usize) -> String {
    let system: String = (0..1500).map(|i| format!("{app}{i} ")).collect();
    format!(
        r#"{{"messages":[{{"role":"system","content":"{system}"}},{{"role":"user","content":"question {question}"}}],"max_tokens":16}}"#
    )
}

/// Twelve calls, the two applications in turn: (backend, cached tokens) of each.
async fn in_turn(gw: &common::Running, deployment: &str) -> Vec<(String, u64)> {
    let mut seen = Vec::new();
    for i in 0..12 {
        let app = if i % 2 == 0 { "alpha" } else { "beta" };
        let (status, headers, body) = gw.post_json(&chat(deployment), &call(app, i)).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let answer: Value = serde_json::from_slice(&body).unwrap();
        let cached = answer["usage"]["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap();
        seen.push((headers["x-aoai-gateway-backend"].clone(), cached));
        settled(gw).await;
    }
    seen
}

/// Waits until the gateway has seen its calls end (their backends' calls in flight back to 0):
/// a call's end is noted just after its client has the last byte, and a call still in flight
/// would count against its backend's bound.
async fn settled(gw: &common::Running) {
    for _ in 0..200 {
        let (_, _, body) = gw.get("/status.json").await;
        let status: Value = serde_json::from_slice(&body).unwrap();
        let busy = status["tiers"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|t| t["backends"].as_array().unwrap())
            .any(|b| b["in_flight"] != 0);
        if !busy {
            return;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("calls still in flight after 2 s");
}

#[test]
fn calls_placed_by_their_prompt_find_it_cached() {
    run(async {
        let gw = start(Setup {
            backends: vec![
                Backend::new("east", "East US"),
                Backend::new("west", "West US"),
                Backend::new("sweden", "Sweden Central"),
            ],
            tweak: |c| {
                let policy = aoai_gateway::config::DeploymentBalancing {
                    policy: aoai_gateway::config::Policy::PromptCache,
                };
                c.balancing.deployments.insert("cached".into(), policy);
            },
            ..Setup::default()
        })
        .await;

        let placed = in_turn(&gw, "cached").await;
        // Each application stays on one backend, and its calls after the first are cached.
        let alpha: Vec<_> = placed.iter().step_by(2).collect();
        let beta: Vec<_> = placed.iter().skip(1).step_by(2).collect();
        for app in [&alpha, &beta] {
            assert!(app.iter().all(|(b, _)| *b == app[0].0), "{placed:?}");
            assert_eq!(app[0].1, 0, "{placed:?}");
            assert!(app[1..].iter().all(|(_, c)| *c == 1408), "{placed:?}");
        }

        // The global policy, round-robin, for another deployment: a cold cache on each backend.
        let rotated = in_turn(&gw, "rotated").await;
        let hits = rotated.iter().filter(|(_, c)| *c > 0).count();
        assert_eq!(hits, 6, "{rotated:?}");
        let backends: std::collections::HashSet<_> = rotated.iter().map(|(b, _)| b).collect();
        assert_eq!(backends.len(), 3);

        // The cached tokens are counted, per deployment and backend.
        let metrics = gw.metrics().await;
        let counted = |deployment: &str, backend: &str| {
            metric(
                &metrics,
                &format!(
                    "aoai_gateway_tokens_total{{subscription=\"team-a\",deployment=\"{deployment}\",backend=\"{backend}\",kind=\"cached\",source=\"reported\"}}"
                ),
            )
            .unwrap_or(0)
        };
        for deployment in ["cached", "rotated"] {
            let seen = if deployment == "cached" {
                &placed
            } else {
                &rotated
            };
            for backend in ["east", "west", "sweden"] {
                let expected: u64 = seen
                    .iter()
                    .filter(|(b, _)| b == backend)
                    .map(|(_, c)| c)
                    .sum();
                assert_eq!(
                    counted(deployment, backend),
                    expected,
                    "{deployment} {backend}"
                );
            }
        }
    });
}
