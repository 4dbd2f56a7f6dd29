//! The gateway in service: the configuration in use, and its replacement by a reload.
//!
//! A call takes the current [`Gateway`] when it starts and holds it to its end, so a reload
//! takes effect for the calls that start after it, and the calls in flight finish on the
//! settings they started with (a backend the new configuration removes gets no new calls, and
//! its calls in flight finish). What must outlive a configuration is shared by the next one
//! ([`Gateway::renewed`]): each kept backend's rests, circuit and headroom, each kept
//! subscription's windows, the object directory, the counters, the shared state's connection.
//!
//! [`reload`] reads and checks the configuration again on SIGHUP, or when a file it reads
//! changes (`reload.watch`), and swaps it in only if it is wholly valid.

pub mod reload;

use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use serde::Serialize;

use crate::limits::now_ms;
use crate::proxy::Gateway;

/// The gateway in service.
pub struct Live {
    current: ArcSwap<Gateway>,
    /// The configuration file, when there is one to read again (not for the demo and tests
    /// that build their settings in code).
    config_path: Option<String>,
    history: Mutex<History>,
    /// One reload at a time: a signal and a file change at once apply one after the other.
    reloading: Mutex<()>,
}

/// When the configuration in use was loaded, and what became of the last reload.
#[derive(Debug, Clone, Serialize)]
pub struct History {
    /// Milliseconds since the Unix epoch.
    pub loaded_at_ms: u64,
    pub last_reload: Option<Attempt>,
}

/// A reload and its outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub at_ms: u64,
    pub applied: bool,
    /// Why it was refused (each mistake), or what it could not change without a restart.
    pub notes: Vec<String>,
}

impl Live {
    pub fn new(gateway: Gateway, config_path: Option<String>) -> Live {
        Live {
            current: ArcSwap::from_pointee(gateway),
            config_path,
            history: Mutex::new(History {
                loaded_at_ms: now_ms(),
                last_reload: None,
            }),
            reloading: Mutex::new(()),
        }
    }

    /// The configuration calls starting now run with.
    pub fn current(&self) -> Arc<Gateway> {
        self.current.load_full()
    }

    pub fn history(&self) -> History {
        self.history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn record(&self, attempt: Attempt) {
        let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        if attempt.applied {
            history.loaded_at_ms = attempt.at_ms;
        }
        history.last_reload = Some(attempt);
    }
}
