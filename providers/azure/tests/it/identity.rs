//! Managed identity: cloudfn's clients, configured as a deployed app's are
//! (`CLOUDFN_STORAGE__queueServiceUri` and `__tableServiceUri`, the App
//! Service identity endpoint in `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`),
//! reach Storage with bearer tokens and no key.
//!
//! Storage is a second Azurite over HTTPS that takes tokens and checks each
//! one's issuer, audience and lifetime (not its signature). The identity
//! endpoint is a stand-in speaking App Service's protocol, minting unsigned
//! tokens for the resource asked. The clients read the process's
//! environment, so they run in a child process: this test binary, running
//! its ignored `child_*` test.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use bytes::Bytes;
use cloudfn_azure::client::{StorageQueues, TableStore};
use cloudfn_core::{
    ErrorKind, OutgoingMessage,
    provider::QueueClient,
    store::{Condition, StoreClient, Version, Write},
};
use http_body_util::Full;
use hyper::{Request, Response, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;

use crate::support::unique;

const IDENTITY_HEADER: &str = "identity-header-of-this-test";

/// The Azurite that takes tokens, when the test command started it: its
/// queue and table URLs and the certificate to trust.
fn oauth_azurite() -> Option<(String, String, String)> {
    let var = |name: &str| std::env::var(format!("CLOUDFN_TEST_AZURITE_OAUTH_{name}")).ok();
    match (var("QUEUE_URL"), var("TABLE_URL"), var("CERT")) {
        (Some(queue), Some(table), Some(cert)) => Some((queue, table, cert)),
        _ => {
            assert_ne!(
                std::env::var("TEST_INTEGRATION").as_deref(),
                Ok("1"),
                "TEST_INTEGRATION=1 but CLOUDFN_TEST_AZURITE_OAUTH_* are unset: run scripts/test"
            );
            eprintln!(
                "SKIPPED: Azurite with bearer tokens is not running (scripts/test starts it)"
            );
            None
        }
    }
}

/// A JWT as Entra ID shapes one, unsigned: what Azurite checks is its
/// issuer, audience and lifetime.
fn token_for(audience: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let header = serde_json::json!({ "alg": "RS256", "typ": "JWT" });
    let claims = serde_json::json!({
        "aud": audience,
        "iss": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
        "iat": now - 60,
        "nbf": now - 60,
        "exp": now + 3600,
        "oid": "00000000-0000-0000-0000-00000000cafe",
        "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
    });
    let part = |value: &serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
    format!(
        "{}.{}.{}",
        part(&header),
        part(&claims),
        URL_SAFE_NO_PAD.encode("unsigned")
    )
}

/// The identity endpoint: answers App Service's token requests (`GET
/// ?api-version=2019-08-01&resource=…` with `X-IDENTITY-HEADER`) with a
/// token for the resource asked, or for `audience` when given; keeps each
/// request's query and whether its header was right.
async fn identity_endpoint(
    audience: Option<&'static str>,
) -> (String, Arc<Mutex<Vec<(HashMap<String, String>, bool)>>>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let url = format!("http://{}/msi/token", listener.local_addr().unwrap());
    let asked = Arc::new(Mutex::new(Vec::new()));
    let seen = asked.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let query: HashMap<String, String> =
                        url::form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
                            .into_owned()
                            .collect();
                    let header_right = request
                        .headers()
                        .get("x-identity-header")
                        .is_some_and(|v| v == IDENTITY_HEADER);
                    let resource = query.get("resource").cloned().unwrap_or_default();
                    seen.lock().unwrap().push((query, header_right));
                    let expires = chrono::Utc::now().timestamp() + 3600;
                    let body = serde_json::json!({
                        "access_token": token_for(audience.unwrap_or(&resource)),
                        "expires_on": expires.to_string(),
                        "resource": resource,
                        "token_type": "Bearer",
                        "client_id": "00000000-0000-0000-0000-00000000beef",
                    });
                    let status = if header_right { 200 } else { 401 };
                    async move {
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(body.to_string())))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, asked)
}

/// Runs `child` of this binary with the app settings of a deployed app
/// that reaches Storage with its identity; its success.
fn run_child(child: &str, identity: &str, (queue, table, cert): &(String, String, String)) {
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            &format!("identity::{child}"),
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env_remove("AzureWebJobsStorage")
        .env("CLOUDFN_STORAGE__queueServiceUri", queue)
        .env("CLOUDFN_STORAGE__tableServiceUri", table)
        .env("IDENTITY_ENDPOINT", identity)
        .env("IDENTITY_HEADER", IDENTITY_HEADER)
        .env("SSL_CERT_FILE", cert)
        .status()
        .unwrap();
    assert!(status.success(), "{child} failed: see its output above");
}

#[tokio::test]
async fn queues_and_tables_are_reached_with_the_apps_managed_identity() {
    let Some(azurite) = oauth_azurite() else {
        return;
    };
    let (identity, asked) = identity_endpoint(None).await;
    let child = tokio::task::spawn_blocking(move || {
        run_child("child_uses_queues_and_tables", &identity, &azurite)
    });
    child.await.unwrap();
    let asked = asked.lock().unwrap();
    assert!(!asked.is_empty(), "no token was asked for");
    for (query, header_right) in asked.iter() {
        assert!(header_right, "X-IDENTITY-HEADER was not sent");
        assert_eq!(query["resource"], "https://storage.azure.com");
        assert_eq!(query["api-version"], "2019-08-01");
    }
    // One token serves every request until it nears expiry: one per
    // client (queues, tables), not one per request.
    assert!(asked.len() <= 2, "{} tokens for two clients", asked.len());
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused_as_forbidden() {
    let Some(azurite) = oauth_azurite() else {
        return;
    };
    let (identity, _) = identity_endpoint(Some("https://management.azure.com")).await;
    tokio::task::spawn_blocking(move || run_child("child_is_refused", &identity, &azurite))
        .await
        .unwrap();
}

fn write(value: &'static str) -> Write {
    Write {
        value: Bytes::from_static(value.as_bytes()),
        version: Version::next(),
        condition: Condition::Absent,
        ttl: None,
    }
}

#[tokio::test]
#[ignore = "run by queues_and_tables_are_reached_with_the_apps_managed_identity, in its environment"]
async fn child_uses_queues_and_tables() {
    let queues = StorageQueues::from_env().unwrap();
    let queue = unique("mi-");
    queues.create(&queue).await.unwrap();
    let id = queues
        .send(
            &queue,
            OutgoingMessage::new("paid").with_attribute("order", "o-1"),
        )
        .await
        .unwrap();
    let received = queues
        .receive(&queue, 1, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].message.id, id);
    assert_eq!(&received[0].message.body[..], b"paid");
    assert_eq!(received[0].message.attributes["order"], "o-1");

    let tables = TableStore::from_env().unwrap();
    let store = unique("mi");
    tables.create_table(&store).await.unwrap();
    assert!(tables.put(&store, "k", write("v")).await.unwrap());
    assert!(
        !tables.put(&store, "k", write("w")).await.unwrap(),
        "if absent"
    );
    let read = tables.get(&store, "k").await.unwrap().unwrap();
    assert_eq!(&read.value[..], b"v");
}

#[tokio::test]
#[ignore = "run by a_token_for_another_audience_is_refused_as_forbidden, in its environment"]
async fn child_is_refused() {
    let queues = StorageQueues::from_env().unwrap();
    let error = queues.create(&unique("mi-")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Forbidden, "{error}");
    assert!(error.message().contains("AuthenticationFailed"), "{error}");
}
