//! A function: a name, a trigger, a handler and the policies around it.

use std::{collections::BTreeSet, panic::AssertUnwindSafe, sync::Arc, time::Duration};

use bytes::Bytes;
use futures::FutureExt;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::{
    Context, Error, Event, HttpRequest, HttpResponse, Idempotency, IdempotencyKey, Message, Method,
    Output, RetryPolicy, ScheduledTick, StorageEvent, StorageEventKind, Trigger,
    handler::{self, ErasedHandler, Handler},
    idempotency::{Claim, ClaimToken},
    messaging::Permissions,
    policy::millis,
};

/// The policies of one function; every field has a default that suits a
/// function nobody tuned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Retries of failed deliveries (queue, topic, schedule and storage triggers).
    pub retry: RetryPolicy,
    /// How long one invocation may run (default 30 s).
    #[serde(with = "millis")]
    pub timeout: Duration,
    /// Where deliveries go once they fail for good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<String>,
    /// How many messages one invocation receives at most (default 10).
    pub batch_size: u32,
    /// How many invocations may run at once; `None` leaves it to the platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// Duplicate suppression for message triggers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency: Option<Idempotency>,
    /// The largest HTTP request body accepted (default 6 MiB, Lambda's limit).
    pub max_body_bytes: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
            dead_letter: None,
            batch_size: 10,
            max_concurrency: None,
            idempotency: None,
            max_body_bytes: 6 * 1024 * 1024,
        }
    }
}

/// One function of an [`crate::App`].
///
/// ```
/// use std::time::Duration;
/// use cloudfn_core::{Context, Error, Function, Message, RetryPolicy};
///
/// #[derive(serde::Deserialize)]
/// struct Order { id: String }
///
/// async fn charge(msg: Message<Order>, ctx: Context) -> Result<(), Error> {
///     ctx.topic("order-paid").publish(&serde_json::json!({"id": msg.body.id})).await?;
///     Ok(())
/// }
///
/// let f = Function::queue("charge", "orders", charge)
///     .retry(RetryPolicy::new(5).initial_delay(Duration::from_millis(200)))
///     .dead_letter("orders-dlq")
///     .publishes_to("order-paid");
/// assert_eq!(f.name(), "charge");
/// ```
#[derive(Clone)]
pub struct Function {
    name: String,
    trigger: Trigger,
    handler: ErasedHandler,
    policy: Policy,
    permissions: Arc<Permissions>,
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Function")
            .field("name", &self.name)
            .field("trigger", &self.trigger)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Function {
    fn with(name: impl Into<String>, trigger: Trigger, handler: ErasedHandler) -> Self {
        Self {
            name: name.into(),
            trigger,
            handler,
            policy: Policy::default(),
            permissions: Arc::default(),
        }
    }

    /// An HTTP function answering `method` on `route` (`/orders/{id}`).
    pub fn http(
        name: impl Into<String>,
        method: Method,
        route: impl Into<String>,
        handler: impl Handler<HttpRequest, HttpResponse>,
    ) -> Self {
        Self::with(
            name,
            Trigger::http(method, route),
            handler::erase_http(handler),
        )
    }

    /// An HTTP function served by a `tower::Service`, such as an axum `Router`
    /// (mount it on a tail route like `/api/{*rest}` to hand it a subtree).
    pub fn http_service<S, B>(
        name: impl Into<String>,
        method: Method,
        route: impl Into<String>,
        service: S,
    ) -> Self
    where
        S: handler::HttpService<B>,
        B: http_body::Body<Data = Bytes, Error: Into<handler::BoxError>> + Send + 'static,
    {
        Self::with(
            name,
            Trigger::http(method, route),
            handler::erase_service(service),
        )
    }

    /// A function fed by `queue`, one message per call; the body is read as JSON into `T`.
    pub fn queue<T, H>(name: impl Into<String>, queue: impl Into<String>, handler: H) -> Self
    where
        T: serde::de::DeserializeOwned + Send + 'static,
        H: Handler<Message<T>, ()>,
    {
        Self::with(name, Trigger::queue(queue), handler::erase_message(handler))
    }

    /// Like [`Function::queue`], on a FIFO queue: messages sharing an ordering
    /// key are handled one at a time, in order.
    pub fn fifo_queue<T, H>(name: impl Into<String>, queue: impl Into<String>, handler: H) -> Self
    where
        T: serde::de::DeserializeOwned + Send + 'static,
        H: Handler<Message<T>, ()>,
    {
        Self::with(
            name,
            Trigger::fifo_queue(queue),
            handler::erase_message(handler),
        )
    }

    /// A function subscribed to `topic`.
    pub fn topic<T, H>(name: impl Into<String>, topic: impl Into<String>, handler: H) -> Self
    where
        T: serde::de::DeserializeOwned + Send + 'static,
        H: Handler<Message<T>, ()>,
    {
        Self::with(name, Trigger::topic(topic), handler::erase_message(handler))
    }

    /// A function fired by a five-field cron expression (UTC).
    pub fn schedule(
        name: impl Into<String>,
        cron: impl Into<String>,
        handler: impl Handler<ScheduledTick, ()>,
    ) -> Self {
        Self::with(name, Trigger::schedule(cron), handler::erase_tick(handler))
    }

    /// A function fired by changes in `bucket`.
    pub fn storage(
        name: impl Into<String>,
        bucket: impl Into<String>,
        events: impl IntoIterator<Item = StorageEventKind>,
        handler: impl Handler<StorageEvent, ()>,
    ) -> Self {
        Self::with(
            name,
            Trigger::storage(bucket, events),
            handler::erase_storage(handler),
        )
    }

    /// Sets the retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.policy.retry = retry;
        self
    }

