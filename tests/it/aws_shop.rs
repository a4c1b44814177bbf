//! The shop on the AWS adapter: its real bootstrap binary, one process per
//! function behind the Lambda Runtime API, fed by real LocalStack queues and
//! topics through the emulated HTTP API and event source mappings.

use std::time::{Duration, Instant};

use cloudfn::{
    aws::{
        emulate::{DevOptions, DevStack},
        sdk::{config as aws_config, sns as aws_sdk_sns, sqs as aws_sdk_sqs},
    },
    messaging::dead_letter,
};
use serde_json::{Value, json};

use crate::{
    shop_app::{self, ORDER_PAID, ORDERS, ORDERS_DLQ, Shop},
    support::{example_binary, localstack},
};

async fn start(failure_rate: &str) -> (DevStack, String) {
    let url = localstack().expect("checked by the caller");
    let prefix = format!("shop-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut options = DevOptions::new(
        shop_app::app(Shop::new(0.0)).spec(),
        example_binary("shop"),
        &url,
    );
    options.prefix = prefix;
    options.env = vec![
        ("SHOP_CHARGE_FAILURE_RATE".into(), failure_rate.into()),
        ("RUST_LOG".into(), "warn".into()),
    ];
    (
        DevStack::start(options).await.expect("the stack starts"),
        url,
    )
}

async fn receive(stack: &DevStack, url: &str, count: usize) -> Vec<aws_sdk_sqs::types::Message> {
    let give_up = Instant::now() + Duration::from_secs(60);
    let mut got = Vec::new();
    while got.len() < count {
        assert!(
            Instant::now() < give_up,
            "only {} of {count} messages reached {url}",
            got.len()
        );
        let out = stack
            .sqs()
            .receive_message()
            .queue_url(url)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        for m in out.messages.unwrap_or_default() {
            stack
                .sqs()
                .delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle.clone().unwrap())
                .send()
                .await
                .unwrap();
            got.push(m);
        }
    }
    got
}

async fn post_order(stack: &DevStack, body: &str) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(format!("{}/orders", stack.http_url()))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shop_runs_on_lambda_against_localstack() {
    if localstack().is_none() {
        return;
    }
    let (stack, url) = start("0").await;

    // Watch order-paid from outside, as another service would.
    let config = cloudfn::aws::client::sdk_loader()
        .endpoint_url(&url)
        .region(aws_config::Region::new("us-east-1"))
        .test_credentials()
        .load()
        .await;
    let watcher = stack
        .sqs()
        .create_queue()
        .queue_name(format!("watch-{}", uuid::Uuid::new_v4().simple()))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let watcher_arn = stack
        .sqs()
        .get_queue_attributes()
        .queue_url(&watcher)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()
        .remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .unwrap();
    aws_sdk_sns::Client::new(&config)
        .subscribe()
        .topic_arn(stack.topic_arn(ORDER_PAID).unwrap())
        .protocol("sqs")
        .endpoint(watcher_arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .unwrap();

    let (status, body) = post_order(
        &stack,
        r#"{"customer":"ada@example.com","items":[{"sku":"BOOK-1","qty":2}]}"#,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();

    let paid = receive(&stack, &watcher, 1).await;
    let paid: Value = serde_json::from_str(paid[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(
        paid["order_id"],
        json!(id),
        "charge consumed the order from SQS and published order-paid"
    );
    assert_eq!(paid["items"], json!([{"sku": "BOOK-1", "qty": 2}]));

    let (status, body) = post_order(
        &stack,
        r#"{"customer":"ada@example.com","items":[{"sku":"B","qty":"two"}]}"#,
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("items[0].qty"))
    );

    // A poison order goes to the dead-letter queue at once, with its error.
    stack
        .sqs()
        .send_message()
        .queue_url(stack.queue_url(ORDERS).unwrap())
        .message_body(r#"{"id":"x","customer":"c@d.e","items":"lots"}"#)
        .send()
        .await
        .unwrap();
    let dead = receive(&stack, stack.queue_url(ORDERS_DLQ).unwrap(), 1).await;
    assert!(dead[0].body.as_deref().unwrap().contains("lots"));
    let error = dead[0].message_attributes.as_ref().unwrap()[dead_letter::ERROR]
        .string_value
        .clone()
        .unwrap();
    assert!(
        error.starts_with("bad_input") && error.contains("items"),
        "{error}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_that_never_charges_is_redriven_to_the_dead_letter_queue() {
    if localstack().is_none() {
        return;
    }
    let (stack, _) = start("1").await;
    let (status, body) = post_order(
        &stack,
        r#"{"customer":"bob@example.com","items":[{"sku":"PEN","qty":1}]}"#,
    )
    .await;
    assert_eq!(status, 202);
    let id = body["id"].as_str().unwrap();
    // Four failed receives (the charge policy's attempts = the queue's
    // maxReceiveCount), then LocalStack's redrive moves it.
    let dead = receive(&stack, stack.queue_url(ORDERS_DLQ).unwrap(), 1).await;
    assert!(dead[0].body.as_deref().unwrap().contains(id));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_answer_the_lambda_invoke_api() {
    if localstack().is_none() {
        return;
    }
    let (stack, _) = start("0").await;
    let invoker = cloudfn::aws::client::ClientBuilder::from_env()
        .endpoint_url(stack.http_url())
        .region("us-east-1")
        .test_credentials()
        .lambda();

    let request = cloudfn::HttpRequest::new(http::Method::POST, "/orders")
        .with_header("content-type", "application/json")
        .with_body(r#"{"customer":"ada@example.com","items":[{"sku":"BOOK-1","qty":1}]}"#);
    let event = cloudfn::aws::events::http::v2_event(&request, "POST /orders", "req-1");
    let out: Value = invoker.invoke("checkout", &event).await.unwrap();
    assert_eq!(out["statusCode"], 202, "{out}");

    let err = invoker
        .invoke::<_, Value>("charge", &json!({"not": "an SQS event"}))
        .await
        .unwrap_err();
    assert!(err.message().contains("cannot read this event"), "{err}");

    let tick = json!({"version": "0", "id": "t-1", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "000000000000", "time": "2026-11-26T12:00:00Z", "region": "us-east-1", "resources": [], "detail": {}});
    invoker.invoke_async("stock-report", &tick).await.unwrap();

    let err = invoker
        .invoke::<_, Value>("no-such-function", &json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), cloudfn::ErrorKind::NotFound, "{err}");
    stack.stop().await;
}
