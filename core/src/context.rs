//! What a handler knows about its invocation and what it can reach.

use std::{
    any::{Any, TypeId},
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use crate::{
    Error, Function,
    messaging::{NoMessaging, Permissions, Queue, QueueClient, Topic, TopicClient},
    propagation::{self, Lineage},
    store::{MemoryStore, Store, StoreClient},
    workflow::{NoWorkflows, Starter, WorkflowClient},
};

/// Values the app shares with every handler, found by type.
#[derive(Default, Clone)]
pub(crate) struct State(HashMap<TypeId, Arc<dyn Any + Send + Sync>>);

impl State {
    pub(crate) fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        self.0.insert(TypeId::of::<T>(), Arc::new(value));
    }

    fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.0.get(&TypeId::of::<T>())?.downcast_ref()
    }
}

/// What a provider gives every invocation: its name, its messaging and
/// store clients and the app's shared state. Built once per process with
/// [`crate::App::services`].
#[derive(Clone)]
pub struct Services {
    pub(crate) provider: &'static str,
    pub(crate) queues: Arc<dyn QueueClient>,
    pub(crate) topics: Arc<dyn TopicClient>,
    pub(crate) stores: Arc<dyn StoreClient>,
    pub(crate) workflows: Arc<dyn WorkflowClient>,
    pub(crate) state: Arc<State>,
}

impl Services {
    /// Services with no messaging, stores in this process's memory and no
    /// state: for tests and benchmarks of a single function.
    pub fn detached(provider: &'static str) -> Self {
        Self {
            provider,
            queues: Arc::new(NoMessaging),
            topics: Arc::new(NoMessaging),
            stores: Arc::new(MemoryStore::new()),
            workflows: Arc::new(NoWorkflows),
            state: Arc::default(),
        }
    }

    /// The provider's name.
    pub fn provider(&self) -> &'static str {
        self.provider
    }

    /// A queue handle with no declared-permission check, for drivers and tools
    /// outside any function (tests, CLIs).
    pub fn queue(&self, name: &str) -> Queue {
        Queue::new(
            name,
            self.queues.clone(),
            "<driver>",
            &Permissions::unrestricted(),
            None,
        )
    }

    /// A topic handle with no declared-permission check, for drivers and tools.
    pub fn topic(&self, name: &str) -> Topic {
        Topic::new(
            name,
            self.topics.clone(),
            "<driver>",
            &Permissions::unrestricted(),
            None,
        )
    }

    /// A store handle with no declared-permission check, for drivers and tools.
    pub fn store(&self, name: &str) -> Store {
        Store::new(
            name,
            self.stores.clone(),
            "<driver>",
            &Permissions::unrestricted(),
        )
    }

    /// A workflow handle with no declared-permission check, for drivers and tools.
    pub fn workflow(&self, name: &str) -> Starter {
        Starter::new(
            name,
            self.workflows.clone(),
            "<driver>",
            &Permissions::unrestricted(),
        )
    }

    /// These services, starting workflows with `client` (the provider's
    /// engine) instead of refusing to.
    pub fn with_workflows(mut self, client: Arc<dyn WorkflowClient>) -> Self {
        self.workflows = client;
        self
    }
}

/// The invocation a handler runs in: ids, deadline, attempt, trace, and the
/// queues, topics and shared state it may use. Cheap to clone.
#[derive(Clone)]
pub struct Context(Arc<Inner>);

#[derive(Clone)]
struct Inner {
    invocation_id: String,
    function: String,
    deadline: Instant,
    attempt: u32,
    max_attempts: u32,
    trace_id: Option<String>,
    /// Made when first needed: most invocations send nothing.
    lineage: std::sync::OnceLock<Lineage>,
    permissions: Arc<Permissions>,
    services: Services,
}

impl Context {
    /// The id of this invocation (the platform's request id where it has one).
    pub fn invocation_id(&self) -> &str {
        &self.0.invocation_id
    }

    /// The function's name.
    pub fn function_name(&self) -> &str {
        &self.0.function
    }

