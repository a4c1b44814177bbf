//! The clients speak TLS to an `https://` endpoint, as Azure's are: the
//! first bytes a Storage client sends there are a TLS handshake record.

use std::time::Duration;

use cloudfn_azure::client::{DEVELOPMENT_ACCOUNT, StorageAccount, StorageQueues};
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn storage_requests_to_an_https_endpoint_open_with_a_tls_handshake() {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let (name, key) = DEVELOPMENT_ACCOUNT;
    let account = StorageAccount::from_connection_string(&format!(
        "DefaultEndpointsProtocol=https;AccountName={name};AccountKey={key};QueueEndpoint=https://127.0.0.1:{port}/{name}"
    ))
    .unwrap();
    let queues = StorageQueues::new(&account).as_given();
    let request = tokio::spawn(async move { queues.create("tls-check").await });
    let (mut stream, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
        .await
        .expect("the client connects")
        .unwrap();
    let mut first = [0u8; 1];
    stream.read_exact(&mut first).await.unwrap();
    // 0x16: a TLS handshake record (the ClientHello), not `P` of `PUT`.
    assert_eq!(first[0], 0x16, "the client did not open with TLS");
    request.abort();
}
