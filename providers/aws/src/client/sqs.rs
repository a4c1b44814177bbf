use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_sqs::types::{
    BatchResultErrorEntry, ChangeMessageVisibilityBatchRequestEntry,
    DeleteMessageBatchRequestEntry, MessageAttributeValue, SendMessageBatchRequestEntry,
};
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
            .resolve(crate::names::queue_url_variable, name, || async {
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

impl SqsQueueClient {
    /// Sends `messages[range]` as one `SendMessageBatch` to `url`: each
    /// entry's own outcome, its message id when sent.
    async fn send_one_batch(
        &self,
        queue: &str,
        url: &str,
        messages: &[OutgoingMessage],
        range: std::ops::Range<usize>,
    ) -> Vec<Result<String, Error>> {
        let count = range.len();
        let mut request = self.sdk().await.send_message_batch().queue_url(url);
        for i in range.clone() {
            match entry(i, &messages[i]) {
                Ok(entry) => request = request.entries(entry),
                Err(e) => return vec![Err(e); count],
            }
        }
        let out = match request.send().await {
            Ok(out) => out,
            Err(e) => {
                let e = sdk_error(&format!("sending a batch to queue `{queue}`"), e);
                return vec![Err(e); count];
            }
        };
        let mut outcomes: Vec<Result<String, Error>> = vec![
            Err(Error::unavailable(format!(
                "queue `{queue}` did not say what became of the message"
            )));
            count
        ];
        let slot = |id: &str| {
            id.parse::<usize>()
                .ok()
                .and_then(|i| i.checked_sub(range.start))
                .filter(|i| *i < count)
        };
        for sent in out.successful {
            if let Some(i) = slot(&sent.id) {
                outcomes[i] = Ok(sent.message_id);
            }
        }
        for failed in out.failed {
            if let Some(i) = slot(&failed.id) {
                let kind = if failed.sender_fault {
                    cloudfn_core::ErrorKind::Invalid
                } else {
                    cloudfn_core::ErrorKind::Unavailable
                };
                outcomes[i] = Err(Error::new(
                    kind,
                    format!(
                        "queue `{queue}` refused a message with {}: {}",
                        failed.code,
                        failed.message.as_deref().unwrap_or("")
                    ),
                ));
            }
        }
        outcomes
    }
}

fn entry(i: usize, message: &OutgoingMessage) -> Result<SendMessageBatchRequestEntry, Error> {
    SendMessageBatchRequestEntry::builder()
        .id(i.to_string())
        .message_body(body_text(message)?)
        .set_message_attributes(Some(attributes(message)?).filter(|a| !a.is_empty()))
        .set_message_group_id(message.ordering_key.clone())
        .set_message_deduplication_id(deduplication_id(message))
        .set_delay_seconds(delay_seconds(message))
        .build()
        .map_err(|e| Error::invalid(format!("batch entry: {e}")))
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

    /// One batch after the other, so that the messages of a FIFO group
    /// arrive in order; stops at the first message refused.
    async fn send_batch(
        &self,
        queue: &str,
        messages: Vec<OutgoingMessage>,
    ) -> Result<Vec<String>, Error> {
        let url = self.queue_url(queue).await?;
        let mut ids = Vec::with_capacity(messages.len());
        for range in batches(&messages) {
            for outcome in self.send_one_batch(queue, &url, &messages, range).await {
                ids.push(outcome?);
            }
        }
        Ok(ids)
    }
}

/// Every entry's outcome, in order, from batch calls made side by side.
async fn side_by_side<F>(calls: impl IntoIterator<Item = F>) -> Vec<Result<(), Error>>
where
    F: std::future::Future<Output = Vec<Result<(), Error>>>,
{
    futures::future::join_all(calls)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Runs `call` on each ten of `entries`, side by side: every entry's
/// outcome, in order. `call` answers the entries SQS refused, by their
/// index in the ten, or an error for all ten.
async fn in_tens<E, F, Fut>(entries: &[E], call: F) -> Vec<Result<(), Error>>
where
    F: Fn(&[E]) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<BatchResultErrorEntry>, Error>>,
{
    side_by_side(entries.chunks(MAX_BATCH_ENTRIES).map(|chunk| {
        let answer = call(chunk);
        async move {
            let refused = match answer.await {
                Ok(refused) => refused,
                Err(e) => return vec![Err(e); chunk.len()],
            };
            let mut outcomes = vec![Ok(()); chunk.len()];
            for entry in refused {
                if let Some(outcome) = entry
                    .id
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| outcomes.get_mut(i))
                {
                    let why = entry.message.as_deref().unwrap_or("");
                    *outcome = Err(Error::unavailable(format!("{}: {why}", entry.code)));
                }
            }
            outcomes
        }
    }))
    .await
}

#[async_trait]
impl crate::dispatch::QueueSettler for SqsQueueClient {
    async fn change_visibility(
        &self,
        queue: &str,
        changes: Vec<(String, std::time::Duration)>,
    ) -> Vec<Result<(), Error>> {
        let url = match self.queue_url(queue).await {
            Ok(url) => url,
            Err(e) => return vec![Err(e); changes.len()],
        };
        let (sdk, url) = (self.sdk().await, &url);
        in_tens(&changes, |ten| {
            let entries = ten
                .iter()
                .enumerate()
                .map(|(i, (receipt, delay))| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(receipt)
                        // SQS takes whole seconds, at most 12 hours.
                        .visibility_timeout(delay.as_secs_f64().round().min(43_200.0) as i32)
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Error::invalid(format!("visibility entry: {e}")));
            async move {
                let entries = entries?;
                sdk.change_message_visibility_batch()
                    .queue_url(url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map(|out| out.failed)
                    .map_err(|e| sdk_error("changing message visibility", e))
            }
        })
        .await
    }

    async fn send_each(
        &self,
        queue: &str,
        messages: Vec<OutgoingMessage>,
    ) -> Vec<Result<(), Error>> {
        let url = match self.queue_url(queue).await {
            Ok(url) => url,
            Err(e) => return vec![Err(e); messages.len()],
        };
        let (url, messages) = (&url, &messages);
        let calls = batches(messages).into_iter().map(|range| async move {
            self.send_one_batch(queue, url, messages, range)
                .await
                .into_iter()
                .map(|outcome| outcome.map(|_| ()))
                .collect()
        });
        side_by_side(calls).await
    }

    async fn delete(&self, queue: &str, receipts: Vec<String>) -> Vec<Result<(), Error>> {
        let url = match self.queue_url(queue).await {
            Ok(url) => url,
            Err(e) => return vec![Err(e); receipts.len()],
        };
        let (sdk, url) = (self.sdk().await, &url);
        in_tens(&receipts, |ten| {
            let entries = ten
                .iter()
                .enumerate()
                .map(|(i, receipt)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(receipt)
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Error::invalid(format!("delete entry: {e}")));
            async move {
                let entries = entries?;
                sdk.delete_message_batch()
                    .queue_url(url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map(|out| out.failed)
                    .map_err(|e| sdk_error("deleting messages", e))
            }
        })
        .await
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
