//! The load of `bench/realtime.sh`: many realtime sessions at once, each sending 20 ms audio
//! appends at a steady rate and, every tenth event, a commit, whose `committed` answer times the
//! round trip through whatever is in front of the simulated resource.
//!
//!   realtime <ws-url> <key> <sessions> <events/s per session> <seconds> <pid>
//!
//! prints one line: `p50_ms p99_ms events cpu_us_per_event rss_idle_kib rss_open_kib`, where the
//! CPU and memory are those of process `pid` (the proxy measured; 0 for none): CPU over the
//! timed events, resident memory before the sessions open and once they all are.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix_http::ws::{Frame, Message};
use futures_util::{SinkExt, StreamExt};

/// 20 ms of pcm16 at 24 kHz, as base64.
const APPEND: &str = "AAAA";

#[derive(Default)]
struct Seen {
    rtts_us: Vec<u64>,
    events: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, key, sessions, rate, seconds, pid] = args.as_slice() else {
        eprintln!("usage: realtime <ws-url> <key> <sessions> <events/s> <seconds> <pid>");
        std::process::exit(2);
    };
    let sessions: usize = sessions.parse().expect("sessions");
    let rate: u64 = rate.parse().expect("events/s");
    let seconds: u64 = seconds.parse().expect("seconds");
    let pid: u32 = pid.parse().expect("pid");
    actix_web::rt::System::new().block_on(async move {
        // Each session holds a connection: no pool limit (awc's default is 100).
        let client = awc::Client::builder()
            .connector(awc::Connector::new().limit(0))
            .timeout(Duration::from_secs(30))
            .finish();
        let idle = rss_kib(pid);
        let append = format!(
            r#"{{"type":"input_audio_buffer.append","audio":"{}"}}"#,
            APPEND.repeat(320)
        );
        let seen = Rc::new(RefCell::new(Seen::default()));
        let mut sockets = Vec::new();
        for _ in 0..sessions {
            let (_, mut socket) = client
                .ws(url.as_str())
                .header("api-key", key.as_str())
                .connect()
                .await
                .expect("a session opens");
            // session.created
            let _ = socket.next().await;
            sockets.push(socket);
        }
        actix_web::rt::time::sleep(Duration::from_millis(500)).await;
        let open = rss_kib(pid);
        let started_cpu = cpu_ticks(pid);
        let started = Instant::now();
        let until = started + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for (n, socket) in sockets.into_iter().enumerate() {
            let (mut sink, mut stream) = socket.split();
            let pending: Rc<RefCell<VecDeque<Instant>>> = Rc::default();
            let (seen_r, pending_r) = (seen.clone(), pending.clone());
            tasks.push(actix_web::rt::spawn(async move {
                while let Some(Ok(frame)) = stream.next().await {
                    if let Frame::Text(text) = frame {
                        seen_r.borrow_mut().events += 1;
                        if text.windows(9).any(|w| w == b"committed")
                            && let Some(sent) = pending_r.borrow_mut().pop_front()
                        {
                            let rtt = sent.elapsed().as_micros() as u64;
                            seen_r.borrow_mut().rtts_us.push(rtt);
                        }
                    }
                }
            }));
            let (append, seen) = (append.clone(), seen.clone());
            tasks.push(actix_web::rt::spawn(async move {
                // Sessions start spread over one period, as real callers do.
                let period = Duration::from_micros(1_000_000 / rate.max(1));
                actix_web::rt::time::sleep(period * (n as u32 % 50) / 50).await;
                let mut tick = actix_web::rt::time::interval(period);
                let mut i = 0u64;
                while Instant::now() < until {
                    tick.tick().await;
                    i += 1;
                    let event = if i.is_multiple_of(10) {
                        pending.borrow_mut().push_back(Instant::now());
                        r#"{"type":"input_audio_buffer.commit"}"#.to_string()
                    } else {
                        append.clone()
                    };
                    if sink.send(Message::Text(event.into())).await.is_err() {
                        break;
                    }
                    seen.borrow_mut().events += 1;
                }
                // Long enough for the last commits' answers.
                actix_web::rt::time::sleep(Duration::from_millis(300)).await;
                let _ = sink.send(Message::Close(None)).await;
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
        let used = cpu_ticks(pid).saturating_sub(started_cpu);
        let seen = seen.borrow();
        let mut rtts = seen.rtts_us.clone();
        rtts.sort_unstable();
        let at = |q: f64| {
            rtts.get(((rtts.len() as f64 - 1.0) * q).round() as usize)
                .map_or(0.0, |us| *us as f64 / 1000.0)
        };
        let tick_us = 1e6 / clock_ticks_per_second();
        println!(
            "{:.3} {:.3} {} {:.2} {} {}",
            at(0.5),
            at(0.99),
            seen.events,
            used as f64 * tick_us / seen.events.max(1) as f64,
            idle,
            open
        );
    });
}

/// Resident memory of `pid`, in KiB (0 for none).
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time (user and system) of `pid` so far, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command's closing parenthesis; utime and stime are 14 and 15.
            let rest = &s[s.rfind(')')? + 2..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}
