//! Feeding queue and topic functions: lease a batch, invoke, then acknowledge,
//! retry with backoff, or dead-letter each message on its own.

use std::{sync::Arc, time::Duration};

use cloudfn_core::{
    Error, Function,
    conventions::{self, Settlement},
    messaging::dead_letter,
    provider::{ContextBuilder, Invoke, Services},
};
use tokio::sync::Semaphore;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    broker::LocalBroker,
    queue::{Leased, LocalQueue},
};

/// Invocations a local consumer runs at once when the function sets no limit.
pub(crate) const DEFAULT_CONCURRENCY: u32 = 64;

/// The visibility timeout outlasts the invocation's deadline, so a message is
/// redelivered only when its invocation is truly lost.
fn visibility(function: &Function) -> Duration {
    conventions::visibility_timeout(function.policy().timeout)
}

pub(crate) struct Consumer {
    pub function: Arc<Function>,
    pub queue: Arc<LocalQueue>,
    pub broker: LocalBroker,
    pub services: Services,
}

impl Consumer {
    /// Leases and dispatches batches until `shutdown`; the invocations run on
    /// `tracker` so shutdown can wait for them.
    pub(crate) async fn run(self, shutdown: CancellationToken, tracker: TaskTracker) {
        let this = Arc::new(self);
        let policy = this.function.policy();
        let limit = policy.max_concurrency.unwrap_or(DEFAULT_CONCURRENCY).max(1) as usize;
        let slots = Arc::new(Semaphore::new(limit));
        let batch_size = policy.batch_size.max(1) as usize;
        loop {
            // `biased`: once shutdown is asked for, no new work is taken even
            // when a slot or a message is ready at the same moment.
            let slot = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                slot = slots.clone().acquire_owned() => slot.expect("semaphore is never closed"),
            };
            let batch = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                batch = this.queue.lease(batch_size, visibility(&this.function)) => batch,
            };
            let this = this.clone();
            tracker.spawn(async move {
                this.dispatch(batch).await;
                drop(slot);
            });
        }
    }

    async fn dispatch(&self, batch: Vec<Leased>) {
        let mut receipts = Vec::with_capacity(batch.len());
        let mut invocations = Vec::with_capacity(batch.len());
        for Leased { receipt, message } in batch {
            let ctx = ContextBuilder::new(&self.function, &self.services)
                .attempt(message.attempt)
                .build();
            receipts.push((receipt, message.attempt));
            invocations.push((message, ctx));
        }
        let results = self.function.invoke_batch(invocations).await;
        for ((receipt, attempt), result) in receipts.into_iter().zip(results) {
            match result {
                Ok(()) => self.queue.ack(receipt),
                Err(error) => self.settle_failure(receipt, attempt, error),
            }
        }
    }

    fn settle_failure(&self, receipt: u64, attempt: u32, error: Error) {
        if let Settlement::Retry { delay } =
            conventions::settle(&error, attempt, &self.function.policy().retry)
        {
            self.queue.retry_later(receipt, delay, error.to_string());
            return;
        }
        let Some(mut message) = self.queue.take(receipt) else {
            return;
        };
        let target = conventions::dead_letter_queue(self.function.policy(), self.queue.name());
        tracing::error!(
            function = %self.function.name(),
            message_id = ?message.id,
            attempts = attempt,
            dead_letter_queue = %target,
            error = %error,
            "message failed for good; moved to the dead-letter queue"
        );
        dead_letter::annotate(
            &mut message.attributes,
            self.function.name(),
            self.queue.name(),
            attempt,
            &error,
        );
        message.last_error = Some(error.to_string());
        message.receive_count = 0;
        self.broker.queue(&target).push(message, None);
    }
}
