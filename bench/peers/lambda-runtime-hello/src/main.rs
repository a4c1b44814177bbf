//! hello on lambda_runtime: an HTTP API v2 event in, the same JSON answer as
//! cloudfn's `examples/hello.rs` out.

use aws_lambda_events::{
    apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse},
    encodings::Body,
};
use lambda_runtime::{Error, LambdaEvent, service_fn};

async fn hello(event: LambdaEvent<ApiGatewayV2httpRequest>) -> Result<ApiGatewayV2httpResponse, Error> {
    let name = event
        .payload
        .query_string_parameters
        .first("name")
        .unwrap_or("world")
        .to_owned();
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = 200;
    response.headers.insert("content-type", "application/json".parse()?);
    response.body = Some(Body::Text(serde_json::json!({ "message": format!("hello, {name}") }).to_string()));
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(hello)).await
}
