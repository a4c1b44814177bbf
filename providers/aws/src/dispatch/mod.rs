//! Runs the function a bootstrap serves on one Lambda event, and settles
//! the outcome on the platform: the HTTP answer, `batchItemFailures`,
//! backoff through visibility changes, and dead letters sent in code.

mod batch;
mod report;

use std::{sync::Arc, time::Instant};

use bytes::Bytes;
use cloudfn_core::{
    Context, Error, Function, HttpResponse, Message, Trigger, conventions, propagation,
    provider::{ContextBuilder, Event, HttpRouter, Invoke, Output, Services},
    workflow::StepCall,
};
use serde::Serialize;
use serde_json::Value;

pub use report::QueueSettler;

use crate::events::{http, queue, schedule, shape::Shape, storage, topic};
use report::{DeadLetter, Plan};

/// What answering the Runtime API, on the same host, takes at most: the
/// reporting after the handlers stops this long before Lambda's deadline.
const ANSWER_TIME: std::time::Duration = std::time::Duration::from_millis(10);

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
    /// The context of one run of `function` on delivery `attempt`; `None`
    /// when the platform retries the event itself without saying which
    /// delivery this is (Lambda's asynchronous invocations).
    fn context(&self, function: &Function, services: &Services, attempt: Option<u32>) -> Context {
        let mut ctx =
            ContextBuilder::new(function, services).invocation_id(self.request_id.clone());
        ctx = match attempt {
            Some(attempt) => ctx.attempt(attempt),
            None => ctx.attempt_unknown(),
        };
        if let Some(deadline) = self.deadline {
            // Stop the handler a little before Lambda stops the sandbox, so
            // there is time left to report.
            let margin =
                conventions::report_margin(deadline.saturating_duration_since(Instant::now()));
            ctx = ctx.deadline(deadline.checked_sub(margin).unwrap_or(deadline));
        }
        ctx.trace_id(self.trace_id.clone()).build()
    }

    /// When the reporting after the handlers must be done by: Lambda's
    /// deadline, less the time to answer.
    fn report_until(&self) -> Option<tokio::time::Instant> {
        let deadline = self.deadline?;
        let until = deadline.checked_sub(ANSWER_TIME).unwrap_or(deadline);
        Some(tokio::time::Instant::from_std(until))
    }
}

/// Runs one function on Lambda events.
#[derive(Clone)]
pub struct Dispatcher {
    function: Arc<Function>,
    services: Services,
    settler: Option<Arc<dyn QueueSettler>>,
    /// The function's own route: a Function URL or an ALB passes on every
    /// method and path, so the runtime routes as the local runtime does.
    router: Result<HttpRouter, Error>,
}

