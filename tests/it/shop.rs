//! The shop on the local runtime, where every function shares one process:
//! what the reacting functions did, seen in the shop's own state, and a
//! clean shutdown. The shop's contract on every provider is in
//! `contract/shop.rs`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    shop_app::{self, Shop, Status},
    support::{client, eventually, start},
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
    let shop = Shop::new(0.0);
    let running = start(shop_app::app(shop.clone())).await;
    let url = running.url();

    let (status, body) = post_order(&url, GOOD).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["status"], "accepted");
    let id = body["id"].as_str().unwrap().to_owned();

    eventually("order paid", || shop.status(&id) == Some(Status::Paid)).await;
    eventually("stock taken", || shop.stock("BOOK-1") == -2).await;
    eventually("customer notified", || {
        shop.notifications().iter().any(|n| n.contains(&id))
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

    let report = running.shutdown().await;
    assert!(report.is_clean(), "{report}");
    assert_eq!(
        shop.notifications().len(),
        1,
        "one payment, one notification"
    );
}
