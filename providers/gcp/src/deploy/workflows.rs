//! A workflow as a Google Cloud Workflows definition: see
//! [`workflow_definition`].

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use cloudfn_core::{
    Error, ErrorKind, RetryPolicy, conventions,
    messaging::PUBLISHED_ID,
    workflow::{Action, Catch, Choice, Condition, ErrorMatch, Step, Workflow},
};
use serde_norway::{Mapping, Value};

use super::Plan;

/// A YAML value with its keys in the order written, so that the
/// definition reads as Google's examples do:
/// `y!({"call": "sys.sleep", "args": {"seconds": (n)}})`. A key or value
/// that is neither a literal nor a map or list goes in parentheses.
macro_rules! y {
    ({ $($key:tt : $value:tt),* $(,)? }) => {
        Value::Mapping(Mapping::from_iter([$((y!($key), y!($value))),*]))
    };
    ([ $($value:tt),* $(,)? ]) => { Value::Sequence(vec![$(y!($value)),*]) };
    (null) => { Value::Null };
    (($value:expr)) => { Value::from($value) };
    ($value:expr) => { Value::from($value) };
}

/// The longest HTTP request Workflows waits for.
const MAX_HTTP_TIMEOUT: Duration = Duration::from_secs(1800);

/// The most branches of one parallel step.
const MAX_BRANCHES: usize = 10;

/// How deep Workflows nests parallel steps.
const MAX_PARALLEL_DEPTH: usize = 2;

/// The longest expression Workflows takes.
const MAX_EXPRESSION: usize = 400;

/// The names of `main`'s own steps. They, and the helpers' names, are
/// taken before any neutral step's: a neutral step named like one of them
/// gets a suffix, in case Workflows wants step names unique across a
/// definition.
const MAIN_STEPS: [&str; 6] = ["main", "init", "run", "finish", "failure", "failed"];

/// The execution's id, the same as the one the function sees.
const EXECUTION: &str = r#"sys.get_env("GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID")"#;

/// The environment variable of a workflow that holds the URL of
/// `function`'s Cloud Run service: `CLOUDFN_URL_CHARGE_CARD` for
/// `charge-card`.
pub fn url_variable(function: &str) -> String {
    conventions::resource_variable("CLOUDFN_URL_", function)
}

/// The file of `workflow`'s definition in the package's `workflows/`.
pub fn workflow_file(workflow: &str) -> String {
    format!("{workflow}.yaml")
}

/// [`workflow_definition`] as YAML, what `gcloud workflows deploy
/// --source` takes.
pub fn workflow_yaml(workflow: &Workflow, plan: &Plan) -> Result<String, Error> {
    serde_norway::to_string(&workflow_definition(workflow, plan)?).map_err(|e| {
        Error::internal(format!(
            "the definition of workflow `{}` as YAML: {e}",
            workflow.name()
        ))
    })
}

