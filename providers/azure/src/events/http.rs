//! The HTTP trigger in the host's wrapped form: the request in the `req`
//! binding (`Url`, `Method`, `Query`, `Headers`, `Params`, `Body`), the
//! response in the `res` output (`statusCode`, `headers`, `body`).
//!
//! Apps whose functions are all HTTP have their requests forwarded as they
//! are instead (`enableForwardingHttpRequest`), and never come here.

use std::collections::BTreeMap;

use base64::{Engine, engine::general_purpose::STANDARD};
use bytes::Bytes;
use cloudfn_core::{Error, HttpRequest, HttpResponse, event::mark_sensitive};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{InvocationRequest, binding};

/// The `req` binding as the host sends it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostRequest {
    /// The whole URL the client called, query included.
    pub url: String,
    /// The method.
    pub method: String,
    /// Header values by name, each a list (or a single string).
    #[serde(default)]
    pub headers: BTreeMap<String, OneOrMany>,
    /// The body as text; absent when there is none.
    #[serde(default)]
    pub body: Option<Value>,
}

/// A header's values: the host sends lists, older hosts a single string.
#[derive(Debug)]
pub enum OneOrMany {
    /// One value.
    One(String),
    /// Every value, in order.
    Many(Vec<String>),
}

/// Read by hand: serde's untagged enums buffer every value first, which
/// costs more than the rest of the request.
impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Values;
        impl<'de> serde::de::Visitor<'de> for Values {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a header value or a list of them")
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(value.to_owned()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<OneOrMany, A::Error> {
                let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(1));
                while let Some(value) = seq.next_element()? {
                    values.push(value);
                }
                Ok(OneOrMany::Many(values))
            }
        }
        deserializer.deserialize_any(Values)
    }
}

/// The `res` output.
#[derive(Debug, Serialize)]
pub struct HostResponse {
    /// The status code, as a string: the host reads it into a string.
    #[serde(rename = "statusCode")]
    pub status_code: String,
    /// Headers; repeated ones joined with `, ` (the host takes one value per name).
    pub headers: BTreeMap<String, String>,
    /// The body as text.
    pub body: String,
}

/// Reads the `req` binding into a request (not yet routed). A binding that
/// is not a request is a bad-input error naming what is wrong.
pub fn decode(request: &InvocationRequest) -> Result<HttpRequest, Error> {
    let host: HostRequest = request.binding(binding::REQUEST, "an HTTP request")?;
    let method = http::Method::from_bytes(host.method.as_bytes()).map_err(|_| {
        Error::bad_input(format!("`{}` is no HTTP method", host.method))
            .with_field("Data.req.Method")
    })?;
    let url: http::Uri = host.url.parse().map_err(|e| {
        Error::bad_input(format!("`{}` is no URL: {e}", host.url)).with_field("Data.req.Url")
    })?;
    let mut request = HttpRequest::new(method, url.path());
    request.query = url.query().map(str::to_owned);
    request.headers = headers(&host.headers);
    request.body = match host.body {
        None | Some(Value::Null) => Bytes::new(),
        // The host reads octet-stream and multipart bodies as bytes (sent
        // in base64), every other body as text.
        Some(Value::String(text)) if is_binary(&request) => {
            STANDARD.decode(&text).map(Bytes::from).map_err(|e| {
                Error::bad_input(format!("the binary body is not base64: {e}"))
                    .with_field("Data.req.Body")
            })?
        }
        Some(Value::String(text)) => Bytes::from(text),
        // A JSON body the host parsed on the way: written back as JSON.
        Some(other) => Bytes::from(other.to_string()),
    };
    Ok(request)
}

fn is_binary(request: &HttpRequest) -> bool {
    request.header("content-type").is_some_and(|t| {
        let t = t.trim_start().to_ascii_lowercase();
        t.starts_with("application/octet-stream") || t.starts_with("multipart/")
    })
}

