//! The invocation engine: what every provider calls to run a function once
//! its platform's event is read — duplicate suppression, the deadline, panics
//! caught per invocation, HTTP errors as responses, and batches with partial
//! failure and FIFO order.

use std::{future::Future, panic::AssertUnwindSafe, time::Duration};

use futures::FutureExt;
use tracing::Instrument;

use crate::{
    Context, Error, Function, HttpRequest, HttpResponse, IdempotencyKey, Message, Trigger,
    event::{Event, Output},
    idempotency::{Claim, ClaimToken},
};

/// Runs a [`Function`] on neutral events: what a provider calls once it has
/// read its platform's event. Handler authors never need it.
///
/// ```
/// use cloudfn_core::{Context, Error, Function, HttpRequest, HttpResponse, Method};
/// use cloudfn_core::provider::{ContextBuilder, Invoke, Services};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let f = Function::http("hi", Method::Get, "/", |_: HttpRequest, _: Context| async {
///     Ok::<_, Error>(HttpResponse::text(200, "hi"))
/// });
/// let ctx = ContextBuilder::new(&f, &Services::detached("test")).build();
/// let request = HttpRequest::new(http::Method::GET, "/");
/// assert_eq!(f.invoke_http(request, ctx).await.status, 200);
/// # });
/// ```
pub trait Invoke {
    /// Runs one invocation: duplicate suppression, the deadline, and a panic
    /// caught as an [`crate::ErrorKind::Internal`] error of this invocation
    /// alone; all inside a tracing span naming the function, invocation and
    /// attempt.
    fn invoke(
        &self,
        event: Event,
        ctx: Context,
    ) -> impl Future<Output = Result<Output, Error>> + Send;

    /// Runs an HTTP invocation and always produces a response: errors become
    /// their kind's status with a JSON body. Internal errors are logged in full
    /// but answered without detail, so nothing private leaks to callers.
    fn invoke_http(
        &self,
        request: HttpRequest,
        ctx: Context,
    ) -> impl Future<Output = HttpResponse> + Send;

    /// Runs a batch of messages, each with its own context, and returns each
    /// one's result in order. One failure does not fail the others. On a FIFO
    /// trigger the messages of one ordering key run one at a time, in order
    /// (different keys side by side), and after a failure the later messages
    /// of that key are not attempted (and fail retryably) so their order holds.
    fn invoke_batch(
        &self,
        batch: Vec<(Message, Context)>,
    ) -> impl Future<Output = Vec<Result<(), Error>>> + Send;
}

impl Invoke for Function {
    fn invoke(
        &self,
        event: Event,
        ctx: Context,
    ) -> impl Future<Output = Result<Output, Error>> + Send {
        self.run(event, ctx)
    }

    fn invoke_http(
        &self,
        request: HttpRequest,
        ctx: Context,
    ) -> impl Future<Output = HttpResponse> + Send {
        self.run_http(request, ctx)
    }

    fn invoke_batch(
        &self,
        batch: Vec<(Message, Context)>,
    ) -> impl Future<Output = Vec<Result<(), Error>>> + Send {
        self.run_batch(batch)
    }
}

impl Function {
    /// Runs one invocation: duplicate suppression, the deadline, and a panic
    /// caught as an [`crate::ErrorKind::Internal`] error of this invocation
    /// alone; all inside a tracing span naming the function, invocation and
    /// attempt.
    pub(crate) async fn run(&self, event: Event, ctx: Context) -> Result<Output, Error> {
        let span = tracing::info_span!(
            "invocation",
            function = %self.name,
            invocation_id = %ctx.invocation_id(),
            attempt = ctx.attempt(),
            trace_id = tracing::field::Empty,
        );
        if let Some(trace_id) = ctx.trace_id() {
            span.record("trace_id", trace_id);
        }
        async move {
            let key = self.idempotency_key(&event);
            let mut claim = None;
            if let Some(key) = &key {
                match self.claim(key, &ctx).await? {
                    Some(token) => claim = Some(token),
                    None => {
                        tracing::info!(key = %key, "duplicate delivery suppressed");
                        return Ok(Output::Done);
                    }
                }
            }
            let result = self.run_guarded(event, ctx.clone()).await;
            if let (Some(key), Some(token), Some(idempotency)) = (&key, claim, &self.policy.idempotency) {
                let store = &ctx.services().idempotency;
                let recorded = match &result {
                    Ok(_) => store.complete(key, token, idempotency.ttl).await,
                    Err(_) => store.release(key, token).await,
                };
                if let Err(e) = recorded {
                    tracing::warn!(error = %e, key = %key, "idempotency store failed");
                }
            }
            match &result {
                Ok(_) => tracing::debug!("invocation succeeded"),
                Err(e) => tracing::warn!(kind = %e.kind(), retryable = e.is_retryable(), error = %e.message(), "invocation failed"),
            }
            result
        }
        .instrument(span)
        .await
    }

