//! The custom-handler payloads of each trigger, read into neutral events and
//! written back: one file per trigger, pure, no I/O.
//!
//! The Functions host POSTs `{"Data": {<binding>: …}, "Metadata": {…}}` to
//! `/<function>` and reads back `{"Outputs": {…}, "Logs": […],
//! "ReturnValue": …}`. The binding names are fixed ([`binding`]): the
//! `function.json` files cloudfn renders use the same ones.

pub mod http;
pub mod queue;
pub mod schedule;
pub mod storage;
pub mod topic;

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Map, Value, value::RawValue};

use cloudfn_core::Error;

/// The binding names in every `function.json` cloudfn renders, and so in
/// every payload its handler reads.
pub mod binding {
    /// The HTTP trigger's request.
    pub const REQUEST: &str = "req";
    /// The HTTP output binding the response goes to. A named output, not
    /// `$return`: the host would try to read a `$return` string as base64.
    pub const RESPONSE: &str = "res";
    /// The queue or Service Bus trigger's message.
    pub const MESSAGE: &str = "message";
    /// The timer trigger's tick.
    pub const TIMER: &str = "timer";
    /// The blob trigger's blob.
    pub const BLOB: &str = "blob";
    /// The Event Grid trigger's event.
    pub const EVENT: &str = "event";
}

/// What the host POSTs to `/<function>`. Each value is kept as the JSON
/// text it came as and read only when asked for, straight into the type
/// wanted: an HTTP invocation carries headers and query twice over, which
/// nobody reads.
#[derive(Debug, Default, Deserialize)]
pub struct InvocationRequest {
    /// The trigger's and input bindings' values, by binding name.
    #[serde(rename = "Data", default)]
    data: HashMap<String, Box<RawValue>>,
    /// The trigger's metadata (`DequeueCount`, `sys`, …).
    #[serde(rename = "Metadata", default)]
    metadata: HashMap<String, Box<RawValue>>,
}

impl InvocationRequest {
    /// Reads the payload; what is not a payload is a bad-input error saying
    /// what was expected.
    pub fn from_slice(payload: &[u8]) -> Result<Self, Error> {
        serde_json::from_slice(payload).map_err(|e| {
            Error::bad_input(format!(
                "the invocation is not a custom-handler payload ({{\"Data\": …, \"Metadata\": …}}): {e}"
            ))
        })
    }

    /// Whether binding `name` is there.
    pub fn has_binding(&self, name: &str) -> bool {
        self.data.contains_key(name)
    }

    /// Binding `name` read as `T`; an error naming the binding when it is
    /// missing or is no `T` (saying `what` it should be).
    pub fn binding<T: DeserializeOwned>(&self, name: &str, what: &str) -> Result<T, Error> {
        let field = || format!("Data.{name}");
        let raw = self.data.get(name).ok_or_else(|| {
            let mut present: Vec<&String> = self.data.keys().collect();
            present.sort();
            Error::bad_input(format!(
                "the invocation has no `Data.{name}` binding (it has {present:?})"
            ))
            .with_field(field())
        })?;
        serde_json::from_str(raw.get()).map_err(|e| {
            Error::bad_input(format!("the `{name}` binding is not {what}: {e}")).with_field(field())
        })
    }

    /// Metadata `name` as a JSON value, if present.
    pub fn metadata(&self, name: &str) -> Option<Value> {
        self.metadata
            .get(name)
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
    }

    /// Metadata `name` as text, if present.
    pub fn text(&self, name: &str) -> Option<String> {
        self.metadata(name).as_ref().and_then(text)
    }

    /// Metadata `name` as a count, if present and a count.
    pub fn count(&self, name: &str) -> Option<u32> {
        self.text(name).and_then(|t| t.parse().ok())
    }
}

