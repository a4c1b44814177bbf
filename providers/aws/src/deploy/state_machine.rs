//! A workflow as Amazon States Language, for a Step Functions state
//! machine.
//!
//! Each step is one state of the same name (a catch or a compensation adds
//! its own). `call` steps invoke the function's Lambda with a
//! [`cloudfn_core::workflow::StepCall`], `{"workflow", "execution",
//! "step", "attempt", "input"}`; `send` and `publish` steps
//! are the optimized SQS and SNS integrations, carrying
//! `cloudfn-message-id` = `execution/step` so that a consumer's idempotency
//! sees one message however often the state runs. Retries are the step's
//! policy on the retryable `cloudfn.<kind>` errors the Lambda runtime
//! reports; a catch gets the failed state's input with Step Functions'
//! `{"Error", "Cause"}` under `error`, and a compensation gets that input as
//! it was, as in the in-process orchestrator; a `fail` step with done steps
//! to undo goes through their compensations first, as there. Names of resources are
//! `${…}` placeholders that the template's `DefinitionSubstitutions` fill
//! ([`substitutions`]; [`placeholders`] says what each stands for).

use std::collections::BTreeMap;

use cloudfn_core::{
    Error, ErrorKind, RetryPolicy,
    workflow::{Action, Condition, ErrorMatch, Step, Workflow},
};
use serde_json::{Map, Value, json};

use super::cfn::{logical_id, queue_id};

/// The state that ends a failed, compensated execution.
const FAILED: &str = "cloudfn:failed";

/// Errors the Lambda service itself may raise, worth retrying.
const LAMBDA_TRANSIENT: [&str; 4] = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
];

/// The state machine's definition for `workflow`.
pub fn state_machine(workflow: &Workflow) -> Result<Value, Error> {
    let mut states = Map::new();
    let steps = workflow.steps();
    // Where a failure of top-level step `i` goes: the compensation of the
    // latest done step before it that has one.
    let mut compensations: Vec<(String, &Step)> = Vec::new();
    let mut failure_targets = Vec::with_capacity(steps.len());
    for step in steps {
        failure_targets.push(compensations.last().map(|(state, _)| state.clone()));
        if step.compensation.is_some() {
            compensations.push((format!("compensate:{}", step.name), step));
        }
    }
    let any_compensation = !compensations.is_empty();
    for (i, step) in steps.iter().enumerate() {
        let next = steps.get(i + 1).map(|s| s.name.clone());
        let on_failure = any_compensation.then(|| {
            failure_targets[i]
                .clone()
                .unwrap_or_else(|| FAILED.to_owned())
        });
        render_step(
            workflow.name(),
            step,
            next,
            on_failure.as_deref(),
            &mut states,
        )?;
    }
    // The compensation chain, latest first, each on to the one before.
    for (k, (state, step)) in compensations.iter().enumerate() {
        let next = k
            .checked_sub(1)
            .map_or(FAILED.to_owned(), |before| compensations[before].0.clone());
        let function = step.compensation.as_deref().unwrap_or_default();
        let mut task = lambda_task(workflow.name(), function, state);
        task["ResultPath"] = Value::Null;
        task["Retry"] = json!([retry(&step.retry.unwrap_or_default(), true)]);
        // A compensation that fails does not stop the others.
        task["Catch"] = json!([{"ErrorEquals": ["States.ALL"], "ResultPath": null, "Next": next}]);
        task["Next"] = json!(next);
        states.insert(state.clone(), task);
    }
    if any_compensation {
        states.insert(
            FAILED.to_owned(),
            json!({"Type": "Fail", "Error": "cloudfn.compensated", "Cause": "a step failed; the done steps were compensated"}),
        );
    }
    Ok(json!({
        "Comment": format!("cloudfn workflow `{}`", workflow.name()),
        "StartAt": steps.first().map(|s| s.name.as_str()).unwrap_or_default(),
        "States": states,
    }))
}

/// The `DefinitionSubstitutions` of `workflow`'s state machine: each
/// placeholder to the resource it names.
pub fn substitutions(workflow: &Workflow) -> BTreeMap<String, Value> {
    placeholders(workflow)
        .into_iter()
        .map(|(placeholder, named)| {
            let value = match named {
                Placeholder::FunctionArn(function) => {
                    json!({"Fn::GetAtt": [logical_id(function, "Function"), "Arn"]})
                }
                Placeholder::QueueUrl(queue) => json!({"Ref": queue_id(queue)}),
                Placeholder::TopicArn(topic) => json!({"Ref": logical_id(topic, "Topic")}),
            };
            (placeholder, value)
        })
        .collect()
}

