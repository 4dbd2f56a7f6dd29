//! The Realtime API through the gateway, with awc's WebSocket client against simulated
//! resources: sessions opened with a key wherever a client may put one (and never passed on),
//! events relayed both ways with their usage counted, a handshake refused by one backend taken
//! by the next, limits at open and at `response.create`, close codes passed in both directions
//! and a dropped backend never hidden, and ephemeral secrets that open their minting backend
//! only, and only until they expire. The official SDK's realtime client is
//! `tests/sdk_conformance.rs`'s business.

mod common;

use std::time::Duration;

use actix_http::ws::{CloseCode, CloseReason, Frame, Message};
use common::{
    Backend, CLIENT_KEY, Running, Setup, Socket, capture_log, metric, run, start, tokens,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};

/// Opens a session at `path` (with its query) of the first replica.
async fn open(
    gw: &Running,
    path: &str,
    headers: &[(&str, &str)],
    protocols: &[&str],
) -> Result<(awc::http::header::HeaderMap, Socket), u16> {
    gw.socket(&gw.base, path, headers, protocols).await
}

/// Opens a v1 session on `deployment` with the subscription's key in `api-key`.
async fn open_v1(gw: &Running, deployment: &str) -> (awc::http::header::HeaderMap, Socket) {
    open(
        gw,
        &format!("/openai/v1/realtime?model={deployment}"),
        &[("api-key", CLIENT_KEY)],
        &[],
    )
    .await
    .expect("the session opens")
}

/// What comes next from the server: an event, or its close frame.
#[derive(Debug)]
enum Next {
    Event(Value),
    Closed(Option<CloseReason>),
}

async fn next(socket: &mut Socket) -> Next {
    loop {
        let frame = actix_web::rt::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("the server says something within 10 s")
            .expect("the connection is open")
            .expect("a valid frame");
        match frame {
            Frame::Text(text) => {
                return Next::Event(serde_json::from_slice(&text).expect("a JSON event"));
            }
            Frame::Close(reason) => return Next::Closed(reason),
            _ => {}
        }
    }
}

async fn event(socket: &mut Socket) -> Value {
    match next(socket).await {
        Next::Event(event) => event,
        Next::Closed(reason) => panic!("closed: {reason:?}"),
    }
}

/// Events up to and including the first of type `until`.
async fn events_until(socket: &mut Socket, until: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let event = event(socket).await;
        let done = event["type"] == until;
        seen.push(event);
        if done {
            return seen;
        }
    }
}

async fn send(socket: &mut Socket, event: Value) {
    socket
        .send(Message::Text(event.to_string().into()))
        .await
        .expect("sent");
}

/// The close frame that comes (after any events).
async fn closed(socket: &mut Socket) -> Option<CloseReason> {
    loop {
        if let Next::Closed(reason) = next(socket).await {
            return reason;
        }
    }
}

fn header<'h>(headers: &'h awc::http::header::HeaderMap, name: &str) -> &'h str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// The realtime handshakes the simulated resources received.
fn handshakes(gw: &Running) -> Vec<aoai_gateway::sim::Recorded> {
    gw.all_recorded()
        .into_iter()
        .filter(|r| r.path.ends_with("/realtime"))
        .collect()
}

