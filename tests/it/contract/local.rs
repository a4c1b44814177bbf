//! The contract app on the local runtime, in this process.

use async_trait::async_trait;
use cloudfn::{
    Capabilities, Message, OutgoingMessage,
    local::{CAPABILITIES, Running},
};

use super::{AppUnderTest, Deployment};

pub struct LocalDeployment(Running);

impl LocalDeployment {
    pub async fn start(app: &AppUnderTest) -> Self {
        Self(crate::support::start((app.app)()).await)
    }
}

#[async_trait]
impl Deployment for LocalDeployment {
    fn capabilities(&self) -> &Capabilities {
        &CAPABILITIES
    }

    fn http_url(&self) -> String {
        self.0.url()
    }

    async fn send(&self, queue: &str, messages: Vec<OutgoingMessage>) {
        self.0.queue(queue).send_batch(messages).await.unwrap();
    }

    async fn receive(&self, queue: &str) -> Vec<Message> {
        self.0.broker().receive(queue)
    }

    async fn watch(&self, topic: &str) -> String {
        let queue = format!("{topic}-watch-{}", uuid::Uuid::new_v4().simple());
        self.0.broker().subscribe(topic, &queue);
        queue
    }

    async fn stop(self: Box<Self>) {
        self.0.shutdown().await;
    }
}
