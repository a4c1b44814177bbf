//! Starting workflow executions from a handler: [`crate::Context::workflow`].

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use crate::{Error, messaging::Permissions};

/// Starts executions on the engine that runs the app's workflows: the
/// in-process orchestrator, or the cloud's own.
#[async_trait]
pub trait WorkflowClient: Send + Sync + 'static {
    /// Starts an execution of `workflow` on `input` under `id` (a fresh one
    /// if `None`); returns its id. An id already started starts nothing: it
    /// is a [`crate::ErrorKind::Conflict`], except where the engine answers
    /// a repeat of a running execution's start as it answered the first
    /// (Step Functions, for the same input).
    async fn start(
        &self,
        workflow: &str,
        input: Value,
        id: Option<String>,
    ) -> Result<String, Error>;
}

/// What [`WorkflowClient::start`] answers when `workflow` already has an
/// execution `id`: a [`crate::ErrorKind::Conflict`] naming both.
pub fn already_started(workflow: &str, id: &str) -> Error {
    Error::new(
        crate::ErrorKind::Conflict,
        format!("workflow `{workflow}` already has an execution `{id}`"),
    )
}

/// Stands in where no workflow engine is configured; every start fails
/// with a clear error.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoWorkflows;

#[async_trait]
impl WorkflowClient for NoWorkflows {
    async fn start(&self, workflow: &str, _: Value, _: Option<String>) -> Result<String, Error> {
        Err(Error::unavailable(format!(
            "no workflow engine is configured to start `{workflow}`"
        )))
    }
}

/// A handle on one workflow, from [`crate::Context::workflow`].
///
/// ```
/// use cloudfn_core::{Context, Error, Function, HttpRequest, HttpResponse, Method};
///
/// async fn place(req: HttpRequest, ctx: Context) -> Result<HttpResponse, Error> {
///     let order: serde_json::Value = req.json()?;
///     let id = ctx.workflow("order").start(&order).await?;
///     Ok(HttpResponse::json(202, &serde_json::json!({"execution": id})))
/// }
///
/// let f = Function::http("place", Method::Post, "/orders", place).starts_workflow("order");
/// assert!(f.starts().contains("order"));
/// ```
#[derive(Clone)]
pub struct Starter {
    name: String,
    client: Arc<dyn WorkflowClient>,
    allowed: Result<(), Error>,
}

impl Starter {
    pub(crate) fn new(
        name: &str,
        client: Arc<dyn WorkflowClient>,
        function: &str,
        permissions: &Permissions,
    ) -> Self {
        Self {
            allowed: permissions.check(
                function,
                "workflow",
                name,
                &permissions.workflows,
                "starts_workflow",
            ),
            name: name.to_owned(),
            client,
        }
    }

    /// The workflow's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Starts an execution on `input` (as JSON); returns its id.
    pub async fn start<T: Serialize + ?Sized>(&self, input: &T) -> Result<String, Error> {
        self.start_execution(input, None).await
    }

    /// Starts the execution `id` on `input`. An id starts one execution
    /// however often it is started, so a retried handler starts it once
    /// (a repeat is a [`crate::ErrorKind::Conflict`]; see
    /// [`WorkflowClient::start`]).
    pub async fn start_with_id<T: Serialize + ?Sized>(
        &self,
        id: impl Into<String>,
        input: &T,
    ) -> Result<String, Error> {
        self.start_execution(input, Some(id.into())).await
    }

    async fn start_execution<T: Serialize + ?Sized>(
        &self,
        input: &T,
        id: Option<String>,
    ) -> Result<String, Error> {
        self.allowed.clone()?;
        let input = serde_json::to_value(input)
            .map_err(|e| Error::internal(format!("cannot serialise the workflow's input: {e}")))?;
        self.client
            .start(&self.name, input, id)
            .await
            .map_err(Error::private)
    }
}