#[test]
fn a_session_relays_events_both_ways_and_counts_their_usage() {
    run(async {
        let log = capture_log();
        let gw = start(Setup::default()).await;
        let (headers, mut socket) = open(
            &gw,
            "/openai/v1/realtime?model=gpt-realtime",
            &[
                ("api-key", CLIENT_KEY),
                ("x-ms-client-request-id", "rt-session-1"),
            ],
            &[],
        )
        .await
        .expect("the session opens");
        let backend = header(&headers, "x-aoai-gateway-backend").to_string();
        let open_on = |metrics: &str| {
            metric(
                metrics,
                &format!("aoai_gateway_realtime_sessions{{backend=\"{backend}\"}}"),
            )
        };
        assert_eq!(open_on(&gw.metrics().await), Some(1));
        // The status page says so too.
        let (_, _, status) = gw.get("/status.json").await;
        let status: Value = serde_json::from_slice(&status).unwrap();
        let holding: Vec<&Value> = status["tiers"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|t| t["backends"].as_array().into_iter().flatten())
            .filter(|b| b["sessions"] == 1)
            .collect();
        assert_eq!(holding.len(), 1, "{status}");
        assert_eq!(holding[0]["name"], backend.as_str());
        assert!(
            ["eastus", "westeurope"].contains(&backend.as_str()),
            "{headers:?}"
        );
        assert!(!header(&headers, "x-ms-region").is_empty(), "{headers:?}");
        assert!(
            !header(&headers, "apim-request-id").is_empty(),
            "{headers:?}"
        );
        assert_eq!(event(&mut socket).await["type"], "session.created");

        send(
            &mut socket,
            json!({"type": "session.update", "session": {"instructions": "Be brief."}}),
        )
        .await;
        let updated = event(&mut socket).await;
        assert_eq!(updated["type"], "session.updated");
        assert_eq!(updated["session"]["instructions"], "Be brief.");
        send(&mut socket, json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "What is the weather like in Lisbon today?"}]}})).await;
        assert_eq!(
            event(&mut socket).await["type"],
            "conversation.item.created"
        );
        // 0.15 s of audio, in two appends, committed.
        for _ in 0..2 {
            send(
                &mut socket,
                json!({"type": "input_audio_buffer.append", "audio": "A".repeat(4800)}),
            )
            .await;
        }
        send(&mut socket, json!({"type": "input_audio_buffer.commit"})).await;
        assert_eq!(
            event(&mut socket).await["type"],
            "input_audio_buffer.committed"
        );

        let (mut prompt, mut completion, mut audio_deltas) = (0, 0, 0);
        for turn in 0..3 {
            send(
                &mut socket,
                json!({"type": "response.create", "event_id": format!("turn{turn}")}),
            )
            .await;
            let events = events_until(&mut socket, "response.done").await;
            assert_eq!(events[0]["type"], "response.created");
            audio_deltas += events
                .iter()
                .filter(|e| e["type"] == "response.output_audio.delta")
                .count();
            let usage = &events.last().unwrap()["response"]["usage"];
            prompt += usage["input_tokens"].as_u64().unwrap();
            completion += usage["output_tokens"].as_u64().unwrap();
            assert_eq!(event(&mut socket).await["type"], "rate_limits.updated");
        }
        assert!(audio_deltas >= 3, "audio deltas: {audio_deltas}");
        // An event the service does not know is its error event, passed on.
        send(
            &mut socket,
            json!({"type": "no.such.event", "event_id": "bad1"}),
        )
        .await;
        let error = event(&mut socket).await;
        assert_eq!(error["type"], "error");
        assert_eq!(error["error"]["event_id"], "bad1");

        socket
            .send(Message::Close(Some(CloseCode::Normal.into())))
            .await
            .unwrap();
        assert_eq!(
            closed(&mut socket).await.map(|r| r.code),
            Some(CloseCode::Normal)
        );

        // The usage the answers reported is the subscription's, counted once.
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        let metrics = gw.metrics().await;
        assert_eq!(open_on(&metrics), Some(0), "the session is closed");
        assert!(prompt > 0 && completion > 0);
        assert_eq!(
            tokens(&metrics, "team-a", "gpt-realtime", "prompt", "reported"),
            prompt,
            "{metrics}"
        );
        assert_eq!(
            tokens(&metrics, "team-a", "gpt-realtime", "completion", "reported"),
            completion
        );

        // One access record for the session, once it has ended.
        let record = log.record("rt-session-1");
        assert_eq!(record["route"], "realtime");
        assert_eq!(record["subscription"], "team-a");
        assert_eq!(record["backend"], backend.as_str());
        assert_eq!(record["responses"], 3);
        assert_eq!(record["prompt_tokens"], prompt);
        assert_eq!(record["completion_tokens"], completion);
        assert_eq!(
            (record["end"].as_str(), record["closed_by"].as_str()),
            (Some("closed"), Some("client"))
        );
        assert_eq!(record["close_code"], 1000);
        assert!(
            record["duration_ms"].as_f64().is_some_and(|ms| ms > 0.0),
            "{record}"
        );

        // The backend got its own key, never the client's.
        let seen = handshakes(&gw);
        assert_eq!(seen.len(), 1);
        let key_of = |name: &str| gw.keys[if name == "eastus" { 0 } else { 1 }].clone();
        assert_eq!(seen[0].header("api-key"), Some(key_of(&backend).as_str()));
        assert!(
            seen[0].headers.iter().all(|(_, v)| !v.contains(CLIENT_KEY)),
            "{:?}",
            seen[0].headers
        );
        assert_eq!(seen[0].query, "model=gpt-realtime");
    });
}

