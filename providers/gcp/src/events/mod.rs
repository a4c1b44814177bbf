//! The requests Google Cloud sends an event function, read into neutral
//! events, and the Pub/Sub push envelope written back (for tests and the
//! local emulator): pure, no I/O, one file per shape.
//!
//! A Cloud Run function behind a queue, topic or storage trigger is reached
//! by whichever sender its deployment wired up, and each sends its own
//! shape. The shape, not `FUNCTION_SIGNATURE_TYPE`, says which one came
//! (as both functions frameworks do), so [`decode`] recognises it in this
//! order:
//!
//! | shape | recognised by | read in |
//! |---|---|---|
//! | CloudEvent, binary mode (Eventarc) | any of the `ce-id`, `ce-source`, `ce-specversion`, `ce-type` headers, and no structured media type | `cloudevent.rs` |
//! | CloudEvent, structured mode | `Content-Type: application/cloudevents+json`, or a body with `specversion` | `cloudevent.rs` |
//! | background event (1st gen), nested | a body with `context` | `legacy.rs` |
//! | background event (1st gen), flat | a body with `eventType` | `legacy.rs` |
//! | Pub/Sub push envelope | a body with `message` | `pubsub.rs` |
//!
//! The data inside is then read for what the function's trigger takes
//! ([`Expect`]): a Pub/Sub message (`pubsub.rs`) or a Cloud Storage object
//! (`storage.rs`, which says why `archived` and `metadataUpdated` are
//! refused). A schedule function is called by Cloud Scheduler over plain
//! HTTP and only its headers count (`schedule.rs`).
//!
//! CloudEvents are read with `cloudevents-sdk`, its HTTP binding alone
//! (no default features): of the crates it brings, only `snafu`,
//! `snafu-derive`, `delegate-attr`, `hostname` and `futures` 0.1 (for the
//! `compat` feature it asks of `futures`) are not built here already. What
//! is Google's — the event types, the data shapes — and errors that name
//! the field at fault stay this module's to write.
//!
//! Every failure is an [`Error::bad_input`] whose field names what is
//! wrong: a header (`ce-id`), or a path in the body (`message.data`,
//! `data.message.data` in a structured CloudEvent, `context.eventType`).

mod cloudevent;
mod legacy;
mod pubsub;
mod schedule;
mod storage;

use std::fmt;

use chrono::{DateTime, Utc};
use cloudfn_core::{Error, Message, ScheduledTick, StorageEvent};
use http::HeaderMap;
use serde::{Deserialize, Deserializer, de};

use self::cloudevent::CloudEvent;
use self::legacy::BackgroundEvent;
pub use self::pubsub::{MESSAGE_PUBLISHED, push_envelope};
pub use self::schedule::SCHEDULE_TIME;
pub use self::storage::{OBJECT_DELETED, OBJECT_FINALIZED};

/// What a queue/topic, storage or schedule function was sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// A Pub/Sub message, for a queue or topic function.
    Message(Pushed),
    /// A change to a Cloud Storage object, for a storage function.
    Storage(StorageEvent),
    /// A Cloud Scheduler run, for a schedule function.
    Tick(ScheduledTick),
}

/// A Pub/Sub message as delivered to a function.
#[derive(Debug, Clone, PartialEq)]
pub struct Pushed {
    /// The message: its raw body (the base64 `data` decoded; none is an
    /// empty body), `messageId`, attributes, `publishTime`, `orderingKey`,
    /// the neutral queue or topic name as its source, and the delivery
    /// attempt (`deliveryAttempt`, or 1 when unknown).
    pub message: Message,
    /// The subscription it came through, `projects/P/subscriptions/S`,
    /// when the shape carries it (a background event does not).
    pub subscription: Option<String>,
    /// Whether `message.attempt` was read from the platform. Pub/Sub counts
    /// deliveries only for a subscription with a dead-letter policy, and
    /// the emulator never sends the count: without it `attempt` is 1
    /// whatever the delivery, and the adapter cannot tell when a retry
    /// budget smaller than Pub/Sub's own is spent.
    pub attempt_known: bool,
}

/// Which shapes a function accepts, from its trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect<'a> {
    /// A queue or topic function: Pub/Sub messages.
    Message {
        /// The neutral queue or topic name, the messages' source.
        source: &'a str,
    },
    /// A storage function: Cloud Storage object events.
    Storage,
    /// A schedule function: Cloud Scheduler runs.
    Schedule {
        /// The function's cron expression, which the tick names.
        cron: &'a str,
    },
}

