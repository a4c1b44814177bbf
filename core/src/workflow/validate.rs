//! What makes a workflow one that can run and be rendered.

use std::collections::HashSet;

use super::{Action, Step, Workflow, condition::check_path};
use crate::Error;

/// The longest wait: a year, Step Functions' longest execution.
const MAX_WAIT_SECS: u64 = 365 * 24 * 3600;

impl Workflow {
    /// Checks the workflow against the step functions of its app (`is_function`
    /// says whether a name is one): names, that every called function and
    /// compensation exists, that no step follows one that ends the run,
    /// that choices and parallels have branches, paths and waits, and that
    /// only steps every engine can retry, catch or undo do so. The error
    /// names the workflow and the step.
    ///
    /// ```
    /// use cloudfn_core::workflow::{Step, Workflow};
    ///
    /// let flow = Workflow::new("order").step(Step::call("charge", "charge-card").compensate("refund"));
    /// let err = flow.validate(|f| f == "charge-card").unwrap_err();
    /// assert!(err.message().contains("compensation `refund` is not a step function of the app"));
    /// ```
    pub fn validate(&self, is_function: impl Fn(&str) -> bool) -> Result<(), Error> {
        let invalid =
            |message: String| Error::invalid(format!("workflow `{}`: {message}", self.name));
        if !crate::conventions::is_plain_name(&self.name) {
            return Err(invalid(
                "names are 1 to 64 letters, digits, `-` or `_`".into(),
            ));
        }
        if self.steps.is_empty() {
            return Err(invalid("it has no steps".into()));
        }
        let mut names = HashSet::new();
        for step in self.all_steps() {
            if !names.insert(step.name.as_str()) {
                return Err(invalid(format!(
                    "step `{}` is named twice; step names are unique in a workflow",
                    step.name
                )));
            }
        }
        check_sequence(&self.steps, true, &is_function).map_err(invalid)
    }
}

/// Checks `steps`, one sequence (`top` for the workflow's own).
fn check_sequence(
    steps: &[Step],
    top: bool,
    is_function: &impl Fn(&str) -> bool,
) -> Result<(), String> {
    if let Some(end) = steps.iter().position(Step::is_terminal)
        && let Some(after) = steps.get(end + 1)
    {
        return Err(format!(
            "step `{}` is unreachable: `{}` before it ends the run",
            after.name, steps[end].name
        ));
    }
    for step in steps {
        check_step(step, top, is_function)
            .map_err(|message| format!("step `{}`: {message}", step.name))?;
        for branch in step.branches() {
            check_sequence(branch, false, is_function)?;
        }
    }
    Ok(())
}

fn check_step(step: &Step, top: bool, is_function: &impl Fn(&str) -> bool) -> Result<(), String> {
    if !crate::conventions::is_plain_name(&step.name) {
        return Err("names are 1 to 64 letters, digits, `-` or `_`".into());
    }
    match &step.action {
        Action::Call { function } if !is_function(function) => {
            return Err(format!("`{function}` is not a step function of the app"));
        }
        Action::Send { queue: name } | Action::Publish { topic: name } if name.is_empty() => {
            return Err("it names no queue or topic".into());
        }
        Action::Wait { duration } if duration.is_zero() || duration.as_secs() > MAX_WAIT_SECS => {
            return Err("a wait is more than zero and at most a year".into());
        }
        Action::Choice(choice) => {
            if choice.when.is_empty() {
                return Err("a choice needs at least one condition".into());
            }
            for branch in &choice.when {
                for path in branch.condition.paths() {
                    check_path(path)?;
                }
            }
        }
        Action::Parallel { branches }
            if branches.is_empty() || branches.iter().any(Vec::is_empty) =>
        {
            return Err("a parallel step needs branches, each with a step".into());
        }
        _ => {}
    }
    if step.is_terminal() && (step.retry.is_some() || !step.catch.is_empty()) {
        return Err("a step that ends the run has nothing to retry or catch".into());
    }
    // What every engine can do: Step Functions retries and catches only
    // tasks and parallel states, and only a task's result can be undone.
    let task = matches!(
        step.action,
        Action::Call { .. } | Action::Send { .. } | Action::Publish { .. }
    );
    if !task && (step.retry.is_some() || step.compensation.is_some()) {
        return Err("only call, send and publish steps retry or compensate".into());
    }
    if !task && !matches!(step.action, Action::Parallel { .. }) && !step.catch.is_empty() {
        return Err("only call, send, publish and parallel steps catch".into());
    }
    if let Some(retry) = &step.retry
        && retry.max_attempts == 0
    {
        return Err("retry needs at least one attempt".into());
    }
    for catch in &step.catch {
        if catch.steps.is_empty() {
            return Err("a catch needs a step to run".into());
        }
    }
    if let Some(compensation) = &step.compensation {
        if !top {
            return Err("only the workflow's own steps compensate, not those in branches".into());
        }
        if !is_function(compensation) {
            return Err(format!(
                "compensation `{compensation}` is not a step function of the app"
            ));
        }
    }
    Ok(())
}
