//! Storage: S3 event notifications into `StorageEvent`s.

use aws_lambda_events::s3::S3Event;
use cloudfn_core::{Error, StorageEvent, StorageEventKind};

/// The shape a storage function accepts, for error messages.
pub const EXPECTED: &str = "an S3 event ({\"Records\":[{\"eventSource\":\"aws:s3\",…}]})";

/// Whether `event` (JSON) is an S3 notification.
pub fn is_s3(event: &[u8]) -> bool {
    super::shape::Shape::of(event).is_ok_and(|shape| shape.is_s3())
}

/// Reads an S3 notification (JSON); records of other kinds than object
/// created / removed (replication, restore…) are skipped.
pub fn decode(event: &[u8]) -> Result<Vec<StorageEvent>, Error> {
    let event: S3Event = serde_json::from_slice(event)
        .map_err(|e| Error::bad_input(format!("malformed S3 event: {e}")))?;
    Ok(event
        .records
        .into_iter()
        .filter_map(|record| {
            let name = record.event_name.as_deref().unwrap_or_default();
            let kind = if name.starts_with("ObjectCreated") {
                StorageEventKind::Created
            } else if name.starts_with("ObjectRemoved") {
                StorageEventKind::Deleted
            } else {
                tracing::debug!(event = name, "S3 event of another kind skipped");
                return None;
            };
            let object = record.s3.object;
            // Keys arrive URL-encoded, spaces as `+`.
            let key = object.url_decoded_key.unwrap_or_else(|| {
                let raw = object.key.unwrap_or_default().replace('+', " ");
                percent_encoding::percent_decode_str(&raw)
                    .decode_utf8_lossy()
                    .into_owned()
            });
            Some(StorageEvent {
                bucket: record.s3.bucket.name.unwrap_or_default(),
                key,
                kind,
                size: object.size.and_then(|s| u64::try_from(s).ok()),
                etag: object.e_tag,
                time: record.event_time,
            })
        })
        .collect())
}
