//! Signed requests reach Azurite's Queue and Table services, and a request
//! signed with the wrong key is refused.

use azure_core::http::{
    Context, Method, Pipeline, PipelineSendOptions, Request, StatusCode, Url, headers::HeaderName,
};
use cloudfn_azure::client::{DEVELOPMENT_ACCOUNT, Service, StorageAccount, pipeline};

use crate::support::{azurite, unique};

async fn send(pipeline: &Pipeline, mut request: Request) -> (StatusCode, String) {
    let options = PipelineSendOptions {
        skip_checks: true,
        ..Default::default()
    };
    let response = pipeline
        .send(&Context::new(), &mut request, Some(options))
        .await
        .expect("the request is sent");
    let status = response.status();
    let body = String::from_utf8_lossy(&response.into_body()).into_owned();
    (status, body)
}

fn under(base: &Url, path: &str) -> Url {
    Url::parse(&format!("{}/{path}", base.as_str().trim_end_matches('/'))).unwrap()
}

#[tokio::test]
async fn signed_queue_requests_round_trip_a_message() {
    let Some(account) = azurite() else { return };
    let queues = pipeline(&account, Service::Queue);
    let name = unique("signed-");
    let queue = under(account.queue_endpoint(), &name);

    let (status, body) = send(&queues, Request::new(queue.clone(), Method::Put)).await;
    assert_eq!(status, StatusCode::Created, "{body}");

    let mut put = Request::new(under(&queue, "messages"), Method::Post);
    put.insert_header(HeaderName::from_static("content-type"), "application/xml");
    put.set_body("<QueueMessage><MessageText>aGVsbG8=</MessageText></QueueMessage>");
    let (status, body) = send(&queues, put).await;
    assert_eq!(status, StatusCode::Created, "{body}");

    let (status, body) = send(
        &queues,
        Request::new(under(&queue, "messages?numofmessages=1"), Method::Get),
    )
    .await;
    assert_eq!(status, StatusCode::Ok, "{body}");
    assert!(
        body.contains("<MessageText>aGVsbG8=</MessageText>"),
        "{body}"
    );
    assert!(body.contains("<DequeueCount>1</DequeueCount>"), "{body}");
}

#[tokio::test]
async fn signed_table_requests_create_a_table() {
    let Some(account) = azurite() else { return };
    let tables = pipeline(&account, Service::Table);
    let name = unique("signed");
    let mut create = Request::new(under(account.table_endpoint(), "Tables"), Method::Post);
    create.insert_header(HeaderName::from_static("content-type"), "application/json");
    create.insert_header(
        HeaderName::from_static("accept"),
        "application/json;odata=nometadata",
    );
    create.set_body(format!(r#"{{"TableName":"{name}"}}"#));
    let (status, body) = send(&tables, create).await;
    assert_eq!(status, StatusCode::Created, "{body}");
}

/// Azurite checks signatures, so these tests prove the signing, not just
/// the transport.
#[tokio::test]
async fn a_request_signed_with_another_key_is_refused() {
    let Some(account) = azurite() else { return };
    let wrong = StorageAccount::from_connection_string(&format!(
        "DefaultEndpointsProtocol=http;AccountName={};AccountKey=d3Jvbmcta2V5LXdyb25nLWtleQ==;QueueEndpoint={}",
        DEVELOPMENT_ACCOUNT.0,
        account.queue_endpoint()
    ))
    .unwrap();
    let queues = pipeline(&wrong, Service::Queue);
    let queue = under(account.queue_endpoint(), "never-made");
    let (status, body) = send(&queues, Request::new(queue, Method::Put)).await;
    assert_eq!(status, StatusCode::Forbidden, "{body}");
}
