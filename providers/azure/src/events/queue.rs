//! The Storage Queue trigger, and the text cloudfn writes into a queue
//! message.
//!
//! A Storage Queue message is text alone: no attributes, no ordering key.
//! So cloudfn writes an [`Envelope`] — the attributes, the id the message
//! keeps across re-enqueues, the deliveries made so far, and the body — as
//! JSON. A message some other producer wrote (the portal, `az storage
//! message put`, another app) is read as a bare body. The host base64-
//! decodes the text before the handler sees it (`messageEncoding`, base64
//! by default, as cloudfn's `host.json` leaves it).

use std::collections::BTreeMap;

use base64::{Engine, engine::general_purpose::STANDARD};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use cloudfn_core::{Error, Message, OutgoingMessage};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{InvocationRequest, binding};

/// The most a Storage Queue message holds: 64 KiB of text, which the
/// host's base64 turns into 48 KiB of envelope.
pub const MAX_ENVELOPE_BYTES: usize = 48 * 1024;

/// What the `cloudfn` key of an envelope says: which version of it this is.
const VERSION: u8 = 1;

/// A message as cloudfn writes it into a Storage Queue.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// Marks the text as cloudfn's envelope, and its version.
    pub cloudfn: u8,
    /// The id the message keeps across the copies a retry enqueues.
    pub id: String,
    /// The deliveries of earlier copies: a retry's copy carries the
    /// attempts made before it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    /// When the first copy was sent.
    pub published_at: DateTime<Utc>,
    /// The publisher's attributes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// The ordering key it was sent with (Storage Queues keep no order; it
    /// is carried for whoever reads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering_key: Option<String>,
    /// The body, when it is JSON: kept as written, byte for byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<Box<RawValue>>,
    /// The body, when it is not JSON, in base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Envelope {
    /// The envelope of a first send of `message` under `id`.
    pub fn new(id: impl Into<String>, message: &OutgoingMessage) -> Self {
        let (json, base64) = match std::str::from_utf8(&message.body)
            .ok()
            .and_then(|text| RawValue::from_string(text.to_owned()).ok())
        {
            Some(json) => (Some(json), None),
            None => (None, Some(STANDARD.encode(&message.body))),
        };
        Self {
            cloudfn: VERSION,
            id: id.into(),
            attempts: 0,
            published_at: Utc::now(),
            attributes: message.attributes.clone(),
            ordering_key: message.ordering_key.clone(),
            json,
            base64,
        }
    }

    /// The copy that delivers `message` again once `message.attempt`
    /// deliveries have been made.
    pub fn retry_of(message: &Message) -> Self {
        let mut outgoing = OutgoingMessage::new(message.body.clone());
        outgoing.attributes = message.attributes.clone();
        outgoing.ordering_key = message.ordering_key.clone();
        let mut envelope = Self::new(message.id.clone(), &outgoing);
        envelope.attempts = message.attempt;
        envelope.published_at = message.published_at.unwrap_or(envelope.published_at);
        envelope
    }

    /// The text to put on the queue, refused when over the queue's limit.
    pub fn to_text(&self) -> Result<String, Error> {
        let text = serde_json::to_string(self)
            .map_err(|e| Error::internal(format!("cannot write the envelope: {e}")))?;
        if text.len() > MAX_ENVELOPE_BYTES {
            return Err(Error::too_large(format!(
                "the message is {} bytes as a Storage Queue message; a queue message holds at most {MAX_ENVELOPE_BYTES} (64 KiB once base64-encoded)",
                text.len()
            )));
        }
        Ok(text)
    }

    /// Reads `text` as an envelope; `None` when it is not one (a bare
    /// message from some other producer).
    pub fn from_text(text: &str) -> Option<Self> {
        if !text.trim_start().starts_with('{') {
            return None;
        }
        serde_json::from_str::<Self>(text)
            .ok()
            .filter(|e| e.cloudfn == VERSION && (e.json.is_some() != e.base64.is_some()))
    }

    /// The body the envelope carries.
    pub fn body(&self) -> Result<Bytes, Error> {
        match (&self.json, &self.base64) {
            (Some(json), _) => Ok(Bytes::copy_from_slice(json.get().as_bytes())),
            (None, Some(base64)) => STANDARD.decode(base64).map(Bytes::from).map_err(|e| {
                Error::bad_input(format!(
                    "message {}: its base64 body does not decode: {e}",
                    self.id
                ))
            }),
            (None, None) => Ok(Bytes::new()),
        }
    }
}

/// Reads a queue message delivered from neutral queue `queue`: the text in
/// the `message` binding, with `Id`, `DequeueCount` and `InsertionTime`
/// from the metadata.
pub fn decode(request: &InvocationRequest, queue: &str) -> Result<Message, Error> {
    let text = message_text(request)?;
    let delivery = Delivery {
        queue_id: request.text("Id").unwrap_or_default(),
        dequeue_count: request.count("DequeueCount").unwrap_or(1),
        inserted: request.text("InsertionTime").and_then(|t| super::time(&t)),
    };
    message_of(&text, &delivery, queue)
}

/// What the queue says of one delivery of a message.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    /// The queue's id of the message (of this copy).
    pub queue_id: String,
    /// How many times this copy was handed out, this time included.
    pub dequeue_count: u32,
    /// When this copy was put on the queue.
    pub inserted: Option<DateTime<Utc>>,
}

