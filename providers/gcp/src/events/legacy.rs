//! Background events, what 1st-gen Cloud Functions send: the context
//! nested, `{"context": {"eventId", "timestamp", "eventType", "resource"},
//! "data": …}`, or, from the older beta API, flat at the top level beside
//! `data`.
//!
//! `resource` is a string or an object `{"service", "name", "type"}`;
//! cloudfn reads what it needs from the data, so it is not kept.

use chrono::{DateTime, Utc};
use cloudfn_core::Error;
use serde::{Deserialize, de::DeserializeOwned};

/// The context of a background event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BackgroundEvent {
    /// The event's id: for Pub/Sub, the message id.
    pub event_id: String,
    /// When it happened: for Pub/Sub, the publish time.
    pub timestamp: Option<DateTime<Utc>>,
    /// e.g. `google.pubsub.topic.publish`.
    pub event_type: String,
    /// Whether the context is under `context` (or flat at the top).
    nested: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Context {
    #[serde(default)]
    event_id: Option<String>,
    #[serde(default)]
    timestamp: Option<DateTime<Utc>>,
    #[serde(default)]
    event_type: Option<String>,
}

/// The body: the context under `context`, or its fields at the top.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    #[serde(default)]
    context: Option<Context>,
    #[serde(flatten)]
    flat: Context,
}

#[derive(Deserialize)]
#[serde(bound = "D: DeserializeOwned")]
struct Data<D> {
    #[serde(default)]
    data: Option<D>,
}

impl BackgroundEvent {
    /// The context of the event in `body`, its id and type required.
    pub(crate) fn read(body: &[u8]) -> Result<Self, Error> {
        let body: Body = Error::decode_json(body)?;
        let (context, nested) = match body.context {
            Some(context) => (context, true),
            None => (body.flat, false),
        };
        let field = |name: &str| field(nested, name);
        let need = |value: Option<String>, name: &str| {
            value.filter(|v| !v.is_empty()).ok_or_else(|| {
                Error::bad_input(format!("the background event has no `{}`", field(name)))
                    .with_field(field(name))
            })
        };
        Ok(Self {
            event_id: need(context.event_id, "eventId")?,
            timestamp: context.timestamp,
            event_type: need(context.event_type, "eventType")?,
            nested,
        })
    }

    /// Where context field `name` is, for errors: `context.eventType` or
    /// `eventType`.
    pub(crate) fn field(&self, name: &str) -> String {
        field(self.nested, name)
    }

    /// The event's `data`, read from `body` as `D`; missing or not a `D`
    /// is an error naming its path.
    pub(crate) fn data<D: DeserializeOwned>(&self, body: &[u8]) -> Result<D, Error> {
        let data: Data<D> = Error::decode_json(body)?;
        data.data.ok_or_else(|| {
            Error::bad_input(format!(
                "the background event {} has no `data`",
                self.event_id
            ))
            .with_field("data")
        })
    }
}

fn field(nested: bool, name: &str) -> String {
    if nested {
        format!("context.{name}")
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn nested_and_flat_contexts_read_alike() {
        let nested =
            BackgroundEvent::read(include_str!("fixtures/pubsub-legacy-nested.json").as_bytes())
                .unwrap();
        let flat =
            BackgroundEvent::read(include_str!("fixtures/pubsub-legacy-flat.json").as_bytes())
                .unwrap();
        for event in [&nested, &flat] {
            assert_eq!(event.event_id, "11482203927480");
            assert_eq!(
                event.timestamp.unwrap().to_rfc3339(),
                "2026-03-14T09:35:20.771+00:00"
            );
        }
        assert_eq!(nested.event_type, "google.pubsub.topic.publish");
        assert_eq!(nested.field("eventType"), "context.eventType");
        assert_eq!(
            flat.event_type,
            "providers/cloud.pubsub/eventTypes/topic.publish"
        );
        assert_eq!(flat.field("eventType"), "eventType");
    }

    #[test]
    fn what_is_missing_or_mistyped_is_named() {
        let err = BackgroundEvent::read(br#"{"context":{"eventType":"t"},"data":{}}"#).unwrap_err();
        assert_eq!(err.field(), Some("context.eventId"));
        let err = BackgroundEvent::read(br#"{"eventId":"1","data":{}}"#).unwrap_err();
        assert_eq!(err.field(), Some("eventType"));
        let err = BackgroundEvent::read(
            br#"{"context":{"eventId":"1","eventType":"t","timestamp":"soon"}}"#,
        )
        .unwrap_err();
        assert_eq!(err.field(), Some("context.timestamp"));
        let body = br#"{"eventId":"1","eventType":"t"}"#;
        let event = BackgroundEvent::read(body).unwrap();
        assert_eq!(event.data::<Value>(body).unwrap_err().field(), Some("data"));
    }
}
