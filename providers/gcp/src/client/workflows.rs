//! Starting Google Cloud Workflows executions from a handler
//! ([`cloudfn_core::Context::workflow`]), over the Workflow Executions
//! REST API (`executions.create`, one call, with reqwest and the same
//! credentials as the Firestore client).
//!
//! Workflows names each execution itself and has no idempotent create, so
//! a start under an id of the caller's is claimed first: a document
//! `{workflow}/{id}` created in the app's executions collection in
//! Firestore, which exists once. A repeat is a
//! [`cloudfn_core::ErrorKind::Conflict`]; a create that fails removes its
//! claim, so the retry starts it. Only a process that dies between the
//! claim and the create leaves an id claimed and nothing running: an
//! execution is started at most once, never twice, since its steps are
//! keyed by Workflows' own execution id.

use std::{collections::BTreeMap, sync::OnceLock};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cloudfn_core::{
    Error, Store,
    workflow::{WorkflowClient, already_started},
};
use google_cloud_auth::credentials::Credentials;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::names;

/// Workflows' own REST endpoint.
pub const ENDPOINT: &str = "https://workflowexecutions.googleapis.com/v1";

/// The label that carries a start's id on its execution, where the id can
/// be a label value.
pub const EXECUTION_LABEL: &str = "cloudfn-execution";

const API: &str = "Workflow Executions";

/// What a claimed id records.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claim {
    claimed: DateTime<Utc>,
    /// Workflows' name of the execution, once it is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    execution: Option<String>,
}

/// Whose credentials a request carries.
enum Auth {
    /// None: what a stand-in of the API takes.
    None,
    /// These.
    Given(Credentials),
    /// The process's Application Default Credentials, once found.
    Default(OnceLock<Credentials>),
}

impl Auth {
    fn credentials(&self) -> Result<Option<&Credentials>, Error> {
        match self {
            Self::None => Ok(None),
            Self::Given(credentials) => Ok(Some(credentials)),
            Self::Default(found) => {
                if let Some(credentials) = found.get() {
                    return Ok(Some(credentials));
                }
                let credentials = super::rest::default_credentials(API)?;
                Ok(Some(found.get_or_init(|| credentials)))
            }
        }
    }
}

/// Starts executions of the app's workflows on Google Cloud Workflows.
pub struct WorkflowExecutions {
    endpoint: String,
    http: reqwest::Client,
    auth: Auth,
    claims: Store,
    /// Full names given in code, ahead of the settings.
    named: BTreeMap<String, String>,
}

impl WorkflowExecutions {
    /// Starts executions at Workflows' [`ENDPOINT`] with the process's
    /// Application Default Credentials (found at the first start, not when
    /// the function starts), claiming ids in `claims` (the app's
    /// [`cloudfn_core::workflow::EXECUTIONS_STORE`]).
    pub fn from_env(claims: Store) -> Self {
        Self::at(ENDPOINT, Auth::Default(OnceLock::new()), claims)
    }

    /// The same at `endpoint` (`…/v1`), with `credentials` if any.
    pub fn with_endpoint(
        endpoint: impl Into<String>,
        credentials: Option<Credentials>,
        claims: Store,
    ) -> Self {
        let auth = credentials.map_or(Auth::None, Auth::Given);
        Self::at(endpoint, auth, claims)
    }

    fn at(endpoint: impl Into<String>, auth: Auth, claims: Store) -> Self {
        // reqwest's rustls has no provider of its own.
        super::install_tls();
        Self {
            endpoint: endpoint.into(),
            http: reqwest::Client::new(),
            auth,
            claims,
            named: BTreeMap::new(),
        }
    }

    /// Starts `workflow` as `resource` (`projects/P/locations/L/workflows/W`)
    /// rather than as its setting ([`names::workflow_variable`]) names it:
    /// for tools and tests.
    pub fn naming(mut self, workflow: impl Into<String>, resource: impl Into<String>) -> Self {
        self.named.insert(workflow.into(), resource.into());
        self
    }

    /// The full name of `workflow`.
    fn resource(&self, workflow: &str) -> Result<String, Error> {
        if let Some(resource) = self.named.get(workflow) {
            return Ok(resource.clone());
        }
        let variable = names::workflow_variable(workflow);
        names::setting(&variable).ok_or_else(|| {
            Error::unavailable(format!(
                "`{variable}` is not set: it names workflow `{workflow}` on Google Cloud \
                 Workflows (`projects/…/locations/…/workflows/…`); the deployment sets it on \
                 functions that start the workflow"
            ))
        })
    }

    /// Creates an execution of the workflow `resource` on `input`; its
    /// name.
    async fn create(
        &self,
        workflow: &str,
        resource: &str,
        input: &Value,
        id: Option<&str>,
    ) -> Result<String, Error> {
        let what = format!("starting workflow `{workflow}`");
        let mut execution = json!({ "argument": input.to_string() });
        if let Some(id) = id.filter(|id| is_label_value(id)) {
            execution["labels"] = json!({ EXECUTION_LABEL: id });
        }
        let request = self
            .http
            .post(format!("{}/{resource}/executions", self.endpoint))
            .json(&execution);
        let (status, body) =
            super::rest::send(self.auth.credentials()?, request, API, &what).await?;
        if status != 200 {
            return Err(super::rest::answer_error(status, &body, API, &what));
        }
        body["name"].as_str().map(str::to_owned).ok_or_else(|| {
            Error::internal(format!("{what}: {API} answered no execution name: {body}")).private()
        })
    }
}

#[async_trait]
impl WorkflowClient for WorkflowExecutions {
    async fn start(
        &self,
        workflow: &str,
        input: Value,
        id: Option<String>,
    ) -> Result<String, Error> {
        let resource = self.resource(workflow)?;
        let Some(id) = id else {
            let name = self.create(workflow, &resource, &input, None).await?;
            return Ok(name.rsplit('/').next().unwrap_or(&name).to_owned());
        };
        let key = format!("{workflow}/{id}");
        let claim = Claim {
            claimed: Utc::now(),
            execution: None,
        };
        if self.claims.put_if_absent(&key, &claim).await?.is_none() {
            return Err(already_started(workflow, &id));
        }
        match self.create(workflow, &resource, &input, Some(&id)).await {
            Ok(name) => {
                let started = Claim {
                    execution: Some(name),
                    ..claim
                };
                // What it records is for people; the claim alone is what counts.
                if let Err(error) = self.claims.put(&key, &started).await {
                    tracing::warn!(%workflow, execution = %id, %error, "the started execution's name is not recorded");
                }
                Ok(id)
            }
            Err(error) => {
                // Unclaimed, so that a retry starts it.
                if let Err(unclaim) = self.claims.delete(&key).await {
                    tracing::error!(%workflow, execution = %id, error = %unclaim, "the failed start's claim stays: a retry is refused as a repeat");
                }
                Err(error)
            }
        }
    }
}

/// Whether `value` can be a label value: at most 63 lower-case letters,
/// digits, `_` and `-`.
fn is_label_value(value: &str) -> bool {
    value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ids_a_label_can_hold_are_labels() {
        assert!(is_label_value("9c3e1b2a-55aa-4e0e-9d0c-1f7a3c2b9e11"));
        assert!(!is_label_value("Order-1"));
        assert!(!is_label_value(&"a".repeat(64)));
    }
}
