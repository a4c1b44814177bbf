//! SQS events: a batch of records into `Message`s, and failures back as
//! `batchItemFailures` so only the failed messages return to the queue.

use std::collections::{BTreeMap, HashMap};

use aws_lambda_events::sqs::SqsEvent;
use chrono::{DateTime, Utc};
use cloudfn_core::{Error, Message};
use serde_json::{Value, json};

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
}

/// Whether `event` is an SQS event.
pub fn is_sqs(event: &Value) -> bool {
    records_from(event, "eventSource", "aws:sqs")
}

pub(crate) fn records_from(event: &Value, key: &str, source: &str) -> bool {
    event
        .get("Records")
        .and_then(Value::as_array)
        .and_then(|records| records.first())
        .and_then(|record| record.get(key))
        .and_then(Value::as_str)
        == Some(source)
}

/// The queue's name from its ARN (`arn:aws:sqs:region:account:name`).
pub fn queue_name(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

/// Reads an SQS event into records. `ApproximateReceiveCount` becomes the
/// attempt, `MessageGroupId` the ordering key, `SentTimestamp` the publish
/// time, and String/Number message attributes the attributes.
pub fn decode(event: Value) -> Result<Vec<SqsRecord>, Error> {
    let event: SqsEvent = serde_json::from_value(event)
        .map_err(|e| Error::bad_input(format!("malformed SQS event: {e}")))?;
    event
        .records
        .into_iter()
        .map(|record| {
            let id = record
                .message_id
                .ok_or_else(|| Error::bad_input("SQS record has no messageId"))?;
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
            let source = record
                .event_source_arn
                .as_deref()
                .map(queue_name)
                .unwrap_or_default()
                .to_owned();
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
            })
        })
        .collect()
}

/// The response that tells Lambda which records failed (`ReportBatchItemFailures`).
pub fn batch_response(failed: impl IntoIterator<Item = String>) -> Value {
    let failures: Vec<Value> = failed
        .into_iter()
        .map(|id| json!({ "itemIdentifier": id }))
        .collect();
    json!({ "batchItemFailures": failures })
}

/// The ids a batch response reports as failed; anything unreadable fails the
/// whole batch, as Lambda treats it.
pub fn failed_ids(response: &Value, all: &[String]) -> Vec<String> {
    match response.get("batchItemFailures").and_then(Value::as_array) {
        Some(failures) => failures
            .iter()
            .filter_map(|f| {
                f.get("itemIdentifier")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect(),
        None if response.is_null() || response.as_object().is_some_and(|o| o.is_empty()) => {
            Vec::new()
        }
        None => all.to_vec(),
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

/// An SQS event holding `records`.
pub fn event(records: &[RecordParts<'_>]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            let message_attributes: serde_json::Map<String, Value> = r
                .message_attributes
                .iter()
                .map(|(name, (data_type, value))| {
                    (
                        name.clone(),
                        json!({"stringValue": value, "stringListValues": [], "binaryListValues": [], "dataType": data_type}),
                    )
                })
                .collect();
            json!({
                "messageId": r.message_id,
                "receiptHandle": r.receipt_handle,
                "body": r.body,
                "attributes": r.attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": r.queue_arn,
                "awsRegion": r.region,
            })
        })
        .collect();
    json!({ "Records": records })
}
