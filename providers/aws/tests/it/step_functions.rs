//! A workflow's state machine, as `deploy::state_machine` renders it,
//! created and run by LocalStack's Step Functions: SQS sends and an SNS
//! publish carrying the cloudfn message id, a choice, a wait, a retried and
//! caught send, and executions that succeed and fail.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use aws_sdk_sfn::{
    operation::describe_execution::DescribeExecutionOutput,
    types::{ExecutionStatus, HistoryEventType},
};
use cloudfn_aws::deploy::{Placeholder, placeholders, state_machine};
use cloudfn_core::{
    RetryPolicy,
    messaging::PUBLISHED_ID,
    workflow::{Choice, Condition, ErrorMatch, Step, Workflow},
};
use serde_json::{Value, json};

use crate::{
    localstack::Aws,
    support::{localstack, sdk_config, unique},
};

/// Every order is announced on `order-events`; express orders go to
/// `rush-orders`, standard ones to `shipments` after a wait, freight ones to
/// `freight` (a queue that does not exist, so the send fails, is retried
/// once, and is caught into a `shipments` backorder); any other shipping
/// fails the execution.
fn fulfil() -> Workflow {
    Workflow::new("fulfil")
        .step(Step::publish("announce", "order-events"))
        .step(Step::choice(
            "route",
            Choice::new()
                .when(
                    Condition::equals("shipping", "express"),
                    [Step::send("rush", "rush-orders")],
                )
                .when(
                    Condition::equals("shipping", "standard"),
                    [
                        Step::wait("settle", Duration::from_secs(1)),
                        Step::send("ship", "shipments"),
                    ],
                )
                .when(
                    Condition::equals("shipping", "freight"),
                    [Step::send("haul", "freight")
                        .retry(RetryPolicy::new(2))
                        .catch(ErrorMatch::Any, [Step::send("backorder", "shipments")])],
                )
                .otherwise([Step::fail(
                    "unroutable",
                    "cloudfn.unroutable",
                    "no carrier ships this order",
                )]),
        ))
        .step(Step::succeed("done"))
}

