//! Storage Queues over the REST API: sending cloudfn's envelope, and the
//! receiving side tests and tools need.

use std::time::Duration;

use async_trait::async_trait;
use azure_core::http::{Method, Pipeline, Request, StatusCode, Url, headers::HeaderName};
use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, Utc};
use cloudfn_core::{Error, Message, OutgoingMessage, provider::QueueClient};
use serde::Deserialize;

use super::{
    Service, StorageAccount,
    pipeline::{self, Answer},
};
use crate::{
    events::queue::{Delivery, Envelope, message_of},
    names,
};

/// The longest a message can be kept invisible, when sent or received:
/// Storage's limit, 7 days. Longer delays are shortened to it.
pub const MAX_DELAY: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The most messages one receive or peek returns.
const MAX_MESSAGES: u8 = 32;

const CONTENT_TYPE: HeaderName = HeaderName::from_static("content-type");
const POP_RECEIPT: HeaderName = HeaderName::from_static("x-ms-popreceipt");

/// The Storage Queues of a Storage account, by neutral queue name (each
/// resolved through [`names::queue_name`]).
///
/// It sends what handlers send ([`QueueClient`]), and puts the copies the
/// custom-handler runtime re-enqueues or dead-letters ([`Self::put`]), as
/// cloudfn's [`Envelope`], base64-encoded as the Functions host expects.
/// The rest (create, receive, peek, delete, visibility) is for tests,
/// tools and deployment. Queues are not created on first use: the
/// deployment creates them.
#[derive(Clone)]
pub struct StorageQueues {
    pipeline: Pipeline,
    endpoint: Url,
    /// Names are the Storage queues' own, not neutral ones.
    as_given: bool,
}

impl std::fmt::Debug for StorageQueues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageQueues")
            .field("endpoint", &self.endpoint.as_str())
            .finish_non_exhaustive()
    }
}

/// One message handed out by [`StorageQueues::receive`]: the message as a
/// handler sees it, and what settling this delivery takes.
#[derive(Debug, Clone)]
pub struct Received {
    /// The message, read from cloudfn's envelope (or a bare text).
    pub message: Message,
    /// The message's text, base64-decoded: what the host hands a trigger.
    pub text: String,
    /// Deliveries of this copy so far, this one included.
    pub dequeue_count: u32,
    /// When this copy was put on the queue.
    pub inserted: Option<DateTime<Utc>>,
    /// The queue's id of this copy of the message.
    pub queue_id: String,
    /// The receipt that deletes this delivery or changes its visibility.
    pub pop_receipt: String,
}

impl StorageQueues {
    /// The queues of `account`.
    pub fn new(account: &StorageAccount) -> Self {
        Self {
            pipeline: pipeline::pipeline(account, Service::Queue),
            endpoint: account.queue_endpoint().clone(),
            as_given: false,
        }
    }

    /// The same queues, named by their Storage names rather than through
    /// the app settings: for tools and the host simulator, which reach
    /// several apps' queues.
    pub fn as_given(mut self) -> Self {
        self.as_given = true;
        self
    }

    fn physical(&self, queue: &str) -> String {
        if self.as_given {
            queue.to_owned()
        } else {
            names::queue_name(queue)
        }
    }

    /// The queues of the function app's account
    /// ([`StorageAccount::from_env`]).
    pub fn from_env() -> Result<Self, Error> {
        StorageAccount::from_env().map(|account| Self::new(&account))
    }

    /// Puts `envelope` on queue `queue`, invisible for `delay` (at most
    /// [`MAX_DELAY`]; rounded up to whole seconds), never expiring: how the
    /// runtime re-enqueues a retry and dead-letters a message.
    pub async fn put(
        &self,
        queue: &str,
        envelope: &Envelope,
        delay: Duration,
    ) -> Result<(), Error> {
        let text = STANDARD.encode(envelope.to_text()?);
        let physical = self.physical(queue);
        let mut url = self.messages(&physical, &[]);
        {
            let mut query = url.query_pairs_mut();
            let delay = seconds(delay);
            if delay > 0 {
                query.append_pair("visibilitytimeout", &delay.to_string());
            }
            query.append_pair("messagettl", "-1");
        }
        let mut request = Request::new(url, Method::Post);
        request.insert_header(CONTENT_TYPE, "application/xml");
        request.set_body(format!(
            "<QueueMessage><MessageText>{text}</MessageText></QueueMessage>"
        ));
        let answer = self.send(request, "sending to", queue, &physical).await?;
        expect(&answer, StatusCode::Created, "sending to", queue, &physical)
    }