/// The Google Cloud Workflows definition of `workflow`, its subworkflows
/// `main` first.
///
/// The neutral steps run in `main` on one variable, `value`: the input of
/// the step about to run, which each step replaces with its output.
///
/// - `call` posts a [`StepCall`](cloudfn_core::workflow::StepCall) to the
///   function's Cloud Run service with the workflow's OIDC token; the URL
///   is the environment variable [`url_variable`] names, which the deploy
///   script sets from the deployed service, and the execution is
///   `GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID`. The function answers its output,
///   or its error's status with `{"error": {"kind", "message"}}`.
/// - `send` and `publish` go through the Pub/Sub connector to the topic the
///   plan names ([`Plan::step_topic`]), with `cloudfn-message-id` =
///   `execution/step`, so that a consumer's idempotency sees one message
///   however often the step runs.
/// - Every failure is read as a cloudfn error kind (`cloudfn_error`): the
///   kind a function answered, else the one its HTTP status stands for,
///   else from Workflows' own tags. A step's retries take only retryable
///   kinds (`cloudfn_retryable`), with the policy's doubling delays but no
///   jitter; its catches match kinds and run with the input plus `error:
///   {kind, message}`.
/// - `wait` sleeps; `choice` is a `switch` on fields read safely
///   (`cloudfn_field`); `parallel` runs each branch as a subworkflow of its
///   own, so that a `succeed` ends only its branch, and collects their
///   outputs in branch order.
/// - A failure nothing catches runs the compensations of the done top-level
///   steps, latest first, each with the failed step's input, then fails
///   the execution with `{kind, message}`.
///
/// Errors name what Workflows cannot take: a parallel step with more than
/// 10 branches or nested more than two deep, a choice comparing a field
/// with an object or array, a condition longer than Workflows'
/// 400-character expressions, a queue or topic the app makes no topic for.
pub fn workflow_definition(workflow: &Workflow, plan: &Plan) -> Result<Value, Error> {
    let helpers = helpers()?;
    let mut render = Render::new(workflow, plan, &helpers);
    let steps = render.sequence(workflow.steps(), 0)?;
    let mut init = vec![y!({"value": "${input}"})];
    for step in workflow.steps() {
        if step.compensation.is_some() {
            init.push(y!({(render.flag(step)): false}));
        }
    }
    let mut undo = vec![y!({"failure": {
        "call": "cloudfn_error", "args": {"e": "${e}"}, "result": "failure"
    }})];
    for step in workflow.steps().iter().rev() {
        undo.extend(render.compensation(step)?);
    }
    undo.push(y!({"failed": {"raise": "${failure}"}}));
    let mut document = Mapping::new();
    document.insert(
        "main".into(),
        y!({
            "params": ["input"],
            "steps": [
                {"init": {"assign": (init)}},
                {"run": {"try": {"steps": (steps)}, "except": {"as": "e", "steps": (undo)}}},
                {"finish": {"return": "${value}"}}
            ]
        }),
    );
    for (name, subworkflow) in std::mem::take(&mut render.subworkflows) {
        document.insert(name.into(), subworkflow);
    }
    for (name, helper) in helpers {
        if name != "cloudfn_retryable" || render.retries {
            document.insert(name, helper);
        }
    }
    Ok(Value::Mapping(document))
}

/// One rendering: the names taken and what the steps need beside `main`.
struct Render<'a> {
    workflow: &'a Workflow,
    plan: &'a Plan,
    /// Each neutral step's Workflows name.
    steps: BTreeMap<&'a str, String>,
    /// Every step and subworkflow name given, so that none is given twice.
    taken: BTreeSet<String>,
    /// The branches of parallel steps, as subworkflows.
    subworkflows: Vec<(String, Value)>,
    /// Whether a step retries, and so needs `cloudfn_retryable`.
    retries: bool,
}

impl<'a> Render<'a> {
    fn new(workflow: &'a Workflow, plan: &'a Plan, helpers: &Mapping) -> Self {
        let mut taken: BTreeSet<String> = MAIN_STEPS.map(String::from).into();
        taken.extend(helpers.keys().filter_map(Value::as_str).map(str::to_owned));
        for helper in helpers.values() {
            step_names(helper, &mut taken);
        }
        let mut render = Self {
            workflow,
            plan,
            steps: BTreeMap::new(),
            taken,
            subworkflows: Vec::new(),
            retries: false,
        };
        // The neutral names first, so that they keep their own names.
        for step in workflow.all_steps() {
            let name = render.fresh(&identifier(&step.name));
            render.steps.insert(&step.name, name);
        }
        render
    }

