//! [`TableStore`] against Azurite: every promise of a cloudfn store, large
//! values, and keys Table Storage could not take as they are.

use std::sync::Arc;

use cloudfn_azure::client::TableStore;
use cloudfn_core::{
    ErrorKind,
    store::{Condition, StoreClient, Version, Write, conformance},
};

use crate::support::{azurite, unique};

/// A fresh store (and its table) on Azurite.
async fn fresh() -> Option<(TableStore, String)> {
    let tables = TableStore::new(&azurite()?);
    let store = unique("store");
    tables.create_table(&store).await.unwrap();
    tables
        .create_table(&store)
        .await
        .expect("creating is idempotent");
    Some((tables, store))
}

fn write(value: impl Into<bytes::Bytes>) -> Write {
    Write {
        value: value.into(),
        version: Version::next(),
        condition: Condition::Always,
        ttl: None,
    }
}

#[tokio::test]
async fn the_table_store_keeps_every_promise() {
    let Some((tables, store)) = fresh().await else {
        return;
    };
    conformance::check(Arc::new(tables.clone()), &store, "").await;
    tables.delete_table(&store).await.unwrap();
}

#[tokio::test]
async fn a_200_kib_value_round_trips() {
    let Some((tables, store)) = fresh().await else {
        return;
    };
    let value: Vec<u8> = (0..200 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let written = write(value.clone());
    assert!(tables.put(&store, "big", written.clone()).await.unwrap());
    let read = tables.get(&store, "big").await.unwrap().unwrap();
    assert_eq!(read.value.len(), value.len());
    assert!(read.value == value, "byte for byte");
    assert_eq!(read.version, written.version);
    // A smaller value replaces it whole.
    assert!(tables.put(&store, "big", write("small")).await.unwrap());
    assert_eq!(
        &tables.get(&store, "big").await.unwrap().unwrap().value[..],
        b"small"
    );
    tables.delete_table(&store).await.unwrap();
}

#[tokio::test]
async fn keys_table_storage_forbids_are_kept_apart() {
    let Some((tables, store)) = fresh().await else {
        return;
    };
    let keys = [
        "orders/42".to_owned(),
        "a#b".to_owned(),
        "a?b".to_owned(),
        "100%".to_owned(),
        "a\\b".to_owned(),
        "it's".to_owned(),
        "ü/€/𝄞 #?%".to_owned(),
        "／".to_owned(),
        "％／".to_owned(),
        "/".repeat(512),
        "€".repeat(170),
    ];
    for (i, key) in keys.iter().enumerate() {
        assert!(tables.put(&store, key, write(i.to_string())).await.unwrap());
    }
    for (i, key) in keys.iter().enumerate() {
        let read = tables.get(&store, key).await.unwrap();
        assert_eq!(read.map(|r| r.value), Some(i.to_string().into()), "{key}");
    }
    for key in &keys {
        assert!(
            tables.delete(&store, key, Condition::Always).await.unwrap(),
            "{key}"
        );
        assert_eq!(tables.get(&store, key).await.unwrap(), None, "{key}");
    }
    let error = tables.get(&store, "a\u{7}b").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Invalid);
    tables.delete_table(&store).await.unwrap();
}

#[tokio::test]
async fn a_missing_table_is_named_with_what_to_do() {
    let Some(account) = azurite() else { return };
    let tables = TableStore::new(&account);
    let store = unique("never");
    let error = tables.get(&store, "k").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert!(
        error.message().contains(&format!("table `{store}`")),
        "{error}"
    );
    assert!(error.message().contains("must be created"), "{error}");
    let error = tables.put(&store, "k", write("v")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
}

/// Table Storage has no TTL: an expired key that is read is deleted, so
/// the table does not keep it (a listing of the table, signed as any
/// Storage request, finds nothing).
#[tokio::test]
async fn an_expired_key_that_is_read_leaves_the_table() {
    let Some((tables, store)) = fresh().await else {
        return;
    };
    let mut short = write("brief");
    short.ttl = Some(std::time::Duration::from_millis(300));
    assert!(tables.put(&store, "brief", short).await.unwrap());
    assert!(tables.put(&store, "kept", write("kept")).await.unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert!(tables.get(&store, "brief").await.unwrap().is_none());

    let account = azurite().unwrap();
    let pipeline = cloudfn_azure::client::pipeline(&account, cloudfn_azure::client::Service::Table);
    let url = azure_core::http::Url::parse(&format!(
        "{}/{store}()",
        account.table_endpoint().as_str().trim_end_matches('/')
    ))
    .unwrap();
    let mut request = azure_core::http::Request::new(url, azure_core::http::Method::Get);
    request.insert_header(
        azure_core::http::headers::HeaderName::from_static("accept"),
        "application/json;odata=nometadata",
    );
    let options = azure_core::http::PipelineSendOptions {
        skip_checks: true,
        ..Default::default()
    };
    let response = pipeline
        .send(
            &azure_core::http::Context::new(),
            &mut request,
            Some(options),
        )
        .await
        .unwrap();
    let listing: serde_json::Value = serde_json::from_slice(&response.into_body()).unwrap();
    let keys: Vec<&str> = listing["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["PartitionKey"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["kept"], "{listing}");
    tables.delete_table(&store).await.unwrap();
}
