//! One Lambda event into a function by its trigger, without AWS: each
//! trigger's shapes are read straight into their types, the answer comes
//! back as JSON bytes, and any other shape fails naming the ones expected.

use std::sync::{Arc, Mutex};

use cloudfn_aws::{
    dispatch::{Dispatcher, Invocation},
    events::{http, queue, schedule, storage, topic},
};
use cloudfn_core::{
    App, Context, Error, ErrorKind, Function, HttpRequest, HttpResponse, Message, Method,
    ScheduledTick, StorageEvent, StorageEventKind, provider::Services,
};
use serde_json::{Value, json};

use crate::support::{fixture, own_fixture};

type Seen = Arc<Mutex<Vec<Message<Value>>>>;

fn dispatcher(function: Function) -> Dispatcher {
    let name = function.name().to_owned();
    let app = App::new("t").function(function);
    Dispatcher::new(
        app.get(&name).unwrap().clone(),
        Services::detached("aws"),
        None,
    )
}

fn recording_topic(name: &str, topic: &str, seen: &Seen) -> Function {
    let seen = seen.clone();
    Function::topic(name, topic, move |m: Message<Value>, _: Context| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(m);
            Ok::<_, Error>(())
        }
    })
}

async fn answer(dispatcher: &Dispatcher, event: &Value) -> Result<Value, Error> {
    let bytes = serde_json::to_vec(event).unwrap();
    let out = dispatcher.handle(&bytes, &Invocation::default()).await?;
    Ok(serde_json::from_slice(&out).expect("the answer is JSON"))
}

fn functions() -> Vec<(Function, &'static str)> {
    async fn message(_: Message<Value>, _: Context) -> Result<(), Error> {
        Ok(())
    }
    async fn tick(_: ScheduledTick, _: Context) -> Result<(), Error> {
        Ok(())
    }
    async fn stored(_: StorageEvent, _: Context) -> Result<(), Error> {
        Ok(())
    }
    async fn page(_: HttpRequest, _: Context) -> Result<HttpResponse, Error> {
        Ok(HttpResponse::text(200, "ok"))
    }
    vec![
        (
            Function::http("page", Method::Get, "/", page),
            http::EXPECTED,
        ),
        (Function::queue("work", "jobs", message), queue::EXPECTED),
        (
            Function::topic("notify", "order-paid", message),
            topic::EXPECTED,
        ),
        (
            Function::schedule("nightly", "0 3 * * *", tick),
            schedule::EXPECTED,
        ),
        (
            Function::storage("thumbs", "uploads", [StorageEventKind::Created], stored),
            storage::EXPECTED,
        ),
    ]
}

#[tokio::test]
async fn each_trigger_takes_its_shapes_and_names_them_for_any_other() {
    let events = [
        (
            "http",
            fixture("example-apigw-v2-request-no-authorizer.json"),
        ),
        ("queue", fixture("example-sqs-event.json")),
        ("topic", fixture("example-eventbridge-event-obj.json")),
        ("schedule", fixture("example-eventbridge-schedule.json")),
        ("storage", fixture("example-s3-event.json")),
    ];
    for (function, expected) in functions() {
        let kind = function.trigger().kind();
        let name = function.name().to_owned();
        let dispatcher = dispatcher(function);
        for (event_kind, event) in &events {
            let taken = match (kind, *event_kind) {
                (a, b) if a == b => true,
                // A topic's subscription queue delivers SQS batches.
                ("topic", "queue") => true,
                // A scheduled event is an EventBridge event too.
                ("topic", "schedule") => true,
                _ => false,
            };
            let result = answer(&dispatcher, event).await;
            if taken {
                assert!(result.is_ok(), "{name} on {event_kind}: {result:?}");
                continue;
            }
            let err = result.expect_err(&format!("{name} took a {event_kind} event"));
            assert_eq!(err.kind(), ErrorKind::BadInput, "{err}");
            let message = err.message();
            assert!(
                message.contains(&format!("function `{name}` ({kind} trigger)"))
                    && message.contains(expected)
                    && message.contains("got an object with keys"),
                "{name} on {event_kind}: {message}"
            );
        }
        for (event, got) in [
            (json!("Records"), "got JSON string"),
            (json!([{"eventSource": "aws:sqs"}]), "got JSON array"),
            (
                json!({"Records": []}),
                r#"got an object with keys ["Records"]"#,
            ),
            (
                json!({"Records": [{"eventSource": 7, "EventSource": ["aws:sns"]}]}),
                r#"got an object with keys ["Records"]"#,
            ),
            (
                json!({"detail-type": "Scheduled Event!", "source": "x", "detail": {}}),
                r#"got an object with keys ["detail", "detail-type", "source"]"#,
            ),
        ] {
            let err = answer(&dispatcher, &event).await.unwrap_err();
            assert!(
                err.message().contains(expected) && err.message().contains(got),
                "{name} on {event}: {err}"
            );
        }
        let err = dispatcher
            .handle(b"{\"Records\": [", &Invocation::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadInput);
        assert!(
            err.message().starts_with("the event is not JSON"),
            "{name}: {err}"
        );
    }
}