/// The message a delivery of `text` (already base64-decoded) from neutral
/// queue `queue` carries. A cloudfn envelope gives the attributes, the id
/// kept across retries and the attempts made before this copy; a bare
/// text is its own body, under the queue's id.
pub fn message_of(text: &str, delivery: &Delivery, queue: &str) -> Result<Message, Error> {
    let dequeues = delivery.dequeue_count.max(1);
    Ok(match Envelope::from_text(text) {
        Some(envelope) => {
            let mut message = Message::new(envelope.id.clone(), queue, envelope.body()?);
            message.attempt = envelope.attempts.saturating_add(dequeues);
            message.published_at = Some(envelope.published_at);
            message.ordering_key = envelope.ordering_key;
            message.attributes = envelope.attributes;
            message
        }
        None => {
            let mut message =
                Message::new(delivery.queue_id.clone(), queue, text.as_bytes().to_vec());
            message.attempt = dequeues;
            message.published_at = delivery.inserted;
            message
        }
    })
}

/// The message's text: the `message` binding is binary (base64 of the
/// text the host read, already base64-decoded once by the host's
/// `messageEncoding`).
fn message_text(request: &InvocationRequest) -> Result<String, Error> {
    let field = || format!("Data.{}", binding::MESSAGE);
    let bytes =
        super::bytes(&request.binding::<serde_json::Value>(binding::MESSAGE, "a queue message")?)
            .ok_or_else(|| Error::bad_input("the queue message is null").with_field(field()))?;
    String::from_utf8(bytes).map_err(|_| {
        Error::bad_input(
            "the queue message is not UTF-8 text, which every Storage queue message is",
        )
        .with_field(field())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn invocation(text: &str, dequeue_count: u32) -> InvocationRequest {
        use base64::{Engine, engine::general_purpose::STANDARD};
        InvocationRequest::of(json!({
            "Data": {"message": STANDARD.encode(text)},
            "Metadata": {
                "DequeueCount": dequeue_count.to_string(),
                "Id": "\"7f1f6a3b-0000-0000-0000-000000000001\"",
                "InsertionTime": "2026-11-27T10:00:00+00:00",
                "PopReceipt": "\"AgAAAAMAAAAAAAAA\"",
                "sys": {"MethodName": "charge", "UtcNow": "2026-11-27T10:00:01Z", "RandGuid": "x"}
            }
        }))
    }

    #[test]
    fn an_envelope_keeps_body_attributes_and_attempts() {
        let outgoing = OutgoingMessage::json(&json!({"id": "o-1", "qty": 2}))
            .unwrap()
            .with_attribute("cloudfn-message-id", "m-1")
            .with_ordering_key("customer-1");
        let text = Envelope::new("m-1", &outgoing).to_text().unwrap();
        let message = decode(&invocation(&text, 2), "orders").unwrap();
        assert_eq!(message.id, "m-1");
        assert_eq!(message.source, "orders");
        assert_eq!(&message.body[..], br#"{"id":"o-1","qty":2}"#);
        assert_eq!(message.attempt, 2);
        assert_eq!(message.attribute("cloudfn-message-id"), Some("m-1"));
        assert_eq!(message.ordering_key.as_deref(), Some("customer-1"));

        // A retry's copy counts the deliveries before it.
        let mut delivered = message.clone();
        delivered.attempt = 3;
        let retry = Envelope::retry_of(&delivered).to_text().unwrap();
        let again = decode(&invocation(&retry, 1), "orders").unwrap();
        assert_eq!((again.id.as_str(), again.attempt), ("m-1", 4));
        assert_eq!(again.body, message.body);
        assert_eq!(again.published_at, message.published_at);
    }

    #[test]
    fn bodies_that_are_not_json_travel_in_base64() {
        let outgoing = OutgoingMessage::new(vec![0xff, 0x00, b'a']);
        let text = Envelope::new("m-2", &outgoing).to_text().unwrap();
        assert!(text.contains("\"base64\""), "{text}");
        let message = decode(&invocation(&text, 1), "blobs").unwrap();
        assert_eq!(&message.body[..], &[0xff, 0x00, b'a']);
    }

    #[test]
    fn a_bare_message_from_another_producer_is_its_own_body() {
        let message = decode(&invocation(r#"{"id":"o-9"}"#, 3), "orders").unwrap();
        assert_eq!(message.id, "7f1f6a3b-0000-0000-0000-000000000001");
        assert_eq!(&message.body[..], br#"{"id":"o-9"}"#);
        assert_eq!(message.attempt, 3);
        assert_eq!(
            message.published_at.unwrap().to_rfc3339(),
            "2026-11-27T10:00:00+00:00"
        );
        let plain = decode(&invocation("hello", 1), "orders").unwrap();
        assert_eq!(&plain.body[..], b"hello");
    }

    #[test]
    fn an_envelope_over_the_queue_limit_is_refused() {
        let big = OutgoingMessage::new(vec![b'a'; MAX_ENVELOPE_BYTES]);
        let error = Envelope::new("m", &big).to_text().unwrap_err();
        assert_eq!(error.kind(), cloudfn_core::ErrorKind::TooLarge);
    }

    #[test]
    fn a_payload_without_the_message_binding_is_refused_by_name() {
        let request = InvocationRequest::from_slice(br#"{"Data":{},"Metadata":{}}"#).unwrap();
        assert_eq!(
            decode(&request, "orders").unwrap_err().field(),
            Some("Data.message")
        );
    }
}