#[test]
fn browsers_send_their_key_as_a_subprotocol_or_in_the_query_and_it_goes_no_further() {
    run(async {
        let gw = start(Setup::default()).await;
        let path =
            "/openai/realtime?api-version=2025-04-01-preview&deployment=gpt-4o-realtime-preview";
        let offered = format!("openai-insecure-api-key.{CLIENT_KEY}");
        let (headers, mut socket) = open(
            &gw,
            path,
            &[],
            &["realtime", &offered, "openai-beta.realtime-v1"],
        )
        .await
        .expect("opens");
        assert_eq!(header(&headers, "sec-websocket-protocol"), "realtime");
        assert_eq!(event(&mut socket).await["type"], "session.created");
        send(&mut socket, json!({"type": "response.create"})).await;
        let events = events_until(&mut socket, "response.done").await;
        assert!(
            events.iter().any(|e| e["type"] == "response.audio.delta"),
            "dated versions' names"
        );

        let in_query = format!("{path}&api-key={CLIENT_KEY}");
        let (_, mut socket) = open(&gw, &in_query, &[], &[]).await.expect("opens");
        assert_eq!(event(&mut socket).await["type"], "session.created");

        for seen in handshakes(&gw) {
            assert!(
                seen.headers.iter().all(|(_, v)| !v.contains(CLIENT_KEY)),
                "{:?}",
                seen.headers
            );
            assert!(!seen.query.contains(CLIENT_KEY), "{}", seen.query);
            assert!(seen.query.contains("deployment=gpt-4o-realtime-preview"));
        }
        let protocols = handshakes(&gw)[0]
            .header("sec-websocket-protocol")
            .unwrap_or_default()
            .to_string();
        assert!(
            protocols.contains("realtime") && !protocols.contains("insecure"),
            "{protocols}"
        );

        // A wrong key, or none: refused before any backend hears of it.
        assert_eq!(
            open(&gw, path, &[("api-key", "wrong")], &[]).await.err(),
            Some(401)
        );
        assert_eq!(open(&gw, path, &[], &["realtime"]).await.err(), Some(401));
        assert_eq!(handshakes(&gw).len(), 2);
        // Without a deployment, or with a dated path but no api-version: the client's mistake.
        assert_eq!(
            open(
                &gw,
                "/openai/realtime?api-version=2025-04-01-preview",
                &[("api-key", CLIENT_KEY)],
                &[]
            )
            .await
            .err(),
            Some(400)
        );
        assert_eq!(
            open(
                &gw,
                "/openai/realtime?deployment=x",
                &[("api-key", CLIENT_KEY)],
                &[]
            )
            .await
            .err(),
            Some(400)
        );
        // Every other upgrade is still refused, and its connection closed.
        let request = common::raw_post(
            common::CHAT,
            "{}",
            "Upgrade: websocket\r\nConnection: upgrade\r\n",
        );
        let reply = common::raw_exchange(gw.addr, request, Duration::from_secs(5)).await;
        assert_eq!(reply.status(), 400, "{}", reply.head());
        assert!(reply.closed);
    });
}

#[test]
fn a_refused_handshake_moves_to_the_next_backend_and_only_all_refusing_reaches_the_client() {
    run(async {
        let mut east = Backend::new("eastus", "East US");
        east.deployment_map = [("gpt-realtime".to_string(), "rate-limited".to_string())].into();
        let mut west = Backend::new("westeurope", "West Europe");
        west.deployment_map = [("all-busy".to_string(), "rate-limited".to_string())].into();
        east.deployment_map
            .insert("all-busy".into(), "rate-limited".into());
        let gw = start(Setup {
            backends: vec![east, west],
            ..Setup::default()
        })
        .await;
        for _ in 0..3 {
            let (headers, mut socket) = open_v1(&gw, "gpt-realtime").await;
            assert_eq!(header(&headers, "x-aoai-gateway-backend"), "westeurope");
            assert_eq!(event(&mut socket).await["type"], "session.created");
        }
        let refused = handshakes(&gw)
            .iter()
            .filter(|r| r.query.contains("rate-limited"))
            .count();
        assert!(refused >= 1, "East US was asked first at least once");
        assert_eq!(
            open(
                &gw,
                "/openai/v1/realtime?model=all-busy",
                &[("api-key", CLIENT_KEY)],
                &[]
            )
            .await
            .err(),
            Some(429)
        );
    });
}

