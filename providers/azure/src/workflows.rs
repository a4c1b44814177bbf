//! Workflows on Azure, run by cloudfn's durable orchestrator inside the
//! function app.
//!
//! Durable Functions cannot run a custom handler's orchestrations (its
//! orchestrator SDKs are .NET, JavaScript, Python, Java and PowerShell,
//! replaying code in the host's own worker), and a Logic Apps definition
//! would need a deployment and a connection per step function for what the
//! orchestrator already does with the app's own Storage account. So the
//! app runs [`cloudfn_core::workflow::Orchestrator`], as the local runtime
//! does, with its progress in the Table Storage store and its runs driven
//! through a Storage queue:
//!
//! - a start ([`cloudfn_core::Context::workflow`]) records the execution in
//!   the `cloudfn-executions` table and puts `{workflow, id}` on the
//!   `cloudfn-workflows` queue;
//! - the function `cloudfn-workflows`, triggered by that queue, runs the
//!   execution from where its record stands, calling step functions in the
//!   process; a run that could not reach its record fails the delivery,
//!   which is retried with backoff and dead-lettered into
//!   `cloudfn-workflows-dead-letter` like any queue function's;
//! - a run that would outlast its invocation (a long wait, slow steps) puts
//!   its message back and ends, so the next invocation goes on from the
//!   record, which holds every finished step.
//!
//! Any instance of the app may run any execution; no state of an execution
//! is kept in a process.

use std::{
    collections::BTreeSet,
    sync::{Arc, OnceLock, Weak},
    time::Duration,
};

use async_trait::async_trait;
use cloudfn_core::{
    App, AppSpec, Context, Error, ErrorKind, Function, Message, Queue, RetryPolicy, StoreAccess,
    StoreSpec,
    provider::Services,
    workflow::{
        Action, EXECUTIONS_STORE, InProcessSteps, Orchestrator, Status, Workflow, WorkflowClient,
    },
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The function that runs the app's workflow executions.
pub const WORKFLOWS_FUNCTION: &str = "cloudfn-workflows";

/// The queue whose messages say which execution to run next.
pub const WORKFLOWS_QUEUE: &str = "cloudfn-workflows";

/// How long one invocation of [`WORKFLOWS_FUNCTION`] may run; the
/// execution goes on in the next one.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// What a run leaves itself, out of its invocation's time, to put its
/// message back before the deadline.
const HAND_OVER: Duration = Duration::from_secs(10);

/// The message that drives an execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Resume {
    workflow: String,
    id: String,
}

/// The app's orchestrator, once the app's services exist.
#[derive(Default)]
pub(crate) struct Hosted {
    running: OnceLock<(Orchestrator, Queue)>,
}

/// `app` with the function that runs its workflows, and what that function
/// runs on ([`Hosted::install`] it into the app's services); `app` as it is
/// when it has no workflows.
pub(crate) fn host(app: App) -> (App, Option<Arc<Hosted>>) {
    if app.workflows().is_empty() {
        return (app, None);
    }
    let hosted = Arc::new(Hosted::default());
    let function = orchestrator_function(Arc::downgrade(&hosted), app.workflows());
    (app.function(function), Some(hosted))
}

/// The function that runs executions: fed by [`WORKFLOWS_QUEUE`], allowed
/// the queues and topics the workflows' steps send and publish to. It
/// holds its orchestrator weakly: the app's steps hold the app's functions,
/// this one among them.
fn orchestrator_function(hosted: Weak<Hosted>, workflows: &[Workflow]) -> Function {
    let mut function = Function::queue(
        WORKFLOWS_FUNCTION,
        WORKFLOWS_QUEUE,
        move |message: Message<Resume>, ctx: Context| {
            let hosted = hosted.clone();
            async move { run(hosted, message.body, ctx).await }
        },
    )
    .retry(RetryPolicy::new(5))
    .timeout(RUN_TIMEOUT);
    for step in workflows.iter().flat_map(Workflow::all_steps) {
        match &step.action {
            Action::Send { queue } => function = function.sends_to(queue),
            Action::Publish { topic } => function = function.publishes_to(topic),
            _ => {}
        }
    }
    function
}

