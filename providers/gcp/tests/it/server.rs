//! The functions-framework server as Cloud Run's callers meet it: an HTTP
//! function on its own route; a queue function sent Pub/Sub's push
//! envelope, answering with what Pub/Sub reads as ack or nack; requests
//! that are no event named as such; the target checked at start.

use std::sync::{Arc, Mutex};

use base64::{Engine, engine::general_purpose::STANDARD};
use cloudfn_core::{App, Context, Error, Function, HttpRequest, HttpResponse, Message, Method};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// What the queue function saw: each message's body, attributes and attempt.
type Seen = Arc<Mutex<Vec<(Value, std::collections::BTreeMap<String, String>, u32)>>>;

async fn hello(req: HttpRequest, _: Context) -> Result<HttpResponse, Error> {
    let name = req.query_param("name").unwrap_or_else(|| "world".into());
    Ok(HttpResponse::json(
        200,
        &json!({ "message": format!("hello, {name}") }),
    ))
}

/// An app with an HTTP function and a queue function that records what it
/// gets and fails as the body's `fail` says.
fn app(seen: Seen) -> App {
    App::new("shop")
        .function(Function::http("hello", Method::Get, "/hello", hello))
        .function(Function::queue(
            "charge",
            "orders",
            move |m: Message<Value>, _| {
                let seen = seen.clone();
                async move {
                    seen.lock()
                        .unwrap()
                        .push((m.body.clone(), m.attributes.clone(), m.attempt));
                    match m.body["fail"].as_str() {
                        Some("retryable") => Err(Error::unavailable("the bank is down")),
                        _ => Ok(()),
                    }
                }
            },
        ))
}

struct Served {
    url: String,
    stop: CancellationToken,
    http: reqwest::Client,
}

impl Served {
    async fn start(app: App, target: &str) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let target = target.to_owned();
        let stopping = stop.clone();
        tokio::spawn(async move {
            let services = cloudfn_core::provider::Services::detached(cloudfn_gcp::PROVIDER);
            cloudfn_gcp::serve_on(app, Some(&target), services, listener, stopping)
                .await
                .unwrap()
        });
        // reqwest has rustls (Google's clients ask for it) and no provider.
        cloudfn_gcp::client::install_tls();
        Self {
            url,
            stop,
            http: reqwest::Client::new(),
        }
    }

    /// POSTs `body` to `path` as a push subscription does.
    async fn push(&self, path: &str, body: &Value) -> (u16, reqwest::header::HeaderMap, String) {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.text().await.unwrap())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A push envelope as Pub/Sub sends it (camelCase and snake_case ids).
fn envelope(data: &Value, attempt: Option<u32>) -> Value {
    let mut envelope = json!({
        "message": {
            "data": STANDARD.encode(data.to_string()),
            "attributes": {"tenant": "t-1"},
            "messageId": "2070443601311540",
            "message_id": "2070443601311540",
            "publishTime": "2026-11-27T10:00:00.123Z",
            "publish_time": "2026-11-27T10:00:00.123Z"
        },
        "subscription": "projects/shop/subscriptions/orders-charge"
    });
    if let Some(attempt) = attempt {
        envelope["deliveryAttempt"] = json!(attempt);
    }
    envelope
}

#[tokio::test]
async fn an_http_function_answers_on_its_own_route() {
    let served = Served::start(app(Seen::default()), "hello").await;
    let response = served
        .http
        .get(format!("{}/hello?name=ada", served.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["message"], "hello, ada");
    let elsewhere = served
        .http
        .get(format!("{}/orders", served.url))
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 404);
}

