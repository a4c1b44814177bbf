use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use serde_json::{Value, json};

use super::*;
use crate::{
    messaging::Permissions,
    store::MemoryStore,
    workflow::{Choice, Condition, ErrorMatch, Step},
};

/// Records every call; a function fails as `script` says for its first
/// attempts, and `hang` never answers.
#[derive(Default)]
struct Script {
    calls: Mutex<Vec<(String, Value, String, u32)>>,
    sent: Mutex<Vec<(String, Value, String)>>,
    failures: HashMap<&'static str, (u32, ErrorKind)>,
    hang: Option<&'static str>,
}

#[async_trait]
impl StepRunner for Script {
    async fn call(&self, function: &str, call: StepCall) -> Result<Value, Error> {
        let (key, attempt, input) = (call.key(), call.attempt, call.input);
        self.calls
            .lock()
            .unwrap()
            .push((function.into(), input.clone(), key, attempt));
        if self.hang == Some(function) {
            std::future::pending::<()>().await;
        }
        if let Some((failing, kind)) = self.failures.get(function)
            && attempt <= *failing
        {
            return Err(Error::new(*kind, format!("{function} failed")));
        }
        let mut output = input;
        if let Value::Object(fields) = &mut output {
            fields.insert(function.into(), json!(true));
        }
        Ok(output)
    }

    async fn send(&self, queue: &str, input: &Value, key: &str) -> Result<(), Error> {
        self.sent
            .lock()
            .unwrap()
            .push((queue.into(), input.clone(), key.into()));
        Ok(())
    }

    async fn publish(&self, topic: &str, input: &Value, key: &str) -> Result<(), Error> {
        self.send(topic, input, key).await
    }
}

impl Script {
    fn called(&self) -> Vec<String> {
        let calls = self.calls.lock().unwrap();
        calls.iter().map(|(f, ..)| f.clone()).collect()
    }
}

fn order() -> Workflow {
    Workflow::new("order")
        .step(Step::call("validate", "validate"))
        .step(
            Step::call("charge", "charge")
                .retry(RetryPolicy::new(3).initial_delay(Duration::from_millis(1)))
                .compensate("refund"),
        )
        .step(Step::call("reserve", "reserve").compensate("release"))
        .step(Step::call("notify", "notify"))
}

fn orchestrator(store: &Arc<MemoryStore>, script: Arc<Script>, flow: Workflow) -> Orchestrator {
    let store = Store::new(
        EXECUTIONS_STORE,
        store.clone(),
        "orchestrator",
        &Permissions::unrestricted(),
    );
    Orchestrator::new(store, script, vec![flow])
}

async fn run_once(script: Script, flow: Workflow) -> (Execution, Arc<Script>) {
    let script = Arc::new(script);
    let engine = orchestrator(&Arc::new(MemoryStore::new()), script.clone(), flow);
    let id = engine
        .start("order", json!({"id": "o-1"}), None)
        .await
        .unwrap();
    (engine.run("order", &id).await.unwrap(), script)
}

#[tokio::test]
async fn an_execution_runs_every_step_and_records_each() {
    let (execution, script) = run_once(Script::default(), order()).await;
    assert_eq!(execution.status, Status::Succeeded);
    assert_eq!(
        execution.output,
        Some(
            json!({"id": "o-1", "validate": true, "charge": true, "reserve": true, "notify": true})
        )
    );
    assert_eq!(script.called(), ["validate", "charge", "reserve", "notify"]);
    let charge = &execution.steps["charge"];
    assert_eq!(charge.attempts, 1);
    assert_eq!(charge.input, json!({"id": "o-1", "validate": true}));
    assert!(charge.ended.is_some());
    let keys: Vec<String> = script
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.2.clone())
        .collect();
    assert_eq!(
        keys[1],
        format!("{}/charge", execution.id),
        "a stable key per execution and step"
    );
}

#[tokio::test]
async fn a_transient_failure_is_retried_by_the_step_policy() {
    let script = Script {
        failures: HashMap::from([("charge", (2, ErrorKind::Unavailable))]),
        ..Script::default()
    };
    let (execution, script) = run_once(script, order()).await;
    assert_eq!(execution.status, Status::Succeeded);
    assert_eq!(execution.steps["charge"].attempts, 3);
    assert_eq!(
        script.called(),
        [
            "validate", "charge", "charge", "charge", "reserve", "notify"
        ]
    );
}

#[tokio::test]
async fn a_permanent_failure_compensates_done_steps_in_reverse() {
    let script = Script {
        failures: HashMap::from([("notify", (9, ErrorKind::Invalid))]),
        ..Script::default()
    };
    let (execution, script) = run_once(script, order()).await;
    assert_eq!(execution.status, Status::Failed);
    let error = execution.error.unwrap();
    assert_eq!(
        (error.step.as_str(), error.kind),
        ("notify", ErrorKind::Invalid)
    );
    assert_eq!(
        script.called(),
        [
            "validate", "charge", "reserve", "notify", "release", "refund"
        ],
        "not retried (permanent), then undone latest first"
    );
    let calls = script.calls.lock().unwrap();
    let last_good = json!({"id": "o-1", "validate": true, "charge": true, "reserve": true});
    assert_eq!(
        calls[4].1, last_good,
        "a compensation gets the failed step's input"
    );
    assert!(execution.steps.contains_key("compensate:charge"));
}