async fn run(hosted: Weak<Hosted>, resume: Resume, ctx: Context) -> Result<(), Error> {
    let hosted = hosted
        .upgrade()
        .ok_or_else(|| Error::unavailable("the function app is stopping"))?;
    let (orchestrator, _) = hosted.running()?;
    let Resume { workflow, id } = &resume;
    let budget = ctx.remaining().saturating_sub(HAND_OVER);
    match tokio::time::timeout(budget, orchestrator.run(workflow, id)).await {
        Ok(Ok(execution)) => {
            tracing::info!(%workflow, execution = %id, status = ?execution.status, "workflow execution ended");
            Ok(())
        }
        Ok(Err(error)) => Err(error),
        Err(_) => {
            hosted.drive(&resume).await?;
            tracing::info!(%workflow, execution = %id, "workflow execution goes on in the next invocation");
            Ok(())
        }
    }
}

impl Hosted {
    /// Makes the orchestrator of `app` (as [`host`] returned it) on
    /// `services`, and returns `services` starting workflows on it.
    pub(crate) fn install(self: &Arc<Self>, app: &App, services: Services) -> Services {
        let services = services.with_workflows(Arc::new(Starter(Arc::downgrade(self))));
        let store = services.store(EXECUTIONS_STORE);
        let steps = InProcessSteps::new(app, services.clone());
        let orchestrator = Orchestrator::new(store, Arc::new(steps), app.workflows().to_vec());
        let _ = self
            .running
            .set((orchestrator, services.queue(WORKFLOWS_QUEUE)));
        services
    }

    fn running(&self) -> Result<&(Orchestrator, Queue), Error> {
        self.running
            .get()
            .ok_or_else(|| Error::unavailable("the workflow orchestrator is not set up yet"))
    }

    /// Puts the message that runs `resume`'s execution on the queue.
    async fn drive(&self, resume: &Resume) -> Result<(), Error> {
        self.running()?.1.send(resume).await?;
        Ok(())
    }
}

/// Starts executions for the app's handlers: the record, then the message
/// that runs it.
struct Starter(Weak<Hosted>);

#[async_trait]
impl WorkflowClient for Starter {
    async fn start(
        &self,
        workflow: &str,
        input: Value,
        id: Option<String>,
    ) -> Result<String, Error> {
        let hosted = self
            .0
            .upgrade()
            .ok_or_else(|| Error::unavailable("the function app is stopping"))?;
        let (orchestrator, _) = hosted.running()?;
        match orchestrator.start(workflow, input, id.clone()).await {
            Ok(id) => {
                let resume = Resume {
                    workflow: workflow.to_owned(),
                    id: id.clone(),
                };
                hosted.drive(&resume).await?;
                Ok(id)
            }
            Err(conflict) if conflict.kind() == ErrorKind::Conflict => {
                // The start may have crashed between the record and the
                // message, and is being retried: a running execution is
                // driven again, which at worst replays it to the same end.
                if let Some(id) = id
                    && orchestrator
                        .get(workflow, &id)
                        .await?
                        .is_some_and(|e| e.status == Status::Running)
                {
                    let resume = Resume {
                        workflow: workflow.to_owned(),
                        id,
                    };
                    hosted.drive(&resume).await?;
                }
                Err(conflict)
            }
            Err(error) => Err(error),
        }
    }
}

/// `spec` as the function app deploys it: with [`WORKFLOWS_FUNCTION`],
/// [`WORKFLOWS_QUEUE`] and its dead-letter queue, and the executions'
/// table, which the orchestrator and every function that starts a workflow
/// write. `spec` itself when it has no workflows or is already so.
///
/// A function or queue of the app's own by those names is refused.
pub fn hosted_spec(spec: &AppSpec) -> Result<AppSpec, Error> {
    if spec.workflows.is_empty() {
        return Ok(spec.clone());
    }
    let ours = App::new(&spec.name)
        .function(orchestrator_function(Weak::new(), &spec.workflows))
        .spec();
    let mut orchestrator = ours.functions[0].clone();
    orchestrator
        .stores
        .insert(EXECUTIONS_STORE.to_owned(), StoreAccess::ReadWrite);
    match spec.function(WORKFLOWS_FUNCTION) {
        Some(existing) if *existing == orchestrator => return Ok(spec.clone()),
        Some(_) => return Err(reserved("function", WORKFLOWS_FUNCTION)),
        None => {}
    }
    if spec.queue(WORKFLOWS_QUEUE).is_some() {
        return Err(reserved("queue", WORKFLOWS_QUEUE));
    }
    let mut hosted = spec.with_recorded_starts();
    let starters: Vec<String> = hosted
        .functions
        .iter()
        .filter(|f| !f.starts.is_empty())
        .map(|f| f.name.clone())
        .collect();
    for function in hosted.functions.iter_mut().filter(|f| !f.starts.is_empty()) {
        function.sends_to.insert(WORKFLOWS_QUEUE.to_owned());
    }
    let known: BTreeSet<String> = hosted.queues.iter().map(|q| q.name.clone()).collect();
    for mut queue in ours.queues {
        if known.contains(&queue.name) {
            continue;
        }
        if queue.name == WORKFLOWS_QUEUE {
            queue.producers.extend(starters.iter().cloned());
        }
        hosted.queues.push(queue);
    }
    hosted.queues.sort_by(|a, b| a.name.cmp(&b.name));
    match hosted
        .stores
        .iter_mut()
        .find(|s| s.name == EXECUTIONS_STORE)
    {
        Some(store) => store.writers.insert(0, WORKFLOWS_FUNCTION.to_owned()),
        None => {
            hosted.stores.push(StoreSpec {
                name: EXECUTIONS_STORE.to_owned(),
                readers: Vec::new(),
                writers: vec![WORKFLOWS_FUNCTION.to_owned()],
            });
            hosted.stores.sort_by(|a, b| a.name.cmp(&b.name));
        }
    }
    hosted.functions.push(orchestrator);
    Ok(hosted)
}

