//! Storage changes: the blob trigger (the blob's path and properties in the
//! metadata; the content is not read) and Event Grid's Blob Storage events
//! (`Microsoft.Storage.BlobCreated` / `BlobDeleted`).

use chrono::{DateTime, Utc};
use cloudfn_core::{Error, StorageEvent, StorageEventKind};
use serde::Deserialize;

use super::{InvocationRequest, binding};

/// A blob trigger's change in `container` (the trigger's bucket): the
/// `name` metadata (from the binding's `container/{name}` path) names the
/// blob, `Properties` give its size, ETag and time. The blob trigger fires
/// on writes only. (cloudfn renders Event Grid triggers for storage
/// functions, which do not read the blob; this reads blob triggers
/// written by hand.)
pub fn decode_blob(request: &InvocationRequest, container: &str) -> Result<StorageEvent, Error> {
    let name = request.text("name").ok_or_else(|| {
        Error::bad_input("the blob invocation has no `name` metadata: bind the blob trigger's path as `<container>/{name}`")
            .with_field("Metadata.name")
    })?;
    let properties = request
        .metadata("Properties")
        .as_ref()
        .and_then(super::object)
        .unwrap_or_default();
    let property = |name: &str| properties.get(name).and_then(super::text);
    Ok(StorageEvent {
        bucket: container.to_owned(),
        key: name,
        kind: StorageEventKind::Created,
        size: property("ContentLength")
            .or_else(|| property("Length"))
            .and_then(|n| n.parse().ok()),
        etag: property("ETag"),
        time: property("LastModified")
            .and_then(|t| super::time(&t))
            .unwrap_or_else(Utc::now),
    })
}

/// An Event Grid event as the `eventGridTrigger` binding holds it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GridEvent {
    event_type: String,
    subject: String,
    event_time: DateTime<Utc>,
    #[serde(default)]
    data: GridBlob,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GridBlob {
    #[serde(default)]
    content_length: Option<u64>,
    #[serde(default)]
    e_tag: Option<String>,
}

/// An Event Grid Blob Storage event; `None` for event types other than a
/// blob created or deleted.
pub fn decode_event_grid(request: &InvocationRequest) -> Result<Option<StorageEvent>, Error> {
    let field = || format!("Data.{}", binding::EVENT);
    let event: GridEvent = request.binding(binding::EVENT, "an Event Grid event")?;
    let kind = match event.event_type.as_str() {
        "Microsoft.Storage.BlobCreated" => StorageEventKind::Created,
        "Microsoft.Storage.BlobDeleted" => StorageEventKind::Deleted,
        other => {
            tracing::debug!(
                event_type = other,
                "Event Grid event of another kind skipped"
            );
            return Ok(None);
        }
    };
    // `/blobServices/default/containers/<container>/blobs/<name>`
    let rest = event
        .subject
        .strip_prefix("/blobServices/default/containers/")
        .and_then(|rest| rest.split_once("/blobs/"))
        .ok_or_else(|| {
            Error::bad_input(format!(
                "the subject {:?} names no blob (`/blobServices/default/containers/<c>/blobs/<name>`)",
                event.subject
            ))
            .with_field(format!("{}.subject", field()))
        })?;
    Ok(Some(StorageEvent {
        bucket: rest.0.to_owned(),
        key: rest.1.to_owned(),
        kind,
        size: event.data.content_length,
        etag: event.data.e_tag,
        time: event.event_time,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_blob_trigger_names_container_and_blob() {
        let request = InvocationRequest::of(json!({
            "Data": {"blob": "aGVsbG8="},
            "Metadata": {
                "name": "\"photos/a b.jpg\"",
                "Uri": "\"https://acct.blob.core.windows.net/uploads/photos/a%20b.jpg\"",
                "Properties": {"ContentLength": 5, "ETag": "\"0x8DC\"", "LastModified": "2026-11-27T10:00:00+00:00"},
                "Metadata": {}
            }
        }));
        let event = decode_blob(&request, "uploads").unwrap();
        assert_eq!(
            (event.bucket.as_str(), event.key.as_str()),
            ("uploads", "photos/a b.jpg")
        );
        assert_eq!(event.kind, StorageEventKind::Created);
        assert_eq!(event.size, Some(5));
        assert_eq!(event.time.to_rfc3339(), "2026-11-27T10:00:00+00:00");
        let nameless = InvocationRequest::of(json!({"Data": {}, "Metadata": {}}));
        assert_eq!(
            decode_blob(&nameless, "uploads").unwrap_err().field(),
            Some("Metadata.name")
        );
    }

    #[test]
    fn event_grid_blob_events_read_as_changes() {
        let request = InvocationRequest::of(json!({
            "Data": {"event": {
                "topic": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/acct",
                "subject": "/blobServices/default/containers/uploads/blobs/a.txt",
                "eventType": "Microsoft.Storage.BlobDeleted",
                "id": "831e1650-001e-001b-66ab-eeb76e069631",
                "data": {"api": "DeleteBlob", "contentType": "text/plain", "blobType": "BlockBlob",
                         "url": "https://acct.blob.core.windows.net/uploads/a.txt"},
                "dataVersion": "", "metadataVersion": "1",
                "eventTime": "2026-11-27T10:00:00.0000000Z"
            }},
            "Metadata": {}
        }));
        let event = decode_event_grid(&request).unwrap().unwrap();
        assert_eq!(
            (event.bucket.as_str(), event.key.as_str()),
            ("uploads", "a.txt")
        );
        assert_eq!(event.kind, StorageEventKind::Deleted);
    }
}
