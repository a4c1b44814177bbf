//! The DynamoDB store keeps every promise a store makes, on moto.

use std::sync::Arc;

use cloudfn_aws::client::ClientBuilder;
use cloudfn_core::{App, Function, HttpRequest, HttpResponse, Method, store::conformance};

use crate::support::{moto, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dynamodb_store_keeps_every_promise() {
    let Some(url) = moto() else { return };
    let app = App::new("t").function(
        Function::http("f", Method::Get, "/", |_: HttpRequest, _| async {
            Ok(HttpResponse::new(200))
        })
        .uses_store("notes"),
    );
    let prefix = unique("store");
    let clients = ClientBuilder::from_env()
        .endpoint_url(&url)
        .region("us-east-1")
        .test_credentials();
    let dynamodb = clients.dynamodb();
    let tables = cloudfn_aws::emulate::create_tables(dynamodb.sdk().await, &app.spec(), &prefix)
        .await
        .unwrap();
    // The client names tables by store; here the store is the table itself.
    conformance::check(Arc::new(dynamodb), &tables["notes"], "").await;
}
