//! What an event function's delivery comes to: the function run by its
//! policy, and the answer that tells Pub/Sub, Eventarc or Cloud Scheduler
//! what to do next.
//!
//! Pub/Sub acks 102, 200, 201, 202 and 204 and redelivers on anything else
//! — a 400 included, so "do not retry" cannot be said with a status. A
//! delivery that fails for good is therefore settled here: published to
//! the function's dead-letter topic with cloudfn's dead-letter attributes,
//! then acked with 204 (never 202, which the emulator takes as a nack).

use std::sync::Arc;

use cloudfn_core::{
    Context, Error, Function, Message,
    conventions::{self, Settlement},
    messaging::dead_letter,
    provider::{ContextBuilder, Event, Invoke, Output, Services},
    workflow::StepCall,
};

use crate::events::{Delivery, Pushed};

/// How a delivery ended, as its answer says it.
#[derive(Debug)]
pub enum Outcome {
    /// Done, or settled in the dead-letter topic: ack (204).
    Settled,
    /// To be delivered again after the subscription's backoff: nack (500).
    Retry(Error),
    /// Failed for good and could not be dead-lettered here: nack (500), so
    /// that the platform keeps it (and its own dead-letter policy, if any,
    /// takes it) rather than it being lost.
    Unsettled(Error),
}

/// One event function and what its invocations reach.
pub struct Dispatcher {
    function: Arc<Function>,
    services: Services,
}

impl Dispatcher {
    /// The dispatcher of `function`.
    pub fn new(function: Arc<Function>, services: Services) -> Self {
        Self { function, services }
    }

    fn context(&self, invocation_id: &str, attempt: u32, trace_id: Option<&str>) -> Context {
        ContextBuilder::new(&self.function, &self.services)
            .invocation_id(invocation_id)
            .attempt(attempt)
            .trace_id(trace_id)
            .build()
    }

    /// Runs `delivery` (invocation `invocation_id`, of trace `trace_id`)
    /// and settles it.
    pub async fn handle(
        &self,
        delivery: Delivery,
        invocation_id: &str,
        trace_id: Option<&str>,
    ) -> Outcome {
        match delivery {
            Delivery::Message(pushed) => self.message(pushed, invocation_id, trace_id).await,
            Delivery::Storage(change) => {
                let cloudfn_core::Trigger::Storage { bucket, events } = self.function.trigger()
                else {
                    return Outcome::Unsettled(self.wrong_trigger("a storage event"));
                };
                // An Eventarc trigger filters by bucket already; a stray
                // event (a shared transport topic) is acked and left alone.
                if change.bucket != *bucket || !events.contains(&change.kind) {
                    return Outcome::Settled;
                }
                match Message::json(invocation_id, &change.bucket, &change) {
                    Ok(letter) => {
                        self.retrying(Event::Storage(change), letter, invocation_id, trace_id)
                            .await
                    }
                    Err(error) => Outcome::Unsettled(error),
                }
            }
            Delivery::Tick(tick) => match Message::json(invocation_id, self.function.name(), &tick)
            {
                Ok(letter) => {
                    self.retrying(Event::Tick(tick), letter, invocation_id, trace_id)
                        .await
                }
                Err(error) => Outcome::Unsettled(error),
            },
        }
    }

    /// Runs a step function's `call`; the step's output.
    pub async fn step(
        &self,
        call: StepCall,
        invocation_id: &str,
        trace_id: Option<&str>,
    ) -> Result<serde_json::Value, Error> {
        let ctx = self.context(invocation_id, call.attempt, trace_id);
        match self
            .function
            .invoke(Event::Message(call.into_message()?), ctx)
            .await?
        {
            Output::Value(output) => Ok(output),
            Output::Done | Output::Http(_) => Ok(serde_json::Value::Null),
        }
    }

    fn wrong_trigger(&self, what: &str) -> Error {
        Error::internal(format!(
            "function `{}` was sent {what}, which its trigger does not take",
            self.function.name()
        ))
    }

    /// A Pub/Sub message: its attempt is the subscription's count when it
    /// says one. Without a count (no dead-letter policy on the
    /// subscription; the emulator's push) every delivery reads as the first,
    /// so a retryable failure is always nacked and the subscription's own
    /// dead-letter policy ends the retries.
    async fn message(
        &self,
        pushed: Pushed,
        invocation_id: &str,
        trace_id: Option<&str>,
    ) -> Outcome {
        let message = pushed.message;
        let ctx = self.context(invocation_id, message.attempt, trace_id);
        let Err(error) = self
            .function
            .invoke(Event::Message(message.clone()), ctx)
            .await
        else {
            return Outcome::Settled;
        };
        match conventions::settle(&error, message.attempt, &self.function.policy().retry) {
            Settlement::Retry { .. } => Outcome::Retry(error),
            Settlement::DeadLetter => self.dead_letter(&message, error).await,
        }
    }

    /// Runs an event no subscription of ours redelivers by the function's
    /// policy (a storage change from Eventarc, a Cloud Scheduler call) with
    /// that policy in this invocation; what fails for good is dead-lettered
    /// as `letter`.
    async fn retrying(
        &self,
        event: Event,
        mut letter: Message,
        invocation_id: &str,
        trace_id: Option<&str>,
    ) -> Outcome {
        let context = |attempt| self.context(invocation_id, attempt, trace_id);
        match self.function.invoke_retrying(event, context).await {
            Ok(()) => Outcome::Settled,
            Err((error, attempt)) => {
                letter.attempt = attempt;
                self.dead_letter(&letter, error).await
            }
        }
    }

    /// Publishes `message`, which failed for good with `error`, to the
    /// function's dead-letter topic.
    async fn dead_letter(&self, message: &Message, error: Error) -> Outcome {
        let function = &*self.function;
        let Some(dlq) =
            conventions::failure_queue(function.name(), function.trigger(), function.policy())
        else {
            return Outcome::Unsettled(error);
        };
        let copy = dead_letter::copy_of(function.name(), message, &error);
        match self.services.queue(&dlq).send_message(copy).await {
            Ok(_) => {
                tracing::error!(message_id = %message.id, dead_letter_topic = %dlq, error = %error, "failed for good; moved to the dead-letter topic");
                Outcome::Settled
            }
            Err(send) => {
                tracing::error!(message_id = %message.id, dead_letter_topic = %dlq, error = %error, send_error = %send, "failed for good and could not be dead-lettered; left to the subscription");
                Outcome::Unsettled(error)
            }
        }
    }
}
