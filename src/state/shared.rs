//! State shared by replicas, in Redis.
//!
//! A call's path touches Redis once: [`Shared::begin`] runs `begin.lua`, which reserves the
//! call's tokens in the subscription's windows and takes its rotation's turn, atomically. The
//! rest is off the call's path, on a thread of its own with one connection for commands and one
//! for pub/sub: settlements are queued and sent in batches (`settle.lua`), and what the
//! replica learns about backends is published on a channel, which every replica listens to
//! (see [`events`](super::events)); rests are also kept in a hash, for replicas that start
//! later.
//!
//! Redis failing never fails a call. A call waits at most `state.timeout_ms`; an error or a
//! timeout marks the store down (logged once), calls then use the replica's own state (or are
//! refused, `state.on_error = "reject"`), and the thread reconnects, waiting twice as long
//! after each failure up to 5 s; the first answer marks it up again. Every key is
//! `{prefix}:…`: the braces are a hash tag, so that on a cluster every key is in one slot, as
//! scripts that touch several keys need.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::{Script, Value};
use tokio::sync::{Notify, mpsc};

use super::events::{Event, Told};
use crate::config::StateSettings;
use crate::limits::{Limits, Remaining, Which};
use crate::proxy::Gateway;

/// Settlements sent in one script call, at most.
const BATCH: usize = 64;
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What `begin.lua` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Admitted {
        remaining: Remaining,
        /// The backend the rotation chose, by name.
        chosen: Option<String>,
    },
    Refused {
        which: Which,
        /// Whether it was the deployment's own window.
        deployment: bool,
        limit: u64,
        wait_ms: u64,
        remaining: Remaining,
    },
}

/// The windows a call is held to, as `begin.lua` takes them.
pub struct Windows<'a> {
    pub subscription: &'a str,
    pub own: &'a Limits,
    /// The deployment, and its own limits if it has any.
    pub deployment: Option<(&'a str, Option<&'a Limits>)>,
    pub tokens: u64,
}

/// A rotation's turn, as `begin.lua` takes it.
pub struct Turn<'a> {
    pub version: &'a str,
    pub deployment: &'a str,
    /// (name, weight) of each candidate.
    pub candidates: Vec<(&'a str, u32)>,
}

/// A reservation to settle.
pub struct Settlement {
    pub subscription: String,
    /// The deployment whose own windows it reserved in, if any.
    pub deployment: Option<String>,
    /// Which token windows the subscription (and the deployment) have: a minute, a day.
    pub own: (bool, bool),
    pub part: (bool, bool),
    pub second: u64,
    pub day: u64,
    pub delta: i64,
}

enum Job {
    Settle(Settlement),
    Tell(Event),
}

pub struct Shared {
    client: redis::Client,
    /// `{prefix}`.
    tag: String,
    timeout: Duration,
    reject: bool,
    /// Tells this replica's events from the others'.
    replica: u64,
    conn: RwLock<Option<MultiplexedConnection>>,
    up: AtomicBool,
    /// The connection failed: the thread reconnects.
    failed: Notify,
    begin: Script,
    settle: Script,
    jobs: mpsc::UnboundedSender<Job>,
    queue: Mutex<Option<mpsc::UnboundedReceiver<Job>>>,
    /// Where Redis is, for the log (never its password).
    host: String,
}

/// A part of a key: `:` and `%` are escaped, so that no two names make the same key.
fn part(name: &str) -> String {
    name.replace('%', "%25").replace(':', "%3A")
}

fn now_ms() -> u64 {
    crate::limits::now_ms()
}