    /// Sets how long one invocation may run.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.policy.timeout = timeout;
        self
    }

    /// Sends deliveries that fail for good to queue `queue`.
    pub fn dead_letter(mut self, queue: impl Into<String>) -> Self {
        self.policy.dead_letter = Some(queue.into());
        self
    }

    /// Sets the most messages one invocation receives.
    pub fn batch_size(mut self, size: u32) -> Self {
        self.policy.batch_size = size;
        self
    }

    /// Caps concurrent invocations.
    pub fn max_concurrency(mut self, limit: u32) -> Self {
        self.policy.max_concurrency = Some(limit);
        self
    }

    /// Suppresses duplicate deliveries.
    pub fn idempotent(mut self, idempotency: Idempotency) -> Self {
        self.policy.idempotency = Some(idempotency);
        self
    }

    /// Sets the largest HTTP request body accepted.
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.policy.max_body_bytes = limit;
        self
    }

    /// Declares that the handler sends to queue `queue`; it may send nowhere else.
    pub fn sends_to(mut self, queue: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.permissions)
            .queues
            .insert(queue.into());
        self
    }

    /// Declares that the handler publishes to topic `topic`; it may publish nowhere else.
    pub fn publishes_to(mut self, topic: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.permissions)
            .topics
            .insert(topic.into());
        self
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The trigger.
    pub fn trigger(&self) -> &Trigger {
        &self.trigger
    }

    /// The policies.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The queues the function sends to.
    pub fn sends(&self) -> &BTreeSet<String> {
        &self.permissions.queues
    }

    /// The topics the function publishes to.
    pub fn publishes(&self) -> &BTreeSet<String> {
        &self.permissions.topics
    }

    pub(crate) fn permissions(&self) -> Arc<Permissions> {
        self.permissions.clone()
    }

    /// Runs one invocation: duplicate suppression, the deadline, and a panic
    /// caught as an [`crate::ErrorKind::Internal`] error of this invocation
    /// alone; all inside a tracing span naming the function, invocation and
    /// attempt.
    pub async fn invoke(&self, event: Event, ctx: Context) -> Result<Output, Error> {
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
    pub async fn invoke_http(&self, request: HttpRequest, ctx: Context) -> HttpResponse {
        if request.body.len() > self.policy.max_body_bytes {
            return HttpResponse::from_error(&Error::too_large(format!(
                "request body of {} bytes exceeds the limit of {} bytes",
                request.body.len(),
                self.policy.max_body_bytes
            )));
        }
        let invocation_id = ctx.invocation_id().to_owned();
        match self.invoke(Event::Http(request), ctx).await {
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
    pub async fn invoke_batch(&self, batch: Vec<(Message, Context)>) -> Vec<Result<(), Error>> {
        let fifo = matches!(self.trigger, Trigger::Queue { fifo: true, .. });
        if !fifo {
            let runs = batch
                .into_iter()
                .map(|(message, ctx)| self.invoke(Event::Message(message), ctx));
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
                    self.invoke(Event::Message(message), ctx).await.map(|_| ())
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
