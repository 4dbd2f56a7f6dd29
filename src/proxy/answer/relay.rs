//! A backend's answer on its way to the client, and how it ended.
//!
//! awc ends a backend's body the same way whether the backend finished it or its connection
//! closed half-way: a chunked body cut between two chunks simply stops. Passed on like that, the
//! client's chunked body would end with the normal terminating chunk and a partial completion
//! would look complete. So the gateway watches the backend's sockets: [`WatchedStream`] notes, in
//! a thread-local flag, every read that finds the connection closed, and [`Relay`] clears the
//! flag before each poll of the body and looks at it when the body ends. A worker's awc client
//! lives on that worker's thread and polling one body reads only that body's connection, so a
//! flag raised during the poll belongs to this body.
//!
//! A body whose framing promised an end (a terminating chunk, or a `Content-Length`) that stops
//! at a closed connection instead was cut. The relay then fails the client's response: actix
//! closes the client's connection without writing the terminating chunk, so curl exits 18 and
//! the SDKs raise, exactly as they do talking to the backend directly. A body delimited by the
//! connection closing (no length, not chunked) can only end that way, and passes as it is.
//!
//! An answer that creates a stored object is read by a [`Learner`] on the way: the chunk that
//! completes what it learns (a JSON answer's last, a stream's first event that names the
//! object) waits until the directory has recorded the object, so that a client never hears of
//! an object the gateway cannot yet route a follow-up for. The write runs as a task of its own:
//! a client going away does not cancel it.
//!
//! Whatever the ending, the relay reports it once ([`Ended`]), which is when the gateway settles
//! the call's tokens and writes its access record: complete, cut by the backend, or abandoned
//! by the client, with what its [`Meter`] read of the usage on the way and when the first byte
//! went by.

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use actix_web::rt::net::{ActixStream, Ready};
use awc::error::PayloadError;
use bytes::Bytes;
use futures_util::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::objects::learn::{Learner, Record};
use crate::tokens::meter::{Meter, Reading};

thread_local! {
    /// Raised by [`WatchedStream`] when a read finds its connection closed.
    static CONNECTION_CLOSED: Cell<bool> = const { Cell::new(false) };
}

/// A backend connection that reports a read finding it closed (see the module note).
#[derive(Debug)]
pub struct WatchedStream<S>(pub S);

impl<S: AsyncRead + Unpin> AsyncRead for WatchedStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = ready!(Pin::new(&mut self.0).poll_read(cx, buf));
        if result.is_ok() && buf.filled().len() == before && buf.remaining() > 0 {
            CONNECTION_CLOSED.with(|closed| closed.set(true));
        }
        Poll::Ready(result)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WatchedStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: ActixStream> ActixStream for WatchedStream<S> {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        self.0.poll_read_ready(cx)
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        self.0.poll_write_ready(cx)
    }
}

/// How the end of a backend's body is marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// A terminating chunk or a `Content-Length`: a closed connection before it is a cut.
    Delimited,
    /// Neither: the connection closing is the end.
    UntilClose,
}

/// How a relayed body ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Every byte the backend meant to send reached the client's connection.
    Complete { bytes: u64 },
    /// The backend's connection closed or failed before the body was complete; the client's
    /// response was failed in turn.
    Cut { bytes: u64, detail: String },
    /// The client went away (or the gateway shut down) before the body was complete.
    Abandoned { bytes: u64 },
}

/// How a relayed body ended, and what was read of it.
#[derive(Debug)]
pub struct Ended {
    pub end: End,
    /// What the meter read, for an answer that was metered.
    pub reading: Option<Reading>,
    /// When the first byte of the body went by.
    pub first_byte: Option<Instant>,
}

/// A creating answer's [`Learner`], and what records what it learns.
pub struct Learn {
    pub learner: Learner,
    /// Starts the directory's write of the records; the future ends when it has.
    pub write: Box<dyn FnOnce(Vec<Record>) -> Gate>,
}

/// What the relay waits for before it passes on more of the answer.
pub type Gate = Pin<Box<dyn Future<Output = ()>>>;

/// The error the client's response fails with when the backend cut its body.
#[derive(Debug, thiserror::Error)]
#[error("the backend's answer was cut off: {0}")]
pub struct Cut(String);

/// A backend's body relayed to the client; `on_end` hears how it ended, exactly once.
pub struct Relay<S, F: FnOnce(Ended)> {
    body: S,
    framing: Framing,
    /// Bytes passed to the client.
    bytes: u64,
    meter: Option<Meter>,
    reading: Option<Reading>,
    /// What the meter let through and the client has yet to get.
    queue: VecDeque<Bytes>,
    first_byte: Option<Instant>,
    on_end: Option<F>,
    /// How the body ended, once it has; reported once the queue is empty.
    ended: Option<End>,
    /// The error the client's response fails with, after the queue and one more turn.
    cut: Option<Cut>,
    cut_turn: bool,
    learn: Option<Learn>,
    /// Nothing more passes until this has ended.
    gate: Option<Gate>,
}

