//! CloudEvents 1.0 over HTTP, as Eventarc sends them: the context
//! attributes in `ce-*` headers and the data as the body (binary mode), or
//! everything in one JSON object (structured mode,
//! `Content-Type: application/cloudevents+json`).
//!
//! `cloudevents-sdk` reads the event. What is kept of it is what cloudfn
//! reads: `id`, `source`, `type`, `subject` and `time`. What is added is
//! what the SDK leaves out: errors that name the header or member at fault,
//! and the data read later, typed by what the trigger takes
//! ([`CloudEvent::data`]), so that a decoding error names its path in the
//! body.

use base64::{Engine, prelude::BASE64_STANDARD};
use chrono::{DateTime, Utc};
use cloudevents::{
    AttributesReader, Data, Event, binding::http::to_event, event::SpecVersion, message,
};
use cloudfn_core::Error;
use http::HeaderMap;
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::Value;

use super::header;

/// The media type of a structured-mode CloudEvent.
pub const STRUCTURED: &str = "application/cloudevents+json";

/// The media type of a batch of structured CloudEvents, which no Google
/// sender uses.
const BATCH: &str = "application/cloudevents-batch+json";

/// The headers of the context attributes every binary-mode event carries.
const REQUIRED: [&str; 4] = ["ce-id", "ce-source", "ce-specversion", "ce-type"];

/// How the event came: it decides where its attributes and data are, and
/// so what an error names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Attributes in `ce-*` headers, the data as the body.
    Binary,
    /// One JSON object, the data under `data`.
    Structured,
}

impl Mode {
    /// Where attribute `name` is: a header in binary mode, a key otherwise.
    pub fn attribute(self, name: &str) -> String {
        match self {
            Self::Binary => format!("ce-{name}"),
            Self::Structured => name.to_owned(),
        }
    }

    /// What comes before a path in the data: the data is the body in binary
    /// mode, and under `data` otherwise.
    pub fn data_prefix(self) -> &'static str {
        match self {
            Self::Binary => "",
            Self::Structured => "data.",
        }
    }
}

/// The context attributes of one CloudEvent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudEvent {
    /// Unique per event from one source: the dedupe key.
    pub id: String,
    /// The producer, e.g. `//pubsub.googleapis.com/projects/P/topics/T`.
    pub source: String,
    /// The event type, e.g. `google.cloud.pubsub.topic.v1.messagePublished`.
    pub kind: String,
    /// What in the source the event is about (Storage: `objects/NAME`).
    pub subject: Option<String>,
    /// When it happened, if the producer says.
    pub time: Option<DateTime<Utc>>,
    /// The media type of the data, if given.
    pub data_content_type: Option<String>,
    /// Binary or structured.
    pub mode: Mode,
    /// The data as the SDK read it from a structured event; none in binary
    /// mode, whose data is the body as it came.
    data: Option<Data>,
}

/// The data of a structured event as written under `data`.
#[derive(Deserialize)]
#[serde(bound = "D: DeserializeOwned")]
struct Structured<D> {
    #[serde(default)]
    data: Option<D>,
}

/// Whether the request says its body is a structured CloudEvent; a batch,
/// which cloudfn does not read, is refused here.
pub fn is_structured(headers: &HeaderMap) -> Result<bool, Error> {
    let Some(content_type) = header(headers, "content-type")? else {
        return Ok(false);
    };
    let media = media_type(content_type);
    if media == BATCH {
        return Err(Error::bad_input(
            "a batch of CloudEvents was sent; an event function takes one event a request",
        )
        .with_field("content-type"));
    }
    Ok(media == STRUCTURED)
}

/// The media type of a `Content-Type` value, without parameters, in lower case.
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

