//! [`Firestore`] on Google's Firestore emulator: every promise of a cloudfn
//! store, keys Firestore could not take as document ids, and values at the
//! largest size every store keeps.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use cloudfn_core::store::{Condition, MAX_VALUE_BYTES, StoreClient, Version, Write, conformance};
use cloudfn_gcp::client::Firestore;

use crate::support::{PROJECT, firestore_emulator, unique};

fn fresh() -> Option<(Firestore, String)> {
    let host = firestore_emulator()?;
    let store = Firestore::connect(PROJECT, Some(&host)).unwrap().as_given();
    Some((store, unique("store-")))
}

#[tokio::test]
async fn the_firestore_store_keeps_every_promise() {
    let Some((firestore, store)) = fresh() else {
        return;
    };
    conformance::check(Arc::new(firestore), &store, "").await;
}

#[tokio::test]
async fn keys_with_slashes_dots_and_reserved_names_are_kept_apart() {
    let Some((firestore, store)) = fresh() else {
        return;
    };
    let keys = ["a/b", "a%2Fb", ".", "..", "__name__", "ünïcödé", "a"];
    for (i, key) in keys.iter().enumerate() {
        let write = Write {
            value: Bytes::from(i.to_string()),
            version: Version::next(),
            condition: Condition::Absent,
            ttl: None,
        };
        assert!(firestore.put(&store, key, write).await.unwrap(), "{key}");
    }
    for (i, key) in keys.iter().enumerate() {
        let record = firestore.get(&store, key).await.unwrap().unwrap();
        assert_eq!(record.value, Bytes::from(i.to_string()), "{key}");
    }
}

#[tokio::test]
async fn the_largest_value_every_store_keeps_round_trips() {
    let Some((firestore, store)) = fresh() else {
        return;
    };
    let value: Vec<u8> = (0..MAX_VALUE_BYTES).map(|i| (i * 7 % 251) as u8).collect();
    let write = Write {
        value: Bytes::from(value.clone()),
        version: Version::next(),
        condition: Condition::Always,
        ttl: Some(Duration::from_secs(3600)),
    };
    assert!(firestore.put(&store, "big", write.clone()).await.unwrap());
    let read = firestore.get(&store, "big").await.unwrap().unwrap();
    assert!(read.value == value, "byte for byte");
    assert_eq!(read.version, write.version);
}
