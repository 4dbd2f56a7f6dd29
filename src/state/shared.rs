//! State shared by replicas, in Redis.
//!
//! A call's path touches Redis once: [`Shared::begin`] runs `begin.lua`, which reserves the
//! call's tokens in the subscription's windows and takes its rotation's turn, atomically, on a
//! connection of the worker's own (so that the round trip never leaves the worker's thread).
//! The rest is off the call's path, on a thread of its own with one connection for commands and
//! one for pub/sub: settlements are queued and sent in batches (`settle.lua`), and what the
//! replica learns about backends is published on a channel, which every replica listens to
//! (see [`events`](super::events)); rests are also kept in a hash, for replicas that start
//! later.
//!
//! Redis failing never fails a call. A call waits at most `state.timeout_ms`; an error or a
//! timeout marks the store down (logged once), calls then use the replica's own state (or are
//! refused, `state.on_error = "reject"`), and the thread reconnects, waiting twice as long
//! after each failure up to 5 s; the first answer marks it up again, and workers open new
//! connections. Every key is
//! `{prefix}:…`: the braces are a hash tag, so that on a cluster every key is in one slot, as
//! scripts that touch several keys need.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::{Script, Value};
use tokio::sync::{Notify, mpsc};

use super::begin::{self, Admission, Mode, Rotation, Windows};
use super::events::{Event, Told};
use crate::config::StateSettings;
use crate::limits::Remaining;
use crate::live::Live;
use crate::proxy::Gateway;

/// Settlements sent in one script call, at most.
const BATCH: usize = 64;
/// How long the first of a batch of settlements waits for others: they then cost Redis one
/// script call for many, and correct the windows only this much later.
const LINGER: Duration = Duration::from_millis(5);
/// The thread's first wait before it reconnects, doubled after each failure up to the most.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// What the thread's own commands (connecting, settling, publishing, reading rests) may take:
/// they are off every call's path, so this is longer than `state.timeout_ms`.
const THREAD_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the thread checks that Redis still answers, and how long the check may take.
const PING_EVERY: Duration = Duration::from_secs(1);
/// How long the hash of rests outlives its last write: longer than any rest is wanted
/// (`failover.max_rest_ms` is at most a minute or two), so replicas starting later see them.
const RESTS_KEPT_MS: u64 = 120_000;

/// Why Redis did not give a call what it asked.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("no connection within {0} ms")]
    NoConnection(u128),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("no answer within {0} ms")]
    NoAnswer(u128),
    #[error("{0}")]
    Command(String),
    #[error("an answer the gateway does not understand")]
    Unreadable,
}

/// The field of the rests hash for a backend's deployment ("" for the backend as a whole).
fn rest_field(backend: &str, deployment: Option<&str>) -> String {
    format!("{backend}\u{1f}{}", deployment.unwrap_or(""))
}

/// A rests hash field read back: the backend, and its deployment if the rest is one's.
fn read_rest_field(field: &str) -> Option<(&str, Option<&str>)> {
    let (backend, deployment) = field.split_once('\u{1f}')?;
    Some((backend, (!deployment.is_empty()).then_some(deployment)))
}

static STORES: AtomicU64 = AtomicU64::new(0);

/// A reservation to settle.
pub struct Settlement {
    pub subscription: String,
    /// The deployment whose own windows it reserved in, if any.
    pub deployment: Option<String>,
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
    /// Tells this store's worker connections from another's (tests run several in one
    /// process).
    id: u64,
    /// Counts the times Redis came back: a worker's connection from before is replaced.
    generation: AtomicU64,
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
            id: STORES.fetch_add(1, Ordering::Relaxed),
            generation: AtomicU64::new(0),
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
            self.generation.fetch_add(1, Ordering::AcqRel);
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

