use async_trait::async_trait;
use cloudfn_core::{
    Error,
    workflow::{WorkflowClient, already_started},
};
use serde_json::Value;

use super::sdk_error;

/// [`WorkflowClient`] on AWS Step Functions: starts executions of the state
/// machine a workflow is rendered as (`deploy::state_machine`).
///
/// A workflow name resolves to its state machine's ARN through
/// `CLOUDFN_STATE_MACHINE_ARN_<NAME>` (the SAM template sets it), else by
/// listing state machines, cached either way.
#[derive(Debug)]
pub struct StepFunctionsClient {
    client: super::LazyClient<aws_sdk_sfn::Client>,
    arns: super::Resolved,
}

impl StepFunctionsClient {
    pub(super) fn with_config(config: std::sync::Arc<super::LazyConfig>) -> Self {
        Self {
            client: super::LazyClient::new(config),
            arns: super::Resolved::default(),
        }
    }

    /// The SDK client underneath.
    pub async fn sdk(&self) -> &aws_sdk_sfn::Client {
        self.client.get(aws_sdk_sfn::Client::new).await
    }

    /// The ARN of workflow `name`'s state machine.
    pub async fn state_machine_arn(&self, name: &str) -> Result<String, Error> {
        self.arns
            .resolve(crate::names::state_machine_variable, name, || async {
                self.lookup(name).await
            })
            .await
    }

    /// A state machine named `name`, or `<stack>-<name>` as a deployment
    /// prefixes it.
    async fn lookup(&self, name: &str) -> Result<String, Error> {
        let mut pages = self
            .sdk()
            .await
            .list_state_machines()
            .into_paginator()
            .items()
            .send();
        let suffix = format!("-{name}");
        while let Some(machine) = pages.next().await {
            let machine = machine.map_err(|e| sdk_error("listing state machines", e))?;
            if machine.name == name || machine.name.ends_with(&suffix) {
                return Ok(machine.state_machine_arn);
            }
        }
        Err(Error::not_found(format!(
            "no state machine for workflow `{name}`"
        )))
    }
}

#[async_trait]
impl WorkflowClient for StepFunctionsClient {
    async fn start(
        &self,
        workflow: &str,
        input: Value,
        id: Option<String>,
    ) -> Result<String, Error> {
        let arn = self.state_machine_arn(workflow).await?;
        // The execution's name is its id: Step Functions refuses a second
        // execution of one name, which makes a retried start harmless.
        let id = id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let input = serde_json::to_string(&input)
            .map_err(|e| Error::internal(format!("cannot serialise the input: {e}")))?;
        let started = self
            .sdk()
            .await
            .start_execution()
            .state_machine_arn(arn)
            .name(&id)
            .input(input)
            .send()
            .await;
        match started {
            Ok(_) => Ok(id),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_execution_already_exists()) =>
            {
                Err(already_started(workflow, &id))
            }
            Err(e) => Err(sdk_error(
                &format!("starting an execution of workflow `{workflow}`"),
                e,
            )),
        }
    }
}
