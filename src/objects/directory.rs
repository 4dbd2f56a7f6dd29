//! The directory: for each stored object the gateway saw created, the backend that holds it,
//! the subscription that owns it, its kind and when the directory forgets it.
//!
//! It lives where the rest of the gateway's state does: in Redis with `state.redis_url`
//! (shared by every replica: one key per object, `{prefix}:obj:<id>`, expiring with it, and a
//! sorted set per kind, by expiry, for the directory's size), else in an embedded database
//! with `state.path` (redb: one table, one process), else in memory. A lookup of every object a
//! call names is one round trip (`MGET`), and only calls that name one make it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::limits::now_ms;
use crate::state::shared::Shared;

/// What the directory knows of one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The backend that holds it, by name (indexes change with the config; names do not).
    #[serde(rename = "b")]
    pub backend: String,
    /// The subscription that created it, by name.
    #[serde(rename = "o")]
    pub owner: String,
    #[serde(rename = "k")]
    pub kind: String,
    /// When the directory forgets it, in ms since the Unix epoch.
    #[serde(rename = "x")]
    pub expires_ms: u64,
}

/// How a record treats an entry already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// Replaces it: an answer's own `id` is a new object.
    Replace,
    /// Keeps it: an answer's reference (a run's `thread_id`) may name an object created
    /// earlier, whose owner is already known.
    IfAbsent,
}

/// Why the directory did not answer.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("shared state: {0}")]
    Shared(#[from] crate::state::shared::StateError),
    #[error("object directory file: {0}")]
    Disk(String),
}

const TABLE: TableDefinition<&str, &str> = TableDefinition::new("objects");

enum Store {
    Memory(Mutex<HashMap<String, Entry>>),
    Disk(Arc<redb::Database>),
    Redis(Arc<Shared>),
}

/// Where the directory is kept, as `serve` says at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    Memory,
    Disk,
    Redis,
}

