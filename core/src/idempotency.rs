//! Remembering which deliveries were already processed.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use async_trait::async_trait;

use crate::Error;

/// The answer to "may I process this key?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Nobody has: this invocation now holds the key until it completes or releases it.
    Acquired,
    /// It was processed successfully before: acknowledge without running.
    Completed,
    /// Another invocation holds it right now: try again later.
    InProgress,
}

/// Where idempotency keys live. The in-memory [`MemoryIdempotencyStore`] is
/// the default; a store shared between processes (a table in the cloud's
/// database) makes idempotency hold across instances.
#[async_trait]
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Claims `key` for at most `lease` (so a crashed holder does not block it forever).
    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, Error>;
    /// Marks `key` processed, remembered for `ttl`.
    async fn complete(&self, key: &str, ttl: Duration) -> Result<(), Error>;
    /// Gives `key` back after a failure, so a retry may claim it.
    async fn release(&self, key: &str) -> Result<(), Error>;
}

#[derive(Debug, Clone, Copy)]
enum Record {
    Held { until: Instant },
    Done { until: Instant },
}

/// An [`IdempotencyStore`] in this process's memory.
#[derive(Debug, Default)]
pub struct MemoryIdempotencyStore {
    records: Mutex<HashMap<String, Record>>,
}

impl MemoryIdempotencyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many keys it remembers (expired ones included until the next sweep).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether it remembers no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        // A poisoned lock only means a panic elsewhere; the map itself is consistent.
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl IdempotencyStore for MemoryIdempotencyStore {
    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, Error> {
        let now = Instant::now();
        let mut records = self.lock();
        // Sweep now and then so expired keys do not pile up.
        if records.len() >= 4096 && records.len().is_power_of_two() {
            records.retain(|_, r| match r {
                Record::Held { until } | Record::Done { until } => *until > now,
            });
        }
        let claim = match records.get(key) {
            Some(Record::Done { until }) if *until > now => Claim::Completed,
            Some(Record::Held { until }) if *until > now => Claim::InProgress,
            _ => Claim::Acquired,
        };
        if claim == Claim::Acquired {
            records.insert(key.to_owned(), Record::Held { until: now + lease });
        }
        Ok(claim)
    }

    async fn complete(&self, key: &str, ttl: Duration) -> Result<(), Error> {
        let until = Instant::now() + ttl;
        self.lock().insert(key.to_owned(), Record::Done { until });
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<(), Error> {
        let mut records = self.lock();
        if matches!(records.get(key), Some(Record::Held { .. })) {
            records.remove(key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn claim_complete_and_release() {
        let store = MemoryIdempotencyStore::new();
        let lease = Duration::from_secs(30);
        assert_eq!(store.claim("a", lease).await.unwrap(), Claim::Acquired);
        assert_eq!(store.claim("a", lease).await.unwrap(), Claim::InProgress);
        store.release("a").await.unwrap();
        assert_eq!(store.claim("a", lease).await.unwrap(), Claim::Acquired);
        store.complete("a", Duration::from_secs(60)).await.unwrap();
        assert_eq!(store.claim("a", lease).await.unwrap(), Claim::Completed);
        store.release("a").await.unwrap();
        assert_eq!(
            store.claim("a", lease).await.unwrap(),
            Claim::Completed,
            "release must not undo completion"
        );
    }

    #[tokio::test]
    async fn expired_records_free_the_key() {
        let store = MemoryIdempotencyStore::new();
        assert_eq!(
            store.claim("k", Duration::ZERO).await.unwrap(),
            Claim::Acquired
        );
        assert_eq!(
            store.claim("k", Duration::ZERO).await.unwrap(),
            Claim::Acquired,
            "an expired lease is free"
        );
        store.complete("k", Duration::ZERO).await.unwrap();
        assert_eq!(
            store.claim("k", Duration::from_secs(1)).await.unwrap(),
            Claim::Acquired
        );
    }
}
