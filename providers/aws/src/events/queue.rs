//! SQS events: a batch of records into `Message`s, and failures back as
//! `batchItemFailures` so only the failed messages return to the queue.

use std::collections::{BTreeMap, HashMap};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage, SqsMessageAttribute};
use chrono::{DateTime, Utc};
use cloudfn_core::{Error, Message};
use serde::de::IgnoredAny;
use serde_json::{Value, value::RawValue};

/// The shape a queue function accepts, for error messages.
pub const EXPECTED: &str = "an SQS event ({\"Records\":[{\"eventSource\":\"aws:sqs\",…}]})";

/// One SQS record: the id SQS reports failures by, and the neutral message.
#[derive(Debug)]
pub struct SqsRecord {
    /// SQS's message id, the `itemIdentifier` of a batch item failure.
    pub sqs_message_id: String,
    /// The receipt handle, to change the message's visibility.
    pub receipt_handle: String,
    /// The queue's name, from the record's ARN.
    pub queue: String,
    /// The message as handlers see it.
    pub message: Message,
    /// Why the record could not be read, when it could not: the message then
    /// holds what could be read of it (its body, or else the whole record's
    /// text), to be dead-lettered without running.
    pub malformed: Option<Error>,
}

/// Whether `event` (JSON) is an SQS event.
pub fn is_sqs(event: &[u8]) -> bool {
    super::shape::Shape::of(event).is_ok_and(|shape| shape.is_sqs())
}

/// The queue's name from its ARN (`arn:aws:sqs:region:account:name`).
pub fn queue_name(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

/// Reads an SQS event (JSON) into records. `ApproximateReceiveCount` becomes
/// the attempt, `MessageGroupId` the ordering key, `SentTimestamp` the
/// publish time, and String/Number message attributes the attributes.
///
/// Each record is read on its own: one that does not read is returned
/// with [`SqsRecord::malformed`] set, and fails alone. Only an event that
/// is no SQS batch at all, or a record without a `messageId` (which no
/// batch failure could name), fails the whole event.
pub fn decode(event: &[u8]) -> Result<Vec<SqsRecord>, Error> {
    #[derive(serde::Deserialize)]
    struct Batch<'a> {
        #[serde(rename = "Records", borrow)]
        records: Vec<&'a RawValue>,
    }
    let batch: Batch<'_> = serde_json::from_slice(event)
        .map_err(|e| Error::bad_input(format!("malformed SQS event: {e}")))?;
    batch
        .records
        .into_iter()
        .map(|raw| match serde_json::from_str::<SqsMessage>(raw.get()) {
            Ok(record) => readable(record),
            Err(e) => unreadable(raw.get(), e),
        })
        .collect()
}

fn readable(record: SqsMessage) -> Result<SqsRecord, Error> {
    let id = record
        .message_id
        .ok_or_else(|| Error::bad_input("malformed SQS event: a record has no messageId"))?;
    let system = &record.attributes;
    let attempt = system
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1);
    let published_at = system
        .get("SentTimestamp")
        .and_then(|ms| ms.parse::<i64>().ok())
        .and_then(DateTime::<Utc>::from_timestamp_millis);
    let attributes: BTreeMap<String, String> = record
        .message_attributes
        .into_iter()
        .filter_map(|(name, attr)| attr.string_value.map(|v| (name, v)))
        .collect();
    let source = queue_name(record.event_source_arn.as_deref().unwrap_or_default()).to_owned();
    Ok(SqsRecord {
        receipt_handle: record.receipt_handle.unwrap_or_default(),
        queue: source.clone(),
        message: Message {
            id: id.clone(),
            body: record.body.unwrap_or_default().into(),
            attributes,
            attempt,
            published_at,
            ordering_key: system.get("MessageGroupId").cloned(),
            source,
        },
        sqs_message_id: id,
        malformed: None,
    })
}