fn headers(host: &BTreeMap<String, OneOrMany>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, values) in host {
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        let values = match values {
            OneOrMany::One(value) => std::slice::from_ref(value),
            OneOrMany::Many(values) => values.as_slice(),
        };
        for value in values {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.append(name.clone(), value);
            }
        }
    }
    mark_sensitive(&mut headers);
    headers
}

/// The `res` output for `response`. The host carries text bodies only: a
/// body that is not UTF-8 is sent with its invalid bytes replaced, and a
/// warning says so.
pub fn encode(response: HttpResponse) -> HostResponse {
    let mut headers = BTreeMap::<String, String>::new();
    for (name, value) in &response.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    let body = match String::from_utf8(response.body.to_vec()) {
        Ok(body) => body,
        Err(e) => {
            tracing::warn!(
                "the response body is not UTF-8 and the host carries text only: invalid bytes replaced"
            );
            String::from_utf8_lossy(e.as_bytes()).into_owned()
        }
    };
    HostResponse {
        status_code: response.status.as_u16().to_string(),
        headers,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn invocation(req: Value) -> InvocationRequest {
        InvocationRequest::of(json!({"Data": {"req": req}, "Metadata": {}}))
    }

    fn binding() -> Value {
        json!({
            "Url": "https://shop.azurewebsites.net/orders/o%2D1?verbose=1&x=a%20b",
            "Method": "POST",
            "Query": {"verbose": "1", "x": "a b"},
            "Headers": {
                "Content-Type": ["application/json"],
                "Authorization": ["Bearer secret"],
                "X-Many": ["a", "b"]
            },
            "Params": {"id": "o-1"},
            "Identities": [],
            "Body": "{\"qty\":2}"
        })
    }

    #[test]
    fn the_request_binding_reads_into_a_request() {
        let request = decode(&invocation(binding())).unwrap();
        assert_eq!(request.method, http::Method::POST);
        assert_eq!(request.path, "/orders/o%2D1");
        assert_eq!(request.query.as_deref(), Some("verbose=1&x=a%20b"));
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.headers.get_all("x-many").iter().count(), 2);
        assert!(request.headers["authorization"].is_sensitive());
        assert_eq!(&request.body[..], br#"{"qty":2}"#);
    }

    #[test]
    fn bodies_read_as_text_json_or_bytes() {
        let mut binding = binding();
        binding["Body"] = json!({"qty": 2});
        assert_eq!(
            &decode(&invocation(binding.clone())).unwrap().body[..],
            br#"{"qty":2}"#
        );
        binding["Body"] = Value::Null;
        assert!(
            decode(&invocation(binding.clone()))
                .unwrap()
                .body
                .is_empty()
        );
        binding["Headers"]["Content-Type"] = json!(["application/octet-stream"]);
        binding["Body"] = json!("/wBh");
        assert_eq!(
            &decode(&invocation(binding.clone())).unwrap().body[..],
            &[0xff, 0x00, b'a']
        );
    }

    #[test]
    fn a_bad_binding_names_the_field() {
        let mut binding = binding();
        binding["Method"] = json!("NOT A METHOD");
        assert_eq!(
            decode(&invocation(binding)).unwrap_err().field(),
            Some("Data.req.Method")
        );
        let error = decode(&invocation(json!({"Method": "GET"}))).unwrap_err();
        assert_eq!(error.field(), Some("Data.req"));
        assert!(error.message().contains("Url"), "{error}");
    }

    #[test]
    fn the_response_goes_back_as_the_res_output() {
        let response = HttpResponse::json(201, &json!({"id": "o-1"}))
            .with_header("set-cookie", "a=1")
            .with_header("set-cookie", "b=2");
        let out = serde_json::to_value(encode(response)).unwrap();
        assert_eq!(out["statusCode"], "201");
        assert_eq!(out["headers"]["content-type"], "application/json");
        assert_eq!(out["headers"]["set-cookie"], "a=1, b=2");
        assert_eq!(out["body"], "{\"id\":\"o-1\"}");
    }
}
