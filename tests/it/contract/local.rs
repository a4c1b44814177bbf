//! The contract app on the local runtime, in this process.

use async_trait::async_trait;
use cloudfn::{
    Capabilities, Message, OutgoingMessage,
    local::{CAPABILITIES, LocalRuntime, Running},
};

use super::{AppUnderTest, Deployment};

/// The app, its stores in a file of its own as `cargo run` keeps them.
pub struct LocalDeployment {
    running: Running,
    /// Removed when the deployment is dropped.
    _data: tempfile::TempDir,
}

impl LocalDeployment {
    pub async fn start(app: &AppUnderTest) -> Self {
        let data = tempfile::tempdir().unwrap();
        let running = LocalRuntime::new((app.app)(&cloudfn::local::CAPABILITIES))
            .port(0)
            .data_dir(data.path())
            .start()
            .await
            .expect("app starts");
        Self {
            running,
            _data: data,
        }
    }
}

#[async_trait]
impl Deployment for LocalDeployment {
    fn capabilities(&self) -> &Capabilities {
        &CAPABILITIES
    }

    fn http_url(&self) -> String {
        self.running.url()
    }

    async fn send(&self, queue: &str, messages: Vec<OutgoingMessage>) {
        self.running
            .queue(queue)
            .send_batch(messages)
            .await
            .unwrap();
    }

    async fn receive(&self, queue: &str) -> Vec<Message> {
        self.running.broker().receive(queue)
    }

    async fn watch(&self, topic: &str) -> String {
        let queue = format!("{topic}-watch-{}", uuid::Uuid::new_v4().simple());
        self.running.broker().subscribe(topic, &queue);
        queue
    }

    async fn stop(self: Box<Self>) {
        self.running.shutdown().await;
    }
}
