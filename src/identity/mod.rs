//! Microsoft Entra ID on both sides: tokens the gateway gets for backends that take no keys
//! ([`tokens`], with the [`credential`] kinds), and tokens callers present instead of a
//! subscription key ([`callers`], checked with their issuer's [`keys`]).
//!
//! Everything that talks to an identity endpoint runs on one thread of its own (an actix
//! system with its own awc client), so that no call waits for an exchange while a usable token
//! or key exists, and at most one exchange per credential or key set is ever in flight.

pub mod callers;
pub mod credential;
mod http;
pub mod jwt;
pub mod keys;
pub mod tokens;

use std::sync::{Arc, Weak};
use std::time::Duration;

use keys::KeySet;
use tokens::TokenSource;

/// How long one exchange with an identity endpoint may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts the identity thread for these token sources and callers' key sets. The key sets are
/// fetched first: start-up fails, naming the one, if any cannot be (a gateway that could not
/// check a single token is not ready to serve). The thread ends when the gateway is gone.
pub fn start(sources: Vec<Weak<TokenSource>>, key_sets: Vec<Arc<KeySet>>) -> Result<(), String> {
    if sources.is_empty() && key_sets.is_empty() {
        return Ok(());
    }
    let (told, first_fetch) = std::sync::mpsc::channel::<Result<(), String>>();
    let key_sets: Vec<Weak<KeySet>> = key_sets.iter().map(Arc::downgrade).collect();
    std::thread::Builder::new()
        .name("identity".into())
        .spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let client = http::client(EXCHANGE_TIMEOUT);
                let mut first = Ok(());
                for set in key_sets.iter().filter_map(Weak::upgrade) {
                    if let Err(why) = set.fetch(&client).await {
                        first = Err(format!(
                            "the signing keys at {} cannot be fetched: {why}",
                            set.url
                        ));
                        break;
                    }
                }
                let failed = first.is_err();
                let _ = told.send(first);
                if failed {
                    return;
                }
                let mut kept = Vec::new();
                for source in sources {
                    kept.push(actix_web::rt::spawn(TokenSource::keep(
                        source,
                        client.clone(),
                    )));
                }
                for set in key_sets {
                    kept.push(actix_web::rt::spawn(KeySet::keep(set, client.clone())));
                }
                futures_util::future::join_all(kept).await;
            });
        })
        .map_err(|e| format!("the identity thread cannot start: {e}"))?;
    first_fetch
        .recv_timeout(EXCHANGE_TIMEOUT * 2)
        .map_err(|_| "the identity thread did not start".to_string())?
}
