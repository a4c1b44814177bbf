//! Topic deliveries: SNS notifications (direct, or wrapped in an SQS body when
//! a topic feeds a queue) and EventBridge events.

use std::collections::{BTreeMap, HashMap};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use cloudfn_core::{Error, Message};
use serde::Deserialize;
use serde_json::Value;

/// The shapes a topic function accepts, for error messages.
pub const EXPECTED: &str = "an SNS event ({\"Records\":[{\"EventSource\":\"aws:sns\",…}]}), \
     an SQS event whose bodies are SNS notifications, EventBridge events or raw messages, \
     or an EventBridge event ({\"detail-type\",\"source\",\"detail\"})";

/// An SNS notification, as SNS puts it in a Lambda event's `Sns` field or in
/// an SQS body (the two spell the URL fields differently; only what is read
/// here is declared).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Notification {
    #[serde(rename = "Type")]
    kind: String,
    message_id: String,
    topic_arn: String,
    message: String,
    timestamp: Option<DateTime<Utc>>,
    #[serde(default)]
    message_attributes: HashMap<String, NotificationAttribute>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NotificationAttribute {
    #[serde(rename = "Type")]
    _kind: String,
    value: String,
}

fn topic_name(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

impl Notification {
    fn into_message(self) -> Message {
        Message {
            id: self.message_id,
            body: self.message.into(),
            attributes: self
                .message_attributes
                .into_iter()
                .map(|(k, v)| (k, v.value))
                .collect(),
            attempt: 1,
            published_at: self.timestamp,
            ordering_key: None,
            source: topic_name(&self.topic_arn).to_owned(),
        }
    }
}

/// Whether `event` is a direct SNS → Lambda event.
pub fn is_sns(event: &Value) -> bool {
    super::queue::records_from(event, "EventSource", "aws:sns")
}

/// Reads a direct SNS event (one record in practice) into messages.
pub fn decode_sns(event: Value) -> Result<Vec<Message>, Error> {
    #[derive(Deserialize)]
    struct Record {
        #[serde(rename = "Sns")]
        sns: Notification,
    }
    #[derive(Deserialize)]
    struct Event {
        #[serde(rename = "Records")]
        records: Vec<Record>,
    }
    let event: Event = serde_json::from_value(event)
        .map_err(|e| Error::bad_input(format!("malformed SNS event: {e}")))?;
    Ok(event
        .records
        .into_iter()
        .map(|r| r.sns.into_message())
        .collect())
}

/// Whether `event` is an EventBridge event.
pub fn is_eventbridge(event: &Value) -> bool {
    // Every field of the envelope, so that a published payload that happens
    // to carry `detail` is not mistaken for one.
    [
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    ]
    .iter()
    .all(|field| event.get(field).is_some())
}

/// Reads an EventBridge event into a message: the body is `detail`, the
/// attributes carry `source` and `detail-type`.
pub fn decode_eventbridge(event: Value) -> Result<Message, Error> {
    let event: EventBridgeEvent = serde_json::from_value(event)
        .map_err(|e| Error::bad_input(format!("malformed EventBridge event: {e}")))?;
    let body =
        serde_json::to_vec(&event.detail).map_err(|e| Error::internal(format!("detail: {e}")))?;
    Ok(Message {
        id: event.id.unwrap_or_default(),
        body: body.into(),
        attributes: BTreeMap::from([
            ("source".to_owned(), event.source.clone()),
            ("detail-type".to_owned(), event.detail_type),
        ]),
        attempt: 1,
        published_at: event.time,
        ordering_key: None,
        source: event.source,
    })
}

/// A message that came through a queue subscribed to a topic: SNS (without
/// raw delivery) and EventBridge wrap the published message in their own
/// envelope; unwrap it so the handler sees what was published. The attempt
/// stays the queue's.
pub fn unwrap_queued(message: Message) -> Message {
    let Ok(value) = serde_json::from_slice::<Value>(&message.body) else {
        return message;
    };
    // An SNS envelope has every one of these; a payload merely shaped like
    // one is left alone.
    let is_sns = value.get("Type").and_then(Value::as_str) == Some("Notification")
        && [
            "MessageId",
            "TopicArn",
            "Message",
            "Timestamp",
            "SignatureVersion",
        ]
        .iter()
        .all(|field| value.get(field).is_some());
    let unwrapped = if is_sns {
        serde_json::from_value::<Notification>(value)
            .ok()
            .filter(|n| n.kind == "Notification")
            .map(Notification::into_message)
    } else if is_eventbridge(&value) {
        decode_eventbridge(value).ok()
    } else {
        None
    };
    match unwrapped {
        Some(inner) => Message {
            attempt: message.attempt,
            ..inner
        },
        None => message,
    }
}