/// Reads one request of an event function. Errors are `Error::bad_input`
/// naming what is wrong (field paths like `message.data`), never a panic.
pub fn decode(headers: &HeaderMap, body: &[u8], expect: Expect<'_>) -> Result<Delivery, Error> {
    match expect {
        // Cloud Scheduler says everything in its headers; the body is
        // whatever the job was created with.
        Expect::Schedule { cron } => schedule::decode(headers, cron).map(Delivery::Tick),
        Expect::Message { source } => match Shape::of(headers, body)? {
            Shape::CloudEvent(event) => pubsub::from_cloud_event(&event, body, source),
            Shape::Background(event) => pubsub::from_background(&event, body, source),
            Shape::Push => pubsub::from_push(body, source),
        }
        .map(Delivery::Message),
        Expect::Storage => match Shape::of(headers, body)? {
            Shape::CloudEvent(event) => storage::from_cloud_event(&event, body),
            Shape::Background(event) => storage::from_background(&event, body),
            Shape::Push => Err(Error::bad_input(
                "a Pub/Sub push envelope was sent to a storage function: Cloud Storage events \
                 come from Eventarc as CloudEvents",
            )
            .with_field("message")),
        }
        .map(Delivery::Storage),
    }
}

/// Which of the shapes of an event request this one is.
#[derive(Debug)]
enum Shape {
    /// A CloudEvent, binary or structured; its data still in the body.
    CloudEvent(CloudEvent),
    /// A 1st-gen background event; its data still in the body.
    Background(BackgroundEvent),
    /// A Pub/Sub push envelope, the body as a whole.
    Push,
}

impl Shape {
    fn of(headers: &HeaderMap, body: &[u8]) -> Result<Self, Error> {
        // Eventarc's binary mode first: its body is the bare data, which
        // for Pub/Sub looks just like a push envelope.
        if let Some(event) = CloudEvent::binary(headers)? {
            return Ok(Self::CloudEvent(event));
        }
        if cloudevent::is_structured(headers)? {
            return CloudEvent::structured(body).map(Self::CloudEvent);
        }
        // The top-level keys tell the JSON shapes apart.
        let keys: TopKeys = serde_json::from_slice(body).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => Error::bad_input(format!(
                "the body is not a JSON object, nor a CloudEvent in headers: {e}"
            )),
            _ => Error::bad_input(format!(
                "the body is not JSON, nor a CloudEvent in headers: {e}"
            )),
        })?;
        if keys.specversion {
            // A structured CloudEvent whose sender left out the media type.
            CloudEvent::structured(body).map(Self::CloudEvent)
        } else if keys.context || keys.event_type {
            BackgroundEvent::read(body).map(Self::Background)
        } else if keys.message {
            Ok(Self::Push)
        } else {
            Err(Error::bad_input(
                "the body is none of the shapes Google Cloud sends an event function: a \
                 CloudEvent (ce-* headers, or `specversion`), a background event (`context` or \
                 `eventType`), or a Pub/Sub push envelope (`message`)",
            ))
        }
    }
}

/// Which of the keys that tell the JSON shapes apart an object has at its
/// top, whatever their values (`null` included). Read without building the
/// keys or the values: the body is read again, whole, for its shape.
#[derive(Default)]
struct TopKeys {
    specversion: bool,
    context: bool,
    event_type: bool,
    message: bool,
}

impl<'de> Deserialize<'de> for TopKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(field_identifier)]
        enum Key {
            #[serde(rename = "specversion")]
            Specversion,
            #[serde(rename = "context")]
            Context,
            #[serde(rename = "eventType")]
            EventType,
            #[serde(rename = "message")]
            Message,
            #[serde(other)]
            Other,
        }
        struct Keys;
        impl<'de> de::Visitor<'de> for Keys {
            type Value = TopKeys;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<TopKeys, A::Error> {
                let mut keys = TopKeys::default();
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Specversion => keys.specversion = true,
                        Key::Context => keys.context = true,
                        Key::EventType => keys.event_type = true,
                        Key::Message => keys.message = true,
                        Key::Other => {}
                    }
                    map.next_value::<de::IgnoredAny>()?;
                }
                Ok(keys)
            }
        }
        deserializer.deserialize_map(Keys)
    }
}

