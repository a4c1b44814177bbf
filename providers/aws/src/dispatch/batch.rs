//! An SQS batch: each readable record runs on its own, and each failure is
//! settled by the retry policy — back to the queue after the backoff
//! (`batchItemFailures`), or to the dead-letter queue; Lambda deletes the
//! rest.

use std::{collections::HashMap, time::Duration};

use bytes::Bytes;
use cloudfn_core::{
    Error, Trigger,
    conventions::{self, Settlement},
    provider::Invoke,
};

use super::{
    Dispatcher, Invocation, neutral_source,
    report::{self, DeadLetter, Plan},
    to_json,
};
use crate::events::queue::{self, SqsRecord};

/// What became of one record.
enum Outcome {
    Done,
    Failed(Error),
    /// Not run: on a FIFO queue, an earlier message of its group failed.
    NotRun,
}

impl Dispatcher {
    /// Runs a decoded batch and answers its `batchItemFailures`. For a
    /// topic function the queue is its subscription queue, subscribed with
    /// raw message delivery (by the deployment and the dev emulation
    /// alike), so each body is the published message as it is.
    ///
    /// Attempts are counted here, from `ApproximateReceiveCount`: a
    /// delivery that fails for good (a permanent error, or the last
    /// attempt) goes to the dead-letter queue with its attributes. A FIFO
    /// message returned unrun, behind a failed one of its group, is never
    /// dead-lettered: its receive still counts, which the queue's redrive
    /// allows for ([`conventions::redrive_receive_count`]).
    pub(super) async fn sqs_batch(
        &self,
        mut records: Vec<SqsRecord>,
        invocation: &Invocation,
    ) -> Result<Bytes, Error> {
        let function = &*self.function;
        for record in &mut records {
            neutral_source(function, &mut record.message);
        }
        let outcomes = self.run_records(&records, invocation).await;
        let policy = function.policy();
        let mut failed = Vec::new();
        let mut plan = Plan::default();
        // When the rest of a FIFO group comes back unrun, it comes back
        // with the message that failed, so the group stays in order.
        let mut group_delay: HashMap<Option<&str>, Duration> = HashMap::new();
        for (record, outcome) in records.iter().zip(&outcomes) {
            let Outcome::Failed(error) = outcome else {
                continue;
            };
            let message = &record.message;
            let delay = match conventions::settle(error, message.attempt, &policy.retry) {
                Settlement::Retry { delay } => {
                    failed.push(record.sqs_message_id.clone());
                    back_off(&mut plan, record, delay);
                    delay
                }
                Settlement::DeadLetter => {
                    let letter = DeadLetter::of(function, message, error, &record.receipt_handle);
                    plan.dead.push(letter);
                    Duration::ZERO
                }
            };
            group_delay.insert(message.ordering_key.as_deref(), delay);
        }
        for (record, outcome) in records.iter().zip(&outcomes) {
            if let Outcome::NotRun = outcome {
                failed.push(record.sqs_message_id.clone());
                let key = record.message.ordering_key.as_deref();
                let delay = group_delay.get(&key).copied().unwrap_or_default();
                back_off(&mut plan, record, delay);
            }
        }
        let source =
            conventions::consumed_queue(function.name(), function.trigger()).unwrap_or_default();
        let dlq = conventions::dead_letter_queue(policy, &source);
        let unsent = report::carry_out(
            self.settler.as_deref(),
            function,
            (&source, &dlq),
            plan,
            invocation.report_until(),
        )
        .await;
        // Reported failed, so the queue (and at last its redrive) keeps them.
        failed.extend(unsent.into_iter().map(|letter| letter.id));
        to_json(&queue::batch_response(failed))
    }

    /// Runs every readable record. A record that could not be read fails
    /// alone, without running; on a FIFO trigger the rest of its group does
    /// not run either, as after any failure.
    async fn run_records(&self, records: &[SqsRecord], invocation: &Invocation) -> Vec<Outcome> {
        let (function, services) = (&*self.function, &self.services);
        let fifo = matches!(function.trigger(), Trigger::Queue { fifo: true, .. });
        let mut outcomes: Vec<Outcome> = records.iter().map(|_| Outcome::NotRun).collect();
        let mut stopped = std::collections::HashSet::new();
        let mut batch = Vec::with_capacity(records.len());
        let mut ran = Vec::with_capacity(records.len());
        for (index, record) in records.iter().enumerate() {
            let key = record.message.ordering_key.as_deref();
            if fifo && stopped.contains(&key) {
                continue;
            }
            if let Some(error) = &record.malformed {
                outcomes[index] = Outcome::Failed(error.clone());
                stopped.insert(key);
                continue;
            }
            let ctx = invocation.context(function, services, Some(record.message.attempt));
            batch.push((record.message.clone(), ctx));
            ran.push(index);
        }
        let results = function.invoke_batch(batch).await;
        // On a FIFO trigger, `invoke_batch` does not run the messages of a
        // group after one that failed: those come back unrun.
        let mut failed_groups = std::collections::HashSet::new();
        for (index, result) in ran.into_iter().zip(results) {
            let key = records[index].message.ordering_key.as_deref();
            outcomes[index] = match result {
                _ if fifo && failed_groups.contains(&key) => Outcome::NotRun,
                Ok(()) => Outcome::Done,
                Err(error) => {
                    failed_groups.insert(key);
                    Outcome::Failed(error)
                }
            };
        }
        outcomes
    }
}

fn back_off(plan: &mut Plan, record: &SqsRecord, delay: Duration) {
    if !record.receipt_handle.is_empty() {
        plan.backoff.push((record.receipt_handle.clone(), delay));
    }
}
