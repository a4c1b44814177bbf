//! The durable orchestrator: runs a [`Workflow`] so that a crash loses
//! nothing.
//!
//! An execution is one record in a store ([`EXECUTIONS_STORE`]). Each
//! step's attempt is recorded before it starts and its result before the
//! next step starts, by compare-and-set, so any process can pick an
//! execution up. Running is replay: the definition is walked from the top
//! and a step whose result is recorded is not run again, its output taken
//! from the record. A step interrupted mid-call runs again with the same
//! idempotency key (`{execution}/{step}`), which the function's own
//! idempotency uses to do its work once.

use std::{collections::BTreeMap, future::Future, pin::Pin, sync::Arc};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Action, Step, StepCall, Workflow};
use crate::{Error, ErrorKind, RetryPolicy, store::Store};

/// The store that holds executions, one per app; no user store may take
/// the name.
pub const EXECUTIONS_STORE: &str = "cloudfn-executions";

/// How many finished executions a workflow's index keeps listed.
const LISTED_FINISHED: usize = 100;

/// What steps do in the world: call functions, send, publish. The local
/// runtime calls the app's functions in the process; a cloud's function app
/// does the same with its own clients.
#[async_trait]
pub trait StepRunner: Send + Sync + 'static {
    /// Calls step function `function`; the call's key is the same for
    /// every attempt of its step in its execution.
    async fn call(&self, function: &str, call: StepCall) -> Result<Value, Error>;
    /// Sends `input` to queue `queue`, with `key` as its idempotency key.
    async fn send(&self, queue: &str, input: &Value, key: &str) -> Result<(), Error>;
    /// Publishes `input` to topic `topic`, with `key` as its idempotency key.
    async fn publish(&self, topic: &str, input: &Value, key: &str) -> Result<(), Error>;
}

/// Where an execution stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Steps remain.
    Running,
    /// It ended with an output.
    Succeeded,
    /// A step failed and nothing caught it; done steps were compensated.
    Failed,
}

/// A failure as an execution records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The error's kind.
    pub kind: ErrorKind,
    /// What went wrong.
    pub message: String,
    /// The step that failed.
    pub step: String,
}

/// One step's history in one execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// What it was given.
    pub input: Value,
    /// What it gave, once it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// Its last failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
    /// Attempts started.
    pub attempts: u32,
    /// When the first attempt started.
    pub started: DateTime<Utc>,
    /// When it succeeded or gave up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<DateTime<Utc>>,
    /// For a wait: when it is over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<DateTime<Utc>>,
}

/// One run of a workflow, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    /// Unique within the workflow.
    pub id: String,
    /// The workflow's name.
    pub workflow: String,
    /// Where it stands.
    pub status: Status,
    /// Its input.
    pub input: Value,
    /// Its output, once it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
    /// When it started.
    pub started: DateTime<Utc>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<DateTime<Utc>>,
    /// Each step's history by step name; compensations as
    /// `compensate:<step>`.
    pub steps: BTreeMap<String, StepRecord>,
}

/// The executions of a workflow worth listing: those running, and the
/// latest finished.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Index {
    /// Unfinished, oldest first: what a restarted orchestrator resumes.
    pub running: Vec<String>,
    /// The latest finished, newest last.
    pub finished: Vec<String>,
}

/// Why a walk stopped short.
enum Stop {
    /// A step failed and nothing caught it: the execution fails.
    Failed(Failure),
    /// The record could not be read or written: the execution stays
    /// running, for a later run to resume.
    Interrupted(Error),
}

impl From<Failure> for Stop {
    fn from(failure: Failure) -> Self {
        Self::Failed(failure)
    }
}

/// How a sequence ended, short of failing.
enum Flow {
    /// Its last output, for what follows.
    Next(Value),
    /// A `succeed` step ended the execution with this output.
    End(Value),
}

type Walk<'a> = Pin<Box<dyn Future<Output = Result<Flow, Stop>> + Send + 'a>>;

/// Runs workflows durably, in a store any process of the app can reach.
#[derive(Clone)]
pub struct Orchestrator {
    store: Store,
    runner: Arc<dyn StepRunner>,
    workflows: Arc<Vec<Workflow>>,
}

