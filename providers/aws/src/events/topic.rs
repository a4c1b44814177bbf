//! Topic deliveries straight to Lambda: SNS notifications and EventBridge
//! events. A topic that feeds a subscription queue does so with raw message
//! delivery, so those arrive as plain SQS events (see [`super::queue`]).

use std::collections::BTreeMap;

use aws_lambda_events::{eventbridge::EventBridgeEvent, sns::SnsEvent};
use cloudfn_core::{Error, Message};

/// The shapes a topic function accepts, for error messages.
pub const EXPECTED: &str = "an SNS event ({\"Records\":[{\"EventSource\":\"aws:sns\",…}]}), \
     an SQS event whose bodies are SNS notifications, EventBridge events or raw messages, \
     or an EventBridge event ({\"detail-type\",\"source\",\"detail\"})";

fn topic_name(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

/// Whether `event` (JSON) is a direct SNS → Lambda event.
pub fn is_sns(event: &[u8]) -> bool {
    super::shape::Shape::of(event).is_ok_and(|shape| shape.is_sns())
}

/// Reads a direct SNS event (JSON; one record in practice) into messages.
pub fn decode_sns(event: &[u8]) -> Result<Vec<Message>, Error> {
    let event: SnsEvent = serde_json::from_slice(event)
        .map_err(|e| Error::bad_input(format!("malformed SNS event: {e}")))?;
    Ok(event
        .records
        .into_iter()
        .map(|record| {
            let notification = record.sns;
            Message {
                source: topic_name(&notification.topic_arn).to_owned(),
                id: notification.message_id,
                body: notification.message.into(),
                attributes: notification
                    .message_attributes
                    .into_iter()
                    .map(|(name, attribute)| (name, attribute.value))
                    .collect(),
                attempt: 1,
                published_at: Some(notification.timestamp),
                ordering_key: None,
            }
        })
        .collect())
}

/// Whether `event` (JSON) is an EventBridge event: every field of the
/// envelope is there, so that a payload that merely carries `detail` is not
/// taken for one.
pub fn is_eventbridge(event: &[u8]) -> bool {
    super::shape::Shape::of(event).is_ok_and(|shape| shape.is_eventbridge())
}

/// Reads an EventBridge event (JSON) into a message: the body is `detail`,
/// the attributes carry `source` and `detail-type`.
pub fn decode_eventbridge(event: &[u8]) -> Result<Message, Error> {
    let event: EventBridgeEvent = serde_json::from_slice(event)
        .map_err(|e| Error::bad_input(format!("malformed EventBridge event: {e}")))?;
    // The body is the detail's compact text, however the event spaced it.
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
