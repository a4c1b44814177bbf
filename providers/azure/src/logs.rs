//! The handler's `tracing` events of one invocation, handed back to the
//! host in the answer's `Logs`, so they show in that invocation's log in
//! Application Insights and the portal (stderr reaches the host too, but
//! as the process's log, unattributed).
//!
//! [`layer`] goes into the process's subscriber (`cloudfn::run` adds it);
//! [`capture`] collects what the events of one invocation's task say.

use std::{
    fmt::Write as _,
    future::Future,
    sync::{Arc, Mutex},
};

use tracing::{
    Event, Subscriber,
    field::{Field, Visit},
};
use tracing_subscriber::{Layer, layer::Context};

/// The most lines one invocation hands back; the rest are counted.
const MAX_LINES: usize = 200;
/// The longest line handed back, in bytes.
const MAX_LINE_BYTES: usize = 2048;

#[derive(Default)]
struct Lines {
    kept: Vec<String>,
    dropped: usize,
}

tokio::task_local! {
    static LINES: Arc<Mutex<Lines>>;
}

/// The layer that copies each event of a capturing invocation into its
/// lines. Outside [`capture`] it does nothing.
pub fn layer<S: Subscriber>() -> impl Layer<S> {
    InvocationLogs
}

struct InvocationLogs;

impl<S: Subscriber> Layer<S> for InvocationLogs {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let _ = LINES.try_with(|lines| {
            let mut lines = lines
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if lines.kept.len() >= MAX_LINES {
                lines.dropped += 1;
                return;
            }
            let mut line = format!("{} ", event.metadata().level());
            event.record(&mut Fields(&mut line));
            if line.len() > MAX_LINE_BYTES {
                let mut end = MAX_LINE_BYTES;
                while !line.is_char_boundary(end) {
                    end -= 1;
                }
                line.truncate(end);
                line.push('…');
            }
            lines.kept.push(line);
        });
    }
}

/// Writes the message first, then `name=value` for the other fields.
struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

/// Runs `work`, and gives back its output and the lines its events wrote
/// (on this task; tasks it spawns keep their own).
pub async fn capture<T>(work: impl Future<Output = T>) -> (T, Vec<String>) {
    let lines = Arc::new(Mutex::new(Lines::default()));
    let out = LINES.scope(lines.clone(), work).await;
    let mut lines = std::mem::take(&mut *lines.lock().unwrap_or_else(|p| p.into_inner()));
    if lines.dropped > 0 {
        lines.kept.push(format!(
            "… {} more lines: see the process log",
            lines.dropped
        ));
    }
    (out, lines.kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[tokio::test]
    async fn an_invocation_gets_its_own_events_back() {
        let subscriber = tracing_subscriber::registry().with(layer());
        let _default = tracing::subscriber::set_default(subscriber);
        tracing::info!("before");
        let ((), lines) = capture(async {
            tracing::warn!(order = "o-1", "charge declined");
            for i in 0..MAX_LINES + 5 {
                tracing::debug!(i, "noise");
            }
        })
        .await;
        assert_eq!(lines[0], "WARN charge declined order=\"o-1\"");
        assert_eq!(lines.len(), MAX_LINES + 1);
        assert_eq!(lines[MAX_LINES], "… 6 more lines: see the process log");
    }
}
