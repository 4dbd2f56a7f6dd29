//! Limits per subscription: concurrent callers cannot push a window past its limit by more than
//! their reservations fell short; a refusal is Azure's 429 with a `retry-after` right to the
//! second and no backend call; every answer carries the subscription's own headroom.

mod common;

use std::time::{Duration, Instant};

use aoai_gateway::config::FileConfig;
use common::{Backend, CHAT, Running, Setup, error_code, metric, run, start};
use futures_util::future::join_all;
use serde_json::Value;

async fn limited(tweak: fn(&mut FileConfig)) -> Running {
    start(Setup {
        backends: vec![Backend::new("eastus", "East US")],
        tweak,
        ..Setup::default()
    })
    .await
}

/// A chat call that reserves `max_tokens` plus its prompt.
fn ask(max_tokens: u64) -> String {
    format!(
        r#"{{"messages":[{{"role":"user","content":"Hello world"}}],"max_tokens":{max_tokens}}}"#
    )
}

/// The prompt of [`ask`], estimated: 2 tokens, 3 for the message, 3 to prime the reply.
const PROMPT: u64 = 8;

#[test]
fn concurrent_callers_cannot_push_a_minute_past_its_limit() {
    run(async {
        let gw = limited(|c| c.subscriptions[0].limits.tokens_per_minute = Some(1000)).await;
        // Forty at once, each reserving 8 + 50; each spends about 20.
        let body = ask(50);
        let calls = (0..40).map(|_| gw.post_json(CHAT, &body));
        let answers = join_all(calls).await;
        let mut spent = 0;
        let mut overshoot = 0;
        let mut refused = 0;
        for (status, headers, body) in &answers {
            match status {
                200 => {
                    let answer: Value = serde_json::from_slice(body).unwrap();
                    let total = answer["usage"]["total_tokens"].as_u64().unwrap();
                    spent += total;
                    overshoot += total.saturating_sub(PROMPT + 50);
                }
                429 => {
                    refused += 1;
                    assert_eq!(error_code(body), "429");
                    let after: u64 = headers["retry-after"].parse().unwrap();
                    assert!((1..=60).contains(&after), "{headers:?}");
                    assert!(
                        headers.contains_key("x-ratelimit-remaining-tokens"),
                        "{headers:?}"
                    );
                }
                other => panic!("{other}: {}", String::from_utf8_lossy(body)),
            }
        }
        assert!(refused > 0, "forty reservations of 58 do not fit 1000");
        assert!(spent <= 1000 + overshoot, "{spent} spent");
        // Refusals never reached the backend.
        assert_eq!(gw.all_recorded().len(), 40 - refused);
        let metrics = gw.metrics().await;
        assert_eq!(
            metric(
                &metrics,
                "aoai_gateway_limit_refusals_total{subscription=\"team-a\",limit=\"tokens_per_minute\"}"
            ),
            Some(refused as u64)
        );
    });
}

#[test]
fn reservations_that_fall_short_overshoot_by_no_more_than_the_shortfall() {
    run(async {
        let gw = limited(|c| c.subscriptions[0].limits.tokens_per_minute = Some(1000)).await;
        // Each reserves 8 + 1, and spends about 20: more than it reserved.
        let body = ask(1);
        let answers = join_all((0..150).map(|_| gw.post_json(CHAT, &body))).await;
        let (mut spent, mut overshoot) = (0, 0);
        for (status, _, body) in &answers {
            if *status == 200 {
                let answer: Value = serde_json::from_slice(body).unwrap();
                let total = answer["usage"]["total_tokens"].as_u64().unwrap();
                spent += total;
                overshoot += total.saturating_sub(PROMPT + 1);
            }
        }
        assert!(answers.iter().any(|(s, _, _)| *s == 429));
        assert!(
            spent <= 1000 + overshoot,
            "{spent} spent, {overshoot} beyond reservations"
        );
    });
}