impl CloudEvent {
    /// The binary-mode event in `headers`; `None` when no `ce-*` attribute
    /// of the four every event has is there, or when the media type says
    /// structured mode, which wins over `ce-*` headers. One of the four
    /// there and another missing is an error naming the missing header.
    pub fn binary(headers: &HeaderMap) -> Result<Option<Self>, Error> {
        if !REQUIRED.iter().any(|name| headers.contains_key(*name)) || is_structured(headers)? {
            return Ok(None);
        }
        // The SDK takes an event without `ce-specversion` for no event at
        // all ("Wrong encoding"), and names no header it misses.
        if let Some(name) = REQUIRED
            .into_iter()
            .find(|name| !headers.contains_key(*name))
        {
            return Err(Error::bad_input(format!(
                "the CloudEvent has no `{name}` header (binary mode needs ce-id, ce-source, \
                 ce-specversion and ce-type)"
            ))
            .with_field(name));
        }
        // The data stays in the body, where `data` reads it, uncopied.
        let event = to_event(headers, Vec::new()).map_err(|e| match binary_field(headers, &e) {
            Some(field) => Error::bad_input(format!(
                "the CloudEvent's `{field}` header is unreadable: {e}"
            ))
            .with_field(field),
            None => Error::bad_input(format!("the CloudEvent's headers are unreadable: {e}")),
        })?;
        Self::read(event, Mode::Binary).map(Some)
    }

    /// The structured-mode event in `body`, its attributes checked.
    pub fn structured(body: &[u8]) -> Result<Self, Error> {
        let event: Event = serde_json::from_slice(body).map_err(|e| match culprit(body) {
            Some(member) => Error::bad_input(format!(
                "the structured CloudEvent is unreadable at `{member}`: {e}"
            ))
            .with_field(member),
            None => Error::bad_input(format!("the structured CloudEvent is unreadable: {e}")),
        })?;
        Self::read(event, Mode::Structured)
    }

    /// The event the SDK read, checked for what the SDK lets by.
    fn read(mut event: Event, mode: Mode) -> Result<Self, Error> {
        // CloudEvents 1.0 is the only version Google sends and the only one
        // read; the SDK also reads 0.3.
        if event.specversion() != SpecVersion::V10 {
            return Err(Error::bad_input(format!(
                "the CloudEvent is of spec version {}; cloudfn reads 1.0",
                event.specversion()
            ))
            .with_field(mode.attribute("specversion")));
        }
        // The spec wants them non-empty; the SDK takes "".
        for (name, value) in [
            ("id", event.id()),
            ("source", event.source()),
            ("type", event.ty()),
        ] {
            if value.is_empty() {
                let field = mode.attribute(name);
                return Err(
                    Error::bad_input(format!("the CloudEvent's `{field}` is empty"))
                        .with_field(field),
                );
            }
        }
        let (data_content_type, _, data) = event.take_data();
        Ok(Self {
            id: event.id().to_owned(),
            source: event.source().clone(),
            kind: event.ty().to_owned(),
            subject: event.subject().map(str::to_owned),
            time: event.time().copied(),
            data_content_type,
            mode,
            data,
        })
    }

    /// The field an error about attribute `name` names.
    pub fn attribute(&self, name: &str) -> String {
        self.mode.attribute(name)
    }

    /// The event's data, read from `body` (the request's) as `D`. Data that
    /// is missing, not JSON (Eventarc may be set to send protobuf), or not
    /// a `D` is an error naming its path in the body.
    pub fn data<D: DeserializeOwned>(&self, body: &[u8]) -> Result<D, Error> {
        if let Some(media) = self.data_content_type.as_deref().map(media_type)
            && !is_json(&media)
        {
            return Err(Error::bad_input(format!(
                "the CloudEvent's data is `{media}`; cloudfn reads JSON data (create the \
                 Eventarc trigger with --event-data-content-type=application/json)"
            ))
            .with_field(match self.mode {
                Mode::Binary => "content-type",
                Mode::Structured => "datacontenttype",
            }));
        }
        let missing = || {
            Error::bad_input(format!("the CloudEvent {} carries no data", self.id))
                .with_field("data")
        };
        match self.mode {
            Mode::Binary if body.iter().all(u8::is_ascii_whitespace) => Err(missing()),
            Mode::Binary => Error::decode_json(body),
            Mode::Structured => {
                // Read from the body again rather than from the SDK's
                // `Value`, which has lost the path an error names.
                let event: Structured<D> = Error::decode_json(body)?;
                let decoded = match (event.data, &self.data) {
                    (Some(data), _) => return Ok(data),
                    (None, None | Some(Data::Json(Value::Null))) => return Err(missing()),
                    // What the SDK decoded from `data_base64`.
                    (None, Some(Data::Json(value))) => D::deserialize(value),
                    (None, Some(Data::Binary(bytes))) => serde_json::from_slice(bytes),
                    (None, Some(Data::String(text))) => serde_json::from_str(text),
                };
                decoded.map_err(|e| {
                    Error::bad_input(format!("`data_base64` holds no event data: {e}"))
                        .with_field("data_base64")
                })
            }
        }
    }
}