#[tokio::test]
async fn an_unknown_target_fails_at_start_naming_the_functions() {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let error = cloudfn_gcp::serve_on(
        app(Seen::default()),
        Some("refund"),
        cloudfn_core::provider::Services::detached(cloudfn_gcp::PROVIDER),
        listener,
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    let message = error.message();
    assert!(
        message.contains("`refund`") && message.contains("charge") && message.contains("hello"),
        "{message}"
    );
}

#[tokio::test]
async fn a_pushed_message_reaches_the_queue_function_and_is_acked() {
    let seen = Seen::default();
    let served = Served::start(app(seen.clone()), "charge").await;
    let (status, _, _) = served
        .push("/", &envelope(&json!({"id": "o-1", "qty": 2}), Some(3)))
        .await;
    // 204: an ack everywhere (the emulator takes 202 as a nack).
    assert_eq!(status, 204);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, json!({"id": "o-1", "qty": 2}));
    assert_eq!(seen[0].1["tenant"], "t-1");
    assert_eq!(
        seen[0].2, 3,
        "the attempt is the subscription's deliveryAttempt"
    );
}

#[tokio::test]
async fn a_retryable_failure_is_nacked_with_a_server_error() {
    let served = Served::start(app(Seen::default()), "charge").await;
    let (status, headers, body) = served
        .push("/", &envelope(&json!({"fail": "retryable"}), Some(1)))
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(headers["x-google-status"], "error");
    assert!(
        !body.contains("the bank is down"),
        "internal errors stay in the logs: {body}"
    );
}

#[tokio::test]
async fn a_request_that_is_no_event_is_a_400_naming_what_is_wrong() {
    let served = Served::start(app(Seen::default()), "charge").await;
    let (status, _, body) = served.push("/", &json!({"hello": "world"})).await;
    assert_eq!(status, 400);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("message"),
        "{body}"
    );
    let not_base64 = json!({
        "message": {"data": "%%%", "messageId": "1", "publishTime": "2026-11-27T10:00:00Z"},
        "subscription": "projects/shop/subscriptions/orders-charge"
    });
    let (status, _, body) = served.push("/", &not_base64).await;
    assert_eq!(status, 400);
    assert!(body.contains("message.data"), "{body}");
}

#[tokio::test]
async fn an_event_function_takes_only_posts() {
    let served = Served::start(app(Seen::default()), "charge").await;
    let response = served.http.get(&served.url).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
}

/// A step function answers the `http.post` its Google Workflows step makes
/// (the body `deploy::workflows` renders, as Workflows resolves it): 200
/// with the step's output, its error's status with `{error: {kind}}`
/// (which the workflow's retry predicate and `except` read), and 400 for a
/// body that is no step call.
#[tokio::test]
async fn a_step_function_answers_its_workflow_with_the_output() {
    use cloudfn_core::workflow::STEP_ATTRIBUTE;

    let app = App::new("shop").function(Function::step(
        "charge-card",
        |m: Message<Value>, ctx: Context| async move {
            if m.body["cents"].as_u64() > Some(100_000) {
                return Err(Error::bad_input("too much").with_field("cents"));
            }
            Ok(json!({
                "charged": m.body["cents"],
                "key": m.id,
                "step": m.attribute(STEP_ATTRIBUTE),
                "attempt": ctx.attempt(),
            }))
        },
    ));
    let served = Served::start(app, "charge-card").await;
    let call = |cents: u64| {
        json!({
            "workflow": "order",
            "execution": "9c3e1b2a-55aa-4e0e-9d0c-1f7a3c2b9e11",
            "step": "charge",
            "attempt": 2,
            "input": {"id": "o-1", "cents": cents},
        })
    };

    let (status, _, body) = served.push("/", &call(1250)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({
            "charged": 1250,
            "key": "9c3e1b2a-55aa-4e0e-9d0c-1f7a3c2b9e11/charge",
            "step": "charge",
            "attempt": 2,
        })
    );

    let (status, _, body) = served.push("/", &call(999_999)).await;
    assert_eq!(status, 400, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["kind"], "bad_input", "{error}");
    assert_eq!(error["error"]["field"], "cents", "{error}");

    let (status, _, body) = served.push("/", &envelope(&json!({}), None)).await;
    assert_eq!(status, 400, "a push envelope is no step call: {body}");
}
