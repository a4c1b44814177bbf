//! Pub/Sub messages, however they come: a push subscription's envelope,
//! the same object as the data of Eventarc's `messagePublished`
//! CloudEvent, or the bare `PubsubMessage` of a background event; and the
//! push envelope written back ([`push_envelope`]).
//!
//! The envelope is `{"message": {...}, "subscription": "projects/P/
//! subscriptions/S", "deliveryAttempt": N}`. Pub/Sub writes `messageId`
//! and `publishTime` twice, camelCase and snake_case, and the emulator
//! escapes every `/` as `\/`; `data` is absent from a message that has only
//! attributes, and `deliveryAttempt` from every delivery of a subscription
//! without a dead-letter policy, and from every push the emulator makes.

use std::collections::BTreeMap;

use base64::{Engine, engine::general_purpose::STANDARD};
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use cloudfn_core::{Error, Message};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Pushed, base64, cloudevent::CloudEvent, legacy::BackgroundEvent, proto_int};

/// The CloudEvent type of a published message.
pub const MESSAGE_PUBLISHED: &str = "google.cloud.pubsub.topic.v1.messagePublished";

/// The background-event types of a published message: 1st gen's, and the
/// older beta API's.
const PUBLISH: [&str; 2] = [
    "google.pubsub.topic.publish",
    "providers/cloud.pubsub/eventTypes/topic.publish",
];

/// A `PubsubMessage` in its JSON form, with the snake_case duplicates
/// Pub/Sub adds; `@type` and anything else is ignored.
#[derive(Debug, Default, Deserialize)]
struct PubsubMessage {
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    attributes: Option<BTreeMap<String, String>>,
    #[serde(default, rename = "messageId")]
    message_id: Option<String>,
    #[serde(default, rename = "message_id")]
    message_id_snake: Option<String>,
    #[serde(default, rename = "publishTime")]
    publish_time: Option<DateTime<Utc>>,
    #[serde(default, rename = "publish_time")]
    publish_time_snake: Option<DateTime<Utc>>,
    #[serde(default, rename = "orderingKey")]
    ordering_key: Option<String>,
}

/// The push envelope, which is also Eventarc's `MessagePublishedData`.
#[derive(Debug, Deserialize)]
struct Envelope {
    message: PubsubMessage,
    #[serde(default)]
    subscription: Option<String>,
    /// An int32 in the proto, so a number; read leniently all the same.
    #[serde(default, rename = "deliveryAttempt", deserialize_with = "proto_int")]
    delivery_attempt: Option<u64>,
}

/// What the shape around a message says of its delivery.
#[derive(Default)]
struct Around<'a> {
    /// The path to the message in the body (`message.`), for errors.
    at: &'a str,
    /// An id to use when the message has none.
    id: Option<&'a str>,
    /// A publish time to use when the message has none.
    time: Option<DateTime<Utc>>,
    subscription: Option<String>,
    attempt: Option<u64>,
}

/// A push subscription's request body.
pub(crate) fn from_push(body: &[u8], source: &str) -> Result<Pushed, Error> {
    let envelope: Envelope = Error::decode_json(body)?;
    pushed(
        envelope.message,
        source,
        Around {
            at: "message.",
            subscription: envelope.subscription,
            attempt: envelope.delivery_attempt,
            ..Around::default()
        },
    )
}

/// Eventarc's `messagePublished` CloudEvent, its data in `body`.
pub(crate) fn from_cloud_event(
    event: &CloudEvent,
    body: &[u8],
    source: &str,
) -> Result<Pushed, Error> {
    if event.kind != MESSAGE_PUBLISHED {
        return Err(Error::bad_input(format!(
            "a CloudEvent of type `{}` was sent to a queue or topic function, which takes \
             `{MESSAGE_PUBLISHED}`",
            event.kind
        ))
        .with_field(event.attribute("type")));
    }
    let data: Envelope = event.data(body)?;
    let at = format!("{}message.", event.mode.data_prefix());
    pushed(
        data.message,
        source,
        Around {
            at: &at,
            // Eventarc makes the event's id the message's, and its time the
            // publish time; they stand in when the message lacks its own.
            id: Some(&event.id),
            time: event.time,
            subscription: data.subscription,
            attempt: data.delivery_attempt,
        },
    )
}

