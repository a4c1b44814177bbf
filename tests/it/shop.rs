//! The shop on the local runtime: what the reacting functions did, seen in
//! the shop's stores, and a clean shutdown. The shop's contract on every provider is in
//! `contract/shop.rs`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    shop_app::{self, NOTIFICATIONS_STORE, ORDERS_STORE, STOCK_STORE, Shop, Status},
    support::{client, eventually_async, start},
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
    let running = start(shop_app::app(Shop::new(0.0))).await;
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
