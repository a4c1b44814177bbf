//! HTTP requests and responses, as every provider hands them to a handler.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header::CONTENT_TYPE};
use serde::{Serialize, de::DeserializeOwned};

use crate::Error;

/// An HTTP request, already routed: `path_params` holds the route's `{name}`s.
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    /// The method.
    pub method: http::Method,
    /// The path as the client sent it, without the query string.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: Option<String>,
    /// The headers; multi-valued headers keep every value.
    pub headers: HeaderMap,
    /// Values of the route's `{name}` segments.
    pub path_params: BTreeMap<String, String>,
    /// The body, whole.
    pub body: Bytes,
}

impl HttpRequest {
    /// A request for `method` and a path that may carry a query string.
    pub fn new(method: http::Method, path_and_query: &str) -> Self {
        let (path, query) = match path_and_query.split_once('?') {
            Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
            None => (path_and_query.to_owned(), None),
        };
        Self {
            method,
            path,
            query,
            ..Self::default()
        }
    }

    /// A request from `http` parts and its whole body, not yet routed.
    pub fn from_parts(parts: http::request::Parts, body: Bytes) -> Self {
        Self {
            method: parts.method,
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers: parts.headers,
            path_params: BTreeMap::new(),
            body,
        }
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Adds a header; invalid names or values are ignored.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            self.headers.append(name, value);
        }
        self
    }

    /// The first value of header `name`, if it is valid text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// The decoded query parameters, in order, repeated names included.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.query
            .as_deref()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default()
    }

    /// The first decoded value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find_map(|(k, v)| (k == name).then_some(v))
    }

    /// The value of route parameter `name`; a route without it is a bug in the
    /// app, reported as an internal error rather than a panic.
    pub fn path_param(&self, name: &str) -> Result<&str, Error> {
        self.path_params
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| Error::internal(format!("route has no parameter `{name}`")))
    }

    /// The body read as JSON into `T`; failures are 400s naming the field.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        Error::decode_json(&self.body)
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str, Error> {
        std::str::from_utf8(&self.body)
            .map_err(|e| Error::bad_input(format!("body is not UTF-8: {e}")))
    }
}

/// An HTTP response.
///
/// ```
/// use cloudfn_core::HttpResponse;
///
/// let res = HttpResponse::json(202, &serde_json::json!({"id": "o-1"}));
/// assert_eq!(res.status, 202);
/// assert_eq!(res.headers["content-type"], "application/json");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    /// The status code.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl HttpResponse {
    /// An empty response with `status`; an invalid status becomes 500.
    pub fn new(status: u16) -> Self {
        Self {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    /// A JSON response. A value that cannot be serialised (a map with
    /// non-string keys) is a bug in the handler and answers 500.
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Self::new(status)
                .with_header(CONTENT_TYPE.as_str(), "application/json")
                .with_body(body),
            Err(e) => Self::from_error(&Error::internal(format!("response is not JSON: {e}"))),
        }
    }

    /// A plain-text response.
    pub fn text(status: u16, text: impl Into<String>) -> Self {
        Self::new(status)
            .with_header(CONTENT_TYPE.as_str(), "text/plain; charset=utf-8")
            .with_body(text.into())
    }

    /// The response an HTTP caller sees for `error`: its kind's status and a
    /// JSON body naming the kind, the message and the field.
    pub fn from_error(error: &Error) -> Self {
        Self::json(error.kind().http_status(), &error.to_json())
    }

    /// Adds a header; invalid names or values are ignored.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            self.headers.append(name, value);
        }
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// The response as an `http::Response`, for servers.
    pub fn into_http(self) -> http::Response<Bytes> {
        let mut response = http::Response::new(self.body);
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_split_and_decoded() {
        let req = HttpRequest::new(http::Method::GET, "/search?q=red%20shoes&tag=a&tag=b");
        assert_eq!(req.path, "/search");
        assert_eq!(req.query_param("q").as_deref(), Some("red shoes"));
        assert_eq!(req.query_pairs().len(), 3);
        assert_eq!(req.query_param("missing"), None);
    }

    #[test]
    fn error_response_has_status_and_json_body() {
        let res = HttpResponse::from_error(&Error::bad_input("bad qty").with_field("items[0].qty"));
        assert_eq!(res.status, 400);
        let body: serde_json::Value = serde_json::from_slice(&res.body).unwrap();
        assert_eq!(body["error"]["field"], "items[0].qty");
    }
}