/// A 1st-gen background event whose data is the `PubsubMessage`.
pub(crate) fn from_background(
    event: &BackgroundEvent,
    body: &[u8],
    source: &str,
) -> Result<Pushed, Error> {
    if !PUBLISH.contains(&event.event_type.as_str()) {
        return Err(Error::bad_input(format!(
            "a background event of type `{}` was sent to a queue or topic function, which \
             takes `{}`",
            event.event_type, PUBLISH[0]
        ))
        .with_field(event.field("eventType")));
    }
    let mut message: PubsubMessage = event.data(body)?;
    // The event's id and time are the message's (the frameworks copy them
    // into `messageId` and `publishTime` the same way); the message itself
    // usually carries neither.
    message.message_id = Some(event.event_id.clone());
    message.publish_time = event.timestamp.or(message.publish_time);
    pushed(
        message,
        source,
        Around {
            at: "data.",
            ..Around::default()
        },
    )
}

fn pushed(message: PubsubMessage, source: &str, around: Around<'_>) -> Result<Pushed, Error> {
    let at = around.at;
    let id = message
        .message_id
        .or(message.message_id_snake)
        .filter(|id| !id.is_empty())
        .or_else(|| around.id.map(str::to_owned))
        .ok_or_else(|| {
            Error::bad_input("the Pub/Sub message has no `messageId`")
                .with_field(format!("{at}messageId"))
        })?;
    let body = match message.data.as_deref() {
        None | Some("") => Bytes::new(),
        Some(text) => Bytes::from(base64(text).map_err(|e| {
            Error::bad_input(format!(
                "the data of Pub/Sub message {id} is not base64: {e}"
            ))
            .with_field(format!("{at}data"))
        })?),
    };
    // Pub/Sub counts from 1; 0 or nothing means it does not count.
    let attempt = around.attempt.filter(|n| *n > 0);
    Ok(Pushed {
        message: Message {
            id,
            body,
            attributes: message.attributes.unwrap_or_default(),
            attempt: attempt.map_or(1, |n| u32::try_from(n).unwrap_or(u32::MAX)),
            published_at: message
                .publish_time
                .or(message.publish_time_snake)
                .or(around.time),
            ordering_key: message.ordering_key.filter(|key| !key.is_empty()),
            source: source.to_owned(),
        },
        subscription: around.subscription.filter(|s| !s.is_empty()),
        attempt_known: attempt.is_some(),
    })
}

