//! What the integration tests share: the Pub/Sub emulator the test command
//! started, its REST surface for setting up topics and subscriptions and
//! pulling what arrived, and fresh names.

use std::time::{Duration, Instant};

use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::{Value, json};

/// The project the tests use on the emulator.
pub const PROJECT: &str = "shop-dev";

/// The emulator's `HOST:PORT`, when the test command started it. Without
/// it the test skips loudly, unless `TEST_INTEGRATION=1` says it must run
/// (and the test command found no Google Cloud SDK to start it from).
pub fn pubsub_emulator() -> Option<String> {
    emulator("CLOUDFN_TEST_PUBSUB_HOST", "the Pub/Sub emulator")
}

/// The Firestore emulator's `HOST:PORT`, when the test command started it;
/// skipped as [`pubsub_emulator`] is.
pub fn firestore_emulator() -> Option<String> {
    emulator("CLOUDFN_TEST_FIRESTORE_HOST", "the Firestore emulator")
}

fn emulator(variable: &str, name: &str) -> Option<String> {
    if let Ok(host) = std::env::var(variable) {
        return Some(host);
    }
    let integration = std::env::var("TEST_INTEGRATION").as_deref() == Ok("1");
    let no_sdk = std::env::var("CLOUDFN_TEST_NO_GCLOUD").as_deref() == Ok("1");
    assert!(
        !integration || no_sdk,
        "TEST_INTEGRATION=1 but {variable} is unset: run scripts/test"
    );
    eprintln!("SKIPPED: {name} is not running (scripts/test starts it)");
    None
}

/// A name no other test (or run) uses: `prefix` and 10 random hex digits.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// The emulator's REST surface, as `gcloud` would drive it.
pub struct Emulator {
    base: String,
    http: reqwest::Client,
}

/// One message pulled from a subscription.
#[derive(Debug)]
pub struct Pulled {
    pub data: Vec<u8>,
    pub attributes: Value,
    pub ordering_key: Option<String>,
}

impl Emulator {
    pub fn new(host: &str) -> Self {
        cloudfn_gcp::client::install_tls();
        Self {
            base: format!("http://{host}/v1/projects/{PROJECT}"),
            http: reqwest::Client::new(),
        }
    }

    async fn put(&self, path: &str, body: Value) {
        let response = self
            .http
            .put(format!("{}/{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert!(
            status.is_success(),
            "PUT {path}: {status} {}",
            response.text().await.unwrap()
        );
    }

    pub async fn create_topic(&self, topic: &str) {
        self.put(&format!("topics/{topic}"), json!({})).await;
    }

    /// A pull subscription to `topic`, ordered by key.
    pub async fn create_pull(&self, subscription: &str, topic: &str) {
        self.put(
            &format!("subscriptions/{subscription}"),
            json!({
                "topic": format!("projects/{PROJECT}/topics/{topic}"),
                "ackDeadlineSeconds": 10,
                "enableMessageOrdering": true,
            }),
        )
        .await;
    }

    /// A push subscription to `topic` delivering to `endpoint`, retried
    /// after a second.
    pub async fn create_push(&self, subscription: &str, topic: &str, endpoint: &str) {
        self.put(
            &format!("subscriptions/{subscription}"),
            json!({
                "topic": format!("projects/{PROJECT}/topics/{topic}"),
                "ackDeadlineSeconds": 10,
                "pushConfig": {"pushEndpoint": endpoint},
                "retryPolicy": {"minimumBackoff": "1s", "maximumBackoff": "1s"},
            }),
        )
        .await;
    }

    /// Pulls and acks what `subscription` holds, waiting up to `wait` for
    /// at least `count` messages.
    pub async fn pull(&self, subscription: &str, count: usize, wait: Duration) -> Vec<Pulled> {
        let url = format!("{}/subscriptions/{subscription}", self.base);
        let started = Instant::now();
        let mut pulled = Vec::new();
        while pulled.len() < count && started.elapsed() < wait {
            let answer: Value = self
                .http
                .post(format!("{url}:pull"))
                .json(&json!({"maxMessages": 100, "returnImmediately": true}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let received = answer["receivedMessages"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if received.is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let ack_ids: Vec<Value> = received.iter().map(|r| r["ackId"].clone()).collect();
            self.http
                .post(format!("{url}:acknowledge"))
                .json(&json!({ "ackIds": ack_ids }))
                .send()
                .await
                .unwrap();
            pulled.extend(received.iter().map(|r| {
                let message = &r["message"];
                Pulled {
                    data: STANDARD
                        .decode(message["data"].as_str().unwrap_or_default())
                        .unwrap(),
                    attributes: message["attributes"].clone(),
                    ordering_key: message["orderingKey"].as_str().map(str::to_owned),
                }
            }));
        }
        pulled
    }
}
