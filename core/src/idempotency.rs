//! Remembering which deliveries were already processed, in the store every
//! instance of a function shares ([`crate::conventions::IDEMPOTENCY_STORE`]).
//!
//! A key is claimed with a put-if-absent that expires after the function's
//! timeout, so a holder that crashed or ran past its deadline loses the claim
//! to the next delivery; success overwrites it with a `done` mark kept for
//! the policy's TTL; failure deletes it (only if it is still this holder's).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{
    Error,
    store::{Store, Version, Versioned},
};

/// What the store holds under an idempotency key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum Mark {
    /// An invocation is processing the key.
    Held,
    /// The key was processed successfully.
    Done,
}

/// The answer to "may I process this key?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// Nobody has: this invocation holds the key through this version.
    Acquired(Version),
    /// It was processed successfully before: acknowledge without running.
    Completed,
    /// Another invocation holds it right now.
    InProgress,
}

/// Claims `key` for at most `lease`.
pub(crate) async fn claim(store: &Store, key: &str, lease: Duration) -> Result<Claim, Error> {
    let held = store.clone().expire_after(lease);
    // Two rounds: a mark that expires or is released between the write and
    // the read is simply claimed again.
    for _ in 0..2 {
        if let Some(version) = held.put_if_absent(key, &Mark::Held).await? {
            return Ok(Claim::Acquired(version));
        }
        match store.get::<Mark>(key).await? {
            Some(Versioned {
                value: Mark::Done, ..
            }) => return Ok(Claim::Completed),
            Some(Versioned {
                value: Mark::Held, ..
            }) => return Ok(Claim::InProgress),
            None => continue,
        }
    }
    Ok(Claim::InProgress)
}

/// Marks `key` processed, remembered for `ttl`. The work is done, so this
/// holds even if the claim expired meanwhile.
pub(crate) async fn complete(store: &Store, key: &str, ttl: Duration) -> Result<(), Error> {
    store
        .clone()
        .expire_after(ttl)
        .put(key, &Mark::Done)
        .await?;
    Ok(())
}

/// Gives `key` back after a failure, so a retry may claim it; a claim taken
/// since by someone else (`held` no longer current) is left alone.
pub(crate) async fn release(store: &Store, key: &str, held: Version) -> Result<(), Error> {
    store.delete_if(key, held).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        messaging::Permissions,
        store::{MemoryStore, StoreClient},
    };

    fn store() -> Store {
        let client: Arc<dyn StoreClient> = Arc::new(MemoryStore::new());
        Store::new("keys", client, "test", &Permissions::unrestricted())
    }

    async fn acquire(store: &Store, key: &str, lease: Duration) -> Version {
        match claim(store, key, lease).await.unwrap() {
            Claim::Acquired(version) => version,
            other => panic!("expected to acquire `{key}`, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn claim_complete_and_release() {
        let store = store();
        let lease = Duration::from_secs(30);
        let held = acquire(&store, "a", lease).await;
        assert_eq!(claim(&store, "a", lease).await.unwrap(), Claim::InProgress);
        release(&store, "a", held).await.unwrap();
        let held = acquire(&store, "a", lease).await;
        complete(&store, "a", Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(claim(&store, "a", lease).await.unwrap(), Claim::Completed);
        release(&store, "a", held).await.unwrap();
        assert_eq!(
            claim(&store, "a", lease).await.unwrap(),
            Claim::Completed,
            "release must not undo completion"
        );
    }

    #[tokio::test]
    async fn a_lapsed_claim_is_taken_over_and_its_holder_cannot_release_the_new_one() {
        let store = store();
        let stale = acquire(&store, "k", Duration::ZERO).await;
        let current = acquire(&store, "k", Duration::from_secs(30)).await;
        release(&store, "k", stale).await.unwrap();
        assert_eq!(
            claim(&store, "k", Duration::from_secs(30)).await.unwrap(),
            Claim::InProgress
        );
        release(&store, "k", current).await.unwrap();
        acquire(&store, "k", Duration::from_secs(30)).await;
    }

    #[tokio::test]
    async fn a_completion_is_forgotten_after_its_ttl() {
        let store = store();
        acquire(&store, "k", Duration::from_secs(30)).await;
        complete(&store, "k", Duration::ZERO).await.unwrap();
        acquire(&store, "k", Duration::from_secs(1)).await;
    }
}
