//! Runs a function on one custom-handler invocation and settles the
//! outcome: the HTTP answer in the `res` output; for a queue message, a
//! retry re-enqueued with the policy's backoff, or a dead letter in the
//! function's own dead-letter queue, before the host deletes the delivery.
//!
//! The host's own retry (the queue's `visibilityTimeout`, then
//! `<queue>-poison` after `maxDequeueCount`) is kept for when this cannot
//! run: a settlement that fails answers 500, so the host keeps the message.

use std::{sync::Arc, time::Duration};

use cloudfn_core::{
    Context, Error, Function, Message, Trigger, conventions,
    conventions::Settlement,
    messaging::dead_letter,
    provider::{ContextBuilder, Event, HttpRouter, Invoke, Services},
};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::events::{
    InvocationRequest, InvocationResponse, binding, http, queue, queue::Envelope, schedule,
    storage, topic,
};

/// Puts envelopes on Storage queues: what settling a delivery needs of the
/// queue client.
#[async_trait::async_trait]
pub trait Requeue: Send + Sync {
    /// Puts `envelope` on neutral queue `queue`, visible after `delay`.
    async fn put(&self, queue: &str, envelope: &Envelope, delay: Duration) -> Result<(), Error>;
}

/// What one invocation answers the host: the status (200 once the outcome
/// is settled, 500 when the host must retry) and the body.
pub struct Answer {
    /// 200, or 500 for the host to treat the invocation as failed.
    pub status: u16,
    /// `Outputs`, `Logs` (filled in by the server) and `ReturnValue`.
    pub body: InvocationResponse,
}

impl Answer {
    fn settled() -> Self {
        Self {
            status: 200,
            body: InvocationResponse::default(),
        }
    }

    fn failed(error: &Error) -> Self {
        tracing::error!(error = %error, "the invocation failed; the host keeps the delivery and retries it");
        Self {
            status: 500,
            body: InvocationResponse::default(),
        }
    }
}

/// One function of the app, ready to run on the host's invocations.
pub struct Dispatcher {
    function: Arc<Function>,
    services: Services,
    requeue: Option<Arc<dyn Requeue>>,
    /// The function's own route, for the wrapped HTTP form.
    router: Option<HttpRouter>,
}

impl Dispatcher {
    /// A dispatcher for `function`. Without `requeue` (no storage account
    /// configured) failures are left to the host's retries.
    pub fn new(
        function: Arc<Function>,
        services: Services,
        requeue: Option<Arc<dyn Requeue>>,
    ) -> Result<Self, Error> {
        let router = match function.trigger() {
            Trigger::Http { .. } => Some(HttpRouter::new(std::slice::from_ref(&function))?),
            _ => None,
        };
        Ok(Self {
            function,
            services,
            requeue,
            router,
        })
    }

    fn context(&self, invocation_id: &str, attempt: u32, trace_id: Option<String>) -> Context {
        ContextBuilder::new(&self.function, &self.services)
            .invocation_id(invocation_id)
            .attempt(attempt)
            .trace_id(trace_id)
            .build()
    }

