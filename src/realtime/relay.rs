//! A realtime session's frames, both ways, as they come.
//!
//! Two pumps run side by side on the worker: the client's frames (decoded from its connection)
//! to the backend's socket, and the backend's frames to the client's response body. Each holds
//! at most one event at a time and waits for the other end to take it, so a slow reader slows
//! its writer (the client's queue holds a few frames; the sockets' buffers the rest), and a
//! session's memory stays bounded whatever it carries. A fragmented message is joined (up to
//! [`MAX_EVENT_BYTES`]) before it is passed on, so that events can be read whole.
//!
//! Pings are answered on each side's own connection. A close frame is passed on with its code
//! and reason, and the session ends when the other side answers it (or after [`CLOSE_WAIT`]).
//! A backend connection that ends without one closes the client's with 1014 (bad gateway), a
//! client that goes away closes the backend's with 1001: a session never ends silently. When
//! the gateway is told to stop, its sessions are closed at once, the client's with 1012
//! (service restart), so that clients reconnect elsewhere before the grace period runs out.
//!
//! On the way, a client's `response.create` is reserved against its subscription's windows,
//! or answered with an `error` event and not sent; a backend's `response.done` settles it with
//! the usage it reports, counted per subscription, deployment and backend. When the session
//! ends, its one access record is written.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use actix_codec::Framed;
use actix_http::ws::{CloseCode, CloseReason, Codec, Frame, Item, Message, OpCode};
use actix_web::web;
use awc::BoxedSocket;
use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Mutex, mpsc};

use super::MAX_EVENT_BYTES;
use super::events::{self, Create};
use super::wire::{self, Incoming, Stopped};
use crate::limits::Reservation;
use crate::metrics::{InFlight, OpenSession};
use crate::proxy::Gateway;
use crate::proxy::error::GatewayError;
use crate::state;
use crate::tokens::usage::{Source, Spent, Usage};
use crate::traces::{CallSpans, Ending};

/// The backend's side of a session.
pub type Upstream = Framed<BoxedSocket, Codec>;

/// How long a session waits for the other side's close frame once one side has closed.
pub const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// An open session, and what its record says.
pub struct Session {
    pub gw: web::Data<Gateway>,
    pub subscription: usize,
    pub deployment: String,
    /// By index.
    pub backend: usize,
    pub request_id: String,
    pub path: String,
    pub started: Instant,
    /// The reservation that opened it, when its subscription has limits: the windows its
    /// responses are counted in.
    pub opened: Option<Reservation>,
    /// Its place among the backend's calls in flight, for its life.
    pub in_flight: Option<InFlight>,
    /// Its place among the backend's open sessions, for its life.
    pub open: Option<OpenSession>,
    /// Its trace's spans, when the gateway traces: the server span ends with the session.
    pub spans: Option<CallSpans>,
}

/// What the session has done so far.
#[derive(Default)]
struct Tally {
    responses: u64,
    usage: Usage,
    /// Reservations of `response.create`s whose `response.done` has not come, oldest first.
    pending: VecDeque<Reservation>,
    /// The input of the last response: the conversation the next one reads at least.
    last_input: u64,
    /// `response.create`s refused for the subscription's limits.
    refused: u64,
}

/// Which side did something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Backend,
}

/// How one pump ended.
#[derive(Debug)]
enum End {
    /// A side sent a close frame (passed on), with its code.
    Closed { by: Side, code: Option<u16> },
    /// A side's connection ended, or broke, without one.
    Lost { side: Side, detail: String },
    /// The client broke the protocol (a frame too large, text that is not UTF-8): closed with
    /// this code.
    Broke { code: CloseCode, detail: String },
    /// The gateway is stopping: both sides were closed (the client with 1012).
    Drained,
}

