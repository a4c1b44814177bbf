//! A workflow as a Google Cloud Workflows definition (YAML).
//!
//! The neutral steps run in `main`, on one variable, `value`: the input of
//! the step about to run, which each step replaces with its output.
//!
//! - `call` posts a [`StepCall`](cloudfn_core::workflow::StepCall) to the
//!   function's Cloud Run service with the workflow's OIDC token; the URL
//!   is the environment variable [`url_variable`] names, which the deploy
//!   script sets from the deployed service, and the execution is
//!   `GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID`. The function answers its output,
//!   or its error's status with `{"error": {"kind", "message"}}`.
//! - `send` and `publish` go through the Pub/Sub connector to the topic the
//!   plan names ([`Plan::step_topic`]), with `cloudfn-message-id` =
//!   `execution/step`, so that a consumer's idempotency sees one message
//!   however often the step runs.
//! - Every failure is read as a cloudfn error kind (`cloudfn_error`): the
//!   kind a function answered, else the one its HTTP status stands for
//!   ([`Error::from_service_status`]), else from Workflows' own tags. A
//!   step's retries take only retryable kinds (`cloudfn_retryable`); its
//!   catches match kinds and run with the input plus `error: {kind,
//!   message}`.
//! - `wait` sleeps; `choice` is a `switch` on fields read safely
//!   (`cloudfn_field`); `parallel` runs each branch as a subworkflow of its
//!   own, so that a `succeed` ends only its branch, and collects their
//!   outputs in branch order.
//! - A failure nothing catches runs the compensations of the done top-level
//!   steps, latest first, each with the failed step's input, then fails
//!   the execution with `{kind, message}`.

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

/// The longest HTTP request Workflows waits for.
const MAX_HTTP_TIMEOUT: Duration = Duration::from_secs(1800);

/// The most branches of one parallel step.
const MAX_BRANCHES: usize = 10;

/// How deep Workflows nests parallel steps.
const MAX_PARALLEL_DEPTH: usize = 2;

/// The longest expression Workflows takes.
const MAX_EXPRESSION: usize = 400;

/// The names this module gives whatever the workflow: the subworkflows and
/// the steps of `main` and of the helpers. A neutral step named like one
/// of them gets a suffix, in case Workflows wants step names unique
/// across a definition.
const FIXED_NAMES: [&str; 24] = [
    "main",
    "cloudfn_retryable",
    "cloudfn_error",
    "cloudfn_field",
    "init",
    "run",
    "finish",
    "failure",
    "failed",
    "read",
    "decide",
    "own",
    "answered_kind",
    "answered_message",
    "status",
    "described",
    "tagged",
    "plain",
    "classify",
    "otherwise",
    "walk",
    "enter",
    "down",
    "found",
];

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

