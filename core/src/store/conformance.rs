//! What every [`StoreClient`] promises, as one check each provider's tests
//! run on its own backing (the object_store habit): a backing that passes
//! behaves as handlers expect on every cloud.

use std::{sync::Arc, time::Duration};

use super::{Condition, StoreClient, Version, Write};

fn write(value: &str, condition: Condition, ttl: Option<Duration>) -> Write {
    Write {
        value: value.as_bytes().to_vec().into(),
        version: Version::next(),
        condition,
        ttl,
    }
}

/// Runs every promise against `client`, in store `store` (which must exist
/// and be empty), panicking with the promise broken. `key_prefix` keeps
/// runs sharing a store apart.
pub async fn check(client: Arc<dyn StoreClient>, store: &str, key_prefix: &str) {
    let key = |k: &str| format!("{key_prefix}{k}");
    let a = key("a");

    assert_eq!(
        client.get(store, &a).await.unwrap(),
        None,
        "absent at first"
    );
    let first = write("1", Condition::Absent, None);
    assert!(
        client.put(store, &a, first.clone()).await.unwrap(),
        "put-if-absent on nothing"
    );
    assert!(
        !client
            .put(store, &a, write("2", Condition::Absent, None))
            .await
            .unwrap(),
        "put-if-absent on something is refused"
    );
    let read = client.get(store, &a).await.unwrap().expect("written");
    assert_eq!(
        (&read.value[..], read.version),
        (&b"1"[..], first.version),
        "reads what was written"
    );

    let stale = Condition::Version(Version::next());
    assert!(
        !client
            .put(store, &a, write("3", stale, None))
            .await
            .unwrap(),
        "a stale version is refused"
    );
    let second = write("4", Condition::Version(first.version), None);
    assert!(
        client.put(store, &a, second.clone()).await.unwrap(),
        "the current version wins"
    );
    assert_eq!(
        client.get(store, &a).await.unwrap().unwrap().version,
        second.version
    );
    assert!(
        client
            .put(store, &a, write("5", Condition::Always, None))
            .await
            .unwrap(),
        "put overwrites"
    );

    assert!(
        !client
            .delete(store, &key("none"), Condition::Always)
            .await
            .unwrap(),
        "deleting nothing"
    );
    assert!(
        !client.delete(store, &a, stale).await.unwrap(),
        "delete with a stale version is refused"
    );
    assert!(
        client.delete(store, &a, Condition::Always).await.unwrap(),
        "delete"
    );
    assert_eq!(client.get(store, &a).await.unwrap(), None, "gone");

    // Expiry: an expired value reads as absent and can be claimed again at
    // once, whenever the backing sweeps it.
    let brief = key("brief");
    let expired = write("x", Condition::Always, Some(Duration::from_millis(1)));
    assert!(client.put(store, &brief, expired.clone()).await.unwrap());
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        client.get(store, &brief).await.unwrap(),
        None,
        "expired reads as absent"
    );
    assert!(
        !client
            .put(
                store,
                &brief,
                write("y", Condition::Version(expired.version), None)
            )
            .await
            .unwrap(),
        "an expired value cannot be compared against"
    );
    assert!(
        client
            .put(
                store,
                &brief,
                write("z", Condition::Absent, Some(Duration::from_secs(60)))
            )
            .await
            .unwrap(),
        "an expired value counts as absent"
    );
    assert_eq!(
        &client.get(store, &brief).await.unwrap().unwrap().value[..],
        b"z",
        "live until its TTL"
    );

    // Racing put-if-absent: exactly one writer wins.
    let raced = key("raced");
    let racers = (0..8).map(|i| {
        let client = client.clone();
        let raced = raced.clone();
        async move {
            client
                .put(
                    store,
                    &raced,
                    write(&i.to_string(), Condition::Absent, None),
                )
                .await
                .unwrap()
        }
    });
    let won = futures::future::join_all(racers)
        .await
        .into_iter()
        .filter(|w| *w)
        .count();
    assert_eq!(won, 1, "exactly one racer wins");
}