#[tokio::test]
async fn a_malformed_event_of_the_right_shape_says_what_is_wrong() {
    async fn message(_: Message<Value>, _: Context) -> Result<(), Error> {
        Ok(())
    }
    async fn tick(_: ScheduledTick, _: Context) -> Result<(), Error> {
        Ok(())
    }
    let queue = dispatcher(Function::queue("work", "jobs", message));
    let err = answer(
        &queue,
        &json!({"Records": [{"eventSource": "aws:sqs", "attributes": 7}]}),
    )
    .await
    .unwrap_err();
    assert!(
        err.message().starts_with("malformed SQS event")
            && err.message().contains("without a messageId"),
        "a record no failure can name fails the event: {err}"
    );

    let topic = dispatcher(Function::topic("notify", "order-paid", message));
    let err = answer(&topic, &json!({"Records": [{"EventSource": "aws:sns"}]}))
        .await
        .unwrap_err();
    assert!(err.message().starts_with("malformed SNS event"), "{err}");

    let nightly = dispatcher(Function::schedule("nightly", "0 3 * * *", tick));
    let err = answer(&nightly, &json!({"detail-type": "Scheduled Event"}))
        .await
        .unwrap_err();
    assert!(
        err.message().starts_with("malformed scheduled event"),
        "{err}"
    );
}

#[tokio::test]
async fn topic_functions_take_sns_and_eventbridge_events_straight_from_lambda() {
    let seen = Seen::default();
    let dispatcher = dispatcher(recording_topic("notify", "order-paid", &seen));

    let mut sns = fixture("example-sns-event.json");
    sns["Records"][0]["Sns"]["Message"] = json!(r#"{"order_id":"o-1"}"#);
    sns["Records"][0]["Sns"]["MessageAttributes"] =
        json!({"tenant": {"Type": "String", "Value": "t-1"}});
    assert_eq!(answer(&dispatcher, &sns).await.unwrap(), Value::Null);

    let eventbridge = fixture("example-eventbridge-event-obj.json");
    assert_eq!(
        answer(&dispatcher, &eventbridge).await.unwrap(),
        Value::Null
    );

    let seen = seen.lock().unwrap();
    let (sns, eventbridge) = (&seen[0], &seen[1]);
    assert_eq!(sns.id, "82833b5c-8d5d-56d0-b0e1-7511f8253eb8");
    assert_eq!(sns.body, json!({"order_id": "o-1"}));
    assert_eq!(sns.attribute("tenant"), Some("t-1"));
    assert_eq!(sns.source, "order-paid", "the topic's neutral name");
    assert!(sns.published_at.is_some());
    assert_eq!(eventbridge.id, "7bf73129-1428-4cd3-a780-95db273d1602");
    assert_eq!(eventbridge.body["state"], "pending");
    assert_eq!(
        eventbridge.attribute("detail-type"),
        Some("EC2 Instance State-change Notification")
    );
}

#[tokio::test]
async fn a_subscription_queue_body_is_the_published_message_as_it_is() {
    // Subscription queues are subscribed with raw message delivery, so a
    // body shaped like an SNS notification is what the publisher sent.
    let published = json!({
        "Type": "Notification",
        "MessageId": "sns-1",
        "TopicArn": "arn:aws:sns:us-east-1:000000000000:order-paid",
        "Message": "{\"order_id\":\"o-1\"}",
        "Timestamp": "2026-11-26T10:00:00.000Z",
        "SignatureVersion": "1",
    });
    let mut event = fixture("example-sqs-event.json");
    event["Records"][0]["body"] = json!(published.to_string());
    event["Records"][0]["messageAttributes"] = json!({
        "tenant": {"stringValue": "t-1", "dataType": "String"}
    });
    let seen = Seen::default();
    let dispatcher = dispatcher(recording_topic("notify", "order-paid", &seen));
    assert_eq!(
        answer(&dispatcher, &event).await.unwrap(),
        json!({"batchItemFailures": []})
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].body, published);
    assert_eq!(seen[0].id, "MessageID_1", "the id is the queue's");
    assert_eq!(seen[0].attempt, 2, "the attempt is the queue's");
    assert_eq!(seen[0].source, "order-paid");
    assert_eq!(seen[0].attribute("tenant"), Some("t-1"));
}

