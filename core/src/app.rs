//! The app: a named set of functions and what they share.

use std::{collections::HashSet, sync::Arc};

use crate::{
    Capabilities, Error, Function, Schedule, Trigger,
    context::{Services, State},
    messaging::{QueueClient, TopicClient},
    router::HttpRouter,
    spec::AppSpec,
    store::StoreClient,
    workflow::Workflow,
};

/// A named set of functions and the configuration they share. One binary
/// serves a whole app on every provider.
///
/// ```
/// use cloudfn_core::{App, Context, Error, Function, HttpRequest, HttpResponse, Method};
///
/// async fn ping(_: HttpRequest, _: Context) -> Result<HttpResponse, Error> {
///     Ok(HttpResponse::text(200, "pong"))
/// }
///
/// let app = App::new("demo").function(Function::http("ping", Method::Get, "/ping", ping));
/// app.validate().unwrap();
/// assert_eq!(app.spec().functions[0].name, "ping");
/// ```
#[derive(Clone)]
pub struct App {
    name: String,
    functions: Vec<Arc<Function>>,
    workflows: Vec<Workflow>,
    state: State,
}

impl App {
    /// An app with no functions.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            functions: Vec::new(),
            workflows: Vec::new(),
            state: State::default(),
        }
    }

    /// Adds a function.
    pub fn function(mut self, function: Function) -> Self {
        self.functions.push(Arc::new(function));
        self
    }

    /// Adds a workflow ([`crate::workflow`]): steps calling the app's
    /// functions, run by an orchestrator.
    pub fn workflow(mut self, workflow: Workflow) -> Self {
        self.workflows.push(workflow);
        self
    }

    /// The app's workflows.
    pub fn workflows(&self) -> &[Workflow] {
        &self.workflows
    }

    /// Shares `value` with every handler, found with [`crate::Context::state`]
    /// by its type. It lives in each process's memory: configuration and
    /// clients, not data another invocation must see (that goes in a store,
    /// [`crate::Context::store`]).
    pub fn with_state<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.state.insert(value);
        self
    }

    /// The app's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The functions, in the order they were added.
    pub fn functions(&self) -> &[Arc<Function>] {
        &self.functions
    }

    /// The function called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Function>> {
        self.functions.iter().find(|f| f.name() == name)
    }

    /// The one function a process serves, on platforms that start a process
    /// per function and name it in the environment (Lambda's `_HANDLER`,
    /// GCP's `FUNCTION_TARGET`). `wanted` is that variable's value; `source`
    /// names the variable, for the error.
    ///
    /// ```
    /// use cloudfn_core::{App, Function};
    ///
    /// let app = App::new("a").function(Function::schedule("tick", "* * * * *", |_, _| async { Ok(()) }));
    /// assert_eq!(app.select(Some("tick"), "_HANDLER").unwrap().name(), "tick");
    /// let err = app.select(Some("tock"), "_HANDLER").unwrap_err();
    /// assert!(err.message().contains("no function `tock`") && err.message().contains("tick"));
    /// assert!(app.select(None, "_HANDLER").unwrap_err().message().contains("_HANDLER"));
    /// ```
    pub fn select(&self, wanted: Option<&str>, source: &str) -> Result<&Arc<Function>, Error> {
        let wanted = wanted.ok_or_else(|| {
            Error::invalid(format!(
                "{source} is not set: it names the function this process serves"
            ))
        })?;
        self.get(wanted).ok_or_else(|| {
            let names: Vec<&str> = self.functions.iter().map(|f| f.name()).collect();
            Error::not_found(format!(
                "app `{}` has no function `{wanted}` (from {source}); it has {names:?}",
                self.name
            ))
        })
    }

    /// What a provider hands every invocation: its name, its messaging and
    /// store clients, and this app's state.
    pub fn services(
        &self,
        provider: &'static str,
        queues: Arc<dyn QueueClient>,
        topics: Arc<dyn TopicClient>,
        stores: Arc<dyn StoreClient>,
    ) -> Services {
        Services {
            provider,
            queues,
            topics,
            stores,
            workflows: Arc::new(crate::workflow::NoWorkflows),
            state: Arc::new(self.state.clone()),
        }
    }

    /// The app's HTTP routes.
    pub fn router(&self) -> Result<HttpRouter, Error> {
        HttpRouter::new(&self.functions)
    }

    /// Checks what can be checked before serving: names, routes, cron
    /// expressions, policies, and queue names that would collide. Every provider calls it at start-up, so a
    /// mistake fails the deployment's first start with a message naming it.
    pub fn validate(&self) -> Result<(), Error> {
        let mut names = HashSet::new();
        let mut consumed = std::collections::HashMap::new();
        for function in &self.functions {
            let name = function.name();
            let named = |message: String| Error::invalid(format!("function `{name}`: {message}"));
            if !crate::conventions::is_plain_name(name) {
                return Err(named(
                    "names are 1 to 64 letters, digits, `-` or `_`".into(),
                ));
            }
            if !names.insert(name) {
                return Err(named("the name is used twice".into()));
            }
            let policy = function.policy();
            if policy.batch_size == 0 {
                return Err(named("batch size must be at least 1".into()));
            }
            if policy.timeout.is_zero() {
                return Err(named("timeout must be more than zero".into()));
            }
            let access = &policy.access;
            if *access != crate::Access::Private
                && !matches!(function.trigger(), Trigger::Http { .. })
            {
                return Err(named(format!(
                    "access `{access}` applies to HTTP functions only"
                )));
            }
            access.check().map_err(named)?;
            for store in function.stores().keys() {
                let own = match store.as_str() {
                    crate::conventions::IDEMPOTENCY_STORE => Some("idempotency claims"),
                    crate::workflow::EXECUTIONS_STORE => Some("workflow executions"),
                    _ => None,
                };
                if let Some(holds) = own {
                    return Err(named(format!(
                        "store `{store}` is cloudfn's own ({holds}); pick another name"
                    )));
                }
                crate::store::check_name(store).map_err(named)?;
            }
            if let Some(workflow) = function
                .starts()
                .iter()
                .find(|w| !self.workflows.iter().any(|f| f.name() == w.as_str()))
            {
                return Err(named(format!(
                    "it starts workflow `{workflow}`, which the app does not have"
                )));
            }
            if let Trigger::Queue { queue, .. } = function.trigger()
                && let Some(other) = consumed.insert(queue.as_str(), name)
            {
                return Err(named(format!(
                    "queue `{queue}` is already consumed by `{other}`; a queue feeds one function (use a topic to fan out)"
                )));
            }
            match function.trigger() {
                Trigger::Http { route, .. } if route.starts_with("/_cloudfn") => {
                    return Err(named(format!(
                        "route `{route}`: paths under /_cloudfn are cloudfn's own"
                    )));
                }
                Trigger::Schedule { cron } => {
                    cron.parse::<Schedule>()
                        .map_err(|e| named(e.message().to_owned()))?;
                }
                Trigger::Step if policy.idempotency.is_some() => {
                    return Err(named(
                        "a step function is not made idempotent: its orchestrator records each \
                         step's output and never calls a done step again; use `msg.id`, the step's \
                         key, for the idempotency of what the step calls"
                            .into(),
                    ));
                }
                Trigger::Step if policy.dead_letter.is_some() => {
                    return Err(named(
                        "a step function has no dead-letter queue: its failures go back to the \
                         workflow (catch, compensation)"
                            .into(),
                    ));
                }
                Trigger::Queue { queue, .. } if policy.dead_letter.as_deref() == Some(queue) => {
                    return Err(named(format!(
                        "queue `{queue}` cannot be its own dead-letter queue"
                    )));
                }
                _ => {}
            }
        }
        let mut workflows = HashSet::new();
        for workflow in &self.workflows {
            if !workflows.insert(workflow.name()) {
                return Err(Error::invalid(format!(
                    "workflow `{}`: the name is used twice",
                    workflow.name()
                )));
            }
            workflow.validate(|name| {
                self.get(name)
                    .is_some_and(|f| *f.trigger() == Trigger::Step)
            })?;
        }
        crate::collisions::check(&self.spec())?;
        self.router()?;
        Ok(())
    }

    /// [`App::validate`], then checks every function against what the
    /// provider can do ([`Capabilities`]): providers call it when they start
    /// and when they package, so a limit is an error up front.
    pub fn validate_for(&self, capabilities: &Capabilities) -> Result<(), Error> {
        self.validate()?;
        self.spec().validate_for(capabilities)
    }

    /// Everything a deployment needs to know about the app, with no code in it.
    pub fn spec(&self) -> AppSpec {
        AppSpec::of(self)
    }
}
