//! Stored objects: responses, files, vector stores, assistants, threads, fine-tuning jobs,
//! evals… Azure keeps each in the one resource that created it, so the gateway remembers where
//! (and for whom) in a [`directory`], learnt from creating answers as they pass ([`learn`]).
//! A call that names objects ([`named`]) is checked and pinned by [`follow`]: another
//! subscription's object is answered 404 like one that does not exist, and the call goes to the
//! backend that holds what it names, never elsewhere. Lists are filtered to the caller's own
//! objects ([`list`]).
//!
//! Which operations create, name, list and delete objects comes from the specs (the
//! generator's `convert::objects`, as each route's `objects`), not from a list of paths.

pub mod directory;
pub mod follow;
pub mod learn;
pub mod list;
pub mod named;
pub mod refusal;

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use aoai_runtime::catalog::ApiVersion;

use crate::config::{Isolation, ObjectSettings, Subscription};
use crate::live::Live;
use crate::state::shared::Shared;
use directory::{Directory, Kept};

/// Azure keeps a stored response 30 days.
const RESPONSE_KEPT: Duration = Duration::from_secs(30 * 24 * 3600);
/// Other objects live until deleted (or their own `expires_at`): the directory keeps them a
/// year.
const OTHERS_KEPT: Duration = Duration::from_secs(365 * 24 * 3600);

/// How long the directory keeps an object of `kind` created now, unless its answer says when
/// it expires.
pub fn kept_for(kind: &str) -> Duration {
    if kind == "response" {
        RESPONSE_KEPT
    } else {
        OTHERS_KEPT
    }
}

/// The gateway's stored objects: the directory and whose objects a subscription may use.
pub struct StoredObjects {
    /// Shared with the gateway of a reloaded configuration.
    pub directory: Arc<Directory>,
    pub isolation: Isolation,
    /// The kinds the directory keeps: those created outside any other object (a response, a
    /// file), as every route's `objects.records` lists them. Objects inside another (a thread's
    /// runs) go where their parent goes.
    kinds: Vec<&'static str>,
    shared: Option<Arc<Shared>>,
}

impl StoredObjects {
    pub fn new(
        settings: &ObjectSettings,
        shared: Option<Arc<Shared>>,
        apis: &[&'static ApiVersion],
    ) -> Result<StoredObjects, String> {
        let kinds: BTreeSet<&'static str> = apis
            .iter()
            .flat_map(|api| api.routes.iter())
            .flat_map(|route| route.objects.records.iter().map(|r| r.kind))
            .collect();
        let kinds: Vec<&'static str> = kinds.into_iter().collect();
        let directory = Directory::open(shared.clone(), settings.path.as_deref(), &kinds)?;
        Ok(StoredObjects {
            directory: Arc::new(directory),
            isolation: settings.isolation,
            kinds,
            shared,
        })
    }

    /// The same directory under a reloaded configuration's settings (where the directory is
    /// kept, `state.*`, changes only with a restart).
    pub fn renewed(&self, settings: &ObjectSettings) -> StoredObjects {
        StoredObjects {
            directory: self.directory.clone(),
            isolation: settings.isolation,
            kinds: self.kinds.clone(),
            shared: self.shared.clone(),
        }
    }

    /// Whether the directory keeps objects of `kind`.
    pub fn keeps(&self, kind: &str) -> bool {
        self.kinds.contains(&kind)
    }

    pub fn kinds(&self) -> &[&'static str] {
        &self.kinds
    }

    /// Whether `subscription` may use only its own objects: under isolation, unless it is an
    /// admin of stored objects.
    pub fn isolates(&self, subscription: Option<&Subscription>) -> bool {
        self.isolation == Isolation::Subscription && !subscription.is_some_and(|s| s.objects_admin)
    }

    /// Whether the directory can be written now (Redis answers, when it is in Redis).
    pub fn available(&self) -> bool {
        self.shared.as_ref().is_none_or(|s| s.is_up())
    }

    /// What `serve` says at start-up about where the directory lives.
    pub fn describe(&self) -> &'static str {
        match self.directory.kept() {
            Kept::Redis => "stored objects: the directory is in Redis, shared by every replica",
            Kept::Disk => "stored objects: the directory is in the state.path file",
            Kept::Memory => {
                "stored objects: the directory is in memory only (no state.redis_url or state.path): objects created before a restart will go to the home backend, and only subscriptions with stored_objects_admin may use them"
            }
        }
    }
}

/// How often the directory drops what has expired and counts what is left.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Starts the thread that sweeps the directory (see [`Directory::sweep`]) every
/// 30 s (`SWEEP_EVERY`), first at once; it ends when the gateway is gone.
pub fn sweep_every_while(gateway: Weak<Live>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("object-directory".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let Ok(runtime) = runtime else {
                tracing::error!("the object directory's thread cannot start its runtime");
                return;
            };
            runtime.block_on(async {
                let tick = Duration::from_secs(1);
                let mut waited = SWEEP_EVERY;
                loop {
                    let Some(gw) = gateway.upgrade().map(|live| live.current()) else {
                        return;
                    };
                    if waited >= SWEEP_EVERY {
                        waited = Duration::ZERO;
                        if let Err(error) = gw.objects.directory.sweep().await {
                            tracing::debug!("object directory sweep: {error}");
                        }
                    }
                    drop(gw);
                    tokio::time::sleep(tick).await;
                    waited += tick;
                }
            });
        })
        .map(|_| ())
}
