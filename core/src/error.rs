//! The one error type every handler, client and provider speaks.

use std::{borrow::Cow, fmt, sync::Arc};

use serde::{Deserialize, Serialize};

/// What went wrong, in terms that decide what happens next: the HTTP status a
/// caller sees and whether a queued message is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input could not be read: malformed JSON, a missing or mistyped field.
    BadInput,
    /// The input was read but breaks a rule (an empty order, a quantity of 0).
    Invalid,
    /// The caller is not authenticated.
    Unauthorized,
    /// The caller, or the function itself, may not do this.
    Forbidden,
    /// The thing asked for does not exist.
    NotFound,
    /// The request conflicts with the current state.
    Conflict,
    /// The route exists but does not answer this HTTP method.
    MethodNotAllowed,
    /// The input is larger than the function accepts.
    TooLarge,
    /// A dependency asked us to slow down.
    Throttled,
    /// The invocation ran past its deadline.
    Timeout,
    /// A dependency is down for now; trying again later may work.
    Unavailable,
    /// Anything else, including a panicking handler.
    Internal,
}

impl ErrorKind {
    /// Every kind, for renderings that must name them all.
    pub const ALL: [ErrorKind; 12] = [
        Self::BadInput,
        Self::Invalid,
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::Conflict,
        Self::MethodNotAllowed,
        Self::TooLarge,
        Self::Throttled,
        Self::Timeout,
        Self::Unavailable,
        Self::Internal,
    ];

    /// Whether an invocation that failed this way may succeed when tried again.
    ///
    /// Input and permission problems never heal by themselves, so retrying them
    /// only delays the dead-letter queue; everything else may be transient.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::Throttled | Self::Timeout | Self::Unavailable | Self::Internal
        )
    }

    /// The HTTP status an HTTP caller sees for this kind.
    pub fn http_status(self) -> u16 {
        match self {
            Self::BadInput => 400,
            Self::Invalid => 422,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::MethodNotAllowed => 405,
            Self::TooLarge => 413,
            Self::Throttled => 429,
            Self::Timeout => 504,
            Self::Unavailable => 503,
            Self::Internal => 500,
        }
    }

    /// The snake_case name used in logs and JSON error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadInput => "bad_input",
            Self::Invalid => "invalid",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::TooLarge => "too_large",
            Self::Throttled => "throttled",
            Self::Timeout => "timeout",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of cloudfn: a kind, a message for humans, and where it applies the
/// input field at fault.
///
/// What an HTTP caller is shown of it is decided in one place,
/// [`crate::HttpResponse::from_error`]: the caller's own mistakes
/// ([`Error::is_for_caller`]) with their kind, message and field; anything
/// else as a generic 5xx. Its `Display` escapes control characters, so an
/// error quoting input never forges a log line.
///
/// ```
/// use cloudfn_core::{Error, ErrorKind};
///
/// let err = Error::invalid("an order needs at least one item").with_field("items");
/// assert_eq!(err.kind(), ErrorKind::Invalid);
/// assert!(!err.is_retryable());
/// assert_eq!(err.field(), Some("items"));
/// ```
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    message: Cow<'static, str>,
    field: Option<String>,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    private: bool,
}

macro_rules! constructors {
    ($($(#[$doc:meta])* $name:ident => $kind:ident;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(message: impl Into<Cow<'static, str>>) -> Self {
                Self::new(ErrorKind::$kind, message)
            }
        )*
    };
}