/// What can be read of a record of the wrong shape (`text`), so that it
/// fails alone and reaches the dead-letter queue whole.
fn unreadable(text: &str, error: serde_json::Error) -> Result<SqsRecord, Error> {
    let record: Value = serde_json::from_str(text).unwrap_or_default();
    let field = |name: &str| record.get(name).and_then(Value::as_str);
    let system = |name: &str| record.get("attributes").and_then(|a| a.get(name)?.as_str());
    let id = field("messageId").ok_or_else(|| {
        Error::bad_input(format!(
            "malformed SQS event: a record without a messageId: {error}"
        ))
    })?;
    let attributes = record
        .get("messageAttributes")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(name, attribute)| {
            let value = attribute.get("stringValue")?.as_str()?;
            Some((name.clone(), value.to_owned()))
        })
        .collect();
    let source = queue_name(field("eventSourceARN").unwrap_or_default()).to_owned();
    Ok(SqsRecord {
        sqs_message_id: id.to_owned(),
        receipt_handle: field("receiptHandle").unwrap_or_default().to_owned(),
        queue: source.clone(),
        message: Message {
            id: id.to_owned(),
            body: field("body").unwrap_or(text).to_owned().into(),
            attributes,
            attempt: system("ApproximateReceiveCount")
                .and_then(|c| c.parse().ok())
                .unwrap_or(1),
            published_at: None,
            ordering_key: system("MessageGroupId").map(str::to_owned),
            source,
        },
        malformed: Some(Error::bad_input(format!(
            "malformed SQS record `{id}`: {error}"
        ))),
    })
}

/// The response that tells Lambda which records failed (`ReportBatchItemFailures`).
pub fn batch_response(failed: impl IntoIterator<Item = String>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.set_failures(failed);
    response
}

/// The ids a batch response (JSON) reports as failed. As Lambda reads it,
/// an empty answer, `null` or `{}` fails nothing, and anything unreadable
/// fails the whole batch.
pub fn failed_ids(response: &[u8], all: &[String]) -> Vec<String> {
    if response.trim_ascii().is_empty() {
        return Vec::new();
    }
    match serde_json::from_slice::<Option<SqsBatchResponse>>(response) {
        Ok(Some(answer)) => answer
            .batch_item_failures
            .into_iter()
            .map(|failure| failure.item_identifier)
            .collect(),
        Ok(None) => Vec::new(),
        // `{}`, which `SqsBatchResponse` refuses for want of `batchItemFailures`.
        Err(_)
            if serde_json::from_slice::<HashMap<String, IgnoredAny>>(response)
                .is_ok_and(|answer| answer.is_empty()) =>
        {
            Vec::new()
        }
        Err(_) => all.to_vec(),
    }
}

/// One SQS record as the Lambda event source mapping delivers it: what the
/// local emulation builds from a received message.
pub struct RecordParts<'a> {
    /// SQS's message id.
    pub message_id: &'a str,
    /// The receipt handle.
    pub receipt_handle: &'a str,
    /// The body.
    pub body: &'a str,
    /// System attributes (`ApproximateReceiveCount`, `SentTimestamp`, `MessageGroupId`…).
    pub attributes: &'a HashMap<String, String>,
    /// Message attributes: name → (data type, string value).
    pub message_attributes: &'a BTreeMap<String, (String, String)>,
    /// The queue's ARN.
    pub queue_arn: &'a str,
    /// The region.
    pub region: &'a str,
}

/// The SQS event holding `records`, as the event source mapping sends it.
pub fn event(records: &[RecordParts<'_>]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = records.iter().map(record).collect();
    event
}

fn record(parts: &RecordParts<'_>) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = Some(parts.message_id.to_owned());
    record.receipt_handle = Some(parts.receipt_handle.to_owned());
    record.body = Some(parts.body.to_owned());
    record.md5_of_body = Some(String::new());
    record.attributes = parts.attributes.clone();
    record.message_attributes = parts
        .message_attributes
        .iter()
        .map(|(name, (data_type, value))| {
            let mut attribute = SqsMessageAttribute::default();
            attribute.string_value = Some(value.clone());
            attribute.data_type = Some(data_type.clone());
            (name.clone(), attribute)
        })
        .collect();
    record.event_source = Some("aws:sqs".to_owned());
    record.event_source_arn = Some(parts.queue_arn.to_owned());
    record.aws_region = Some(parts.region.to_owned());
    record
}
