//! Who opens a realtime session (or a WebRTC call): a subscription, by its key or an Entra ID
//! token in any place a call may send one, or, for browsers, in the
//! `openai-insecure-api-key.<key>` WebSocket subprotocol or an `api-key` query parameter; or an
//! ephemeral secret minted through the gateway, which stands for the subscription that minted
//! it and opens its minting backend only.

use actix_web::HttpRequest;
use actix_web::http::header::HeaderValue;

use super::secrets;
use crate::objects::follow::Holder;
use crate::objects::refusal::Object;
use crate::proxy::Gateway;
use crate::proxy::error::GatewayError;
use crate::proxy::inbound::auth::Presented;

/// Who calls.
#[derive(Debug)]
pub enum Caller {
    /// A subscription, by its index.
    Subscription(usize),
    /// An ephemeral secret: the subscription that minted it, the backend that did (by index),
    /// and the secret as the backend's `Authorization` value.
    Secret {
        subscription: usize,
        backend: usize,
        bearer: HeaderValue,
    },
}

impl Caller {
    pub fn subscription(&self) -> usize {
        match self {
            Caller::Subscription(index)
            | Caller::Secret {
                subscription: index,
                ..
            } => *index,
        }
    }

    /// The backend a secret pins the call to, by index.
    pub fn pinned(&self) -> Option<usize> {
        match self {
            Caller::Subscription(_) => None,
            Caller::Secret { backend, .. } => Some(*backend),
        }
    }

    /// The backend a secret pins the call to, as the object phase's holder (which says, if it
    /// rests, what the refusal names: the secret, presented as `param`).
    pub fn holder(&self, param: &str) -> Option<Holder> {
        self.pinned().map(|index| Holder {
            index,
            object: Object {
                kind: secrets::KIND,
                id: "(ephemeral secret)".into(),
                param: param.into(),
            },
        })
    }

    /// The credential the backend gets instead of its own: the secret it minted.
    pub fn bearer(&self) -> Option<&HeaderValue> {
        match self {
            Caller::Subscription(_) => None,
            Caller::Secret { bearer, .. } => Some(bearer),
        }
    }
}

/// Who calls a realtime route; `socket`: a WebSocket handshake, which may present its key where
/// browsers can put one.
pub async fn caller(req: &HttpRequest, gw: &Gateway, socket: bool) -> Result<Caller, GatewayError> {
    let (headers, raw_query) = (req.headers(), req.query_string());
    let presented = if socket {
        gw.auth.presented_by_socket(headers, raw_query)
    } else {
        gw.auth.presented(headers, raw_query)
    };
    let key = match presented {
        Some(Presented::Token(token)) => {
            return gw.auth.by_token(token).await.map(Caller::Subscription);
        }
        Some(Presented::Key(key)) => key,
        None => return Err(GatewayError::Unauthorized),
    };
    if let Some(index) = gw.auth.by_key(&key) {
        return Ok(Caller::Subscription(index));
    }
    // Not a subscription's key: a secret minted through the gateway, or nothing.
    let entry = secrets::look_up(gw, &key)
        .await?
        .ok_or(GatewayError::Unauthorized)?;
    let subscription = gw.auth.index_of(&entry.owner);
    let backend = gw.balancer.index_of(&entry.backend);
    let bearer = HeaderValue::from_str(&format!("Bearer {key}")).ok();
    match (subscription, backend, bearer) {
        (Some(subscription), Some(backend), Some(bearer)) => Ok(Caller::Secret {
            subscription,
            backend,
            bearer,
        }),
        // Its subscription or backend has left the configuration since.
        _ => Err(GatewayError::Unauthorized),
    }
}