#[tokio::test]
async fn answers_are_json_bytes() {
    async fn failing(m: Message<Value>, _: Context) -> Result<(), Error> {
        match m.body["fail"].as_bool() {
            Some(true) => Err(Error::unavailable("later")),
            _ => Ok(()),
        }
    }
    let work = dispatcher(Function::queue("work", "jobs", failing));
    let mut event = fixture("example-sqs-event.json");
    event["Records"][0]["body"] = json!(r#"{"fail":true}"#);
    let out = work
        .handle(&serde_json::to_vec(&event).unwrap(), &Invocation::default())
        .await
        .unwrap();
    assert_eq!(
        &out[..],
        br#"{"batchItemFailures":[{"itemIdentifier":"MessageID_1"}]}"#
    );

    async fn tick(_: ScheduledTick, _: Context) -> Result<(), Error> {
        Ok(())
    }
    let nightly = dispatcher(Function::schedule("nightly", "0 3 * * *", tick));
    let event = serde_json::to_vec(&fixture("example-eventbridge-schedule.json")).unwrap();
    let out = nightly
        .handle(&event, &Invocation::default())
        .await
        .unwrap();
    assert_eq!(
        &out[..],
        b"null",
        "an event that produces nothing answers null"
    );
}

/// A Function URL or an ALB passes on every method and path: the runtime
/// routes as the local runtime does, with 404, 405 and `Allow`, and the
/// route's path parameters.
#[tokio::test]
async fn every_http_integration_is_routed_with_path_parameters() {
    async fn show(req: HttpRequest, _: Context) -> Result<HttpResponse, Error> {
        let id = req.path_param("id")?;
        Ok(HttpResponse::json(200, &json!({ "id": id })))
    }
    let orders = dispatcher(Function::http("show", Method::Get, "/orders/{id}", show));
    let at = |mut event: Value, method: &str, path: &str| {
        if event["version"] == "2.0" {
            event["rawPath"] = json!(path);
            event["requestContext"]["http"]["method"] = json!(method);
            event["requestContext"]["http"]["path"] = json!(path);
        } else {
            event["path"] = json!(path);
            event["httpMethod"] = json!(method);
        }
        event
    };
    let body = |answer: &Value| -> Value {
        serde_json::from_str(answer["body"].as_str().unwrap()).unwrap()
    };
    for (name, event) in [
        (
            "Function URL",
            own_fixture("lambda-function-url-request.json"),
        ),
        (
            "ALB",
            fixture("example-alb-lambda-target-request-headers-only.json"),
        ),
        (
            "ALB, multi-value headers",
            fixture("example-alb-lambda-target-request-multivalue-headers.json"),
        ),
        (
            "REST API",
            fixture("example-apigw-request-multi-value-parameters.json"),
        ),
    ] {
        let ok = answer(&orders, &at(event.clone(), "GET", "/orders/o-42"))
            .await
            .unwrap();
        assert_eq!(ok["statusCode"], 200, "{name}: {ok}");
        assert_eq!(body(&ok), json!({"id": "o-42"}), "{name}");

        let missing = answer(&orders, &at(event.clone(), "GET", "/nothing/here"))
            .await
            .unwrap();
        assert_eq!(missing["statusCode"], 404, "{name}: {missing}");
        assert_eq!(body(&missing)["error"]["kind"], "not_found", "{name}");

        let wrong = answer(&orders, &at(event.clone(), "DELETE", "/orders/o-42"))
            .await
            .unwrap();
        assert_eq!(wrong["statusCode"], 405, "{name}: {wrong}");
        let allow = wrong["headers"]["allow"]
            .as_str()
            .or(wrong["multiValueHeaders"]["allow"][0].as_str());
        assert_eq!(allow, Some("GET"), "{name}: {wrong}");
    }
}

/// A request the integration passed on but nobody can read is the caller's
/// 400, in the integration's own shape: a Lambda error would reach the
/// caller as a 502.
#[tokio::test]
async fn an_unreadable_request_is_the_callers_400() {
    async fn echo(req: HttpRequest, _: Context) -> Result<HttpResponse, Error> {
        Ok(HttpResponse::new(200).with_body(req.body))
    }
    let echo = dispatcher(Function::http("echo", Method::Post, "/my/path", echo));
    let mut event = own_fixture("lambda-function-url-request.json");
    event["isBase64Encoded"] = json!(true);
    event["body"] = json!("this is *not* base64!");
    let out = answer(&echo, &event).await.unwrap();
    assert_eq!(out["statusCode"], 400, "{out}");
    let body: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["error"]["kind"], "bad_input");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("base64"),
        "{body}"
    );

    let mut alb = fixture("example-alb-lambda-target-request-multivalue-headers.json");
    alb["path"] = json!("/my/path");
    alb["httpMethod"] = json!("POST");
    alb["isBase64Encoded"] = json!("yes");
    let out = answer(&echo, &alb).await.unwrap();
    assert_eq!(
        out["statusCode"], 400,
        "a malformed ALB event is answered in the ALB's shape: {out}"
    );
    assert_eq!(out["statusDescription"], "400 Bad Request");
}

