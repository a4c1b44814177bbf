//! Workflows: a flow of steps run by one orchestrator, as data.
//!
//! A [`Workflow`] is a sequence of [`Step`]s. A step calls an app function
//! by name, sends to a queue, publishes to a topic, waits, branches on the
//! previous output ([`Step::choice`]), runs branches side by side
//! ([`Step::parallel`]), or ends the run ([`Step::succeed`],
//! [`Step::fail`]). Each step may retry with a [`RetryPolicy`], catch
//! failures into other steps ([`Catch`]) and name a compensation: when a
//! later step fails, the compensations of the steps already done run in
//! reverse (a saga). Data flows as JSON: a step's input is the previous
//! step's output, the first step's is the execution's input.
//!
//! The definition holds no code, so every provider can render it to its own
//! engine, and the in-process orchestrator can run it. It is a tree: branches
//! rejoin the sequence they sit in, so a workflow cannot loop.
//!
//! ```
//! use cloudfn_core::{RetryPolicy, workflow::{Choice, Condition, Step, Workflow}};
//!
//! let flow = Workflow::new("order")
//!     .step(Step::call("validate", "validate-order"))
//!     .step(Step::call("charge", "charge-card").retry(RetryPolicy::new(3)).compensate("refund"))
//!     .step(Step::call("reserve", "reserve-stock"))
//!     .step(Step::choice(
//!         "express",
//!         Choice::new()
//!             .when(Condition::equals("shipping", "express"), [Step::publish("rush", "rush-orders")])
//!             .otherwise([Step::send("ship", "shipments")]),
//!     ));
//! assert_eq!(flow.steps().len(), 4);
//! assert_eq!(flow.compensations(), ["refund"]);
//! ```

mod call;
mod client;
mod condition;
mod engine;
pub mod fixture;
mod in_process;
mod validate;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use call::{EXECUTION_ATTRIBUTE, STEP_ATTRIBUTE, StepCall};
pub use client::{NoWorkflows, Starter, WorkflowClient, already_started};
pub use condition::Condition;
pub use engine::{
    EXECUTIONS_STORE, Execution, Failure, Index, Orchestrator, Status, StepRecord, StepRunner,
};
pub use in_process::InProcessSteps;

use crate::{ErrorKind, RetryPolicy, policy::millis};

/// A named flow of steps (see the [module](self)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workflow {
    name: String,
    steps: Vec<Step>,
}

impl Workflow {
    /// A workflow with no steps yet.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            steps: Vec::new(),
        }
    }

    /// Adds `step` after the others.
    pub fn step(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The steps, in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Every step, nested ones included, depth first.
    pub fn all_steps(&self) -> Vec<&Step> {
        fn walk<'a>(steps: &'a [Step], out: &mut Vec<&'a Step>) {
            for step in steps {
                out.push(step);
                for branch in step.branches() {
                    walk(branch, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.steps, &mut out);
        out
    }

    /// The functions the workflow calls, compensations included, each once.
    pub fn functions(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .all_steps()
            .into_iter()
            .flat_map(|step| {
                let called = match &step.action {
                    Action::Call { function } => Some(function.as_str()),
                    _ => None,
                };
                called.into_iter().chain(step.compensation.as_deref())
            })
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The compensations of the top-level steps, in step order.
    pub fn compensations(&self) -> Vec<&str> {
        self.steps
            .iter()
            .filter_map(|step| step.compensation.as_deref())
            .collect()
    }
}

/// One step of a [`Workflow`]: what it does, and how its failures are met.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Unique within the workflow: executions and renderings name steps by it.
    pub name: String,
    /// What the step does.
    #[serde(flatten)]
    pub action: Action,
    /// Attempts at a retryable failure; none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// Failures handled by other steps, tried in order once retries are spent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub catch: Vec<Catch>,
    /// The function that undoes this step, run when a later step fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compensation: Option<String>,
}

/// What a [`Step`] does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Calls app function `function` with the input; its output goes on.
    Call {
        /// The function's name.
        function: String,
    },
    /// Sends the input to queue `queue`; the input goes on.
    Send {
        /// The queue's name.
        queue: String,
    },
    /// Publishes the input to topic `topic`; the input goes on.
    Publish {
        /// The topic's name.
        topic: String,
    },
    /// Waits, then passes the input on.
    Wait {
        /// How long.
        #[serde(rename = "millis", with = "millis")]
        duration: Duration,
    },
    /// Runs the first branch whose condition holds on the input (else
    /// `otherwise`, else nothing), then goes on with its output.
    Choice(Choice),
    /// Runs every branch on the input side by side; the output is the
    /// array of their outputs, in branch order. A `succeed` in a branch
    /// ends that branch; a failure in one fails the step.
    Parallel {
        /// The branches.
        branches: Vec<Vec<Step>>,
    },
    /// Ends the execution successfully with the input as its output.
    Succeed,
    /// Ends the execution as failed, compensating what was done.
    Fail {
        /// A short name of the failure.
        error: String,
        /// What happened.
        cause: String,
    },
}

/// The branches of a [`Step::choice`].
///
/// ```
/// use cloudfn_core::workflow::{Choice, Condition, Step};
///
/// let route = Choice::new()
///     .when(Condition::equals("shipping", "express"), [Step::publish("rush", "rush-orders")])
///     .otherwise([Step::send("ship", "shipments")]);
/// let step = Step::choice("express", route);
/// assert_eq!(step.branches().count(), 2);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// The conditions and their branches, in order.
    pub when: Vec<Branch>,
    /// The branch when no condition holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub otherwise: Vec<Step>,
}

