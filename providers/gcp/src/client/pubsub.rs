//! Sending to queues and publishing to topics on Pub/Sub, with Google's
//! official client: one gRPC connection, a batching publisher per topic
//! (made on first use, kept for the process), retries on UNAVAILABLE and
//! RESOURCE_EXHAUSTED by the client's policy.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use cloudfn_core::{
    Error, OutgoingMessage,
    provider::{QueueClient, TopicClient},
};
use google_cloud_pubsub::{
    client::{BasePublisher, Publisher},
    error::PublishError,
    model::Message,
};

use crate::names;

/// A project's Pub/Sub topics: what sends a function's queue messages (a
/// neutral queue is a topic with one subscription) and publishes its topic
/// messages.
#[derive(Clone)]
pub struct PubSub {
    project: String,
    base: BasePublisher,
    publishers: Arc<Mutex<HashMap<String, Publisher>>>,
    as_given: bool,
}

impl std::fmt::Debug for PubSub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PubSub")
            .field("project", &self.project)
            .finish_non_exhaustive()
    }
}

impl PubSub {
    /// The topics of `project`, reached at `emulator` (`HOST:PORT`, over
    /// plain HTTP/2 with no credentials) or else at Pub/Sub itself with
    /// the process's Application Default Credentials (on Cloud Run, the
    /// service's own account).
    pub async fn connect(project: &str, emulator: Option<&str>) -> Result<Self, Error> {
        super::install_tls();
        let mut builder = BasePublisher::builder();
        if let Some(host) = emulator {
            builder = builder
                .with_endpoint(format!("http://{host}"))
                .with_credentials(super::anonymous());
        }
        let base = builder.build().await.map_err(|e| {
            Error::unavailable(format!("cannot set up the Pub/Sub client: {e}")).private()
        })?;
        Ok(Self {
            project: project.to_owned(),
            base,
            publishers: Arc::default(),
            as_given: false,
        })
    }

    /// The topics of the project in `GOOGLE_CLOUD_PROJECT`, on the
    /// emulator that `PUBSUB_EMULATOR_HOST` names if it is set.
    pub async fn from_env() -> Result<Self, Error> {
        let emulator = std::env::var(names::PUBSUB_EMULATOR_VARIABLE)
            .ok()
            .filter(|h| !h.trim().is_empty());
        Self::connect(&names::project()?, emulator.as_deref()).await
    }

    /// The same topics, named by their Pub/Sub names rather than through
    /// the settings: for tools and tests that reach several apps' topics.
    pub fn as_given(mut self) -> Self {
        self.as_given = true;
        self
    }

    /// The project.
    pub fn project(&self) -> &str {
        &self.project
    }

    /// The publisher of topic `topic` (a Pub/Sub name), made once.
    fn publisher(&self, topic: &str) -> Publisher {
        let mut publishers = self
            .publishers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        publishers
            .entry(topic.to_owned())
            .or_insert_with(|| {
                self.base
                    .publisher(names::topic_path(&self.project, topic))
                    .build()
            })
            .clone()
    }

    /// Publishes `message` to Pub/Sub topic `topic`; its id. Pub/Sub has
    /// no delayed delivery, so a delay is refused rather than dropped.
    async fn publish_to(&self, topic: &str, message: OutgoingMessage) -> Result<String, Error> {
        if message.delay.is_some_and(|d| !d.is_zero()) {
            return Err(Error::invalid(format!(
                "a delayed send to `{topic}`: Pub/Sub delivers at once and cannot delay a message"
            )));
        }
        let mut out = Message::new()
            .set_data(message.body)
            .set_attributes(message.attributes);
        if let Some(key) = message.ordering_key {
            out = out.set_ordering_key(key);
        }
        let publisher = self.publisher(topic);
        match publisher.publish(out).await {
            Ok(id) => Ok(id),
            Err(PublishError::OrderingKeyPaused) => Err(Error::unavailable(format!(
                "publishing to `{topic}` is paused for this ordering key after an earlier failure"
            ))),
            Err(e) => Err(publish_error(topic, &e)),
        }
    }
}

/// A message pulled from a subscription of neutral queue or topic
/// `source`, as a function receives it; `delivery_attempt` is Pub/Sub's
/// count, 1 when it gives none.
pub fn received(
    message: google_cloud_pubsub::model::Message,
    source: &str,
    delivery_attempt: Option<i32>,
) -> cloudfn_core::Message {
    cloudfn_core::Message {
        id: message.message_id,
        body: message.data,
        attributes: message.attributes.into_iter().collect(),
        attempt: delivery_attempt.map_or(1, |n| n.max(1) as u32),
        published_at: message
            .publish_time
            .and_then(|t| chrono::DateTime::from_timestamp(t.seconds(), t.nanos() as u32)),
        ordering_key: Some(message.ordering_key).filter(|k| !k.is_empty()),
        source: source.to_owned(),
    }
}

/// A failed publish, as a cloudfn error whose kind decides retries.
fn publish_error(topic: &str, error: &PublishError) -> Error {
    let text = format!("publishing to Pub/Sub topic `{topic}`: {error}");
    let status = match error {
        PublishError::Rpc(rpc) => rpc.status().map(|s| s.code),
        _ => None,
    };
    use google_cloud_gax::error::rpc::Code;
    match status {
        Some(Code::NotFound) => Error::not_found(text),
        Some(Code::PermissionDenied | Code::Unauthenticated) => Error::forbidden(text),
        Some(Code::InvalidArgument) => Error::bad_input(text),
        _ => Error::unavailable(text),
    }
    .private()
}

#[async_trait]
impl QueueClient for PubSub {
    async fn send(&self, queue: &str, message: OutgoingMessage) -> Result<String, Error> {
        let topic = if self.as_given {
            queue.to_owned()
        } else {
            names::queue_topic(queue)
        };
        self.publish_to(&topic, message).await
    }
}

#[async_trait]
impl TopicClient for PubSub {
    async fn publish(&self, topic: &str, message: OutgoingMessage) -> Result<String, Error> {
        let physical = if self.as_given {
            topic.to_owned()
        } else {
            names::topic(topic)
        };
        self.publish_to(&physical, message).await
    }
}
