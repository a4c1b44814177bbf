//! Key-value stores that outlive an invocation, whatever the cloud.
//!
//! A deployed function runs in many instances, so anything that must be seen
//! by the next invocation lives in a store: embedded on the local runtime,
//! DynamoDB on AWS. Providers implement [`StoreClient`]; handlers use the
//! typed [`Store`] handle that [`crate::Context::store`] gives out, so
//! handler code never names a cloud.

use std::{fmt, sync::Arc, time::Duration};

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{Error, messaging::Permissions};

pub mod conformance;
mod memory;

pub use memory::MemoryStore;

/// The longest key, in bytes, that every provider's store keeps as it is.
pub const MAX_KEY_BYTES: usize = 512;
/// The largest value, in bytes, that every provider's store keeps in one
/// record (DynamoDB's items stop at 400 KB).
pub const MAX_VALUE_BYTES: usize = 256 * 1024;

/// Identifies one write of a key: a compare-and-set names the version it read,
/// and succeeds only if nobody wrote the key since.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Version(pub u64);

impl Version {
    /// A fresh version for a new write. Random rather than counted, so that
    /// writers in different processes need no shared counter.
    pub fn next() -> Self {
        Self(fastrand::u64(1..))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// When a write or delete goes ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Whatever is there.
    Always,
    /// Only if the key holds nothing (or only an expired value).
    Absent,
    /// Only if the key still holds this version.
    Version(Version),
}

/// One stored value as the backing keeps it: bytes and their version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The value, as written.
    pub value: Bytes,
    /// The write that put it there.
    pub version: Version,
}

/// A write, as a [`StoreClient`] receives it.
#[derive(Debug, Clone)]
pub struct Write {
    /// The value.
    pub value: Bytes,
    /// Its version, chosen by the writer ([`Version::next`]).
    pub version: Version,
    /// When the write goes ahead.
    pub condition: Condition,
    /// How long the value lives; `None` keeps it until it is overwritten or deleted.
    pub ttl: Option<Duration>,
}

/// Reads and writes named stores. A provider implements it on its cloud's
/// database; every method is one atomic operation on one key, and an
/// expired value reads as absent at once (whenever the backing sweeps it).
#[async_trait]
pub trait StoreClient: Send + Sync + 'static {
    /// The record under `key` in `store`, unless it is absent or expired.
    async fn get(&self, store: &str, key: &str) -> Result<Option<Record>, Error>;

    /// Writes `write` under `key` if its condition holds; `false` if it did not.
    async fn put(&self, store: &str, key: &str, write: Write) -> Result<bool, Error>;

    /// Deletes `key` if `condition` holds; `false` if it did not, or nothing was there.
    async fn delete(&self, store: &str, key: &str, condition: Condition) -> Result<bool, Error>;
}

/// Stands in where no store is configured; every call fails with a clear
/// error rather than pretending to remember.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoStore;

#[async_trait]
impl StoreClient for NoStore {
    async fn get(&self, store: &str, _: &str) -> Result<Option<Record>, Error> {
        Err(no_store(store))
    }
    async fn put(&self, store: &str, _: &str, _: Write) -> Result<bool, Error> {
        Err(no_store(store))
    }
    async fn delete(&self, store: &str, _: &str, _: Condition) -> Result<bool, Error> {
        Err(no_store(store))
    }
}

fn no_store(store: &str) -> Error {
    Error::unavailable(format!(
        "no store client is configured to reach store `{store}`"
    ))
}

/// What a function may do with a store it declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreAccess {
    /// Get only ([`crate::Function::reads_store`]).
    Read,
    /// Get, put and delete ([`crate::Function::uses_store`]).
    ReadWrite,
}

/// A value read from a store, with the version to compare-and-set against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// The write that put it there.
    pub version: Version,
}

/// How many times [`Store::update`] re-reads after losing a race before it
/// gives up with a retryable conflict.
const UPDATE_ROUNDS: usize = 32;

