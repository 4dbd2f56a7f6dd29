//! Priority tiers and weights through real (simulated) backends: a provisioned deployment takes
//! the calls until its quota runs out, then they spill to pay-as-you-go and come back when its
//! rest is over; a backend whose reported headroom is below a call's estimate is passed over
//! before it refuses; weights share a tier.

mod common;

use std::time::Duration;

use common::{Backend, CHAT, Running, Setup, metric, run, start};
use futures_util::future::join_all;

/// A provisioned resource with a small quota (240 tokens a minute: 40 per 10 s window, which
/// two calls overflow), in front of two pay-as-you-go regions.
async fn ptu_then_payg(tweak: fn(&mut aoai_gateway::config::FileConfig)) -> Running {
    let mut ptu = Backend::new("ptu", "East US");
    ptu.tokens_per_minute = Some(240);
    start(Setup {
        backends: vec![
            ptu,
            Backend::new("payg-a", "East US 2"),
            Backend::new("payg-b", "Sweden Central"),
        ],
        tweak,
        ..Setup::default()
    })
    .await
}

fn tiers(c: &mut aoai_gateway::config::FileConfig) {
    c.backends[0].priority = 1;
    c.backends[1].priority = 2;
    c.backends[2].priority = 2;
}

/// Waits, if need be, until a simulated quota window (10 s, on the wall clock) has at least 3 s
/// to run, so that a test's calls fall in one window.
async fn early_in_a_quota_window() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let into = now % 10_000;
    if into > 7_000 {
        actix_web::rt::time::sleep(Duration::from_millis(10_050 - into)).await;
    }
}

const HELLO: &str = r#"{"messages":[{"role":"user","content":"Hello world"}],"max_tokens":16}"#;

async fn served_by(gw: &Running, body: &str) -> String {
    let (status, headers, body) = gw.post_json(CHAT, body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    headers["x-aoai-gateway-backend"].clone()
}

#[test]
fn a_provisioned_deployment_first_then_pay_as_you_go_then_back() {
    run(async {
        let gw = ptu_then_payg(|c| {
            tiers(c);
            c.failover.skip_low_headroom = false;
        })
        .await;
        early_in_a_quota_window().await;
        assert_eq!(served_by(&gw, HELLO).await, "ptu");
        // The second overflows the provisioned window: it answers 429 with retry-after, and
        // the call spills to the next tier, as do the calls while it rests.
        assert_eq!(served_by(&gw, HELLO).await, "payg-a");
        let mut resting = Vec::new();
        for _ in 0..4 {
            resting.push(served_by(&gw, HELLO).await);
        }
        resting.sort();
        assert_eq!(resting, ["payg-a", "payg-a", "payg-b", "payg-b"]);
        let metrics = gw.metrics().await;
        assert_eq!(
            metric(
                &metrics,
                "aoai_gateway_backend_calls_total{backend=\"ptu\",code=\"429\"}"
            ),
            Some(1),
            "{metrics}"
        );
        assert_eq!(
            metric(
                &metrics,
                "aoai_gateway_backend_handed_on_total{backend=\"ptu\"}"
            ),
            Some(1)
        );
        // Its rest (the window's end, at most 10 s) over, the provisioned deployment is back.
        actix_web::rt::time::sleep(Duration::from_millis(10_200)).await;
        assert_eq!(served_by(&gw, HELLO).await, "ptu");
    });
}

#[test]
fn a_backend_short_of_headroom_is_passed_over_before_it_refuses() {
    run(async {
        let gw = ptu_then_payg(|c| {
            tiers(c);
            c.failover.headroom_ttl_ms = 60_000;
        })
        .await;
        early_in_a_quota_window().await;
        // The provisioned deployment reports 24 tokens left (40 - 16).
        assert_eq!(served_by(&gw, HELLO).await, "ptu");
        // A call that may spend 8 + 512 goes elsewhere; one that may spend 8 + 10 fits.
        let large = r#"{"messages":[{"role":"user","content":"Hello world"}]}"#;
        assert_eq!(served_by(&gw, large).await, "payg-a");
        let small = r#"{"messages":[{"role":"user","content":"Hello world"}],"max_tokens":10}"#;
        assert_eq!(served_by(&gw, small).await, "ptu");
        let metrics = gw.metrics().await;
        assert_eq!(
            metric(
                &metrics,
                "aoai_gateway_backend_calls_total{backend=\"ptu\",code=\"429\"}"
            ),
            None,
            "no 429 was spent: {metrics}"
        );
    });
}

#[test]
fn weights_share_a_tier() {
    run(async {
        let gw = start(Setup {
            tweak: |c| {
                c.backends[0].weight = 3;
                c.backends[1].weight = 1;
            },
            ..Setup::default()
        })
        .await;
        for _ in 0..10 {
            let batch = (0..100).map(|_| gw.post_json(CHAT, HELLO));
            for (status, _, _) in join_all(batch).await {
                assert_eq!(status, 200);
            }
        }
        let east = gw.sims[0].recorded().len() as i64;
        let west = gw.sims[1].recorded().len() as i64;
        assert_eq!(east + west, 1000);
        assert!((east - 750).abs() <= 30, "{east} / {west}");
    });
}