/// What the handler answers the host: always 200 with this body, so that
/// the host takes the outputs; a failed invocation answers 500 and its
/// error in `Logs`.
#[derive(Debug, Default, Serialize)]
pub struct InvocationResponse {
    /// Output binding values, by binding name, each serialised once when
    /// it is set.
    #[serde(rename = "Outputs")]
    pub outputs: BTreeMap<String, Box<RawValue>>,
    /// Lines for the invocation's log.
    #[serde(rename = "Logs")]
    pub logs: Vec<String>,
    /// The `$return` binding's value; cloudfn binds no `$return`.
    #[serde(rename = "ReturnValue")]
    pub return_value: Value,
}

/// A metadata or binding value as text. The host serialises trigger
/// metadata once more than the bindings' own types would (a count arrives
/// as `"1"`, a string as `"\"abc\""`), so a string holding a JSON string is
/// unwrapped once.
pub(crate) fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::String(inner)) => Some(inner),
            _ => Some(s.clone()),
        },
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// The bytes of a trigger binding declared `"dataType": "binary"` (as
/// cloudfn's `function.json` declares queue and Service Bus triggers, so
/// that the host neither re-encodes the text nor copies a JSON message's
/// fields over the metadata): one base64 string. A binding declared
/// otherwise arrives as a JSON string holding the text's JSON literal, and
/// is unwrapped once.
pub(crate) fn bytes(value: &Value) -> Option<Vec<u8>> {
    use base64::{Engine, engine::general_purpose::STANDARD};
    match value {
        Value::String(s) if s.starts_with('"') => text(value).map(String::into_bytes),
        Value::String(s) => Some(
            STANDARD
                .decode(s)
                .unwrap_or_else(|_| s.clone().into_bytes()),
        ),
        Value::Null => None,
        other => Some(other.to_string().into_bytes()),
    }
}

/// A time as the host writes it: with an offset (`DateTimeOffset`), or
/// without (`DateTime`, in UTC).
pub(crate) fn time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::{DateTime, NaiveDateTime, Utc};
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc())
        })
}

/// Metadata that is itself a JSON object (properties, application
/// properties): embedded, or serialised into a string.
pub(crate) fn object(value: &Value) -> Option<Map<String, Value>> {
    match value {
        Value::Object(map) => Some(map.clone()),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(map)) => Some(map),
            Ok(Value::String(inner)) => match serde_json::from_str::<Value>(&inner) {
                Ok(Value::Object(map)) => Some(map),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
impl InvocationRequest {
    /// The request a JSON value holds, for tests.
    pub(crate) fn of(value: Value) -> Self {
        Self::from_slice(value.to_string().as_bytes()).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metadata_reads_once_or_twice_encoded_values() {
        assert_eq!(text(&json!("\"abc\"")).as_deref(), Some("abc"));
        assert_eq!(text(&json!("abc")).as_deref(), Some("abc"));
        assert_eq!(text(&json!(3)).as_deref(), Some("3"));
        assert_eq!(text(&json!("3")).as_deref(), Some("3"));
        assert_eq!(text(&Value::Null), None);
        assert_eq!(bytes(&json!("eyJpZCI6IjEifQ==")).unwrap(), br#"{"id":"1"}"#);
        assert_eq!(
            bytes(&json!("\"{\\\"id\\\":\\\"1\\\"}\"")).unwrap(),
            br#"{"id":"1"}"#
        );
        assert_eq!(
            time("2026-11-27T10:00:00").unwrap().to_rfc3339(),
            "2026-11-27T10:00:00+00:00"
        );
        assert_eq!(
            time("2026-11-27T11:00:00+01:00").unwrap().to_rfc3339(),
            "2026-11-27T10:00:00+00:00"
        );
        let props = json!("{\"a\":1}");
        assert_eq!(object(&props).unwrap()["a"], 1);
    }

    #[test]
    fn a_payload_without_the_binding_names_it() {
        let request = InvocationRequest::from_slice(br#"{"Data":{"x":1},"Metadata":{}}"#).unwrap();
        let error = request
            .binding::<Value>("message", "a message")
            .unwrap_err();
        assert_eq!(error.field(), Some("Data.message"));
        let error = InvocationRequest::from_slice(b"[1]").unwrap_err();
        assert!(
            error.message().contains("custom-handler payload"),
            "{error}"
        );
    }
}
