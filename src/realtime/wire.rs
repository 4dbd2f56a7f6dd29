//! The server's side of a WebSocket on actix-web, for the gateway's sessions and the simulated
//! resource's alike: the `101` that accepts a handshake, the frames read from the connection
//! that follows it, and the frames written to the response body that carries them back.

use std::convert::Infallible;

use actix_codec::Decoder;
use actix_http::ws::{self, CloseReason, Codec, Frame, OpCode, Parser, ProtocolError};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::MAX_EVENT_BYTES;

/// Frames waiting for a client's connection, at most: with its socket's buffer, all a slow
/// client makes the server hold for it.
const QUEUE: usize = 8;

/// Makes `response` the `101` that accepts the WebSocket handshake `req` (checked already).
pub fn accept(req: &HttpRequest, response: &mut HttpResponseBuilder) {
    response.status(StatusCode::SWITCHING_PROTOCOLS);
    response.upgrade("websocket");
    if let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY)
        && let Ok(value) = HeaderValue::from_bytes(&ws::hash_key(key.as_bytes()))
    {
        response.insert_header((header::SEC_WEBSOCKET_ACCEPT, value));
    }
}

/// The accepted handshake's response, whose body is the frames sent to the returned queue; the
/// connection closes once the queue's last sender is dropped.
pub fn open(mut accepted: HttpResponseBuilder) -> (HttpResponse, mpsc::Sender<Bytes>) {
    let (sender, queued) = mpsc::channel::<Bytes>(QUEUE);
    let body = futures_util::stream::unfold(queued, |mut queued| async move {
        let frame = queued.recv().await?;
        Some((Ok::<_, Infallible>(frame), queued))
    });
    (accepted.streaming(body), sender)
}

/// One whole frame, as a server writes it (unmasked).
pub fn frame(op: OpCode, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 10);
    Parser::write_message(&mut out, data, op, true, false);
    out.freeze()
}

/// A close frame, as a server writes it.
pub fn close(reason: Option<CloseReason>) -> Bytes {
    let mut out = BytesMut::new();
    Parser::write_close(&mut out, reason, false);
    out.freeze()
}

/// Frames from a client's connection, each at most [`MAX_EVENT_BYTES`].
pub struct Incoming {
    payload: web::Payload,
    codec: Codec,
    buffer: BytesMut,
}

/// Why no more frames come from a client.
#[derive(Debug)]
pub enum Stopped {
    /// Its connection ended (or broke) without a close frame.
    Gone(String),
    /// It broke the protocol (a frame too large, an unmasked one).
    Broke(ProtocolError),
}

impl Incoming {
    pub fn new(payload: web::Payload) -> Incoming {
        Incoming {
            payload,
            codec: Codec::new().max_size(MAX_EVENT_BYTES),
            buffer: BytesMut::new(),
        }
    }

    /// The next frame; it is read only when asked for, so a client that sends faster than its
    /// frames are passed on is slowed by its own connection.
    pub async fn next(&mut self) -> Result<Frame, Stopped> {
        loop {
            if let Some(frame) = self
                .codec
                .decode(&mut self.buffer)
                .map_err(Stopped::Broke)?
            {
                return Ok(frame);
            }
            match self.payload.next().await {
                Some(Ok(chunk)) => self.buffer.extend_from_slice(&chunk),
                Some(Err(e)) => return Err(Stopped::Gone(e.to_string())),
                None => {
                    return Err(Stopped::Gone(
                        "connection closed without a close frame".into(),
                    ));
                }
            }
        }
    }
}