    /// `base`, or `base_2`, `base_3`… if taken.
    fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_owned();
        let mut n = 1;
        while self.taken.contains(&name) {
            n += 1;
            name = format!("{base}_{n}");
        }
        self.taken.insert(name.clone());
        name
    }

    fn name(&self, step: &Step) -> String {
        self.steps[step.name.as_str()].clone()
    }

    /// The variable that says a compensable step is done.
    fn flag(&self, step: &Step) -> String {
        format!("done_{}", self.name(step))
    }

    fn invalid(&self, step: &Step, why: String) -> Error {
        Error::invalid(format!(
            "workflow `{}`: step `{}`: {why}",
            self.workflow.name(),
            step.name
        ))
    }

    fn sequence(&mut self, steps: &[Step], depth: usize) -> Result<Vec<Value>, Error> {
        let mut out = Vec::new();
        for step in steps {
            out.extend(self.step(step, depth)?);
        }
        Ok(out)
    }

    /// `step` as Workflows steps, the one named after it doing its work, or
    /// guarding it when the step retries or catches.
    fn step(&mut self, step: &Step, depth: usize) -> Result<Vec<Value>, Error> {
        let name = self.name(step);
        let guarded = step.retry.is_some() || !step.catch.is_empty();
        let label = if guarded {
            self.fresh(&format!("{name}_work"))
        } else {
            name.clone()
        };
        let mut out = Vec::new();
        let done = step.compensation.is_some().then(|| self.flag(step));
        let work = match &step.action {
            Action::Call { function } => {
                let counted = step.retry.is_some();
                if counted {
                    let attempts = self.fresh(&format!("{name}_attempts"));
                    out.push(y!({(attempts): {"assign": [{"attempt": 0}]}}));
                }
                let mut work = self.call(function, &step.name, &label, counted)?;
                let mut output = vec![y!({"value": "${response.body}"})];
                output.extend(done.map(|flag| y!({(flag): true})));
                let named = self.fresh(&format!("{name}_output"));
                work.push(y!({(named): {"assign": (output)}}));
                work
            }
            Action::Send { .. } | Action::Publish { .. } => {
                let topic = self
                    .plan
                    .step_topic(self.workflow.name(), step)?
                    .unwrap_or_default();
                let mut work = vec![y!({(label): (publish(&topic, &step.name))})];
                if let Some(flag) = done {
                    let named = self.fresh(&format!("{name}_done"));
                    work.push(y!({(named): {"assign": [{(flag): true}]}}));
                }
                work
            }
            Action::Wait { duration } => vec![y!({(label): {
                "call": "sys.sleep", "args": {"seconds": (seconds(*duration))}
            }})],
            Action::Choice(choice) => self.choice(step, choice, &label, depth)?,
            Action::Parallel { branches } => self.parallel(step, branches, &label, depth)?,
            Action::Succeed => vec![y!({(label): {"return": "${value}"}})],
            Action::Fail { error, cause } => vec![y!({(label): {"raise": {
                "kind": (ErrorKind::Invalid.as_str()),
                "message": (literal(&format!("{error}: {cause}")))
            }}})],
        };
        if !guarded {
            out.extend(work);
            return Ok(out);
        }
        let mut guard = Mapping::new();
        guard.insert("try".into(), y!({"steps": (work)}));
        if let Some(policy) = &step.retry {
            self.retries = true;
            guard.insert("retry".into(), retry(policy));
        }
        if !step.catch.is_empty() {
            guard.insert("except".into(), self.except(step, depth)?);
        }
        out.push(y!({(name): (guard)}));
        Ok(out)
    }

    /// An HTTP POST of a [`StepCall`](cloudfn_core::workflow::StepCall) to
    /// `function`'s service, its answer in `response`; `counted` steps
    /// count their attempts in `attempt`, others make one.
    fn call(
        &mut self,
        function: &str,
        step: &str,
        label: &str,
        counted: bool,
    ) -> Result<Vec<Value>, Error> {
        let service = self.plan.service(function).ok_or_else(|| {
            Error::invalid(format!(
                "workflow `{}`: step `{step}` calls `{function}`, which the app does not have",
                self.workflow.name()
            ))
        })?;
        let mut out = Vec::new();
        let attempt = if counted {
            let count = self.fresh(&format!("{label}_count"));
            out.push(y!({(count): {"assign": [{"attempt": "${attempt + 1}"}]}}));
            y!("${attempt}")
        } else {
            y!(1)
        };
        let url = format!(
            "${{sys.get_env({})}}",
            string_literal(&url_variable(function))
        );
        out.push(y!({(label): {
            "call": "http.post",
            "args": {
                "url": (url),
                "auth": {"type": "OIDC"},
                "timeout": (service.timeout.min(MAX_HTTP_TIMEOUT).as_secs()),
                "body": {
                    "workflow": (literal(self.workflow.name())),
                    "execution": (format!("${{{EXECUTION}}}")),
                    "step": (literal(step)),
                    "attempt": (attempt),
                    "input": "${value}"
                }
            },
            "result": "response"
        }}));
        Ok(out)
    }

    /// The `except` of a step with catches: the failure as `error`, then
    /// the first catch that takes its kind, with `error` in the input; a
    /// failure none takes goes on up.
    fn except(&mut self, step: &Step, depth: usize) -> Result<Value, Error> {
        let name = self.name(step);
        let mut cases = Vec::new();
        for Catch { errors, steps } in &step.catch {
            let caught = self.fresh(&format!("{name}_caught"));
            let error = self.fresh(&format!("{name}_error"));
            let mut handled = vec![y!({(caught): {"switch": [{
                "condition": "${get_type(value) == \"map\"}",
                "steps": [{(error): {"assign": [{"value[\"error\"]": "${error}"}]}}]
            }]}})];
            handled.extend(self.sequence(steps, depth)?);
            cases.push(y!({"condition": (matches(errors)), "steps": (handled)}));
        }
        cases.push(y!({"condition": true, "raise": "${e}"}));
        let failure = self.fresh(&format!("{name}_failure"));
        let catch = self.fresh(&format!("{name}_catch"));
        Ok(y!({"as": "e", "steps": [
            {(failure): {"call": "cloudfn_error", "args": {"e": "${e}"}, "result": "error"}},
            {(catch): {"switch": (cases)}}
        ]}))
    }

    /// A `switch` on the fields the conditions read, each read first into
    /// a variable of its own; a branch without steps still stops the
    /// conditions after it.
    fn choice(
        &mut self,
        step: &Step,
        choice: &Choice,
        label: &str,
        depth: usize,
    ) -> Result<Vec<Value>, Error> {
        let name = self.name(step);
        let mut fields: Vec<&str> = Vec::new();
        for branch in &choice.when {
            for path in branch.condition.paths() {
                if !fields.contains(&path) {
                    fields.push(path);
                }
            }
        }
        let mut out = Vec::new();
        for (i, path) in fields.iter().enumerate() {
            let read = self.fresh(&format!("{name}_field_{}", i + 1));
            let segments: Vec<&str> = path.split('.').collect();
            out.push(y!({(read): {
                "call": "cloudfn_field",
                "args": {"node": "${value}", "path": (segments)},
                "result": (format!("field_{}", i + 1))
            }}));
        }
        let variable = |path: &str| {
            let i = fields.iter().position(|f| *f == path).unwrap_or_default();
            format!("field_{}", i + 1)
        };
        let mut cases = Vec::new();
        for branch in &choice.when {
            let test =
                condition(&branch.condition, &variable).map_err(|why| self.invalid(step, why))?;
            let expression = format!("${{{test}}}");
            if expression.len() > MAX_EXPRESSION {
                return Err(self.invalid(
                    step,
                    format!(
                        "a condition of {} characters is over Workflows' {MAX_EXPRESSION}",
                        expression.len()
                    ),
                ));
            }
            let steps = if branch.steps.is_empty() {
                // Workflows wants steps in a case: one that changes nothing.
                let nothing = self.fresh(&format!("{name}_nothing"));
                vec![y!({(nothing): {"assign": [{"value": "${value}"}]}})]
            } else {
                self.sequence(&branch.steps, depth)?
            };
            cases.push(y!({"condition": (expression), "steps": (steps)}));
        }
        if !choice.otherwise.is_empty() {
            let steps = self.sequence(&choice.otherwise, depth)?;
            cases.push(y!({"condition": true, "steps": (steps)}));
        }
        out.push(y!({(label): {"switch": (cases)}}));
        Ok(out)
    }

    /// Each branch a subworkflow, called in a branch of the `parallel`
    /// step, whose outputs and failures go into lists in branch order:
    /// after all of them, the first failure goes on up, else the outputs
    /// are the step's. Catching in the branch keeps the failure a
    /// function's, not Workflows' `UnhandledBranchError`.
    fn parallel(
        &mut self,
        step: &Step,
        branches: &[Vec<Step>],
        label: &str,
        depth: usize,
    ) -> Result<Vec<Value>, Error> {
        let name = self.name(step);
        if branches.len() > MAX_BRANCHES {
            return Err(self.invalid(
                step,
                format!("Google Cloud Workflows runs at most {MAX_BRANCHES} branches side by side"),
            ));
        }
        if depth + 1 > MAX_PARALLEL_DEPTH {
            return Err(self.invalid(
                step,
                format!(
                    "Google Cloud Workflows nests parallel steps {MAX_PARALLEL_DEPTH} deep at most"
                ),
            ));
        }
        let mut calls = Vec::new();
        let mut failed = Vec::new();
        for (i, branch) in branches.iter().enumerate() {
            let subworkflow = self.fresh(&format!("{name}_branch_{}", i + 1));
            let mut steps = self.sequence(branch, depth + 1)?;
            if !branch.last().is_some_and(Step::is_terminal) {
                let end = self.fresh(&format!("{subworkflow}_end"));
                steps.push(y!({(end): {"return": "${value}"}}));
            }
            self.subworkflows.push((
                subworkflow.clone(),
                y!({"params": ["value"], "steps": (steps)}),
            ));
            let item = self.fresh(&format!("{name}_{}", i + 1));
            let [run, call, output, caught] = ["run", "call", "output", "failed"]
                .map(|part| self.fresh(&format!("{subworkflow}_{part}")));
            calls.push(y!({(item): {"steps": [{(run): {
                "try": {"steps": [
                    {(call): {
                        "call": (subworkflow.as_str()),
                        "args": {"value": "${value}"},
                        "result": "branch_output"
                    }},
                    {(output): {"assign": [
                        {(format!("branch_outputs[{i}]")): "${branch_output}"}
                    ]}}
                ]},
                "except": {"as": "branch_error", "steps": [
                    {(caught): {"assign": [
                        {(format!("branch_failures[{i}]")): "${branch_error}"}
                    ]}}
                ]}
            }}]}}));
            failed.push(y!({
                "condition": (format!("${{branch_failures[{i}] != null}}")),
                "raise": (format!("${{branch_failures[{i}]}}"))
            }));
        }
        let nulls = vec![Value::Null; branches.len()];
        let start = self.fresh(&format!("{name}_start"));
        let check = self.fresh(&format!("{name}_failed"));
        let output = self.fresh(&format!("{name}_output"));
        Ok(vec![
            y!({(start): {"assign": [
                {"branch_outputs": (nulls.clone())},
                {"branch_failures": (nulls)}
            ]}}),
            y!({(label): {"parallel": {
                "shared": ["branch_outputs", "branch_failures"],
                "branches": (calls)
            }}}),
            y!({(check): {"switch": (failed)}}),
            y!({(output): {"assign": [{"value": "${branch_outputs}"}]}}),
        ])
    }

    /// The compensation of top-level `step`, if it has one and is done: its
    /// function called with `value`, the failed step's input, retried by
    /// the step's policy (the default if it has none); a compensation
    /// that fails is logged, and the others still run.
    fn compensation(&mut self, step: &Step) -> Result<Vec<Value>, Error> {
        let Some(function) = &step.compensation else {
            return Ok(Vec::new());
        };
        let name = self.name(step);
        let label = self.fresh(&format!("undo_{name}_work"));
        let undo = format!("compensate:{}", step.name);
        let work = self.call(function, &undo, &label, true)?;
        self.retries = true;
        let failed = self.fresh(&format!("undo_{name}_failed"));
        let attempts = self.fresh(&format!("undo_{name}_attempts"));
        let guard = self.fresh(&format!("undo_{name}_call"));
        let switch = self.fresh(&format!("undo_{name}"));
        Ok(vec![y!({(switch): {"switch": [{
            "condition": (format!("${{{}}}", self.flag(step))),
            "steps": [
                {(attempts): {"assign": [{"attempt": 0}]}},
                {(guard): {
                    "try": {"steps": (work)},
                    "retry": (retry(&step.retry.unwrap_or_default())),
                    "except": {"as": "e", "steps": [{(failed): {
                        "call": "sys.log",
                        "args": {"severity": "ERROR", "data": {
                            "message": "a compensation failed; what it undoes stays done",
                            "step": (literal(&undo)),
                            "error": "${e}"
                        }}
                    }}]}
                }}
            ]
        }]}})])
    }
}