impl<S, F: FnOnce(Ended)> Relay<S, F> {
    pub fn new(body: S, framing: Framing, meter: Option<Meter>, on_end: F) -> Self {
        Relay {
            body,
            framing,
            bytes: 0,
            meter,
            reading: None,
            queue: VecDeque::new(),
            first_byte: None,
            on_end: Some(on_end),
            ended: None,
            cut: None,
            cut_turn: false,
            learn: None,
            gate: None,
        }
    }

    /// Reads the answer for the records a creating call leaves in the directory.
    pub fn learning(mut self, learn: Option<Learn>) -> Self {
        self.learn = learn;
        self
    }

    /// Reads a chunk for its records; whether the chunk must wait for their write.
    fn learn_from(&mut self, chunk: &[u8]) -> bool {
        let Some(learn) = self.learn.as_mut() else {
            return false;
        };
        let records = learn.learner.feed(chunk);
        self.hold_for(records)
    }

    fn hold_for(&mut self, records: Option<Vec<Record>>) -> bool {
        match (records, self.learn.take()) {
            (Some(records), Some(learn)) if !records.is_empty() => {
                self.gate = Some((learn.write)(records));
                true
            }
            (_, learn) => {
                self.learn = learn;
                false
            }
        }
    }

    /// The backend's body has ended: what the meter still held joins the queue.
    fn body_ended(&mut self, end: End) {
        self.reading = self.meter.take().map(|m| m.finish(&mut self.queue));
        if let Some(learn) = self.learn.as_mut() {
            let records = learn.learner.finish();
            self.hold_for(records);
        }
        self.ended = Some(end);
    }

    fn report(&mut self, end: End) {
        if let Some(on_end) = self.on_end.take() {
            on_end(Ended {
                end,
                reading: self.reading.take(),
                first_byte: self.first_byte,
            });
        }
    }
}

impl<S, F> Stream for Relay<S, F>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
    F: FnOnce(Ended) + Unpin,
{
    type Item = Result<Bytes, Cut>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(gate) = this.gate.as_mut() {
                ready!(gate.as_mut().poll(cx));
                this.gate = None;
            }
            if let Some(chunk) = this.queue.pop_front() {
                this.bytes += chunk.len() as u64;
                return Poll::Ready(Some(Ok(chunk)));
            }
            if let Some(end) = this.ended.take() {
                let bytes = this.bytes;
                this.report(match end {
                    End::Cut { detail, .. } => End::Cut { bytes, detail },
                    _ => End::Complete { bytes },
                });
            }
            if let Some(cut) = this.cut.take() {
                // actix drops what it has not yet written when a body fails; one more turn
                // lets it write what the backend did send before the failure closes the
                // connection.
                if !this.cut_turn {
                    this.cut_turn = true;
                    this.cut = Some(cut);
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                return Poll::Ready(Some(Err(cut)));
            }
            if this.on_end.is_none() {
                return Poll::Ready(None);
            }
            CONNECTION_CLOSED.with(|closed| closed.set(false));
            let next = ready!(Pin::new(&mut this.body).poll_next(cx));
            let closed = CONNECTION_CLOSED.with(|closed| closed.replace(false));
            let detail = match next {
                Some(Ok(chunk)) => {
                    this.first_byte.get_or_insert_with(Instant::now);
                    let hold = this.learn_from(&chunk);
                    match &mut this.meter {
                        Some(meter) if meter.edits() => {
                            meter.feed(chunk, &mut this.queue);
                            continue;
                        }
                        Some(meter) => meter.observe(&chunk),
                        None => {}
                    }
                    if hold {
                        this.queue.push_back(chunk);
                        continue;
                    }
                    // What the meter only reads passes as it came.
                    this.bytes += chunk.len() as u64;
                    return Poll::Ready(Some(Ok(chunk)));
                }
                Some(Err(error)) => error.to_string(),
                None if closed && this.framing == Framing::Delimited => {
                    "the connection closed before the end of the body".to_string()
                }
                None => {
                    this.body_ended(End::Complete { bytes: 0 });
                    continue;
                }
            };
            this.body_ended(End::Cut {
                bytes: 0,
                detail: detail.clone(),
            });
            this.cut = Some(Cut(detail));
        }
    }
}

