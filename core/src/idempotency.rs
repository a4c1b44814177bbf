//! Remembering which deliveries were already processed.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use async_trait::async_trait;

use crate::Error;

/// Proves who holds a claim, so a holder whose lease ran out cannot release
/// the claim someone else took since.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClaimToken(pub u64);

impl ClaimToken {
    /// A fresh random token.
    pub fn random() -> Self {
        Self(fastrand::u64(..))
    }
}

/// The answer to "may I process this key?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Nobody has: this invocation now holds the key, until it completes or
    /// releases it with this token.
    Acquired(ClaimToken),
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
    /// Marks `key` processed, remembered for `ttl`. The work is done, so
    /// this holds even if the claim `token` names has expired meanwhile.
    async fn complete(&self, key: &str, token: ClaimToken, ttl: Duration) -> Result<(), Error>;
    /// Gives `key` back after a failure, so a retry may claim it; only the
    /// claim `token` names is released.
    async fn release(&self, key: &str, token: ClaimToken) -> Result<(), Error>;
}

#[derive(Debug, Clone, Copy)]
enum Record {
    Held { until: Instant, token: ClaimToken },
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
                Record::Held { until, .. } | Record::Done { until } => *until > now,
            });
        }
        Ok(match records.get(key) {
            Some(Record::Done { until }) if *until > now => Claim::Completed,
            Some(Record::Held { until, .. }) if *until > now => Claim::InProgress,
            _ => {
                let token = ClaimToken::random();
                records.insert(
                    key.to_owned(),
                    Record::Held {
                        until: now + lease,
                        token,
                    },
                );
                Claim::Acquired(token)
            }
        })
    }

    async fn complete(&self, key: &str, _token: ClaimToken, ttl: Duration) -> Result<(), Error> {
        let until = Instant::now() + ttl;
        self.lock().insert(key.to_owned(), Record::Done { until });
        Ok(())
    }

    async fn release(&self, key: &str, token: ClaimToken) -> Result<(), Error> {
        let mut records = self.lock();
        if matches!(records.get(key), Some(Record::Held { token: held, .. }) if *held == token) {
            records.remove(key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn acquire(store: &MemoryIdempotencyStore, key: &str, lease: Duration) -> ClaimToken {
        match store.claim(key, lease).await.unwrap() {
            Claim::Acquired(token) => token,
            other => panic!("expected to acquire `{key}`, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn claim_complete_and_release() {
        let store = MemoryIdempotencyStore::new();
        let lease = Duration::from_secs(30);
        let token = acquire(&store, "a", lease).await;
        assert_eq!(store.claim("a", lease).await.unwrap(), Claim::InProgress);
        store.release("a", token).await.unwrap();
        let token = acquire(&store, "a", lease).await;
        store
            .complete("a", token, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(store.claim("a", lease).await.unwrap(), Claim::Completed);
        store.release("a", token).await.unwrap();
        assert_eq!(
            store.claim("a", lease).await.unwrap(),
            Claim::Completed,
            "release must not undo completion"
        );
    }

    #[tokio::test]
    async fn a_stale_holder_cannot_release_a_newer_claim() {
        let store = MemoryIdempotencyStore::new();
        let stale = acquire(&store, "k", Duration::ZERO).await;
        let current = acquire(&store, "k", Duration::from_secs(30)).await;
        store.release("k", stale).await.unwrap();
        assert_eq!(
            store.claim("k", Duration::from_secs(30)).await.unwrap(),
            Claim::InProgress
        );
        store.release("k", current).await.unwrap();
        acquire(&store, "k", Duration::from_secs(30)).await;
    }

    #[tokio::test]
    async fn expired_records_free_the_key() {
        let store = MemoryIdempotencyStore::new();
        acquire(&store, "k", Duration::ZERO).await;
        let token = acquire(&store, "k", Duration::ZERO).await;
        store.complete("k", token, Duration::ZERO).await.unwrap();
        acquire(&store, "k", Duration::from_secs(1)).await;
    }
}