    /// Creates queue `queue`; nothing happens if it exists.
    pub async fn create(&self, queue: &str) -> Result<(), Error> {
        let physical = self.physical(queue);
        let request = Request::new(pipeline::url(&self.endpoint, &[&physical]), Method::Put);
        let answer = self.send(request, "creating", queue, &physical).await?;
        match answer.status {
            StatusCode::Created | StatusCode::NoContent => Ok(()),
            _ if answer.is(StatusCode::Conflict, "QueueAlreadyExists") => Ok(()),
            _ => Err(failure(&answer, "creating", queue, &physical)),
        }
    }

    /// Deletes queue `queue` and its messages; nothing happens if it does
    /// not exist.
    pub async fn delete_queue(&self, queue: &str) -> Result<(), Error> {
        let physical = self.physical(queue);
        let request = Request::new(pipeline::url(&self.endpoint, &[&physical]), Method::Delete);
        let answer = self.send(request, "deleting", queue, &physical).await?;
        match answer.status {
            StatusCode::NoContent | StatusCode::NotFound => Ok(()),
            _ => Err(failure(&answer, "deleting", queue, &physical)),
        }
    }

    /// Receives up to `max` (1 to 32) messages from `queue`, each then
    /// invisible to other receivers for `visibility` (1 s to
    /// [`MAX_DELAY`]). A message's `attempt` counts its deliveries,
    /// this one included.
    pub async fn receive(
        &self,
        queue: &str,
        max: u8,
        visibility: Duration,
    ) -> Result<Vec<Received>, Error> {
        let visibility = seconds(visibility).max(1).to_string();
        let parameters = [
            ("numofmessages", count(max)?),
            ("visibilitytimeout", visibility),
        ];
        let list = self.list(queue, "receiving from", &parameters).await?;
        list.into_iter()
            .map(|item| {
                let message = item.message(queue)?;
                Ok(Received {
                    message,
                    text: text_of(&item.message_text),
                    dequeue_count: item.dequeue_count.unwrap_or(1),
                    inserted: item.inserted(),
                    queue_id: item.message_id,
                    pop_receipt: item.pop_receipt.unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Up to `max` (1 to 32) of the messages visible on `queue`, left
    /// there and visible. `attempt` counts the deliveries so far, at least 1.
    pub async fn peek(&self, queue: &str, max: u8) -> Result<Vec<Message>, Error> {
        let parameters = [
            ("peekonly", "true".to_owned()),
            ("numofmessages", count(max)?),
        ];
        let list = self.list(queue, "peeking at", &parameters).await?;
        list.iter().map(|item| item.message(queue)).collect()
    }

    /// Deletes the message `queue_id` of `queue`, received with
    /// `pop_receipt`.
    pub async fn delete(
        &self,
        queue: &str,
        queue_id: &str,
        pop_receipt: &str,
    ) -> Result<(), Error> {
        let physical = self.physical(queue);
        let mut url = self.messages(&physical, &[queue_id]);
        url.query_pairs_mut().append_pair("popreceipt", pop_receipt);
        let request = Request::new(url, Method::Delete);
        let answer = self
            .send(request, "deleting from", queue, &physical)
            .await?;
        expect(
            &answer,
            StatusCode::NoContent,
            "deleting from",
            queue,
            &physical,
        )
    }

    /// Makes the message `queue_id` of `queue` (received with
    /// `pop_receipt`) visible again after `delay` (at most [`MAX_DELAY`]),
    /// keeping its text; returns the receipt that now settles it.
    pub async fn update_visibility(
        &self,
        queue: &str,
        queue_id: &str,
        pop_receipt: &str,
        delay: Duration,
    ) -> Result<String, Error> {
        let physical = self.physical(queue);
        let mut url = self.messages(&physical, &[queue_id]);
        url.query_pairs_mut()
            .append_pair("popreceipt", pop_receipt)
            .append_pair("visibilitytimeout", &seconds(delay).to_string());
        // No body: Update Message then changes the visibility alone (a
        // `<MessageText/>` would empty the text).
        let mut request = Request::new(url, Method::Put);
        request.set_body(bytes::Bytes::new());
        let answer = self
            .send(request, "updating a message of", queue, &physical)
            .await?;
        expect(
            &answer,
            StatusCode::NoContent,
            "updating a message of",
            queue,
            &physical,
        )?;
        answer
            .headers
            .get_optional_string(&POP_RECEIPT)
            .ok_or_else(|| {
                Error::internal(format!(
                    "updating a message of queue `{queue}`: Azure Storage sent no new pop receipt"
                ))
                .private()
            })
    }

    fn messages(&self, physical: &str, more: &[&str]) -> Url {
        let mut segments = vec![physical, "messages"];
        segments.extend(more);
        pipeline::url(&self.endpoint, &segments)
    }

    async fn send(
        &self,
        request: Request,
        doing: &str,
        queue: &str,
        physical: &str,
    ) -> Result<Answer, Error> {
        pipeline::send(&self.pipeline, request, &what(doing, queue, physical)).await
    }

    /// Get Messages (or Peek Messages) with `parameters`.
    async fn list(
        &self,
        queue: &str,
        doing: &str,
        parameters: &[(&str, String)],
    ) -> Result<Vec<Item>, Error> {
        let physical = self.physical(queue);
        let mut url = self.messages(&physical, &[]);
        url.query_pairs_mut().extend_pairs(parameters);
        let answer = self
            .send(Request::new(url, Method::Get), doing, queue, &physical)
            .await?;
        expect(&answer, StatusCode::Ok, doing, queue, &physical)?;
        azure_core::xml::from_xml::<_, List>(&answer.body)
            .map(|list| list.messages)
            .map_err(|e| {
                Error::internal(format!(
                    "{}: the answer does not read as a message list: {e}",
                    what(doing, queue, &physical)
                ))
                .private()
            })
    }
}

#[async_trait]
impl QueueClient for StorageQueues {
    /// Sends `message` in a fresh [`Envelope`] (delayed by `message.delay`;
    /// Storage Queues ignore the ordering key and deduplication id, the
    /// envelope carries the ordering key); returns the envelope's id, which
    /// the message keeps across retries.
    async fn send(&self, queue: &str, message: OutgoingMessage) -> Result<String, Error> {
        let envelope = Envelope::new(uuid::Uuid::new_v4().to_string(), &message);
        self.put(queue, &envelope, message.delay.unwrap_or_default())
            .await?;
        Ok(envelope.id)
    }
}

/// What the runtime re-enqueues retries and dead-letters with.
#[async_trait]
impl crate::dispatch::Requeue for StorageQueues {
    async fn put(&self, queue: &str, envelope: &Envelope, delay: Duration) -> Result<(), Error> {
        StorageQueues::put(self, queue, envelope, delay).await
    }
}

/// `delay` in whole seconds, rounded up, at most [`MAX_DELAY`].
fn seconds(delay: Duration) -> u64 {
    let delay = delay.min(MAX_DELAY);
    delay.as_secs() + u64::from(delay.subsec_nanos() > 0)
}

fn count(max: u8) -> Result<String, Error> {
    if (1..=MAX_MESSAGES).contains(&max) {
        Ok(max.to_string())
    } else {
        Err(Error::invalid(format!(
            "Storage Queues hand out 1 to {MAX_MESSAGES} messages at a time, not {max}"
        )))
    }
}

fn what(doing: &str, queue: &str, physical: &str) -> String {
    if queue == physical {
        format!("{doing} queue `{queue}`")
    } else {
        format!("{doing} queue `{queue}` (Storage queue `{physical}`)")
    }
}

fn expect(
    answer: &Answer,
    status: StatusCode,
    doing: &str,
    queue: &str,
    physical: &str,
) -> Result<(), Error> {
    if answer.status == status {
        Ok(())
    } else {
        Err(failure(answer, doing, queue, physical))
    }
}

/// The error of an unexpected answer; a missing queue says what to do.
fn failure(answer: &Answer, doing: &str, queue: &str, physical: &str) -> Error {
    if answer.is(StatusCode::NotFound, "QueueNotFound") {
        return Error::not_found(format!(
            "{doing} queue `{queue}`: Storage queue `{physical}` does not exist; it must be created first (deploying the app creates every queue it declares)"
        ))
        .private();
    }
    answer.error(&what(doing, queue, physical))
}

/// Get Messages' and Peek Messages' answer.
#[derive(Debug, Default, Deserialize)]
struct List {
    #[serde(rename = "QueueMessage", default)]
    messages: Vec<Item>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Item {
    message_id: String,
    insertion_time: Option<String>,
    pop_receipt: Option<String>,
    dequeue_count: Option<u32>,
    #[serde(default)]
    message_text: String,
}

impl Item {
    fn inserted(&self) -> Option<DateTime<Utc>> {
        self.insertion_time
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc2822(t).ok())
            .map(|t| t.with_timezone(&Utc))
    }

    fn message(&self, queue: &str) -> Result<Message, Error> {
        let delivery = Delivery {
            queue_id: self.message_id.clone(),
            dequeue_count: self.dequeue_count.unwrap_or_default(),
            inserted: self.inserted(),
        };
        message_of(&text_of(&self.message_text), &delivery, queue)
    }
}

/// A message's text: base64-decoded, as cloudfn and the Functions host
/// write it; a text that does not decode to UTF-8 that way is taken as it
/// is (other producers may write plain text).
fn text_of(message_text: &str) -> String {
    STANDARD
        .decode(message_text.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_else(|| message_text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_round_up_to_seconds_within_storage_limits() {
        assert_eq!(seconds(Duration::ZERO), 0);
        assert_eq!(seconds(Duration::from_millis(1500)), 2);
        assert_eq!(seconds(Duration::from_secs(30 * 24 * 3600)), 604_800);
        assert!(count(0).is_err() && count(33).is_err());
        assert_eq!(count(32).unwrap(), "32");
    }

    #[test]
    fn message_lists_are_read_with_their_delivery() {
        let xml = "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?><QueueMessagesList><QueueMessage><MessageId>m-1</MessageId><InsertionTime>Fri, 27 Nov 2026 10:00:00 GMT</InsertionTime><ExpirationTime>Fri, 04 Dec 2026 10:00:00 GMT</ExpirationTime><PopReceipt>AgAA+/=</PopReceipt><TimeNextVisible>Fri, 27 Nov 2026 10:00:30 GMT</TimeNextVisible><DequeueCount>2</DequeueCount><MessageText>aGVsbG8gJiBtb3Jl</MessageText></QueueMessage></QueueMessagesList>";
        let list: List = azure_core::xml::from_xml(xml.as_bytes()).unwrap();
        let item = &list.messages[0];
        assert_eq!(item.pop_receipt.as_deref(), Some("AgAA+/="));
        let message = item.message("orders").unwrap();
        assert_eq!((message.id.as_str(), message.attempt), ("m-1", 2));
        assert_eq!(&message.body[..], b"hello & more");
        assert_eq!(
            message.published_at.unwrap().to_rfc3339(),
            "2026-11-27T10:00:00+00:00"
        );
        let empty: List = azure_core::xml::from_xml(&b"<QueueMessagesList />"[..]).unwrap();
        assert!(empty.messages.is_empty());
    }

    #[test]
    fn plain_text_that_is_no_base64_is_its_own_text() {
        assert_eq!(text_of("aGk="), "hi");
        assert_eq!(text_of("order 42 & more"), "order 42 & more");
        assert_eq!(text_of("/w=="), "/w==", "base64 of a byte that is no UTF-8");
    }
}
