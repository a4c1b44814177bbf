//! The neutral events handlers receive, one module per trigger kind.

mod http;
mod message;
mod redact;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use self::http::{HttpRequest, HttpResponse};
pub use self::message::{Message, OutgoingMessage};
pub use self::redact::{SENSITIVE_HEADERS, mark_sensitive};
use crate::StorageEventKind;

/// A schedule firing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledTick {
    /// The time the schedule named (not when the handler started).
    pub scheduled_time: DateTime<Utc>,
    /// The cron expression that fired.
    pub schedule: String,
}

/// A change to an object in a bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageEvent {
    /// The bucket.
    pub bucket: String,
    /// The object's key.
    pub key: String,
    /// What happened.
    pub kind: StorageEventKind,
    /// The object's size after a write.
    pub size: Option<u64>,
    /// The object's ETag or generation, if the platform says.
    pub etag: Option<String>,
    /// When it happened.
    pub time: DateTime<Utc>,
}

/// Any event, as a provider hands it to [`crate::provider::Invoke::invoke`].
#[derive(Debug, Clone)]
pub enum Event {
    /// For http triggers.
    Http(HttpRequest),
    /// For queue and topic triggers; the body is still raw.
    Message(Message),
    /// For schedule triggers.
    Tick(ScheduledTick),
    /// For storage triggers.
    Storage(StorageEvent),
}

impl Event {
    /// The event kind's name, as in [`crate::Trigger::kind`].
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Http(_) => "http",
            Self::Message(_) => "message",
            Self::Tick(_) => "schedule",
            Self::Storage(_) => "storage",
        }
    }
}

/// What an invocation produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// The response of an HTTP function.
    Http(HttpResponse),
    /// Event functions produce nothing; success is the acknowledgement.
    Done,
    /// The output of a step function, for the workflow's next step.
    Value(serde_json::Value),
}