/// The body a push subscription sends for `message` through `subscription`
/// (`projects/P/subscriptions/S`): `messageId` and `publishTime` in
/// camelCase and again in snake_case, the body in base64 as `data` (left
/// out when empty, as for a message of attributes alone), `attributes`
/// when there are any, `orderingKey` only when set, and `deliveryAttempt`
/// only when given, as from a subscription with a dead-letter policy. A
/// message with no publish time is stamped now.
pub fn push_envelope(
    message: &Message,
    subscription: &str,
    delivery_attempt: Option<u32>,
) -> Value {
    let published = message
        .published_at
        .unwrap_or_else(Utc::now)
        .to_rfc3339_opts(SecondsFormat::AutoSi, true);
    let mut fields = Map::new();
    if !message.body.is_empty() {
        fields.insert("data".into(), STANDARD.encode(&message.body).into());
    }
    if !message.attributes.is_empty() {
        let attributes = message
            .attributes
            .iter()
            .map(|(name, value)| (name.clone(), Value::from(value.as_str())))
            .collect::<Map<_, _>>();
        fields.insert("attributes".into(), attributes.into());
    }
    fields.insert("messageId".into(), message.id.as_str().into());
    fields.insert("message_id".into(), message.id.as_str().into());
    fields.insert("publishTime".into(), published.as_str().into());
    fields.insert("publish_time".into(), published.into());
    if let Some(key) = message.ordering_key.as_deref().filter(|k| !k.is_empty()) {
        fields.insert("orderingKey".into(), key.into());
    }
    let mut envelope = Map::new();
    envelope.insert("message".into(), fields.into());
    envelope.insert("subscription".into(), subscription.into());
    if let Some(attempt) = delivery_attempt {
        envelope.insert("deliveryAttempt".into(), attempt.into());
    }
    envelope.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Delivery, Expect, decode};
    use cloudfn_core::ErrorKind;
    use http::{HeaderMap, HeaderValue};

    const QUEUE: Expect<'static> = Expect::Message { source: "orders" };

    fn message(headers: &HeaderMap, body: &[u8]) -> Result<Pushed, Error> {
        decode(headers, body, QUEUE).map(|delivery| match delivery {
            Delivery::Message(pushed) => pushed,
            other => panic!("not a message: {other:?}"),
        })
    }

    fn push(body: &str) -> Result<Pushed, Error> {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        message(&headers, body.as_bytes())
    }

    fn time(text: &str) -> Option<DateTime<Utc>> {
        Some(DateTime::parse_from_rfc3339(text).unwrap().to_utc())
    }

    /// Eventarc's headers for the data in `pubsub-push-text.json`.
    fn eventarc() -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("ce-id", "11482203927461"),
            (
                "ce-source",
                "//pubsub.googleapis.com/projects/shop-dev/topics/orders",
            ),
            ("ce-specversion", "1.0"),
            ("ce-type", MESSAGE_PUBLISHED),
            ("ce-time", "2026-03-14T09:26:53.589Z"),
            ("content-type", "application/json"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn a_push_envelope_reads_as_the_message() {
        let pushed = push(include_str!("fixtures/pubsub-push-text.json")).unwrap();
        let message = &pushed.message;
        assert_eq!(message.id, "11482203927461");
        assert_eq!(&message.body[..], br#"{"id":"o-1","qty":2}"#);
        assert_eq!(message.attribute("origin"), Some("web"));
        assert_eq!(message.published_at, time("2026-03-14T09:26:53.589Z"));
        assert_eq!(message.source, "orders");
        assert_eq!(message.ordering_key, None);
        assert_eq!((message.attempt, pushed.attempt_known), (1, false));
        assert_eq!(
            pushed.subscription.as_deref(),
            Some("projects/shop-dev/subscriptions/orders-charge")
        );
    }

    #[test]
    fn snake_case_duplicates_and_binary_data_are_read() {
        let pushed = push(include_str!("fixtures/pubsub-push-duplicated-fields.json")).unwrap();
        assert_eq!(pushed.message.id, "11482203927462");
        assert_eq!(
            pushed.message.published_at,
            time("2026-03-14T09:27:10.204Z")
        );
        assert_eq!(
            &pushed.message.body[..],
            [0x0a, 0x03, b'o', b'-', b'2', 0x10, 0x03]
        );
        assert!(pushed.message.attributes.is_empty());
        let pushed = push(include_str!("fixtures/pubsub-push-binary.json")).unwrap();
        assert_eq!(
            &pushed.message.body[..],
            [0x0a, 0x03, b'o', b'-', b'2', 0x10, 0x03]
        );
        // Only the snake_case spelling: still read.
        let pushed = push(
            r#"{"message":{"data":"AQ==","message_id":"7","publish_time":"2026-03-14T09:27:10.204Z"},"subscription":"projects/p/subscriptions/s"}"#,
        )
        .unwrap();
        assert_eq!(pushed.message.id, "7");
        assert!(pushed.message.published_at.is_some());
    }

    #[test]
    fn the_emulators_push_body_is_read() {
        // Byte for byte what the emulator sent, `\/` escapes included.
        let body = include_str!("fixtures/pubsub-push-emulator.json");
        assert!(body.contains(r"projects\/shop-dev"));
        let pushed = push(body).unwrap();
        assert_eq!(
            pushed.subscription.as_deref(),
            Some("projects/shop-dev/subscriptions/orders-charge")
        );
        assert_eq!(pushed.message.id, "4");
        assert_eq!(&pushed.message.body[..], br#"{"id":"o-3","qty":5}"#);
        assert_eq!(pushed.message.attribute("kind"), Some("order"));
        assert_eq!(pushed.message.attribute("region"), Some("eu"));
        assert_eq!(
            pushed.message.published_at,
            time("2026-03-14T09:31:42.017Z")
        );
        // It never sends deliveryAttempt, even with a dead-letter policy.
        assert_eq!((pushed.message.attempt, pushed.attempt_known), (1, false));
    }

    #[test]
    fn delivery_attempt_ordering_key_and_missing_parts() {
        let pushed = push(
            r#"{"message":{"messageId":"9","publishTime":"2026-03-14T09:27:10.204Z","orderingKey":"cust-7","attributes":{"a":"b"}},"subscription":"projects/p/subscriptions/s","deliveryAttempt":3}"#,
        )
        .unwrap();
        assert_eq!((pushed.message.attempt, pushed.attempt_known), (3, true));
        assert_eq!(pushed.message.ordering_key.as_deref(), Some("cust-7"));
        // No data: an empty body.
        assert!(pushed.message.body.is_empty());
        // No attributes, no subscription, a zero count: all tolerated.
        let pushed =
            push(r#"{"message":{"data":"","messageId":"9"},"deliveryAttempt":0}"#).unwrap();
        assert!(pushed.message.attributes.is_empty());
        assert_eq!(pushed.subscription, None);
        assert_eq!((pushed.message.attempt, pushed.attempt_known), (1, false));
        let pushed = push(r#"{"message":{"messageId":"9","attributes":null}}"#).unwrap();
        assert!(pushed.message.attributes.is_empty());
    }

    #[test]
    fn bad_push_bodies_name_the_field() {
        let err = push(r#"{"message":{"data":"not base64!","messageId":"1"}}"#).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadInput);
        assert_eq!(err.field(), Some("message.data"));
        assert!(err.message().contains("not base64"), "{err}");
        let err = push(r#"{"message":{"data":"AQ=="}}"#).unwrap_err();
        assert_eq!(err.field(), Some("message.messageId"));
        let err = push(r#"{"message":{"messageId":"1","publishTime":"noon"}}"#).unwrap_err();
        assert_eq!(err.field(), Some("message.publishTime"));
        let err = push(r#"{"message":{"messageId":"1","attributes":{"n":1}}}"#).unwrap_err();
        assert_eq!(err.field(), Some("message.attributes.n"));
        let err = push(r#"{"message":"#).unwrap_err();
        assert!(err.message().contains("not JSON"), "{err}");
    }

    #[test]
    fn url_safe_and_unpadded_base64_is_read() {
        // Proto3 JSON parsers accept either alphabet, padded or not.
        let pushed = push(r#"{"message":{"data":"-_8","messageId":"1"}}"#).unwrap();
        assert_eq!(&pushed.message.body[..], [0xfb, 0xff]);
        let pushed = push(r#"{"message":{"data":"AQIDBA","messageId":"1"}}"#).unwrap();
        assert_eq!(&pushed.message.body[..], [1, 2, 3, 4]);
    }

    #[test]
    fn a_binary_cloud_event_reads_as_the_message() {
        let pushed = message(
            &eventarc(),
            include_str!("fixtures/pubsub-push-text.json").as_bytes(),
        )
        .unwrap();
        assert_eq!(pushed.message.id, "11482203927461");
        assert_eq!(&pushed.message.body[..], br#"{"id":"o-1","qty":2}"#);
        assert_eq!(pushed.message.attribute("origin"), Some("web"));
        assert_eq!(
            pushed.subscription.as_deref(),
            Some("projects/shop-dev/subscriptions/orders-charge")
        );
        // The event's id and time stand in for a message without them.
        let pushed = message(&eventarc(), br#"{"message":{"data":"AQ=="}}"#).unwrap();
        assert_eq!(pushed.message.id, "11482203927461");
        assert_eq!(
            pushed.message.published_at,
            time("2026-03-14T09:26:53.589Z")
        );
        let err = message(&eventarc(), br#"{"message":{"data":"%%"}}"#).unwrap_err();
        assert_eq!(err.field(), Some("message.data"));
    }

    #[test]
    fn a_structured_cloud_event_reads_as_the_message() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/cloudevents+json"),
        );
        let body = include_str!("fixtures/pubsub-cloudevent.json");
        let pushed = message(&headers, body.as_bytes()).unwrap();
        assert_eq!(pushed.message.id, "11482203927475");
        assert_eq!(&pushed.message.body[..], br#"{"id":"o-4","qty":1}"#);
        assert_eq!(pushed.message.attribute("origin"), Some("app"));
        assert_eq!(
            pushed.message.published_at,
            time("2026-03-14T09:33:05.412Z")
        );
        assert_eq!(
            pushed.subscription.as_deref(),
            Some("projects/shop-dev/subscriptions/orders-charge")
        );
        // Without the media type, `specversion` gives it away.
        assert_eq!(push(body).unwrap().message.id, "11482203927475");
        let bad = body.replace("eyJpZCI6Im8tNCIsInF0eSI6MX0=", "#");
        let err = message(&headers, bad.as_bytes()).unwrap_err();
        assert_eq!(err.field(), Some("data.message.data"));
    }

    #[test]
    fn a_cloud_event_of_another_type_names_the_type() {
        let mut headers = eventarc();
        headers.insert(
            "ce-type",
            HeaderValue::from_static("google.cloud.storage.object.v1.finalized"),
        );
        let err = message(
            &headers,
            include_str!("fixtures/storage-object-simple.json").as_bytes(),
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadInput);
        assert_eq!(err.field(), Some("ce-type"));
        assert!(
            err.message()
                .contains("google.cloud.storage.object.v1.finalized"),
            "{err}"
        );
        let err = push(include_str!("fixtures/storage-cloudevent.json")).unwrap_err();
        assert_eq!(err.field(), Some("type"));
    }

    #[test]
    fn a_cloud_event_without_ce_id_is_bad_input() {
        let mut headers = eventarc();
        headers.remove("ce-id");
        let err = message(
            &headers,
            include_str!("fixtures/pubsub-push-text.json").as_bytes(),
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadInput);
        assert_eq!(err.field(), Some("ce-id"));
        assert!(err.message().contains("ce-id"), "{err}");
    }

    #[test]
    fn background_events_read_as_the_message() {
        for body in [
            include_str!("fixtures/pubsub-legacy-nested.json"),
            include_str!("fixtures/pubsub-legacy-flat.json"),
        ] {
            let pushed = push(body).unwrap();
            assert_eq!(pushed.message.id, "11482203927480");
            assert_eq!(
                pushed.message.published_at,
                time("2026-03-14T09:35:20.771Z")
            );
            assert_eq!(pushed.subscription, None);
            assert_eq!((pushed.message.attempt, pushed.attempt_known), (1, false));
        }
        let nested = push(include_str!("fixtures/pubsub-legacy-nested.json")).unwrap();
        assert_eq!(&nested.message.body[..], br#"{"id":"o-5","qty":3}"#);
        assert_eq!(nested.message.attribute("origin"), Some("web"));
        let flat = push(include_str!("fixtures/pubsub-legacy-flat.json")).unwrap();
        assert_eq!(&flat.message.body[..], br#"{"id":"o-6","qty":1}"#);
        assert_eq!(flat.message.attribute("origin"), Some("pos"));
        let bad = include_str!("fixtures/pubsub-legacy-flat.json")
            .replace("eyJpZCI6Im8tNiIsInF0eSI6MX0=", "~");
        assert_eq!(push(&bad).unwrap_err().field(), Some("data.data"));
        let storage = push(include_str!("fixtures/storage-legacy-nested.json")).unwrap_err();
        assert_eq!(storage.field(), Some("context.eventType"));
        assert!(storage.message().contains("google.storage.object.finalize"));
    }

    #[test]
    fn push_envelope_is_what_pubsub_sends() {
        let mut message = Message::new("42", "orders", &br#"{"id":1}"#[..]);
        message.attributes.insert("kind".into(), "order".into());
        message.published_at = time("2026-11-27T18:34:25.628Z");
        let envelope = push_envelope(&message, "projects/proj/subscriptions/push", None);
        assert_eq!(
            envelope,
            serde_json::json!({
                "subscription": "projects/proj/subscriptions/push",
                "message": {
                    "data": "eyJpZCI6MX0=",
                    "attributes": {"kind": "order"},
                    "messageId": "42",
                    "message_id": "42",
                    "publishTime": "2026-11-27T18:34:25.628Z",
                    "publish_time": "2026-11-27T18:34:25.628Z"
                }
            })
        );
        message.ordering_key = Some("cust-7".into());
        message.body = Bytes::new();
        let envelope = push_envelope(&message, "projects/proj/subscriptions/push", Some(2));
        assert_eq!(envelope["deliveryAttempt"], 2);
        assert_eq!(envelope["message"]["orderingKey"], "cust-7");
        assert!(envelope["message"].get("data").is_none());
    }

    #[test]
    fn push_envelope_round_trips_through_decode() {
        let mut sent = Message::new("17", "orders", &b"\x00\xffbytes"[..]);
        sent.attributes.insert("a".into(), "b/c".into());
        sent.ordering_key = Some("k1".into());
        sent.published_at = time("2026-11-27T18:34:25.628123456Z");
        sent.attempt = 4;
        let envelope = push_envelope(&sent, "projects/p/subscriptions/s", Some(4));
        let pushed = push(&envelope.to_string()).unwrap();
        assert_eq!(pushed.message, sent);
        assert_eq!(
            pushed.subscription.as_deref(),
            Some("projects/p/subscriptions/s")
        );
        assert!(pushed.attempt_known);
        sent.attempt = 1;
        let envelope = push_envelope(&sent, "projects/p/subscriptions/s", None);
        let pushed = push(&envelope.to_string()).unwrap();
        assert_eq!(pushed.message, sent);
        assert!(!pushed.attempt_known);
    }
}
