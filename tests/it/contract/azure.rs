//! An app of the contract suite on the Azure adapter: the real handler
//! process under the simulated Functions host, its queues and tables in
//! Azurite, its topics through the simulator's Service Bus stand-in.

use async_trait::async_trait;
use cloudfn::{
    Capabilities, Message, OutgoingMessage,
    azure::{
        CAPABILITIES,
        emulate::{DevOptions, HostSimulator},
    },
    provider::QueueClient,
};

use super::{AppUnderTest, Deployment};
use crate::support::{azurite, example_binary};

pub struct AzureDeployment {
    host: HostSimulator,
}

impl AzureDeployment {
    /// `None` when Azurite is not running (and the tests may skip).
    pub async fn start(app: &AppUnderTest) -> Option<Self> {
        let storage = azurite()?;
        let mut options = DevOptions::new(
            (app.app)(&CAPABILITIES).spec(),
            example_binary(app.example),
            storage,
        );
        options.prefix = format!(
            "{}-{}",
            app.name,
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        options.env = app.env_for(&CAPABILITIES);
        let host = HostSimulator::start(options)
            .await
            .expect("the host starts");
        Some(Self { host })
    }

    fn physical(&self, queue: &str) -> String {
        self.host
            .queue_name(queue)
            .unwrap_or_else(|| panic!("the app has no queue `{queue}`"))
    }
}

#[async_trait]
impl Deployment for AzureDeployment {
    fn capabilities(&self) -> &Capabilities {
        &CAPABILITIES
    }

    fn http_url(&self) -> String {
        self.host.http_url().to_owned()
    }

    async fn send(&self, queue: &str, messages: Vec<OutgoingMessage>) {
        let physical = self.physical(queue);
        for message in messages {
            self.host.queues().send(&physical, message).await.unwrap();
        }
    }

    async fn receive(&self, queue: &str) -> Vec<Message> {
        let physical = self.physical(queue);
        let received = self
            .host
            .queues()
            .receive(&physical, 32, std::time::Duration::from_secs(30))
            .await
            .unwrap();
        let mut messages = Vec::new();
        for r in received {
            self.host
                .queues()
                .delete(&physical, &r.queue_id, &r.pop_receipt)
                .await
                .unwrap();
            let mut message = r.message;
            message.source = queue.to_owned();
            messages.push(message);
        }
        messages
    }

    async fn watch(&self, topic: &str) -> String {
        self.host.watch(topic).await.unwrap()
    }

    async fn stop(self: Box<Self>) {
        self.host.stop().await;
    }
}
