//! The local runtime's stores: one embedded database file (redb) that
//! survives a restart, one table per neutral store.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use async_trait::async_trait;
use bytes::Bytes;
use cloudfn_core::{
    Error,
    store::{Condition, Record, StoreClient, Version, Write},
};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableError};

/// The file under the data folder that holds every store of the app.
const FILE: &str = "stores.redb";

/// A [`StoreClient`] on an embedded database file.
///
/// Values survive a restart; expired values read as absent and are dropped
/// when next written. One process at a time may open the file.
#[derive(Clone)]
pub struct FileStore {
    db: Arc<Database>,
    path: PathBuf,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("path", &self.path)
            .finish()
    }
}

impl FileStore {
    /// Opens (or creates) the stores under folder `dir`.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::unavailable(format!(
                "cannot create the data folder {}: {e}",
                dir.display()
            ))
        })?;
        let path = dir.join(FILE);
        let db = Database::create(&path).map_err(|e| {
            let hint = match e {
                redb::DatabaseError::DatabaseAlreadyOpen => {
                    " (another process has it open: is the app already running?)"
                }
                _ => "",
            };
            Error::unavailable(format!(
                "cannot open the store file {}: {e}{hint}",
                path.display()
            ))
        })?;
        Ok(Self {
            db: Arc::new(db),
            path,
        })
    }

    /// The file the stores live in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database) -> Result<T, redb::Error> + Send + 'static,
    ) -> Result<T, Error> {
        let db = self.db.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(|e| Error::internal(format!("store task failed: {e}")))?
            .map_err(|e| Error::unavailable(format!("store file {}: {e}", path.display())))
    }
}

fn table(store: &str) -> TableDefinition<'_, &'static str, &'static [u8]> {
    TableDefinition::new(store)
}

/// How a record sits in the file: version, expiry (ms since the epoch, 0 for
/// none), then the value.
fn encode(write: &Write) -> Vec<u8> {
    let expires = write
        .ttl
        .map_or(0, |ttl| now_ms().saturating_add(millis(ttl)));
    let mut bytes = Vec::with_capacity(16 + write.value.len());
    bytes.extend_from_slice(&write.version.0.to_le_bytes());
    bytes.extend_from_slice(&expires.to_le_bytes());
    bytes.extend_from_slice(&write.value);
    bytes
}

/// The record in `bytes`, unless it has expired (or is not one of ours).
fn decode(bytes: &[u8]) -> Option<Record> {
    let version = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let expires = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
    if expires != 0 && expires <= now_ms() {
        return None;
    }
    Some(Record {
        value: Bytes::copy_from_slice(&bytes[16..]),
        version: Version(version),
    })
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn now_ms() -> u64 {
    millis(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default(),
    )
}

fn holds(current: Option<&Record>, condition: Condition) -> bool {
    match condition {
        Condition::Always => true,
        Condition::Absent => current.is_none(),
        Condition::Version(v) => current.is_some_and(|r| r.version == v),
    }
}

/// Runs `change` on `key`'s live record inside one write transaction, and
/// commits only when it changed something.
fn modify(
    db: &Database,
    store: &str,
    key: &str,
    change: impl FnOnce(Option<Record>) -> Option<Option<Vec<u8>>>,
) -> Result<bool, redb::Error> {
    let txn = db.begin_write()?;
    let changed = {
        let mut table = txn.open_table(table(store))?;
        let current = table.get(key)?.and_then(|v| decode(v.value()));
        match change(current) {
            None => false,
            Some(Some(bytes)) => {
                table.insert(key, bytes.as_slice())?;
                true
            }
            Some(None) => {
                table.remove(key)?;
                true
            }
        }
    };
    if changed {
        txn.commit()?;
    } else {
        txn.abort()?;
    }
    Ok(changed)
}

#[async_trait]
impl StoreClient for FileStore {
    async fn get(&self, store: &str, key: &str) -> Result<Option<Record>, Error> {
        let (store, key) = (store.to_owned(), key.to_owned());
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let table = match txn.open_table(table(&store)) {
                Ok(table) => table,
                Err(TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            Ok(table.get(key.as_str())?.and_then(|v| decode(v.value())))
        })
        .await
    }

    async fn put(&self, store: &str, key: &str, write: Write) -> Result<bool, Error> {
        let (store, key) = (store.to_owned(), key.to_owned());
        self.blocking(move |db| {
            modify(db, &store, &key, |current| {
                holds(current.as_ref(), write.condition).then(|| Some(encode(&write)))
            })
        })
        .await
    }

    async fn delete(&self, store: &str, key: &str, condition: Condition) -> Result<bool, Error> {
        let (store, key) = (store.to_owned(), key.to_owned());
        self.blocking(move |db| {
            modify(db, &store, &key, |current| {
                (current.is_some() && holds(current.as_ref(), condition)).then_some(None)
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use cloudfn_core::store::conformance;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_file_store_keeps_every_promise() {
        let dir = tempfile::tempdir().unwrap();
        conformance::check(Arc::new(FileStore::open(dir.path()).unwrap()), "s", "").await;
    }

    #[tokio::test]
    async fn a_second_process_is_told_the_file_is_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let _first = FileStore::open(dir.path()).unwrap();
        let err = FileStore::open(dir.path()).unwrap_err();
        assert!(err.message().contains("already running"), "{err}");
    }
}
