//! Sending to queues and publishing to topics, whatever the cloud.
//!
//! Providers implement [`QueueClient`] and [`TopicClient`] on their cloud's
//! SDK; handlers only see the [`Queue`] and [`Topic`] handles that
//! [`crate::Context`] gives out, so handler code never names a cloud.
//!
//! What the handles fail with — a client's error, an undeclared queue or
//! topic — is [`Error::private`]: the function's or the cloud's problem,
//! logged in full, never shown to an HTTP caller.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use async_trait::async_trait;
use serde::Serialize;

use crate::{Error, OutgoingMessage, propagation::Lineage, store::StoreAccess};

/// What a message carries once it is dead-lettered, on every provider, so
/// whoever reads a dead-letter queue knows what happened.
pub mod dead_letter {
    use std::collections::BTreeMap;

    use crate::{Error, Message, OutgoingMessage};

    /// The last error, as `kind: message`.
    pub const ERROR: &str = "cloudfn-dead-letter-error";
    /// The function that gave up.
    pub const FUNCTION: &str = "cloudfn-dead-letter-function";
    /// The queue or topic the message came from.
    pub const SOURCE: &str = "cloudfn-dead-letter-source";
    /// How many deliveries were made.
    pub const ATTEMPTS: &str = "cloudfn-dead-letter-attempts";

    /// Adds the dead-letter attributes to a message's `attributes`.
    pub fn annotate(
        attributes: &mut BTreeMap<String, String>,
        function: &str,
        source: &str,
        attempts: u32,
        error: &Error,
    ) {
        attributes.insert(ERROR.into(), error.to_string());
        attributes.insert(FUNCTION.into(), function.into());
        attributes.insert(SOURCE.into(), source.into());
        attributes.insert(ATTEMPTS.into(), attempts.to_string());
    }

    /// The copy of `message` that goes to a dead-letter queue after
    /// `function` gave up on it with `error`: its body, attributes and
    /// ordering key, with the dead-letter attributes added. A message with an
    /// ordering key keeps its id as the deduplication id, which FIFO
    /// dead-letter queues need.
    pub fn copy_of(function: &str, message: &Message, error: &Error) -> OutgoingMessage {
        let mut copy = OutgoingMessage::new(message.body.clone());
        copy.attributes = message.attributes.clone();
        annotate(
            &mut copy.attributes,
            function,
            &message.source,
            message.attempt,
            error,
        );
        if let Some(group) = &message.ordering_key {
            copy.ordering_key = Some(group.clone());
            copy.deduplication_id = Some(message.id.clone());
        }
        copy
    }
}

/// The attribute carrying the id a publisher gave a topic message: the same
/// in every subscriber's copy and in every redelivery of it, whatever ids the
/// subscription queues assign, so duplicate suppression keys on it.
pub const PUBLISHED_ID: &str = "cloudfn-message-id";

/// Sends messages to named queues.
#[async_trait]
pub trait QueueClient: Send + Sync + 'static {
    /// Sends one message; returns the id the queue assigned.
    async fn send(&self, queue: &str, message: OutgoingMessage) -> Result<String, Error>;

    /// Sends many messages; returns their ids in order. Providers override this
    /// to use their batch API and split along its limits.
    async fn send_batch(
        &self,
        queue: &str,
        messages: Vec<OutgoingMessage>,
    ) -> Result<Vec<String>, Error> {
        let mut ids = Vec::with_capacity(messages.len());
        for message in messages {
            ids.push(self.send(queue, message).await?);
        }
        Ok(ids)
    }
}

/// Publishes messages to named topics.
#[async_trait]
pub trait TopicClient: Send + Sync + 'static {
    /// Publishes one message; returns the id the topic assigned.
    async fn publish(&self, topic: &str, message: OutgoingMessage) -> Result<String, Error>;
}

/// Stands in where no messaging is configured; every call fails with a clear
/// error rather than dropping the message.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMessaging;

#[async_trait]
impl QueueClient for NoMessaging {
    async fn send(&self, queue: &str, _: OutgoingMessage) -> Result<String, Error> {
        Err(Error::unavailable(format!(
            "no queue client is configured to reach `{queue}`"
        )))
    }
}

#[async_trait]
impl TopicClient for NoMessaging {
    async fn publish(&self, topic: &str, _: OutgoingMessage) -> Result<String, Error> {
        Err(Error::unavailable(format!(
            "no topic client is configured to reach `{topic}`"
        )))
    }
}