/// One record of the wrong shape in a real SQS batch fails alone: the
/// others run and succeed, and only it comes back.
#[tokio::test]
async fn a_malformed_record_fails_alone() {
    let seen = Seen::default();
    let work = {
        let seen = seen.clone();
        Function::queue("work", "jobs", move |m: Message<Value>, _: Context| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(m);
                Ok::<_, Error>(())
            }
        })
    };
    let work = dispatcher(work);
    let mut event = fixture("example-sqs-event.json");
    let record = event["Records"][0].clone();
    let mut records = Vec::new();
    for i in 1..=3 {
        let mut r = record.clone();
        r["messageId"] = json!(format!("m-{i}"));
        r["body"] = json!(format!("{{\"n\":{i}}}"));
        records.push(r);
    }
    // A message attribute whose value is a number, not a string.
    records[1]["messageAttributes"]["Attribute1"]["stringValue"] = json!(5);
    event["Records"] = json!(records);
    assert_eq!(
        answer(&work, &event).await.unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": "m-2"}]})
    );
    let seen = seen.lock().unwrap();
    let ran: Vec<&str> = seen.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ran, ["m-1", "m-3"]);
}

/// Lambda does not say which delivery of an asynchronous event this is:
/// a handler is told attempt 1, and that it may be its last chance.
#[tokio::test]
async fn asynchronous_events_may_be_the_last_attempt() {
    type Attempts = Arc<Mutex<Vec<(u32, bool)>>>;
    fn record(attempts: &Attempts, ctx: &Context) {
        attempts
            .lock()
            .unwrap()
            .push((ctx.attempt(), ctx.is_final_attempt()));
    }
    let attempts = Attempts::default();
    let (a, b, c) = (attempts.clone(), attempts.clone(), attempts.clone());
    let functions = [
        (
            Function::schedule(
                "nightly",
                "0 3 * * *",
                move |_: ScheduledTick, ctx: Context| {
                    record(&a, &ctx);
                    async { Ok::<_, Error>(()) }
                },
            ),
            fixture("example-eventbridge-schedule.json"),
        ),
        (
            Function::storage(
                "thumbs",
                "uploads",
                [StorageEventKind::Created],
                move |_: StorageEvent, ctx: Context| {
                    record(&b, &ctx);
                    async { Ok::<_, Error>(()) }
                },
            ),
            fixture("example-s3-event.json"),
        ),
        (
            Function::topic(
                "notify",
                "order-paid",
                move |_: Message<Value>, ctx: Context| {
                    record(&c, &ctx);
                    async { Ok::<_, Error>(()) }
                },
            ),
            {
                let mut sns = fixture("example-sns-event.json");
                sns["Records"][0]["Sns"]["Message"] = json!(r#"{"order_id":"o-1"}"#);
                sns
            },
        ),
    ];
    for (function, event) in functions {
        let function = function.retry(cloudfn_core::RetryPolicy::new(3));
        answer(&dispatcher(function), &event).await.unwrap();
    }
    assert_eq!(*attempts.lock().unwrap(), [(1, true); 3]);
}

/// Every record of a storage notification runs, even after one fails; a
/// retryable failure then fails the invocation, so Lambda retries it.
#[tokio::test]
async fn every_storage_record_runs() {
    let keys = Arc::new(Mutex::new(Vec::new()));
    let seen = keys.clone();
    let thumbs = Function::storage(
        "thumbs",
        "uploads",
        [StorageEventKind::Created],
        move |change: StorageEvent, _: Context| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(change.key.clone());
                match change.key.as_str() {
                    "first" => Err(Error::unavailable("the thumbnail service is down")),
                    _ => Ok(()),
                }
            }
        },
    );
    let mut event = fixture("example-s3-event.json");
    let record = event["Records"][0].clone();
    let records: Vec<Value> = ["first", "second"]
        .into_iter()
        .map(|key| {
            let mut r = record.clone();
            r["s3"]["object"]["key"] = json!(key);
            r
        })
        .collect();
    event["Records"] = json!(records);
    let err = answer(&dispatcher(thumbs), &event).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(*keys.lock().unwrap(), ["first", "second"]);
}

