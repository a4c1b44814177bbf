//! An app of the contract suite on the AWS adapter: one real bootstrap process per
//! function behind its own Runtime API, the emulated HTTP API, and SQS event
//! source mappings over LocalStack's queues and topics.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Mutex,
};

use async_trait::async_trait;
use cloudfn::{
    Capabilities, Message, OutgoingMessage,
    aws::{
        CAPABILITIES,
        emulate::{DevOptions, DevStack},
        sdk::sqs::types::{
            DeleteMessageBatchRequestEntry, MessageAttributeValue, MessageSystemAttributeName,
        },
    },
};

use super::{AppUnderTest, Deployment};
use crate::support::{dynamodb, example_binary, localstack};

pub struct AwsDeployment {
    stack: DevStack,
    /// Queues the test made to watch topics: name → URL.
    watchers: Mutex<HashMap<String, String>>,
}

impl AwsDeployment {
    /// `None` when LocalStack is not running (and the tests may skip).
    pub async fn start(app: &AppUnderTest) -> Option<Self> {
        let url = localstack()?;
        let dynamodb_url = dynamodb()?;
        let prefix = format!(
            "{}-{}",
            app.name,
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let mut options = DevOptions::new(
            (app.app)(&CAPABILITIES).spec(),
            example_binary(app.example),
            &url,
        );
        options.prefix = prefix;
        options.dynamodb_endpoint_url = Some(dynamodb_url);
        options.env = app.env_for(&CAPABILITIES);
        let stack = DevStack::start(options).await.expect("the stack starts");
        Some(Self {
            stack,
            watchers: Mutex::default(),
        })
    }

    fn url(&self, queue: &str) -> String {
        if let Some(url) = self.watchers.lock().unwrap().get(queue) {
            return url.clone();
        }
        self.stack
            .queue_url(queue)
            .unwrap_or_else(|| panic!("the stack has no queue `{queue}`"))
            .to_owned()
    }
}

#[async_trait]
impl Deployment for AwsDeployment {
    fn capabilities(&self) -> &Capabilities {
        &CAPABILITIES
    }

    fn http_url(&self) -> String {
        self.stack.http_url()
    }

    async fn send(&self, queue: &str, messages: Vec<OutgoingMessage>) {
        let url = self.url(queue);
        // One at a time, so a FIFO group keeps the order given.
        for message in messages {
            let attributes = message
                .attributes
                .iter()
                .map(|(k, v)| {
                    let value = MessageAttributeValue::builder()
                        .data_type("String")
                        .string_value(v)
                        .build()
                        .unwrap();
                    (k.clone(), value)
                })
                .collect();
            self.stack
                .sqs()
                .send_message()
                .queue_url(&url)
                .message_body(String::from_utf8(message.body.to_vec()).unwrap())
                .set_message_attributes(Some(attributes))
                .set_message_deduplication_id(
                    message
                        .ordering_key
                        .as_ref()
                        .map(|_| uuid::Uuid::new_v4().to_string()),
                )
                .set_message_group_id(message.ordering_key)
                .send()
                .await
                .unwrap();
        }
    }

    async fn receive(&self, queue: &str) -> Vec<Message> {
        let url = self.url(queue);
        let out = self
            .stack
            .sqs()
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .unwrap();
        let received = out.messages.unwrap_or_default();
        if received.is_empty() {
            return Vec::new();
        }
        let entries = received
            .iter()
            .enumerate()
            .map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                    .build()
                    .unwrap()
            })
            .collect();
        self.stack
            .sqs()
            .delete_message_batch()
            .queue_url(&url)
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap();
        received
            .into_iter()
            .map(|m| {
                let attributes: BTreeMap<String, String> = m
                    .message_attributes
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|(k, v)| v.string_value.map(|v| (k, v)))
                    .collect();
                let mut message = Message::new(
                    m.message_id.unwrap_or_default(),
                    queue,
                    m.body.unwrap_or_default(),
                );
                message.attributes = attributes;
                message
            })
            .collect()
    }

    async fn watch(&self, topic: &str) -> String {
        let name = format!(
            "{topic}-watch-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let url = self.stack.watch(topic, &name).await.unwrap();
        self.watchers.lock().unwrap().insert(name.clone(), url);
        name
    }

    async fn stop(self: Box<Self>) {
        self.stack.stop().await;
    }
}