/// Whether a media type is JSON (`application/json`, `text/json`, `…+json`).
fn is_json(media: &str) -> bool {
    media == "application/json" || media == "text/json" || media.ends_with("+json")
}

/// The header a binary-mode SDK error is about, when the error tells.
fn binary_field(headers: &HeaderMap, error: &message::Error) -> Option<String> {
    let attribute = match error {
        message::Error::UnknownSpecVersion { .. } => "specversion",
        message::Error::ParseTimeError { .. } => "time",
        message::Error::ParseUrlError { .. } => "dataschema",
        // A value that is not text, which the SDK does not name.
        message::Error::Other { .. } => {
            return headers
                .iter()
                .find(|(_, value)| value.to_str().is_err())
                .map(|(name, _)| name.to_string());
        }
        _ => return None,
    };
    Some(format!("ce-{attribute}"))
}

/// The member a structured event's SDK error is about. The SDK reads
/// members through `serde::de::Error::custom`, which keeps no name, so they
/// are looked at again, in the SDK's order, and the first it could not take
/// is named.
fn culprit(body: &[u8]) -> Option<&'static str> {
    let event: serde_json::Map<String, Value> = serde_json::from_slice(body).ok()?;
    let readable = |name: &str| match event.get(name) {
        None | Some(Value::Null) => !matches!(name, "specversion" | "id" | "type" | "source"),
        Some(Value::String(text)) => match name {
            "specversion" => SpecVersion::try_from(text.as_str()).is_ok(),
            "time" => DateTime::parse_from_rfc3339(text).is_ok(),
            "data_base64" => BASE64_STANDARD.decode(text).is_ok(),
            _ => true,
        },
        Some(_) => false,
    };
    [
        "specversion",
        "id",
        "type",
        "source",
        "datacontenttype",
        "dataschema",
        "subject",
        "time",
        "data_base64",
    ]
    .into_iter()
    .find(|name| !readable(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudfn_core::ErrorKind;
    use http::HeaderValue;
    use serde_json::Value;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    /// The headers Eventarc sends for a Pub/Sub event, as its documentation
    /// shows them (cloudfn's own values).
    fn eventarc() -> Vec<(&'static str, &'static str)> {
        vec![
            ("ce-id", "11482203927461"),
            (
                "ce-source",
                "//pubsub.googleapis.com/projects/shop-dev/topics/orders",
            ),
            ("ce-specversion", "1.0"),
            ("ce-type", "google.cloud.pubsub.topic.v1.messagePublished"),
            ("ce-time", "2026-03-14T09:26:53.589Z"),
            ("content-type", "application/json"),
        ]
    }

    #[test]
    fn binary_mode_reads_the_headers() {
        let event = CloudEvent::binary(&headers(&eventarc())).unwrap().unwrap();
        assert_eq!(event.id, "11482203927461");
        assert_eq!(event.kind, "google.cloud.pubsub.topic.v1.messagePublished");
        assert_eq!(
            event.time.unwrap().to_rfc3339(),
            "2026-03-14T09:26:53.589+00:00"
        );
        assert_eq!(event.mode, Mode::Binary);
        let data: Value = event.data(br#"{"message": {}}"#).unwrap();
        assert_eq!(data["message"], serde_json::json!({}));
        assert!(CloudEvent::binary(&HeaderMap::new()).unwrap().is_none());
    }

    #[test]
    fn binary_mode_without_ce_id_names_it() {
        let mut pairs = eventarc();
        pairs.retain(|(name, _)| *name != "ce-id");
        let err = CloudEvent::binary(&headers(&pairs)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadInput);
        assert_eq!(err.field(), Some("ce-id"));
        assert!(err.message().contains("ce-id"), "{err}");
    }

    #[test]
    fn a_bad_time_or_version_is_named() {
        let mut pairs = eventarc();
        pairs.push(("ce-time", "yesterday"));
        let err = CloudEvent::binary(&headers(&pairs)).unwrap_err();
        assert_eq!(err.field(), Some("ce-time"));
        let mut pairs = eventarc();
        pairs.push(("ce-specversion", "0.3"));
        let err = CloudEvent::binary(&headers(&pairs)).unwrap_err();
        assert_eq!(err.field(), Some("ce-specversion"));
    }

    #[test]
    fn protobuf_data_is_refused_with_the_fix() {
        let mut pairs = eventarc();
        pairs.push(("content-type", "application/protobuf"));
        let event = CloudEvent::binary(&headers(&pairs)).unwrap().unwrap();
        let err = event.data::<Value>(b"\x0a\x02").unwrap_err();
        assert_eq!(err.field(), Some("content-type"));
        assert!(err.message().contains("--event-data-content-type"), "{err}");
        let event = CloudEvent::binary(&headers(&eventarc())).unwrap().unwrap();
        assert_eq!(event.data::<Value>(b" ").unwrap_err().field(), Some("data"));
    }

    #[test]
    fn structured_mode_reads_the_object() {
        let body = include_str!("fixtures/storage-cloudevent.json").as_bytes();
        let event = CloudEvent::structured(body).unwrap();
        assert_eq!(event.kind, "google.cloud.storage.object.v1.finalized");
        assert_eq!(
            event.subject.as_deref(),
            Some("objects/invoices/2026/o-1.pdf")
        );
        assert_eq!(event.mode, Mode::Structured);
        let data: Value = event.data(body).unwrap();
        assert_eq!(data["bucket"], "shop-uploads");
        assert!(
            is_structured(&headers(&[(
                "content-type",
                "application/cloudevents+json; charset=UTF-8"
            )]))
            .unwrap()
        );
        let batch = headers(&[("content-type", "application/cloudevents-batch+json")]);
        assert!(is_structured(&batch).is_err());
    }

    #[test]
    fn structured_mode_names_what_is_missing() {
        let err = CloudEvent::structured(br#"{"specversion":"1.0","source":"s","type":"t"}"#)
            .unwrap_err();
        assert_eq!(err.field(), Some("id"));
        let err = CloudEvent::structured(br#"{"specversion":"1.0","id":7}"#).unwrap_err();
        assert_eq!(err.field(), Some("id"));
        let event =
            CloudEvent::structured(br#"{"specversion":"1.0","id":"1","source":"s","type":"t"}"#)
                .unwrap();
        let err = event
            .data::<Value>(br#"{"specversion":"1.0","id":"1","source":"s","type":"t"}"#)
            .unwrap_err();
        assert_eq!(err.field(), Some("data"));
    }

    #[test]
    fn what_the_sdk_refuses_is_named() {
        let event = |members: &str| {
            CloudEvent::structured(
                format!(r#"{{"specversion":"1.0","id":"1","source":"s","type":"t"{members}}}"#)
                    .as_bytes(),
            )
        };
        assert_eq!(
            event(r#","time":"yesterday""#).unwrap_err().field(),
            Some("time")
        );
        assert_eq!(
            event(r#","data_base64":"%%""#).unwrap_err().field(),
            Some("data_base64")
        );
        let err =
            CloudEvent::structured(br#"{"specversion":"2.0","id":"1","source":"s","type":"t"}"#)
                .unwrap_err();
        assert_eq!(err.field(), Some("specversion"));
        let mut pairs = eventarc();
        pairs.push(("ce-id", ""));
        let err = CloudEvent::binary(&headers(&pairs)).unwrap_err();
        assert_eq!(err.field(), Some("ce-id"));
        pairs.push(("ce-specversion", "2.0"));
        let err = CloudEvent::binary(&headers(&pairs)).unwrap_err();
        assert_eq!(err.field(), Some("ce-specversion"));
        // The media type says structured mode, whatever the headers.
        pairs.push(("content-type", STRUCTURED));
        assert!(CloudEvent::binary(&headers(&pairs)).unwrap().is_none());
    }

    #[test]
    fn structured_data_may_come_in_base64() {
        let body = br#"{"specversion":"1.0","id":"1","source":"s","type":"t","data_base64":"eyJhIjoxfQ=="}"#;
        let event = CloudEvent::structured(body).unwrap();
        let data: Value = event.data(body).unwrap();
        assert_eq!(data["a"], 1);
    }
}
