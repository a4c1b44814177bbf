//! The invocation payloads the Functions host POSTs, built as the host
//! builds them (see `PROTOCOL.md`): trigger metadata serialised once more
//! than its type (`"DequeueCount": "1"`, `"Id": "\"…\""`), times with an
//! offset (`DateTimeOffset`) or without (`DateTime`), binary triggers as
//! base64, `sys` with the method name, time and a random id.

use std::collections::BTreeMap;

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

/// A string metadata value as the host sends it: its JSON literal, as a string.
fn twice(text: &str) -> Value {
    Value::String(Value::String(text.to_owned()).to_string())
}

/// A `DateTimeOffset`, to the second.
fn offset_time(time: DateTime<Utc>) -> Value {
    json!(time.format("%Y-%m-%dT%H:%M:%S+00:00").to_string())
}

/// A `DateTime` in UTC, to the second, with no zone.
fn utc_time(time: DateTime<Utc>) -> Value {
    json!(time.format("%Y-%m-%dT%H:%M:%S").to_string())
}

fn sys(function: &str) -> Value {
    json!({
        "MethodName": format!("Functions.{function}"),
        "UtcNow": Utc::now().to_rfc3339_opts(SecondsFormat::AutoSi, true),
        "RandGuid": uuid::Uuid::new_v4().to_string(),
    })
}

/// One delivery of a Storage queue message.
pub struct QueueDelivery<'a> {
    /// The message's text (base64-decoded, as `messageEncoding` has it).
    pub text: &'a str,
    /// The queue's id of the message.
    pub id: &'a str,
    /// Its receipt.
    pub pop_receipt: &'a str,
    /// Deliveries so far, this one included.
    pub dequeue_count: u32,
    /// When it was put on the queue.
    pub inserted: DateTime<Utc>,
    /// When it is handed out again unless deleted.
    pub next_visible: DateTime<Utc>,
}

/// A `queueTrigger` invocation of `function` (binary binding `message`).
pub fn queue(function: &str, delivery: &QueueDelivery<'_>) -> Value {
    json!({
        "Data": { "message": STANDARD.encode(delivery.text) },
        "Metadata": {
            "DequeueCount": delivery.dequeue_count.to_string(),
            "Id": twice(delivery.id),
            "PopReceipt": twice(delivery.pop_receipt),
            "InsertionTime": offset_time(delivery.inserted),
            "ExpirationTime": "9999-12-31T23:59:59+00:00",
            "NextVisibleTime": offset_time(delivery.next_visible),
            "sys": sys(function),
        }
    })
}

/// One delivery of a Service Bus message.
pub struct BusDelivery<'a> {
    /// The body.
    pub body: &'a [u8],
    /// `MessageId`.
    pub message_id: &'a str,
    /// `SessionId`, if any.
    pub session_id: Option<&'a str>,
    /// Deliveries so far, this one included.
    pub delivery_count: u32,
    /// When it was enqueued.
    pub enqueued: DateTime<Utc>,
    /// The application properties.
    pub properties: &'a BTreeMap<String, String>,
}

/// A `serviceBusTrigger` invocation of `function` (binary binding `message`).
pub fn service_bus(function: &str, delivery: &BusDelivery<'_>) -> Value {
    let mut metadata = json!({
        "DeliveryCount": delivery.delivery_count.to_string(),
        "MessageId": twice(delivery.message_id),
        "EnqueuedTimeUtc": utc_time(delivery.enqueued),
        "EnqueuedTime": offset_time(delivery.enqueued),
        "ContentType": twice("application/octet-stream"),
        "ApplicationProperties": delivery.properties,
        "UserProperties": delivery.properties,
        "sys": sys(function),
    });
    if let Some(session) = delivery.session_id {
        metadata["SessionId"] = twice(session);
    }
    json!({ "Data": { "message": STANDARD.encode(delivery.body) }, "Metadata": metadata })
}

/// A `timerTrigger` invocation of `function` for the occurrence at
/// `scheduled`, the next one at `next`.
pub fn timer(function: &str, scheduled: DateTime<Utc>, next: Option<DateTime<Utc>>) -> Value {
    json!({
        "Data": { "timer": {
            "Schedule": { "AdjustForDST": true },
            "ScheduleStatus": {
                "Last": utc_time(scheduled),
                "Next": next.map(utc_time),
                "LastUpdated": utc_time(Utc::now()),
            },
            "IsPastDue": false,
        }},
        "Metadata": { "sys": sys(function) }
    })
}

/// An HTTP request as the `req` binding holds it.
pub struct HttpCall<'a> {
    /// The URL the client called.
    pub url: &'a str,
    /// The method.
    pub method: &'a str,
    /// The headers, each with its values.
    pub headers: &'a BTreeMap<String, Vec<String>>,
    /// The query, repeated keys' values joined by `,`.
    pub query: &'a BTreeMap<String, String>,
    /// The route's values.
    pub params: &'a BTreeMap<String, String>,
    /// The body (none when empty, as the host leaves it out).
    pub body: &'a [u8],
}

/// An `httpTrigger` invocation of `function`. The body is text, but for
/// `application/octet-stream` and `multipart/*`, which the host reads as
/// bytes (base64).
pub fn http(function: &str, call: &HttpCall<'_>) -> Value {
    let content_type = call
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .and_then(|(_, values)| values.first())
        .map(|t| t.to_ascii_lowercase())
        .unwrap_or_default();
    let body = if call.body.is_empty() {
        Value::Null
    } else if content_type.starts_with("application/octet-stream")
        || content_type.starts_with("multipart/")
    {
        json!(STANDARD.encode(call.body))
    } else {
        json!(String::from_utf8_lossy(call.body))
    };
    let mut req = json!({
        "Url": call.url,
        "Method": call.method,
        "Query": call.query,
        "Headers": call.headers,
        "Params": call.params,
        "Identities": [],
    });
    if !body.is_null() {
        req["Body"] = body;
    }
    let mut metadata = Map::new();
    metadata.insert("Query".into(), json!(call.query));
    let joined: BTreeMap<&String, String> =
        call.headers.iter().map(|(k, v)| (k, v.join(","))).collect();
    metadata.insert("Headers".into(), json!(joined));
    for (name, value) in call.query.iter().chain(call.params) {
        metadata.insert(name.clone(), twice(value));
    }
    metadata.insert("sys".into(), sys(function));
    json!({ "Data": { "req": req }, "Metadata": metadata })
}
