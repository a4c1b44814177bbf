//! HTTP requests and responses, as every provider hands them to a handler.

use std::{collections::BTreeMap, fmt};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header::CONTENT_TYPE};
use serde::{Serialize, de::DeserializeOwned};

use super::redact::{Body, Headers, is_sensitive, mark_sensitive};
use crate::{Error, ErrorKind};

/// An HTTP request, already routed: `path_params` holds the route's `{name}`s.
///
/// Its `Debug` leaves out the body and the values of
/// [`super::SENSITIVE_HEADERS`].
#[derive(Clone, Default)]
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

    /// A request from `http` parts and its whole body, not yet routed; the
    /// values of [`super::SENSITIVE_HEADERS`] are marked sensitive.
    pub fn from_parts(parts: http::request::Parts, body: Bytes) -> Self {
        let mut headers = parts.headers;
        mark_sensitive(&mut headers);
        Self {
            method: parts.method,
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers,
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
        append_header(&mut self.headers, name, value);
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

/// Appends a header, its value marked sensitive if its name is.
fn append_header(headers: &mut HeaderMap, name: &str, value: &str) {
    if let (Ok(name), Ok(mut value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
        value.set_sensitive(is_sensitive(&name));
        headers.append(name, value);
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("headers", &Headers(&self.headers))
            .field("path_params", &self.path_params)
            .field("body", &Body(self.body.len()))
            .finish()
    }
}

/// An HTTP response.
///
/// Its `Debug` leaves out the body and the values of
/// [`super::SENSITIVE_HEADERS`] (`set-cookie`).
///
/// ```
/// use cloudfn_core::HttpResponse;
///
/// let res = HttpResponse::json(202, &serde_json::json!({"id": "o-1"}));
/// assert_eq!(res.status, 202);
/// assert_eq!(res.headers["content-type"], "application/json");
/// ```
#[derive(Clone, PartialEq)]
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

    /// The response an HTTP caller sees for `error`, decided here alone.
    /// The caller's own mistakes ([`Error::is_for_caller`]) answer their
    /// kind's status and a JSON body naming the kind, the message and the
    /// field; anything else answers a generic 5xx — `internal` (500),
    /// `unavailable` (503) or `timeout` (504) — with no detail: SDK messages
    /// carry account ids and ARNs, and those belong in the logs.
    ///
    /// ```
    /// use cloudfn_core::{Error, HttpResponse};
    ///
    /// let sdk = Error::forbidden("User: arn:aws:iam::123456789012:role/x is not authorized").private();
    /// let res = HttpResponse::from_error(&sdk);
    /// assert_eq!(res.status, 500);
    /// assert!(!String::from_utf8_lossy(&res.body).contains("arn:aws"));
    /// ```
    pub fn from_error(error: &Error) -> Self {
        Self::answering(error, None)
    }

    /// [`HttpResponse::from_error`] for an error of invocation
    /// `invocation_id`: a generic answer carries the id (as
    /// `error.invocation_id`), so the caller can quote it and the logs of
    /// that invocation say what happened.
    pub fn from_invocation_error(error: &Error, invocation_id: &str) -> Self {
        Self::answering(error, Some(invocation_id))
    }

    fn answering(error: &Error, invocation_id: Option<&str>) -> Self {
        if error.is_for_caller() {
            return Self::json(error.kind().http_status(), &error.to_json());
        }
        let (kind, message) = match error.kind() {
            ErrorKind::Timeout => (ErrorKind::Timeout, "the function ran past its deadline"),
            ErrorKind::Unavailable | ErrorKind::Throttled => (
                ErrorKind::Unavailable,
                "a service the function needs is unavailable; try again later",
            ),
            _ => (ErrorKind::Internal, "internal error"),
        };
        let mut body = Error::new(kind, message).to_json();
        if let Some(id) = invocation_id {
            body["error"]["invocation_id"] = serde_json::Value::from(id);
        }
        Self::json(kind.http_status(), &body)
    }

    /// Adds a header; invalid names or values are ignored.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        append_header(&mut self.headers, name, value);
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

impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("headers", &Headers(&self.headers))
            .field("body", &Body(self.body.len()))
            .finish()
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
    fn infrastructure_errors_answer_a_generic_5xx_naming_the_invocation() {
        let leaky = "arn:aws:sqs:eu-west-1:123456789012:shop-orders";
        for (error, status, kind) in [
            (Error::not_found(leaky).private(), 500, "internal"),
            (Error::throttled(leaky).private(), 503, "unavailable"),
            (Error::unavailable(leaky), 503, "unavailable"),
            (Error::timeout(leaky), 504, "timeout"),
            (Error::internal(leaky).with_field("secret"), 500, "internal"),
        ] {
            let res = HttpResponse::from_invocation_error(&error, "inv-1");
            assert_eq!(res.status, status, "{error}");
            let body: serde_json::Value = serde_json::from_slice(&res.body).unwrap();
            assert_eq!(body["error"]["kind"], kind, "{body}");
            assert_eq!(body["error"]["invocation_id"], "inv-1", "{body}");
            assert!(body["error"].get("field").is_none(), "{body}");
            assert!(!body.to_string().contains("123456789012"), "{body}");
        }
    }

    #[test]
    fn debug_leaves_out_credentials_and_bodies() {
        let mut request = HttpRequest::new(http::Method::POST, "/login")
            .with_header("x-api-key", "k-secret")
            .with_header("x-probe", "shown")
            .with_body("password=p-secret");
        for name in ["authorization", "cookie", "proxy-authorization"] {
            request.headers.append(
                HeaderName::from_static(name),
                HeaderValue::from_static("h-secret"),
            );
        }
        let shown = format!("{request:?}");
        assert!(
            shown.contains("shown") && shown.contains("<17 bytes>"),
            "{shown}"
        );
        assert!(!shown.contains("secret"), "{shown}");
        let response = HttpResponse::text(200, "b-secret").with_header("set-cookie", "s=c-secret");
        let shown = format!("{response:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(
            !format!("{:?}", response.headers).contains("secret"),
            "a header added by name is marked sensitive"
        );
    }

    #[test]
    fn error_response_has_status_and_json_body() {
        let res = HttpResponse::from_error(&Error::bad_input("bad qty").with_field("items[0].qty"));
        assert_eq!(res.status, 400);
        let body: serde_json::Value = serde_json::from_slice(&res.body).unwrap();
        assert_eq!(body["error"]["field"], "items[0].qty");
    }
}