impl Shared {
    pub fn new(settings: &StateSettings) -> Result<Shared, String> {
        let client = redis::Client::open(settings.redis_url.as_str())
            .map_err(|e| format!("state.redis_url: {:?}", e.kind()))?;
        let info = client.get_connection_info();
        let host = info.addr().to_string();
        let (jobs, queue) = mpsc::unbounded_channel();
        Ok(Shared {
            client,
            tag: format!("{{{}}}", settings.key_prefix),
            timeout: settings.timeout,
            reject: settings.reject,
            replica: std::hash::BuildHasher::hash_one(
                &std::hash::RandomState::new(),
                std::process::id(),
            ),
            conn: RwLock::new(None),
            up: AtomicBool::new(false),
            failed: Notify::new(),
            begin: Script::new(include_str!("begin.lua")),
            settle: Script::new(include_str!("settle.lua")),
            jobs,
            queue: Mutex::new(Some(queue)),
            host,
        })
    }

    /// Whether Redis answers.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Whether calls that need it are refused while Redis does not answer.
    pub fn rejects(&self) -> bool {
        self.reject
    }

    fn connection(&self) -> Option<MultiplexedConnection> {
        self.conn
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_connection(&self, conn: Option<MultiplexedConnection>) {
        *self.conn.write().unwrap_or_else(PoisonError::into_inner) = conn;
    }

    fn mark_up(&self) {
        if !self.up.swap(true, Ordering::AcqRel) {
            tracing::info!(
                "shared state at {} answers: replicas share it again",
                self.host
            );
        }
    }

    fn mark_down(&self, why: &str) {
        if self.up.swap(false, Ordering::AcqRel) {
            let then = if self.reject {
                "calls that need it are refused with 503"
            } else {
                "each replica uses its own state"
            };
            tracing::warn!(
                "shared state at {} failed ({why}): {then} until it answers",
                self.host
            );
            // Only a listener waiting now: a stored wake-up would end the next one at once.
            self.failed.notify_waiters();
        }
    }

    fn limit_keys(&self, subscription: &str, deployment: Option<&str>, day: u64) -> [String; 6] {
        let own = format!("{}:lim:{}:all", self.tag, part(subscription));
        let none = self.placeholder();
        let mut keys = [
            format!("{own}:tpm"),
            format!("{own}:rpm"),
            format!("{own}:day:{day}"),
            none.clone(),
            none.clone(),
            none,
        ];
        if let Some(deployment) = deployment {
            let dep = format!(
                "{}:lim:{}:dep:{}",
                self.tag,
                part(subscription),
                part(deployment)
            );
            keys[3] = format!("{dep}:tpm");
            keys[4] = format!("{dep}:rpm");
            keys[5] = format!("{dep}:day:{day}");
        }
        keys
    }

    /// Stands in for a window or rotation a call has not: a key of the prefix's slot, so that
    /// a script's keys are always in one cluster slot (it is never written).
    fn placeholder(&self) -> String {
        format!("{}:-", self.tag)
    }

    fn channel(&self) -> String {
        format!("{}:events", self.tag)
    }

    fn rests_key(&self) -> String {
        format!("{}:rests", self.tag)
    }

    /// Runs `begin.lua` for a call (see the module note); `Err` when Redis did not answer in
    /// time, which marks the store down.
    pub async fn begin(
        &self,
        windows: Option<&Windows<'_>>,
        turn: Option<&Turn<'_>>,
        now: u64,
    ) -> Result<Reply, ()> {
        let Some(mut conn) = self.connection() else {
            return Err(());
        };
        let mut invocation = self.begin.prepare_invoke();
        let day = now / 86_400_000;
        let (keys, limits) = match windows {
            Some(w) => {
                let keys = self.limit_keys(w.subscription, w.deployment.map(|d| d.0), day);
                let none = Limits::default();
                let part = w.deployment.and_then(|d| d.1).unwrap_or(&none);
                let limits = [
                    w.own.tokens_per_minute,
                    w.own.requests_per_minute,
                    w.own.tokens_per_day,
                    part.tokens_per_minute,
                    part.requests_per_minute,
                    part.tokens_per_day,
                ];
                (keys, limits)
            }
            None => (std::array::from_fn(|_| self.placeholder()), [None; 6]),
        };
        for key in &keys {
            invocation.key(key.as_str());
        }
        match turn {
            Some(t) => invocation.key(format!(
                "{}:rot:{}:{}",
                self.tag,
                part(t.version),
                part(t.deployment)
            )),
            None => invocation.key(self.placeholder()),
        };
        invocation.arg(now).arg(windows.map_or(0, |w| w.tokens));
        for limit in limits {
            invocation.arg(limit.unwrap_or(0));
        }
        for (name, weight) in turn.map(|t| t.candidates.as_slice()).unwrap_or_default() {
            invocation.arg(*name).arg(*weight);
        }
        let answered = actix_web::rt::time::timeout(
            self.timeout,
            invocation.invoke_async::<Vec<Value>>(&mut conn),
        )
        .await;
        match answered {
            Ok(Ok(values)) => parse_begin(&values).ok_or_else(|| {
                self.mark_down("an answer the gateway does not understand");
            }),
            Ok(Err(e)) => {
                self.mark_down(&format!("{:?}", e.kind()));
                Err(())
            }
            Err(_) => {
                self.mark_down(&format!("no answer within {} ms", self.timeout.as_millis()));
                Err(())
            }
        }
    }

    /// Queues a settlement, sent with others off the call's path.
    pub fn settle(&self, settlement: Settlement) {
        let _ = self.jobs.send(Job::Settle(settlement));
    }

    /// Tells the other replicas what this one learnt about a backend.
    pub fn tell(&self, backend: &str, deployment: Option<&str>, outcome: Told) {
        let _ = self.jobs.send(Job::Tell(Event {
            replica: self.replica,
            backend: backend.to_string(),
            deployment: deployment.map(str::to_string),
            outcome,
        }));
    }

    /// Starts the thread that keeps the connections, sends what is queued and listens to the
    /// other replicas. It ends when the gateway is gone.
    pub fn start(self: &Arc<Self>, gateway: Weak<Gateway>) -> std::io::Result<()> {
        let shared = self.clone();
        std::thread::Builder::new()
            .name("shared-state".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match runtime {
                    Ok(runtime) => runtime.block_on(shared.keep(gateway)),
                    Err(e) => tracing::error!("shared state cannot start its runtime: {e}"),
                }
            })
            .map(|_| ())
    }