/// Carries `session` between the client (`payload` in, `to_client` out) and `upstream` until
/// it ends, then writes its record.
pub async fn run(
    session: Session,
    payload: web::Payload,
    upstream: Upstream,
    to_client: mpsc::Sender<Bytes>,
) {
    let (sink, stream) = upstream.split();
    let sink = Mutex::new(sink);
    let tally = RefCell::new(Tally::default());
    let mut up = std::pin::pin!(client_to_backend(
        &session, payload, &sink, &to_client, &tally
    ));
    let mut down = std::pin::pin!(backend_to_client(
        &session, stream, &sink, &to_client, &tally
    ));
    let drained = std::pin::pin!(session.gw.drained());
    let end = tokio::select! {
        end = &mut up => {
            // The backend answers the close it was sent; its answer goes on to the client.
            if let End::Closed { .. } = end {
                let _ = actix_web::rt::time::timeout(CLOSE_WAIT, down).await;
            }
            end
        }
        end = &mut down => {
            // The client answers the close it was passed; its answer goes on to the backend.
            if let End::Closed { .. } = end {
                let _ = actix_web::rt::time::timeout(CLOSE_WAIT, up).await;
            }
            end
        }
        () = drained => {
            // The gateway is stopping: the client is told to come back (to another replica),
            // rather than cut off when the grace period ends.
            close_client(&to_client, CloseCode::Restart, "the gateway is restarting").await;
            close_backend(&sink, CloseCode::Away, "the gateway is restarting").await;
            let _ = actix_web::rt::time::timeout(CLOSE_WAIT, up).await;
            End::Drained
        }
    };
    // A side that ended without a close frame: the other is told, never left hanging.
    match &end {
        End::Lost {
            side: Side::Client, ..
        } => close_backend(&sink, CloseCode::Away, "the client went away").await,
        End::Lost {
            side: Side::Backend,
            ..
        } => lost_backend(&to_client).await,
        End::Broke { code, detail } => {
            close_client(&to_client, *code, detail).await;
            close_backend(&sink, CloseCode::Away, "the client broke the protocol").await;
        }
        End::Closed { .. } | End::Drained => {}
    }
    record(&session, &tally.borrow(), &end);
}

/// The client's frames to the backend, until either side stops.
async fn client_to_backend(
    session: &Session,
    payload: web::Payload,
    sink: &Mutex<SplitSink<Upstream, Message>>,
    to_client: &mpsc::Sender<Bytes>,
    tally: &RefCell<Tally>,
) -> End {
    let mut incoming = Incoming::new(payload);
    let mut joining = Joining::default();
    loop {
        let frame = match incoming.next().await {
            Ok(frame) => frame,
            Err(Stopped::Gone(detail)) => return lost(Side::Client, detail),
            Err(Stopped::Broke(e)) => return broke(&e),
        };
        let (op, data) = match frame {
            Frame::Text(data) => (OpCode::Text, data),
            Frame::Binary(data) => (OpCode::Binary, data),
            Frame::Continuation(item) => match joining.add(item) {
                Ok(Some(whole)) => whole,
                Ok(None) => continue,
                Err(detail) => {
                    return End::Broke {
                        code: CloseCode::Size,
                        detail,
                    };
                }
            },
            Frame::Ping(data) => {
                if to_client
                    .send(wire::frame(OpCode::Pong, &data))
                    .await
                    .is_err()
                {
                    return lost(Side::Client, "gone".into());
                }
                continue;
            }
            Frame::Pong(_) => continue,
            Frame::Close(reason) => {
                let code = reason.as_ref().map(|r| u16::from(r.code));
                // The backend may have gone already; the session ends either way.
                let _ = sink.lock().await.send(Message::Close(reason)).await;
                return End::Closed {
                    by: Side::Client,
                    code,
                };
            }
        };
        let message = if op == OpCode::Text {
            if let Some(create) = events::response_create(&data)
                && let Err(refused) = afford(session, tally, &create).await
            {
                let event = events::error(
                    "rate_limit_exceeded",
                    &refused.message(),
                    create.event_id.as_deref(),
                );
                if to_client
                    .send(wire::frame(OpCode::Text, event.as_bytes()))
                    .await
                    .is_err()
                {
                    return lost(Side::Client, "gone".into());
                }
                continue;
            }
            match ByteString::try_from(data) {
                Ok(text) => Message::Text(text),
                Err(_) => {
                    return End::Broke {
                        code: CloseCode::Invalid,
                        detail: "a text frame that is not UTF-8".into(),
                    };
                }
            }
        } else {
            Message::Binary(data)
        };
        if let Err(e) = sink.lock().await.send(message).await {
            return lost(Side::Backend, e.to_string());
        }
    }
}

