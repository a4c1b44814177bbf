//! What fires a function: the five neutral trigger kinds.

use std::{fmt, str::FromStr};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Error;

/// An HTTP method a route answers; `Any` matches every method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
    /// HEAD
    Head,
    /// OPTIONS
    Options,
    /// Every method.
    Any,
}

impl Method {
    /// Whether a request made with `method` reaches a route declared with
    /// `self`; a GET route answers HEAD too, as HTTP expects.
    pub fn matches(self, method: &http::Method) -> bool {
        self == Self::Any
            || self.as_str() == method.as_str()
            || (self == Self::Get && method == http::Method::HEAD)
    }

    /// The upper-case name, `ANY` for [`Method::Any`].
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Head => "HEAD",
            Self::Options => "OPTIONS",
            Self::Any => "ANY",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The storage changes a storage trigger listens to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageEventKind {
    /// An object was written (created or overwritten).
    Created,
    /// An object was deleted.
    Deleted,
}

/// What fires a function. Serialises into the [`crate::AppSpec`] with a `kind` tag.
///
/// ```
/// use cloudfn_core::{Method, Trigger};
///
/// let t = Trigger::http(Method::Post, "/orders");
/// assert_eq!(
///     serde_json::to_value(&t).unwrap(),
///     serde_json::json!({"kind": "http", "method": "POST", "route": "/orders"})
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    /// An HTTP request to `route` (path parameters as `{name}`, a tail as `{*rest}`).
    Http {
        /// The method answered.
        method: Method,
        /// The route, starting with `/`.
        route: String,
    },
    /// Messages on a queue.
    Queue {
        /// The queue's name.
        queue: String,
        /// Ordered delivery per ordering key (SQS FIFO, ordered Pub/Sub).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        fifo: bool,
    },
    /// Messages published to a topic; every subscribed function gets each one.
    Topic {
        /// The topic's name.
        topic: String,
    },
    /// A timer, as a five-field cron expression in UTC (`minute hour day month weekday`).
    Schedule {
        /// The cron expression.
        cron: String,
    },
    /// Changes to objects in a bucket.
    Storage {
        /// The bucket's name.
        bucket: String,
        /// The changes listened to.
        events: Vec<StorageEventKind>,
    },
    /// A workflow's `call` step: the previous step's output in, the
    /// function's output out ([`crate::workflow`]). Only an orchestrator
    /// calls it.
    Step,
}

impl Trigger {
    /// An HTTP trigger.
    pub fn http(method: Method, route: impl Into<String>) -> Self {
        Self::Http {
            method,
            route: route.into(),
        }
    }

    /// A standard queue trigger.
    pub fn queue(queue: impl Into<String>) -> Self {
        Self::Queue {
            queue: queue.into(),
            fifo: false,
        }
    }

    /// A FIFO queue trigger: messages sharing an ordering key arrive in order.
    pub fn fifo_queue(queue: impl Into<String>) -> Self {
        Self::Queue {
            queue: queue.into(),
            fifo: true,
        }
    }

    /// A topic subscription.
    pub fn topic(topic: impl Into<String>) -> Self {
        Self::Topic {
            topic: topic.into(),
        }
    }

    /// A cron schedule, checked by [`crate::App::validate`].
    pub fn schedule(cron: impl Into<String>) -> Self {
        Self::Schedule { cron: cron.into() }
    }

    /// A storage trigger.
    pub fn storage(
        bucket: impl Into<String>,
        events: impl IntoIterator<Item = StorageEventKind>,
    ) -> Self {
        Self::Storage {
            bucket: bucket.into(),
            events: events.into_iter().collect(),
        }
    }

    /// The trigger kind's name: `http`, `queue`, `topic`, `schedule`, `storage` or `step`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Http { .. } => "http",
            Self::Queue { .. } => "queue",
            Self::Topic { .. } => "topic",
            Self::Schedule { .. } => "schedule",
            Self::Storage { .. } => "storage",
            Self::Step => "step",
        }
    }
}

/// A parsed cron schedule.
///
/// Five fields (`minute hour day-of-month month day-of-week`), the form every
/// cloud can express; times are UTC.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use cloudfn_core::Schedule;
///
/// let every_15 = "*/15 * * * *".parse::<Schedule>().unwrap();
/// let at = Utc.with_ymd_and_hms(2026, 11, 26, 10, 7, 0).unwrap();
/// assert_eq!(every_15.next_after(at), Some(Utc.with_ymd_and_hms(2026, 11, 26, 10, 15, 0).unwrap()));
/// ```
#[derive(Debug, Clone)]
pub struct Schedule {
    expression: String,
    cron: croner::Cron,
}

impl Schedule {
    /// The expression as written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The first firing strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&after, false).ok()
    }
}

impl FromStr for Schedule {
    type Err = Error;

    fn from_str(expression: &str) -> Result<Self, Error> {
        let fields = expression.split_whitespace().count();
        if fields != 5 {
            return Err(Error::invalid(format!(
                "cron expression `{expression}` has {fields} fields; expected 5 (minute hour day month weekday)"
            )));
        }
        let cron = croner::Cron::from_str(expression).map_err(|e| {
            Error::invalid(format!("cron expression `{expression}` is not valid: {e}"))
        })?;
        Ok(Self {
            expression: expression.to_owned(),
            cron,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_serialise_with_kind_tag() {
        let cases = [
            (
                Trigger::queue("orders"),
                r#"{"kind":"queue","queue":"orders"}"#,
            ),
            (
                Trigger::fifo_queue("ledger"),
                r#"{"kind":"queue","queue":"ledger","fifo":true}"#,
            ),
            (
                Trigger::topic("order-paid"),
                r#"{"kind":"topic","topic":"order-paid"}"#,
            ),
            (
                Trigger::schedule("0 * * * *"),
                r#"{"kind":"schedule","cron":"0 * * * *"}"#,
            ),
            (
                Trigger::storage("uploads", [StorageEventKind::Created]),
                r#"{"kind":"storage","bucket":"uploads","events":["created"]}"#,
            ),
        ];
        for (trigger, json) in cases {
            assert_eq!(serde_json::to_string(&trigger).unwrap(), json);
            assert_eq!(serde_json::from_str::<Trigger>(json).unwrap(), trigger);
        }
    }

    #[test]
    fn any_method_matches_everything() {
        assert!(Method::Any.matches(&http::Method::DELETE));
        assert!(Method::Get.matches(&http::Method::GET));
        assert!(!Method::Get.matches(&http::Method::POST));
        assert!(Method::Get.matches(&http::Method::HEAD));
    }

    #[test]
    fn schedule_rejects_wrong_field_count_and_values() {
        let err = "* * * *".parse::<Schedule>().unwrap_err();
        assert!(err.message().contains("has 4 fields"), "{err}");
        let err = "0 0 * * * *".parse::<Schedule>().unwrap_err();
        assert!(err.message().contains("has 6 fields"), "{err}");
        let err = "61 * * * *".parse::<Schedule>().unwrap_err();
        assert!(err.message().contains("not valid"), "{err}");
    }
}