/// What a `${…}` placeholder of the definition stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder<'a> {
    /// The ARN of the Lambda of this app function.
    FunctionArn(&'a str),
    /// The URL of this queue.
    QueueUrl(&'a str),
    /// The ARN of this topic.
    TopicArn(&'a str),
}

/// The placeholders of `workflow`'s state machine (their names, without
/// `${` and `}`), each with the resource it stands for: what a deployment
/// other than the template's (an emulator's) fills in.
pub fn placeholders(workflow: &Workflow) -> BTreeMap<String, Placeholder<'_>> {
    let mut out = BTreeMap::new();
    for step in workflow.all_steps() {
        match &step.action {
            Action::Call { function } => {
                out.insert(function_arn(function), Placeholder::FunctionArn(function));
            }
            Action::Send { queue } => {
                out.insert(queue_url(queue), Placeholder::QueueUrl(queue));
            }
            Action::Publish { topic } => {
                out.insert(topic_arn(topic), Placeholder::TopicArn(topic));
            }
            _ => {}
        }
        if let Some(function) = &step.compensation {
            out.insert(function_arn(function), Placeholder::FunctionArn(function));
        }
    }
    out
}

/// The placeholder of a function's Lambda ARN.
fn function_arn(function: &str) -> String {
    format!("{}Arn", logical_id(function, "Function"))
}

/// The placeholder of a queue's URL.
fn queue_url(queue: &str) -> String {
    format!("{}Url", queue_id(queue))
}

/// The placeholder of a topic's ARN.
fn topic_arn(topic: &str) -> String {
    format!("{}Arn", logical_id(topic, "Topic"))
}

/// Renders `step` into `states`, then on to `next` (or the end); a failure
/// nothing catches goes to `on_failure` (the compensation chain) if given.
fn render_step(
    flow: &str,
    step: &Step,
    next: Option<String>,
    on_failure: Option<&str>,
    states: &mut Map<String, Value>,
) -> Result<(), Error> {
    let mut state = match &step.action {
        Action::Call { function } => lambda_task(flow, function, &step.name),
        Action::Send { queue } => integration(
            "sqs:sendMessage",
            json!({
                "QueueUrl": format!("${{{}}}", queue_url(queue)),
                "MessageBody.$": "$",
            }),
            &step.name,
        ),
        Action::Publish { topic } => integration(
            "sns:publish",
            json!({
                "TopicArn": format!("${{{}}}", topic_arn(topic)),
                "Message.$": "States.JsonToString($)",
            }),
            &step.name,
        ),
        Action::Wait { duration } => json!({"Type": "Wait", "Seconds": duration.as_secs().max(1)}),
        Action::Succeed => json!({"Type": "Succeed"}),
        // A Fail state ends the execution at once, past every Catch: with
        // done steps to undo, the failure first goes through their
        // compensations, as in the orchestrator, carrying its error as a
        // caught one would.
        Action::Fail { error, cause } => match on_failure {
            Some(compensations) => json!({
                "Type": "Pass",
                "Result": {"Error": error, "Cause": cause},
                "ResultPath": "$.error",
                "Next": compensations,
            }),
            None => json!({"Type": "Fail", "Error": error, "Cause": cause}),
        },
        Action::Parallel { branches } => {
            let branches = branches
                .iter()
                .map(|branch| {
                    let mut inner = Map::new();
                    // A branch's states cannot reach the machine's: a
                    // failure in it fails the parallel state, caught there.
                    render_sequence(flow, branch, None, None, &mut inner)?;
                    Ok(json!({"StartAt": branch[0].name, "States": inner}))
                })
                .collect::<Result<Vec<_>, Error>>()?;
            json!({"Type": "Parallel", "Branches": branches})
        }
        Action::Choice(choice) => {
            // A choice cannot end an execution: past its last branch it goes
            // on to `next`, or to a state that ends it.
            let after = next.clone().unwrap_or_else(|| {
                let end = format!("{}:end", step.name);
                states.insert(end.clone(), json!({"Type": "Succeed"}));
                end
            });
            let mut choices = Vec::new();
            for branch in &choice.when {
                let mut rule = choice_rule(&branch.condition, &step.name)?;
                let target = match branch.steps.first() {
                    Some(first) => {
                        render_sequence(
                            flow,
                            &branch.steps,
                            Some(after.clone()),
                            on_failure,
                            states,
                        )?;
                        first.name.clone()
                    }
                    None => after.clone(),
                };
                rule["Next"] = json!(target);
                choices.push(rule);
            }
            let default = match choice.otherwise.first() {
                Some(first) => {
                    render_sequence(
                        flow,
                        &choice.otherwise,
                        Some(after.clone()),
                        on_failure,
                        states,
                    )?;
                    first.name.clone()
                }
                None => after,
            };
            states.insert(
                step.name.clone(),
                json!({"Type": "Choice", "Choices": choices, "Default": default}),
            );
            return Ok(());
        }
    };
    if step.is_terminal() {
        states.insert(step.name.clone(), state);
        return Ok(());
    }
    if let Some(policy) = &step.retry {
        state["Retry"] = json!([retry(policy, matches!(step.action, Action::Call { .. }))]);
    }
    let mut catches = Vec::new();
    for catch in &step.catch {
        let first = &catch.steps[0];
        render_sequence(flow, &catch.steps, next.clone(), on_failure, states)?;
        catches.push(json!({
            "ErrorEquals": error_names(&catch.errors),
            "ResultPath": "$.error",
            "Next": first.name,
        }));
    }
    if let Some(target) = on_failure {
        catches.push(json!({"ErrorEquals": ["States.ALL"], "ResultPath": null, "Next": target}));
    }
    if !catches.is_empty() {
        state["Catch"] = json!(catches);
    }
    match next {
        Some(next) => state["Next"] = json!(next),
        None => state["End"] = json!(true),
    }
    states.insert(step.name.clone(), state);
    Ok(())
}

/// Renders a nested sequence, its last state going on to `after`, its
/// failures to `on_failure`.
fn render_sequence(
    flow: &str,
    steps: &[Step],
    after: Option<String>,
    on_failure: Option<&str>,
    states: &mut Map<String, Value>,
) -> Result<(), Error> {
    for (i, step) in steps.iter().enumerate() {
        let next = steps.get(i + 1).map(|s| s.name.clone()).or(after.clone());
        render_step(flow, step, next, on_failure, states)?;
    }
    Ok(())
}

/// A Lambda task calling step function `function` with the
/// [`cloudfn_core::workflow::StepCall`] of step `step` of workflow `flow`.
fn lambda_task(flow: &str, function: &str, step: &str) -> Value {
    json!({
        "Type": "Task",
        "Resource": format!("${{{}}}", function_arn(function)),
        "Parameters": {
            "workflow": flow,
            "input.$": "$",
            "execution.$": "$$.Execution.Name",
            "step": step,
            "attempt.$": "States.MathAdd($$.State.RetryCount, 1)",
        },
    })
}

/// An optimized integration (`sqs:sendMessage`, `sns:publish`) sending the
/// state's input with `parameters`, and the cloudfn message id
/// `execution/step`; the input goes on unchanged.
fn integration(action: &str, mut parameters: Value, step: &str) -> Value {
    parameters["MessageAttributes"] = json!({
        cloudfn_core::messaging::PUBLISHED_ID: {
            "DataType": "String",
            "StringValue.$": format!("States.Format('{{}}/{step}', $$.Execution.Name)"),
        }
    });
    json!({
        "Type": "Task",
        "Resource": format!("arn:aws:states:::{action}"),
        "Parameters": parameters,
        "ResultPath": null,
    })
}

/// A step's retry policy as a `Retry` rule: the retryable cloudfn errors
/// of a Lambda (`lambda`), or any failure of an integration.
fn retry(policy: &RetryPolicy, lambda: bool) -> Value {
    let errors: Vec<String> = if lambda {
        error_names(&ErrorMatch::Retryable)
    } else {
        vec!["States.TaskFailed".into(), "States.Timeout".into()]
    };
    json!({
        "ErrorEquals": errors,
        "IntervalSeconds": policy.initial_delay.as_secs().max(1),
        "MaxAttempts": policy.max_attempts.saturating_sub(1),
        "BackoffRate": 2.0,
        "MaxDelaySeconds": policy.max_delay.as_secs().max(1),
        "JitterStrategy": "FULL",
    })
}

/// The Step Functions error names a match takes.
fn error_names(errors: &ErrorMatch) -> Vec<String> {
    let kinds = |keep: &dyn Fn(ErrorKind) -> bool| -> Vec<String> {
        ErrorKind::ALL
            .into_iter()
            .filter(|k| keep(*k))
            .map(|k| format!("cloudfn.{k}"))
            .collect()
    };
    match errors {
        ErrorMatch::Any => vec!["States.ALL".into()],
        ErrorMatch::Retryable => {
            let mut names = kinds(&|k| k.is_retryable());
            names.push("States.Timeout".into());
            names.extend(LAMBDA_TRANSIENT.map(String::from));
            names
        }
        ErrorMatch::Permanent => kinds(&|k| !k.is_retryable()),
        ErrorMatch::Kinds(wanted) => kinds(&|k| wanted.contains(&k)),
    }
}

/// A condition as a choice rule (without its `Next`).
fn choice_rule(condition: &Condition, step: &str) -> Result<Value, Error> {
    let variable = |path: &str| format!("$.{path}");
    Ok(match condition {
        Condition::Equals { path, value } => {
            let test = match value {
                Value::String(_) => "StringEquals",
                Value::Number(_) => "NumericEquals",
                Value::Bool(_) => "BooleanEquals",
                Value::Null => return Ok(json!({"Variable": variable(path), "IsNull": true})),
                _ => {
                    return Err(Error::invalid(format!(
                        "step `{step}`: Step Functions compares a field with a string, number, boolean or null, not with {value}"
                    )));
                }
            };
            json!({"Variable": variable(path), test: value})
        }
        Condition::GreaterThan { path, value } => {
            json!({"Variable": variable(path), "NumericGreaterThan": value})
        }
        Condition::LessThan { path, value } => {
            json!({"Variable": variable(path), "NumericLessThan": value})
        }
        Condition::Exists { path } => json!({"And": [
            {"Variable": variable(path), "IsPresent": true},
            {"Variable": variable(path), "IsNull": false},
        ]}),
        Condition::All(all) => {
            json!({"And": all.iter().map(|c| choice_rule(c, step)).collect::<Result<Vec<_>, _>>()?})
        }
        Condition::Any(any) => {
            json!({"Or": any.iter().map(|c| choice_rule(c, step)).collect::<Result<Vec<_>, _>>()?})
        }
        Condition::Not(not) => json!({"Not": choice_rule(not, step)?}),
    })
}

#[cfg(test)]
mod tests {
    use cloudfn_core::workflow::Choice;

    use super::*;

    fn order() -> Workflow {
        cloudfn_core::workflow::fixture::every_kind_of_step()
    }

    /// The definition every rendering is checked against, as Step Functions
    /// reads it; `UPDATE_GOLDEN=1` writes it anew.
    const GOLDEN: &str = "tests/fixtures/order.asl.json";

    #[test]
    fn the_fixture_renders_as_the_golden_definition() {
        let asl = state_machine(&order()).unwrap();
        let mut rendered = serde_json::to_string_pretty(&asl).unwrap();
        rendered.push('\n');
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &rendered).unwrap();
        }
        let golden = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            golden == rendered,
            "{GOLDEN} differs from the rendering (UPDATE_GOLDEN=1 writes it):\n{rendered}"
        );
    }

    /// Every state of `asl`, those of parallel branches included, by name.
    fn all_states(asl: &Value, out: &mut Map<String, Value>) {
        for (name, state) in asl["States"].as_object().unwrap() {
            assert!(
                out.insert(name.clone(), state.clone()).is_none(),
                "state `{name}` is named twice"
            );
            for branch in state["Branches"].as_array().into_iter().flatten() {
                all_states(branch, out);
            }
        }
    }

    #[test]
    fn every_step_retry_catch_and_compensation_of_the_fixture_survives() {
        let flow = order();
        let mut states = Map::new();
        all_states(&state_machine(&flow).unwrap(), &mut states);
        for step in flow.all_steps() {
            let state = states
                .get(&step.name)
                .unwrap_or_else(|| panic!("no state `{}`", step.name));
            match &step.action {
                Action::Call { function } => {
                    assert_eq!(
                        state["Resource"],
                        format!("${{{}}}", function_arn(function))
                    );
                    assert_eq!(state["Parameters"]["step"], *step.name);
                    assert_eq!(state["Parameters"]["workflow"], flow.name());
                }
                Action::Send { queue } => {
                    assert_eq!(state["Resource"], "arn:aws:states:::sqs:sendMessage");
                    assert_eq!(
                        state["Parameters"]["QueueUrl"],
                        format!("${{{}}}", queue_url(queue))
                    );
                }
                Action::Publish { topic } => {
                    assert_eq!(state["Resource"], "arn:aws:states:::sns:publish");
                    assert_eq!(
                        state["Parameters"]["TopicArn"],
                        format!("${{{}}}", topic_arn(topic))
                    );
                }
                Action::Wait { duration } => {
                    assert_eq!(state["Seconds"], duration.as_secs().max(1));
                }
                Action::Choice(_) => assert_eq!(state["Type"], "Choice"),
                Action::Parallel { branches } => {
                    assert_eq!(state["Branches"].as_array().unwrap().len(), branches.len());
                }
                Action::Succeed => assert_eq!(state["Type"], "Succeed"),
                Action::Fail { .. } => {}
            }
            match &step.retry {
                Some(policy) => {
                    let rule = &state["Retry"][0];
                    assert_eq!(
                        rule["MaxAttempts"],
                        policy.max_attempts - 1,
                        "{}",
                        step.name
                    );
                    assert_eq!(
                        rule["IntervalSeconds"],
                        policy.initial_delay.as_secs().max(1)
                    );
                    assert_eq!(rule["MaxDelaySeconds"], policy.max_delay.as_secs().max(1));
                }
                None => assert!(state.get("Retry").is_none(), "`{}` retries", step.name),
            }
            let catches = state["Catch"].as_array().cloned().unwrap_or_default();
            for catch in &step.catch {
                let errors = error_names(&catch.errors);
                assert!(
                    catches
                        .iter()
                        .any(|c| c["Next"] == *catch.steps[0].name
                            && c["ErrorEquals"] == json!(errors)),
                    "`{}` catches {errors:?} into `{}`: {catches:?}",
                    step.name,
                    catch.steps[0].name
                );
            }
            if let Some(function) = &step.compensation {
                let undo = &states[&format!("compensate:{}", step.name)];
                assert_eq!(undo["Resource"], format!("${{{}}}", function_arn(function)));
            }
        }
    }

    #[test]
    fn every_step_is_a_state_chained_in_order() {
        let asl = state_machine(&order()).unwrap();
        let states = &asl["States"];
        assert_eq!(asl["StartAt"], "validate");
        for (state, next) in [
            ("validate", "charge"),
            ("charge", "reserve"),
            ("reserve", "express"),
            ("backorder", "express"),
            ("rush", "tell"),
            ("settle", "tell"),
            ("tell", "done"),
        ] {
            assert_eq!(states[state]["Next"], next, "{state}");
        }
        assert_eq!(states["done"]["Type"], "Succeed");
        assert_eq!(
            states["validate"]["Resource"], "${ValidateOrderFunctionArn}",
            "a call invokes the function's Lambda"
        );
        assert_eq!(states["validate"]["Parameters"]["step"], "validate");
        assert_eq!(
            states["backorder"]["Resource"],
            "arn:aws:states:::sqs:sendMessage"
        );
        assert_eq!(
            states["backorder"]["Parameters"]["QueueUrl"],
            "${BackordersQueueUrl}"
        );
        assert_eq!(states["rush"]["Resource"], "arn:aws:states:::sns:publish");
        assert_eq!(states["settle"]["Seconds"], 30);
        let branches = states["tell"]["Branches"].as_array().unwrap();
        assert_eq!(branches[0]["StartAt"], "email");
        assert_eq!(branches[0]["States"]["email"]["End"], true);
        assert_eq!(branches[1]["States"]["announce"]["End"], true);
    }

    #[test]
    fn retries_take_only_retryable_errors_by_the_policy() {
        let asl = state_machine(&order()).unwrap();
        let rule = &asl["States"]["charge"]["Retry"][0];
        let errors: Vec<&str> = rule["ErrorEquals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        assert!(errors.contains(&"cloudfn.unavailable"));
        assert!(errors.contains(&"States.Timeout"));
        assert!(!errors.contains(&"cloudfn.invalid"));
        assert_eq!(rule["MaxAttempts"], 2, "three attempts in all");
        assert_eq!(rule["JitterStrategy"], "FULL");
        assert!(asl["States"]["validate"].get("Retry").is_none());
    }

    #[test]
    fn a_failure_compensates_the_done_steps_latest_first() {
        let asl = state_machine(&order()).unwrap();
        let states = &asl["States"];
        let last_catch = |state: &str| {
            let catches = states[state]["Catch"].as_array().unwrap();
            catches.last().unwrap()["Next"].clone()
        };
        assert_eq!(last_catch("charge"), FAILED, "nothing done to undo");
        assert_eq!(last_catch("reserve"), "compensate:charge");
        assert_eq!(last_catch("tell"), "compensate:reserve");
        assert_eq!(
            states["compensate:reserve"]["Resource"],
            "${ReleaseStockFunctionArn}"
        );
        assert_eq!(states["compensate:reserve"]["Next"], "compensate:charge");
        assert_eq!(states["compensate:charge"]["Next"], FAILED);
        assert_eq!(states["compensate:charge"]["ResultPath"], Value::Null);
        assert_eq!(states[FAILED]["Type"], "Fail");
        assert_eq!(
            states["reserve"]["Catch"][1]["ResultPath"],
            Value::Null,
            "a compensation gets the failed step's input as it was"
        );
        assert_eq!(
            last_catch("backorder"),
            "compensate:charge",
            "a catch's steps fail like the step they stand in for"
        );
        assert_eq!(
            last_catch("rush"),
            "compensate:reserve",
            "so do a choice branch's"
        );
        let branch = &states["tell"]["Branches"][0]["States"]["email"];
        assert!(branch.get("Catch").is_none(), "the parallel state catches");
        let conflict = &states["reserve"]["Catch"][0];
        assert_eq!(conflict["ErrorEquals"], json!(["cloudfn.conflict"]));
        assert_eq!(conflict["Next"], "backorder");
    }

    #[test]
    fn a_fail_step_undoes_the_done_steps_first() {
        let flow = Workflow::new("order")
            .step(Step::call("charge", "charge-card").compensate("refund"))
            .step(Step::call("reserve", "reserve-stock").catch(
                ErrorMatch::Any,
                [Step::fail("stop", "OrderFailed", "no stock")],
            ));
        let asl = state_machine(&flow).unwrap();
        let stop = &asl["States"]["stop"];
        assert_eq!(stop["Type"], "Pass", "{stop}");
        assert_eq!(stop["Next"], "compensate:charge");
        assert_eq!(stop["Result"]["Error"], "OrderFailed");

        let nothing_to_undo = Workflow::new("order").step(Step::fail("stop", "E", "c"));
        let asl = state_machine(&nothing_to_undo).unwrap();
        assert_eq!(asl["States"]["stop"]["Type"], "Fail");
    }

    #[test]
    fn a_choice_tests_the_field_and_falls_back() {
        let asl = state_machine(&order()).unwrap();
        let choice = &asl["States"]["express"];
        assert_eq!(
            choice["Choices"][0],
            json!({"Variable": "$.shipping", "StringEquals": "express", "Next": "rush"})
        );
        assert_eq!(choice["Default"], "settle");
        let nested = Workflow::new("w").step(Step::choice(
            "last",
            Choice::new().when(
                Condition::exists("a").and(Condition::greater_than("n", 2.0).negate()),
                [],
            ),
        ));
        let asl = state_machine(&nested).unwrap();
        assert_eq!(asl["States"]["last"]["Default"], "last:end");
        assert_eq!(asl["States"]["last:end"]["Type"], "Succeed");
        assert_eq!(
            asl["States"]["last"]["Choices"][0]["And"][1],
            json!({"Not": {"Variable": "$.n", "NumericGreaterThan": 2.0}})
        );
    }

    #[test]
    fn the_substitutions_name_every_resource_the_states_use() {
        let subs = substitutions(&order());
        let text = state_machine(&order()).unwrap().to_string();
        for placeholder in subs.keys() {
            assert!(
                text.contains(&format!("${{{placeholder}}}")),
                "{placeholder}"
            );
        }
        assert_eq!(
            subs["RefundFunctionArn"],
            json!({"Fn::GetAtt": ["RefundFunction", "Arn"]})
        );
        assert_eq!(subs["OrderPaidTopicArn"], json!({"Ref": "OrderPaidTopic"}));
        assert_eq!(subs.len(), 9, "six functions, a queue, two topics");
        let order = order();
        let named = placeholders(&order);
        assert_eq!(
            named.keys().collect::<Vec<_>>(),
            subs.keys().collect::<Vec<_>>()
        );
        assert_eq!(
            named["BackordersQueueUrl"],
            Placeholder::QueueUrl("backorders")
        );
        assert_eq!(
            named["OrderPaidTopicArn"],
            Placeholder::TopicArn("order-paid")
        );
        assert_eq!(
            named["RefundFunctionArn"],
            Placeholder::FunctionArn("refund")
        );
    }
}