/// The backend's frames to the client, until either side stops.
async fn backend_to_client(
    session: &Session,
    mut stream: SplitStream<Upstream>,
    sink: &Mutex<SplitSink<Upstream, Message>>,
    to_client: &mpsc::Sender<Bytes>,
    tally: &RefCell<Tally>,
) -> End {
    let mut joining = Joining::default();
    loop {
        let frame = match stream.next().await {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => return lost(Side::Backend, e.to_string()),
            None => {
                return lost(
                    Side::Backend,
                    "connection closed without a close frame".into(),
                );
            }
        };
        let (op, data) = match frame {
            Frame::Text(data) => (OpCode::Text, data),
            Frame::Binary(data) => (OpCode::Binary, data),
            Frame::Continuation(item) => match joining.add(item) {
                Ok(Some(whole)) => whole,
                Ok(None) => continue,
                Err(detail) => return lost(Side::Backend, detail),
            },
            Frame::Ping(data) => {
                if let Err(e) = sink.lock().await.send(Message::Pong(data)).await {
                    return lost(Side::Backend, e.to_string());
                }
                continue;
            }
            Frame::Pong(_) => continue,
            Frame::Close(reason) => {
                let code = reason.as_ref().map(|r| u16::from(r.code));
                if to_client.send(wire::close(reason)).await.is_err() {
                    return lost(Side::Client, "gone".into());
                }
                return End::Closed {
                    by: Side::Backend,
                    code,
                };
            }
        };
        if op == OpCode::Text
            && let Some(usage) = events::response_done(&data)
        {
            count(session, tally, usage);
        }
        if to_client.send(wire::frame(op, &data)).await.is_err() {
            return lost(Side::Client, "gone".into());
        }
    }
}

/// A message arriving in fragments.
#[derive(Default)]
struct Joining {
    parts: Option<(OpCode, BytesMut)>,
}

impl Joining {
    /// Adds a fragment: the whole message once its last fragment came.
    fn add(&mut self, item: Item) -> Result<Option<(OpCode, Bytes)>, String> {
        let (first, data, last) = match item {
            Item::FirstText(data) => (Some(OpCode::Text), data, false),
            Item::FirstBinary(data) => (Some(OpCode::Binary), data, false),
            Item::Continue(data) => (None, data, false),
            Item::Last(data) => (None, data, true),
        };
        match (first, &mut self.parts) {
            (Some(op), _) => self.parts = Some((op, BytesMut::from(&data[..]))),
            (None, Some((_, parts))) => parts.extend_from_slice(&data),
            (None, None) => return Err("a continuation frame with no message to continue".into()),
        }
        if self
            .parts
            .as_ref()
            .is_some_and(|(_, p)| p.len() > MAX_EVENT_BYTES)
        {
            return Err(format!("a message over {MAX_EVENT_BYTES} bytes"));
        }
        Ok(if last {
            self.parts.take().map(|(op, parts)| (op, parts.freeze()))
        } else {
            None
        })
    }
}

fn lost(side: Side, detail: String) -> End {
    End::Lost { side, detail }
}

fn broke(error: &actix_http::ws::ProtocolError) -> End {
    let code = match error {
        actix_http::ws::ProtocolError::Overflow => CloseCode::Size,
        _ => CloseCode::Protocol,
    };
    End::Broke {
        code,
        detail: error.to_string(),
    }
}

/// Closes the client's side, unless it has not read for [`CLOSE_WAIT`] (its connection is
/// then dropped without the frame): a stalled client cannot keep a session's task alive.
async fn close_client(to_client: &mpsc::Sender<Bytes>, code: CloseCode, why: &str) {
    let frame = wire::close(Some(reason(code, why)));
    let _ = actix_web::rt::time::timeout(CLOSE_WAIT, to_client.send(frame)).await;
}

/// The backend's connection ended without a close frame: the client's is closed as failed.
async fn lost_backend(to_client: &mpsc::Sender<Bytes>) {
    close_client(
        to_client,
        CloseCode::Other(1014),
        "the backend connection was lost",
    )
    .await;
}

/// Closes the backend's side, within [`CLOSE_WAIT`] as the client's.
async fn close_backend(sink: &Mutex<SplitSink<Upstream, Message>>, code: CloseCode, why: &str) {
    let close = async {
        let _ = sink
            .lock()
            .await
            .send(Message::Close(Some(reason(code, why))))
            .await;
    };
    let _ = actix_web::rt::time::timeout(CLOSE_WAIT, close).await;
}

fn reason(code: CloseCode, why: &str) -> CloseReason {
    CloseReason {
        code,
        description: Some(why.to_string()),
    }
}

