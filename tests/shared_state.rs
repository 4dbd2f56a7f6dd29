//! Many replicas, one gateway: rotation, rests and limits shared through a real Redis
//! (`REDIS_URL`, default `redis://127.0.0.1:6379`; each test has its own key prefix and
//! removes its keys), and Redis going away failing no call. The test that stops Redis starts
//! its own `redis-server` on a free port.

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aoai_gateway::config::{OnStateError, StateConfig};
use common::{Backend, CHAT, CLIENT_KEY, Running, Setup, metric, run, start};
use futures_util::future::join_all;
use serde_json::Value;

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A key prefix no other test (or run) uses.
fn prefix(test: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "aoai-test-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        test
    )
}

fn shared(url: &str, prefix: &str) -> StateConfig {
    StateConfig {
        redis_url: Some(url.into()),
        key_prefix: prefix.into(),
        timeout_ms: 200,
        on_error: OnStateError::Local,
        path: None,
    }
}

/// Removes every key of a test.
fn clean(url: &str, prefix: &str) {
    let Ok(client) = redis::Client::open(url) else {
        return;
    };
    let Ok(mut conn) = client.get_connection() else {
        return;
    };
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{{{prefix}}}*"))
        .query(&mut conn)
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut conn);
    }
}

/// Waits until every replica says its shared state answers (or does not, `up = false`).
async fn until_shared(gw: &Running, up: bool, within: Duration) {
    let started = Instant::now();
    let want = if up { 1 } else { 0 };
    loop {
        let mut all = true;
        for base in &gw.bases {
            let mut response = gw
                .client
                .get(format!("{base}/metrics"))
                .send()
                .await
                .expect("metrics");
            let text = String::from_utf8_lossy(&response.body().await.expect("body")).into_owned();
            all &= metric(&text, "aoai_gateway_state_store_up") == Some(want);
        }
        if all {
            return;
        }
        assert!(
            started.elapsed() < within,
            "replicas did not see shared state {} within {within:?}",
            if up { "up" } else { "down" }
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A chat call through replica `replica`: its status and the backend that answered.
async fn call(gw: &Running, replica: usize, body: &str) -> (u16, String) {
    let response = gw
        .client
        .post(format!("{}{CHAT}", gw.bases[replica]))
        .insert_header(("api-key", CLIENT_KEY))
        .insert_header(("content-type", "application/json"))
        .send_body(body.to_string())
        .await
        .expect("gateway answers");
    let (status, headers, _) = common::collect(response).await;
    let backend = headers
        .get("x-aoai-gateway-backend")
        .cloned()
        .unwrap_or_default();
    (status, backend)
}

const HELLO: &str = r#"{"messages":[{"role":"user","content":"Hello world"}],"max_tokens":50}"#;

#[test]
#[ignore = "needs Redis at REDIS_URL (default 127.0.0.1:6379): scripts/test.sh runs it"]
fn three_replicas_rotate_as_one() {
    let (url, prefix) = (redis_url(), prefix("rotate"));
    run(async {
        let gw = start(Setup {
            replicas: 3,
            state: shared(&url, &prefix),
            ..Setup::default()
        })
        .await;
        until_shared(&gw, true, Duration::from_secs(5)).await;
        for batch in 0..10 {
            let calls = (0..30).map(|i| call(&gw, (batch * 30 + i) % 3, HELLO));
            for (status, _) in join_all(calls).await {
                assert_eq!(status, 200);
            }
        }
        let east = gw.sims[0].recorded().len() as i64;
        let west = gw.sims[1].recorded().len() as i64;
        assert_eq!(east + west, 300);
        assert!((east - 150).abs() <= 1, "{east} / {west}");
    });
    clean(&url, &prefix);
}

#[test]
#[ignore = "needs Redis at REDIS_URL (default 127.0.0.1:6379): scripts/test.sh runs it"]
fn a_rest_one_replica_learns_rests_the_deployment_on_every_replica() {
    let (url, prefix) = (redis_url(), prefix("rest"));
    run(async {
        // East US is over its quota for gpt-4o: 429 with retry-after: 5.
        let mut east = Backend::new("eastus", "East US");
        east.deployment_map
            .insert("gpt-4o".into(), "rate-limited".into());
        east.rate_limited_retry_after = Duration::from_secs(5);
        let gw = start(Setup {
            backends: vec![east, Backend::new("westeurope", "West Europe")],
            replicas: 3,
            state: shared(&url, &prefix),
            ..Setup::default()
        })
        .await;
        until_shared(&gw, true, Duration::from_secs(5)).await;
        // Through replica 0 until East US has refused a call (which fails over to West Europe).
        let mut refused_at = None;
        for _ in 0..4 {
            let (status, backend) = call(&gw, 0, HELLO).await;
            assert_eq!((status, backend.as_str()), (200, "westeurope"));
            if gw.sims[0].recorded().len() == 1 {
                refused_at = Some(Instant::now());
                break;
            }
        }
        let refused_at = refused_at.expect("East US was tried");
        // Every replica knows it within moments: none sends it the deployment for 5 s.
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        let mut n = 0;
        while refused_at.elapsed() < Duration::from_millis(4_700) {
            let (status, backend) = call(&gw, n % 3, HELLO).await;
            assert_eq!((status, backend.as_str()), (200, "westeurope"));
            assert_eq!(
                gw.sims[0].recorded().len(),
                1,
                "East US was called while resting"
            );
            n += 1;
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(n > 30);
        // Then traffic returns to it.
        actix_web::rt::time::sleep(Duration::from_millis(500)).await;
        for i in 0..6 {
            call(&gw, i % 3, HELLO).await;
        }
        assert!(
            gw.sims[0].recorded().len() > 1,
            "East US got no call after its rest"
        );
    });
    clean(&url, &prefix);
}

#[test]
#[ignore = "needs Redis at REDIS_URL (default 127.0.0.1:6379): scripts/test.sh runs it"]
fn a_limit_holds_across_replicas() {
    let (url, prefix) = (redis_url(), prefix("limit"));
    run(async {
        let gw = start(Setup {
            backends: vec![Backend::new("eastus", "East US")],
            replicas: 3,
            state: shared(&url, &prefix),
            tweak: |c| c.subscriptions[0].limits.tokens_per_minute = Some(1000),
            ..Setup::default()
        })
        .await;
        until_shared(&gw, true, Duration::from_secs(5)).await;
        // 120 at once, through all three, each reserving 8 + 10 and spending about 20: one
        // window of 1000 lets some 50 through; three windows would let all through.
        let small = r#"{"messages":[{"role":"user","content":"Hello world"}],"max_tokens":10}"#;
        let answers = join_all((0..120).map(|i| {
            let base = gw.bases[i % 3].clone();
            let client = &gw.client;
            async move {
                let response = client
                    .post(format!("{base}{CHAT}"))
                    .insert_header(("api-key", CLIENT_KEY))
                    .insert_header(("content-type", "application/json"))
                    .send_body(small)
                    .await
                    .expect("answers");
                common::collect(response).await
            }
        }))
        .await;
        let (mut spent, mut overshoot, mut admitted) = (0, 0, 0);
        for (status, headers, body) in &answers {
            match status {
                200 => {
                    let answer: Value = serde_json::from_slice(body).unwrap();
                    let total = answer["usage"]["total_tokens"].as_u64().unwrap();
                    admitted += 1;
                    spent += total;
                    overshoot += total.saturating_sub(8 + 10);
                }
                429 => assert!(headers.contains_key("retry-after")),
                other => panic!("{other}: {}", String::from_utf8_lossy(body)),
            }
        }
        assert!(
            spent <= 1000 + overshoot,
            "{spent} spent, {overshoot} beyond reservations"
        );
        assert!(admitted <= 60, "{admitted} admitted: not one window");
        assert_eq!(gw.all_recorded().len(), admitted);
    });
    clean(&url, &prefix);
}

#[test]
#[ignore = "needs Redis at REDIS_URL (default 127.0.0.1:6379): scripts/test.sh runs it"]
fn settlements_give_back_what_calls_did_not_spend() {
    let (url, prefix) = (redis_url(), prefix("settle"));
    run(async {
        let gw = start(Setup {
            replicas: 2,
            state: shared(&url, &prefix),
            tweak: |c| {
                let s = &mut c.subscriptions[0];
                s.limits.tokens_per_minute = Some(1000);
                let day = aoai_gateway::config::LimitsConfig {
                    tokens_per_day: Some(5000),
                    ..Default::default()
                };
                s.deployment_limits.insert("gpt-4o".into(), day);
            },
            ..Setup::default()
        })
        .await;
        until_shared(&gw, true, Duration::from_secs(5)).await;
        // Without max_tokens a call reserves its prompt and 512: two would not fit a minute of
        // 1000 unless the first gave back what it did not spend.
        let open = r#"{"messages":[{"role":"user","content":"Hello world"}]}"#;
        let mut spent = 0;
        for i in 0..6 {
            let response = gw
                .client
                .post(format!("{}{CHAT}", gw.bases[i % 2]))
                .insert_header(("api-key", CLIENT_KEY))
                .insert_header(("content-type", "application/json"))
                .send_body(open)
                .await
                .expect("answers");
            let (status, _, body) = common::collect(response).await;
            assert_eq!(status, 200, "call {i}: {}", String::from_utf8_lossy(&body));
            let answer: Value = serde_json::from_slice(&body).unwrap();
            spent += answer["usage"]["total_tokens"].as_u64().unwrap();
            // Settlements travel off the call's path.
            actix_web::rt::time::sleep(Duration::from_millis(200)).await;
        }
        // The shared windows hold exactly what the calls spent: the subscription's minute
        // and the deployment's day, read from the one value that holds them (begin.lua).
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut conn = client.get_connection().unwrap();
        let read = r#"
            local s = cmsgpack.unpack(redis.call('GET', KEYS[1]))
            local minute = 0
            for i = 1, #s[''].m, 12 do minute = minute + select(2, struct.unpack('>I4d', s[''].m, i)) end
            return { minute, s[''].mt, s['gpt-4o'].d[2] }
        "#;
        let (minute, total, day): (u64, u64, u64) = redis::cmd("EVAL")
            .arg(read)
            .arg(1)
            .arg(format!("{{{prefix}}}:lim:team-a"))
            .query(&mut conn)
            .unwrap();
        assert_eq!(minute, spent);
        assert_eq!(total, spent, "the minute's total kept beside its seconds");
        assert_eq!(day, spent);
    });
    clean(&url, &prefix);
}

/// A call the gateway refuses after it knows the subscription (here an invalid body) still says
/// what is left of its windows: the shared ones, whichever replica answers.
#[test]
#[ignore = "needs Redis at REDIS_URL (default 127.0.0.1:6379): scripts/test.sh runs it"]
fn a_refusal_reports_the_shared_windows_on_every_replica() {
    let (url, prefix) = (redis_url(), prefix("refusal"));
    run(async {
        let gw = start(Setup {
            replicas: 2,
            state: shared(&url, &prefix),
            tweak: |c| {
                c.subscriptions[0].limits.tokens_per_minute = Some(10_000);
                c.subscriptions[0].limits.requests_per_minute = Some(100);
            },
            ..Setup::default()
        })
        .await;
        until_shared(&gw, true, Duration::from_secs(5)).await;
        // Spent through the first replica only.
        for _ in 0..3 {
            assert_eq!(call(&gw, 0, HELLO).await.0, 200);
        }
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
        let mut seen = Vec::new();
        for replica in [1, 0] {
            let response = gw
                .client
                .post(format!("{}{CHAT}", gw.bases[replica]))
                .insert_header(("api-key", CLIENT_KEY))
                .insert_header(("content-type", "application/json"))
                .send_body(r#"{"messages":[{"role":"robot","content":"x"}]}"#)
                .await
                .expect("answers");
            let (status, headers, _) = common::collect(response).await;
            assert_eq!(status, 400);
            let figure = |name: &str| -> u64 {
                headers
                    .get(name)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("{name} on replica {replica}: {headers:?}"))
            };
            seen.push((
                figure("x-ratelimit-remaining-tokens"),
                figure("x-ratelimit-remaining-requests"),
            ));
        }
        assert_eq!(seen[0], seen[1], "both replicas report the shared windows");
        let (tokens, requests) = seen[0];
        assert_eq!(requests, 97, "three calls were counted");
        assert!(tokens < 10_000 - 3 * 8, "{tokens}");
    });
    clean(&url, &prefix);
}

/// A `redis-server` of the test's own, on `port`.
fn own_redis(port: u16) -> Child {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server runs (scripts/test.sh installs it)");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Whether backends alternate across replicas: calls through replicas 0 and 1 in turn go to
/// the backends in turn (each replica's own rotation would send its two calls to both).
async fn alternates(gw: &Running) -> bool {
    let mut seen = Vec::new();
    for i in 0..8 {
        let (status, backend) = call(gw, i % 2, HELLO).await;
        assert_eq!(status, 200);
        seen.push(backend);
    }
    seen.windows(2).all(|w| w[0] != w[1])
}

/// Two replicas sharing `state`, once both see it answer.
async fn two_replicas(state: StateConfig) -> Running {
    let gw = start(Setup {
        replicas: 2,
        state,
        ..Setup::default()
    })
    .await;
    until_shared(&gw, true, Duration::from_secs(5)).await;
    gw
}

#[test]
#[ignore = "needs redis-server: scripts/test.sh installs it and runs this"]
fn redis_going_away_fails_no_call_and_sharing_resumes() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let mut redis = own_redis(port);
    run(async {
        let gw = two_replicas(shared(&url, &prefix("outage"))).await;
        assert!(
            alternates(&gw).await,
            "shared rotation alternates across replicas"
        );
        // Redis dies while calls go on: none fails.
        let mut failures = 0;
        for i in 0..60 {
            if i == 20 {
                redis.kill().expect("kill redis");
                let _ = redis.wait();
            }
            let (status, _) = call(&gw, i % 2, HELLO).await;
            failures += usize::from(status != 200);
        }
        assert_eq!(failures, 0);
        until_shared(&gw, false, Duration::from_secs(3)).await;
        // Redis is back: sharing resumes, and the replicas rotate as one again.
        redis = own_redis(port);
        until_shared(&gw, true, Duration::from_secs(10)).await;
        assert!(alternates(&gw).await, "sharing resumed");
    });
    let _ = redis.kill();
    let _ = redis.wait();
}

#[test]
#[ignore = "needs redis-server: scripts/test.sh installs it and runs this"]
fn set_to_reject_the_gateway_refuses_calls_without_redis_and_says_it_is_not_ready() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let mut redis = own_redis(port);
    run(async {
        let mut state = shared(&url, &prefix("reject"));
        state.on_error = OnStateError::Reject;
        let gw = two_replicas(state).await;
        assert_eq!(call(&gw, 0, HELLO).await.0, 200);
        assert_eq!(gw.get("/readyz").await.0, 200);
        redis.kill().expect("kill redis");
        let _ = redis.wait();
        // The first call finds it gone (and is served); from then on calls are refused.
        let mut statuses = Vec::new();
        for _ in 0..5 {
            statuses.push(call(&gw, 0, HELLO).await.0);
        }
        assert!(statuses.contains(&503), "{statuses:?}");
        let (status, _, body) = gw.get("/readyz").await;
        assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
        redis = own_redis(port);
        until_shared(&gw, true, Duration::from_secs(10)).await;
        assert_eq!(call(&gw, 0, HELLO).await.0, 200);
        assert_eq!(gw.get("/readyz").await.0, 200);
    });
    let _ = redis.kill();
    let _ = redis.wait();
}

/// `method` on `path` through replica `replica` with the client's key: status, the backend
/// that answered, the body.
async fn object_call(
    gw: &Running,
    replica: usize,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, String, Value) {
    let key = ("api-key", CLIENT_KEY.to_string());
    let (status, headers, body) = gw
        .send_as(&gw.bases[replica], method, path, key, body)
        .await;
    let backend = headers
        .get("x-aoai-gateway-backend")
        .cloned()
        .unwrap_or_default();
    (
        status,
        backend,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

#[test]
#[ignore = "needs redis-server: scripts/test.sh installs it and runs this"]
fn objects_created_through_one_replica_are_followed_through_another() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let mut redis = own_redis(port);
    run(async {
        let gw = two_replicas(shared(&url, &prefix("objects"))).await;
        let create = r#"{"model":"gpt-4o","input":"hi"}"#;
        let mut created = Vec::new();
        for _ in 0..6 {
            let (status, backend, body) =
                object_call(&gw, 0, "POST", "/openai/v1/responses", Some(create)).await;
            assert_eq!(status, 200, "{body}");
            created.push((body["id"].as_str().unwrap().to_string(), backend));
        }
        assert!(created.iter().any(|(_, b)| b == "eastus"));
        assert!(created.iter().any(|(_, b)| b == "westeurope"));
        // Every follow-up, through the other replica, finds the holder.
        for (id, holder) in &created {
            let path = format!("/openai/v1/responses/{id}");
            let (status, backend, _) = object_call(&gw, 1, "GET", &path, None).await;
            assert_eq!((status, &backend), (200, holder));
            let turn =
                format!(r#"{{"model":"gpt-4o","input":"and?","previous_response_id":"{id}"}}"#);
            let (status, backend, _) =
                object_call(&gw, 1, "POST", "/openai/v1/responses", Some(&turn)).await;
            assert_eq!((status, &backend), (200, holder));
            let (status, _, _) = object_call(&gw, 1, "DELETE", &path, None).await;
            assert_eq!(status, 200);
            // Deleted through one replica, forgotten by both.
            let (status, backend, _) = object_call(&gw, 0, "GET", &path, None).await;
            assert_eq!((status, backend.as_str()), (404, ""));
        }
        // Redis goes away: calls that name an object cannot be checked, and are refused rather
        // than risk another team's object; other calls go on.
        let (status, _, body) =
            object_call(&gw, 0, "POST", "/openai/v1/responses", Some(create)).await;
        assert_eq!(status, 200, "{body}");
        let id = body["id"].as_str().unwrap().to_string();
        redis.kill().expect("kill redis");
        let _ = redis.wait();
        let path = format!("/openai/v1/responses/{id}");
        let mut statuses = Vec::new();
        for _ in 0..3 {
            statuses.push(object_call(&gw, 1, "GET", &path, None).await.0);
        }
        assert_eq!(statuses, [503, 503, 503]);
        let (status, _) = call(&gw, 1, HELLO).await;
        assert_eq!(status, 200);
    });
    let _ = redis.kill();
    let _ = redis.wait();
}

#[test]
#[ignore = "needs Redis at REDIS_URL (default 127.0.0.1:6379): scripts/test.sh runs it"]
fn a_realtime_secret_minted_through_one_replica_opens_its_backend_through_another() {
    let (url, prefix) = (redis_url(), prefix("realtime"));
    run(async {
        let gw = start(Setup {
            replicas: 2,
            state: shared(&url, &prefix),
            ..Setup::default()
        })
        .await;
        until_shared(&gw, true, Duration::from_secs(5)).await;
        let mint = r#"{"session":{"type":"realtime","model":"gpt-realtime"}}"#;
        for _ in 0..2 {
            // Minted through the first replica, which records it in Redis...
            let (status, headers, body) = gw
                .post_json("/openai/v1/realtime/client_secrets", mint)
                .await;
            assert_eq!(status, 200);
            let secret: Value = serde_json::from_slice(&body).unwrap();
            let offered = format!(
                "openai-insecure-api-key.{}",
                secret["value"].as_str().unwrap()
            );
            // ...it opens a session through the second, on the backend that minted it.
            let path = "/openai/v1/realtime?model=gpt-realtime";
            let (opened, _socket) = gw
                .socket(&gw.bases[1], path, &[], &["realtime", &offered])
                .await
                .expect("the other replica knows the secret");
            assert_eq!(
                opened
                    .get("x-aoai-gateway-backend")
                    .and_then(|v| v.to_str().ok()),
                Some(headers["x-aoai-gateway-backend"].as_str())
            );
        }
    });
    clean(&url, &prefix);
}
