//! [`WorkflowExecutions`]: starting Google Cloud Workflows executions, its
//! claims of ids in the Firestore emulator. Workflows has no emulator, so a
//! stand-in on loopback answers `executions.create` as its REST reference
//! documents it, and records what it was sent.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use cloudfn_core::{ErrorKind, workflow::WorkflowClient};
use cloudfn_gcp::client::{Firestore, WorkflowExecutions, workflows::EXECUTION_LABEL};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::{PROJECT, firestore_emulator, unique};

const WORKFLOW: &str = "projects/shop-dev/locations/us-central1/workflows/shop-order";

/// What the stand-in was sent: each create's path and body.
type Sent = Arc<Mutex<Vec<(String, Value)>>>;

/// A stand-in for `workflowexecutions.googleapis.com/v1` that creates
/// executions, but answers 503 to the first create whose argument holds
/// `"flaky"`; its base URL and what it was sent.
async fn stand_in(stop: CancellationToken) -> (String, Sent) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let sent = Sent::default();
    let flaked = Arc::new(Mutex::new(false));
    let seen = sent.clone();
    tokio::spawn(cloudfn_server::serve(
        listener,
        Duration::from_secs(5),
        stop,
        move |request: http::Request<hyper::body::Incoming>| {
            let (seen, flaked) = (seen.clone(), flaked.clone());
            async move {
                let path = request.uri().path().to_owned();
                let body = request.into_body().collect().await.unwrap().to_bytes();
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let argument = body["argument"].as_str().unwrap_or_default().to_owned();
                seen.lock().unwrap().push((path.clone(), body));
                let mut answer = if argument.contains("flaky") && !*flaked.lock().unwrap() {
                    *flaked.lock().unwrap() = true;
                    let error = json!({"error": {"code": 503, "status": "UNAVAILABLE", "message": "try again"}});
                    let mut answer = http::Response::new(Bytes::from(error.to_string()));
                    *answer.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
                    answer
                } else {
                    let name = format!(
                        "{}/{}",
                        path.trim_start_matches("/v1/"),
                        uuid::Uuid::new_v4()
                    );
                    let execution = json!({"name": name, "state": "ACTIVE", "argument": argument});
                    http::Response::new(Bytes::from(execution.to_string()))
                };
                answer.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
                answer
            }
        },
    ));
    (url, sent)
}

/// The client on the stand-in, its claims in a fresh Firestore collection.
async fn client(stop: CancellationToken) -> Option<(WorkflowExecutions, Sent)> {
    let host = firestore_emulator()?;
    let firestore = Firestore::connect(PROJECT, Some(&host)).unwrap().as_given();
    let services = cloudfn_core::App::new("shop").services(
        cloudfn_gcp::PROVIDER,
        Arc::new(cloudfn_core::messaging::NoMessaging),
        Arc::new(cloudfn_core::messaging::NoMessaging),
        Arc::new(firestore),
    );
    let claims = services.store(&unique("executions-"));
    let (url, sent) = stand_in(stop).await;
    cloudfn_gcp::client::install_tls();
    let client = WorkflowExecutions::with_endpoint(url, None, claims).naming("order", WORKFLOW);
    Some((client, sent))
}

/// A start under an id creates one execution of the workflow, its input
/// as the execution's argument and the id as a label; a repeat is a
/// conflict and creates nothing.
#[tokio::test]
async fn an_id_starts_one_execution_however_often_it_is_started() {
    let stop = CancellationToken::new();
    let Some((client, sent)) = client(stop.clone()).await else {
        return;
    };
    let id = uuid::Uuid::new_v4().to_string();
    let input = json!({"id": id, "items": [{"sku": "BOOK-1", "qty": 2}]});
    let started = client
        .start("order", input.clone(), Some(id.clone()))
        .await
        .unwrap();
    assert_eq!(started, id);
    let repeat = client
        .start("order", input.clone(), Some(id.clone()))
        .await
        .unwrap_err();
    assert_eq!(repeat.kind(), ErrorKind::Conflict, "{repeat}");

    let sent = sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "one execution: {sent:?}");
    let (path, body) = &sent[0];
    assert_eq!(path, &format!("/v1/{WORKFLOW}/executions"));
    let argument: Value = serde_json::from_str(body["argument"].as_str().unwrap()).unwrap();
    assert_eq!(
        argument, input,
        "the input is the argument, as a JSON string"
    );
    assert_eq!(body["labels"][EXECUTION_LABEL], json!(id));
    stop.cancel();
}

/// Without an id, each start is an execution, named by Workflows.
#[tokio::test]
async fn a_start_without_an_id_is_named_by_workflows() {
    let stop = CancellationToken::new();
    let Some((client, sent)) = client(stop.clone()).await else {
        return;
    };
    let first = client.start("order", json!({}), None).await.unwrap();
    let second = client.start("order", json!({}), None).await.unwrap();
    assert_ne!(first, second);
    assert!(uuid::Uuid::parse_str(&first).is_ok(), "{first}");
    let sent = sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    assert!(sent[0].1.get("labels").is_none(), "no id, no label");
    stop.cancel();
}

/// A create that fails gives its id back: the error is retryable, and the
/// retry starts the execution.
#[tokio::test]
async fn a_failed_start_is_unclaimed_so_that_its_retry_starts_it() {
    let stop = CancellationToken::new();
    let Some((client, sent)) = client(stop.clone()).await else {
        return;
    };
    let id = uuid::Uuid::new_v4().to_string();
    let input = json!({"id": id, "note": "flaky"});
    let failed = client
        .start("order", input.clone(), Some(id.clone()))
        .await
        .unwrap_err();
    assert!(failed.is_retryable(), "{failed}");
    assert!(failed.to_string().contains("503"), "{failed}");
    let started = client
        .start("order", input, Some(id.clone()))
        .await
        .unwrap();
    assert_eq!(started, id);
    assert_eq!(sent.lock().unwrap().len(), 2);

    let unknown = client.start("refund", json!({}), None).await.unwrap_err();
    assert!(
        unknown.message().contains("CLOUDFN_WORKFLOW_REFUND"),
        "{unknown}"
    );
    stop.cancel();
}
