//! The shop's contract (`examples/shop`), on every provider.

use std::time::Duration;

use cloudfn::{Capabilities, OutgoingMessage, messaging::dead_letter};
use futures::FutureExt;
use reqwest::Method;
use serde_json::{Value, json};

use super::{Harness, Scenario, anywhere};
use crate::shop_app::{ORDER_PAID, ORDERS, ORDERS_DLQ};

const PATIENCE: Duration = Duration::from_secs(60);

const GOOD: &str = r#"{"customer":"ada@example.com","items":[{"sku":"BOOK-1","qty":2}]}"#;

/// The shop with charges that succeed.
pub const ALL: &[Scenario] = &[
    Scenario {
        name: "shop: order accepted, charged, order-paid published, in the request's trace",
        needs: anywhere,
        run: |h| order_paid_is_published(h).boxed(),
    },
    Scenario {
        name: "shop: the order's status reads paid",
        needs: anywhere,
        run: |h| status_reads_paid(h).boxed(),
    },
    Scenario {
        name: "shop: bad orders → 400/422 naming the field; unknown order → 404",
        needs: anywhere,
        run: |h| bad_orders(h).boxed(),
    },
    Scenario {
        name: "shop: poison order → orders-dlq at once, with its error",
        needs: anywhere,
        run: |h| poison_order(h).boxed(),
    },
];

/// The shop with a payment provider that always times out.
pub const DECLINING: &[Scenario] = &[Scenario {
    name: "shop: a charge that keeps failing → orders-dlq after 4 attempts",
    needs: anywhere,
    run: |h| charge_keeps_failing(h).boxed(),
}];

/// The shop with its order flow run by an orchestrator
/// (`SHOP_FLOW=orchestrated`): what a customer sees is the same.
pub const ORCHESTRATED: &[Scenario] = &[
    Scenario {
        name: "shop, orchestrated: the order's status reads paid",
        needs: runs_workflows,
        run: |h| status_reads_paid(h).boxed(),
    },
    Scenario {
        name: "shop, orchestrated: an order out of stock is compensated and reads failed",
        needs: runs_workflows,
        run: |h| out_of_stock_reads_failed(h).boxed(),
    },
];

/// Whether the provider's workflow engine runs here.
fn runs_workflows(caps: &Capabilities) -> Result<(), &'static str> {
    match caps.provider {
        // cloudfn-aws's own tests run the rendered ASL there, with SQS steps.
        "aws" => Err("LocalStack's Step Functions runs no Lambda without Docker"),
        "gcp" => Err("Google Cloud Workflows has no emulator"),
        _ => Ok(()),
    }
}

async fn post_order(h: &Harness, body: &str) -> (u16, Value) {
    let response = h
        .http(Method::POST, "/orders")
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn accepted(h: &Harness) -> String {
    let (status, body) = post_order(h, GOOD).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "accepted");
    body["id"].as_str().expect("an order id").to_owned()
}

/// The order's trace, from the customer's request through checkout, the
/// `orders` queue and charge to `order-paid`: one trace at every hop.
async fn order_paid_is_published(h: &Harness) {
    let watcher = h.watch(ORDER_PAID).await;
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let response = h
        .http(Method::POST, "/orders")
        .header("content-type", "application/json")
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .body(GOOD)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    let id = body["id"].as_str().expect("an order id").to_owned();
    let message = h
        .wait_for(&watcher, "order-paid for the order", PATIENCE, |all| {
            all.iter()
                .find(|m| {
                    serde_json::from_slice::<Value>(&m.body)
                        .is_ok_and(|paid| paid["order_id"] == json!(id))
                })
                .cloned()
        })
        .await;
    let paid: Value = serde_json::from_slice(&message.body).unwrap();
    assert_eq!(paid["items"], json!([{"sku": "BOOK-1", "qty": 2}]));
    assert_eq!(paid["customer"], "ada@example.com");
    let traceparent = message.attribute("traceparent").unwrap_or_default();
    assert_eq!(
        traceparent.split('-').nth(1),
        Some(trace.as_str()),
        "order-paid goes on in the customer's trace: {:?}",
        message.attributes
    );
    assert!(message.attribute("cloudfn-correlation-id").is_some());
}

async fn status_reads_paid(h: &Harness) {
    let id = accepted(h).await;
    let order = settled(h, &id).await;
    assert_eq!(order["status"], "paid", "{order}");
    assert_eq!(order["items"], json!([{"sku": "BOOK-1", "qty": 2}]));
}

/// Stock runs out on the second line: the reservation fails for good, the
/// charge is refunded (not visible from outside) and the order fails.
async fn out_of_stock_reads_failed(h: &Harness) {
    let sku = h.key("PEN");
    let body = json!({
        "customer": "bob@example.com",
        "items": [{"sku": "BOOK-1", "qty": 1}, {"sku": sku, "qty": 500}],
    });
    let (status, body) = post_order(h, &body.to_string()).await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().expect("an order id");
    let order = settled(h, id).await;
    assert_eq!(order["status"], "failed", "{order}");
}

/// The order `id` once it is no longer `accepted`.
async fn settled(h: &Harness, id: &str) -> Value {
    let give_up = tokio::time::Instant::now() + PATIENCE;
    loop {
        let response = h
            .http(Method::GET, &format!("/orders/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let order: Value = response.json().await.unwrap();
        if order["status"] != "accepted" {
            return order;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "still accepted: {order}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn bad_orders(h: &Harness) {
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
        let (got, error) = post_order(h, body).await;
        assert_eq!(got, status, "{body} -> {error}");
        assert_eq!(error["error"]["field"].as_str(), field, "{body} -> {error}");
        assert!(!error["error"]["message"].as_str().unwrap().is_empty());
    }
    let unknown = h
        .http(Method::GET, "/orders/no-such-order")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

async fn poison_order(h: &Harness) {
    let key = h.key("poison");
    let body = json!({"id": key, "customer": "c@d.e", "items": "lots"}).to_string();
    h.send(ORDERS, vec![OutgoingMessage::new(body)]).await;
    let dead = h
        .wait_for(
            ORDERS_DLQ,
            "the poison order dead-lettered",
            PATIENCE,
            |all| {
                all.iter()
                    .find(|m| String::from_utf8_lossy(&m.body).contains(&key))
                    .cloned()
            },
        )
        .await;
    assert_eq!(
        dead.attribute(dead_letter::ATTEMPTS),
        Some("1"),
        "not retried"
    );
    assert_eq!(dead.attribute(dead_letter::FUNCTION), Some("charge"));
    assert_eq!(dead.attribute(dead_letter::SOURCE), Some(ORDERS));
    let error = dead.attribute(dead_letter::ERROR).unwrap_or_default();
    assert!(
        error.starts_with("bad_input") && error.contains("items"),
        "{error}"
    );
}

async fn charge_keeps_failing(h: &Harness) {
    let id = accepted(h).await;
    let dead = h
        .wait_for(ORDERS_DLQ, "the order dead-lettered", PATIENCE, |all| {
            all.iter()
                .find(|m| String::from_utf8_lossy(&m.body).contains(&id))
                .cloned()
        })
        .await;
    assert_eq!(
        dead.attribute(dead_letter::ATTEMPTS),
        Some("4"),
        "charge allows 4 attempts"
    );
    let error = dead.attribute(dead_letter::ERROR).unwrap_or_default();
    assert!(error.contains("payment provider timed out"), "{error}");
}
