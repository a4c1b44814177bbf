//! What a provider can do, declared once per provider and checked against an
//! app before it is served or packaged, so that what a platform cannot do is
//! a clear error up front, never a silent cap or a line in a log.

use std::{ops::RangeInclusive, time::Duration};

use serde::Serialize;

use crate::{AppSpec, Error, FunctionSpec, Trigger};

/// What one provider supports. Each provider exports its own as a constant;
/// [`AppSpec::validate_for`] (and [`crate::App::validate_for`]) turn every
/// function that asks for more into an error naming the function and the
/// limit.
///
/// ```
/// use cloudfn_core::{App, Capabilities, Function, StorageEventKind};
///
/// let caps = Capabilities { storage_triggers: false, ..Capabilities::UNLIMITED };
/// let app = App::new("a").function(Function::storage(
///     "thumbs", "uploads", [StorageEventKind::Created], |_, _| async { Ok(()) },
/// ));
/// let err = app.validate_for(&caps).unwrap_err();
/// assert!(err.message().contains("`thumbs`") && err.message().contains("storage"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// The provider's name, as in [`crate::Context::provider`].
    pub provider: &'static str,
    /// FIFO queues (ordering keys).
    pub fifo_queues: bool,
    /// The most messages one invocation of a standard queue consumer may receive.
    pub max_batch_size: u32,
    /// The most messages one invocation of a FIFO queue consumer may receive.
    pub max_fifo_batch_size: u32,
    /// The most deliveries the platform makes of an event it retries itself
    /// (schedules and storage changes); `None` when the provider's own
    /// retries follow the function's policy.
    pub max_event_attempts: Option<u32>,
    /// Storage triggers.
    pub storage_triggers: bool,
    /// The largest HTTP request body the platform passes on.
    pub max_body_bytes: usize,
    /// The longest a handler may run.
    pub max_timeout: Duration,
    /// The concurrency limits a queue consumer may set.
    pub queue_concurrency: RangeInclusive<u32>,
}

impl Capabilities {
    /// No limits: the baseline providers narrow down.
    pub const UNLIMITED: Self = Self {
        provider: "any",
        fifo_queues: true,
        max_batch_size: u32::MAX,
        max_fifo_batch_size: u32::MAX,
        max_event_attempts: None,
        storage_triggers: true,
        max_body_bytes: usize::MAX,
        max_timeout: Duration::MAX,
        queue_concurrency: 1..=u32::MAX,
    };

    /// The first thing `function` asks of the provider that it cannot do.
    fn check(&self, function: &FunctionSpec) -> Result<(), String> {
        let provider = self.provider;
        let policy = &function.policy;
        if policy.batch_size == 0
            && matches!(
                function.trigger,
                Trigger::Queue { .. } | Trigger::Topic { .. }
            )
        {
            return Err("batch size 0: a consumer receives at least one message at once".into());
        }
        match &function.trigger {
            Trigger::Storage { .. } if !self.storage_triggers => {
                return Err(format!("storage triggers are not supported on {provider}"));
            }
            Trigger::Queue { fifo: true, .. } if !self.fifo_queues => {
                return Err(format!("FIFO queues are not supported on {provider}"));
            }
            Trigger::Queue { fifo: true, .. } if policy.batch_size > self.max_fifo_batch_size => {
                return Err(format!(
                    "batch size {}: FIFO queues on {provider} deliver at most {} messages at once",
                    policy.batch_size, self.max_fifo_batch_size
                ));
            }
            Trigger::Queue { .. } | Trigger::Topic { .. }
                if policy.batch_size > self.max_batch_size =>
            {
                return Err(format!(
                    "batch size {}: queues on {provider} deliver at most {} messages at once",
                    policy.batch_size, self.max_batch_size
                ));
            }
            Trigger::Schedule { .. } | Trigger::Storage { .. } => {
                if let Some(most) = self.max_event_attempts
                    && policy.retry.max_attempts > most
                {
                    return Err(format!(
                        "{} attempts: {provider} delivers a {} event at most {most} times; \
                         lower the retry policy's max_attempts, or have the {} trigger send to a queue",
                        policy.retry.max_attempts,
                        function.trigger.kind(),
                        function.trigger.kind()
                    ));
                }
            }
            _ => {}
        }
        if let Some(limit) = policy.max_concurrency
            && matches!(
                function.trigger,
                Trigger::Queue { .. } | Trigger::Topic { .. }
            )
            && !self.queue_concurrency.contains(&limit)
        {
            return Err(format!(
                "max concurrency {limit}: a queue consumer on {provider} takes {} to {} \
                 (for one at a time, use a FIFO queue with one ordering key)",
                self.queue_concurrency.start(),
                self.queue_concurrency.end()
            ));
        }
        if matches!(function.trigger, Trigger::Http { .. })
            && policy.max_body_bytes > self.max_body_bytes
        {
            return Err(format!(
                "max body of {} bytes: {provider} passes on request bodies of at most {} bytes",
                policy.max_body_bytes, self.max_body_bytes
            ));
        }
        if policy.timeout > self.max_timeout {
            return Err(format!(
                "timeout {:?}: handlers on {provider} run at most {:?}",
                policy.timeout, self.max_timeout
            ));
        }
        Ok(())
    }
}

impl AppSpec {
    /// Checks every function against what the provider can do; the error
    /// names the function and the limit it crosses.
    pub fn validate_for(&self, capabilities: &Capabilities) -> Result<(), Error> {
        for function in &self.functions {
            capabilities
                .check(function)
                .map_err(|why| Error::invalid(format!("function `{}`: {why}", function.name)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{App, Context, Function, Message, RetryPolicy};

    async fn noop(_: Message<serde_json::Value>, _: Context) -> Result<(), Error> {
        Ok(())
    }

    fn strict() -> Capabilities {
        Capabilities {
            provider: "strict",
            fifo_queues: true,
            max_batch_size: 100,
            max_fifo_batch_size: 10,
            max_event_attempts: Some(3),
            storage_triggers: true,
            max_body_bytes: 1024,
            max_timeout: Duration::from_secs(60),
            queue_concurrency: 2..=1000,
        }
    }

    fn refused(function: Function) -> String {
        App::new("a")
            .function(function)
            .validate_for(&strict())
            .unwrap_err()
            .message()
            .to_owned()
    }

    #[test]
    fn each_limit_is_named() {
        let fifo = refused(Function::fifo_queue("f", "ledger", noop).batch_size(11));
        assert!(
            fifo.contains("`f`") && fifo.contains("at most 10"),
            "{fifo}"
        );
        let batch = refused(Function::queue("f", "jobs", noop).batch_size(101));
        assert!(batch.contains("at most 100"), "{batch}");
        let tick = refused(
            Function::schedule("t", "* * * * *", |_, _| async { Ok(()) })
                .retry(RetryPolicy::new(5)),
        );
        assert!(tick.contains("at most 3 times"), "{tick}");
        let one = refused(Function::topic("f", "t", noop).max_concurrency(1));
        assert!(one.contains("2 to 1000"), "{one}");
        let slow = refused(Function::queue("f", "jobs", noop).timeout(Duration::from_secs(61)));
        assert!(slow.contains("timeout"), "{slow}");
        App::new("a")
            .function(Function::queue("f", "jobs", noop).batch_size(100))
            .validate_for(&strict())
            .unwrap();
    }
}