/// A header's value as text; absent is `None`, not text is an error naming it.
pub(crate) fn header<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, Error> {
    headers
        .get(name)
        .map(|value| {
            value.to_str().map(str::trim).map_err(|_| {
                Error::bad_input(format!("the `{name}` header is not ASCII text")).with_field(name)
            })
        })
        .transpose()
}

/// An RFC 3339 time in UTC, or an error naming `field` and what it holds.
pub(crate) fn rfc3339(text: &str, field: &str) -> Result<DateTime<Utc>, Error> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            Error::bad_input(format!("`{field}` is not an RFC 3339 time ({text:?}): {e}"))
                .with_field(field)
        })
}

/// Bytes from base64 as protobuf's JSON mapping writes them: parsers must
/// take the standard and the URL-safe alphabet, padded or not.
pub(crate) fn base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    use base64::{
        Engine, alphabet,
        engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
    };
    const LENIENT: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);
    let text = text.trim();
    STANDARD.decode(text).or_else(|error| {
        if text.contains(['-', '_']) {
            URL_SAFE.decode(text)
        } else {
            Err(error)
        }
    })
}

/// Reads a protobuf 64-bit integer from JSON, where the canonical mapping
/// writes it as a string (`"size": "352"`) yet Google's own fixtures, and
/// any sender that does not follow the mapping, write a number: both are
/// accepted, and `null` is absent.
pub(crate) fn proto_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct Int;
    impl<'de> de::Visitor<'de> for Int {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative integer, as a number or a string")
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
            Ok(Some(n))
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
            u64::try_from(n)
                .map(Some)
                .map_err(|_| E::invalid_value(de::Unexpected::Signed(n), &self))
        }
        fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
            // Proto3 JSON allows exponent notation (`1e3`) for integers.
            if n.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(&n) {
                Ok(Some(n as u64))
            } else {
                Err(E::invalid_value(de::Unexpected::Float(n), &self))
            }
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            s.trim()
                .parse()
                .map(Some)
                .map_err(|_| E::invalid_value(de::Unexpected::Str(s), &self))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }
    d.deserialize_any(Int)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudfn_core::ErrorKind;
    use serde::Deserialize;

    fn bad(body: &[u8]) -> Error {
        let err = decode(
            &HeaderMap::new(),
            body,
            Expect::Message { source: "orders" },
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadInput, "{err}");
        err
    }

    #[test]
    fn a_body_that_is_no_shape_says_which_shapes_there_are() {
        assert!(bad(b"hello").message().contains("not JSON"), "not JSON");
        assert!(bad(b"[1, 2]").message().contains("not a JSON object"));
        let err = bad(br#"{"id": 1}"#);
        assert!(err.message().contains("none of the shapes"), "{err}");
        assert!(bad(b"").message().contains("not JSON"));
    }

    #[test]
    fn the_shape_is_told_by_the_top_level_keys_alone() {
        let push = |body: &[u8]| matches!(Shape::of(&HeaderMap::new(), body), Ok(Shape::Push));
        assert!(push(br#"{"message": null}"#), "a null value counts");
        assert!(
            push(br#"{"message": {}, "message": {}}"#),
            "a repeated key too"
        );
        assert!(push(br#"{"mess\u0061ge": {}}"#), "an escaped key too");
        let nested = Shape::of(&HeaderMap::new(), br#"{"data": {"message": {}}}"#).unwrap_err();
        assert!(nested.message().contains("none of the shapes"), "{nested}");
    }

    #[test]
    fn int64s_read_from_numbers_and_strings() {
        #[derive(Deserialize)]
        struct N {
            #[serde(default, deserialize_with = "proto_int")]
            n: Option<u64>,
        }
        let read = |json: &str| serde_json::from_str::<N>(json).map(|n| n.n);
        assert_eq!(read(r#"{"n": "352"}"#).unwrap(), Some(352));
        assert_eq!(read(r#"{"n": 352}"#).unwrap(), Some(352));
        assert_eq!(read(r#"{"n": 1e3}"#).unwrap(), Some(1000));
        assert_eq!(read(r#"{"n": null}"#).unwrap(), None);
        assert_eq!(read(r#"{}"#).unwrap(), None);
        assert!(read(r#"{"n": -1}"#).is_err());
        assert!(read(r#"{"n": "lots"}"#).is_err());
    }
}
