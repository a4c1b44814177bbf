//! AWS's own: the dev stack answers Lambda's Invoke API, and
//! `LambdaInvoker` reaches functions through it (the shop's contract on AWS
//! is in the contract suite).

use cloudfn::aws::emulate::{DevOptions, DevStack};
use serde_json::{Value, json};

use crate::{
    shop_app::{self, Shop},
    support::{dynamodb, example_binary, localstack},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_answer_the_lambda_invoke_api() {
    let (Some(url), Some(dynamodb_url)) = (localstack(), dynamodb()) else {
        return;
    };
    let mut options = DevOptions::new(
        shop_app::app(Shop::new(0.0)).spec(),
        example_binary("shop"),
        &url,
    );
    options.prefix = format!("invoke-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    options.env = vec![("RUST_LOG".into(), "warn".into())];
    options.dynamodb_endpoint_url = Some(dynamodb_url);
    let stack = DevStack::start(options).await.expect("the stack starts");
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