    /// Claims `key`; `None` if it was processed already. While another
    /// invocation holds it, waits for that one to finish (rather than failing
    /// and spending an attempt), up to this invocation's deadline.
    async fn claim(&self, key: &str, ctx: &Context) -> Result<Option<ClaimToken>, Error> {
        let store = &ctx.services().idempotency;
        let mut pause = Duration::from_millis(5);
        loop {
            match store.claim(key, self.policy.timeout).await? {
                Claim::Acquired(token) => return Ok(Some(token)),
                Claim::Completed => return Ok(None),
                Claim::InProgress if ctx.remaining() > pause => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(250));
                }
                Claim::InProgress => {
                    return Err(Error::unavailable(format!(
                        "key `{key}` is still being processed by another invocation"
                    )));
                }
            }
        }
    }

    async fn run_guarded(&self, event: Event, ctx: Context) -> Result<Output, Error> {
        let remaining = ctx.remaining();
        let run = AssertUnwindSafe((self.handler)(event, ctx)).catch_unwind();
        match tokio::time::timeout(remaining, run).await {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => Err(Error::internal(format!(
                "handler panicked: {}",
                panic_message(panic.as_ref())
            ))),
            Err(_) => Err(Error::timeout(format!(
                "function `{}` ran past its deadline ({:?} left at start)",
                self.name, remaining
            ))),
        }
    }

    fn idempotency_key(&self, event: &Event) -> Option<String> {
        let (Some(idempotency), Event::Message(message)) = (&self.policy.idempotency, event) else {
            return None;
        };
        let key = match &idempotency.key {
            IdempotencyKey::MessageId => message.id.clone(),
            // A body without the field has no business key; fall back to the
            // message id so redeliveries are still suppressed.
            IdempotencyKey::BodyField(pointer) => {
                serde_json::from_slice::<serde_json::Value>(&message.body)
                    .ok()
                    .and_then(|body| body.pointer(pointer).map(key_text))
                    .unwrap_or_else(|| message.id.clone())
            }
        };
        Some(format!("{}/{}", self.name, key))
    }

    /// Runs an HTTP invocation and always produces a response: errors become
    /// their kind's status with a JSON body. Internal errors are logged in full
    /// but answered without detail, so nothing private leaks to callers.
    pub(crate) async fn run_http(&self, request: HttpRequest, ctx: Context) -> HttpResponse {
        if request.body.len() > self.policy.max_body_bytes {
            return HttpResponse::from_error(&Error::too_large(format!(
                "request body of {} bytes exceeds the limit of {} bytes",
                request.body.len(),
                self.policy.max_body_bytes
            )));
        }
        let invocation_id = ctx.invocation_id().to_owned();
        match self.run(Event::Http(request), ctx).await {
            Ok(Output::Http(response)) => response,
            Ok(Output::Done) => HttpResponse::new(204),
            Err(e) if e.kind() == crate::ErrorKind::Internal => HttpResponse::from_error(
                &Error::internal(format!("internal error in invocation {invocation_id}")),
            ),
            Err(e) => HttpResponse::from_error(&e),
        }
    }

    /// Runs a batch of messages, each with its own context, and returns each
    /// one's result in order. One failure does not fail the others. On a FIFO
    /// trigger the messages of one ordering key run one at a time, in order
    /// (different keys side by side), and after a failure the later messages
    /// of that key are not attempted (and fail retryably) so their order holds.
    pub(crate) async fn run_batch(&self, batch: Vec<(Message, Context)>) -> Vec<Result<(), Error>> {
        let fifo = matches!(self.trigger, Trigger::Queue { fifo: true, .. });
        if !fifo {
            let runs = batch
                .into_iter()
                .map(|(message, ctx)| self.run(Event::Message(message), ctx));
            return futures::future::join_all(runs)
                .await
                .into_iter()
                .map(|r| r.map(|_| ()))
                .collect();
        }
        // Groups run side by side; within a group, one at a time in order,
        // and once one fails the rest of its group is not attempted.
        type Group = (Option<String>, Vec<(usize, Message, Context)>);
        let mut groups: Vec<Group> = Vec::new();
        let total = batch.len();
        for (index, (message, ctx)) in batch.into_iter().enumerate() {
            match groups
                .iter_mut()
                .find(|(key, _)| *key == message.ordering_key)
            {
                Some((_, items)) => items.push((index, message, ctx)),
                None => groups.push((message.ordering_key.clone(), vec![(index, message, ctx)])),
            }
        }
        let runs = groups.into_iter().map(|(key, items)| async move {
            let mut results = Vec::with_capacity(items.len());
            let mut failed = false;
            for (index, message, ctx) in items {
                let result = if failed {
                    Err(Error::unavailable(format!(
                        "not attempted: an earlier message of ordering key {key:?} failed"
                    )))
                } else {
                    self.run(Event::Message(message), ctx).await.map(|_| ())
                };
                failed |= result.is_err();
                results.push((index, result));
            }
            results
        });
        let mut ordered: Vec<Option<Result<(), Error>>> = (0..total).map(|_| None).collect();
        for (index, result) in futures::future::join_all(runs).await.into_iter().flatten() {
            ordered[index] = Some(result);
        }
        ordered
            .into_iter()
            .map(|r| r.expect("every message has a result"))
            .collect()
    }
}

fn key_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload")
}