fn reserved(what: &str, name: &str) -> Error {
    Error::invalid(format!(
        "{what} `{name}` is cloudfn's own on Azure, where it runs the app's workflows; pick another name"
    ))
}

#[cfg(test)]
mod tests {
    use cloudfn_core::{Method, Trigger, workflow::Step};

    use super::*;

    async fn echo(msg: Message<Value>, _: Context) -> Result<Value, Error> {
        Ok(msg.body)
    }
    async fn place(
        _: cloudfn_core::HttpRequest,
        _: Context,
    ) -> Result<cloudfn_core::HttpResponse, Error> {
        Ok(cloudfn_core::HttpResponse::new(202))
    }

    fn app() -> App {
        App::new("flows")
            .function(
                Function::http("place", Method::Post, "/orders", place).starts_workflow("order"),
            )
            .function(Function::step("check", echo))
            .workflow(
                Workflow::new("order")
                    .step(Step::call("check", "check"))
                    .step(Step::send("hand-off", "shipping")),
            )
    }

    #[test]
    fn the_deployed_spec_has_the_orchestrator_its_queue_and_its_table() {
        let spec = hosted_spec(&app().spec()).unwrap();
        let orchestrator = spec.function(WORKFLOWS_FUNCTION).unwrap();
        assert_eq!(orchestrator.trigger, Trigger::queue(WORKFLOWS_QUEUE));
        assert!(orchestrator.sends_to.contains("shipping"));
        assert_eq!(
            orchestrator.stores.get(EXECUTIONS_STORE),
            Some(&StoreAccess::ReadWrite)
        );
        let place = spec.function("place").unwrap();
        assert!(place.sends_to.contains(WORKFLOWS_QUEUE));
        assert!(place.stores.contains_key(EXECUTIONS_STORE));
        let queue = spec.queue(WORKFLOWS_QUEUE).unwrap();
        assert_eq!(queue.consumers, [WORKFLOWS_FUNCTION]);
        assert_eq!(queue.producers, ["place"]);
        assert!(spec.queue(queue.dead_letter.as_deref().unwrap()).is_some());
        assert_eq!(
            spec.store(EXECUTIONS_STORE).unwrap().writers,
            [WORKFLOWS_FUNCTION, "place"]
        );
        assert_eq!(
            hosted_spec(&spec).unwrap(),
            spec,
            "hosting twice changes nothing"
        );
    }

    #[test]
    fn the_running_function_is_the_deployed_one() {
        let (app, hosted) = host(app());
        assert!(hosted.is_some());
        let running = app.spec();
        let deployed = hosted_spec(&self::app().spec()).unwrap();
        let (running, deployed) = (
            running.function(WORKFLOWS_FUNCTION).unwrap(),
            deployed.function(WORKFLOWS_FUNCTION).unwrap(),
        );
        assert_eq!(running.trigger, deployed.trigger);
        assert_eq!(running.policy, deployed.policy);
        assert_eq!(running.sends_to, deployed.sends_to);
    }

