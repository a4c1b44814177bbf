//! The Runtime API loop, in process, against the project's Runtime API server.

use std::time::Duration;

use cloudfn_aws::{emulate::Outcome, runtime::RuntimeApi};
use cloudfn_core::{App, Context, Error, Function, HttpRequest, HttpResponse, Message, Method};
use serde_json::{Value, json};

use crate::support::{TIMEOUT, bootstrap, fixture};

async fn hello(req: HttpRequest, _: Context) -> Result<HttpResponse, Error> {
    match req.path.as_str() {
        "/panic" => panic!("handler exploded"),
        "/missing" => Err(Error::not_found("nothing here")),
        _ => Ok(HttpResponse::json(
            200,
            &json!({"path": req.path, "method": req.method.as_str()}),
        )),
    }
}

async fn work(msg: Message<Value>, _: Context) -> Result<(), Error> {
    match msg.body["do"].as_str() {
        Some("fail") => Err(Error::unavailable("flaky")),
        Some("panic") => panic!("worker exploded"),
        Some("sleep") => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The bootstrap's answer to `event`, as JSON.
async fn answer(server: &cloudfn_aws::emulate::RuntimeApiServer, event: String) -> Value {
    server.invoke(event, TIMEOUT).await.unwrap().json().unwrap()
}

fn app() -> App {
    App::new("rt")
        .function(Function::http("hello", Method::Any, "/{*path}", hello))
        .function(Function::queue("work", "jobs", work))
}

fn v2(path: &str) -> Value {
    let mut event = fixture("example-apigw-v2-request-no-authorizer.json");
    event["rawPath"] = json!(path);
    event
}

fn sqs(bodies: &[(&str, Value)]) -> Value {
    let template = fixture("example-sqs-event.json")["Records"][0].clone();
    let records: Vec<Value> = bodies
        .iter()
        .map(|(id, body)| {
            let mut record = template.clone();
            record["messageId"] = json!(id);
            record["body"] = json!(body.to_string());
            record
        })
        .collect();
    json!({ "Records": records })
}

#[tokio::test]
async fn http_invocations_answer_in_the_http_api_shape() {
    let server = bootstrap(app(), "hello").await;
    let out = answer(&server, v2("/orders").to_string()).await;
    assert_eq!(out["statusCode"], 200);
    let body: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, json!({"path": "/orders", "method": "GET"}));

    let out = answer(&server, v2("/missing").to_string()).await;
    assert_eq!(
        out["statusCode"], 404,
        "a handler error is an HTTP answer, not a Lambda error"
    );
}

#[tokio::test]
async fn a_panic_fails_one_invocation_and_the_loop_goes_on() {
    let server = bootstrap(app(), "hello").await;
    let out = answer(&server, v2("/panic").to_string()).await;
    assert_eq!(out["statusCode"], 500);
    assert!(
        !out["body"].as_str().unwrap().contains("exploded"),
        "panic text stays in the logs"
    );
    let out = answer(&server, v2("/after").to_string()).await;
    assert_eq!(out["statusCode"], 200);

    let worker = bootstrap(app(), "work").await;
    let out = worker
        .invoke(
            sqs(&[("m-1", json!({"do": "panic"})), ("m-2", json!({}))]).to_string(),
            TIMEOUT,
        )
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        out,
        json!({"batchItemFailures": [{"itemIdentifier": "m-1"}]})
    );
}

#[tokio::test]
async fn sqs_batches_report_only_their_failures() {
    let server = bootstrap(app(), "work").await;
    let event = sqs(&[
        ("ok-1", json!({})),
        ("bad-1", json!({"do": "fail"})),
        ("ok-2", json!({})),
    ]);
    let out = answer(&server, event.to_string()).await;
    assert_eq!(
        out,
        json!({"batchItemFailures": [{"itemIdentifier": "bad-1"}]})
    );
    let out = answer(&server, sqs(&[("ok-3", json!({}))]).to_string()).await;
    assert_eq!(out, json!({"batchItemFailures": []}));
}

#[tokio::test]
async fn the_deadline_from_the_runtime_api_bounds_the_handler() {
    let server = bootstrap(app(), "work").await;
    let event = sqs(&[("slow", json!({"do": "sleep"})), ("quick", json!({}))]);
    let started = std::time::Instant::now();
    let out = server
        .invoke(event.to_string(), Duration::from_millis(500))
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        out,
        json!({"batchItemFailures": [{"itemIdentifier": "slow"}]})
    );
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the handler was cut off at the deadline"
    );
}

#[tokio::test]
async fn an_event_of_the_wrong_shape_is_an_error_naming_the_expected_shapes() {
    let server = bootstrap(app(), "work").await;
    let out = server
        .invoke(fixture("example-s3-event.json").to_string(), TIMEOUT)
        .await
        .unwrap();
    let Outcome::Error { error_type, body } = out else {
        panic!("expected a function error, got {out:?}");
    };
    assert_eq!(error_type.as_deref(), Some("cloudfn.bad_input"));
    let message = body["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("`work` (queue trigger)") && message.contains("an SQS event"),
        "{message}"
    );

    let out = server.invoke("not json", TIMEOUT).await.unwrap();
    assert!(matches!(out, Outcome::Error { .. }), "{out:?}");
}

#[tokio::test]
async fn an_unknown_function_is_an_init_error() {
    let server = cloudfn_aws::emulate::RuntimeApiServer::start("nope")
        .await
        .unwrap();
    let api = RuntimeApi::new(&server.address());
    let err = cloudfn_aws::serve_on(app(), &api, Some("nope"))
        .await
        .unwrap_err();
    assert!(err.message().contains("no function `nope`"), "{err}");
    let reported = server.init_error().expect("init/error was posted");
    assert!(
        reported["errorMessage"]
            .as_str()
            .unwrap()
            .contains("\"hello\", \"work\""),
        "{reported}"
    );
    assert_eq!(reported["errorType"], "cloudfn.not_found");
}
