//! CloudEvents 1.0 over HTTP, as Eventarc sends them: the context
//! attributes in `ce-*` headers and the data as the body (binary mode), or
//! everything in one JSON object (structured mode,
//! `Content-Type: application/cloudevents+json`).
//!
//! Only what cloudfn reads is kept: `id`, `source`, `type`, `subject` and
//! `time`. The data is read later, typed by what the trigger takes, from
//! the body still at hand ([`CloudEvent::data`]), so that a decoding error
//! names its path in the body.

use chrono::{DateTime, Utc};
use cloudfn_core::Error;
use http::HeaderMap;
use serde::{Deserialize, de::DeserializeOwned};

use super::{header, rfc3339};

/// The media type of a structured-mode CloudEvent.
pub const STRUCTURED: &str = "application/cloudevents+json";

/// The media type of a batch of structured CloudEvents, which no Google
/// sender uses.
const BATCH: &str = "application/cloudevents-batch+json";

/// The context attributes every binary-mode event carries in headers.
const REQUIRED: [&str; 4] = ["id", "source", "specversion", "type"];

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
}

/// The attributes of a structured event, as sent; checked in
/// [`CloudEvent::structured`] so that a missing one is named.
#[derive(Deserialize)]
struct Attributes {
    #[serde(default)]
    specversion: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    time: Option<String>,
    #[serde(default)]
    datacontenttype: Option<String>,
}

/// The data of a structured event: JSON under `data`, or bytes in base64
/// under `data_base64`.
#[derive(Deserialize)]
#[serde(bound = "D: DeserializeOwned")]
struct Structured<D> {
    #[serde(default)]
    data: Option<D>,
    #[serde(default)]
    data_base64: Option<String>,
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
    /// of the four every event has is there. One of them there and another
    /// missing is an error naming the missing header.
    pub fn binary(headers: &HeaderMap) -> Result<Option<Self>, Error> {
        let mut values = [None; 4];
        for (value, name) in values.iter_mut().zip(REQUIRED) {
            *value = header(headers, &format!("ce-{name}"))?;
        }
        if values.iter().all(Option::is_none) {
            return Ok(None);
        }
        let [id, source, specversion, kind] = values;
        let need = |value: Option<&str>, name: &str| {
            value
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| {
                    Error::bad_input(format!(
                        "the CloudEvent has no `ce-{name}` header (binary mode needs ce-id, \
                         ce-source, ce-specversion and ce-type)"
                    ))
                    .with_field(format!("ce-{name}"))
                })
        };
        let event = Self {
            id: need(id, "id")?,
            source: need(source, "source")?,
            kind: need(kind, "type")?,
            subject: header(headers, "ce-subject")?.map(str::to_owned),
            time: header(headers, "ce-time")?
                .map(|t| rfc3339(t, "ce-time"))
                .transpose()?,
            data_content_type: header(headers, "content-type")?.map(str::to_owned),
            mode: Mode::Binary,
        };
        spec_version(&need(specversion, "specversion")?, Mode::Binary)?;
        Ok(Some(event))
    }

    /// The structured-mode event in `body`, its attributes checked.
    pub fn structured(body: &[u8]) -> Result<Self, Error> {
        let attributes: Attributes = Error::decode_json(body).map_err(|e| {
            let err = Error::bad_input(format!(
                "the structured CloudEvent is unreadable: {}",
                e.message()
            ));
            match e.field() {
                Some(field) => err.with_field(field),
                None => err,
            }
        })?;
        let need = |value: Option<String>, name: &str| {
            value.filter(|v| !v.is_empty()).ok_or_else(|| {
                Error::bad_input(format!("the structured CloudEvent has no `{name}`"))
                    .with_field(name)
            })
        };
        spec_version(
            &need(attributes.specversion, "specversion")?,
            Mode::Structured,
        )?;
        Ok(Self {
            id: need(attributes.id, "id")?,
            source: need(attributes.source, "source")?,
            kind: need(attributes.kind, "type")?,
            subject: attributes.subject,
            time: attributes.time.map(|t| rfc3339(&t, "time")).transpose()?,
            data_content_type: attributes.datacontenttype,
            mode: Mode::Structured,
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
                let event: Structured<D> = Error::decode_json(body)?;
                match (event.data, event.data_base64) {
                    (Some(data), _) => Ok(data),
                    (None, Some(encoded)) => {
                        let bytes = super::base64(&encoded).map_err(|e| {
                            Error::bad_input(format!("`data_base64` is not base64: {e}"))
                                .with_field("data_base64")
                        })?;
                        Error::decode_json(&bytes).map_err(|e| {
                            Error::bad_input(format!(
                                "`data_base64` holds no event data: {}",
                                e.message()
                            ))
                            .with_field("data_base64")
                        })
                    }
                    (None, None) => Err(missing()),
                }
            }
        }
    }
}

/// Whether a media type is JSON (`application/json`, `text/json`, `…+json`).
fn is_json(media: &str) -> bool {
    media == "application/json" || media == "text/json" || media.ends_with("+json")
}

/// CloudEvents 1.0 is the only version Google sends and the only one read.
fn spec_version(version: &str, mode: Mode) -> Result<(), Error> {
    if version == "1.0" {
        Ok(())
    } else {
        Err(Error::bad_input(format!(
            "the CloudEvent is of spec version {version:?}; cloudfn reads 1.0"
        ))
        .with_field(mode.attribute("specversion")))
    }
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
    fn structured_data_may_come_in_base64() {
        let body = br#"{"specversion":"1.0","id":"1","source":"s","type":"t","data_base64":"eyJhIjoxfQ=="}"#;
        let event = CloudEvent::structured(body).unwrap();
        let data: Value = event.data(body).unwrap();
        assert_eq!(data["a"], 1);
    }
}