/// A step function takes the payload its state machine's task sends (the
/// rendered `Parameters`, resolved as Step Functions resolves them) and
/// answers the step's output; a failure is the invocation's error, which the
/// runtime reports as `cloudfn.<kind>` for the state's `Retry` and `Catch`.
#[tokio::test]
async fn a_step_function_answers_its_state_machine_with_the_output() {
    use cloudfn_core::workflow::{STEP_ATTRIBUTE, Step, Workflow};

    let workflow = Workflow::new("order").step(Step::call("charge", "charge-card"));
    let asl = cloudfn_aws::deploy::state_machine(&workflow).unwrap();
    let mut payload = serde_json::Map::new();
    for (field, value) in asl["States"]["charge"]["Parameters"].as_object().unwrap() {
        let resolved = match value.as_str() {
            Some("$") => json!({"id": "o-1", "cents": 1250}),
            Some("$$.Execution.Name") => json!("exec-1"),
            Some(expression) if expression.contains("RetryCount") => json!(2),
            _ => value.clone(),
        };
        payload.insert(field.trim_end_matches(".$").to_owned(), resolved);
    }
    let charge = dispatcher(Function::step(
        "charge-card",
        |m: Message<Value>, ctx: Context| async move {
            if m.body["cents"].as_u64() > Some(100_000) {
                return Err(Error::bad_input("too much"));
            }
            Ok(json!({
                "charged": m.body["cents"],
                "key": m.id,
                "step": m.attribute(STEP_ATTRIBUTE),
                "attempt": ctx.attempt(),
            }))
        },
    ));
    let output = answer(&charge, &Value::Object(payload.clone()))
        .await
        .unwrap();
    assert_eq!(
        output,
        json!({"charged": 1250, "key": "exec-1/charge", "step": "charge", "attempt": 2})
    );

    payload.insert("input".into(), json!({"id": "o-2", "cents": 999_999}));
    let error = answer(&charge, &Value::Object(payload)).await.unwrap_err();
    assert_eq!(error.kind(), cloudfn_core::ErrorKind::BadInput);

    let wrong = answer(&charge, &json!({"Records": []})).await.unwrap_err();
    assert!(wrong.message().contains("expected a step call"), "{wrong}");
}