/// The queues, topics, stores and workflows a function declared it uses. Anything else
/// is refused on every provider, as the cloud's least-privilege policy would
/// refuse it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    /// Queues the function may send to.
    pub queues: BTreeSet<String>,
    /// Topics the function may publish to.
    pub topics: BTreeSet<String>,
    /// Stores the function may read, or read and write.
    pub stores: BTreeMap<String, StoreAccess>,
    /// Workflows the function may start.
    pub workflows: BTreeSet<String>,
    /// No restriction: for test drivers and tools, never for functions.
    pub unrestricted: bool,
}

impl Permissions {
    /// Everything allowed.
    pub fn unrestricted() -> Self {
        Self {
            unrestricted: true,
            ..Self::default()
        }
    }

    pub(crate) fn check(
        &self,
        function: &str,
        what: &str,
        name: &str,
        declared: &BTreeSet<String>,
        how: &str,
    ) -> Result<(), Error> {
        if self.unrestricted || declared.contains(name) {
            Ok(())
        } else {
            // The function's mistake, not the caller's: private.
            Err(Error::forbidden(format!(
                "function `{function}` did not declare {what} `{name}`; add `.{how}(\"{name}\")` to it"
            ))
            .private())
        }
    }
}

/// A handle on one queue, from [`crate::Context::queue`].
#[derive(Clone)]
pub struct Queue {
    name: String,
    client: Arc<dyn QueueClient>,
    allowed: Result<(), Error>,
    lineage: Option<Lineage>,
}

impl Queue {
    pub(crate) fn new(
        name: &str,
        client: Arc<dyn QueueClient>,
        function: &str,
        permissions: &Permissions,
        lineage: Option<Lineage>,
    ) -> Self {
        Self {
            allowed: permissions.check(function, "queue", name, &permissions.queues, "sends_to"),
            name: name.to_owned(),
            client,
            lineage,
        }
    }

    fn stamped(&self, mut message: OutgoingMessage) -> OutgoingMessage {
        if let Some(lineage) = &self.lineage {
            lineage.stamp(&mut message.attributes);
        }
        message
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends `value` as a JSON message; returns the message id.
    pub async fn send<T: Serialize + ?Sized>(&self, value: &T) -> Result<String, Error> {
        self.send_message(OutgoingMessage::json(value)?).await
    }

    /// Sends a message built with attributes, ordering key or delay.
    pub async fn send_message(&self, message: OutgoingMessage) -> Result<String, Error> {
        self.allowed.clone()?;
        self.client
            .send(&self.name, self.stamped(message))
            .await
            .map_err(Error::private)
    }

    /// Sends many messages; returns their ids in order.
    pub async fn send_batch(&self, messages: Vec<OutgoingMessage>) -> Result<Vec<String>, Error> {
        self.allowed.clone()?;
        let messages = messages.into_iter().map(|m| self.stamped(m)).collect();
        self.client
            .send_batch(&self.name, messages)
            .await
            .map_err(Error::private)
    }
}

/// A handle on one topic, from [`crate::Context::topic`].
#[derive(Clone)]
pub struct Topic {
    name: String,
    client: Arc<dyn TopicClient>,
    allowed: Result<(), Error>,
    lineage: Option<Lineage>,
}

impl Topic {
    pub(crate) fn new(
        name: &str,
        client: Arc<dyn TopicClient>,
        function: &str,
        permissions: &Permissions,
        lineage: Option<Lineage>,
    ) -> Self {
        Self {
            lineage,
            allowed: permissions.check(
                function,
                "topic",
                name,
                &permissions.topics,
                "publishes_to",
            ),
            name: name.to_owned(),
            client,
        }
    }

    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Publishes `value` as a JSON message; returns the message id.
    pub async fn publish<T: Serialize + ?Sized>(&self, value: &T) -> Result<String, Error> {
        self.publish_message(OutgoingMessage::json(value)?).await
    }

    /// Publishes a message built with attributes or an ordering key. It
    /// carries a [`PUBLISHED_ID`] attribute (a fresh one unless set).
    pub async fn publish_message(&self, mut message: OutgoingMessage) -> Result<String, Error> {
        self.allowed.clone()?;
        message
            .attributes
            .entry(PUBLISHED_ID.to_owned())
            .or_insert_with(|| uuid::Uuid::new_v4().to_string());
        if let Some(lineage) = &self.lineage {
            lineage.stamp(&mut message.attributes);
        }
        self.client
            .publish(&self.name, message)
            .await
            .map_err(Error::private)
    }
}