    /// Azurite's account, when the test command started it.
    fn azurite() -> Option<crate::client::StorageAccount> {
        let (Ok(queue), Ok(table)) = (
            std::env::var("CLOUDFN_TEST_AZURITE_QUEUE_URL"),
            std::env::var("CLOUDFN_TEST_AZURITE_TABLE_URL"),
        ) else {
            eprintln!("SKIPPED: Azurite is not running (scripts/test starts it)");
            return None;
        };
        let (name, key) = crate::client::DEVELOPMENT_ACCOUNT;
        let connection = format!(
            "DefaultEndpointsProtocol=http;AccountName={name};AccountKey={key};QueueEndpoint={queue};TableEndpoint={table}"
        );
        Some(crate::client::StorageAccount::from_connection_string(&connection).unwrap())
    }

    /// What the workflows queue holds for execution `id` now (received
    /// and deleted: other runs' messages are left to expire).
    async fn resumes_of(queues: &crate::client::StorageQueues, id: &str) -> Vec<Message> {
        let mut found = Vec::new();
        for received in queues
            .receive(WORKFLOWS_QUEUE, 32, Duration::from_secs(30))
            .await
            .unwrap()
        {
            if received.text.contains(id) {
                found.push(received.message.clone());
                queues
                    .delete(WORKFLOWS_QUEUE, &received.queue_id, &received.pop_receipt)
                    .await
                    .unwrap();
            }
        }
        found
    }

    /// A start records the execution and enqueues its run; a run that
    /// reaches the end of its invocation's time enqueues the rest of it
    /// and succeeds, the execution still running on its record.
    #[tokio::test]
    async fn a_run_longer_than_its_invocation_goes_on_in_the_next() {
        use cloudfn_core::provider::{ContextBuilder, Event, Invoke};

        let Some(account) = azurite() else {
            return;
        };
        crate::client::install_tls();
        let queues = crate::client::StorageQueues::new(&account);
        queues.create(WORKFLOWS_QUEUE).await.unwrap();
        let tables = crate::client::TableStore::new(&account);
        tables.create_table(EXECUTIONS_STORE).await.unwrap();
        let app = App::new("flows")
            .workflow(Workflow::new("slow").step(Step::wait("pause", Duration::from_secs(3600))));
        let (app, hosted) = host(app);
        let services = app.services(
            crate::PROVIDER,
            Arc::new(queues.clone()),
            Arc::new(cloudfn_core::messaging::NoMessaging),
            Arc::new(tables),
        );
        let services = hosted.as_ref().unwrap().install(&app, services);

        let id = uuid::Uuid::new_v4().to_string();
        services
            .workflow("slow")
            .start_with_id(id.clone(), &serde_json::json!({}))
            .await
            .unwrap();
        let mut started = resumes_of(&queues, &id).await;
        assert_eq!(started.len(), 1, "a start enqueues one run");

        let function = app.get(WORKFLOWS_FUNCTION).unwrap();
        let ctx = ContextBuilder::new(function, &services)
            .deadline(std::time::Instant::now() + HAND_OVER + Duration::from_secs(1))
            .build();
        function
            .invoke(Event::Message(started.remove(0)), ctx)
            .await
            .expect("a run out of time hands over and succeeds");

        assert_eq!(
            resumes_of(&queues, &id).await.len(),
            1,
            "the rest is enqueued"
        );
        let (orchestrator, _) = hosted.as_ref().unwrap().running().unwrap();
        let execution = orchestrator.get("slow", &id).await.unwrap().unwrap();
        assert_eq!(execution.status, Status::Running);
        assert!(execution.steps["pause"].due.is_some(), "{execution:?}");
    }

    #[test]
    fn an_app_without_workflows_is_deployed_as_it_is() {
        let app = App::new("plain").function(Function::http("place", Method::Post, "/", place));
        assert_eq!(hosted_spec(&app.spec()).unwrap(), app.spec());
        assert!(host(app).1.is_none());
    }

    #[test]
    fn the_orchestrators_names_are_refused_for_the_apps_own() {
        async fn consume(_: Message<Value>, _: Context) -> Result<(), Error> {
            Ok(())
        }
        let taken = app().function(Function::queue("drain", WORKFLOWS_QUEUE, consume));
        let error = hosted_spec(&taken.spec()).unwrap_err();
        assert!(
            error.message().contains("queue `cloudfn-workflows`"),
            "{error}"
        );
        let taken = app().function(Function::queue(WORKFLOWS_FUNCTION, "other", consume));
        let error = hosted_spec(&taken.spec()).unwrap_err();
        assert!(
            error.message().contains("function `cloudfn-workflows`"),
            "{error}"
        );
    }
}
