//! The app's workflows, run by the durable orchestrator in this process
//! ([`cloudfn_core::workflow::Orchestrator`]), their progress in the app's
//! store so that a restarted runtime resumes every unfinished execution;
//! and the executions, shown under `/_cloudfn/executions`.

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use cloudfn_core::{
    App, Error, HttpResponse,
    provider::Services,
    workflow::{EXECUTIONS_STORE, InProcessSteps, Orchestrator, WorkflowClient},
};
use serde_json::{Map, Value};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Where executions are shown: `GET` it for every workflow's, `GET
/// {PREFIX}/{workflow}` for one's, `GET {PREFIX}/{workflow}/{id}` for an
/// execution's record with its steps, `POST {PREFIX}/{workflow}` with the
/// input as the body to start one.
pub const EXECUTIONS_PATH: &str = "/_cloudfn/executions";

/// Runs the app's workflows until shutdown.
pub(crate) struct Workflows {
    orchestrator: Orchestrator,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Workflows {
    /// The orchestrator of `app`'s workflows, and `services` that start
    /// executions on it. Runs stop at `shutdown`, wherever they are: what
    /// a crash would do, which the orchestrator is built to resume from.
    pub(crate) fn new(
        app: &App,
        services: Services,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> (Arc<Self>, Services) {
        let mut started = None;
        let workflows = Arc::new_cyclic(|me: &Weak<Self>| {
            // The steps' own contexts start workflows here too; through a
            // weak handle, so that the runtime's end frees the orchestrator.
            let services = services.with_workflows(Arc::new(Starter(me.clone())));
            started = Some(services.clone());
            let store = services.store(EXECUTIONS_STORE);
            let steps = InProcessSteps::new(app, services);
            Self {
                orchestrator: Orchestrator::new(store, Arc::new(steps), app.workflows().to_vec()),
                shutdown,
                tracker,
            }
        });
        (workflows, started.expect("set by new_cyclic"))
    }

    /// Runs execution `id` of `workflow` in the background until it ends
    /// or the runtime stops.
    fn run(&self, workflow: String, id: String) {
        let orchestrator = self.orchestrator.clone();
        let shutdown = self.shutdown.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                ended = orchestrator.run(&workflow, &id) => match ended {
                    Ok(execution) => tracing::info!(%workflow, execution = %id, status = ?execution.status, "workflow execution ended"),
                    Err(error) => tracing::error!(%workflow, execution = %id, %error, "workflow execution stopped; it resumes when the runtime starts again"),
                },
                () = shutdown.cancelled() => tracing::info!(%workflow, execution = %id, "workflow execution left running; it resumes when the runtime starts again"),
            }
        });
    }

    /// Picks up every execution a previous run of the runtime left
    /// unfinished; how many.
    pub(crate) async fn resume(&self) -> Result<usize, Error> {
        let mut resumed = 0;
        for workflow in self.orchestrator.workflows() {
            for id in self.orchestrator.list(workflow.name()).await?.running {
                self.run(workflow.name().to_owned(), id);
                resumed += 1;
            }
        }
        Ok(resumed)
    }

    async fn start(
        &self,
        workflow: &str,
        input: Value,
        id: Option<String>,
    ) -> Result<String, Error> {
        let id = self.orchestrator.start(workflow, input, id).await?;
        self.run(workflow.to_owned(), id.clone());
        Ok(id)
    }

    /// Answers a request under [`EXECUTIONS_PATH`].
    pub(crate) async fn answer(&self, request: cloudfn_core::HttpRequest) -> HttpResponse {
        match self.route(&request).await {
            Ok(response) => response,
            Err(error) => HttpResponse::from_error(&error),
        }
    }

    async fn route(&self, request: &cloudfn_core::HttpRequest) -> Result<HttpResponse, Error> {
        let rest = request
            .path
            .strip_prefix(EXECUTIONS_PATH)
            .unwrap_or_default()
            .trim_matches('/');
        let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
        match (&request.method, parts.as_slice()) {
            (&http::Method::GET, []) => {
                let mut all = Map::new();
                for workflow in self.orchestrator.workflows() {
                    let name = workflow.name();
                    all.insert(name.to_owned(), json(&self.orchestrator.list(name).await?)?);
                }
                Ok(HttpResponse::json(200, &all))
            }
            (&http::Method::GET, [workflow]) => Ok(HttpResponse::json(
                200,
                &self.orchestrator.list(workflow).await?,
            )),
            (&http::Method::GET, [workflow, id]) => {
                match self.orchestrator.get(workflow, id).await? {
                    Some(execution) => Ok(HttpResponse::json(200, &execution)),
                    None => Err(Error::not_found(format!(
                        "workflow `{workflow}` has no execution `{id}`"
                    ))),
                }
            }
            (&http::Method::POST, [workflow]) => {
                let input: Value = if request.body.is_empty() {
                    Value::Null
                } else {
                    request.json()?
                };
                let id = request.query_param("id");
                let id = self.start(workflow, input, id).await?;
                Ok(HttpResponse::json(202, &serde_json::json!({ "id": id })))
            }
            _ => Err(Error::not_found(format!(
                "{} {}: executions are read with GET {EXECUTIONS_PATH}[/{{workflow}}[/{{id}}]] \
                 and started with POST {EXECUTIONS_PATH}/{{workflow}}",
                request.method, request.path
            ))),
        }
    }
}

fn json(value: &impl serde::Serialize) -> Result<Value, Error> {
    serde_json::to_value(value).map_err(|e| Error::internal(format!("cannot serialise: {e}")))
}

/// Starts executions on the runtime's orchestrator while it runs.
struct Starter(Weak<Workflows>);

#[async_trait]
impl WorkflowClient for Starter {
    async fn start(
        &self,
        workflow: &str,
        input: Value,
        id: Option<String>,
    ) -> Result<String, Error> {
        let workflows = self
            .0
            .upgrade()
            .ok_or_else(|| Error::unavailable("the local runtime has stopped"))?;
        workflows.start(workflow, input, id).await
    }
}
