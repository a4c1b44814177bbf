//! Which Lambda event a payload is, told from its discriminating keys alone:
//! one pass over the bytes that builds nothing but those keys' values (and
//! borrows them when it can), so that the event is then read once, straight
//! into its type.

use std::{borrow::Cow, fmt};

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The fields every EventBridge envelope carries; a published payload that
/// merely has a `detail` is not mistaken for one.
const ENVELOPE: [&str; 8] = [
    "id",
    "detail-type",
    "source",
    "account",
    "time",
    "region",
    "resources",
    "detail",
];

/// What an event's discriminating keys say about it.
#[derive(Debug, Default)]
pub(crate) struct Shape<'a> {
    first_record: Record<'a>,
    detail_type: Option<Cow<'a, str>>,
    /// One bit per [`ENVELOPE`] field present, whatever its value.
    envelope: u8,
}

impl<'a> Shape<'a> {
    /// The shape of `event`; an error only when it is not JSON.
    pub(crate) fn of(event: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(event)
    }

    /// Records whose first one comes from SQS.
    pub(crate) fn is_sqs(&self) -> bool {
        self.first_record.event_source.as_deref() == Some("aws:sqs")
    }

    /// Records whose first one comes from S3.
    pub(crate) fn is_s3(&self) -> bool {
        self.first_record.event_source.as_deref() == Some("aws:s3")
    }

    /// Records whose first one comes from SNS (which spells the key in
    /// PascalCase).
    pub(crate) fn is_sns(&self) -> bool {
        self.first_record.event_source_sns.as_deref() == Some("aws:sns")
    }

    /// An EventBridge envelope: every one of its fields is present.
    pub(crate) fn is_eventbridge(&self) -> bool {
        self.envelope == u8::MAX
    }

    /// An EventBridge scheduled event.
    pub(crate) fn is_scheduled(&self) -> bool {
        self.detail_type.as_deref() == Some("Scheduled Event")
    }
}

/// The source keys of a `Records` array's first element.
#[derive(Debug, Default)]
struct Record<'a> {
    event_source: Option<Cow<'a, str>>,
    event_source_sns: Option<Cow<'a, str>>,
}

/// A `Records` array, of which only the first element matters.
#[derive(Default)]
struct Records<'a>(Record<'a>);

/// A string, or `None` when the key holds any other JSON value.
#[derive(Default)]
struct Text<'a>(Option<Cow<'a, str>>);

// A discriminating key holding a value of another type only means the event
// is not of that shape, so every visitor here takes any JSON value: a
// payload fails to probe only when it is not JSON, exactly when reading it
// as a `serde_json::Value` would fail.

macro_rules! skip_scalars {
    () => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
    };
}

macro_rules! skip_strings {
    () => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
    };
}

macro_rules! skip_seqs {
    () => {
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            IgnoredAny.visit_seq(seq).map(|_| Default::default())
        }
    };
}

macro_rules! skip_maps {
    () => {
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            IgnoredAny.visit_map(map).map(|_| Default::default())
        }
    };
}

impl<'de> Deserialize<'de> for Shape<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ShapeVisitor;
        impl<'de> Visitor<'de> for ShapeVisitor {
            type Value = Shape<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Lambda event")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape<'de>, A::Error> {
                let mut shape = Shape::default();
                while let Some(Text(key)) = map.next_key()? {
                    let key = key.unwrap_or_default();
                    if let Some(bit) = ENVELOPE.iter().position(|field| *field == key) {
                        shape.envelope |= 1 << bit;
                    }
                    // A repeated key counts as its last occurrence, as in a
                    // `serde_json::Value`.
                    match &*key {
                        "Records" => shape.first_record = map.next_value::<Records>()?.0,
                        "detail-type" => shape.detail_type = map.next_value::<Text>()?.0,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(shape)
            }
            skip_scalars!();
            skip_strings!();
            skip_seqs!();
        }
        deserializer.deserialize_any(ShapeVisitor)
    }
}

impl<'de> Deserialize<'de> for Records<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RecordsVisitor;
        impl<'de> Visitor<'de> for RecordsVisitor {
            type Value = Records<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of records")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Records<'de>, A::Error> {
                let first = seq.next_element::<Record>()?.unwrap_or_default();
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Records(first))
            }
            skip_scalars!();
            skip_strings!();
            skip_maps!();
        }
        deserializer.deserialize_any(RecordsVisitor)
    }
}

impl<'de> Deserialize<'de> for Record<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RecordVisitor;
        impl<'de> Visitor<'de> for RecordVisitor {
            type Value = Record<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a record")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Record<'de>, A::Error> {
                let mut record = Record::default();
                while let Some(Text(key)) = map.next_key()? {
                    match key.as_deref() {
                        Some("eventSource") => record.event_source = map.next_value::<Text>()?.0,
                        Some("EventSource") => {
                            record.event_source_sns = map.next_value::<Text>()?.0
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(record)
            }
            skip_scalars!();
            skip_strings!();
            skip_seqs!();
        }
        deserializer.deserialize_any(RecordVisitor)
    }
}

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Borrowed(v))))
            }
            // Strings with escapes cannot be borrowed from the input.
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Owned(v.to_owned()))))
            }
            skip_scalars!();
            skip_seqs!();
            skip_maps!();
        }
        deserializer.deserialize_any(TextVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(json: &str) -> Shape<'_> {
        Shape::of(json.as_bytes()).unwrap()
    }

    #[test]
    fn the_first_record_tells_the_source() {
        let sqs =
            shape(r#"{"Records":[{"body":"x","eventSource":"aws:sqs"},{"eventSource":"aws:s3"}]}"#);
        assert!(sqs.is_sqs() && !sqs.is_s3() && !sqs.is_sns());
        assert!(shape(r#"{"Records":[{"eventSource":"aws:s3"}]}"#).is_s3());
        assert!(shape(r#"{"Records":[{"EventSource":"aws:sns"}]}"#).is_sns());
        assert!(shape(r#"{"Records":[{"eventSource":"aws\u003asqs"}]}"#).is_sqs());
        for other in [
            r#"{"Records":[]}"#,
            r#"{"Records":{"eventSource":"aws:sqs"}}"#,
            r#"{"Records":["aws:sqs"]}"#,
            r#"{"Records":[{"eventSource":7}]}"#,
            r#"{"Records":[{"eventSource":"aws:sqs"}],"Records":null}"#,
            r#"[{"Records":[{"eventSource":"aws:sqs"}]}]"#,
            r#""aws:sqs""#,
            "null",
        ] {
            assert!(!shape(other).is_sqs(), "{other}");
        }
    }

    #[test]
    fn an_eventbridge_envelope_needs_every_field() {
        let full = r#"{"id":"1","detail-type":"Scheduled Event","source":"aws.events","account":"1","time":"2015-10-08T16:53:06Z","region":"us-east-1","resources":[],"detail":null}"#;
        let s = shape(full);
        assert!(s.is_eventbridge() && s.is_scheduled());
        let partial = shape(r#"{"detail-type":"Scheduled Event","detail":{}}"#);
        assert!(!partial.is_eventbridge() && partial.is_scheduled());
        assert!(!shape(r#"{"detail-type":{"a":1}}"#).is_scheduled());
    }

    #[test]
    fn only_what_is_not_json_fails() {
        assert!(Shape::of(b"not json").is_err());
        assert!(Shape::of(br#"{"Records":[{"eventSource":"aws:sqs"}]"#).is_err());
        assert!(Shape::of(br#"{"a":1} trailing"#).is_err());
    }
}