    /// The provider running it: `local`, `aws`, `azure` or `gcp`.
    pub fn provider(&self) -> &'static str {
        self.0.services.provider
    }

    /// When the platform stops waiting for this invocation.
    pub fn deadline(&self) -> Instant {
        self.0.deadline
    }

    /// Time left before the deadline.
    pub fn remaining(&self) -> Duration {
        self.0.deadline.saturating_duration_since(Instant::now())
    }

    /// Which delivery of the event this is, from 1.
    pub fn attempt(&self) -> u32 {
        self.0.attempt
    }

    /// Whether a retryable failure now will not be retried: the last chance to
    /// record the failure in the handler's own terms.
    pub fn is_final_attempt(&self) -> bool {
        self.0.attempt >= self.0.max_attempts
    }

    /// The distributed trace id, if the platform sent one.
    pub fn trace_id(&self) -> Option<&str> {
        self.0.trace_id.as_deref()
    }

    /// The id that follows a piece of work from function to function: the
    /// one the message that fed this invocation carried, else this
    /// invocation's trace id, else its invocation id. Every message the
    /// handler sends or publishes carries it on
    /// ([`crate::propagation::CORRELATION_ID`]), with the W3C trace.
    pub fn correlation_id(&self) -> &str {
        &self.lineage().correlation_id
    }

    /// The W3C trace id this invocation continues and hands on to the
    /// messages it sends: the one the message that fed it carried, else its
    /// platform's trace (X-Ray's read as the W3C id it is), else a new one.
    pub fn w3c_trace_id(&self) -> &str {
        &self.lineage().trace_id
    }

    fn lineage(&self) -> &Lineage {
        self.0
            .lineage
            .get_or_init(|| Lineage::of(self.0.trace_id.as_deref(), None, &self.0.invocation_id))
    }

    /// This context continuing the trace and correlation that `attributes`
    /// (a message's) carry, if they carry any.
    pub(crate) fn continuing(
        mut self,
        attributes: &std::collections::BTreeMap<String, String>,
    ) -> Self {
        if !attributes.contains_key(propagation::TRACEPARENT)
            && !attributes.contains_key(propagation::CORRELATION_ID)
        {
            return self;
        }
        let lineage = Lineage::of(
            self.0.trace_id.as_deref(),
            Some(attributes),
            &self.0.invocation_id,
        );
        // A context is built for its invocation alone, so this changes it
        // in place; a shared one is copied first.
        let inner = Arc::make_mut(&mut self.0);
        inner.trace_id = Some(lineage.trace_id.clone());
        inner.lineage = std::sync::OnceLock::from(lineage);
        self
    }

    /// A handle on queue `name`; sending fails with
    /// [`crate::ErrorKind::Forbidden`] unless the function declared
    /// `.sends_to(name)`.
    pub fn queue(&self, name: &str) -> Queue {
        Queue::new(
            name,
            self.0.services.queues.clone(),
            &self.0.function,
            &self.0.permissions,
            Some(self.lineage().clone()),
        )
    }

    /// A handle on topic `name`; publishing fails with
    /// [`crate::ErrorKind::Forbidden`] unless the function declared
    /// `.publishes_to(name)`.
    pub fn topic(&self, name: &str) -> Topic {
        Topic::new(
            name,
            self.0.services.topics.clone(),
            &self.0.function,
            &self.0.permissions,
            Some(self.lineage().clone()),
        )
    }

    /// A handle on store `name`; reading fails with
    /// [`crate::ErrorKind::Forbidden`] unless the function declared
    /// `.reads_store(name)` or `.uses_store(name)`, writing unless it declared
    /// `.uses_store(name)`.
    pub fn store(&self, name: &str) -> Store {
        Store::new(
            name,
            self.0.services.stores.clone(),
            &self.0.function,
            &self.0.permissions,
        )
    }

    /// A handle to start executions of workflow `name`. Starting is
    /// [`crate::ErrorKind::Forbidden`] unless the function declared
    /// `.starts_workflow(name)`.
    pub fn workflow(&self, name: &str) -> Starter {
        Starter::new(
            name,
            self.0.services.workflows.clone(),
            &self.0.function,
            &self.0.permissions,
        )
    }

    /// The store of idempotency claims, which every idempotent function may use.
    pub(crate) fn idempotency_store(&self) -> Store {
        Store::new(
            crate::conventions::IDEMPOTENCY_STORE,
            self.0.services.stores.clone(),
            &self.0.function,
            &Permissions::unrestricted(),
        )
    }

    /// The shared value of type `T` registered with [`crate::App::with_state`].
    ///
    /// A type nobody registered is a mistake in the app, which no retry
    /// mends: the error is permanent ([`crate::ErrorKind::Invalid`]), so a
    /// delivery goes to the dead-letter queue at once instead of spending
    /// every attempt first.
    ///
    /// ```
    /// use cloudfn_core::{Context, Error, ErrorKind, Function, Message};
    /// use cloudfn_core::provider::{ContextBuilder, Services};
    ///
    /// let f = Function::queue("charge", "orders", |_: Message<String>, _: Context| async {
    ///     Ok::<_, Error>(())
    /// });
    /// let ctx = ContextBuilder::new(&f, &Services::detached("test")).build();
    /// let err = ctx.state::<u32>().unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Invalid);
    /// assert!(!err.is_retryable());
    /// assert!(!err.is_for_caller(), "the app's mistake: a caller sees a generic 500");
    /// ```
    pub fn state<T: Send + Sync + 'static>(&self) -> Result<&T, Error> {
        // Permanent (retrying cannot register it) and private (the app's
        // mistake, not the caller's).
        self.0.services.state.get::<T>().ok_or_else(|| {
            Error::invalid(format!(
                "no state of type `{}` was registered with App::with_state",
                std::any::type_name::<T>()
            ))
            .private()
        })
    }
}

