//! A function: a name, a trigger, a handler and the policies around it; how
//! it is declared (running it is [`crate::provider::Invoke`]'s).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::{
    Access, HttpRequest, HttpResponse, Idempotency, Message, Method, RetryPolicy, ScheduledTick,
    StorageEvent, StorageEventKind, Trigger,
    handler::{self, ErasedHandler, Handler},
    messaging::Permissions,
    policy::millis,
    store::StoreAccess,
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
    /// Who may call an HTTP function (default: private).
    #[serde(default)]
    pub access: Access,
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
            access: Access::Private,
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
    pub(crate) name: String,
    pub(crate) trigger: Trigger,
    pub(crate) handler: ErasedHandler,
    pub(crate) policy: Policy,
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

    /// A function a workflow's `call` step runs ([`crate::workflow`]): the
    /// previous step's output arrives as the body of `Message<T>`, whose
    /// `id` is the step's idempotency key (`{execution}/{step}`, the same on
    /// every attempt); what the handler returns is the step's output.
    ///
    /// ```
    /// use cloudfn_core::{Context, Error, Function, Message};
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Order { id: String, total_cents: u64 }
    ///
    /// async fn charge(msg: Message<Order>, _ctx: Context) -> Result<serde_json::Value, Error> {
    ///     // A payment API called with `msg.id` as its idempotency key charges once.
    ///     Ok(serde_json::json!({"id": msg.body.id, "charged": msg.body.total_cents}))
    /// }
    ///
    /// let f = Function::step("charge", charge);
    /// assert_eq!(f.trigger().kind(), "step");
    /// ```
    pub fn step<T, O, H>(name: impl Into<String>, handler: H) -> Self
    where
        T: serde::de::DeserializeOwned + Send + 'static,
        O: serde::Serialize + Send + 'static,
        H: Handler<Message<T>, O>,
    {
        Self::with(name, Trigger::Step, handler::erase_step(handler))
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

    /// Opens an HTTP function to anyone on the internet; without it, only
    /// callers the platform authenticates may call it ([`Access`]).
    pub fn public(mut self) -> Self {
        self.policy.access = Access::Public;
        self
    }

    /// Lets in callers bearing a JWT from `issuer` (an `https://` URL) for
    /// one of `audience`, checked by the platform's JWT authorizer.
    pub fn jwt(
        mut self,
        issuer: impl Into<String>,
        audience: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.policy.access = Access::Jwt {
            issuer: issuer.into(),
            audience: audience.into_iter().map(Into::into).collect(),
        };
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

    /// Declares that the handler reads store `store` (get only); it may read
    /// no other store.
    pub fn reads_store(mut self, store: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.permissions)
            .stores
            .entry(store.into())
            .or_insert(StoreAccess::Read);
        self
    }

    /// Declares that the handler reads and writes store `store`.
    ///
    /// ```
    /// use cloudfn_core::{Function, StoreAccess};
    ///
    /// let f = Function::queue("charge", "orders", |_: cloudfn_core::Message<()>, _| async { Ok(()) })
    ///     .uses_store("orders")
    ///     .reads_store("prices");
    /// assert_eq!(f.stores()["orders"], StoreAccess::ReadWrite);
    /// assert_eq!(f.stores()["prices"], StoreAccess::Read);
    /// ```
    pub fn uses_store(mut self, store: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.permissions)
            .stores
            .insert(store.into(), StoreAccess::ReadWrite);
        self
    }

    /// Declares that the handler starts workflow `workflow`
    /// ([`crate::Context::workflow`]); it may start no other.
    pub fn starts_workflow(mut self, workflow: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.permissions)
            .workflows
            .insert(workflow.into());
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

    /// The workflows the function starts.
    pub fn starts(&self) -> &BTreeSet<String> {
        &self.permissions.workflows
    }

    /// The stores the function declared, and how it may use each.
    pub fn stores(&self) -> &BTreeMap<String, StoreAccess> {
        &self.permissions.stores
    }

    pub(crate) fn permissions(&self) -> Arc<Permissions> {
        self.permissions.clone()
    }
}
