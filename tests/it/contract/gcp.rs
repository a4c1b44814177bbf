//! An app of the contract suite on the GCP adapter: one real process per
//! function, as Cloud Run runs one service per function, its queues and
//! topics on the Pub/Sub emulator (pushed to each consumer in Pub/Sub's
//! envelope), its stores on the Firestore emulator.

use async_trait::async_trait;
use cloudfn::{
    Capabilities, Message, OutgoingMessage,
    gcp::{
        CAPABILITIES,
        emulate::{DevOptions, DevProject},
    },
};

use super::{AppUnderTest, Deployment};
use crate::support::{example_binary, google_emulators};

pub struct GcpDeployment {
    project: DevProject,
}

impl GcpDeployment {
    /// `None` when the emulators are not running (and the tests may skip).
    pub async fn start(app: &AppUnderTest) -> Option<Self> {
        let (pubsub, firestore) = google_emulators()?;
        let mut options = DevOptions::new(
            (app.app)(&CAPABILITIES).spec(),
            example_binary(app.example),
            pubsub,
        );
        options.firestore = Some(firestore);
        options.prefix = format!(
            "{}-{}",
            app.name,
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        options.env = app.env_for(&CAPABILITIES);
        let project = DevProject::start(options)
            .await
            .expect("the project starts");
        Some(Self { project })
    }
}

#[async_trait]
impl Deployment for GcpDeployment {
    fn capabilities(&self) -> &Capabilities {
        &CAPABILITIES
    }

    fn http_url(&self) -> String {
        self.project.http_url().to_owned()
    }

    async fn send(&self, queue: &str, messages: Vec<OutgoingMessage>) {
        // One at a time, so an ordering key keeps the order given.
        for message in messages {
            self.project.send(queue, message).await.unwrap();
        }
    }

    async fn receive(&self, queue: &str) -> Vec<Message> {
        self.project.receive(queue).await.unwrap()
    }

    async fn watch(&self, topic: &str) -> String {
        self.project.watch(topic).await.unwrap()
    }

    async fn stop(self: Box<Self>) {
        self.project.stop().await;
    }
}