impl<S, F: FnOnce(Ended)> Drop for Relay<S, F> {
    fn drop(&mut self) {
        if self.on_end.is_some() && self.reading.is_none() {
            self.reading = self.meter.take().map(|m| m.finish(&mut VecDeque::new()));
        }
        let bytes = self.bytes;
        self.report(End::Abandoned { bytes });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use futures_util::stream;
    use std::rc::Rc;

    /// A body that yields `chunks`, and whose last poll saw its connection closed when `closed`.
    fn body(
        chunks: &'static [&'static str],
        closed: bool,
    ) -> impl Stream<Item = Result<Bytes, PayloadError>> + Unpin {
        let mut left = chunks.iter();
        stream::poll_fn(move |_| match left.next() {
            Some(c) => Poll::Ready(Some(Ok(Bytes::from_static(c.as_bytes())))),
            None => {
                if closed {
                    CONNECTION_CLOSED.with(|flag| flag.set(true));
                }
                Poll::Ready(None)
            }
        })
    }

    fn relay(
        chunks: &'static [&'static str],
        closed: bool,
        framing: Framing,
    ) -> (Vec<Result<Bytes, String>>, Vec<End>) {
        let ends = Rc::new(std::cell::RefCell::new(Vec::new()));
        let sink = ends.clone();
        let items = actix_web::rt::System::new().block_on(
            Relay::new(body(chunks, closed), framing, None, move |ended: Ended| {
                sink.borrow_mut().push(ended.end)
            })
            .map(|r| r.map_err(|e| e.to_string()))
            .collect::<Vec<_>>(),
        );
        let ends = ends.borrow().clone();
        (items, ends)
    }

    #[test]
    fn a_body_that_ends_at_its_own_end_is_complete() {
        let (items, ends) = relay(
            &["data: a\n\n", "data: [DONE]\n\n"],
            false,
            Framing::Delimited,
        );
        assert_eq!(items.len(), 2);
        assert!(items.iter().all(Result::is_ok));
        assert_eq!(ends, [End::Complete { bytes: 23 }]);
    }

    #[test]
    fn a_delimited_body_that_ends_at_a_closed_connection_was_cut() {
        let (items, ends) = relay(&["data: a\n\n"], true, Framing::Delimited);
        assert_eq!(items.len(), 2);
        assert!(items[1].as_ref().is_err_and(|e| e.contains("cut off")));
        assert!(matches!(&ends[..], [End::Cut { bytes: 9, .. }]), "{ends:?}");
    }

    #[test]
    fn a_body_delimited_by_closing_ends_there() {
        let (items, ends) = relay(&["raw"], true, Framing::UntilClose);
        assert_eq!(items.len(), 1);
        assert_eq!(ends, [End::Complete { bytes: 3 }]);
    }

    #[test]
    fn a_body_dropped_half_way_was_abandoned() {
        let ends = Rc::new(std::cell::RefCell::new(Vec::new()));
        let sink = ends.clone();
        let mut relay = Relay::new(
            body(&["a", "b"], false),
            Framing::Delimited,
            None,
            move |ended: Ended| sink.borrow_mut().push(ended.end),
        );
        let first = actix_web::rt::System::new().block_on(relay.next());
        assert!(first.is_some());
        drop(relay);
        assert_eq!(*ends.borrow(), [End::Abandoned { bytes: 1 }]);
    }

    #[test]
    fn the_chunk_that_completes_a_record_waits_for_its_write() {
        use crate::objects::learn::Plan;
        use aoai_runtime::catalog::Recorded;
        static FILE: [Recorded; 1] = [Recorded {
            field: "id",
            kind: "file",
        }];
        let order = Rc::new(std::cell::RefCell::new(Vec::<String>::new()));
        let written = order.clone();
        let learn = Learn {
            learner: Learner::new(
                Plan {
                    records: &FILE,
                    creates: "file",
                    owner: "team-a".into(),
                    backend: "eastus".into(),
                },
                false,
            ),
            write: Box::new(move |records| {
                written.borrow_mut().push(format!("write {}", records[0].0));
                // Pending once, as a write to Redis is.
                let mut polled = false;
                Box::pin(futures_util::future::poll_fn(move |cx| {
                    if polled {
                        written.borrow_mut().push("written".into());
                        return Poll::Ready(());
                    }
                    polled = true;
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }))
            }),
        };
        let relay = Relay::new(
            body(&[r#"{"object":"file","#, r#""id":"file-1"}"#], false),
            Framing::Delimited,
            None,
            |_: Ended| {},
        )
        .learning(Some(learn));
        let seen = order.clone();
        actix_web::rt::System::new().block_on(relay.for_each(move |chunk| {
            let chunk = chunk.expect("a chunk");
            seen.borrow_mut()
                .push(format!("chunk {}", String::from_utf8_lossy(&chunk)));
            async {}
        }));
        assert_eq!(
            *order.borrow(),
            [
                r#"chunk {"object":"file","#,
                "write file-1",
                "written",
                r#"chunk "id":"file-1"}"#
            ]
        );
    }
}