/// A handle on one store, from [`crate::Context::store`]: typed values
/// through serde (JSON), conditional writes, and a time to live.
///
/// ```
/// # async fn demo(ctx: cloudfn_core::Context) -> Result<(), cloudfn_core::Error> {
/// use std::time::Duration;
///
/// let carts = ctx.store("carts").expire_after(Duration::from_secs(3600));
/// if carts.put_if_absent("ada", &vec!["BOOK-1"]).await?.is_some() {
///     // This invocation created the cart.
/// }
/// let items = carts
///     .update("ada", |cart: Option<Vec<String>>| {
///         let mut cart = cart.unwrap_or_default();
///         cart.push("PEN-2".into());
///         Ok(cart)
///     })
///     .await?;
/// assert!(items.contains(&"PEN-2".to_string()));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Store {
    name: String,
    client: Arc<dyn StoreClient>,
    readable: Result<(), Error>,
    writable: Result<(), Error>,
    ttl: Option<Duration>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("name", &self.name)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Store {
    pub(crate) fn new(
        name: &str,
        client: Arc<dyn StoreClient>,
        function: &str,
        permissions: &Permissions,
    ) -> Self {
        let declared = permissions.stores.get(name).copied();
        let refuse = |how: &str| {
            Err(Error::forbidden(format!(
                "function `{function}` did not declare store `{name}`{}; add `.{how}(\"{name}\")` to it",
                if declared.is_some() {
                    " for writing"
                } else {
                    ""
                }
            ))
            // The function's own mistake, not the caller's: logged, never answered.
            .private())
        };
        let (readable, writable) = match (permissions.unrestricted, declared) {
            (true, _) | (_, Some(StoreAccess::ReadWrite)) => (Ok(()), Ok(())),
            (_, Some(StoreAccess::Read)) => (Ok(()), refuse("uses_store")),
            (_, None) => (refuse("reads_store"), refuse("uses_store")),
        };
        Self {
            name: name.to_owned(),
            client,
            readable,
            writable,
            ttl: None,
        }
    }

    /// The store's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Values this handle writes expire `ttl` after they are written.
    pub fn expire_after(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// The value under `key`, with its version; `None` if there is none.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<Versioned<T>>, Error> {
        self.readable.clone()?;
        check_key(key)?;
        let Some(record) = self
            .client
            .get(&self.name, key)
            .await
            .map_err(Error::private)?
        else {
            return Ok(None);
        };
        let value = serde_json::from_slice(&record.value).map_err(|e| {
            Error::internal(format!(
                "store `{}` key `{}` holds a value that does not read as `{}`: {e}",
                self.name,
                key.escape_debug(),
                std::any::type_name::<T>()
            ))
        })?;
        Ok(Some(Versioned {
            value,
            version: record.version,
        }))
    }

    /// Writes `value` under `key`, whatever was there; returns its version.
    pub async fn put<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<Version, Error> {
        let version = self.write(key, value, Condition::Always).await?;
        version.ok_or_else(|| Error::internal("an unconditional write was refused"))
    }

    /// Writes `value` under `key` only if the key holds nothing; returns its
    /// version, or `None` if a value was there (someone else got there first).
    pub async fn put_if_absent<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<Option<Version>, Error> {
        self.write(key, value, Condition::Absent).await
    }

    /// Writes `value` under `key` only if it still holds `expected`; returns
    /// the new version, or `None` if someone wrote (or deleted) it since.
    pub async fn compare_and_set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        expected: Version,
        value: &T,
    ) -> Result<Option<Version>, Error> {
        self.write(key, value, Condition::Version(expected)).await
    }

    /// Reads `key`, applies `change` and writes the result back if nobody
    /// wrote in between, re-reading when somebody did. Returns what was
    /// written. An error from `change` is returned as it is, writing nothing.
    pub async fn update<T, F>(&self, key: &str, mut change: F) -> Result<T, Error>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> Result<T, Error>,
    {
        for _ in 0..UPDATE_ROUNDS {
            let current = self.get::<T>(key).await?;
            let (value, condition) = match current {
                Some(Versioned { value, version }) => (Some(value), Condition::Version(version)),
                None => (None, Condition::Absent),
            };
            let next = change(value)?;
            if self.write(key, &next, condition).await?.is_some() {
                return Ok(next);
            }
        }
        // Retryable: the contention is someone else's, and passes.
        Err(Error::unavailable(format!(
            "store `{}` key `{}` changed under {UPDATE_ROUNDS} updates in a row",
            self.name,
            key.escape_debug()
        )))
    }

    /// Deletes `key`; `false` if nothing was there.
    pub async fn delete(&self, key: &str) -> Result<bool, Error> {
        self.writable.clone()?;
        check_key(key)?;
        self.client
            .delete(&self.name, key, Condition::Always)
            .await
            .map_err(Error::private)
    }

    /// Deletes `key` only if it still holds `expected`.
    pub async fn delete_if(&self, key: &str, expected: Version) -> Result<bool, Error> {
        self.writable.clone()?;
        check_key(key)?;
        self.client
            .delete(&self.name, key, Condition::Version(expected))
            .await
            .map_err(Error::private)
    }

    async fn write<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        condition: Condition,
    ) -> Result<Option<Version>, Error> {
        self.writable.clone()?;
        check_key(key)?;
        let value = serde_json::to_vec(value).map_err(|e| {
            Error::invalid(format!(
                "value for store `{}` does not serialise: {e}",
                self.name
            ))
        })?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(Error::invalid(format!(
                "value for store `{}` is {} bytes; at most {MAX_VALUE_BYTES} fit one record",
                self.name,
                value.len()
            )));
        }
        let version = Version::next();
        let write = Write {
            value: value.into(),
            version,
            condition,
            ttl: self.ttl,
        };
        let written = self
            .client
            .put(&self.name, key, write)
            .await
            .map_err(Error::private)?;
        Ok(written.then_some(version))
    }
}

