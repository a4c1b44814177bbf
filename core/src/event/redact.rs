//! What `Debug` of requests and messages leaves out: credentials, sessions
//! and bodies, which would otherwise land in logs and panic messages.

use std::fmt;

use http::{
    HeaderMap, HeaderName,
    header::{AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION, SET_COOKIE},
};

/// Headers whose values are credentials or sessions. Their values are
/// marked sensitive wherever a request is decoded ([`mark_sensitive`]) and
/// never shown by `Debug` of a request or response.
pub const SENSITIVE_HEADERS: [HeaderName; 5] = [
    AUTHORIZATION,
    COOKIE,
    SET_COOKIE,
    PROXY_AUTHORIZATION,
    HeaderName::from_static("x-api-key"),
];

/// Marks the values of [`SENSITIVE_HEADERS`] in `headers` sensitive, so
/// `Debug` of the map shows `Sensitive` instead of them (and HTTP/2 never
/// indexes them). Every decoder of HTTP requests calls it.
///
/// ```
/// use http::{HeaderMap, HeaderValue};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("authorization", HeaderValue::from_static("Bearer s3cret"));
/// cloudfn_core::event::mark_sensitive(&mut headers);
/// assert!(!format!("{headers:?}").contains("s3cret"));
/// ```
pub fn mark_sensitive(headers: &mut HeaderMap) {
    for name in &SENSITIVE_HEADERS {
        if let http::header::Entry::Occupied(mut entry) = headers.entry(name) {
            for value in entry.iter_mut() {
                value.set_sensitive(true);
            }
        }
    }
}

/// Whether header `name` is one of [`SENSITIVE_HEADERS`].
pub(crate) fn is_sensitive(name: &HeaderName) -> bool {
    SENSITIVE_HEADERS.contains(name)
}

/// A header map for `Debug`: names, and values unless sensitive by name or
/// by mark.
pub(crate) struct Headers<'a>(pub &'a HeaderMap);

impl fmt::Debug for Headers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (name, value) in self.0 {
            if is_sensitive(name) || value.is_sensitive() {
                map.entry(name, &format_args!("<redacted>"));
            } else {
                map.entry(name, value);
            }
        }
        map.finish()
    }
}

/// A body for `Debug`: its length only.
pub(crate) struct Body(pub usize);

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0)
    }
}