    async fn keep(self: Arc<Self>, gateway: Weak<Gateway>) {
        // rediss:// connects with the same crypto as the upstream client.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let queue = self
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(queue) = queue {
            tokio::spawn(self.clone().send_queued(queue, gateway.clone()));
        }
        let mut backoff = Duration::from_millis(100);
        let mut told_down = false;
        while gateway.strong_count() > 0 {
            match self.connect().await {
                Ok(pubsub) => {
                    backoff = Duration::from_millis(100);
                    told_down = false;
                    self.restore_rests(&gateway).await;
                    self.mark_up();
                    self.listen(pubsub, &gateway).await;
                    self.set_connection(None);
                    self.mark_down("the connection was lost");
                }
                Err(why) => {
                    if !told_down {
                        told_down = true;
                        tracing::warn!(
                            "shared state at {} cannot be reached ({why}); trying again",
                            self.host
                        );
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Opens both connections and subscribes to the channel.
    async fn connect(&self) -> Result<redis::aio::PubSub, String> {
        let limit = Duration::from_secs(2);
        let conn = tokio::time::timeout(limit, self.client.get_multiplexed_async_connection())
            .await
            .map_err(|_| "no answer to connect".to_string())?
            .map_err(|e| format!("{:?}", e.kind()))?;
        let mut pubsub = tokio::time::timeout(limit, self.client.get_async_pubsub())
            .await
            .map_err(|_| "no answer to connect".to_string())?
            .map_err(|e| format!("{:?}", e.kind()))?;
        pubsub
            .subscribe(self.channel())
            .await
            .map_err(|e| format!("{:?}", e.kind()))?;
        self.set_connection(Some(conn));
        Ok(pubsub)
    }

    /// Applies the other replicas' events until the connection fails (or the gateway is
    /// gone); checks the connection each second.
    async fn listen(&self, mut pubsub: redis::aio::PubSub, gateway: &Weak<Gateway>) {
        let mut messages = pubsub.on_message();
        loop {
            tokio::select! {
                message = messages.next() => {
                    let Some(message) = message else { return };
                    let Ok(text) = message.get_payload::<String>() else { continue };
                    if let (Ok(event), Some(gw)) = (serde_json::from_str::<Event>(&text), gateway.upgrade())
                        && event.replica != self.replica
                    {
                        apply(&gw, &event);
                    }
                }
                () = self.failed.notified() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {
                    if gateway.strong_count() == 0 {
                        return;
                    }
                    let Some(mut conn) = self.connection() else { return };
                    let ping = redis::cmd("PING");
                    let answered = ping.query_async::<String>(&mut conn);
                    if !matches!(tokio::time::timeout(Duration::from_secs(1), answered).await, Ok(Ok(_))) {
                        return;
                    }
                    self.mark_up();
                }
            }
        }
    }

    /// Rests other replicas recorded before this one listened.
    async fn restore_rests(&self, gateway: &Weak<Gateway>) {
        let (Some(mut conn), Some(gw)) = (self.connection(), gateway.upgrade()) else {
            return;
        };
        let mut read = redis::cmd("HGETALL");
        read.arg(self.rests_key());
        let answered = read.query_async::<Vec<(String, String)>>(&mut conn);
        let Ok(Ok(rests)) = tokio::time::timeout(Duration::from_secs(2), answered).await else {
            return;
        };
        let now = now_ms();
        for (field, until) in rests {
            let (Ok(until), Some((backend, deployment))) =
                (until.parse::<u64>(), field.split_once('\u{1f}'))
            else {
                continue;
            };
            let Some(left) = until.checked_sub(now).filter(|l| *l > 0) else {
                continue;
            };
            let outcome = if deployment.is_empty() {
                Told::Unreachable { rest_ms: left }
            } else {
                Told::Failed {
                    rest_ms: Some(left),
                }
            };
            apply(
                &gw,
                &Event {
                    replica: 0,
                    backend: backend.to_string(),
                    deployment: (!deployment.is_empty()).then(|| deployment.to_string()),
                    outcome,
                },
            );
        }
    }

    /// Sends what calls queued, in batches, while Redis answers (what is queued while it does
    /// not is dropped: settlements made while it was up correct only its windows).
    async fn send_queued(
        self: Arc<Self>,
        mut queue: mpsc::UnboundedReceiver<Job>,
        gateway: Weak<Gateway>,
    ) {
        while let Some(first) = queue.recv().await {
            if gateway.strong_count() == 0 {
                return;
            }
            let mut settlements = Vec::new();
            let mut events = Vec::new();
            let mut job = Some(first);
            while let Some(next) = job.take() {
                match next {
                    Job::Settle(s) => settlements.push(s),
                    Job::Tell(e) => events.push(e),
                }
                if settlements.len() < BATCH * 4 {
                    job = queue.try_recv().ok();
                }
            }
            let Some(mut conn) = self.connection().filter(|_| self.is_up()) else {
                continue;
            };
            for batch in settlements.chunks(BATCH) {
                let mut invocation = self.settle.prepare_invoke();
                let now = now_ms();
                let none = self.placeholder();
                invocation.arg(now).arg(none.as_str());
                let today = now / 86_400_000;
                for s in batch {
                    let then = self.limit_keys(&s.subscription, s.deployment.as_deref(), s.day);
                    let now = self.limit_keys(&s.subscription, s.deployment.as_deref(), today);
                    // A window the call is not held to has the placeholder.
                    let keys = [
                        (s.own.0, &then[0]),
                        (s.own.1, &then[2]),
                        (s.own.1, &now[2]),
                        (s.part.0, &then[3]),
                        (s.part.1, &then[5]),
                        (s.part.1, &now[5]),
                    ];
                    for (held, key) in keys {
                        invocation.key(if held { key.as_str() } else { none.as_str() });
                    }
                    invocation.arg(s.second).arg(s.day).arg(s.delta);
                }
                let sent = tokio::time::timeout(
                    Duration::from_secs(2),
                    invocation.invoke_async::<i64>(&mut conn),
                )
                .await;
                if !matches!(sent, Ok(Ok(_))) {
                    self.mark_down("settling failed");
                    break;
                }
            }
            for event in events {
                let Ok(text) = serde_json::to_string(&event) else {
                    continue;
                };
                let mut pipe = redis::pipe();
                pipe.cmd("PUBLISH").arg(self.channel()).arg(text).ignore();
                if let Some(rest) = event.outcome.rest() {
                    let until =
                        now_ms().saturating_add(u64::try_from(rest.as_millis()).unwrap_or(0));
                    let field = format!(
                        "{}\u{1f}{}",
                        event.backend,
                        event.deployment.as_deref().unwrap_or("")
                    );
                    pipe.cmd("HSET")
                        .arg(self.rests_key())
                        .arg(field)
                        .arg(until)
                        .ignore();
                    pipe.cmd("PEXPIRE")
                        .arg(self.rests_key())
                        .arg(120_000)
                        .ignore();
                }
                let sent =
                    tokio::time::timeout(Duration::from_secs(2), pipe.query_async::<()>(&mut conn))
                        .await;
                if !matches!(sent, Ok(Ok(()))) {
                    self.mark_down("publishing failed");
                    break;
                }
            }
        }
    }
}

/// An event of another replica, applied to this one's balancer.
fn apply(gw: &Gateway, event: &Event) {
    if let Some(index) = gw.balancer.index_of(&event.backend) {
        gw.balancer
            .record(index, event.deployment.as_deref(), event.outcome.into());
    }
}

/// `begin.lua`'s reply.
fn parse_begin(values: &[Value]) -> Option<Reply> {
    let int = |i: usize| -> Option<i64> {
        match values.get(i)? {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    };
    if int(0)? == 1 {
        let chosen = match values.get(3)? {
            Value::BulkString(bytes) if !bytes.is_empty() => {
                Some(String::from_utf8(bytes.clone()).ok()?)
            }
            _ => None,
        };
        return Some(Reply::Admitted {
            remaining: Remaining::of(int(1)?, int(2)?),
            chosen,
        });
    }
    let window = int(1)?;
    Some(Reply::Refused {
        which: match (window - 1) % 3 {
            0 => Which::TokensPerMinute,
            1 => Which::RequestsPerMinute,
            _ => Which::TokensPerDay,
        },
        deployment: window > 3,
        limit: u64::try_from(int(2)?).ok()?,
        wait_ms: u64::try_from(int(3)?).ok()?,
        remaining: Remaining::of(int(4)?, int(5)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_in_keys() {
        assert_eq!(part("team:a%b"), "team%3Aa%25b");
    }

    #[test]
    fn begin_replies_are_read() {
        let admitted = [
            Value::Int(1),
            Value::Int(40),
            Value::Int(-1),
            Value::BulkString(b"eastus".to_vec()),
        ];
        assert_eq!(
            parse_begin(&admitted),
            Some(Reply::Admitted {
                remaining: Remaining {
                    tokens: Some(40),
                    requests: None
                },
                chosen: Some("eastus".into())
            })
        );
        let refused = [0, 5, 100, 1200, 3, -1].map(Value::Int);
        assert_eq!(
            parse_begin(&refused),
            Some(Reply::Refused {
                which: Which::RequestsPerMinute,
                deployment: true,
                limit: 100,
                wait_ms: 1200,
                remaining: Remaining {
                    tokens: Some(3),
                    requests: None
                },
            })
        );
        assert_eq!(parse_begin(&[Value::Nil]), None);
    }
}
