//! Runs the function a bootstrap serves on one Lambda event, and settles
//! the outcome on the platform: the HTTP answer, `batchItemFailures`,
//! backoff through visibility changes, and dead letters sent in code.
use std::{sync::Arc, time::Instant};

use bytes::Bytes;
use cloudfn_core::{
    Context, Error, Function, Message, OutgoingMessage, Trigger,
    conventions::{self, Settlement},
    messaging::dead_letter,
    provider::{ContextBuilder, Event, Invoke, Services},
};
use serde::Serialize;
use serde_json::Value;

use crate::events::{http, queue, schedule, shape::Shape, storage, topic};

/// Makes a failed delivery visible again after a delay: the retry
/// policy's backoff, instead of the queue's whole visibility timeout.
/// SQS's client implements it (`ChangeMessageVisibility`).
#[async_trait::async_trait]
pub trait Redelivery: Send + Sync {
    /// Redelivers the message `receipt` names, from `queue` (its neutral
    /// name), after `delay`.
    async fn redeliver_after(
        &self,
        queue: &str,
        receipt: &str,
        delay: std::time::Duration,
    ) -> Result<(), Error>;
}

/// What an invocation that produces nothing answers.
const NULL: Bytes = Bytes::from_static(b"null");

/// What the Runtime API says about one invocation.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    /// `Lambda-Runtime-Aws-Request-Id`.
    pub request_id: String,
    /// From `Lambda-Runtime-Deadline-Ms`.
    pub deadline: Option<Instant>,
    /// `Lambda-Runtime-Trace-Id` (X-Ray).
    pub trace_id: Option<String>,
}

impl Invocation {
    fn context(&self, function: &Function, services: &Services, attempt: u32) -> Context {
        let mut ctx = ContextBuilder::new(function, services)
            .invocation_id(self.request_id.clone())
            .attempt(attempt);
        if let Some(deadline) = self.deadline {
            // Stop the handler a little before Lambda stops the sandbox, so
            // there is time left to report.
            let margin =
                conventions::report_margin(deadline.saturating_duration_since(Instant::now()));
            ctx = ctx.deadline(deadline.checked_sub(margin).unwrap_or(deadline));
        }
        if let Some(trace_id) = &self.trace_id {
            ctx = ctx.trace_id(trace_id.clone());
        }
        ctx.build()
    }
}

/// Runs one function on Lambda events.
#[derive(Clone)]
pub struct Dispatcher {
    function: Arc<Function>,
    services: Services,
    redelivery: Option<Arc<dyn Redelivery>>,
}

impl Dispatcher {
    /// A dispatcher for `function`. With `redelivery` (the SQS client), a
    /// message that fails retryably is made visible again after the
    /// function's backoff delay instead of the queue's whole visibility
    /// timeout.
    pub fn new(
        function: Arc<Function>,
        services: Services,
        redelivery: Option<Arc<dyn Redelivery>>,
    ) -> Self {
        Self {
            function,
            services,
            redelivery,
        }
    }

    /// The function served.
    pub fn function(&self) -> &Function {
        &self.function
    }

