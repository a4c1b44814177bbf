//! A store in this process's memory: for tests and single-process tools.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use async_trait::async_trait;

use super::{Condition, Record, StoreClient, Write};
use crate::Error;

/// A [`StoreClient`] in this process's memory, holding at most a fixed
/// number of keys.
///
/// It forgets everything when the process ends and is not shared between
/// processes, so no cloud provider uses it; a full store refuses new keys
/// (after dropping expired ones) rather than silently forgetting live ones.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use cloudfn_core::store::{Condition, MemoryStore, StoreClient, Version, Write};
///
/// let store = MemoryStore::with_capacity(1);
/// let write = |condition| Write { value: "1".into(), version: Version::next(), condition, ttl: None };
/// assert!(store.put("s", "a", write(Condition::Absent)).await.unwrap());
/// assert!(!store.put("s", "a", write(Condition::Absent)).await.unwrap());
/// let full = store.put("s", "b", write(Condition::Always)).await.unwrap_err();
/// assert!(full.message().contains("holds its limit of 1 key"));
/// # });
/// ```
#[derive(Debug)]
pub struct MemoryStore {
    capacity: usize,
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<(String, String), Entry>,
    /// No entry expires before this, so a full store need not sweep before it.
    next_expiry: Option<Instant>,
}

#[derive(Debug, Clone)]
struct Entry {
    record: Record,
    expires: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|at| at > now)
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }
}

impl MemoryStore {
    /// How many keys [`MemoryStore::new`] holds.
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// An empty store of [`MemoryStore::DEFAULT_CAPACITY`] keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store of at most `capacity` keys, expired ones included until
    /// it fills up.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::default(),
        }
    }

    /// How many keys it holds, expired ones included until the next sweep.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether it holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A poisoned lock only means a panic elsewhere; the map is consistent.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Entries {
    fn sweep(&mut self, now: Instant) {
        if self.next_expiry.is_none_or(|at| at > now) {
            return;
        }
        self.map.retain(|_, entry| entry.live(now));
        self.next_expiry = self.map.values().filter_map(|e| e.expires).min();
    }

    fn live(&self, id: &(String, String), now: Instant) -> Option<&Entry> {
        self.map.get(id).filter(|entry| entry.live(now))
    }

    fn holds(&self, id: &(String, String), condition: Condition, now: Instant) -> bool {
        let current = self.live(id, now);
        match condition {
            Condition::Always => true,
            Condition::Absent => current.is_none(),
            Condition::Version(v) => current.is_some_and(|e| e.record.version == v),
        }
    }
}

fn id(store: &str, key: &str) -> (String, String) {
    (store.to_owned(), key.to_owned())
}

#[async_trait]
impl StoreClient for MemoryStore {
    async fn get(&self, store: &str, key: &str) -> Result<Option<Record>, Error> {
        let now = Instant::now();
        Ok(self
            .lock()
            .live(&id(store, key), now)
            .map(|e| e.record.clone()))
    }

    async fn put(&self, store: &str, key: &str, write: Write) -> Result<bool, Error> {
        let now = Instant::now();
        let id = id(store, key);
        let mut entries = self.lock();
        if !entries.holds(&id, write.condition, now) {
            return Ok(false);
        }
        if !entries.map.contains_key(&id) && entries.map.len() >= self.capacity {
            entries.sweep(now);
            if entries.map.len() >= self.capacity {
                return Err(Error::unavailable(format!(
                    "the in-memory store holds its limit of {} key{}; a store shared by every instance (the cloud's database) has none",
                    self.capacity,
                    if self.capacity == 1 { "" } else { "s" }
                )));
            }
        }
        let expires = write
            .ttl
            .map(|ttl| now + ttl.min(Duration::from_secs(u32::MAX.into())));
        if let Some(at) = expires {
            entries.next_expiry = Some(entries.next_expiry.map_or(at, |next| next.min(at)));
        }
        entries.map.insert(
            id,
            Entry {
                record: Record {
                    value: write.value,
                    version: write.version,
                },
                expires,
            },
        );
        Ok(true)
    }

    async fn delete(&self, store: &str, key: &str, condition: Condition) -> Result<bool, Error> {
        let now = Instant::now();
        let id = id(store, key);
        let mut entries = self.lock();
        let present = entries.live(&id, now).is_some();
        if !present || !entries.holds(&id, condition, now) {
            return Ok(false);
        }
        entries.map.remove(&id);
        Ok(true)
    }
}
