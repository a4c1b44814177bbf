//! What follows a message from hop to hop (choreography): the W3C trace
//! and a correlation id, carried as message attributes, so that one order
//! can be followed through every function it reaches, in the logs of any
//! provider.
//!
//! A function's outgoing messages carry `traceparent` (its trace, a new
//! span) and [`CORRELATION_ID`]. A function fed such a message continues
//! that trace and correlation, whatever trace its platform started for the
//! invocation (a Lambda's own X-Ray trace, none at all locally).

use std::collections::BTreeMap;

/// The attribute carrying the W3C trace context, `00-<trace>-<span>-<flags>`.
pub const TRACEPARENT: &str = "traceparent";
/// The attribute carrying the correlation id: the first function's trace
/// id (or invocation id), the same at every later hop.
pub const CORRELATION_ID: &str = "cloudfn-correlation-id";

/// The trace and correlation an invocation continues and hands on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lineage {
    /// A W3C trace id: 32 lowercase hex digits.
    pub(crate) trace_id: String,
    pub(crate) correlation_id: String,
}

impl Lineage {
    /// The lineage of an invocation whose platform names trace `trace` (a
    /// W3C trace id, or X-Ray's `Root=1-…`), if any, fed `attributes`.
    pub(crate) fn of(
        platform_trace: Option<&str>,
        attributes: Option<&BTreeMap<String, String>>,
        invocation_id: &str,
    ) -> Self {
        let attribute = |name: &str| attributes.and_then(|a| a.get(name)).map(String::as_str);
        let trace_id = attribute(TRACEPARENT)
            .and_then(trace_of_traceparent)
            .or_else(|| platform_trace.and_then(w3c_trace_id))
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let correlation_id = attribute(CORRELATION_ID)
            .filter(|c| !c.is_empty() && c.len() <= 128)
            .map_or_else(
                || {
                    if platform_trace.is_some() || attribute(TRACEPARENT).is_some() {
                        trace_id.clone()
                    } else {
                        invocation_id.to_owned()
                    }
                },
                str::to_owned,
            );
        Self {
            trace_id,
            correlation_id,
        }
    }

    /// The attributes an outgoing message carries: this trace with a new
    /// span, and the correlation id.
    pub(crate) fn stamp(&self, attributes: &mut BTreeMap<String, String>) {
        attributes.entry(TRACEPARENT.to_owned()).or_insert_with(|| {
            let span = &uuid::Uuid::new_v4().simple().to_string()[..16];
            format!("00-{}-{span}-01", self.trace_id)
        });
        attributes
            .entry(CORRELATION_ID.to_owned())
            .or_insert_with(|| self.correlation_id.clone());
    }
}

/// The trace id of a W3C `traceparent` value, if it is one.
///
/// ```
/// use cloudfn_core::propagation::trace_of_traceparent;
///
/// let id = trace_of_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
/// assert_eq!(id.as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
/// assert_eq!(trace_of_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"), None);
/// ```
pub fn trace_of_traceparent(value: &str) -> Option<String> {
    let mut parts = value.split('-');
    let (_version, trace) = (parts.next()?, parts.next()?);
    w3c_trace_id(trace)
}

/// `trace` as a W3C trace id: itself if it is one (32 hex digits, not all
/// zero), or X-Ray's `Root=1-<8 hex>-<24 hex>` (which is one, split).
pub(crate) fn w3c_trace_id(trace: &str) -> Option<String> {
    let trace = trace.trim();
    let candidate = match trace.strip_prefix("Root=1-") {
        Some(xray) => xray.split(';').next()?.replace('-', ""),
        None => trace.to_owned(),
    };
    let valid = candidate.len() == 32
        && candidate.bytes().all(|b| b.is_ascii_hexdigit())
        && candidate.bytes().any(|b| b != b'0');
    valid.then(|| candidate.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_hands_on_its_trace_and_correlation() {
        let first = Lineage::of(Some("4bf92f3577b34da6a3ce929d0e0e4736"), None, "inv-1");
        assert_eq!(first.correlation_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        let mut attributes = BTreeMap::new();
        first.stamp(&mut attributes);
        let traceparent = &attributes[TRACEPARENT];
        assert!(
            traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{traceparent}"
        );
        assert_eq!(traceparent.len(), 55);

        // The next hop's platform started a trace of its own (X-Ray): the
        // message's wins.
        let next = Lineage::of(
            Some("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8"),
            Some(&attributes),
            "inv-2",
        );
        assert_eq!(next, first);
    }

    #[test]
    fn traces_are_read_from_w3c_and_xray_and_made_when_missing() {
        assert_eq!(
            w3c_trace_id("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1").as_deref(),
            Some("5759e988bd862e3fe1be46a994272793")
        );
        assert_eq!(w3c_trace_id("00000000000000000000000000000000"), None);
        assert_eq!(w3c_trace_id("105445aa7843bc8bf206b12000100000/1;o=1"), None);
        let fresh = Lineage::of(None, None, "inv-3");
        assert_eq!(fresh.correlation_id, "inv-3");
        assert!(w3c_trace_id(&fresh.trace_id).is_some());
    }
}
