//! Cloud Storage object events: Eventarc's CloudEvents
//! (`google.cloud.storage.object.v1.*`) and 1st gen's background events
//! (`google.storage.object.*`, and the beta API's `object.change`), whose
//! data is the object's metadata, `StorageObjectData`.
//!
//! cloudfn's storage trigger covers writes and deletes. `finalized` is a
//! write. `deleted` is "an object has been permanently deleted", which
//! includes the old generation of an object that was overwritten: a
//! handler may see a delete of a key followed by a write of the same key.
//! `archived` (a live version became noncurrent in a versioned bucket) is
//! not mapped to a delete, because Storage sends it both when the object
//! was deleted and when it was overwritten, and the event cannot tell
//! which; it and `metadataUpdated` are refused as bad input, since the
//! trigger cloudfn deploys never subscribes to them.

use chrono::{DateTime, Utc};
use cloudfn_core::{Error, StorageEvent, StorageEventKind};
use serde::Deserialize;

use super::{cloudevent::CloudEvent, legacy::BackgroundEvent, proto_int};

/// The CloudEvent type of an object written.
pub const OBJECT_FINALIZED: &str = "google.cloud.storage.object.v1.finalized";
/// The CloudEvent type of an object deleted.
pub const OBJECT_DELETED: &str = "google.cloud.storage.object.v1.deleted";

/// The CloudEvent types of object changes cloudfn does not deliver.
const UNCOVERED: [&str; 2] = [
    "google.cloud.storage.object.v1.archived",
    "google.cloud.storage.object.v1.metadataUpdated",
];

/// The background-event types of object changes cloudfn does not deliver.
const UNCOVERED_BACKGROUND: [&str; 2] = [
    "google.storage.object.archive",
    "google.storage.object.metadataUpdate",
];

/// The beta API's one event type for every change; the data says which.
const OBJECT_CHANGE: &str = "providers/cloud.storage/eventTypes/object.change";

/// The fields of `StorageObjectData` cloudfn reads. Its int64 fields are
/// strings in real payloads (`"size": "352"`) and numbers in some of
/// Google's fixtures: both are read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StorageObjectData {
    #[serde(default)]
    bucket: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "proto_int")]
    size: Option<u64>,
    #[serde(default)]
    etag: Option<String>,
    #[serde(default, deserialize_with = "proto_int")]
    generation: Option<u64>,
    #[serde(default)]
    updated: Option<DateTime<Utc>>,
    /// The beta API's `object.change`: `not_exists` once deleted.
    #[serde(default)]
    resource_state: Option<String>,
}

/// An Eventarc Cloud Storage CloudEvent, its data in `body`.
pub(crate) fn from_cloud_event(event: &CloudEvent, body: &[u8]) -> Result<StorageEvent, Error> {
    let kind = match event.kind.as_str() {
        OBJECT_FINALIZED => StorageEventKind::Created,
        OBJECT_DELETED => StorageEventKind::Deleted,
        other => {
            return Err(refused(
                other,
                UNCOVERED.contains(&other),
                event.attribute("type"),
            ));
        }
    };
    let data: StorageObjectData = event.data(body)?;
    storage_event(data, kind, event.time, event.mode.data_prefix())
}

/// A 1st-gen Cloud Storage background event, its data in `body`.
pub(crate) fn from_background(event: &BackgroundEvent, body: &[u8]) -> Result<StorageEvent, Error> {
    let kind = match event.event_type.as_str() {
        "google.storage.object.finalize" => Some(StorageEventKind::Created),
        "google.storage.object.delete" => Some(StorageEventKind::Deleted),
        OBJECT_CHANGE => None,
        other => {
            return Err(refused(
                other,
                UNCOVERED_BACKGROUND.contains(&other),
                event.field("eventType"),
            ));
        }
    };
    let data: StorageObjectData = event.data(body)?;
    // The functions frameworks map `object.change` to `finalized` whatever
    // it says; its data says when the object is gone.
    let kind = kind.unwrap_or(match data.resource_state.as_deref() {
        Some("not_exists") => StorageEventKind::Deleted,
        _ => StorageEventKind::Created,
    });
    storage_event(data, kind, event.timestamp, "data.")
}