/// Reserves what a `response.create` may cost in the subscription's windows (its last
/// response's input, which the next reads again, and the output it allows), or says why not.
async fn afford(
    session: &Session,
    tally: &RefCell<Tally>,
    create: &Create,
) -> Result<(), GatewayError> {
    let gw = &session.gw;
    if gw.limiter.limits(session.subscription).is_none() {
        return Ok(());
    }
    let estimate = tally.borrow().last_input + create.max_output.unwrap_or(0);
    let reserve = state::Reserve {
        subscription: session.subscription,
        deployment: Some(&session.deployment),
        tokens: estimate.max(1),
    };
    match state::begin(gw, Some(reserve), None).await {
        Ok(begun) => {
            if let Some(reservation) = begun.reservation {
                tally.borrow_mut().pending.push_back(reservation);
            }
            Ok(())
        }
        Err(refused) => {
            if let GatewayError::LimitExceeded(limit) = &refused {
                gw.metrics.refused(session.subscription, limit.which);
            }
            tally.borrow_mut().refused += 1;
            Err(refused)
        }
    }
}

/// A `response.done`: its usage settles the oldest reservation (or is counted in the session's
/// windows when the service started the response itself) and goes to the metrics.
fn count(session: &Session, tally: &RefCell<Tally>, usage: Option<Usage>) {
    let mut tally = tally.borrow_mut();
    tally.responses += 1;
    let reservation = tally.pending.pop_front();
    let Some(usage) = usage else {
        if let Some(reservation) = reservation {
            state::settle(&session.gw, &reservation, 0);
        }
        return;
    };
    tally.last_input = usage.prompt;
    let sum = &mut tally.usage;
    sum.prompt += usage.prompt;
    sum.completion += usage.completion;
    sum.total += usage.total;
    sum.reasoning += usage.reasoning;
    sum.cached += usage.cached;
    let reservation =
        reservation.or_else(|| session.opened.as_ref().map(Reservation::of_nothing_now));
    if let Some(reservation) = reservation {
        state::settle(&session.gw, &reservation, usage.total);
    }
    session.gw.metrics.tokens(
        Some(session.subscription),
        &session.deployment,
        Some(session.backend),
        &Spent {
            usage,
            source: Source::Reported,
        },
    );
}

/// The session's one access record.
fn record(session: &Session, tally: &Tally, end: &End) {
    let gw = &session.gw;
    let (end, closed_by, close_code, detail) = match end {
        End::Closed { by, code } => (
            "closed",
            Some(match by {
                Side::Client => "client",
                Side::Backend => "backend",
            }),
            *code,
            None,
        ),
        End::Lost { side, detail } => (
            match side {
                Side::Client => "client_lost",
                Side::Backend => "backend_lost",
            },
            None,
            None,
            Some(detail.as_str()),
        ),
        End::Broke { code, detail } => (
            "client_broke",
            None,
            Some(u16::from(*code)),
            Some(detail.as_str()),
        ),
        End::Drained => ("drained", None, Some(u16::from(CloseCode::Restart)), None),
    };
    let usage = &tally.usage;
    let subscription = gw.auth.subscription_name(session.subscription);
    if let Some(spans) = &session.spans {
        spans.end(&Ending {
            status: 101,
            route: Some("/realtime"),
            operation_id: Some("realtime"),
            deployment: Some(&session.deployment),
            subscription,
            request_id: &session.request_id,
            end: Some(end),
            first_byte: None,
            model: None,
            usage: Some([
                usage.prompt,
                usage.completion,
                usage.reasoning,
                usage.cached,
            ]),
        });
    }
    let duration_ms = (session.started.elapsed().as_secs_f64() * 1e3).round();
    tracing::info!(
        target: "access",
        request_id = session.request_id,
        method = "GET",
        path = session.path,
        route = "realtime",
        status = 101u16,
        subscription = subscription.unwrap_or("-"),
        deployment = session.deployment,
        backend = gw.balancer.backends().get(session.backend).map_or("-", |b| b.name.as_str()),
        duration_ms,
        responses = tally.responses,
        refused = tally.refused,
        prompt_tokens = usage.prompt,
        completion_tokens = usage.completion,
        cached_tokens = usage.cached,
        end,
        closed_by,
        close_code,
        detail,
        "realtime session"
    );
}
