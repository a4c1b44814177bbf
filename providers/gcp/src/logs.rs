//! Logs as Cloud Logging reads them from a Cloud Run container: one JSON
//! object per line on stdout, its `severity` and `message` in the special
//! fields, the invocation's trace in `logging.googleapis.com/trace`
//! (`projects/PROJECT/traces/TRACE`, so the log lines sit under their
//! request in the trace view), and the function, invocation and attempt as
//! labels.
//!
//! ```json
//! {"severity":"WARNING","message":"invocation failed","time":"2026-11-27T10:00:00.000000Z","logging.googleapis.com/trace":"projects/shop/traces/4bf92f3577b34da6a3ce929d0e0e4736","logging.googleapis.com/labels":{"function":"payment","invocation_id":"11","attempt":"2"},"target":"cloudfn_core::invoke","kind":"unavailable"}
//! ```

use std::io::Write as _;

use serde_json::{Map, Value};
use tracing::{
    Event, Level, Subscriber,
    field::{Field, Visit},
    span::{Attributes, Id, Record},
};
use tracing_subscriber::{Layer, layer::Context, registry::LookupSpan};

/// The span fields that become the line's trace and labels: those of
/// core's `invocation` span.
const LABELS: [&str; 3] = ["function", "invocation_id", "attempt"];
const TRACE: &str = "trace_id";

/// The layer writing each event as a Cloud Logging line on stdout, with
/// the trace of project `project` (from `GOOGLE_CLOUD_PROJECT`; without
/// one the trace id is an ordinary field, since Cloud Logging takes only
/// the full resource name).
pub fn layer<S>(project: Option<String>) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    CloudLogging { project }
}

struct CloudLogging {
    project: Option<String>,
}

/// What a span contributes to its events' lines.
#[derive(Default, Clone)]
struct SpanFields(Map<String, Value>);

impl Visit for SpanFields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let name = field.name();
        if name == TRACE || LABELS.contains(&name) {
            self.0
                .insert(name.to_owned(), Value::String(format!("{value:?}")));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let name = field.name();
        if name == TRACE || LABELS.contains(&name) {
            self.0
                .insert(name.to_owned(), Value::String(value.to_owned()));
        }
    }
}

/// An event's own fields.
struct EventFields<'a>(&'a mut Map<String, Value>);

impl Visit for EventFields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_owned()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
}

/// Cloud Logging's severity of a `tracing` level.
fn severity(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        _ => "DEBUG",
    }
}

impl CloudLogging {
    /// The line of `event`, whose spans (outermost first) say `spans`.
    fn line(&self, event: &Event<'_>, spans: &Map<String, Value>) -> Map<String, Value> {
        let mut fields = Map::new();
        event.record(&mut EventFields(&mut fields));
        let mut line = Map::new();
        line.insert(
            "severity".into(),
            Value::from(severity(event.metadata().level())),
        );
        line.insert(
            "message".into(),
            fields.remove("message").unwrap_or(Value::from("")),
        );
        line.insert(
            "time".into(),
            Value::from(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        );
        match (&self.project, spans.get(TRACE)) {
            (Some(project), Some(Value::String(trace))) => {
                line.insert(
                    "logging.googleapis.com/trace".into(),
                    Value::from(format!("projects/{project}/traces/{trace}")),
                );
            }
            (None, Some(trace)) => {
                line.insert(TRACE.into(), trace.clone());
            }
            _ => {}
        }
        let labels: Map<String, Value> = LABELS
            .iter()
            .filter_map(|name| Some(((*name).to_owned(), spans.get(*name)?.clone())))
            .collect();
        if !labels.is_empty() {
            line.insert(
                "logging.googleapis.com/labels".into(),
                Value::Object(labels),
            );
        }
        line.insert("target".into(), Value::from(event.metadata().target()));
        for (name, value) in fields {
            line.entry(name).or_insert(value);
        }
        line
    }
}

/// What the spans around `event` say, the innermost last (and winning).
fn spans_of<S>(event: &Event<'_>, ctx: &Context<'_, S>) -> Map<String, Value>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let mut spans = Map::new();
    if let Some(scope) = ctx.event_scope(event) {
        for span in scope.from_root() {
            if let Some(fields) = span.extensions().get::<SpanFields>() {
                spans.extend(fields.0.clone());
            }
        }
    }
    spans
}

impl<S> Layer<S> for CloudLogging
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = SpanFields::default();
        attrs.record(&mut fields);
        span.extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(fields) = extensions.get_mut::<SpanFields>() {
            values.record(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let spans = spans_of(event, &ctx);
        let line = Value::Object(self.line(event, &spans));
        let mut text = line.to_string();
        text.push('\n');
        // One write per line, so that lines of concurrent requests never
        // interleave.
        let _ = std::io::stdout().lock().write_all(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    /// The line an event in core's invocation span becomes.
    #[test]
    fn an_invocations_event_carries_its_trace_and_labels() {
        let logging = CloudLogging {
            project: Some("shop".into()),
        };
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = lines.clone();
        let subscriber = tracing_subscriber::registry()
            .with(Capture(logging, seen))
            .with(tracing_subscriber::filter::LevelFilter::INFO);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "invocation",
                function = %"payment",
                invocation_id = %"11",
                attempt = 2u32,
                trace_id = tracing::field::Empty,
            );
            span.record("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736");
            let _entered = span.enter();
            tracing::warn!(kind = "unavailable", "invocation failed");
        });
        let lines = lines.lock().unwrap();
        let line = &lines[0];
        assert_eq!(line["severity"], "WARNING");
        assert_eq!(line["message"], "invocation failed");
        assert_eq!(
            line["logging.googleapis.com/trace"],
            "projects/shop/traces/4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(
            line["logging.googleapis.com/labels"],
            serde_json::json!({"function": "payment", "invocation_id": "11", "attempt": "2"})
        );
        assert_eq!(line["kind"], "unavailable");
    }

    /// The layer's line kept instead of written.
    struct Capture(CloudLogging, std::sync::Arc<std::sync::Mutex<Vec<Value>>>);

    impl<S> Layer<S> for Capture
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
            self.0.on_new_span(attrs, id, ctx);
        }

        fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
            self.0.on_record(id, values, ctx);
        }

        fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
            let spans = spans_of(event, &ctx);
            self.1
                .lock()
                .unwrap()
                .push(Value::Object(self.0.line(event, &spans)));
        }
    }
}