/// The error for an event of type `kind` sent to a storage function.
fn refused(kind: &str, uncovered: bool, field: String) -> Error {
    let message = if uncovered {
        format!(
            "a `{kind}` event was sent to a storage function; cloudfn's storage trigger covers \
             writes (`{OBJECT_FINALIZED}`) and deletes (`{OBJECT_DELETED}`) only"
        )
    } else {
        format!(
            "an event of type `{kind}` was sent to a storage function, which takes \
             `{OBJECT_FINALIZED}` and `{OBJECT_DELETED}`"
        )
    };
    Error::bad_input(message).with_field(field)
}

/// The neutral event; `at` is the data's path in the body, for errors.
fn storage_event(
    data: StorageObjectData,
    kind: StorageEventKind,
    time: Option<DateTime<Utc>>,
    at: &str,
) -> Result<StorageEvent, Error> {
    let need = |value: Option<String>, name: &str| {
        value.filter(|v| !v.is_empty()).ok_or_else(|| {
            Error::bad_input(format!("the Cloud Storage event has no `{at}{name}`"))
                .with_field(format!("{at}{name}"))
        })
    };
    Ok(StorageEvent {
        bucket: need(data.bucket, "bucket")?,
        key: need(data.name, "name")?,
        kind,
        size: data.size,
        // The etag changes with metadata too; the generation is the
        // object's version, and stands in when there is no etag.
        etag: data
            .etag
            .filter(|e| !e.is_empty())
            .or_else(|| data.generation.map(|g| g.to_string())),
        time: time.or(data.updated).unwrap_or_else(Utc::now),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Delivery, Expect, decode};
    use cloudfn_core::ErrorKind;
    use http::{HeaderMap, HeaderValue};

    fn storage(headers: &HeaderMap, body: &[u8]) -> Result<StorageEvent, Error> {
        decode(headers, body, Expect::Storage).map(|delivery| match delivery {
            Delivery::Storage(event) => event,
            other => panic!("not a storage event: {other:?}"),
        })
    }

    /// Eventarc's headers for a Cloud Storage event of `kind`.
    fn eventarc(kind: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("ce-id", "19527340618822"),
            (
                "ce-source",
                "//storage.googleapis.com/projects/_/buckets/shop-uploads",
            ),
            ("ce-subject", "objects/invoices/2026/o-1.pdf"),
            ("ce-specversion", "1.0"),
            ("ce-type", kind),
            ("ce-time", "2026-03-14T09:40:12.734Z"),
            ("ce-bucket", "shop-uploads"),
            ("content-type", "application/json"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        headers
    }

    fn simple() -> &'static [u8] {
        include_str!("fixtures/storage-object-simple.json").as_bytes()
    }

    #[test]
    fn a_binary_finalized_event_is_a_write() {
        let event = storage(&eventarc(OBJECT_FINALIZED), simple()).unwrap();
        assert_eq!(
            event,
            StorageEvent {
                bucket: "shop-uploads".into(),
                key: "invoices/2026/o-1.pdf".into(),
                kind: StorageEventKind::Created,
                size: Some(169),
                etag: Some("CIfAwK2Mn5MDEAE=".into()),
                time: "2026-03-14T09:40:12.734Z".parse().unwrap(),
            }
        );
    }

    #[test]
    fn a_binary_deleted_event_is_a_delete() {
        let event = storage(&eventarc(OBJECT_DELETED), simple()).unwrap();
        assert_eq!(event.kind, StorageEventKind::Deleted);
        assert_eq!(event.key, "invoices/2026/o-1.pdf");
    }

    #[test]
    fn sizes_as_numbers_are_read_and_the_generation_stands_in_for_the_etag() {
        let complex = include_str!("fixtures/storage-object-complex.json");
        let event = storage(&eventarc(OBJECT_FINALIZED), complex.as_bytes()).unwrap();
        assert_eq!(event.size, Some(3275));
        assert_eq!(event.etag.as_deref(), Some("CKKF8IGdoZMDEAI="));
        let without_etag = complex.replace(r#""etag": "CKKF8IGdoZMDEAI=","#, "");
        let event = storage(&eventarc(OBJECT_FINALIZED), without_etag.as_bytes()).unwrap();
        assert_eq!(event.etag.as_deref(), Some("1773554403902114"));
        let mut headers = eventarc(OBJECT_FINALIZED);
        headers.remove("ce-time");
        let event = storage(&headers, complex.as_bytes()).unwrap();
        assert_eq!(
            event.time,
            "2026-03-15T06:12:47.360Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn a_structured_event_is_read() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/cloudevents+json"),
        );
        let body = include_str!("fixtures/storage-cloudevent.json");
        let event = storage(&headers, body.as_bytes()).unwrap();
        assert_eq!(
            (event.bucket.as_str(), event.key.as_str()),
            ("shop-uploads", "invoices/2026/o-1.pdf")
        );
        assert_eq!(event.kind, StorageEventKind::Created);
        assert_eq!(event.size, Some(169));
        assert_eq!(
            event.time,
            "2026-03-14T09:40:12.734Z".parse::<DateTime<Utc>>().unwrap()
        );
        let bad = body.replace(r#""size": "169""#, r#""size": "big""#);
        let err = storage(&headers, bad.as_bytes()).unwrap_err();
        assert_eq!(err.field(), Some("data.size"));
        let nameless = body.replace(r#""name": "invoices/2026/o-1.pdf","#, "");
        let err = storage(&headers, nameless.as_bytes()).unwrap_err();
        assert_eq!(err.field(), Some("data.name"));
    }

    #[test]
    fn background_events_are_read() {
        let event = storage(
            &HeaderMap::new(),
            include_str!("fixtures/storage-legacy-nested.json").as_bytes(),
        )
        .unwrap();
        assert_eq!(
            (event.bucket.as_str(), event.key.as_str()),
            ("shop-uploads", "invoices/2026/o-1.pdf")
        );
        assert_eq!(event.kind, StorageEventKind::Created);
        assert_eq!(
            event.time,
            "2026-03-14T09:40:12.734Z".parse::<DateTime<Utc>>().unwrap()
        );
        let deleted = include_str!("fixtures/storage-legacy-nested.json").replace(
            "google.storage.object.finalize",
            "google.storage.object.delete",
        );
        let event = storage(&HeaderMap::new(), deleted.as_bytes()).unwrap();
        assert_eq!(event.kind, StorageEventKind::Deleted);
    }

    #[test]
    fn the_beta_object_change_says_a_delete_in_its_data() {
        let body = include_str!("fixtures/storage-legacy-change.json");
        let event = storage(&HeaderMap::new(), body.as_bytes()).unwrap();
        assert_eq!(
            (event.bucket.as_str(), event.key.as_str()),
            ("shop-uploads", "invoices/2026/o-0.pdf")
        );
        assert_eq!(event.kind, StorageEventKind::Deleted);
        assert_eq!(event.size, Some(170));
        let exists = body.replace("not_exists", "exists");
        let event = storage(&HeaderMap::new(), exists.as_bytes()).unwrap();
        assert_eq!(event.kind, StorageEventKind::Created);
    }

    #[test]
    fn archived_and_metadata_updates_are_refused_as_outside_the_trigger() {
        for kind in UNCOVERED {
            let err = storage(&eventarc(kind), simple()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::BadInput);
            assert_eq!(err.field(), Some("ce-type"));
            assert!(err.message().contains("writes"), "{err}");
        }
        let archived = include_str!("fixtures/storage-legacy-nested.json").replace(
            "google.storage.object.finalize",
            "google.storage.object.archive",
        );
        let err = storage(&HeaderMap::new(), archived.as_bytes()).unwrap_err();
        assert_eq!(err.field(), Some("context.eventType"));
    }

    #[test]
    fn other_shapes_for_a_storage_function_are_named() {
        let pubsub = eventarc("google.cloud.pubsub.topic.v1.messagePublished");
        let err = storage(
            &pubsub,
            include_str!("fixtures/pubsub-push-text.json").as_bytes(),
        )
        .unwrap_err();
        assert_eq!(err.field(), Some("ce-type"));
        assert!(err.message().contains("messagePublished"), "{err}");
        let err = storage(
            &HeaderMap::new(),
            include_str!("fixtures/pubsub-push-emulator.json").as_bytes(),
        )
        .unwrap_err();
        assert!(err.message().contains("push envelope"), "{err}");
        let err = storage(
            &HeaderMap::new(),
            include_str!("fixtures/pubsub-legacy-flat.json").as_bytes(),
        )
        .unwrap_err();
        assert_eq!(err.field(), Some("eventType"));
        let err = storage(&eventarc(OBJECT_FINALIZED), b"{").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadInput);
    }
}