impl Dispatcher {
    /// A dispatcher for `function`. With `settler` (the SQS client), a
    /// message that fails retryably is made visible again after the
    /// function's backoff delay instead of the queue's whole visibility
    /// timeout, and a delivery that fails for good is moved to the
    /// dead-letter queue; without it, failures are left to the queue and
    /// to Lambda.
    pub fn new(
        function: Arc<Function>,
        services: Services,
        settler: Option<Arc<dyn QueueSettler>>,
    ) -> Self {
        Self {
            router: HttpRouter::new(std::slice::from_ref(&function)),
            function,
            services,
            settler,
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
                let response = match http::decode(payload, source) {
                    Ok(request) => {
                        // A caller's W3C trace goes on, as on every provider;
                        // without one, X-Ray's.
                        let caller = request
                            .header(propagation::TRACEPARENT)
                            .and_then(propagation::trace_of_traceparent);
                        let invocation = match caller {
                            Some(trace) => std::borrow::Cow::Owned(Invocation {
                                trace_id: Some(trace),
                                ..invocation.clone()
                            }),
                            None => std::borrow::Cow::Borrowed(invocation),
                        };
                        let router = self.router.as_ref().map_err(Clone::clone)?;
                        router
                            .handle(request, |f| invocation.context(f, &self.services, Some(1)))
                            .await
                    }
                    // What the caller sent cannot be read (a body marked
                    // base64 that is not): the caller's 400, not a Lambda
                    // error the integration would turn into a 502.
                    Err(error) => HttpResponse::from_error(&error),
                };
                to_json(&http::encode(response, source))
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
                let events = messages
                    .into_iter()
                    .map(|mut message| {
                        neutral_source(function, &mut message);
                        (Event::Message(message.clone()), message)
                    })
                    .collect();
                self.asynchronous(events, invocation).await
            }
            Trigger::Schedule { cron } => {
                if !shape_of(payload)?.is_scheduled() {
                    return Err(unexpected(function, schedule::EXPECTED, payload));
                }
                let tick = schedule::decode(payload, cron)?;
                let letter = Message::json(invocation.request_id.clone(), function.name(), &tick)?;
                self.asynchronous(vec![(Event::Tick(tick), letter)], invocation)
                    .await
            }
            Trigger::Storage { .. } => {
                if !shape_of(payload)?.is_s3() {
                    return Err(unexpected(function, storage::EXPECTED, payload));
                }
                let events = storage::decode(payload)?
                    .into_iter()
                    .map(|change| {
                        let letter =
                            Message::json(invocation.request_id.clone(), &change.bucket, &change)?;
                        Ok((Event::Storage(change), letter))
                    })
                    .collect::<Result<_, Error>>()?;
                self.asynchronous(events, invocation).await
            }
            Trigger::Step => {
                // Step Functions' Lambda task hands the payload the state
                // machine built (`deploy::state_machine`) and takes the
                // answer as the step's output; an error goes back as
                // `cloudfn.<kind>`, which the state's `Retry` and `Catch` name.
                let call: StepCall = serde_json::from_slice(payload).map_err(|e| {
                    Error::bad_input(format!(
                        "function `{}` (step trigger) cannot read this event: expected a step \
                         call {{workflow, execution, step, attempt, input}}: {e}",
                        function.name()
                    ))
                })?;
                let ctx = invocation.context(function, &self.services, Some(call.attempt));
                match function
                    .invoke(Event::Message(call.into_message()?), ctx)
                    .await?
                {
                    Output::Value(output) => to_json(&output),
                    Output::Done | Output::Http(_) => to_json(&Value::Null),
                }
            }
        }
    }

    /// Runs events Lambda delivers asynchronously and retries itself (SNS,
    /// EventBridge, schedules, storage changes), each with the message its
    /// dead letter would carry. Every event runs. One that fails for good
    /// goes to the dead-letter queue at once, as a queue's would, since
    /// retrying cannot mend it; a retryable failure fails the invocation
    /// once all ran, so Lambda retries it and, after its last retry, hands
    /// it to the function's failure destination (the same queue).
    ///
    /// Lambda does not say which delivery of the event this is, so handlers
    /// see attempt 1 and `is_final_attempt()` true: any delivery may be the
    /// last.
    async fn asynchronous(
        &self,
        events: Vec<(Event, Message)>,
        invocation: &Invocation,
    ) -> Result<Bytes, Error> {
        let (function, services) = (&*self.function, &self.services);
        let mut plan = Plan::default();
        let mut retry = None;
        for (event, message) in events {
            let ctx = invocation.context(function, services, None);
            match function.invoke(event, ctx).await {
                Ok(_) => {}
                Err(error) if error.is_retryable() => retry = Some(error),
                Err(error) => plan
                    .dead
                    .push(DeadLetter::of(function, &message, &error, "")),
            }
        }
        let dlq =
            conventions::failure_queue(function.name(), function.trigger(), function.policy())
                .unwrap_or_default();
        let unsent = report::carry_out(
            self.settler.as_deref(),
            function,
            ("", &dlq),
            plan,
            invocation.report_until(),
        )
        .await;
        match (retry, unsent.into_iter().next()) {
            (Some(error), _) => Err(error),
            // Lambda's retries and failure destination keep it instead.
            (None, Some(letter)) => Err(letter.error),
            (None, None) => Ok(NULL),
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