impl Orchestrator {
    /// Runs `workflows` with `runner`, recording progress in `store` (the
    /// app's [`EXECUTIONS_STORE`]).
    pub fn new(store: Store, runner: Arc<dyn StepRunner>, workflows: Vec<Workflow>) -> Self {
        Self {
            store,
            runner,
            workflows: Arc::new(workflows),
        }
    }

    /// The workflows it runs.
    pub fn workflows(&self) -> &[Workflow] {
        &self.workflows
    }

    fn workflow(&self, name: &str) -> Result<&Workflow, Error> {
        self.workflows
            .iter()
            .find(|w| w.name() == name)
            .ok_or_else(|| Error::not_found(format!("no workflow `{name}`")))
    }

    /// Records a new execution of `workflow` on `input` under `id` (a
    /// fresh UUID if `None`), without running it. Starting the same id
    /// twice is refused as a conflict, so a retried start is harmless.
    pub async fn start(
        &self,
        workflow: &str,
        input: Value,
        id: Option<String>,
    ) -> Result<String, Error> {
        self.workflow(workflow)?;
        let id = id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let execution = Execution {
            id: id.clone(),
            workflow: workflow.to_owned(),
            status: Status::Running,
            input,
            output: None,
            error: None,
            started: Utc::now(),
            ended: None,
            steps: BTreeMap::new(),
        };
        if self
            .store
            .put_if_absent(&execution_key(workflow, &id), &execution)
            .await?
            .is_none()
        {
            return Err(super::already_started(workflow, &id));
        }
        self.store
            .update(&index_key(workflow), |index: Option<Index>| {
                let mut index = index.unwrap_or_default();
                if !index.running.contains(&id) {
                    index.running.push(id.clone());
                }
                Ok(index)
            })
            .await?;
        Ok(id)
    }

    /// The execution `id` of `workflow`, as recorded.
    pub async fn get(&self, workflow: &str, id: &str) -> Result<Option<Execution>, Error> {
        Ok(self
            .store
            .get::<Execution>(&execution_key(workflow, id))
            .await?
            .map(|v| v.value))
    }

    /// The executions of `workflow` worth listing.
    pub async fn list(&self, workflow: &str) -> Result<Index, Error> {
        self.workflow(workflow)?;
        Ok(self
            .store
            .get::<Index>(&index_key(workflow))
            .await?
            .map(|v| v.value)
            .unwrap_or_default())
    }

    /// Runs execution `id` of `workflow` to its end from wherever its
    /// record stands; what it ended as.
    pub async fn run(&self, workflow: &str, id: &str) -> Result<Execution, Error> {
        let definition = self.workflow(workflow)?;
        let run = Run {
            orchestrator: self,
            key: execution_key(workflow, id),
            workflow,
            id,
        };
        let execution = run.load().await?;
        if execution.status != Status::Running {
            return Ok(execution);
        }
        let outcome = run.sequence(definition.steps(), execution.input).await;
        let (status, output, error) = match outcome {
            Ok(Flow::Next(output) | Flow::End(output)) => (Status::Succeeded, Some(output), None),
            Err(Stop::Interrupted(error)) => return Err(error),
            Err(Stop::Failed(failure)) => {
                run.compensate(definition, &failure).await?;
                (Status::Failed, None, Some(failure))
            }
        };
        let ended = run
            .change(|execution| {
                execution.status = status;
                execution.output = output.clone();
                execution.error = error.clone();
                execution.ended = Some(Utc::now());
            })
            .await?;
        self.store
            .update(&index_key(workflow), |index: Option<Index>| {
                let mut index = index.unwrap_or_default();
                index.running.retain(|r| r != id);
                if !index.finished.iter().any(|f| f == id) {
                    index.finished.push(id.to_owned());
                }
                let over = index.finished.len().saturating_sub(LISTED_FINISHED);
                index.finished.drain(..over);
                Ok(index)
            })
            .await?;
        Ok(ended)
    }

    /// Runs every unfinished execution of every workflow to its end, as a
    /// restarted process does; how many it ran.
    pub async fn resume_all(&self) -> Result<usize, Error> {
        let mut resumed = 0;
        for workflow in self.workflows.iter() {
            let index = self.list(workflow.name()).await?;
            let runs = index.running.iter().map(|id| self.run(workflow.name(), id));
            for ended in futures::future::join_all(runs).await {
                ended?;
                resumed += 1;
            }
        }
        Ok(resumed)
    }
}