#[test]
fn a_refusal_says_when_to_retry_to_the_second() {
    run(async {
        let gw = limited(|c| {
            c.subscriptions[0].limits.tokens_per_minute = Some(100);
            c.subscriptions[0].limits.requests_per_minute = Some(3);
        })
        .await;
        let first = Instant::now();
        let (status, headers, _) = gw.post_json(CHAT, &ask(60)).await;
        assert_eq!(status, 200);
        // The subscription's headroom, not the backend's.
        let tokens_left: u64 = headers["x-ratelimit-remaining-tokens"].parse().unwrap();
        assert!(tokens_left < 100 - 8 - 60 + 1, "{headers:?}");
        assert_eq!(headers["x-ratelimit-remaining-requests"], "2");
        actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
        let (status, headers, body) = gw.post_json(CHAT, &ask(90)).await;
        assert_eq!(status, 429, "{}", String::from_utf8_lossy(&body));
        // The first call's tokens leave the window 60 s after it was made.
        let expected = 60_000 - first.elapsed().as_millis() as i64;
        let ms: i64 = headers["retry-after-ms"].parse().unwrap();
        assert!(
            (ms - expected).abs() <= 1000,
            "retry-after-ms {ms}, expected {expected}"
        );
        let s: i64 = headers["retry-after"].parse().unwrap();
        assert_eq!(s, (ms + 999) / 1000);
        let error: Value = serde_json::from_slice(&body).unwrap();
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains("100 tokens per minute"), "{message}");
        assert_eq!(gw.all_recorded().len(), 1);
        // Requests: the third call fits, the fourth waits for the first to leave.
        assert_eq!(gw.post_json(CHAT, &ask(1)).await.0, 200);
        assert_eq!(gw.post_json(CHAT, &ask(1)).await.0, 200);
        let (status, headers, body) = gw.post_json(CHAT, &ask(1)).await;
        assert_eq!(status, 429);
        let error: Value = serde_json::from_slice(&body).unwrap();
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("3 requests per minute")
        );
        let ms: i64 = headers["retry-after-ms"].parse().unwrap();
        let expected = 60_000 - first.elapsed().as_millis() as i64;
        assert!(
            (ms - expected).abs() <= 1000,
            "retry-after-ms {ms}, expected {expected}"
        );
        assert_eq!(headers["x-ratelimit-remaining-requests"], "0");
    });
}

#[test]
fn a_deployment_can_have_a_limit_of_its_own_and_a_day_a_budget() {
    run(async {
        let gw = limited(|c| {
            let limits = aoai_gateway::config::LimitsConfig {
                tokens_per_minute: Some(100),
                ..Default::default()
            };
            c.subscriptions[0]
                .deployment_limits
                .insert("gpt-4o".into(), limits);
            c.subscriptions[0].limits.tokens_per_day = Some(400);
        })
        .await;
        // The first spends about 20 of its 68; the second's 98 do not fit what is left.
        assert_eq!(gw.post_json(CHAT, &ask(60)).await.0, 200);
        let (status, _, body) = gw.post_json(CHAT, &ask(90)).await;
        assert_eq!(status, 429);
        assert!(String::from_utf8_lossy(&body).contains("on deployment 'gpt-4o'"));
        // Another deployment is held only to the subscription's budget for the day.
        let other = CHAT.replace("gpt-4o", "gpt-4o-mini");
        let (status, headers, _) = gw.post_json(&other, &ask(200)).await;
        assert_eq!(status, 200);
        assert!(
            headers["x-ratelimit-remaining-tokens"]
                .parse::<u64>()
                .unwrap()
                < 200
        );
        let (status, headers, body) = gw.post_json(&other, &ask(380)).await;
        assert_eq!(status, 429);
        assert!(String::from_utf8_lossy(&body).contains("tokens per day (UTC)"));
        // Until midnight UTC.
        let after: u64 = headers["retry-after"].parse().unwrap();
        assert!((1..=86_400).contains(&after));
    });
}
