//! The shop's contract, end to end over HTTP.

use std::sync::Arc;

use cloudfn::{OutgoingMessage, messaging::dead_letter as dl};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    shop_app::{self, ORDERS, ORDERS_DLQ, Shop, Status},
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

#[tokio::test]
async fn bad_orders_get_errors_naming_the_field() {
    let running = start(shop_app::app(Shop::new(0.0))).await;
    let url = running.url();
    let cases = [
        (
            r#"{"customer":"ada@example.com","items":[{"sku":"B","qty":2}"#,
            400,
            None,
        ),
        (r#"{"customer":"ada@example.com"}"#, 400, Some("items")),
        (
            r#"{"customer":"ada@example.com","items":[{"sku":"B","qty":"two"}]}"#,
            400,
            Some("items[0].qty"),
        ),
        (r#"{"customer":7,"items":[]}"#, 400, Some("customer")),
        (
            r#"{"customer":"ada@example.com","items":[]}"#,
            422,
            Some("items"),
        ),
        (
            r#"{"customer":"ada@example.com","items":[{"sku":"A","qty":1},{"sku":"B","qty":0}]}"#,
            422,
            Some("items[1].qty"),
        ),
    ];
    for (body, status, field) in cases {
        let (got, error) = post_order(&url, body).await;
        assert_eq!(got.as_u16(), status, "{body} -> {error}");
        assert_eq!(error["error"]["field"].as_str(), field, "{body} -> {error}");
        assert!(!error["error"]["message"].as_str().unwrap().is_empty());
    }
    let res = client()
        .get(format!("{url}/orders/no-such-order"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let report = running.shutdown().await;
    assert!(
        report.is_clean(),
        "rejected orders must not be enqueued: {report}"
    );
}

#[tokio::test]
async fn a_charge_that_keeps_failing_marks_the_order_failed_and_dead_letters_it() {
    let shop = Shop::new(1.0);
    let running = start(shop_app::app(shop.clone())).await;
    let (_, body) = post_order(&running.url(), GOOD).await;
    let id = body["id"].as_str().unwrap().to_owned();

    eventually("order in the dead-letter queue", || {
        running.broker().depth(ORDERS_DLQ).total() == 1
    })
    .await;
    assert_eq!(shop.status(&id), Some(Status::Failed));
    let dead = &running.broker().peek(ORDERS_DLQ)[0];
    assert_eq!(
        dead.attribute(dl::ATTEMPTS),
        Some("4"),
        "charge allows 4 attempts"
    );
    assert!(
        dead.attribute(dl::ERROR)
            .unwrap()
            .contains("payment provider timed out")
    );
    assert!(String::from_utf8_lossy(&dead.body).contains(&id));
    assert!(shop.notifications().is_empty());
    running.shutdown().await;
}

#[tokio::test]
async fn a_poison_order_goes_to_the_dead_letter_queue_without_retries() {
    let shop = Shop::new(0.0);
    let running = start(shop_app::app(Arc::clone(&shop))).await;
    running
        .queue(ORDERS)
        .send_message(OutgoingMessage::new(
            r#"{"id":"x","customer":"c@d.e","items":"lots"}"#,
        ))
        .await
        .unwrap();
    eventually("poison dead-lettered", || {
        running.broker().depth(ORDERS_DLQ).total() == 1
    })
    .await;
    let dead = &running.broker().peek(ORDERS_DLQ)[0];
    assert_eq!(
        dead.attribute(dl::ATTEMPTS),
        Some("1"),
        "a permanent error is not retried"
    );
    let error = dead.attribute(dl::ERROR).unwrap();
    assert!(
        error.starts_with("bad_input") && error.contains("items"),
        "{error}"
    );
    assert_eq!(dead.attribute(dl::FUNCTION), Some("charge"));
    assert_eq!(running.broker().depth(ORDERS).total(), 0);
    running.shutdown().await;
}