/// Checks a key against what every provider's store keeps as it is: 1 to
/// [`MAX_KEY_BYTES`] bytes, no control characters. [`Store`] checks every
/// key; a [`StoreClient`] whose encoding depends on it checks again.
pub fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(Error::invalid(format!(
            "store keys are 1 to {MAX_KEY_BYTES} bytes; this one is {}",
            key.len()
        )));
    }
    if key.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "store key `{}` holds a control character",
            key.escape_debug()
        )));
    }
    Ok(())
}

/// Checks a store's name as declared: the rule every provider's tables can
/// follow (DynamoDB, Azure Table Storage, Firestore collections).
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let ok = (3..=48).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "store `{}`: names are 3 to 48 lower-case letters, digits or `-`, starting with a letter",
            name.escape_debug()
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::ErrorKind;

    fn store_for(stores: &[(&str, StoreAccess)], client: Arc<dyn StoreClient>) -> Store {
        let permissions = Permissions {
            stores: stores
                .iter()
                .map(|(n, a)| ((*n).to_owned(), *a))
                .collect::<BTreeMap<_, _>>(),
            ..Permissions::default()
        };
        Store::new("orders", client, "charge", &permissions)
    }

    #[tokio::test]
    async fn the_memory_store_keeps_every_promise() {
        conformance::check(Arc::new(MemoryStore::new()), "s", "").await;
    }

    #[tokio::test]
    async fn access_is_what_the_function_declared() {
        let client: Arc<dyn StoreClient> = Arc::new(MemoryStore::new());
        let writer = store_for(&[("orders", StoreAccess::ReadWrite)], client.clone());
        writer.put("a", &1).await.unwrap();

        let reader = store_for(&[("orders", StoreAccess::Read)], client.clone());
        assert_eq!(reader.get::<u32>("a").await.unwrap().unwrap().value, 1);
        let err = reader.put("a", &2).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Forbidden);
        assert!(
            !err.is_for_caller(),
            "the function's mistake, not the caller's"
        );
        assert!(err.message().contains(".uses_store(\"orders\")"), "{err}");

        let stranger = store_for(&[], client);
        let err = stranger.get::<u32>("a").await.unwrap_err();
        assert!(err.message().contains(".reads_store(\"orders\")"), "{err}");
    }

    #[tokio::test]
    async fn conditional_writes_and_update() {
        let client: Arc<dyn StoreClient> = Arc::new(MemoryStore::new());
        let store = store_for(&[("orders", StoreAccess::ReadWrite)], client);
        let first = store.put_if_absent("k", &"a").await.unwrap().unwrap();
        assert_eq!(store.put_if_absent("k", &"b").await.unwrap(), None);
        let second = store
            .compare_and_set("k", first, &"c")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(store.compare_and_set("k", first, &"d").await.unwrap(), None);
        assert!(!store.delete_if("k", first).await.unwrap());
        let total = store
            .update("n", |n: Option<i64>| Ok(n.unwrap_or(0) + 5))
            .await
            .unwrap();
        assert_eq!(total, 5);
        assert_eq!(
            store.get::<String>("k").await.unwrap().unwrap(),
            Versioned {
                value: "c".to_owned(),
                version: second
            }
        );
        assert!(store.delete_if("k", second).await.unwrap());
        assert!(!store.delete("k").await.unwrap());
    }

    #[tokio::test]
    async fn keys_and_values_have_portable_limits() {
        let client: Arc<dyn StoreClient> = Arc::new(MemoryStore::new());
        let store = store_for(&[("orders", StoreAccess::ReadWrite)], client);
        let err = store.put("a\nb", &1).await.unwrap_err();
        assert!(err.message().contains("control character"), "{err}");
        let err = store.put(&"k".repeat(513), &1).await.unwrap_err();
        assert!(err.message().contains("1 to 512 bytes"), "{err}");
        let err = store
            .put("big", &"x".repeat(MAX_VALUE_BYTES))
            .await
            .unwrap_err();
        assert!(err.message().contains("fit one record"), "{err}");
    }

    #[tokio::test]
    async fn expired_values_read_as_absent_and_make_room() {
        let client = Arc::new(MemoryStore::with_capacity(2));
        let store = store_for(&[("orders", StoreAccess::ReadWrite)], client.clone());
        let brief = store.clone().expire_after(Duration::ZERO);
        brief.put("a", &1).await.unwrap();
        brief.put("b", &1).await.unwrap();
        assert!(store.get::<u32>("a").await.unwrap().is_none());
        assert!(store.put_if_absent("a", &2).await.unwrap().is_some());
        // Full of one live and one expired key: the expired one makes room.
        store.put("c", &3).await.unwrap();
        let err = store.put("d", &4).await.unwrap_err();
        assert!(err.message().contains("limit of 2 keys"), "{err}");
        assert_eq!(client.len(), 2);
    }
}
