//! Settling deliveries on their queues once the handlers ran: backoff as
//! visibility changes, and dead letters sent, then deleted from their
//! source. The calls go out as SQS batches, side by side, and only while
//! Lambda's deadline allows: a call still running past it would make
//! Lambda fail the invocation, and the whole batch, successes too, would
//! come back to run again.

use std::{future::Future, time::Duration};

use cloudfn_core::{Error, Function, Message, OutgoingMessage, messaging::dead_letter};
use tokio::time::Instant;

/// The queue calls that settle deliveries. The SQS client implements them
/// with SQS's batch calls (ten entries each), its calls side by side; each
/// answers every entry's own outcome, in order.
#[async_trait::async_trait]
pub trait QueueSettler: Send + Sync {
    /// Makes each message a receipt names visible again after its delay
    /// (`ChangeMessageVisibilityBatch`): the retry policy's backoff instead
    /// of the queue's whole visibility timeout. `queue` is the neutral name.
    async fn change_visibility(
        &self,
        queue: &str,
        changes: Vec<(String, Duration)>,
    ) -> Vec<Result<(), Error>>;

    /// Sends each message to `queue` (`SendMessageBatch`).
    async fn send_each(
        &self,
        queue: &str,
        messages: Vec<OutgoingMessage>,
    ) -> Vec<Result<(), Error>>;

    /// Deletes each message a receipt names from `queue` (`DeleteMessageBatch`).
    async fn delete(&self, queue: &str, receipts: Vec<String>) -> Vec<Result<(), Error>>;
}

/// A delivery that failed for good, on its way to the dead-letter queue.
pub(crate) struct DeadLetter {
    /// SQS's id of the delivery, to report it failed if it cannot be sent.
    pub(crate) id: String,
    /// Its receipt, to delete it from its source once sent (empty for an
    /// event no queue delivered).
    pub(crate) receipt: String,
    /// The copy sent, with the `cloudfn-dead-letter-*` attributes.
    pub(crate) copy: OutgoingMessage,
    /// Why it failed, for the log.
    pub(crate) error: Error,
}

impl DeadLetter {
    /// The dead letter of `message`, which failed with `error`.
    pub(crate) fn of(function: &Function, message: &Message, error: &Error, receipt: &str) -> Self {
        let copy = dead_letter::copy_of(function.name(), message, error);
        Self {
            id: message.id.clone(),
            receipt: receipt.to_owned(),
            copy,
            error: error.clone(),
        }
    }
}

/// What settling the deliveries of one invocation asks of the queues.
#[derive(Default)]
pub(crate) struct Plan {
    /// Deliveries to make visible again after a delay: receipt, delay.
    pub(crate) backoff: Vec<(String, Duration)>,
    /// Deliveries that go to the dead-letter queue.
    pub(crate) dead: Vec<DeadLetter>,
}

/// Carries out `plan` for `function`, whose deliveries come from `source`
/// and fail for good into `dlq`, by `until` (if set). Gives back the dead
/// letters that could not be sent, so that they are reported failed and
/// kept by the queue: nothing is dropped.
pub(crate) async fn carry_out(
    settler: Option<&dyn QueueSettler>,
    function: &Function,
    (source, dlq): (&str, &str),
    plan: Plan,
    until: Option<Instant>,
) -> Vec<DeadLetter> {
    let Some(settler) = settler else {
        return plan.dead;
    };
    let Plan { backoff, dead } = plan;
    let changes = backoff.len();
    let backoff = async {
        if backoff.is_empty() {
            return;
        }
        let outcomes = within(until, settler.change_visibility(source, backoff)).await;
        let failed = outcomes.as_ref().map_or(changes, |o| {
            o.iter().filter(|outcome| outcome.is_err()).count()
        });
        if failed > 0 {
            tracing::warn!(
                queue = source,
                failed,
                "could not apply the backoff of some failed messages; the queue's visibility timeout applies"
            );
        }
    };
    let sends = async {
        if dead.is_empty() {
            return Vec::new();
        }
        let copies = dead.iter().map(|d| d.copy.clone()).collect();
        within(until, settler.send_each(dlq, copies))
            .await
            .unwrap_or_else(|| {
                let late = Error::timeout("no time was left before Lambda's deadline");
                vec![Err(late); dead.len()]
            })
    };
    let ((), sent) = tokio::join!(backoff, sends);
    let mut unsent = Vec::new();
    let mut receipts = Vec::new();
    for (letter, outcome) in dead.into_iter().zip(sent) {
        match outcome {
            Ok(()) => {
                tracing::error!(function = %function.name(), message_id = ?letter.id, dead_letter_queue = dlq, error = %letter.error, "message failed for good; moved to the dead-letter queue");
                if !letter.receipt.is_empty() {
                    receipts.push(letter.receipt);
                }
            }
            Err(e) => {
                tracing::error!(function = %function.name(), message_id = ?letter.id, dead_letter_queue = dlq, error = %e, "could not dead-letter a failed message; it stays on its queue");
                unsent.push(letter);
            }
        }
    }
    // Sent, so deleted at once: should the answer to Lambda be lost, the
    // copy is not made twice. Lambda deletes what is left anyway.
    if !receipts.is_empty() {
        let count = receipts.len();
        let deleted = within(until, settler.delete(source, receipts)).await;
        let failed = deleted
            .as_ref()
            .map_or(count, |d| d.iter().filter(|o| o.is_err()).count());
        if failed > 0 {
            tracing::warn!(
                queue = source,
                failed,
                "dead letters sent but not deleted yet; Lambda deletes them with the batch"
            );
        }
    }
    unsent
}

/// `work`, unless `until` passes first.
async fn within<T>(until: Option<Instant>, work: impl Future<Output = T>) -> Option<T> {
    match until {
        Some(until) => tokio::time::timeout_at(until, work).await.ok(),
        None => Some(work.await),
    }
}