    /// Runs the function on one Lambda event and returns what to answer the
    /// Runtime API with, as JSON. HTTP functions always answer an HTTP
    /// response; queue functions answer `batchItemFailures`; other events
    /// answer `null`. An event of a shape the trigger cannot come from is a
    /// bad-input error naming the shapes expected.
    pub async fn handle(&self, payload: &[u8], invocation: &Invocation) -> Result<Bytes, Error> {
        let function = &*self.function;
        // The trigger says which shapes can come; a probe of the few keys
        // that tell them apart picks one, and the event is then read once,
        // straight into that shape's type.
        match function.trigger() {
            Trigger::Http { .. } => {
                let Some(source) = http::source_of(payload) else {
                    return Err(unexpected(function, http::EXPECTED, payload));
                };
                let request = http::decode(payload, source)?;
                let ctx = invocation.context(function, &self.services, 1);
                to_json(&http::encode(
                    function.invoke_http(request, ctx).await,
                    source,
                ))
            }
            Trigger::Queue { .. } => {
                if !shape_of(payload)?.is_sqs() {
                    return Err(unexpected(function, queue::EXPECTED, payload));
                }
                self.sqs_batch(queue::decode(payload)?, invocation).await
            }
            Trigger::Topic { .. } => {
                let shape = shape_of(payload)?;
                if shape.is_sqs() {
                    return self.sqs_batch(queue::decode(payload)?, invocation).await;
                }
                let messages = if shape.is_sns() {
                    topic::decode_sns(payload)?
                } else if shape.is_eventbridge() {
                    vec![topic::decode_eventbridge(payload)?]
                } else {
                    return Err(unexpected(function, topic::EXPECTED, payload));
                };
                self.deliveries(messages, invocation).await
            }
            Trigger::Schedule { cron } => {
                if !shape_of(payload)?.is_scheduled() {
                    return Err(unexpected(function, schedule::EXPECTED, payload));
                }
                let tick = schedule::decode(payload, cron)?;
                let ctx = invocation.context(function, &self.services, 1);
                function.invoke(Event::Tick(tick), ctx).await.map(|_| NULL)
            }
            Trigger::Storage { .. } => {
                if !shape_of(payload)?.is_s3() {
                    return Err(unexpected(function, storage::EXPECTED, payload));
                }
                for change in storage::decode(payload)? {
                    let ctx = invocation.context(function, &self.services, 1);
                    function.invoke(Event::Storage(change), ctx).await?;
                }
                Ok(NULL)
            }
        }
    }

    /// Messages delivered to a topic function directly (SNS or EventBridge
    /// → Lambda), one after the other.
    async fn deliveries(
        &self,
        messages: Vec<Message>,
        invocation: &Invocation,
    ) -> Result<Bytes, Error> {
        let (function, services) = (&*self.function, &self.services);
        for mut message in messages {
            neutral_source(function, &mut message);
            let ctx = invocation.context(function, services, 1);
            let Err(error) = function.invoke(Event::Message(message.clone()), ctx).await else {
                continue;
            };
            // Lambda retries a failed SNS event itself; a permanent
            // failure would only fail again, so it is dead-lettered now.
            match function.policy().dead_letter.as_deref() {
                Some(dlq) if !error.is_retryable() => {
                    dead_letter_to(function, services, dlq, &message, error).await?
                }
                _ => return Err(error),
            }
        }
        Ok(NULL)
    }
}

/// An SQS batch: each record runs on its own; those that fail come back in
/// `batchItemFailures` (unless a permanent failure went to the dead-letter
/// queue), the rest are deleted by Lambda.
impl Dispatcher {
    /// Runs a decoded batch. For a topic function the queue is its
    /// subscription queue, subscribed with raw message delivery (by the
    /// deployment and the dev emulation alike), so each body is the
    /// published message as it is: there is no envelope to look for.
    async fn sqs_batch(
        &self,
        records: Vec<queue::SqsRecord>,
        invocation: &Invocation,
    ) -> Result<Bytes, Error> {
        let (function, services) = (&*self.function, &self.services);
        let mut kept = Vec::with_capacity(records.len());
        let mut batch = Vec::with_capacity(records.len());
        for record in records {
            let mut message = record.message;
            neutral_source(function, &mut message);
            let ctx = invocation.context(function, services, message.attempt);
            kept.push((
                record.sqs_message_id,
                record.receipt_handle,
                message.clone(),
            ));
            batch.push((message, ctx));
        }
        let results = function.invoke_batch(batch).await;
        let source =
            conventions::consumed_queue(function.name(), function.trigger()).unwrap_or_default();
        let policy = function.policy();
        let mut failed = Vec::new();
        for ((id, receipt, message), result) in kept.into_iter().zip(results) {
            let Err(error) = result else { continue };
            match conventions::settle(&error, message.attempt, &policy.retry) {
                Settlement::Retry { delay } => {
                    self.back_off(&source, &receipt, delay).await;
                    failed.push(id);
                }
                Settlement::DeadLetter => {
                    let dlq = conventions::dead_letter_queue(policy, &source);
                    if dead_letter_to(function, services, &dlq, &message, error)
                        .await
                        .is_err()
                    {
                        // Reported failed, so the queue's own redrive keeps it.
                        failed.push(id);
                    }
                }
            }
        }
        to_json(&queue::batch_response(failed))
    }