/// A Pub/Sub connector call publishing `value` as JSON to `topic`, with
/// the cloudfn message id of `step`.
fn publish(topic: &str, step: &str) -> Value {
    let topic = format!(
        r#"${{"projects/" + sys.get_env("GOOGLE_CLOUD_PROJECT_ID") + {}}}"#,
        string_literal(&format!("/topics/{topic}"))
    );
    let id = format!("${{{EXECUTION} + {}}}", string_literal(&format!("/{step}")));
    y!({
        "call": "googleapis.pubsub.v1.projects.topics.publish",
        "args": {"topic": (topic), "body": {"messages": [{
            "data": "${base64.encode(json.encode(value))}",
            "attributes": {(PUBLISHED_ID): (id)}
        }]}}
    })
}

/// A retry policy as Workflows' `retry`: retryable kinds only, the
/// policy's attempts and doubling delays.
fn retry(policy: &RetryPolicy) -> Value {
    y!({
        "predicate": "${cloudfn_retryable}",
        "max_retries": (policy.max_attempts.saturating_sub(1)),
        "backoff": {
            "initial_delay": (seconds(policy.initial_delay)),
            "max_delay": (seconds(policy.max_delay.max(policy.initial_delay))),
            "multiplier": 2
        }
    })
}

/// The condition of a catch on the failure's kind, in `error.kind`.
fn matches(errors: &ErrorMatch) -> Value {
    if *errors == ErrorMatch::Any {
        return y!(true);
    }
    y!(format!(
        "${{error.kind in {}}}",
        kinds(|k| errors.matches(k))
    ))
}