#[tokio::test]
async fn retries_spent_on_a_transient_failure_fail_the_execution_too() {
    let script = Script {
        failures: HashMap::from([("reserve", (9, ErrorKind::Unavailable))]),
        ..Script::default()
    };
    let (execution, script) = run_once(script, order()).await;
    assert_eq!(execution.status, Status::Failed);
    assert_eq!(
        execution.steps["reserve"].attempts, 1,
        "no retry policy, one attempt"
    );
    assert_eq!(script.called(), ["validate", "charge", "reserve", "refund"]);
}

#[tokio::test]
async fn a_caught_failure_goes_on_by_the_catch_steps() {
    let flow = Workflow::new("order")
        .step(Step::call("reserve", "reserve").catch(
            ErrorMatch::Kinds(vec![ErrorKind::Conflict]),
            [Step::send("backorder", "backorders")],
        ))
        .step(Step::call("notify", "notify"));
    let script = Script {
        failures: HashMap::from([("reserve", (9, ErrorKind::Conflict))]),
        ..Script::default()
    };
    let (execution, script) = run_once(script, flow).await;
    assert_eq!(execution.status, Status::Succeeded);
    let sent = script.sent.lock().unwrap();
    assert_eq!(sent[0].0, "backorders");
    assert_eq!(sent[0].1["error"]["kind"], "conflict");
    assert_eq!(script.called(), ["reserve", "notify"]);
}

#[tokio::test]
async fn choices_and_parallel_branches_shape_the_output() {
    let flow = Workflow::new("order")
        .step(Step::choice(
            "route",
            Choice::new()
                .when(
                    Condition::equals("id", "o-1"),
                    [Step::call("first", "first")],
                )
                .otherwise([Step::call("other", "other")]),
        ))
        .step(Step::parallel(
            "both",
            [
                vec![Step::call("left", "left")],
                vec![Step::publish("right", "events")],
            ],
        ));
    let (execution, script) = run_once(Script::default(), flow).await;
    assert_eq!(script.called(), ["first", "left"]);
    assert_eq!(
        execution.output.unwrap(),
        json!([{"id": "o-1", "first": true, "left": true}, {"id": "o-1", "first": true}])
    );
}

#[tokio::test]
async fn an_interrupted_execution_resumes_without_redoing_done_steps() {
    let store = Arc::new(MemoryStore::new());
    let crashing = Arc::new(Script {
        hang: Some("reserve"),
        ..Script::default()
    });
    let first = orchestrator(&store, crashing.clone(), order());
    let id = first
        .start("order", json!({"id": "o-1"}), Some("x-1".into()))
        .await
        .unwrap();
    // The process dies while `reserve` is in flight.
    let running = tokio::spawn(async move { first.run("order", "x-1").await });
    while crashing.called().len() < 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    running.abort();

    let restarted = Arc::new(Script::default());
    let second = orchestrator(&store, restarted.clone(), order());
    assert_eq!(
        second.list("order").await.unwrap().running,
        std::slice::from_ref(&id)
    );
    assert_eq!(second.resume_all().await.unwrap(), 1);
    assert_eq!(
        restarted.called(),
        ["reserve", "notify"],
        "validate and charge were done"
    );
    let execution = second.get("order", &id).await.unwrap().unwrap();
    assert_eq!(execution.status, Status::Succeeded);
    assert_eq!(
        execution.steps["reserve"].attempts, 2,
        "the interrupted attempt counts"
    );
    let index = second.list("order").await.unwrap();
    assert!(index.running.is_empty());
    assert_eq!(index.finished, [id]);
}

#[tokio::test]
async fn an_execution_id_starts_once() {
    let engine = orchestrator(&Arc::new(MemoryStore::new()), Arc::default(), order());
    engine
        .start("order", json!({}), Some("same".into()))
        .await
        .unwrap();
    let again = engine
        .start("order", json!({}), Some("same".into()))
        .await
        .unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Conflict);
    let unknown = engine.start("nope", json!({}), None).await.unwrap_err();
    assert_eq!(unknown.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn a_succeed_in_a_parallel_branch_ends_that_branch_only() {
    let flow = Workflow::new("order")
        .step(Step::parallel(
            "both",
            [
                vec![Step::succeed("early")],
                vec![Step::call("left", "left")],
            ],
        ))
        .step(Step::call("after", "after"));
    let (execution, script) = run_once(Script::default(), flow).await;
    assert_eq!(execution.status, Status::Succeeded);
    assert_eq!(script.called(), ["left", "after"]);
}