impl Error {
    /// An error of `kind` with a message for humans.
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            message: message.into(),
            field: None,
            source: None,
            private: false,
        }
    }

    constructors! {
        /// Input that could not be read (HTTP 400, never retried).
        bad_input => BadInput;
        /// Input that breaks a rule (HTTP 422, never retried).
        invalid => Invalid;
        /// Missing or wrong credentials (HTTP 401).
        unauthorized => Unauthorized;
        /// Not allowed (HTTP 403).
        forbidden => Forbidden;
        /// Not found (HTTP 404).
        not_found => NotFound;
        /// Conflicts with current state (HTTP 409).
        conflict => Conflict;
        /// Input too large (HTTP 413).
        too_large => TooLarge;
        /// Asked to slow down (HTTP 429, retried).
        throttled => Throttled;
        /// Ran out of time (HTTP 504, retried).
        timeout => Timeout;
        /// A dependency is down for now (HTTP 503, retried).
        unavailable => Unavailable;
        /// Anything else (HTTP 500, retried).
        internal => Internal;
    }

    /// The error of a service this process called (a cloud's REST API)
    /// answering HTTP `status`: its kind from the status, so that what the
    /// service would answer differently later (408, 429, 5xx) is retried
    /// and the rest is not; private, since it names the service's
    /// resources and is never the caller's doing.
    ///
    /// ```
    /// use cloudfn_core::{Error, ErrorKind};
    ///
    /// assert_eq!(Error::from_service_status(412, "x").kind(), ErrorKind::Conflict);
    /// assert!(Error::from_service_status(503, "x").is_retryable());
    /// assert!(!Error::from_service_status(403, "x").is_for_caller());
    /// ```
    pub fn from_service_status(status: u16, message: impl Into<Cow<'static, str>>) -> Self {
        let kind = match status {
            400 => ErrorKind::BadInput,
            401 | 403 => ErrorKind::Forbidden,
            404 => ErrorKind::NotFound,
            409 | 412 => ErrorKind::Conflict,
            413 => ErrorKind::TooLarge,
            408 | 429 | 500..=599 => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        };
        Self::new(kind, message).private()
    }

    /// Names the input field at fault, as a path such as `items[0].qty`.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Keeps the underlying error for `source()` and logs.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// Marks the error as made by infrastructure — a cloud client, a store,
    /// a permission check — rather than by the caller: its message (which
    /// may carry account ids, ARNs, resource names) stays in the logs, and
    /// an HTTP caller sees a generic 5xx. Its kind still decides retries.
    ///
    /// ```
    /// use cloudfn_core::Error;
    ///
    /// let sdk = Error::not_found("queue arn:aws:sqs:eu-west-1:123456789012:orders does not exist");
    /// assert!(sdk.is_for_caller());
    /// assert!(!sdk.private().is_for_caller());
    /// ```
    pub fn private(mut self) -> Self {
        self.private = true;
        self
    }

    /// Whether an HTTP caller is shown this error's kind, message and field:
    /// only for the caller's own mistakes — a 4xx kind, not marked
    /// [`Error::private`]. Everything else answers a generic 5xx.
    pub fn is_for_caller(&self) -> bool {
        !self.private && self.kind.http_status() < 500
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message for humans, without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The input field at fault, if the error is about one.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// Whether trying again may succeed; see [`ErrorKind::is_retryable`].
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }

    /// The error as the JSON body an HTTP caller receives:
    /// `{"error":{"kind":"bad_input","message":"…","field":"items[0].qty"}}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut body = serde_json::json!({
            "kind": self.kind.as_str(),
            "message": self.message,
        });
        if let Some(field) = &self.field {
            body["field"] = serde_json::Value::from(field.as_str());
        }
        serde_json::json!({ "error": body })
    }

    /// Reads a JSON payload into `T`, turning a failure into a [`ErrorKind::BadInput`]
    /// error whose message and field name the path that failed.
    ///
    /// ```
    /// #[derive(Debug, serde::Deserialize)]
    /// struct Item { qty: u32 }
    /// #[derive(Debug, serde::Deserialize)]
    /// struct Order { items: Vec<Item> }
    ///
    /// let err = cloudfn_core::Error::decode_json::<Order>(br#"{"items":[{"qty":"two"}]}"#)
    ///     .unwrap_err();
    /// assert_eq!(err.field(), Some("items[0].qty"));
    /// ```
    pub fn decode_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
        // Tracking the path costs an allocation per key read, so it is done
        // only once a plain read has failed: a well-formed payload is read
        // at serde_json's own speed, a bad one gets the same error.
        if let Ok(value) = serde_json::from_slice(bytes) {
            return Ok(value);
        }
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let value: T = serde_path_to_error::deserialize(&mut de).map_err(Self::from_payload)?;
        de.end()
            .map_err(|e| Self::bad_input(format!("invalid JSON: {e}")))?;
        Ok(value)
    }

    fn from_payload(err: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let inner = err.inner();
        let path = err.path().to_string();
        let error = match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                Self::bad_input(format!("malformed JSON: {inner}"))
            }
            _ => {
                // serde reports a missing field at its parent's path; the
                // name is in the message, so lift it into the path.
                let text = inner.to_string();
                let field = named_field(&text, "missing field `")
                    .map(|name| join_path(&path, &name))
                    .or_else(|| (path != "." && !path.is_empty()).then_some(path));
                match field {
                    Some(field) => Self::bad_input(format!("invalid field `{field}`: {inner}"))
                        .with_field(field),
                    None => Self::bad_input(format!("invalid body: {inner}")),
                }
            }
        };
        error.with_source(err.into_inner())
    }
}

fn named_field(message: &str, prefix: &str) -> Option<String> {
    let rest = message.strip_prefix(prefix)?;
    Some(rest[..rest.find('`')?].to_owned())
}