/// The Workflows definition of `workflow` (see `deploy/workflows.rs`), its
/// subworkflows `main` first. Errors name what Workflows cannot take: a
/// parallel step with more than 10 branches or nested more than two
/// deep, a choice comparing a field with an object or array, a condition
/// longer than Workflows' 400-character expressions, a queue or topic the
/// app makes no topic for.
pub fn workflow_definition(workflow: &Workflow, plan: &Plan) -> Result<Value, Error> {
    let mut render = Render::new(workflow, plan);
    let steps = render.sequence(workflow.steps(), 0)?;
    let done = |step: &Step| step.compensation.as_ref().map(|_| render.flag(step));
    let mut init = vec![assign("value", "${input}")];
    init.extend(
        workflow
            .steps()
            .iter()
            .filter_map(done)
            .map(|flag| assign(&flag, false)),
    );
    let mut undo = vec![named(
        "failure",
        map([
            ("call", "cloudfn_error".into()),
            ("args", map([("e", "${e}".into())])),
            ("result", "failure".into()),
        ]),
    )];
    for step in workflow.steps().iter().rev() {
        undo.extend(render.compensation(step)?);
    }
    undo.push(named("failed", map([("raise", "${failure}".into())])));
    let main = map([
        ("params", Value::Sequence(vec!["input".into()])),
        (
            "steps",
            Value::Sequence(vec![
                named("init", map([("assign", Value::Sequence(init))])),
                named(
                    "run",
                    map([
                        ("try", map([("steps", Value::Sequence(steps))])),
                        (
                            "except",
                            map([("as", "e".into()), ("steps", Value::Sequence(undo))]),
                        ),
                    ]),
                ),
                named("finish", map([("return", "${value}".into())])),
            ]),
        ),
    ]);
    let mut document = Mapping::new();
    document.insert("main".into(), main);
    for (name, subworkflow) in std::mem::take(&mut render.subworkflows) {
        document.insert(name.into(), subworkflow);
    }
    for (name, helper) in helpers()? {
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
    fn new(workflow: &'a Workflow, plan: &'a Plan) -> Self {
        let mut render = Self {
            workflow,
            plan,
            steps: BTreeMap::new(),
            taken: FIXED_NAMES.map(String::from).into(),
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

    fn sequence(&mut self, steps: &[Step], depth: usize) -> Result<Vec<Value>, Error> {
        let mut out = Vec::new();
        for step in steps {
            out.extend(self.step(step, depth)?);
        }
        Ok(out)
    }

    /// `step` as Workflows steps, the one named after it doing its work.
    fn step(&mut self, step: &Step, depth: usize) -> Result<Vec<Value>, Error> {
        let name = self.name(step);
        let guarded = step.retry.is_some() || !step.catch.is_empty();
        // Guarded work runs in a `try` named after the step.
        let label = if guarded {
            self.fresh(&format!("{name}_work"))
        } else {
            name.clone()
        };
        let mut before = Vec::new();
        let mut work = match &step.action {
            Action::Call { function } => {
                let counted = step.retry.is_some();
                if counted {
                    before.push(named(
                        &self.fresh(&format!("{name}_attempts")),
                        map([("assign", Value::Sequence(vec![assign("attempt", 0)]))]),
                    ));
                }
                let mut work = self.call(function, &step.name, &label, counted)?;
                let mut output = vec![assign("value", "${response.body}")];
                if step.compensation.is_some() {
                    output.push(assign(&self.flag(step), true));
                }
                work.push(named(
                    &self.fresh(&format!("{name}_output")),
                    map([("assign", Value::Sequence(output))]),
                ));
                work
            }
            Action::Send { .. } | Action::Publish { .. } => {
                let topic = self
                    .plan
                    .step_topic(self.workflow.name(), step)?
                    .unwrap_or_default();
                let mut work = vec![named(&label, publish(&topic, &step.name))];
                if step.compensation.is_some() {
                    work.push(named(
                        &self.fresh(&format!("{name}_done")),
                        map([(
                            "assign",
                            Value::Sequence(vec![assign(&self.flag(step), true)]),
                        )]),
                    ));
                }
                work
            }
            Action::Wait { duration } => vec![named(
                &label,
                map([
                    ("call", "sys.sleep".into()),
                    ("args", map([("seconds", seconds(*duration))])),
                ]),
            )],
            Action::Choice(choice) => self.choice(step, choice, &label, depth)?,
            Action::Parallel { branches } => self.parallel(step, branches, &label, depth)?,
            Action::Succeed => vec![named(&label, map([("return", "${value}".into())]))],
            Action::Fail { error, cause } => vec![named(
                &label,
                map([(
                    "raise",
                    map([
                        ("kind", ErrorKind::Invalid.as_str().into()),
                        ("message", literal(&format!("{error}: {cause}"))),
                    ]),
                )]),
            )],
        };
        if !guarded {
            before.append(&mut work);
            return Ok(before);
        }
        let mut guard = map([("try", map([("steps", Value::Sequence(work))]))]);
        if let Some(policy) = &step.retry {
            self.retries = true;
            insert(&mut guard, "retry", retry(policy));
        }
        if !step.catch.is_empty() {
            let except = self.except(step, depth)?;
            insert(&mut guard, "except", except);
        }
        before.push(named(&name, guard));
        Ok(before)
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
        let timeout = service.timeout.min(MAX_HTTP_TIMEOUT).as_secs();
        let mut out = Vec::new();
        let attempt: Value = if counted {
            out.push(named(
                &self.fresh(&format!("{label}_count")),
                map([(
                    "assign",
                    Value::Sequence(vec![assign("attempt", "${attempt + 1}")]),
                )]),
            ));
            "${attempt}".into()
        } else {
            1.into()
        };
        let body = map([
            ("workflow", literal(self.workflow.name())),
            ("execution", format!("${{{EXECUTION}}}").into()),
            ("step", literal(step)),
            ("attempt", attempt),
            ("input", "${value}".into()),
        ]);
        out.push(named(
            label,
            map([
                ("call", "http.post".into()),
                (
                    "args",
                    map([
                        (
                            "url",
                            format!(
                                "${{sys.get_env({})}}",
                                string_literal(&url_variable(function))
                            )
                            .into(),
                        ),
                        ("auth", map([("type", "OIDC".into())])),
                        ("timeout", timeout.into()),
                        ("body", body),
                    ]),
                ),
                ("result", "response".into()),
            ]),
        ));
        Ok(out)
    }

    /// The `except` of a step with catches: the failure as `error`, then
    /// the first catch that takes its kind, with `error` in the input; a
    /// failure none takes goes on up.
    fn except(&mut self, step: &Step, depth: usize) -> Result<Value, Error> {
        let name = self.name(step);
        let mut cases = Vec::new();
        for Catch { errors, steps } in &step.catch {
            let mut handled = vec![named(
                &self.fresh(&format!("{name}_caught")),
                map([(
                    "switch",
                    Value::Sequence(vec![map([
                        ("condition", r#"${get_type(value) == "map"}"#.into()),
                        (
                            "steps",
                            Value::Sequence(vec![named(
                                &self.fresh(&format!("{name}_error")),
                                map([(
                                    "assign",
                                    Value::Sequence(vec![assign("value[\"error\"]", "${error}")]),
                                )]),
                            )]),
                        ),
                    ])]),
                )]),
            )];
            handled.extend(self.sequence(steps, depth)?);
            cases.push(map([
                ("condition", matches(errors)),
                ("steps", Value::Sequence(handled)),
            ]));
        }
        cases.push(map([("condition", true.into()), ("raise", "${e}".into())]));
        Ok(map([
            ("as", "e".into()),
            (
                "steps",
                Value::Sequence(vec![
                    named(
                        &self.fresh(&format!("{name}_failure")),
                        map([
                            ("call", "cloudfn_error".into()),
                            ("args", map([("e", "${e}".into())])),
                            ("result", "error".into()),
                        ]),
                    ),
                    named(
                        &self.fresh(&format!("{name}_catch")),
                        map([("switch", Value::Sequence(cases))]),
                    ),
                ]),
            ),
        ]))
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
            let segments: Vec<Value> = path.split('.').map(Value::from).collect();
            out.push(named(
                &self.fresh(&format!("{name}_field_{}", i + 1)),
                map([
                    ("call", "cloudfn_field".into()),
                    (
                        "args",
                        map([
                            ("node", "${value}".into()),
                            ("path", Value::Sequence(segments)),
                        ]),
                    ),
                    ("result", format!("field_{}", i + 1).into()),
                ]),
            ));
        }
        let variable = |path: &str| {
            let i = fields.iter().position(|f| *f == path).unwrap_or_default();
            format!("field_{}", i + 1)
        };
        let mut cases = Vec::new();
        for branch in &choice.when {
            let test = condition(&branch.condition, &variable, &step.name)?;
            let expression = format!("${{{test}}}");
            if expression.len() > MAX_EXPRESSION {
                return Err(Error::invalid(format!(
                    "workflow `{}`: step `{}`: a condition of {} characters is over Workflows' {MAX_EXPRESSION}",
                    self.workflow.name(),
                    step.name,
                    expression.len()
                )));
            }
            let steps = self.branch(&branch.steps, &name, depth)?;
            cases.push(map([
                ("condition", expression.into()),
                ("steps", Value::Sequence(steps)),
            ]));
        }
        if !choice.otherwise.is_empty() {
            let steps = self.sequence(&choice.otherwise, depth)?;
            cases.push(map([
                ("condition", true.into()),
                ("steps", Value::Sequence(steps)),
            ]));
        }
        out.push(named(label, map([("switch", Value::Sequence(cases))])));
        Ok(out)
    }

    /// A choice branch's steps; an empty branch gets one that changes
    /// nothing, as Workflows wants steps in a branch.
    fn branch(&mut self, steps: &[Step], name: &str, depth: usize) -> Result<Vec<Value>, Error> {
        if !steps.is_empty() {
            return self.sequence(steps, depth);
        }
        Ok(vec![named(
            &self.fresh(&format!("{name}_nothing")),
            map([("assign", Value::Sequence(vec![assign("value", "${value}")]))]),
        )])
    }

    /// Each branch a subworkflow, called in a branch of the `parallel`
    /// step, whose outputs and failures go into lists in branch order:
    /// after all of them, the first failure goes on up, else the outputs
    /// are the step's.
    fn parallel(
        &mut self,
        step: &Step,
        branches: &[Vec<Step>],
        label: &str,
        depth: usize,
    ) -> Result<Vec<Value>, Error> {
        let name = self.name(step);
        let invalid = |why: String| {
            Error::invalid(format!(
                "workflow `{}`: step `{}`: {why}",
                self.workflow.name(),
                step.name
            ))
        };
        if branches.len() > MAX_BRANCHES {
            return Err(invalid(format!(
                "Google Cloud Workflows runs at most {MAX_BRANCHES} branches side by side"
            )));
        }
        if depth + 1 > MAX_PARALLEL_DEPTH {
            return Err(invalid(format!(
                "Google Cloud Workflows nests parallel steps {MAX_PARALLEL_DEPTH} deep at most"
            )));
        }
        let nulls = Value::Sequence(vec![Value::Null; branches.len()]);
        let mut calls = Vec::new();
        let mut failed = Vec::new();
        for (i, branch) in branches.iter().enumerate() {
            let subworkflow = self.fresh(&format!("{name}_branch_{}", i + 1));
            let mut steps = self.sequence(branch, depth + 1)?;
            if !branch.last().is_some_and(Step::is_terminal) {
                steps.push(named(
                    &self.fresh(&format!("{subworkflow}_end")),
                    map([("return", "${value}".into())]),
                ));
            }
            self.subworkflows.push((
                subworkflow.clone(),
                map([
                    ("params", Value::Sequence(vec!["value".into()])),
                    ("steps", Value::Sequence(steps)),
                ]),
            ));
            let run = map([
                (
                    "try",
                    map([(
                        "steps",
                        Value::Sequence(vec![
                            named(
                                &self.fresh(&format!("{subworkflow}_call")),
                                map([
                                    ("call", subworkflow.clone().into()),
                                    ("args", map([("value", "${value}".into())])),
                                    ("result", "branch_output".into()),
                                ]),
                            ),
                            named(
                                &self.fresh(&format!("{subworkflow}_output")),
                                map([(
                                    "assign",
                                    Value::Sequence(vec![assign(
                                        &format!("branch_outputs[{i}]"),
                                        "${branch_output}",
                                    )]),
                                )]),
                            ),
                        ]),
                    )]),
                ),
                (
                    "except",
                    map([
                        ("as", "branch_error".into()),
                        (
                            "steps",
                            Value::Sequence(vec![named(
                                &self.fresh(&format!("{subworkflow}_failed")),
                                map([(
                                    "assign",
                                    Value::Sequence(vec![assign(
                                        &format!("branch_failures[{i}]"),
                                        "${branch_error}",
                                    )]),
                                )]),
                            )]),
                        ),
                    ]),
                ),
            ]);
            calls.push(named(
                &self.fresh(&format!("{name}_{}", i + 1)),
                map([(
                    "steps",
                    Value::Sequence(vec![named(&self.fresh(&format!("{subworkflow}_run")), run)]),
                )]),
            ));
            failed.push(map([
                (
                    "condition",
                    format!("${{branch_failures[{i}] != null}}").into(),
                ),
                ("raise", format!("${{branch_failures[{i}]}}").into()),
            ]));
        }
        Ok(vec![
            named(
                &self.fresh(&format!("{name}_start")),
                map([(
                    "assign",
                    Value::Sequence(vec![
                        assign("branch_outputs", nulls.clone()),
                        assign("branch_failures", nulls),
                    ]),
                )]),
            ),
            named(
                label,
                map([(
                    "parallel",
                    map([
                        (
                            "shared",
                            Value::Sequence(vec![
                                "branch_outputs".into(),
                                "branch_failures".into(),
                            ]),
                        ),
                        ("branches", Value::Sequence(calls)),
                    ]),
                )]),
            ),
            named(
                &self.fresh(&format!("{name}_failed")),
                map([("switch", Value::Sequence(failed))]),
            ),
            named(
                &self.fresh(&format!("{name}_output")),
                map([(
                    "assign",
                    Value::Sequence(vec![assign("value", "${branch_outputs}")]),
                )]),
            ),
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
        let guard = map([
            ("try", map([("steps", Value::Sequence(work))])),
            ("retry", retry(&step.retry.unwrap_or_default())),
            (
                "except",
                map([
                    ("as", "e".into()),
                    (
                        "steps",
                        Value::Sequence(vec![named(
                            &self.fresh(&format!("undo_{name}_failed")),
                            map([
                                ("call", "sys.log".into()),
                                (
                                    "args",
                                    map([
                                        ("severity", "ERROR".into()),
                                        (
                                            "data",
                                            map([
                                                (
                                                    "message",
                                                    "a compensation failed; what it undoes stays done"
                                                        .into(),
                                                ),
                                                ("step", literal(&undo)),
                                                ("error", "${e}".into()),
                                            ]),
                                        ),
                                    ]),
                                ),
                            ]),
                        )]),
                    ),
                ]),
            ),
        ]);
        let steps = vec![
            named(
                &self.fresh(&format!("undo_{name}_attempts")),
                map([("assign", Value::Sequence(vec![assign("attempt", 0)]))]),
            ),
            named(&self.fresh(&format!("undo_{name}_call")), guard),
        ];
        Ok(vec![named(
            &self.fresh(&format!("undo_{name}")),
            map([(
                "switch",
                Value::Sequence(vec![map([
                    ("condition", format!("${{{}}}", self.flag(step)).into()),
                    ("steps", Value::Sequence(steps)),
                ])]),
            )]),
        )])
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
    map([
        (
            "call",
            "googleapis.pubsub.v1.projects.topics.publish".into(),
        ),
        (
            "args",
            map([
                ("topic", topic.into()),
                (
                    "body",
                    map([(
                        "messages",
                        Value::Sequence(vec![map([
                            ("data", "${base64.encode(json.encode(value))}".into()),
                            ("attributes", map([(PUBLISHED_ID, id.into())])),
                        ])]),
                    )]),
                ),
            ]),
        ),
    ])
}

/// A retry policy as Workflows' `retry`: retryable kinds only, the
/// policy's attempts and doubling delays (Workflows has no jitter).
fn retry(policy: &RetryPolicy) -> Value {
    map([
        ("predicate", "${cloudfn_retryable}".into()),
        ("max_retries", policy.max_attempts.saturating_sub(1).into()),
        (
            "backoff",
            map([
                ("initial_delay", seconds(policy.initial_delay)),
                (
                    "max_delay",
                    seconds(policy.max_delay.max(policy.initial_delay)),
                ),
                ("multiplier", 2.into()),
            ]),
        ),
    ])
}

/// The condition of a catch on the failure's kind, in `error.kind`.
fn matches(errors: &ErrorMatch) -> Value {
    if *errors == ErrorMatch::Any {
        return true.into();
    }
    format!("${{error.kind in {}}}", kinds(|k| errors.matches(k))).into()
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
/// `variable` names for its fields, which hold null when absent.
fn condition(
    test: &Condition,
    variable: &dyn Fn(&str) -> String,
    step: &str,
) -> Result<String, Error> {
    let all = |many: &[Condition], join: &str| -> Result<String, Error> {
        let parts = many
            .iter()
            .map(|c| condition(c, variable, step).map(|t| format!("({t})")))
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
        Condition::Equals { path, value } => {
            if value.is_object() || value.is_array() {
                return Err(Error::invalid(format!(
                    "step `{step}`: Google Cloud Workflows compares a field with a string, number, boolean or null, not with {value}"
                )));
            }
            format!("{} == {value}", variable(path))
        }
        Condition::GreaterThan { path, value } => format!("{} > {value}", number(path, *value)),
        Condition::LessThan { path, value } => format!("{} < {value}", number(path, *value)),
        Condition::Exists { path } => format!("{} != null", variable(path)),
        Condition::All(many) if many.is_empty() => "true".into(),
        Condition::All(many) => all(many, " and ")?,
        Condition::Any(many) if many.is_empty() => "false".into(),
        Condition::Any(many) => all(many, " or ")?,
        Condition::Not(not) => format!("not ({})", condition(not, variable, step)?),
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

fn named(name: &str, body: Value) -> Value {
    map([(name, body)])
}

fn assign(variable: &str, value: impl Into<Value>) -> Value {
    map([(variable, value.into())])
}

fn map<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Mapping(
        entries
            .into_iter()
            .map(|(key, value)| (Value::from(key), value))
            .collect(),
    )
}

fn insert(value: &mut Value, key: &str, entry: Value) {
    if let Value::Mapping(mapping) = value {
        mapping.insert(key.into(), entry);
    }
}

#[cfg(test)]
mod tests;
