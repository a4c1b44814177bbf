//! Clients made on first use. Building the Pub/Sub client reads the
//! system's CA certificates and Application Default Credentials may ask
//! the metadata server; a function that never sends should not pay for
//! that before its first request (it cost a cold start up to 5 s).

use std::{future::Future, pin::Pin};

use async_trait::async_trait;
use cloudfn_core::{
    Error, OutgoingMessage,
    provider::{QueueClient, TopicClient},
    store::{Condition, Record, StoreClient, Write},
};
use tokio::sync::OnceCell;

/// How to make a client; its failures are not kept, so a later use tries
/// again.
type Make<C> = fn() -> Pin<Box<dyn Future<Output = Result<C, Error>> + Send>>;

/// A client of type `C`, made by `make` when a function first reaches for it.
pub(crate) struct OnFirstUse<C> {
    client: OnceCell<C>,
    make: Make<C>,
}

impl<C> OnFirstUse<C> {
    pub(crate) fn new(make: Make<C>) -> Self {
        Self {
            client: OnceCell::new(),
            make,
        }
    }

    async fn get(&self) -> Result<&C, Error> {
        self.client.get_or_try_init(self.make).await
    }
}

#[async_trait]
impl<C: QueueClient> QueueClient for OnFirstUse<C> {
    async fn send(&self, queue: &str, message: OutgoingMessage) -> Result<String, Error> {
        self.get().await?.send(queue, message).await
    }

    async fn send_batch(
        &self,
        queue: &str,
        messages: Vec<OutgoingMessage>,
    ) -> Result<Vec<String>, Error> {
        self.get().await?.send_batch(queue, messages).await
    }
}

#[async_trait]
impl<C: TopicClient> TopicClient for OnFirstUse<C> {
    async fn publish(&self, topic: &str, message: OutgoingMessage) -> Result<String, Error> {
        self.get().await?.publish(topic, message).await
    }
}

#[async_trait]
impl<C: StoreClient> StoreClient for OnFirstUse<C> {
    async fn get(&self, store: &str, key: &str) -> Result<Option<Record>, Error> {
        self.get().await?.get(store, key).await
    }

    async fn put(&self, store: &str, key: &str, write: Write) -> Result<bool, Error> {
        self.get().await?.put(store, key, write).await
    }

    async fn delete(&self, store: &str, key: &str, condition: Condition) -> Result<bool, Error> {
        self.get().await?.delete(store, key, condition).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unmade()
    -> Pin<Box<dyn Future<Output = Result<cloudfn_core::messaging::NoMessaging, Error>> + Send>>
    {
        Box::pin(async { Err(Error::invalid("no project")) })
    }

    #[tokio::test]
    async fn a_client_that_cannot_be_made_fails_each_use_with_its_reason() {
        let queues = OnFirstUse::new(unmade);
        for _ in 0..2 {
            let error = queues
                .send("orders", OutgoingMessage::new("{}"))
                .await
                .unwrap_err();
            assert!(error.to_string().contains("no project"), "{error}");
        }
    }
}