pub struct Directory {
    store: Store,
    /// Objects per kind, as this replica last counted them (and has written since).
    sizes: Vec<(&'static str, AtomicU64)>,
}

fn disk_error(e: impl std::fmt::Display) -> DirectoryError {
    DirectoryError::Disk(e.to_string())
}

impl Directory {
    /// A directory in Redis (`shared`), else in the file at `path`, else in memory; `kinds`
    /// are those it keeps, for its sizes.
    pub fn open(
        shared: Option<Arc<Shared>>,
        path: Option<&Path>,
        kinds: &[&'static str],
    ) -> Result<Directory, String> {
        let store = match (shared, path) {
            (Some(shared), _) => Store::Redis(shared),
            (None, Some(path)) => {
                let db = redb::Database::create(path)
                    .map_err(|e| format!("state.path `{}`: {e}", path.display()))?;
                // The table exists from the start, so that reads never find it missing.
                let ready = || -> Result<(), String> {
                    let txn = db.begin_write().map_err(|e| e.to_string())?;
                    txn.open_table(TABLE).map_err(|e| e.to_string())?;
                    txn.commit().map_err(|e| e.to_string())
                };
                ready().map_err(|e| format!("state.path `{}`: {e}", path.display()))?;
                Store::Disk(Arc::new(db))
            }
            (None, None) => Store::Memory(Mutex::new(HashMap::new())),
        };
        Ok(Directory {
            store,
            sizes: kinds.iter().map(|k| (*k, AtomicU64::new(0))).collect(),
        })
    }

    pub fn kept(&self) -> Kept {
        match self.store {
            Store::Memory(_) => Kept::Memory,
            Store::Disk(_) => Kept::Disk,
            Store::Redis(_) => Kept::Redis,
        }
    }

    /// What the directory knows of each of `ids`, in order; expired entries are unknown.
    pub async fn look_up(&self, ids: &[&str]) -> Result<Vec<Option<Entry>>, DirectoryError> {
        let now = now_ms();
        let fresh = |e: Option<Entry>| e.filter(|e| e.expires_ms > now);
        match &self.store {
            Store::Memory(map) => {
                let map = map.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(ids.iter().map(|id| fresh(map.get(*id).cloned())).collect())
            }
            Store::Disk(db) => {
                let db = db.clone();
                let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
                let found = blocking(move || {
                    let txn = db.begin_read().map_err(disk_error)?;
                    let table = txn.open_table(TABLE).map_err(disk_error)?;
                    ids.iter()
                        .map(|id| {
                            let value = table.get(id.as_str()).map_err(disk_error)?;
                            Ok(value.and_then(|v| serde_json::from_str(v.value()).ok()))
                        })
                        .collect::<Result<Vec<Option<Entry>>, DirectoryError>>()
                })
                .await?;
                Ok(found.into_iter().map(fresh).collect())
            }
            Store::Redis(shared) => {
                let mut pipe = redis::pipe();
                let get = pipe.cmd("MGET");
                for id in ids {
                    get.arg(shared.key(&["obj", id]));
                }
                let (values,): (Vec<Option<String>>,) = shared.query(&pipe).await?;
                Ok(values
                    .into_iter()
                    .map(|v| fresh(v.and_then(|v| serde_json::from_str(&v).ok())))
                    .collect())
            }
        }
    }

    /// Records objects, each under its id, as one write.
    pub async fn record(&self, records: Vec<(String, Entry, Write)>) -> Result<(), DirectoryError> {
        if records.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let added: Vec<String> = match &self.store {
            Store::Memory(map) => {
                let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
                let mut added = Vec::new();
                for (id, entry, write) in &records {
                    let present = map.get(id).is_some_and(|e| e.expires_ms > now);
                    if write == &Write::IfAbsent && present {
                        continue;
                    }
                    map.insert(id.clone(), entry.clone());
                    if !present {
                        added.push(entry.kind.clone());
                    }
                }
                added
            }
            Store::Disk(db) => {
                let db = db.clone();
                let owned = records.clone();
                blocking(move || {
                    let txn = db.begin_write().map_err(disk_error)?;
                    let mut added = Vec::new();
                    {
                        let mut table = txn.open_table(TABLE).map_err(disk_error)?;
                        for (id, entry, write) in &owned {
                            let present = table
                                .get(id.as_str())
                                .map_err(disk_error)?
                                .and_then(|v| serde_json::from_str::<Entry>(v.value()).ok())
                                .is_some_and(|e| e.expires_ms > now);
                            if *write == Write::IfAbsent && present {
                                continue;
                            }
                            let value = serde_json::to_string(entry).map_err(disk_error)?;
                            table
                                .insert(id.as_str(), value.as_str())
                                .map_err(disk_error)?;
                            if !present {
                                added.push(entry.kind.clone());
                            }
                        }
                    }
                    // Durable before the client hears of the object.
                    txn.commit().map_err(disk_error)?;
                    Ok(added)
                })
                .await?
            }
            Store::Redis(shared) => {
                let mut pipe = redis::pipe();
                for (id, entry, write) in &records {
                    let value = serde_json::to_string(entry).unwrap_or_default();
                    let ttl = entry.expires_ms.saturating_sub(now).max(1);
                    let set = pipe.cmd("SET").arg(shared.key(&["obj", id])).arg(value);
                    set.arg("PX").arg(ttl);
                    if *write == Write::IfAbsent {
                        set.arg("NX");
                    }
                    set.ignore();
                    let index = pipe.cmd("ZADD").arg(shared.key(&["objs", &entry.kind]));
                    if *write == Write::IfAbsent {
                        index.arg("NX");
                    }
                    index.arg(entry.expires_ms).arg(id);
                }
                let new: Vec<u64> = shared.query(&pipe).await?;
                records
                    .iter()
                    .zip(new)
                    .filter(|(_, n)| *n > 0)
                    .map(|((_, e, _), _)| e.kind.clone())
                    .collect()
            }
        };
        for kind in added {
            if let Some(size) = self.size(&kind) {
                size.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Forgets an object (a backend deleted it).
    pub async fn forget(&self, id: &str, kind: &str) -> Result<(), DirectoryError> {
        let removed = match &self.store {
            Store::Memory(map) => map
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(id)
                .is_some(),
            Store::Disk(db) => {
                let (db, id) = (db.clone(), id.to_string());
                blocking(move || {
                    let txn = db.begin_write().map_err(disk_error)?;
                    let removed = txn
                        .open_table(TABLE)
                        .and_then(|mut t| Ok(t.remove(id.as_str())?.is_some()))
                        .map_err(disk_error)?;
                    txn.commit().map_err(disk_error)?;
                    Ok(removed)
                })
                .await?
            }
            Store::Redis(shared) => {
                let mut pipe = redis::pipe();
                pipe.cmd("DEL").arg(shared.key(&["obj", id])).ignore();
                pipe.cmd("ZREM").arg(shared.key(&["objs", kind])).arg(id);
                let (removed,): (u64,) = shared.query(&pipe).await?;
                removed > 0
            }
        };
        if removed && let Some(size) = self.size(kind) {
            let _ = size.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
        Ok(())
    }

    /// Drops what has expired and counts what is left, by kind (off any call's path: the
    /// directory's own thread runs it every little while).
    pub async fn sweep(&self) -> Result<(), DirectoryError> {
        let now = now_ms();
        let counts: HashMap<String, u64> = match &self.store {
            Store::Memory(map) => {
                let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
                map.retain(|_, e| e.expires_ms > now);
                count(map.values().map(|e| e.kind.as_str()))
            }
            Store::Disk(db) => {
                let db = db.clone();
                blocking(move || {
                    let txn = db.begin_write().map_err(disk_error)?;
                    let mut kinds = Vec::new();
                    {
                        let mut table = txn.open_table(TABLE).map_err(disk_error)?;
                        table
                            .retain(|_, v| match serde_json::from_str::<Entry>(v) {
                                Ok(e) if e.expires_ms > now => {
                                    kinds.push(e.kind);
                                    true
                                }
                                _ => false,
                            })
                            .map_err(disk_error)?;
                    }
                    txn.commit().map_err(disk_error)?;
                    Ok(count(kinds.iter().map(String::as_str)))
                })
                .await?
            }
            Store::Redis(shared) => {
                let mut pipe = redis::pipe();
                for (kind, _) in &self.sizes {
                    let index = shared.key(&["objs", kind]);
                    pipe.cmd("ZREMRANGEBYSCORE")
                        .arg(&index)
                        .arg("-inf")
                        .arg(now)
                        .ignore();
                    pipe.cmd("ZCARD").arg(&index);
                }
                let sizes: Vec<u64> = shared.query(&pipe).await?;
                self.sizes
                    .iter()
                    .zip(sizes)
                    .map(|((k, _), n)| (k.to_string(), n))
                    .collect()
            }
        };
        for (kind, size) in &self.sizes {
            size.store(counts.get(*kind).copied().unwrap_or(0), Ordering::Relaxed);
        }
        Ok(())
    }

    /// Objects per kind, as last counted.
    pub fn sizes(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.sizes
            .iter()
            .map(|(k, n)| (*k, n.load(Ordering::Relaxed)))
    }

    fn size(&self, kind: &str) -> Option<&AtomicU64> {
        self.sizes.iter().find(|(k, _)| *k == kind).map(|(_, n)| n)
    }
}

fn count<'a>(kinds: impl Iterator<Item = &'a str>) -> HashMap<String, u64> {
    let mut counts = HashMap::new();
    for kind in kinds {
        *counts.entry(kind.to_string()).or_insert(0) += 1;
    }
    counts
}

/// Runs disk work on the blocking pool, off the worker's event loop.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, DirectoryError> + Send + 'static,
) -> Result<T, DirectoryError> {
    actix_web::rt::task::spawn_blocking(work)
        .await
        .map_err(|e| DirectoryError::Disk(format!("the disk task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: &str, owner: &str, expires_ms: u64) -> Entry {
        Entry {
            backend: "eastus".into(),
            owner: owner.into(),
            kind: kind.into(),
            expires_ms,
        }
    }

    async fn exercise(directory: &Directory) {
        let later = now_ms() + 60_000;
        directory
            .record(vec![
                ("file-1".into(), entry("file", "a", later), Write::Replace),
                (
                    "resp_1".into(),
                    entry("response", "a", later),
                    Write::Replace,
                ),
                ("resp_old".into(), entry("response", "a", 1), Write::Replace),
            ])
            .await
            .unwrap();
        // A reference does not take an object over.
        directory
            .record(vec![(
                "file-1".into(),
                entry("file", "b", later),
                Write::IfAbsent,
            )])
            .await
            .unwrap();
        let found = directory
            .look_up(&["file-1", "nope", "resp_old", "resp_1"])
            .await
            .unwrap();
        assert_eq!(found[0].as_ref().map(|e| e.owner.as_str()), Some("a"));
        assert_eq!(found[1], None);
        assert_eq!(found[2], None, "expired");
        assert!(found[3].is_some());
        directory.forget("file-1", "file").await.unwrap();
        assert_eq!(directory.look_up(&["file-1"]).await.unwrap()[0], None);
        directory.sweep().await.unwrap();
        let sizes: HashMap<_, _> = directory.sizes().collect();
        assert_eq!((sizes["file"], sizes["response"]), (0, 1));
    }

    #[test]
    fn memory_and_disk_directories_keep_owners_expire_and_forget() {
        actix_web::rt::System::new().block_on(async {
            let kinds = ["file", "response"];
            exercise(&Directory::open(None, None, &kinds).unwrap()).await;
            let folder = std::env::temp_dir().join(format!("aoai-dir-{}", std::process::id()));
            std::fs::create_dir_all(&folder).unwrap();
            let path = folder.join("objects.redb");
            let _ = std::fs::remove_file(&path);
            {
                let disk = Directory::open(None, Some(&path), &kinds).unwrap();
                exercise(&disk).await;
            }
            // Reopened, as after a restart.
            let again = Directory::open(None, Some(&path), &kinds).unwrap();
            assert!(again.look_up(&["resp_1"]).await.unwrap()[0].is_some());
            let _ = std::fs::remove_dir_all(&folder);
        });
    }
}