/// Builds the [`Context`] of one invocation: what a provider fills in from
/// its platform's invocation (request id, deadline, delivery attempt, trace).
pub struct ContextBuilder(Inner);

impl ContextBuilder {
    /// Starts a context for one invocation of `function`. Defaults: a fresh
    /// invocation id, the function's timeout as deadline, attempt 1.
    pub fn new(function: &Function, services: &Services) -> Self {
        Self(Inner {
            // Filled at build() unless the platform gives one.
            invocation_id: String::new(),
            function: function.name().to_owned(),
            deadline: Instant::now() + function.policy().timeout,
            attempt: 1,
            max_attempts: function.policy().retry.max_attempts,
            trace_id: None,
            lineage: std::sync::OnceLock::new(),
            permissions: function.permissions(),
            services: services.clone(),
        })
    }

    /// The platform's request id.
    pub fn invocation_id(mut self, id: impl Into<String>) -> Self {
        self.0.invocation_id = id.into();
        self
    }

    /// The platform's deadline, when it sets one shorter than the function's timeout.
    pub fn deadline(mut self, deadline: Instant) -> Self {
        self.0.deadline = self.0.deadline.min(deadline);
        self
    }

    /// Which delivery this is, from 1.
    pub fn attempt(mut self, attempt: u32) -> Self {
        self.0.attempt = attempt.max(1);
        self
    }

    /// The platform redelivers the event itself but does not say which
    /// delivery this is (Lambda's asynchronous invocations): `attempt()` is
    /// 1, the least it can be, and `is_final_attempt()` is true, since any
    /// delivery may be the last.
    pub fn attempt_unknown(mut self) -> Self {
        self.0.attempt = 1;
        self.0.max_attempts = 1;
        self
    }

    /// The distributed trace id, when the platform's request carries one.
    pub fn trace_id(mut self, trace_id: Option<impl Into<String>>) -> Self {
        self.0.trace_id = trace_id.map(Into::into);
        self
    }

    /// The context.
    pub fn build(mut self) -> Context {
        if self.0.invocation_id.is_empty() {
            self.0.invocation_id = uuid::Uuid::new_v4().to_string();
        }
        Context(Arc::new(self.0))
    }
}