fn execution_key(workflow: &str, id: &str) -> String {
    format!("{workflow}/{id}")
}

fn index_key(workflow: &str) -> String {
    format!("{workflow}/")
}

/// One execution being run.
struct Run<'a> {
    orchestrator: &'a Orchestrator,
    key: String,
    workflow: &'a str,
    id: &'a str,
}

impl Run<'_> {
    async fn load(&self) -> Result<Execution, Error> {
        self.orchestrator
            .store
            .get::<Execution>(&self.key)
            .await?
            .map(|v| v.value)
            .ok_or_else(|| Error::not_found(format!("no execution `{}`", self.key)))
    }

    /// Applies `change` to the stored execution; the execution as written.
    async fn change(&self, mut change: impl FnMut(&mut Execution)) -> Result<Execution, Error> {
        self.orchestrator
            .store
            .update(&self.key, |execution: Option<Execution>| {
                let mut execution = execution
                    .ok_or_else(|| Error::not_found(format!("no execution `{}`", self.key)))?;
                change(&mut execution);
                Ok(execution)
            })
            .await
    }

    /// Changes step `name`'s record, made from `input` if there is none.
    async fn record(
        &self,
        name: &str,
        input: &Value,
        change: impl Fn(&mut StepRecord),
    ) -> Result<StepRecord, Stop> {
        let execution = self
            .change(|execution| {
                let record = execution
                    .steps
                    .entry(name.to_owned())
                    .or_insert_with(|| StepRecord {
                        input: input.clone(),
                        output: None,
                        error: None,
                        attempts: 0,
                        started: Utc::now(),
                        ended: None,
                        due: None,
                    });
                change(record);
            })
            .await
            .map_err(Stop::Interrupted)?;
        Ok(execution.steps[name].clone())
    }

    fn sequence<'s>(&'s self, steps: &'s [Step], input: Value) -> Walk<'s> {
        Box::pin(async move {
            let mut value = input;
            for step in steps {
                match self.step(step, value).await? {
                    Flow::Next(output) => value = output,
                    end @ Flow::End(_) => return Ok(end),
                }
            }
            Ok(Flow::Next(value))
        })
    }

    async fn step(&self, step: &Step, input: Value) -> Result<Flow, Stop> {
        let error = match self.attempt(step, &input).await {
            Err(Stop::Failed(error)) => error,
            other => return other,
        };
        let Some(catch) = step.catch.iter().find(|c| c.errors.matches(error.kind)) else {
            return Err(error.into());
        };
        let mut handled = input;
        if let Value::Object(fields) = &mut handled {
            fields.insert(
                "error".into(),
                serde_json::json!({"kind": error.kind, "message": error.message}),
            );
        }
        self.sequence(&catch.steps, handled).await
    }

    /// The step itself, with its retries.
    async fn attempt(&self, step: &Step, input: &Value) -> Result<Flow, Stop> {
        match &step.action {
            Action::Choice(choice) => {
                let branch = choice
                    .when
                    .iter()
                    .find(|b| b.condition.holds(input))
                    .map_or(choice.otherwise.as_slice(), |b| b.steps.as_slice());
                return self.sequence(branch, input.clone()).await;
            }
            Action::Parallel { branches } => {
                let runs = branches.iter().map(|b| self.sequence(b, input.clone()));
                let mut outputs = Vec::new();
                // A `succeed` in a branch ends that branch only, as in
                // Step Functions.
                for flow in futures::future::join_all(runs).await {
                    match flow? {
                        Flow::Next(output) | Flow::End(output) => outputs.push(output),
                    }
                }
                return Ok(Flow::Next(Value::Array(outputs)));
            }
            Action::Succeed => return Ok(Flow::End(input.clone())),
            Action::Fail { error, cause } => {
                return Err(Stop::Failed(Failure {
                    kind: ErrorKind::Invalid,
                    message: format!("{error}: {cause}"),
                    step: step.name.clone(),
                }));
            }
            _ => {}
        }
        let retry = step.retry.unwrap_or_else(|| RetryPolicy::new(1));
        loop {
            // Done work is not done again: a recorded end is the step's.
            let record = self
                .record(&step.name, input, |r| {
                    if r.ended.is_none() {
                        r.attempts += 1;
                    }
                    // A wait's end is fixed once, so a resumed wait only
                    // waits what is left of it.
                    if let (Action::Wait { duration }, None) = (&step.action, r.due) {
                        r.due = chrono::Duration::from_std(*duration)
                            .ok()
                            .and_then(|d| Utc::now().checked_add_signed(d))
                            .or(Some(DateTime::<Utc>::MAX_UTC));
                    }
                })
                .await?;
            if let Some(output) = record.output {
                return Ok(Flow::Next(output));
            }
            if let Some(error) = record.error.as_ref().filter(|_| record.ended.is_some()) {
                return Err(error.clone().into());
            }
            let outcome = self.act(step, input, &record).await;
            let given_up =
                |e: &Error| !(e.is_retryable() && retry.has_attempts_left(record.attempts));
            match outcome {
                Ok(output) => {
                    self.record(&step.name, input, |r| {
                        r.output = Some(output.clone());
                        r.error = None;
                        r.ended = Some(Utc::now());
                    })
                    .await?;
                    return Ok(Flow::Next(output));
                }
                Err(error) => {
                    let stop = given_up(&error);
                    let failed = failure(&step.name, &error);
                    self.record(&step.name, input, |r| {
                        r.error = Some(failed.clone());
                        if stop {
                            r.ended = Some(Utc::now());
                        }
                    })
                    .await?;
                    if stop {
                        return Err(failed.into());
                    }
                    tokio::time::sleep(retry.delay(record.attempts)).await;
                }
            }
        }
    }

    /// One attempt at a step that does something.
    async fn act(&self, step: &Step, input: &Value, record: &StepRecord) -> Result<Value, Error> {
        let runner = &self.orchestrator.runner;
        let key = format!("{}/{}", self.id, step.name);
        match &step.action {
            Action::Call { function } => {
                let call = StepCall {
                    workflow: self.workflow.to_owned(),
                    execution: self.id.to_owned(),
                    step: step.name.clone(),
                    attempt: record.attempts,
                    input: input.clone(),
                };
                runner.call(function, call).await
            }
            Action::Send { queue } => runner
                .send(queue, input, &key)
                .await
                .map(|()| input.clone()),
            Action::Publish { topic } => runner
                .publish(topic, input, &key)
                .await
                .map(|()| input.clone()),
            Action::Wait { .. } => {
                let due = record.due.unwrap_or_else(Utc::now);
                if let Ok(left) = (due - Utc::now()).to_std() {
                    tokio::time::sleep(left).await;
                }
                Ok(input.clone())
            }
            Action::Choice(_) | Action::Parallel { .. } | Action::Succeed | Action::Fail { .. } => {
                unreachable!("run by attempt")
            }
        }
    }

    /// Undoes the done top-level steps, latest first, each compensation
    /// given the input of the step that failed (the last good state).
    async fn compensate(&self, workflow: &Workflow, failure: &Failure) -> Result<(), Error> {
        let execution = self.load().await?;
        let last_good = execution
            .steps
            .get(&failure.step)
            .map_or_else(|| execution.input.clone(), |r| r.input.clone());
        for step in workflow.steps().iter().rev() {
            let (Some(function), Some(done)) =
                (&step.compensation, execution.steps.get(&step.name))
            else {
                continue;
            };
            if done.output.is_none() {
                continue;
            }
            let undo = Step {
                name: format!("compensate:{}", step.name),
                action: Action::Call {
                    function: function.clone(),
                },
                retry: Some(step.retry.unwrap_or_default()),
                catch: Vec::new(),
                compensation: None,
            };
            match self.attempt(&undo, &last_good).await {
                Ok(_) => {}
                Err(Stop::Interrupted(error)) => return Err(error),
                Err(Stop::Failed(failed)) => tracing::error!(
                    execution = %self.id,
                    step = %step.name,
                    error = %failed.message,
                    "a compensation failed; what it undoes stays done"
                ),
            }
        }
        Ok(())
    }
}

fn failure(step: &str, error: &Error) -> Failure {
    Failure {
        kind: error.kind(),
        message: error.message().to_owned(),
        step: step.to_owned(),
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