#[test]
fn close_codes_pass_both_ways_and_a_dropped_backend_is_never_silent() {
    run(async {
        let gw = start(Setup::default()).await;
        let (_, mut socket) = open_v1(&gw, "gpt-realtime").await;
        assert_eq!(event(&mut socket).await["type"], "session.created");
        // A ping is answered by the gateway, on the client's own connection.
        socket
            .send(Message::Ping("are you there".into()))
            .await
            .unwrap();
        let pong = actix_web::rt::time::timeout(Duration::from_secs(5), socket.next()).await;
        assert!(
            matches!(&pong, Ok(Some(Ok(Frame::Pong(data)))) if &data[..] == b"are you there"),
            "{pong:?}"
        );
        let bye = CloseReason {
            code: CloseCode::Other(4000),
            description: Some("the user hung up".into()),
        };
        socket.send(Message::Close(Some(bye))).await.unwrap();
        // The backend answers the code it received; the client gets that answer.
        let answer = closed(&mut socket).await.expect("a close reason");
        assert_eq!(u16::from(answer.code), 4000);

        let (_, mut socket) = open_v1(&gw, "short-session").await;
        assert_eq!(event(&mut socket).await["type"], "session.created");
        send(&mut socket, json!({"type": "response.create"})).await;
        let reason = closed(&mut socket).await.expect("a close reason");
        assert_eq!(reason.code, CloseCode::Policy);
        assert_eq!(
            reason.description.as_deref(),
            Some("the session reached its time limit")
        );

        let (_, mut socket) = open_v1(&gw, "cut-session").await;
        assert_eq!(event(&mut socket).await["type"], "session.created");
        send(&mut socket, json!({"type": "response.create"})).await;
        let reason = closed(&mut socket).await.expect("a close reason");
        assert_eq!(u16::from(reason.code), 1014, "bad gateway: {reason:?}");
    });
}

#[test]
fn a_subscription_over_its_limits_cannot_open_a_session_or_start_a_response() {
    run(async {
        let gw = start(Setup {
            tweak: |c| {
                c.subscriptions[0].limits.tokens_per_minute = Some(100);
                c.subscriptions[0].limits.requests_per_minute = Some(4);
            },
            ..Setup::default()
        })
        .await;
        let (_, mut socket) = open_v1(&gw, "gpt-realtime").await;
        assert_eq!(event(&mut socket).await["type"], "session.created");
        let mut refused = None;
        for turn in 0..3 {
            send(
                &mut socket,
                json!({"type": "response.create", "event_id": format!("turn{turn}")}),
            )
            .await;
            let first = event(&mut socket).await;
            if first["type"] == "error" {
                refused = Some((turn, first));
                break;
            }
            events_until(&mut socket, "rate_limits.updated").await;
        }
        let (turn, error) =
            refused.expect("a response.create refused once the minute's tokens are spent");
        assert_eq!(
            turn, 2,
            "two responses of 37 and 74 tokens spend the 100: {error}"
        );
        assert_eq!(error["error"]["code"], "rate_limit_exceeded");
        assert_eq!(error["error"]["event_id"], "turn2");
        // It was not forwarded: the backend's next answer is to the next event.
        send(
            &mut socket,
            json!({"type": "session.update", "session": {}}),
        )
        .await;
        assert_eq!(event(&mut socket).await["type"], "session.updated");

        // The minute's tokens are spent: no session may open either.
        let path = "/openai/v1/realtime?model=gpt-realtime";
        assert_eq!(
            open(&gw, path, &[("api-key", CLIENT_KEY)], &[]).await.err(),
            Some(429)
        );
        let metrics = gw.metrics().await;
        let refusals = "aoai_gateway_limit_refusals_total{subscription=\"team-a\",limit=\"tokens_per_minute\"}";
        assert_eq!(metric(&metrics, refusals), Some(2), "{metrics}");

        // A session is a request: with one a minute, the second is refused before any backend.
        let gw = start(Setup {
            tweak: |c| c.subscriptions[0].limits.requests_per_minute = Some(1),
            ..Setup::default()
        })
        .await;
        let (_, _first) = open_v1(&gw, "gpt-realtime").await;
        assert_eq!(
            open(&gw, path, &[("api-key", CLIENT_KEY)], &[]).await.err(),
            Some(429)
        );
        assert_eq!(handshakes(&gw).len(), 1);
    });
}

