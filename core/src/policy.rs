//! How a function recovers: retries with backoff and idempotency keys.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Exponential backoff with full jitter, bounded by a number of attempts and a
/// longest delay.
///
/// Attempt `n` (1-based) that fails is retried after a delay drawn uniformly
/// from `0..=min(max_delay, initial_delay * 2^(n-1))`: full jitter spreads a
/// burst of failures out instead of retrying them in lock-step.
///
/// ```
/// use std::time::Duration;
/// use cloudfn_core::RetryPolicy;
///
/// let policy = RetryPolicy::new(5)
///     .initial_delay(Duration::from_millis(100))
///     .max_delay(Duration::from_secs(2));
/// assert_eq!(policy.backoff_ceiling(1), Duration::from_millis(100));
/// assert_eq!(policy.backoff_ceiling(3), Duration::from_millis(400));
/// assert_eq!(policy.backoff_ceiling(9), Duration::from_secs(2));
/// assert!(policy.delay(3) <= Duration::from_millis(400));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// How many times a message is delivered in all, the first time included.
    pub max_attempts: u32,
    /// The backoff ceiling after the first failure.
    #[serde(with = "millis")]
    pub initial_delay: Duration,
    /// The backoff ceiling never grows past this.
    #[serde(with = "millis")]
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Three attempts, 1 s then 2 s ceilings, at most 1 min.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// `max_attempts` deliveries in all (at least one), default delays.
    pub fn new(max_attempts: u32) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            ..Self::default()
        }
    }

    /// No retry: one attempt.
    pub fn none() -> Self {
        Self::new(1)
    }

    /// Sets the first backoff ceiling.
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// Sets the largest backoff ceiling.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Whether a failure on `attempt` (1-based) leaves attempts to retry with.
    pub fn has_attempts_left(&self, attempt: u32) -> bool {
        attempt < self.max_attempts
    }

    /// The upper bound of the delay after attempt `attempt` failed.
    pub fn backoff_ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(32);
        self.initial_delay
            .saturating_mul(1u32 << doublings.min(31))
            .min(self.max_delay)
    }

    /// The delay before retrying after attempt `attempt` failed: full jitter
    /// under [`RetryPolicy::backoff_ceiling`].
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.backoff_ceiling(attempt).as_micros() as u64;
        Duration::from_micros(fastrand::u64(0..=ceiling))
    }
}

/// Which key makes two deliveries "the same" for idempotency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", content = "pointer", rename_all = "snake_case")]
pub enum IdempotencyKey {
    /// The message id the platform assigned: suppresses redelivery of one message.
    MessageId,
    /// A field of the JSON body, as a JSON pointer (`/id`): suppresses two
    /// messages carrying the same business key.
    BodyField(String),
}

/// Idempotency for a message-triggered function: a delivery whose key was
/// already processed successfully is acknowledged without running the handler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Idempotency {
    /// What the key is.
    pub key: IdempotencyKey,
    /// How long a processed key is remembered.
    #[serde(with = "millis")]
    pub ttl: Duration,
}

impl Idempotency {
    /// Keyed by message id, remembered for a day.
    pub fn by_message_id() -> Self {
        Self {
            key: IdempotencyKey::MessageId,
            ttl: Duration::from_secs(24 * 3600),
        }
    }

    /// Keyed by the JSON body field at `pointer` (for example `/order_id`),
    /// remembered for a day.
    pub fn by_body_field(pointer: impl Into<String>) -> Self {
        Self {
            key: IdempotencyKey::BodyField(pointer.into()),
            ttl: Duration::from_secs(24 * 3600),
        }
    }

    /// Sets how long a processed key is remembered.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }
}

/// Serialises a `Duration` as whole milliseconds, the unit deployment files use.
pub(crate) mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// [`millis`] for an optional duration.
pub(crate) mod millis_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|ms| ms.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_under_a_doubling_ceiling_capped_at_max() {
        let policy = RetryPolicy::new(20)
            .initial_delay(Duration::from_millis(10))
            .max_delay(Duration::from_millis(500));
        let mut previous = Duration::ZERO;
        for attempt in 1..=20 {
            let ceiling = policy.backoff_ceiling(attempt);
            assert!(ceiling >= previous, "ceiling shrank at attempt {attempt}");
            assert!(ceiling <= Duration::from_millis(500));
            for _ in 0..200 {
                assert!(policy.delay(attempt) <= ceiling);
            }
            previous = ceiling;
        }
        assert_eq!(policy.backoff_ceiling(u32::MAX), Duration::from_millis(500));
    }

    #[test]
    fn jitter_actually_spreads_delays() {
        let policy = RetryPolicy::new(5).initial_delay(Duration::from_secs(1));
        let delays: std::collections::HashSet<_> = (0..50).map(|_| policy.delay(4)).collect();
        assert!(
            delays.len() > 40,
            "full jitter should rarely repeat a delay"
        );
    }

    #[test]
    fn attempts_are_counted_from_one() {
        let policy = RetryPolicy::new(3);
        assert!(policy.has_attempts_left(1));
        assert!(policy.has_attempts_left(2));
        assert!(!policy.has_attempts_left(3));
        assert!(!RetryPolicy::none().has_attempts_left(1));
        assert_eq!(RetryPolicy::new(0).max_attempts, 1);
    }

    #[test]
    fn policies_serialise_delays_in_millis() {
        let json = serde_json::to_value(RetryPolicy::default()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"max_attempts": 3, "initial_delay": 1000, "max_delay": 60000})
        );
        let json = serde_json::to_value(Idempotency::by_body_field("/id")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"key": {"by": "body_field", "pointer": "/id"}, "ttl": 86400000})
        );
    }
}