fn join_path(parent: &str, name: &str) -> String {
    if parent == "." || parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(field) = &self.field {
            d.field("field", field);
        }
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        if self.private {
            d.field("private", &true);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    /// `kind: message`, with control characters in the message escaped
    /// (`\n`, `\0`, `\u{1b}`): messages quote paths, keys and payloads
    /// from outside, and a raw newline in a log line starts a forged one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.kind)?;
        for c in self.message.chars() {
            // Line and paragraph separators end lines in some log viewers too.
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                write!(f, "{}", c.escape_debug())?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Line {
        sku: String,
        qty: u32,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Order {
        customer: String,
        items: Vec<Line>,
    }

    #[test]
    fn kinds_split_into_retryable_and_permanent() {
        for kind in [
            ErrorKind::Throttled,
            ErrorKind::Timeout,
            ErrorKind::Unavailable,
            ErrorKind::Internal,
        ] {
            assert!(kind.is_retryable(), "{kind} should be retried");
        }
        for kind in [
            ErrorKind::BadInput,
            ErrorKind::Invalid,
            ErrorKind::Unauthorized,
            ErrorKind::Forbidden,
            ErrorKind::NotFound,
            ErrorKind::Conflict,
            ErrorKind::MethodNotAllowed,
            ErrorKind::TooLarge,
        ] {
            assert!(!kind.is_retryable(), "{kind} should be permanent");
        }
        assert_eq!(ErrorKind::BadInput.http_status(), 400);
        assert_eq!(ErrorKind::Invalid.http_status(), 422);
        assert_eq!(ErrorKind::Timeout.http_status(), 504);
    }

    #[test]
    fn mistyped_nested_field_is_named() {
        let err = Error::decode_json::<Order>(
            br#"{"customer":"a@b.c","items":[{"sku":"X","qty":"two"}]}"#,
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadInput);
        assert_eq!(err.field(), Some("items[0].qty"));
        assert!(err.message().contains("items[0].qty"), "{err}");
    }

    #[test]
    fn missing_field_is_named() {
        let err = Error::decode_json::<Order>(br#"{"customer":"a@b.c"}"#).unwrap_err();
        assert_eq!(err.field(), Some("items"));
        let err =
            Error::decode_json::<Order>(br#"{"customer":"a","items":[{"sku":"X"}]}"#).unwrap_err();
        assert_eq!(err.field(), Some("items[0].qty"));
    }

    #[test]
    fn wrong_top_level_type_and_unknown_fields() {
        let err = Error::decode_json::<Order>(b"[]").unwrap_err();
        assert_eq!(err.field(), None, "no field for the body as a whole: {err}");
        assert!(err.message().starts_with("invalid body"), "{err}");

        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Strict {
            a: u8,
        }
        let err = Error::decode_json::<Strict>(br#"{"a":1,"b":2}"#).unwrap_err();
        assert_eq!(err.field(), Some("b"));
    }

    #[test]
    fn malformed_json_is_bad_input_without_field() {
        let err = Error::decode_json::<Order>(br#"{"customer": "#).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadInput);
        assert!(err.message().starts_with("malformed JSON"), "{err}");
        let err =
            Error::decode_json::<Order>(br#"{"customer":"a","items":[]} trailing"#).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadInput);
    }

    #[test]
    fn display_escapes_control_characters() {
        let err = Error::not_found("no order a\nINFO forged\0\u{1b}[31m\u{2028}x");
        let shown = err.to_string();
        assert_eq!(
            shown,
            "not_found: no order a\\nINFO forged\\0\\u{1b}[31m\\u{2028}x"
        );
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert_eq!(
            err.message(),
            "no order a\nINFO forged\0\u{1b}[31m\u{2028}x"
        );
    }

    #[test]
    fn only_the_callers_own_mistakes_are_for_the_caller() {
        assert!(Error::bad_input("x").is_for_caller());
        assert!(Error::throttled("slow down").is_for_caller());
        assert!(!Error::forbidden("undeclared").private().is_for_caller());
        assert!(!Error::unavailable("down").is_for_caller());
        assert!(!Error::timeout("late").is_for_caller());
        assert!(!Error::internal("bug").is_for_caller());
    }

    #[test]
    fn json_body_carries_kind_message_and_field() {
        let body = Error::invalid("qty must be at least 1")
            .with_field("items[0].qty")
            .to_json();
        assert_eq!(body["error"]["kind"], "invalid");
        assert_eq!(body["error"]["field"], "items[0].qty");
    }
}
