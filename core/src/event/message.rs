//! Queue and topic messages, incoming and outgoing.

use std::{collections::BTreeMap, fmt, time::Duration};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Serialize, de::DeserializeOwned};

use super::redact::Body;
use crate::Error;

/// A message delivered from a queue or topic, with its body typed as `T`.
///
/// Handlers usually take `Message<MyType>`; the raw form `Message<Bytes>` is
/// what providers build from the platform's envelope. Its `Debug` leaves
/// the body out.
#[derive(Clone, PartialEq)]
pub struct Message<T = Bytes> {
    /// The id the platform assigned; stable across redeliveries.
    pub id: String,
    /// The body.
    pub body: T,
    /// String attributes set by the publisher (SQS message attributes, Pub/Sub
    /// attributes, Storage Queue metadata).
    pub attributes: BTreeMap<String, String>,
    /// Which delivery this is, from 1.
    pub attempt: u32,
    /// When the message was first published, if the platform says.
    pub published_at: Option<DateTime<Utc>>,
    /// The FIFO group / ordering key, if any.
    pub ordering_key: Option<String>,
    /// The queue or topic it came from.
    pub source: String,
}

impl Message<Bytes> {
    /// A first delivery of `body` from `source`.
    pub fn new(id: impl Into<String>, source: impl Into<String>, body: impl Into<Bytes>) -> Self {
        Self {
            id: id.into(),
            body: body.into(),
            attributes: BTreeMap::new(),
            attempt: 1,
            published_at: None,
            ordering_key: None,
            source: source.into(),
        }
    }

    /// A first delivery from `source` whose body is `value` as JSON: how an
    /// event no queue delivered (a tick, a storage change) is carried to a
    /// dead-letter queue.
    pub fn json<T: Serialize + ?Sized>(
        id: impl Into<String>,
        source: impl Into<String>,
        value: &T,
    ) -> Result<Self, Error> {
        let body = serde_json::to_vec(value)
            .map_err(|e| Error::internal(format!("cannot serialise the message body: {e}")))?;
        Ok(Self::new(id, source, body))
    }

    /// The body read as JSON into `T`. A body that does not parse is a
    /// permanent [`crate::ErrorKind::BadInput`] error naming the field, so the
    /// message goes to the dead-letter queue instead of being retried forever.
    pub fn decode<T: DeserializeOwned>(self) -> Result<Message<T>, Error> {
        let body = Error::decode_json(&self.body).map_err(|e| {
            let message = format!(
                "message {} from `{}`: {}",
                self.id,
                self.source,
                e.message()
            );
            match e.field() {
                Some(field) => Error::bad_input(message).with_field(field),
                None => Error::bad_input(message),
            }
        })?;
        Ok(self.map(|_| body))
    }
}

impl<T> Message<T> {
    /// The same message with its body replaced.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Message<U> {
        Message {
            id: self.id,
            body: f(self.body),
            attributes: self.attributes,
            attempt: self.attempt,
            published_at: self.published_at,
            ordering_key: self.ordering_key,
            source: self.source,
        }
    }

    /// Attribute `name`, if set.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }
}

impl<T> fmt::Debug for Message<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("id", &self.id)
            .field("body", &format_args!("<redacted>"))
            .field("attributes", &self.attributes)
            .field("attempt", &self.attempt)
            .field("published_at", &self.published_at)
            .field("ordering_key", &self.ordering_key)
            .field("source", &self.source)
            .finish()
    }
}

/// A message to send to a queue or publish to a topic. Its `Debug` leaves
/// the body out.
///
/// ```
/// use cloudfn_core::OutgoingMessage;
///
/// let msg = OutgoingMessage::json(&serde_json::json!({"id": 7}))
///     .unwrap()
///     .with_attribute("source", "checkout")
///     .with_ordering_key("customer-42");
/// assert_eq!(&msg.body[..], br#"{"id":7}"#);
/// ```
#[derive(Clone, Default, PartialEq)]
pub struct OutgoingMessage {
    /// The body.
    pub body: Bytes,
    /// String attributes.
    pub attributes: BTreeMap<String, String>,
    /// FIFO group / ordering key.
    pub ordering_key: Option<String>,
    /// Deduplication id for FIFO queues.
    pub deduplication_id: Option<String>,
    /// Delivery delay.
    pub delay: Option<Duration>,
}

impl fmt::Debug for OutgoingMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingMessage")
            .field("body", &Body(self.body.len()))
            .field("attributes", &self.attributes)
            .field("ordering_key", &self.ordering_key)
            .field("deduplication_id", &self.deduplication_id)
            .field("delay", &self.delay)
            .finish()
    }
}

impl OutgoingMessage {
    /// A message with a raw body.
    pub fn new(body: impl Into<Bytes>) -> Self {
        Self {
            body: body.into(),
            ..Self::default()
        }
    }

    /// A message whose body is `value` as JSON.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, Error> {
        serde_json::to_vec(value)
            .map(Self::new)
            // The value came from the handler, not the caller: a bug, not bad input.
            .map_err(|e| Error::internal(format!("message body cannot be JSON: {e}")))
    }

    /// Adds an attribute.
    pub fn with_attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }

    /// Sets the FIFO group / ordering key.
    pub fn with_ordering_key(mut self, key: impl Into<String>) -> Self {
        self.ordering_key = Some(key.into());
        self
    }

    /// Sets the deduplication id.
    pub fn with_deduplication_id(mut self, id: impl Into<String>) -> Self {
        self.deduplication_id = Some(id.into());
        self
    }

    /// Delays delivery.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Paid {
        order_id: String,
        cents: u64,
    }

    #[test]
    fn decode_keeps_envelope_and_types_body() {
        let mut raw = Message::new("m-1", "order-paid", r#"{"order_id":"o-1","cents":1200}"#);
        raw.attempt = 2;
        let msg = raw.decode::<Paid>().unwrap();
        assert_eq!(msg.id, "m-1");
        assert_eq!(msg.attempt, 2);
        assert_eq!(
            msg.body,
            Paid {
                order_id: "o-1".into(),
                cents: 1200
            }
        );
    }

    #[test]
    fn debug_leaves_out_bodies() {
        let raw = Message::new("m-1", "orders", r#"{"card":"4111-secret"}"#);
        let typed = raw.clone().decode::<serde_json::Value>().unwrap();
        let outgoing = OutgoingMessage::new("4111-secret").with_attribute("kind", "card");
        for shown in [
            format!("{raw:?}"),
            format!("{typed:?}"),
            format!("{outgoing:?}"),
        ] {
            assert!(!shown.contains("secret"), "{shown}");
        }
        assert!(format!("{raw:?}").contains("m-1"));
    }

    #[test]
    fn undecodable_body_is_permanent_and_names_message_and_field() {
        let err = Message::new("m-2", "orders", r#"{"order_id":"o-1","cents":-3}"#)
            .decode::<Paid>()
            .unwrap_err();
        assert!(!err.is_retryable());
        assert_eq!(err.field(), Some("cents"));
        assert!(
            err.message().contains("m-2") && err.message().contains("orders"),
            "{err}"
        );
    }
}