#[test]
fn an_ephemeral_secret_opens_its_minting_backend_only_and_only_until_it_expires() {
    run(async {
        let gw = start(Setup::default()).await;
        let mint = |seconds: u64| {
            let body = json!({"expires_after": {"anchor": "created_at", "seconds": seconds},
                "session": {"type": "realtime", "model": "gpt-realtime"}});
            let gw = &gw;
            async move {
                let (status, headers, body) = gw
                    .post_json("/openai/v1/realtime/client_secrets", &body.to_string())
                    .await;
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                let minted: Value = serde_json::from_slice(&body).unwrap();
                (
                    minted["value"].as_str().unwrap().to_string(),
                    headers["x-aoai-gateway-backend"].clone(),
                )
            }
        };
        // Round-robin: the two secrets come from both backends.
        let minted = [mint(600).await, mint(600).await];
        assert_ne!(minted[0].1, minted[1].1);
        for (secret, minted_by) in &minted {
            for _ in 0..2 {
                let offered = format!("openai-insecure-api-key.{secret}");
                let (headers, mut socket) = open(
                    &gw,
                    "/openai/v1/realtime?model=gpt-realtime",
                    &[],
                    &["realtime", &offered],
                )
                .await
                .expect("the secret opens a session");
                assert_eq!(header(&headers, "x-aoai-gateway-backend"), minted_by);
                assert_eq!(event(&mut socket).await["type"], "session.created");
            }
            // A WebRTC offer made with it goes to the same backend, the secret as credential.
            let answer = gw
                .client
                .post(gw.url("/openai/v1/realtime/calls"))
                .insert_header(("authorization", format!("Bearer {secret}")))
                .insert_header(("content-type", "application/sdp"))
                .send_body("v=0\r\n")
                .await
                .expect("the gateway answers");
            assert_eq!(answer.status().as_u16(), 201);
            assert_eq!(
                header(answer.headers(), "x-aoai-gateway-backend"),
                minted_by
            );
        }
        // The backend saw the secret it minted, and no key of anyone's.
        for seen in gw
            .all_recorded()
            .iter()
            .filter(|r| r.header("authorization").is_some())
        {
            assert!(seen.header("api-key").is_none(), "{:?}", seen.headers);
            assert!(
                seen.header("authorization")
                    .unwrap()
                    .starts_with("Bearer ek_")
            );
        }

        // A dated preview's mint, used as a bearer token.
        let (status, _, body) = gw
            .post_json(
                "/openai/realtimeapi/sessions?api-version=2025-04-01-preview",
                r#"{"model":"gpt-4o-realtime-preview","voice":"verse"}"#,
            )
            .await;
        assert_eq!(status, 200);
        let dated: Value = serde_json::from_slice(&body).unwrap();
        let secret = dated["client_secret"]["value"].as_str().unwrap();
        let bearer = format!("Bearer {secret}");
        let path =
            "/openai/realtime?api-version=2025-04-01-preview&deployment=gpt-4o-realtime-preview";
        assert!(
            open(&gw, path, &[("authorization", &bearer)], &[])
                .await
                .is_ok()
        );

        // Expired, it opens nothing: refused by the gateway, which knows when.
        let (short, _) = mint(1).await;
        actix_web::rt::time::sleep(Duration::from_millis(2100)).await;
        let offered = format!("openai-insecure-api-key.{short}");
        assert_eq!(
            open(
                &gw,
                "/openai/v1/realtime?model=gpt-realtime",
                &[],
                &["realtime", &offered]
            )
            .await
            .err(),
            Some(401)
        );
    });
}
