use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use cloudfn_core::{Error, OutgoingMessage, provider::QueueClient};

use super::sdk_error;

/// SQS takes at most 10 messages per batch call.
const MAX_BATCH_ENTRIES: usize = 10;
/// ...and at most 256 KiB in all.
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// [`QueueClient`] on Amazon SQS.
///
/// A queue name resolves to its URL through `CLOUDFN_QUEUE_URL_<NAME>` (the
/// SAM template sets it for every queue a function declares), else through
/// `GetQueueUrl` by name (`<name>.fifo` tried as well), cached either way.
#[derive(Debug)]
pub struct SqsQueueClient {
    client: super::LazyClient<aws_sdk_sqs::Client>,
    urls: super::Resolved,
}

impl SqsQueueClient {
    pub(super) fn with_config(config: std::sync::Arc<super::LazyConfig>) -> Self {
        Self {
            client: super::LazyClient::new(config),
            urls: super::Resolved::default(),
        }
    }

    /// The SDK client underneath.
    pub async fn sdk(&self) -> &aws_sdk_sqs::Client {
        self.client.get(aws_sdk_sqs::Client::new).await
    }

    /// The URL of queue `name`.
    pub async fn queue_url(&self, name: &str) -> Result<String, Error> {
        self.urls
            .resolve("CLOUDFN_QUEUE_URL_", name, || async {
                match self.lookup(name).await {
                    Err(e)
                        if e.kind() == cloudfn_core::ErrorKind::NotFound
                            && !name.ends_with(".fifo") =>
                    {
                        self.lookup(&format!("{name}.fifo")).await.map_err(|_| e)
                    }
                    other => other,
                }
            })
            .await
    }

    async fn lookup(&self, name: &str) -> Result<String, Error> {
        let out = self
            .sdk()
            .await
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("queue `{name}`"), e))?;
        out.queue_url
            .ok_or_else(|| Error::not_found(format!("queue `{name}` has no URL")))
    }
}

fn body_text(message: &OutgoingMessage) -> Result<String, Error> {
    String::from_utf8(message.body.to_vec()).map_err(|_| {
        Error::bad_input("SQS message bodies must be text; encode binary bodies (base64) first")
    })
}

fn attributes(message: &OutgoingMessage) -> Result<HashMap<String, MessageAttributeValue>, Error> {
    message
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
        .collect()
}

/// FIFO messages need a deduplication id; without one from the sender, each
/// message gets its own, so equal bodies stay two messages.
fn deduplication_id(message: &OutgoingMessage) -> Option<String> {
    message.deduplication_id.clone().or_else(|| {
        message
            .ordering_key
            .as_ref()
            .map(|_| uuid::Uuid::new_v4().to_string())
    })
}

fn delay_seconds(message: &OutgoingMessage) -> Option<i32> {
    message.delay.map(|d| d.as_secs().min(900) as i32)
}

/// Splits messages into SQS batches: at most 10 entries and 256 KiB each.
fn batches(messages: &[OutgoingMessage]) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, message) in messages.iter().enumerate() {
        let size = message.body.len()
            + message
                .attributes
                .iter()
                .map(|(k, v)| k.len() + v.len() + 6)
                .sum::<usize>();
        if i > start && (i - start == MAX_BATCH_ENTRIES || bytes + size > MAX_BATCH_BYTES) {
            ranges.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < messages.len() {
        ranges.push(start..messages.len());
    }
    ranges
}

#[async_trait]
impl QueueClient for SqsQueueClient {
    async fn send(&self, queue: &str, message: OutgoingMessage) -> Result<String, Error> {
        let url = self.queue_url(queue).await?;
        let out = self
            .sdk()
            .await
            .send_message()
            .queue_url(url)
            .message_body(body_text(&message)?)
            .set_message_attributes(Some(attributes(&message)?).filter(|a| !a.is_empty()))
            .set_message_group_id(message.ordering_key.clone())
            .set_message_deduplication_id(deduplication_id(&message))
            .set_delay_seconds(delay_seconds(&message))
            .send()
            .await
            .map_err(|e| sdk_error(&format!("sending to queue `{queue}`"), e))?;
        Ok(out.message_id.unwrap_or_default())
    }

    async fn send_batch(
        &self,
        queue: &str,
        messages: Vec<OutgoingMessage>,
    ) -> Result<Vec<String>, Error> {
        let url = self.queue_url(queue).await?;
        let mut ids = vec![String::new(); messages.len()];
        for range in batches(&messages) {
            let mut request = self.sdk().await.send_message_batch().queue_url(&url);
            for i in range.clone() {
                let message = &messages[i];
                let entry = SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body_text(message)?)
                    .set_message_attributes(Some(attributes(message)?).filter(|a| !a.is_empty()))
                    .set_message_group_id(message.ordering_key.clone())
                    .set_message_deduplication_id(deduplication_id(message))
                    .set_delay_seconds(delay_seconds(message))
                    .build()
                    .map_err(|e| Error::invalid(format!("batch entry: {e}")))?;
                request = request.entries(entry);
            }
            let out = request
                .send()
                .await
                .map_err(|e| sdk_error(&format!("sending a batch to queue `{queue}`"), e))?;
            if let Some(failed) = out.failed.first() {
                let kind = if failed.sender_fault {
                    cloudfn_core::ErrorKind::Invalid
                } else {
                    cloudfn_core::ErrorKind::Unavailable
                };
                return Err(Error::new(
                    kind,
                    format!(
                        "queue `{queue}` refused {} of the batch's messages, the first (#{}) with {}: {}",
                        out.failed.len(),
                        failed.id,
                        failed.code,
                        failed.message.as_deref().unwrap_or("")
                    ),
                ));
            }
            for entry in out.successful {
                if let Ok(i) = entry.id.parse::<usize>() {
                    ids[i] = entry.message_id;
                }
            }
        }
        Ok(ids)
    }
}

#[async_trait]
impl crate::dispatch::Redelivery for SqsQueueClient {
    async fn redeliver_after(
        &self,
        queue: &str,
        receipt: &str,
        delay: std::time::Duration,
    ) -> Result<(), Error> {
        // SQS takes whole seconds, at most 12 hours.
        let seconds = delay.as_secs_f64().round().min(43_200.0) as i32;
        let url = self.queue_url(queue).await?;
        self.sdk()
            .await
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("changing message visibility", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_count_and_size_limits() {
        let small: Vec<_> = (0..25).map(|_| OutgoingMessage::new("x")).collect();
        assert_eq!(batches(&small), [0..10, 10..20, 20..25]);
        let big: Vec<_> = (0..5)
            .map(|_| OutgoingMessage::new(vec![b'a'; 100 * 1024]))
            .collect();
        assert_eq!(batches(&big), [0..2, 2..4, 4..5]);
        assert!(batches(&[]).is_empty());
    }
}