impl Choice {
    /// A choice with no branches yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a branch: `steps` run when `condition` holds on the input and
    /// no earlier branch's did.
    pub fn when(mut self, condition: Condition, steps: impl IntoIterator<Item = Step>) -> Self {
        self.when.push(Branch {
            condition,
            steps: steps.into_iter().collect(),
        });
        self
    }

    /// What runs when no condition holds (by default, nothing).
    pub fn otherwise(mut self, steps: impl IntoIterator<Item = Step>) -> Self {
        self.otherwise = steps.into_iter().collect();
        self
    }
}

/// A branch of a [`Choice`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Branch {
    /// When it runs.
    pub condition: Condition,
    /// What runs.
    pub steps: Vec<Step>,
}

/// Failures of a step handled by other steps instead of failing the
/// execution. The handling steps get the step's input (a JSON object)
/// with an `error` field, `{"kind": …, "message": …}`, and the execution
/// goes on after the caught step with their output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catch {
    /// Which failures.
    pub errors: ErrorMatch,
    /// What runs instead.
    pub steps: Vec<Step>,
}

/// Which failures a [`Catch`] takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorMatch {
    /// Every failure.
    Any,
    /// Failures that would be retried ([`crate::Error::is_retryable`]).
    Retryable,
    /// Failures that would not.
    Permanent,
    /// Failures of these kinds.
    Kinds(Vec<ErrorKind>),
}

impl ErrorMatch {
    /// Whether a failure of `kind` matches.
    pub fn matches(&self, kind: ErrorKind) -> bool {
        match self {
            Self::Any => true,
            Self::Retryable => kind.is_retryable(),
            Self::Permanent => !kind.is_retryable(),
            Self::Kinds(kinds) => kinds.contains(&kind),
        }
    }
}

impl Step {
    fn of(name: impl Into<String>, action: Action) -> Self {
        Self {
            name: name.into(),
            action,
            retry: None,
            catch: Vec::new(),
            compensation: None,
        }
    }

    /// Calls app function `function`.
    pub fn call(name: impl Into<String>, function: impl Into<String>) -> Self {
        Self::of(
            name,
            Action::Call {
                function: function.into(),
            },
        )
    }

    /// Sends the input to queue `queue`.
    pub fn send(name: impl Into<String>, queue: impl Into<String>) -> Self {
        Self::of(
            name,
            Action::Send {
                queue: queue.into(),
            },
        )
    }

    /// Publishes the input to topic `topic`.
    pub fn publish(name: impl Into<String>, topic: impl Into<String>) -> Self {
        Self::of(
            name,
            Action::Publish {
                topic: topic.into(),
            },
        )
    }

    /// Waits `duration`.
    pub fn wait(name: impl Into<String>, duration: Duration) -> Self {
        Self::of(name, Action::Wait { duration })
    }

    /// Runs the branch of `choice` whose condition holds.
    pub fn choice(name: impl Into<String>, choice: Choice) -> Self {
        Self::of(name, Action::Choice(choice))
    }

    /// Runs `branches` side by side.
    pub fn parallel<B: IntoIterator<Item = Step>>(
        name: impl Into<String>,
        branches: impl IntoIterator<Item = B>,
    ) -> Self {
        Self::of(
            name,
            Action::Parallel {
                branches: branches
                    .into_iter()
                    .map(|b| b.into_iter().collect())
                    .collect(),
            },
        )
    }

    /// Ends the execution successfully.
    pub fn succeed(name: impl Into<String>) -> Self {
        Self::of(name, Action::Succeed)
    }

    /// Ends the execution as failed with `error` and `cause`.
    pub fn fail(
        name: impl Into<String>,
        error: impl Into<String>,
        cause: impl Into<String>,
    ) -> Self {
        Self::of(
            name,
            Action::Fail {
                error: error.into(),
                cause: cause.into(),
            },
        )
    }

    /// Retries a retryable failure by `policy` (call, send and publish
    /// steps).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Runs `steps` instead when the step fails with an error `errors`
    /// matches, after its retries (call, send, publish and parallel steps).
    pub fn catch(mut self, errors: ErrorMatch, steps: impl IntoIterator<Item = Step>) -> Self {
        self.catch.push(Catch {
            errors,
            steps: steps.into_iter().collect(),
        });
        self
    }

    /// Names the function that undoes this step: a call, send or publish
    /// among the workflow's own steps, not in a branch.
    pub fn compensate(mut self, function: impl Into<String>) -> Self {
        self.compensation = Some(function.into());
        self
    }

    /// The nested sequences: a choice's branches, a parallel's, a catch's.
    pub fn branches(&self) -> impl Iterator<Item = &[Step]> {
        let own: Vec<&[Step]> = match &self.action {
            Action::Choice(choice) => choice
                .when
                .iter()
                .map(|b| b.steps.as_slice())
                .chain(std::iter::once(choice.otherwise.as_slice()))
                .collect(),
            Action::Parallel { branches } => branches.iter().map(Vec::as_slice).collect(),
            _ => Vec::new(),
        };
        own.into_iter()
            .chain(self.catch.iter().map(|c| c.steps.as_slice()))
    }

    /// Whether the execution ends here.
    pub fn is_terminal(&self) -> bool {
        matches!(self.action, Action::Succeed | Action::Fail { .. })
    }
}

#[cfg(test)]
mod tests;
