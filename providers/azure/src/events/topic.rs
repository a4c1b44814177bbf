//! The Service Bus trigger: a topic subscription's message. The body is
//! the `message` binding (binary: base64); `MessageId`, `DeliveryCount`, `SessionId` (the
//! ordering key), `EnqueuedTimeUtc` and `ApplicationProperties` (the
//! attributes) come from the metadata.

use cloudfn_core::{Error, Message};

use super::{InvocationRequest, binding};

/// Reads a Service Bus message delivered from neutral topic `topic`.
pub fn decode(request: &InvocationRequest, topic: &str) -> Result<Message, Error> {
    let body = super::bytes(
        &request.binding::<serde_json::Value>(binding::MESSAGE, "a Service Bus message")?,
    )
    .unwrap_or_default();
    let id = request.text("MessageId").unwrap_or_default();
    let mut message = Message::new(id, topic, body);
    message.attempt = request.count("DeliveryCount").unwrap_or(1).max(1);
    message.ordering_key = request.text("SessionId").filter(|s| !s.is_empty());
    message.published_at = request
        .text("EnqueuedTimeUtc")
        .and_then(|t| super::time(&t));
    let properties = ["ApplicationProperties", "UserProperties"]
        .iter()
        .find_map(|name| request.metadata(name).as_ref().and_then(super::object))
        .unwrap_or_default();
    message.attributes = properties
        .iter()
        .filter_map(|(name, value)| Some((name.clone(), super::text(value)?)))
        .collect();
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_service_bus_message_reads_with_its_properties() {
        let request = InvocationRequest::of(json!({
            "Data": {"message": "eyJpZCI6Im8tMSJ9"},
            "Metadata": {
                "MessageId": "\"m-1\"",
                "DeliveryCount": "2",
                "SessionId": "\"customer-1\"",
                "EnqueuedTimeUtc": "\"2026-11-27T10:00:00\"",
                "ApplicationProperties": {"cloudfn-message-id": "m-1", "n": 3},
                "sys": {"MethodName": "notify"}
            }
        }));
        let message = decode(&request, "order-paid").unwrap();
        assert_eq!(
            (message.id.as_str(), message.source.as_str()),
            ("m-1", "order-paid")
        );
        assert_eq!(&message.body[..], br#"{"id":"o-1"}"#);
        assert_eq!(message.attempt, 2);
        assert_eq!(message.ordering_key.as_deref(), Some("customer-1"));
        assert_eq!(message.attribute("cloudfn-message-id"), Some("m-1"));
        assert_eq!(message.attribute("n"), Some("3"));
        assert_eq!(
            message.published_at.unwrap().to_rfc3339(),
            "2026-11-27T10:00:00+00:00"
        );
    }
}