/// Polls the execution until it is no longer running, for at most 30 s.
async fn finished(sfn: &aws_sdk_sfn::Client, execution: &str) -> DescribeExecutionOutput {
    let give_up = Instant::now() + Duration::from_secs(30);
    loop {
        let out = sfn
            .describe_execution()
            .execution_arn(execution)
            .send()
            .await
            .unwrap();
        if out.status != ExecutionStatus::Running {
            return out;
        }
        assert!(
            Instant::now() < give_up,
            "{execution} still runs after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The messages `url` holds, `count` of them: the cloudfn message id of
/// each to its body, as JSON.
async fn by_message_id(aws: &Aws, url: &str, count: usize) -> BTreeMap<String, Value> {
    let got = aws.receive(url, count).await;
    assert_eq!(got.len(), count, "{url}: {got:?}");
    got.iter()
        .map(|m| {
            let attributes = m.message_attributes.as_ref().expect("message attributes");
            let id = attributes[PUBLISHED_ID].string_value.clone().unwrap();
            assert_eq!(attributes[PUBLISHED_ID].data_type, "String");
            (
                id,
                serde_json::from_str(m.body.as_deref().unwrap()).unwrap(),
            )
        })
        .collect()
}

/// Whether `url` is empty (nothing arrives within a second).
async fn nothing_more(aws: &Aws, url: &str) -> bool {
    let out = aws
        .sqs
        .receive_message()
        .queue_url(url)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    out.messages.unwrap_or_default().is_empty()
}

#[tokio::test]
async fn a_rendered_workflow_runs_on_step_functions() {
    let Some(url) = localstack() else { return };
    let aws = Aws::new(&url).await;
    let sfn = aws_sdk_sfn::Client::new(&sdk_config(&url).await);
    let workflow = fulfil();
    workflow.validate(|_| false).unwrap();

    // The resources, under names of this test's own; `freight` is never created.
    let (rush, _) = aws.queue(&unique("rush-orders"), &[]).await;
    let (shipments, _) = aws.queue(&unique("shipments"), &[]).await;
    let (audit, audit_arn) = aws.queue(&unique("audit"), &[]).await;
    let missing = format!("{}/{}", rush.rsplit_once('/').unwrap().0, unique("freight"));
    let topic = aws
        .sns
        .create_topic()
        .name(unique("order-events"))
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    aws.sns
        .subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(&audit_arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .unwrap();

    // The definition with its placeholders filled, as the template's
    // `DefinitionSubstitutions` would.
    let mut definition = state_machine(&workflow).unwrap().to_string();
    for (placeholder, named) in placeholders(&workflow) {
        let value = match named {
            Placeholder::QueueUrl("rush-orders") => &rush,
            Placeholder::QueueUrl("shipments") => &shipments,
            Placeholder::QueueUrl("freight") => &missing,
            Placeholder::TopicArn("order-events") => &topic,
            other => panic!("{placeholder}: {other:?} is not in this test"),
        };
        definition = definition.replace(&format!("${{{placeholder}}}"), value);
    }
    assert!(!definition.contains("${"), "{definition}");
    let machine = sfn
        .create_state_machine()
        .name(unique("fulfil"))
        .definition(definition)
        .role_arn("arn:aws:iam::000000000000:role/x")
        .send()
        .await
        .unwrap()
        .state_machine_arn;

    let orders = [
        ("express", json!({"order": "o-1", "shipping": "express"})),
        ("standard", json!({"order": "o-2", "shipping": "standard"})),
        ("freight", json!({"order": "o-3", "shipping": "freight"})),
        ("teleport", json!({"order": "o-4", "shipping": "teleport"})),
    ];
    let mut executions = BTreeMap::new();
    for (shipping, input) in &orders {
        let name = unique(shipping);
        let arn = sfn
            .start_execution()
            .state_machine_arn(&machine)
            .name(&name)
            .input(input.to_string())
            .send()
            .await
            .unwrap()
            .execution_arn;
        executions.insert(*shipping, (name, arn));
    }
    let mut outcome = BTreeMap::new();
    for (shipping, (_, arn)) in &executions {
        outcome.insert(*shipping, finished(&sfn, arn).await);
    }
    let output = |shipping: &str| -> Value {
        serde_json::from_str(outcome[shipping].output.as_deref().unwrap()).unwrap()
    };
    let id = |shipping: &str, step: &str| format!("{}/{step}", executions[shipping].0);

    // Succeeded, the input passed on unchanged by the sends and the wait.
    for (shipping, input) in &orders[..2] {
        let run = &outcome[shipping];
        assert_eq!(
            run.status,
            ExecutionStatus::Succeeded,
            "{shipping}: {run:?}"
        );
        assert_eq!(&output(shipping), input, "{shipping}");
    }
    let standard = &outcome["standard"];
    let waited = standard.stop_date.unwrap().as_secs_f64() - standard.start_date.as_secs_f64();
    assert!(waited >= 1.0, "the standard route waits a second: {waited}");

    // Caught: the failed send's input with Step Functions' error under
    // `error`, sent on as a backorder, then on to the end.
    let freight = &outcome["freight"];
    assert_eq!(freight.status, ExecutionStatus::Succeeded, "{freight:?}");
    let caught = output("freight");
    let error = &caught["error"];
    assert!(
        error["Error"].as_str().is_some_and(|e| !e.is_empty()) && error["Cause"].is_string(),
        "{caught}"
    );
    let mut without_error = caught.clone();
    without_error.as_object_mut().unwrap().remove("error");
    assert_eq!(without_error, orders[2].1);
    let history = sfn
        .get_execution_history()
        .execution_arn(&executions["freight"].1)
        .max_results(1000)
        .send()
        .await
        .unwrap()
        .events;
    let failures: Vec<_> = history
        .iter()
        .filter(|e| e.r#type == HistoryEventType::TaskFailed)
        .filter_map(|e| e.task_failed_event_details.as_ref()?.error.clone())
        .collect();
    assert_eq!(
        failures,
        [error["Error"].as_str().unwrap(); 2],
        "the send is retried once by its policy"
    );

    // Failed by the `fail` step, with its error and cause.
    let teleport = &outcome["teleport"];
    assert_eq!(teleport.status, ExecutionStatus::Failed, "{teleport:?}");
    assert_eq!(teleport.error.as_deref(), Some("cloudfn.unroutable"));
    assert_eq!(
        teleport.cause.as_deref(),
        Some("no carrier ships this order")
    );
    assert_eq!(teleport.output, None);

    // Each message carries `cloudfn-message-id` = `<execution>/<step>`.
    assert_eq!(
        by_message_id(&aws, &rush, 1).await,
        BTreeMap::from([(id("express", "rush"), orders[0].1.clone())])
    );
    assert_eq!(
        by_message_id(&aws, &shipments, 2).await,
        BTreeMap::from([
            (id("standard", "ship"), orders[1].1.clone()),
            (id("freight", "backorder"), caught),
        ])
    );
    // Every order was announced, through the topic's raw subscription.
    assert_eq!(
        by_message_id(&aws, &audit, 4).await,
        orders
            .iter()
            .map(|(shipping, input)| (id(shipping, "announce"), input.clone()))
            .collect()
    );
    let left =
        futures::future::join_all([&rush, &shipments, &audit].map(|url| nothing_more(&aws, url)))
            .await;
    assert_eq!(
        left, [true; 3],
        "nothing more arrived on rush, shipments, audit"
    );
}

/// `ctx.workflow(..).start` on AWS: the Step Functions client finds the
/// workflow's state machine by its name (as a stack prefixes it), starts an
/// execution named by the id, and starts no second one of that id.
#[tokio::test]
async fn the_workflow_client_starts_an_execution_once_per_id() {
    use cloudfn_core::{ErrorKind, workflow::WorkflowClient};

    let Some(url) = localstack() else { return };
    let aws = Aws::new(&url).await;
    let sfn = aws_sdk_sfn::Client::new(&sdk_config(&url).await);
    let workflow = unique("greet");
    let definition = json!({
        "StartAt": "greet",
        "States": {"greet": {"Type": "Pass", "Parameters": {"hello.$": "$.name"}, "End": true}}
    });
    let machine = sfn
        .create_state_machine()
        .name(format!("stack-{workflow}"))
        .definition(definition.to_string())
        .role_arn("arn:aws:iam::000000000000:role/x")
        .send()
        .await
        .unwrap()
        .state_machine_arn;

    let client = aws.clients.sfn();
    let id = client
        .start(&workflow, json!({"name": "ada"}), Some("order-1".into()))
        .await
        .unwrap();
    assert_eq!(id, "order-1");
    // Step Functions answers a repeat of a running execution's start (same
    // name, same input) as it answered the first; either way there is one.
    match client
        .start(&workflow, json!({"name": "ada"}), Some("order-1".into()))
        .await
    {
        Ok(again) => assert_eq!(again, "order-1"),
        Err(e) => assert_eq!(e.kind(), ErrorKind::Conflict, "{e}"),
    }
    let other = client
        .start(&workflow, json!({"name": "bob"}), Some("order-1".into()))
        .await
        .unwrap_err();
    assert_eq!(other.kind(), ErrorKind::Conflict, "{other}");
    let missing = client
        .start(&unique("nowhere"), json!({}), None)
        .await
        .unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound, "{missing}");

    let execution = machine.replace(":stateMachine:", ":execution:") + ":order-1";
    let ended = finished(&sfn, &execution).await;
    assert_eq!(ended.status, ExecutionStatus::Succeeded);
    let output: Value = serde_json::from_str(ended.output.as_deref().unwrap()).unwrap();
    assert_eq!(output, json!({"hello": "ada"}));
    let executions = sfn
        .list_executions()
        .state_machine_arn(&machine)
        .send()
        .await
        .unwrap()
        .executions;
    assert_eq!(executions.len(), 1, "{executions:?}");
}
