//! The shop on the local runtime: what the reacting functions did, seen in
//! the shop's stores, and a clean shutdown. The shop's contract on every provider is in
//! `contract/shop.rs`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    shop_app::{
        self, Flow, NOTIFICATIONS_STORE, ORDERS_STORE, STOCK_STORE, Shop, Status,
        orchestrated::{PAYMENTS_STORE, Payment},
    },
    support::{client, eventually_async, example_binary, start},
};

async fn post_order(url: &str, body: &str) -> (StatusCode, Value) {
    let res = client()
        .post(format!("{url}/orders"))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

const GOOD: &str = r#"{"customer":"ada@example.com","items":[{"sku":"BOOK-1","qty":2}]}"#;

#[tokio::test]
async fn order_is_accepted_paid_and_reacted_to() {
    paid_and_reacted_to(Flow::Choreographed).await;
}

#[tokio::test]
async fn orchestrated_order_is_accepted_paid_and_reacted_to() {
    paid_and_reacted_to(Flow::Orchestrated).await;
}

/// The same contract whichever way the order goes on.
async fn paid_and_reacted_to(flow: Flow) {
    let running = start(shop_app::app(Shop::with_flow(0.0, flow))).await;
    let url = running.url();

    let (status, body) = post_order(&url, GOOD).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["status"], "accepted");
    let id = body["id"].as_str().unwrap().to_owned();

    let (orders, stock, notes) = (
        running.store(ORDERS_STORE),
        running.store(STOCK_STORE),
        running.store(NOTIFICATIONS_STORE),
    );
    eventually_async("order paid", || async {
        shop_app::status(&orders, &id).await.unwrap() == Some(Status::Paid)
    })
    .await;
    eventually_async("stock taken", || async {
        shop_app::stock_level(&stock, "BOOK-1").await.unwrap() == -2
    })
    .await;
    eventually_async("customer notified", || async {
        !shop_app::notifications(&notes, &id)
            .await
            .unwrap()
            .is_empty()
    })
    .await;

    let res = client()
        .get(format!("{url}/orders/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let order: Value = res.json().await.unwrap();
    assert_eq!(order["status"], "paid");
    assert_eq!(order["items"], json!([{"sku": "BOOK-1", "qty": 2}]));

    let sent = shop_app::notifications(&notes, &id).await.unwrap();
    let report = running.shutdown().await;
    assert!(report.is_clean(), "{report}");
    assert_eq!(sent.len(), 1, "one payment, one notification: {sent:?}");
}

async fn execution(url: &str, id: &str) -> Value {
    let res = client()
        .get(format!("{url}/_cloudfn/executions/order/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

/// A line there is not enough stock of fails the reservation: the lines
/// taken before it are put back, the charge is refunded (the compensation),
/// and the order ends `failed`.
#[tokio::test]
async fn orchestrated_order_out_of_stock_is_refunded_and_failed() {
    let running = start(shop_app::app(Shop::with_flow(0.0, Flow::Orchestrated))).await;
    let url = running.url();
    let (status, body) = post_order(
        &url,
        r#"{"customer":"bob@example.com","items":[{"sku":"BOOK-1","qty":1},{"sku":"PEN","qty":500}]}"#,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = body["id"].as_str().unwrap().to_owned();

    let (orders, stock, payments) = (
        running.store(ORDERS_STORE),
        running.store(STOCK_STORE),
        running.store(PAYMENTS_STORE),
    );
    eventually_async("order failed", || async {
        shop_app::status(&orders, &id).await.unwrap() == Some(Status::Failed)
    })
    .await;
    eventually_async("execution ended", || async {
        execution(&url, &id).await["status"] != "running"
    })
    .await;
    let refunded = payments.get::<Payment>(&id).await.unwrap().unwrap().value;
    assert_eq!(refunded, Payment::Refunded);
    assert_eq!(shop_app::stock_level(&stock, "BOOK-1").await.unwrap(), 0);
    assert_eq!(shop_app::stock_level(&stock, "PEN").await.unwrap(), 0);

    let record = execution(&url, &id).await;
    assert_eq!(record["status"], "failed", "{record:#}");
    let steps = record["steps"].as_object().unwrap();
    assert_eq!(steps["reserve"]["error"]["kind"], "conflict", "{record:#}");
    assert!(
        steps["compensate:charge"]["output"].is_object(),
        "{record:#}"
    );
    assert!(
        !steps.contains_key("compensate:reserve"),
        "a failed step has nothing to undo"
    );
    assert!(!steps.contains_key("notify"), "{record:#}");
    assert!(running.shutdown().await.is_clean());
}

/// The shop on the local runtime as its own process, its stores in `data`.
struct ShopProcess {
    child: std::process::Child,
    url: String,
}

impl ShopProcess {
    async fn start(data: &std::path::Path, charge_failure_rate: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(example_binary("shop"))
            .env("PORT", port.to_string())
            .env("SHOP_FLOW", "orchestrated")
            .env("SHOP_CHARGE_FAILURE_RATE", charge_failure_rate)
            .env("CLOUDFN_DATA_DIR", data)
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .env_remove("FUNCTIONS_CUSTOMHANDLER_PORT")
            .env_remove("K_SERVICE")
            .env_remove("FUNCTION_TARGET")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        eventually_async("the shop answers", || async {
            client()
                .get(format!("{url}/_cloudfn/executions"))
                .send()
                .await
                .is_ok()
        })
        .await;
        Self { child, url }
    }
}

impl Drop for ShopProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The orchestrator's process is killed (SIGKILL) while a step keeps
/// failing; started again, it resumes the execution from its record: the
/// done step is not run again, the failing one goes on from the attempts
/// it had, and the order is paid once.
#[tokio::test]
async fn a_killed_orchestrator_resumes_without_redoing_steps() {
    let data = tempfile::tempdir().unwrap();
    let mut first = ShopProcess::start(data.path(), "1").await;
    let (status, body) = post_order(&first.url, GOOD).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = body["id"].as_str().unwrap().to_owned();
    // The charge has failed and waits out its backoff (200 ms, then 400 ms,
    // 800 ms: its fourth attempt is its last, 1.4 s after the first).
    eventually_async("a charge attempted", || async {
        let record = execution(&first.url, &id).await;
        let charge = &record["steps"]["charge"];
        assert!(
            charge["ended"].is_null(),
            "the process is to be killed before the charge gives up: {record:#}"
        );
        charge["attempts"].as_u64() >= Some(1)
    })
    .await;
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let before = execution_in(data.path(), &id).await;
    drop(first);

    let second = ShopProcess::start(data.path(), "0").await;
    eventually_async("execution ended", || async {
        execution(&second.url, &id).await["status"] != "running"
    })
    .await;
    let after = execution(&second.url, &id).await;
    assert_eq!(after["status"], "succeeded", "{after:#}");
    let steps = &after["steps"];
    assert_eq!(
        steps["validate"], before["steps"]["validate"],
        "validate ran once"
    );
    assert_eq!(steps["validate"]["attempts"], 1);
    let attempted = before["steps"]["charge"]["attempts"].as_u64().unwrap();
    assert_eq!(
        steps["charge"]["attempts"],
        attempted + 1,
        "the charge went on from the attempts it had"
    );
    let order: Value = client()
        .get(format!("{}/orders/{id}", second.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(order["status"], "paid");
}

/// The execution `id` as the stopped shop's stores in `data` hold it.
async fn execution_in(data: &std::path::Path, id: &str) -> Value {
    let stores = cloudfn::local::FileStore::open(data).unwrap();
    let services = shop_app::app(Shop::new(0.0)).services(
        "local",
        std::sync::Arc::new(cloudfn::messaging::NoMessaging),
        std::sync::Arc::new(cloudfn::messaging::NoMessaging),
        std::sync::Arc::new(stores),
    );
    services
        .store(cloudfn::workflow::EXECUTIONS_STORE)
        .get::<Value>(&format!("order/{id}"))
        .await
        .unwrap()
        .expect("the execution is recorded")
        .value
}