    /// Applies the retry policy's backoff: the failed message becomes visible
    /// again after `delay`, not the queue's visibility timeout.
    async fn back_off(&self, queue: &str, receipt: &str, delay: std::time::Duration) {
        let Some(redelivery) = &self.redelivery else {
            return;
        };
        if receipt.is_empty() {
            return;
        }
        if let Err(e) = redelivery.redeliver_after(queue, receipt, delay).await {
            tracing::warn!(queue, error = %e, "could not apply backoff; the queue's visibility timeout applies");
        }
    }
}

/// Moves a delivery that failed for good to dead-letter queue `dlq`, with
/// the error recorded in its attributes, instead of leaving it to be
/// retried until the platform gives up. Gives the error back when sending
/// failed, so the delivery is reported failed and nothing is lost.
async fn dead_letter_to(
    function: &Function,
    services: &Services,
    dlq: &str,
    message: &Message,
    error: Error,
) -> Result<(), Error> {
    let mut dead = OutgoingMessage::new(message.body.clone());
    dead.attributes = message.attributes.clone();
    dead_letter::annotate(
        &mut dead.attributes,
        function.name(),
        &message.source,
        message.attempt,
        &error,
    );
    // FIFO dead-letter queues need a group and a deduplication id; standard
    // queues refuse them.
    if let Some(group) = &message.ordering_key {
        dead.ordering_key = Some(group.clone());
        dead.deduplication_id = Some(message.id.clone());
    }
    match services.queue(dlq).send_message(dead).await {
        Ok(_) => {
            tracing::error!(function = %function.name(), message_id = ?message.id, dead_letter_queue = dlq, attempts = message.attempt, error = %error, "message failed for good; moved to the dead-letter queue");
            Ok(())
        }
        Err(send) => {
            tracing::error!(function = %function.name(), message_id = ?message.id, error = %send, "could not dead-letter a failed message; leaving it to the queue's redrive");
            Err(error)
        }
    }
}

/// Names a message's source by the neutral name the app uses (`orders`),
/// not the physical one its ARN carries (`<stack>-orders`), as on every
/// provider.
fn neutral_source(function: &Function, message: &mut Message) {
    match function.trigger() {
        Trigger::Queue { queue, .. } => message.source.clone_from(queue),
        Trigger::Topic { topic } => message.source.clone_from(topic),
        _ => {}
    }
}

fn shape_of(payload: &[u8]) -> Result<Shape<'_>, Error> {
    Shape::of(payload).map_err(|e| Error::bad_input(format!("the event is not JSON: {e}")))
}

/// The answer to the Runtime API, serialised once from its typed form.
fn to_json(answer: &impl Serialize) -> Result<Bytes, Error> {
    serde_json::to_vec(answer)
        .map(Bytes::from)
        .map_err(|e| Error::internal(format!("cannot serialise the answer: {e}")))
}

/// The error for an event the function cannot take. Only then is the whole
/// event read as a JSON value, to say what came instead.
fn unexpected(function: &Function, expected: &str, event: &[u8]) -> Error {
    let event: Value = match serde_json::from_slice(event) {
        Ok(event) => event,
        Err(e) => return Error::bad_input(format!("the event is not JSON: {e}")),
    };
    let got = match &event {
        Value::Object(map) => format!("an object with keys {:?}", map.keys().collect::<Vec<_>>()),
        other => format!("JSON {}", kind_of(other)),
    };
    Error::bad_input(format!(
        "function `{}` ({} trigger) cannot read this event: expected {expected}; got {got}",
        function.name(),
        function.trigger().kind()
    ))
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
