//! The custom-handler server as the Functions host meets it: readiness on
//! `GET /`, invocations POSTed to `/<function>` with the host's payloads,
//! answers in the shape the host reads, and forwarded requests for
//! all-HTTP apps.

use base64::{Engine, engine::general_purpose::STANDARD};
use cloudfn_core::{App, Context, Error, Function, HttpRequest, HttpResponse, Message, Method};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

struct Served {
    url: String,
    stop: CancellationToken,
    http: reqwest::Client,
}

impl Served {
    async fn start(app: App) -> Self {
        // What `cloudfn::run` installs: the layer that hands an
        // invocation's events back in its `Logs`.
        use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt};
        let _ = tracing_subscriber::registry()
            .with(cloudfn_azure::logs::layer())
            .try_init();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        tokio::spawn(cloudfn_azure::serve_on(app, listener, stop.clone()));
        cloudfn_azure::client::install_tls();
        Self {
            url,
            stop,
            http: reqwest::Client::new(),
        }
    }

    /// POSTs `payload` as the host does; gives the status and the JSON body.
    async fn invoke(&self, function: &str, payload: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/{function}", self.url))
            .header(
                "x-azure-functions-invocationid",
                "5a1a7a4e-0000-4000-8000-000000000001",
            )
            .json(&payload)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "the host reads answers as JSON"
        );
        (status, response.json().await.unwrap())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[derive(serde::Deserialize, serde::Serialize)]
struct Order {
    id: String,
    qty: u32,
}

async fn show(req: HttpRequest, ctx: Context) -> Result<HttpResponse, Error> {
    tracing::info!(id = req.path_param("id")?, "showing");
    Ok(HttpResponse::json(
        200,
        &json!({
            "id": req.path_param("id")?,
            "verbose": req.query_param("verbose"),
            "invocation": ctx.invocation_id(),
        }),
    ))
}

async fn create(req: HttpRequest, _: Context) -> Result<HttpResponse, Error> {
    let order: Order = req.json()?;
    Ok(HttpResponse::json(201, &order))
}

async fn charge(message: Message<Order>, _: Context) -> Result<(), Error> {
    tracing::warn!(order = %message.body.id, attempt = message.attempt, "charging");
    Ok(())
}

fn shop() -> App {
    App::new("shop")
        .function(Function::http("show", Method::Get, "/orders/{id}", show))
        .function(Function::http("create", Method::Post, "/orders", create).public())
        .function(Function::queue("charge", "orders", charge))
}

fn host_request(method: &str, url: &str, body: Option<&str>) -> Value {
    json!({
        "Data": {"req": {
            "Url": url,
            "Method": method,
            "Query": {},
            "Headers": {"Content-Type": ["application/json"], "User-Agent": ["curl/8.5.0"]},
            "Params": {},
            "Identities": [],
            "Body": body,
        }},
        "Metadata": {"Headers": {}, "Query": {}, "sys": {"MethodName": "show", "UtcNow": "2026-11-27T10:00:00Z", "RandGuid": "x"}}
    })
}

#[tokio::test]
async fn the_host_finds_the_handler_ready_on_get_root() {
    let served = Served::start(shop()).await;
    let response = served.http.get(&served.url).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_wrapped_http_invocation_answers_in_the_res_output_with_its_logs() {
    let served = Served::start(shop()).await;
    let (status, answer) = served
        .invoke(
            "show",
            host_request(
                "GET",
                "https://shop.azurewebsites.net/orders/o-7?verbose=1",
                None,
            ),
        )
        .await;
    assert_eq!(status, 200);
    let res = &answer["Outputs"]["res"];
    assert_eq!(res["statusCode"], "200");
    assert_eq!(res["headers"]["content-type"], "application/json");
    let body: Value = serde_json::from_str(res["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["id"], "o-7");
    assert_eq!(body["verbose"], "1");
    assert_eq!(body["invocation"], "5a1a7a4e-0000-4000-8000-000000000001");
    let logs: Vec<&str> = answer["Logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        logs.iter()
            .any(|l| l.contains("showing") && l.contains("o-7")),
        "{logs:?}"
    );
}

#[tokio::test]
async fn a_bad_request_body_answers_400_naming_the_field() {
    let served = Served::start(shop()).await;
    let (status, answer) = served
        .invoke(
            "create",
            host_request(
                "POST",
                "https://shop.azurewebsites.net/orders",
                Some(r#"{"id":"o-1","qty":"two"}"#),
            ),
        )
        .await;
    // The host got its answer; the caller gets the 400.
    assert_eq!(status, 200);
    let res = &answer["Outputs"]["res"];
    assert_eq!(res["statusCode"], "400");
    let body: Value = serde_json::from_str(res["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["error"]["field"], "qty", "{body}");
}

#[tokio::test]
async fn a_queue_invocation_runs_the_message_and_answers_200() {
    let served = Served::start(shop()).await;
    let (status, answer) = served
        .invoke(
            "charge",
            json!({
                "Data": {"message": STANDARD.encode(r#"{"id":"o-1","qty":2}"#)},
                "Metadata": {
                    "DequeueCount": "1",
                    "Id": "\"b0b7c3e2-1a55-4c35-9e8b-5f0f5a7b4c11\"",
                    "InsertionTime": "2026-11-27T10:00:00+00:00",
                    "ExpirationTime": "2026-12-04T10:00:00+00:00",
                    "NextVisibleTime": "2026-11-27T10:10:00+00:00",
                    "PopReceipt": "\"AgAAAAMAAAAAAAAAAgtnj8x+1QE=\"",
                    "sys": {"MethodName": "charge", "UtcNow": "2026-11-27T10:00:01Z", "RandGuid": "x"}
                }
            }),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["Outputs"], json!({}));
    assert!(
        answer["Logs"][0].as_str().unwrap().contains("charging"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_payload_that_is_not_the_hosts_is_refused_naming_what_is_missing() {
    let served = Served::start(shop()).await;
    let (status, answer) = served
        .invoke("charge", json!({"Data": {}, "Metadata": {}}))
        .await;
    assert_eq!(status, 400);
    assert!(
        answer["Logs"][0].as_str().unwrap().contains("Data.message"),
        "{answer}"
    );

    let (status, answer) = served.invoke("refund", json!({"Data": {}})).await;
    assert_eq!(status, 404);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("charge"),
        "{answer}"
    );
}

#[tokio::test]
async fn an_all_http_app_has_its_requests_forwarded_to_its_routes() {
    let app = App::new("api")
        .function(Function::http("show", Method::Get, "/orders/{id}", show))
        .function(Function::http("create", Method::Post, "/orders", create));
    let served = Served::start(app).await;
    let response = served
        .http
        .get(format!("{}/orders/o-3?verbose=yes", served.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["id"].as_str(), body["verbose"].as_str()),
        (Some("o-3"), Some("yes"))
    );
    let response = served
        .http
        .delete(format!("{}/orders", served.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    // The host's readiness probe gets an answer, whatever it is.
    assert_eq!(
        served.http.get(&served.url).send().await.unwrap().status(),
        404
    );
}
