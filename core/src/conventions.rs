//! The rules every provider follows the same way, kept here once so that
//! the local runtime, each cloud adapter and each dev emulation cannot drift:
//! how resources are named, how long a delivery stays invisible, how much of
//! the deadline is kept to report, and how a failed delivery is settled.
//!
//! Providers call these; none writes its own.
//!
//! ```
//! use std::time::Duration;
//! use cloudfn_core::{Error, RetryPolicy, conventions::{self, Settlement}};
//!
//! assert_eq!(conventions::subscription_queue("order-paid", "notify"), "order-paid-notify");
//! assert_eq!(conventions::default_dead_letter_queue("orders"), "orders-dead-letter");
//! assert_eq!(conventions::physical_name("shop-dev", "orders"), "shop-dev-orders");
//!
//! let retry = RetryPolicy::new(3);
//! assert!(matches!(conventions::settle(&Error::unavailable("down"), 1, &retry), Settlement::Retry { .. }));
//! assert_eq!(conventions::settle(&Error::unavailable("down"), 3, &retry), Settlement::DeadLetter);
//! assert_eq!(conventions::settle(&Error::invalid("bad"), 1, &retry), Settlement::DeadLetter);
//! ```

use std::time::Duration;

use crate::{Error, Policy, RetryPolicy, Trigger};

/// Whether `name` can name a function, workflow or step: 1 to 64 ASCII
/// letters, digits, `-` or `_`, which every cloud's resource names take.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The queue that carries topic `topic` to subscriber `function`: every
/// provider gives each subscriber its own queue (SNS → SQS, a Pub/Sub
/// subscription, a Storage Queue per subscriber), so each gets retries, a
/// dead-letter queue and batch failures of its own.
///
/// The name uses only letters, digits and `-`, which every cloud's queue
/// names accept.
pub fn subscription_queue(topic: &str, function: &str) -> String {
    format!("{topic}-{function}")
}

/// The store where idempotent functions keep their claims, one per app:
/// every function with an [`crate::Idempotency`] policy gets read-write
/// access to it, and no user store may take the name.
pub const IDEMPOTENCY_STORE: &str = "cloudfn-idempotency";

/// The dead-letter queue made for a consumer of `source` that names none, so
/// that a message that keeps failing is kept rather than dropped.
pub fn default_dead_letter_queue(source: &str) -> String {
    format!("{source}-dead-letter")
}

/// The queue `function` consumes, if a queue feeds it: its trigger's queue,
/// or its own subscription queue of a topic.
pub fn consumed_queue(function: &str, trigger: &Trigger) -> Option<String> {
    match trigger {
        Trigger::Queue { queue, .. } => Some(queue.clone()),
        Trigger::Topic { topic } => Some(subscription_queue(topic, function)),
        _ => None,
    }
}

/// Where a consumer of `source` with `policy` sends the deliveries that
/// fail for good: its declared dead-letter queue, else the default one.
pub fn dead_letter_queue(policy: &Policy, source: &str) -> String {
    policy
        .dead_letter
        .clone()
        .unwrap_or_else(|| default_dead_letter_queue(source))
}

/// Where `function`'s deliveries that fail for good go, if anything is
/// delivered to it: its declared dead-letter queue, else the default one,
/// named after the queue that feeds it ([`consumed_queue`]) or, for
/// schedules and storage changes, which no queue feeds, after the function
/// itself. HTTP and step functions have none: their caller (a workflow's,
/// for a step) gets the error.
pub fn failure_queue(function: &str, trigger: &Trigger, policy: &Policy) -> Option<String> {
    let source = match trigger {
        Trigger::Http { .. } | Trigger::Step => return None,
        Trigger::Queue { .. } | Trigger::Topic { .. } => consumed_queue(function, trigger)?,
        Trigger::Schedule { .. } | Trigger::Storage { .. } => function.to_owned(),
    };
    Some(dead_letter_queue(policy, &source))
}

/// How many receives a queue's own redrive allows before it moves a message
/// to the dead-letter queue, for a consumer allowed `max_attempts`
/// deliveries: five times as many, and at least ten (SQS's most is 1,000).
///
/// Consumers count attempts and dead-letter in code; the platform's redrive
/// is the last resort, for when that code cannot run. It counts receives,
/// not runs: a FIFO message returned unrun because an earlier message of its
/// group failed, or a batch received while the function was throttled, is
/// received without running. Were the redrive set at `max_attempts`, such
/// messages would reach the dead-letter queue without ever running.
pub fn redrive_receive_count(max_attempts: u32) -> u32 {
    max_attempts.saturating_mul(5).clamp(10, 1_000)
}

/// A resource's name in the cloud: the app's `prefix` (a stack, a
/// deployment, a test run), `-`, and the neutral name. With no prefix, the
/// neutral name itself.
pub fn physical_name(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}-{name}")
    }
}

/// The environment variable (app setting) through which a deployment
/// tells a function the physical name of resource `name`: `prefix`, then
/// the name upper-cased with everything but letters and digits as `_`
/// (`resource_variable("CLOUDFN_QUEUE_", "orders-dlq")` is
/// `CLOUDFN_QUEUE_ORDERS_DLQ`).
pub fn resource_variable(prefix: &str, name: &str) -> String {
    let suffix: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{prefix}{suffix}")
}

