//! The Runtime API loop, in process, against the project's Runtime API server.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use cloudfn_aws::{
    client::ClientBuilder,
    dispatch::Dispatcher,
    emulate::Outcome,
    runtime::{RuntimeApi, run_loop},
};
use cloudfn_core::{
    App, Context, Error, Function, HttpRequest, HttpResponse, Message, Method,
    messaging::NoMessaging,
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

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

/// A stand-in for an AWS endpoint that records the `X-Amzn-Trace-Id` of each
/// request (`None` when absent) and refuses it: LocalStack does not show
/// what headers reached it.
async fn trace_headers_seen() -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let trace = String::from_utf8_lossy(&head).lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("x-amzn-trace-id")
                    .then(|| value.trim().to_owned())
            });
            record.lock().unwrap().push(trace);
            let body = r#"{"__type":"AccessDenied","message":"no"}"#;
            let answer = format!(
                "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    (url, seen)
}

/// What Lambda's own runtimes do through `_X_AMZN_TRACE_ID`: an AWS call a
/// handler makes carries its invocation's X-Ray trace.
#[tokio::test]
async fn sdk_calls_carry_the_invocations_trace() {
    let (endpoint, seen) = trace_headers_seen().await;
    let app = App::new("trace").function(
        Function::http(
            "send",
            Method::Any,
            "/",
            |_: HttpRequest, ctx: Context| async move {
                // Refused by the stand-in; the request it made is what counts.
                let _ = ctx.queue("jobs").send(&json!({})).await;
                let trace = ctx.trace_id().unwrap_or_default().to_owned();
                Ok(HttpResponse::text(200, trace))
            },
        )
        .sends_to("jobs"),
    );
    let sqs = ClientBuilder::from_env()
        .endpoint_url(endpoint)
        .region("us-east-1")
        .test_credentials()
        .sqs();
    let services = app.services(
        "aws",
        Arc::new(sqs),
        Arc::new(NoMessaging),
        Arc::new(cloudfn_core::store::NoStore),
    );
    let dispatcher = Dispatcher::new(app.get("send").unwrap().clone(), services, None);
    let server = cloudfn_aws::emulate::RuntimeApiServer::start("send")
        .await
        .unwrap();
    let api = RuntimeApi::new(&server.address());
    tokio::spawn(async move { run_loop(&api, &dispatcher).await });

    let out = answer(&server, v2("/").to_string()).await;
    let trace = out["body"].as_str().unwrap().to_owned();
    assert!(trace.starts_with("Root=1-"), "{out}");
    let seen = seen.lock().unwrap().clone();
    assert!(!seen.is_empty(), "the handler reached the endpoint");
    assert!(
        seen.iter()
            .all(|header| header.as_deref() == Some(trace.as_str())),
        "every call carries {trace}: {seen:?}"
    );
}

/// An invocation from the Runtime API, printed, leaves its event out:
/// events carry headers, bodies and message contents.
#[tokio::test]
async fn a_printed_invocation_leaves_out_its_event() {
    let server = cloudfn_aws::emulate::RuntimeApiServer::start("f")
        .await
        .unwrap();
    let api = RuntimeApi::new(&server.address());
    let invoke =
        tokio::spawn(async move { server.invoke(r#"{"card":"4111-secret"}"#, TIMEOUT).await });
    let next = api.next().await.unwrap();
    let shown = format!("{next:?}");
    invoke.abort();
    assert!(shown.contains(&next.invocation.request_id), "{shown}");
    assert!(!shown.contains("secret"), "{shown}");
}