/// The kinds `keep` keeps, as a Workflows list of strings.
fn kinds(keep: impl Fn(ErrorKind) -> bool) -> String {
    let names: Vec<String> = ErrorKind::ALL
        .into_iter()
        .filter(|k| keep(*k))
        .map(|k| string_literal(k.as_str()))
        .collect();
    format!("[{}]", names.join(", "))
}

/// A condition as an expression (without `${}`) on the variables
/// `variable` names for its fields, which hold null when absent; why not,
/// if Workflows cannot say it.
fn condition(test: &Condition, variable: &dyn Fn(&str) -> String) -> Result<String, String> {
    let all = |many: &[Condition], join: &str| -> Result<String, String> {
        let parts = many
            .iter()
            .map(|c| condition(c, variable).map(|t| format!("({t})")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(parts.join(join))
    };
    // A field that is no number compares as the bound itself, so that
    // neither test holds, as in the orchestrator.
    let number = |path: &str, bound: f64| {
        let field = variable(path);
        format!(r#"if(get_type({field}) in ["integer", "double"], {field}, {bound})"#)
    };
    Ok(match test {
        Condition::Equals { path, value } if value.is_object() || value.is_array() => {
            return Err(format!(
                "Google Cloud Workflows compares a field with a string, number, boolean or null, not with {value}"
            ));
        }
        Condition::Equals { path, value } => format!("{} == {value}", variable(path)),
        Condition::GreaterThan { path, value } => format!("{} > {value}", number(path, *value)),
        Condition::LessThan { path, value } => format!("{} < {value}", number(path, *value)),
        Condition::Exists { path } => format!("{} != null", variable(path)),
        Condition::All(many) if many.is_empty() => "true".into(),
        Condition::All(many) => all(many, " and ")?,
        Condition::Any(many) if many.is_empty() => "false".into(),
        Condition::Any(many) => all(many, " or ")?,
        Condition::Not(not) => format!("not ({})", condition(not, variable)?),
    })
}

/// The subworkflows every definition shares. `cloudfn_error(e)` reads any
/// failure as `{kind, message}`: its own kind if it has one (a `fail`
/// step's, or a failure passed on), else the kind a function answered,
/// else the kind of its HTTP status as [`Error::from_service_status`]
/// reads a service's (`@STATUS@`), else `timeout` or `unavailable` from
/// Workflows' tags, else `internal`. `cloudfn_retryable(e)` says whether
/// that kind is retryable (`@RETRYABLE@`). `cloudfn_field(node, path)` is
/// the field at `path` (a list of names), or null if any part of it is
/// missing or no object, where an expression would raise.
const HELPERS: &str = r#"
cloudfn_retryable:
  params: [e]
  steps:
  - read:
      call: cloudfn_error
      args:
        e: ${e}
      result: error
  - decide:
      return: ${error.kind in @RETRYABLE@}
cloudfn_error:
  params: [e]
  steps:
  - own:
      call: cloudfn_field
      args:
        node: ${e}
        path: [kind]
      result: kind
  - answered_kind:
      call: cloudfn_field
      args:
        node: ${e}
        path: [body, error, kind]
      result: answered
  - answered_message:
      call: cloudfn_field
      args:
        node: ${e}
        path: [body, error, message]
      result: said
  - status:
      call: cloudfn_field
      args:
        node: ${e}
        path: [code]
      result: code
  - described:
      call: cloudfn_field
      args:
        node: ${e}
        path: [message]
      result: message
  - tagged:
      call: cloudfn_field
      args:
        node: ${e}
        path: [tags]
      result: tags
  - plain:
      assign:
      - message: ${if(get_type(message) == "string", message, json.encode_to_string(e))}
      - code: ${if(get_type(code) == "integer", code, 0)}
      - tags: ${if(get_type(tags) == "list", tags, [])}
  - classify:
      switch:
      - condition: ${get_type(kind) == "string"}
        return:
          kind: ${kind}
          message: ${message}
      - condition: ${get_type(answered) == "string"}
        return:
          kind: ${answered}
          message: ${if(get_type(said) == "string", said, message)}
@STATUS@
      - condition: ${"TimeoutError" in tags}
        return:
          kind: timeout
          message: ${message}
      - condition: ${"ConnectionError" in tags or "ConnectionFailedError" in tags}
        return:
          kind: unavailable
          message: ${message}
  - otherwise:
      return:
        kind: internal
        message: ${message}
cloudfn_field:
  params: [node, path]
  steps:
  - walk:
      for:
        value: name
        in: ${path}
        steps:
        - enter:
            switch:
            - condition: ${get_type(node) != "map"}
              return: null
            - condition: ${not (name in node)}
              return: null
        - down:
            assign:
            - node: ${node[name]}
  - found:
      return: ${node}
"#;

/// [`HELPERS`] with what is read from the error kinds filled in.
fn helpers() -> Result<Mapping, Error> {
    let status: String = status_kinds()
        .into_iter()
        .map(|(kind, test)| {
            format!(
                "      - condition: ${{{test}}}\n        return:\n          kind: {kind}\n          message: ${{message}}\n"
            )
        })
        .collect();
    let text = HELPERS
        .replace("@RETRYABLE@", &kinds(ErrorKind::is_retryable))
        .replace("@STATUS@\n", &status);
    serde_norway::from_str(&text)
        .map_err(|e| Error::internal(format!("the workflows' helper subworkflows: {e}")))
}

/// For each kind an HTTP status stands for (but `internal`, what is
/// left), the test on `code` that picks its statuses.
fn status_kinds() -> Vec<(ErrorKind, String)> {
    let mut out = Vec::new();
    for kind in ErrorKind::ALL {
        if kind == ErrorKind::Internal {
            continue;
        }
        let codes: Vec<u16> = (400..600)
            .filter(|c| Error::from_service_status(*c, "").kind() == kind)
            .collect();
        // Runs of three or more codes as ranges, so that 5xx is one test.
        let mut singles = Vec::new();
        let mut ranges = Vec::new();
        for run in codes.chunk_by(|a, b| a + 1 == *b) {
            match run {
                [first, .., last] if run.len() > 2 => {
                    ranges.push(format!("(code >= {first} and code <= {last})"));
                }
                _ => singles.extend(run.iter().map(u16::to_string)),
            }
        }
        let mut tests = match singles.as_slice() {
            [] => Vec::new(),
            [one] => vec![format!("code == {one}")],
            many => vec![format!("code in [{}]", many.join(", "))],
        };
        tests.extend(ranges);
        if !tests.is_empty() {
            out.push((kind, tests.join(" or ")));
        }
    }
    out
}

/// The name of every step in `value`, wherever it sits, into `out`.
fn step_names(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Mapping(mapping) => {
            for (key, entry) in mapping {
                if let (Some("steps"), Value::Sequence(items)) = (key.as_str(), entry) {
                    for item in items.iter().filter_map(Value::as_mapping) {
                        out.extend(item.keys().filter_map(Value::as_str).map(str::to_owned));
                    }
                }
                step_names(entry, out);
            }
        }
        Value::Sequence(items) => items.iter().for_each(|item| step_names(item, out)),
        _ => {}
    }
}

/// A duration in seconds: whole ones when it is whole.
fn seconds(duration: Duration) -> Value {
    if duration.subsec_nanos() == 0 {
        duration.as_secs().into()
    } else {
        duration.as_secs_f64().into()
    }
}

/// A Workflows step or subworkflow name for a neutral step name: letters,
/// digits and `_`, not starting with a digit.
fn identifier(name: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("step_{name}")
    } else {
        name
    }
}

/// `text` as a value Workflows takes as it is: in an expression when
/// Workflows would otherwise read an expression in it.
fn literal(text: &str) -> Value {
    if text.contains("${") {
        format!("${{{}}}", string_literal(text)).into()
    } else {
        text.into()
    }
}

/// `text` as a string in an expression.
fn string_literal(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

#[cfg(test)]
mod tests;