/// The setting through which a deployment names queue `name`'s physical
/// queue (or topic) on providers that read names from the environment:
/// `CLOUDFN_QUEUE_ORDERS_DLQ` for `orders-dlq`.
pub fn queue_variable(name: &str) -> String {
    resource_variable("CLOUDFN_QUEUE_", name)
}

/// The setting through which a deployment names topic `name`'s physical
/// topic: `CLOUDFN_TOPIC_ORDER_PAID` for `order-paid`.
pub fn topic_variable(name: &str) -> String {
    resource_variable("CLOUDFN_TOPIC_", name)
}

/// How long a delivered message stays invisible to other consumers: six
/// times the function's timeout (whole seconds, at least one), Lambda's
/// guidance for SQS event sources, which leaves room for the platform to
/// batch, invoke and retry the invocation itself before the message is
/// handed out again. A message returns sooner only when its consumer says
/// so (the retry policy's backoff).
pub fn visibility_timeout(timeout: Duration) -> Duration {
    Duration::from_secs(6 * timeout.as_secs_f64().ceil().max(1.0) as u64)
}

/// How much of the platform's deadline a provider keeps back from the
/// handler to report the outcome (batch failures, dead letters, backoff,
/// the HTTP 504): a tenth of the time left, between 20 ms and 1 s.
pub fn report_margin(remaining: Duration) -> Duration {
    (remaining / 10).clamp(Duration::from_millis(20), Duration::from_secs(1))
}

/// What happens to a delivery whose invocation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// Deliver it again after `delay` (the retry policy's backoff).
    Retry {
        /// How long the message stays invisible first.
        delay: Duration,
    },
    /// Retrying cannot help or no attempts are left: move it to the
    /// consumer's dead-letter queue (see [`dead_letter_queue`]) with the
    /// [`crate::messaging::dead_letter`] attributes, and delete it.
    DeadLetter,
}

/// Settles a delivery that failed with `error` on attempt `attempt`: a
/// retryable error with attempts left is retried after the backoff; anything
/// else (a permanent error, or the last attempt) is dead-lettered, on every
/// provider alike.
pub fn settle(error: &Error, attempt: u32, retry: &RetryPolicy) -> Settlement {
    if error.is_retryable() && retry.has_attempts_left(attempt) {
        Settlement::Retry {
            delay: retry.delay(attempt),
        }
    } else {
        Settlement::DeadLetter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visibility_is_six_timeouts_in_whole_seconds() {
        assert_eq!(
            visibility_timeout(Duration::from_secs(30)),
            Duration::from_secs(180)
        );
        assert_eq!(
            visibility_timeout(Duration::from_millis(200)),
            Duration::from_secs(6)
        );
        assert_eq!(
            visibility_timeout(Duration::from_millis(1500)),
            Duration::from_secs(12)
        );
    }

    #[test]
    fn the_margin_is_a_tenth_within_bounds() {
        assert_eq!(
            report_margin(Duration::from_millis(100)),
            Duration::from_millis(20)
        );
        assert_eq!(
            report_margin(Duration::from_secs(5)),
            Duration::from_millis(500)
        );
        assert_eq!(
            report_margin(Duration::from_secs(60)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn every_delivered_function_has_a_failure_queue() {
        let policy = Policy::default();
        let failure = |name, trigger: Trigger| failure_queue(name, &trigger, &policy);
        assert_eq!(
            failure("charge", Trigger::queue("orders")).as_deref(),
            Some("orders-dead-letter")
        );
        assert_eq!(
            failure("notify", Trigger::topic("order-paid")).as_deref(),
            Some("order-paid-notify-dead-letter")
        );
        assert_eq!(
            failure("nightly", Trigger::schedule("0 3 * * *")).as_deref(),
            Some("nightly-dead-letter")
        );
        assert_eq!(
            failure("home", Trigger::http(crate::Method::Get, "/")),
            None
        );
        let declared = Policy {
            dead_letter: Some("failures".into()),
            ..Policy::default()
        };
        assert_eq!(
            failure_queue("nightly", &Trigger::schedule("0 3 * * *"), &declared).as_deref(),
            Some("failures")
        );
    }

    #[test]
    fn the_redrive_leaves_room_for_receives_that_do_not_run() {
        assert_eq!(redrive_receive_count(1), 10);
        assert_eq!(redrive_receive_count(3), 15);
        assert_eq!(redrive_receive_count(10), 50);
        assert_eq!(redrive_receive_count(u32::MAX), 1_000);
    }

    #[test]
    fn consumers_of_topics_read_their_subscription_queue() {
        assert_eq!(
            consumed_queue("notify", &Trigger::topic("order-paid")).as_deref(),
            Some("order-paid-notify")
        );
        assert_eq!(
            consumed_queue("charge", &Trigger::queue("orders")).as_deref(),
            Some("orders")
        );
        assert_eq!(
            consumed_queue("tick", &Trigger::schedule("* * * * *")),
            None
        );
    }
}
