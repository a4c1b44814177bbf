use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_sns::types::MessageAttributeValue;
use cloudfn_core::{Error, OutgoingMessage, provider::TopicClient};

use super::sdk_error;

/// [`TopicClient`] on Amazon SNS.
///
/// A topic name resolves to its ARN through `CLOUDFN_TOPIC_ARN_<NAME>` (the
/// SAM template sets it), else by listing topics, cached either way.
#[derive(Debug)]
pub struct SnsTopicClient {
    client: super::LazyClient<aws_sdk_sns::Client>,
    arns: super::Resolved,
}

impl SnsTopicClient {
    pub(super) fn with_config(config: std::sync::Arc<super::LazyConfig>) -> Self {
        Self {
            client: super::LazyClient::new(config),
            arns: super::Resolved::default(),
        }
    }

    /// The SDK client underneath.
    pub async fn sdk(&self) -> &aws_sdk_sns::Client {
        self.client.get(aws_sdk_sns::Client::new).await
    }

    /// The ARN of topic `name`.
    pub async fn topic_arn(&self, name: &str) -> Result<String, Error> {
        self.arns
            .resolve(crate::names::topic_arn_variable, name, || async {
                self.lookup(name).await
            })
            .await
    }

    async fn lookup(&self, name: &str) -> Result<String, Error> {
        let mut pages = self
            .sdk()
            .await
            .list_topics()
            .into_paginator()
            .items()
            .send();
        let suffixes = [format!(":{name}"), format!(":{name}.fifo")];
        while let Some(topic) = pages.next().await {
            let topic = topic.map_err(|e| sdk_error("listing topics", e))?;
            if let Some(arn) = topic.topic_arn
                && suffixes.iter().any(|s| arn.ends_with(s.as_str()))
            {
                return Ok(arn);
            }
        }
        Err(Error::not_found(format!("no SNS topic named `{name}`")))
    }
}

#[async_trait]
impl TopicClient for SnsTopicClient {
    async fn publish(&self, topic: &str, message: OutgoingMessage) -> Result<String, Error> {
        let arn = self.topic_arn(topic).await?;
        let body = String::from_utf8(message.body.to_vec()).map_err(|_| {
            Error::bad_input("SNS messages must be text; encode binary bodies (base64) first")
        })?;
        let attributes = message
            .attributes
            .iter()
            .map(|(name, value)| {
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(value)
                    .build()
                    .map(|v| (name.clone(), v))
                    .map_err(|e| Error::invalid(format!("message attribute `{name}`: {e}")))
            })
            .collect::<Result<HashMap<_, _>, _>>()?;
        let out = self
            .sdk()
            .await
            .publish()
            .topic_arn(arn)
            .message(body)
            .set_message_attributes(Some(attributes).filter(|a| !a.is_empty()))
            .set_message_group_id(message.ordering_key.clone())
            .set_message_deduplication_id(message.deduplication_id.clone())
            .send()
            .await
            .map_err(|e| sdk_error(&format!("publishing to topic `{topic}`"), e))?;
        Ok(out.message_id.unwrap_or_default())
    }
}
