//! The local message broker: named queues, and topics that fan out to one
//! queue per subscribed function (as SNS → SQS and Pub/Sub subscriptions do).

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, RwLock},
};

use async_trait::async_trait;
use cloudfn_core::{
    App, Error, Message, OutgoingMessage,
    provider::{QueueClient, TopicClient},
};

use crate::queue::{LocalQueue, QueueDepth, Stored};

/// The queues and topics of a local run. Cheap to clone.
#[derive(Clone)]
pub struct LocalBroker(Arc<Inner>);

struct Inner {
    queues: RwLock<HashMap<String, Arc<LocalQueue>>>,
    /// Topic → the queue of each subscribed function (and of each watcher
    /// subscribed from outside the app).
    subscriptions: RwLock<HashMap<String, Vec<String>>>,
}

impl LocalBroker {
    /// The broker for `app`: every queue of its spec exists from the start
    /// (FIFO where its trigger says so), every topic knows its subscription
    /// queues.
    pub fn for_app(app: &App) -> Self {
        let mut queues = HashMap::new();
        let mut subscriptions: HashMap<String, Vec<String>> = HashMap::new();
        for queue in app.spec().queues {
            if let Some(topic) = &queue.subscribes_to {
                subscriptions
                    .entry(topic.clone())
                    .or_default()
                    .push(queue.name.clone());
            }
            let local = Arc::new(LocalQueue::new(&queue.name, queue.fifo));
            queues.insert(queue.name, local);
        }
        Self(Arc::new(Inner {
            queues: RwLock::new(queues),
            subscriptions: RwLock::new(subscriptions),
        }))
    }

    /// Queue `name`, created on first use as queues are in the cloud by deployment.
    pub(crate) fn queue(&self, name: &str) -> Arc<LocalQueue> {
        if let Some(queue) = self
            .0
            .queues
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
        {
            return queue.clone();
        }
        let mut queues = self.0.queues.write().unwrap_or_else(|p| p.into_inner());
        queues
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(LocalQueue::new(name, false)))
            .clone()
    }

    fn existing(&self, name: &str) -> Option<Arc<LocalQueue>> {
        self.0
            .queues
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// Copies of the messages queue `name` holds, without delivering them:
    /// to look into a dead-letter queue.
    pub fn peek(&self, name: &str) -> Vec<Message> {
        self.existing(name).map(|q| q.peek()).unwrap_or_default()
    }

    /// Removes and returns the messages queue `name` holds ready now: to
    /// read a queue no function consumes, as a client outside the app would.
    pub fn receive(&self, name: &str) -> Vec<Message> {
        self.existing(name)
            .map(|q| q.take_ready())
            .unwrap_or_default()
    }

    /// Subscribes queue `queue` (created if need be) to `topic`, as a
    /// service outside the app would subscribe its own queue: from then on
    /// it gets a copy of everything published there.
    pub fn subscribe(&self, topic: &str, queue: &str) {
        self.queue(queue);
        self.0
            .subscriptions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(topic.to_owned())
            .or_default()
            .push(queue.to_owned());
    }

    /// How many messages queue `name` holds.
    pub fn depth(&self, name: &str) -> QueueDepth {
        self.existing(name).map(|q| q.depth()).unwrap_or_default()
    }

    /// Every queue's depth, by name.
    pub fn depths(&self) -> BTreeMap<String, QueueDepth> {
        self.0
            .queues
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|q| (q.name().to_owned(), q.depth()))
            .collect()
    }

    /// Whether no queue holds any message.
    pub fn is_idle(&self) -> bool {
        self.depths().values().all(|d| d.total() == 0)
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[async_trait]
impl QueueClient for LocalBroker {
    async fn send(&self, queue: &str, message: OutgoingMessage) -> Result<String, Error> {
        let target = self.queue(queue);
        if target.is_fifo() && message.delay.is_some() {
            // As in SQS: a per-message delay would let later messages of its group overtake it.
            return Err(Error::invalid(format!(
                "FIFO queue `{queue}` does not take per-message delays"
            )));
        }
        let id = new_id();
        let delay = message.delay;
        target.push(Stored::new(id.clone(), message), delay);
        Ok(id)
    }
}

#[async_trait]
impl TopicClient for LocalBroker {
    async fn publish(&self, topic: &str, message: OutgoingMessage) -> Result<String, Error> {
        let id = new_id();
        let subscriptions = self
            .0
            .subscriptions
            .read()
            .unwrap_or_else(|p| p.into_inner());
        let subscribers = subscriptions
            .get(topic)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if subscribers.is_empty() {
            tracing::debug!(topic, "published to a topic nobody subscribes to");
        }
        // Each subscription gets its own copy under the same id, as Pub/Sub does.
        let delay = message.delay;
        let stored = Stored::new(id.clone(), message);
        for queue in subscribers {
            self.queue(queue).push(stored.clone(), delay);
        }
        Ok(id)
    }
}