    /// Runs the function on `request` (invocation `invocation_id`) and
    /// settles the outcome. A payload the trigger cannot have sent is a
    /// bad-input error naming what is wrong.
    pub async fn handle(
        &self,
        request: &InvocationRequest,
        invocation_id: &str,
    ) -> Result<Answer, Error> {
        let function = &*self.function;
        match function.trigger() {
            Trigger::Http { .. } => {
                let response = match http::decode(request) {
                    Ok(http) => {
                        let trace_id = cloudfn_server::trace_id_of(&http);
                        let router = self.router.as_ref().ok_or_else(|| {
                            Error::internal(format!("function `{}` has no route", function.name()))
                        })?;
                        router
                            .handle(http, |_| self.context(invocation_id, 1, trace_id))
                            .await
                    }
                    // The caller's request cannot be read: the caller's 400.
                    Err(error) => cloudfn_core::HttpResponse::from_error(&error),
                };
                let mut answer = Answer::settled();
                answer
                    .body
                    .outputs
                    .insert(binding::RESPONSE.into(), to_raw(&http::encode(response))?);
                Ok(answer)
            }
            Trigger::Queue { queue: name, .. } => {
                let message = queue::decode(request, name)?;
                Ok(self.settle_queue(message, invocation_id, name).await)
            }
            Trigger::Topic { topic: name } => {
                let message = topic::decode(request, name)?;
                let ctx = self.context(invocation_id, message.attempt, None);
                let Err(error) = function.invoke(Event::Message(message.clone()), ctx).await else {
                    return Ok(Answer::settled());
                };
                match conventions::settle(&error, message.attempt, &function.policy().retry) {
                    // Service Bus redelivers once the host abandons the message.
                    Settlement::Retry { .. } => Ok(Answer {
                        status: 500,
                        body: InvocationResponse::default(),
                    }),
                    Settlement::DeadLetter => Ok(self.dead_letter(&message, &error).await),
                }
            }
            Trigger::Schedule { cron } => {
                let tick = schedule::decode(request, cron)?;
                let letter = Message::json(invocation_id, function.name(), &tick)?;
                Ok(self
                    .retrying(Event::Tick(tick), letter, invocation_id)
                    .await)
            }
            Trigger::Storage { bucket, events } => {
                let change = if request.has_binding(binding::EVENT) {
                    match storage::decode_event_grid(request)? {
                        Some(change) => change,
                        None => return Ok(Answer::settled()),
                    }
                } else {
                    storage::decode_blob(request, bucket)?
                };
                // An Event Grid subscription covers the whole account.
                if change.bucket != *bucket || !events.contains(&change.kind) {
                    return Ok(Answer::settled());
                }
                let letter = Message::json(invocation_id, &change.bucket, &change)?;
                Ok(self
                    .retrying(Event::Storage(change), letter, invocation_id)
                    .await)
            }
            Trigger::Step => Err(Error::internal(format!(
                "function `{}` is a step function: the app's workflow orchestrator calls it \
                 in the process, and the host has no binding for it",
                function.name()
            ))),
        }
    }

    /// Runs a queue message; a failure is settled by the retry policy:
    /// re-enqueued with its backoff and one more attempt counted, or
    /// dead-lettered. Either way the host then deletes this delivery.
    async fn settle_queue(&self, message: Message, invocation_id: &str, queue: &str) -> Answer {
        let function = &*self.function;
        let ctx = self.context(invocation_id, message.attempt, None);
        let Err(error) = function.invoke(Event::Message(message.clone()), ctx).await else {
            return Answer::settled();
        };
        match conventions::settle(&error, message.attempt, &function.policy().retry) {
            Settlement::Retry { delay } => {
                let Some(requeue) = &self.requeue else {
                    return Answer::failed(&error);
                };
                match requeue
                    .put(queue, &Envelope::retry_of(&message), delay)
                    .await
                {
                    Ok(()) => {
                        tracing::info!(message_id = %message.id, attempt = message.attempt, ?delay, "retry enqueued after the backoff");
                        Answer::settled()
                    }
                    Err(e) => Answer::failed(&e),
                }
            }
            Settlement::DeadLetter => self.dead_letter(&message, &error).await,
        }
    }

    /// Runs an event no queue delivers (a timer, a blob change) with the
    /// function's retry policy in this invocation: the host retries neither
    /// as the policy says. What fails for good is dead-lettered.
    async fn retrying(&self, event: Event, letter: Message, invocation_id: &str) -> Answer {
        let context = |attempt| self.context(invocation_id, attempt, None);
        match self.function.invoke_retrying(event, context).await {
            Ok(()) => Answer::settled(),
            Err((error, attempt)) => {
                let mut letter = letter;
                letter.attempt = attempt;
                self.dead_letter(&letter, &error).await
            }
        }
    }

    /// Sends `message`, which failed for good with `error`, to the
    /// function's dead-letter queue with the dead-letter attributes.
    async fn dead_letter(&self, message: &Message, error: &Error) -> Answer {
        let function = &*self.function;
        let Some(dlq) =
            conventions::failure_queue(function.name(), function.trigger(), function.policy())
        else {
            return Answer::failed(error);
        };
        let Some(requeue) = &self.requeue else {
            return Answer::failed(error);
        };
        let copy = dead_letter::copy_of(function.name(), message, error);
        match requeue
            .put(
                &dlq,
                &Envelope::new(message.id.clone(), &copy),
                Duration::ZERO,
            )
            .await
        {
            Ok(()) => {
                tracing::error!(message_id = %message.id, dead_letter_queue = %dlq, error = %error, "failed for good; moved to the dead-letter queue");
                Answer::settled()
            }
            Err(e) => Answer::failed(&e),
        }
    }
}

fn to_raw(value: &impl Serialize) -> Result<Box<RawValue>, Error> {
    serde_json::value::to_raw_value(value)
        .map_err(|e| Error::internal(format!("cannot serialise the answer: {e}")))
}