    /// A subscription's windows (see `begin.lua`).
    fn limits_key(&self, subscription: &str) -> String {
        self.key(&["lim", subscription])
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

    /// This worker's connection, opened (within the timeout) if it has none since Redis last
    /// came back.
    async fn worker_connection(&self) -> Result<MultiplexedConnection, StateError> {
        thread_local! {
            /// Per store and generation.
            static OWN: RefCell<Vec<(u64, u64, MultiplexedConnection)>> =
                const { RefCell::new(Vec::new()) };
        }
        let me = self.id;
        let generation = self.generation.load(Ordering::Acquire);
        let cached = OWN.with_borrow(|own| {
            own.iter()
                .find(|(at, g, _)| *at == me && *g == generation)
                .map(|(_, _, conn)| conn.clone())
        });
        if let Some(conn) = cached {
            return Ok(conn);
        }
        let opened = actix_web::rt::time::timeout(
            self.timeout,
            self.client.get_multiplexed_async_connection(),
        )
        .await
        .map_err(|_| StateError::NoConnection(self.timeout.as_millis()))?
        .map_err(|e| StateError::Connect(format!("{:?}", e.kind())))?;
        OWN.with_borrow_mut(|own| {
            own.retain(|(at, _, _)| *at != me);
            own.push((me, generation, opened.clone()));
        });
        Ok(opened)
    }

    /// Runs `begin.lua` for a call: its reservation and its rotation's turn (see the module
    /// note). An error (no answer in time, or none it understands) marks the store down.
    pub async fn begin(
        &self,
        windows: Option<&Windows<'_>>,
        rotation: Option<&Rotation<'_>>,
        now: u64,
    ) -> Result<Admission, StateError> {
        self.run_begin(windows, rotation, now, Mode::Begin).await
    }

    /// What is left of a subscription's windows, counting nothing (`begin.lua`'s peek).
    pub async fn remaining(
        &self,
        windows: &Windows<'_>,
        now: u64,
    ) -> Result<Remaining, StateError> {
        match self.run_begin(Some(windows), None, now, Mode::Peek).await? {
            Admission::Admitted { remaining, .. } => Ok(remaining),
            Admission::Refused { .. } => Err(StateError::Unreadable),
        }
    }

    async fn run_begin(
        &self,
        windows: Option<&Windows<'_>>,
        rotation: Option<&Rotation<'_>>,
        now: u64,
        mode: Mode,
    ) -> Result<Admission, StateError> {
        let keys = [
            windows.map_or_else(|| self.placeholder(), |w| self.limits_key(w.subscription)),
            rotation.map_or_else(
                || self.placeholder(),
                |r| self.key(&["rot", r.version, r.deployment]),
            ),
        ];
        let invocation = begin::invocation(&self.begin, keys, now, windows, rotation, mode);
        let values = self
            .within(async |conn| invocation.invoke_async::<Vec<Value>>(conn).await)
            .await?;
        let read = begin::read(&values).ok_or(StateError::Unreadable);
        if let Err(error) = &read {
            self.mark_down(&error.to_string());
        }
        read
    }

    /// A key of this store's: the prefix's tag, then `parts`, each escaped.
    pub fn key(&self, parts: &[&str]) -> String {
        let mut key = self.tag.clone();
        for p in parts {
            key.push(':');
            key.push_str(&part(p));
        }
        key
    }

    /// Runs a pipeline for a call, on the worker's connection and within `state.timeout_ms`.
    pub async fn query<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<T, StateError> {
        self.within(async |conn| pipe.query_async::<T>(conn).await)
            .await
    }

    /// Runs `command` on the worker's connection, within `state.timeout_ms`. An error (no
    /// connection or answer in time, or a refusal) marks the store down.
    async fn within<T>(
        &self,
        command: impl AsyncFnOnce(&mut MultiplexedConnection) -> redis::RedisResult<T>,
    ) -> Result<T, StateError> {
        let result = async {
            let mut conn = self.worker_connection().await?;
            actix_web::rt::time::timeout(self.timeout, command(&mut conn))
                .await
                .map_err(|_| StateError::NoAnswer(self.timeout.as_millis()))?
                .map_err(|e| StateError::Command(format!("{:?}", e.kind())))
        }
        .await;
        if let Err(error) = &result {
            self.mark_down(&error.to_string());
        }
        result
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
    pub fn start(self: &Arc<Self>, gateway: Weak<Live>) -> std::io::Result<()> {
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

    async fn keep(self: Arc<Self>, gateway: Weak<Live>) {
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
        let mut backoff = FIRST_BACKOFF;
        let mut told_down = false;
        while gateway.strong_count() > 0 {
            match self.connect().await {
                Ok(pubsub) => {
                    backoff = FIRST_BACKOFF;
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
        let limit = THREAD_TIMEOUT;
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
    async fn listen(&self, mut pubsub: redis::aio::PubSub, gateway: &Weak<Live>) {
        let mut messages = pubsub.on_message();
        loop {
            tokio::select! {
                message = messages.next() => {
                    let Some(message) = message else { return };
                    let Ok(text) = message.get_payload::<String>() else { continue };
                    if let (Ok(event), Some(gw)) = (serde_json::from_str::<Event>(&text), gateway.upgrade().map(|live| live.current()))
                        && event.replica != self.replica
                    {
                        apply(&gw, &event);
                    }
                }
                () = self.failed.notified() => return,
                () = tokio::time::sleep(PING_EVERY) => {
                    if gateway.strong_count() == 0 {
                        return;
                    }
                    let Some(mut conn) = self.connection() else { return };
                    let ping = redis::cmd("PING");
                    let answered = ping.query_async::<String>(&mut conn);
                    if !matches!(tokio::time::timeout(PING_EVERY, answered).await, Ok(Ok(_))) {
                        return;
                    }
                    self.mark_up();
                }
            }
        }
    }

    /// Rests other replicas recorded before this one listened.
    async fn restore_rests(&self, gateway: &Weak<Live>) {
        let (Some(mut conn), Some(gw)) = (
            self.connection(),
            gateway.upgrade().map(|live| live.current()),
        ) else {
            return;
        };
        let mut read = redis::cmd("HGETALL");
        read.arg(self.rests_key());
        let answered = read.query_async::<Vec<(String, String)>>(&mut conn);
        let Ok(Ok(rests)) = tokio::time::timeout(THREAD_TIMEOUT, answered).await else {
            return;
        };
        let now = now_ms();
        for (field, until) in rests {
            let (Ok(until), Some((backend, deployment))) =
                (until.parse::<u64>(), read_rest_field(&field))
            else {
                continue;
            };
            let Some(left) = until.checked_sub(now).filter(|l| *l > 0) else {
                continue;
            };
            let outcome = match deployment {
                None => Told::Unreachable { rest_ms: left },
                Some(_) => Told::Failed {
                    rest_ms: Some(left),
                },
            };
            apply(
                &gw,
                &Event {
                    replica: 0,
                    backend: backend.to_string(),
                    deployment: deployment.map(str::to_string),
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
        gateway: Weak<Live>,
    ) {
        while let Some(first) = queue.recv().await {
            if gateway.strong_count() == 0 {
                return;
            }
            tokio::time::sleep(LINGER).await;
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
                if !self.send_settlements(&mut conn, batch).await {
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
                    let field = rest_field(&event.backend, event.deployment.as_deref());
                    pipe.cmd("HSET")
                        .arg(self.rests_key())
                        .arg(field)
                        .arg(until)
                        .ignore();
                    pipe.cmd("PEXPIRE")
                        .arg(self.rests_key())
                        .arg(RESTS_KEPT_MS)
                        .ignore();
                }
                let sent =
                    tokio::time::timeout(THREAD_TIMEOUT, pipe.query_async::<()>(&mut conn)).await;
                if !matches!(sent, Ok(Ok(()))) {
                    self.mark_down("publishing failed");
                    break;
                }
            }
        }
    }

    /// Runs `settle.lua` for a batch; whether Redis took it in time.
    async fn send_settlements(
        &self,
        conn: &mut MultiplexedConnection,
        batch: &[Settlement],
    ) -> bool {
        let mut invocation = self.settle.prepare_invoke();
        invocation.arg(now_ms());
        let mut keys: Vec<&str> = Vec::new();
        for s in batch {
            let index = match keys.iter().position(|k| *k == s.subscription) {
                Some(i) => i,
                None => {
                    keys.push(&s.subscription);
                    invocation.key(self.limits_key(&s.subscription));
                    keys.len() - 1
                }
            };
            invocation
                .arg(index + 1)
                .arg(s.deployment.as_deref().unwrap_or(""))
                .arg(s.second)
                .arg(s.day)
                .arg(s.delta);
        }
        let sent = tokio::time::timeout(THREAD_TIMEOUT, invocation.invoke_async::<i64>(conn)).await;
        matches!(sent, Ok(Ok(_)))
    }
}

/// An event of another replica, applied to this one's balancer.
fn apply(gw: &Gateway, event: &Event) {
    if let Some(index) = gw.balancer.index_of(&event.backend) {
        gw.balancer
            .learn(index, event.deployment.as_deref(), event.outcome.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_in_keys() {
        assert_eq!(part("team:a%b"), "team%3Aa%25b");
    }

    #[test]
    fn rest_fields_read_back() {
        assert_eq!(
            read_rest_field(&rest_field("eastus", Some("gpt-4o"))),
            Some(("eastus", Some("gpt-4o")))
        );
        assert_eq!(
            read_rest_field(&rest_field("eastus", None)),
            Some(("eastus", None))
        );
    }
}
