//! [`StorageQueues`] against Azurite: what is sent comes back as it was
//! sent, delays and redeliveries are honoured, and mistakes are named.

use std::time::Duration;

use azure_core::http::{Context, Method, PipelineSendOptions, Request, headers::HeaderName};
use cloudfn_azure::{
    client::{Service, StorageQueues, pipeline},
    events::queue::Envelope,
};
use cloudfn_core::{ErrorKind, OutgoingMessage, provider::QueueClient};

use crate::support::{azurite, unique};

const LONG: Duration = Duration::from_secs(30);

/// A fresh queue on Azurite, with its client.
async fn fresh() -> Option<(StorageQueues, String)> {
    let queues = StorageQueues::new(&azurite()?);
    let queue = unique("q-");
    queues.create(&queue).await.unwrap();
    queues.create(&queue).await.expect("creating is idempotent");
    Some((queues, queue))
}

#[tokio::test]
async fn sent_messages_come_back_byte_exact_with_attributes_and_id() {
    let Some((queues, queue)) = fresh().await else {
        return;
    };
    let json = OutgoingMessage::new(r#"{ "id": "o-1",  "qty": 2 }"#)
        .with_attribute("tenant", "t-1")
        .with_ordering_key("customer-1");
    let binary = OutgoingMessage::new(vec![0xff, 0x00, b'a', b'\n']);
    let json_id = queues.send(&queue, json).await.unwrap();
    let binary_id = queues.send(&queue, binary).await.unwrap();

    let received = queues.receive(&queue, 32, LONG).await.unwrap();
    assert_eq!(received.len(), 2);
    let of = |id: &str| {
        received
            .iter()
            .find(|r| r.message.id == id)
            .unwrap_or_else(|| panic!("message {id} is received under the id send returned"))
    };
    let json = &of(&json_id).message;
    assert_eq!(&json.body[..], br#"{ "id": "o-1",  "qty": 2 }"#);
    assert_eq!(json.attribute("tenant"), Some("t-1"));
    assert_eq!(json.ordering_key.as_deref(), Some("customer-1"));
    assert_eq!((json.source.as_str(), json.attempt), (queue.as_str(), 1));
    assert!(json.published_at.is_some());
    let binary = &of(&binary_id).message;
    assert_eq!(&binary.body[..], &[0xff, 0x00, b'a', b'\n']);
    assert!(binary.attributes.is_empty() && binary.ordering_key.is_none());

    for r in &received {
        assert_ne!(
            r.queue_id, r.message.id,
            "the queue's id is not the message's"
        );
        queues
            .delete(&queue, &r.queue_id, &r.pop_receipt)
            .await
            .unwrap();
    }
    queues.delete_queue(&queue).await.unwrap();
}

#[tokio::test]
async fn a_delayed_message_waits_for_its_delay() {
    let Some((queues, queue)) = fresh().await else {
        return;
    };
    let mut message = OutgoingMessage::new("later");
    message.delay = Some(Duration::from_secs(2));
    let id = queues.send(&queue, message).await.unwrap();
    assert!(
        queues.receive(&queue, 1, LONG).await.unwrap().is_empty(),
        "not visible before its delay"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let received = queues.receive(&queue, 1, LONG).await.unwrap();
    assert_eq!(received.len(), 1, "visible after its delay");
    assert_eq!(received[0].message.id, id);
    queues.delete_queue(&queue).await.unwrap();
}

#[tokio::test]
async fn redeliveries_and_re_enqueued_copies_count_attempts_under_one_id() {
    let Some((queues, queue)) = fresh().await else {
        return;
    };
    let id = queues
        .send(&queue, OutgoingMessage::new("again"))
        .await
        .unwrap();
    let first = queues
        .receive(&queue, 1, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(first[0].message.attempt, 1);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second = queues.receive(&queue, 1, LONG).await.unwrap();
    assert_eq!(second.len(), 1, "visible again once its visibility ran out");
    assert_eq!(
        (second[0].message.id.as_str(), second[0].message.attempt),
        (id.as_str(), 2)
    );
    assert_eq!(second[0].queue_id, first[0].queue_id);

    // The runtime's retry: a copy that carries the attempts made so far.
    let retry = Envelope::retry_of(&second[0].message);
    queues.put(&queue, &retry, Duration::ZERO).await.unwrap();
    queues
        .delete(&queue, &second[0].queue_id, &second[0].pop_receipt)
        .await
        .unwrap();
    let third = queues.receive(&queue, 1, LONG).await.unwrap();
    assert_eq!(
        (third[0].message.id.as_str(), third[0].message.attempt),
        (id.as_str(), 3)
    );
    assert_eq!(&third[0].message.body[..], b"again");
    queues.delete_queue(&queue).await.unwrap();
}

#[tokio::test]
async fn peek_leaves_messages_and_delete_removes_them() {
    let Some((queues, queue)) = fresh().await else {
        return;
    };
    let id = queues
        .send(&queue, OutgoingMessage::new("look"))
        .await
        .unwrap();
    for _ in 0..2 {
        let peeked = queues.peek(&queue, 32).await.unwrap();
        assert_eq!(peeked.len(), 1);
        assert_eq!(
            (peeked[0].id.as_str(), &peeked[0].body[..]),
            (id.as_str(), &b"look"[..])
        );
    }
    let received = queues
        .receive(&queue, 1, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(received[0].message.attempt, 1, "peeking delivers nothing");
    queues
        .delete(&queue, &received[0].queue_id, &received[0].pop_receipt)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(queues.peek(&queue, 32).await.unwrap().is_empty(), "deleted");
    queues.delete_queue(&queue).await.unwrap();
}

#[tokio::test]
async fn updating_visibility_keeps_the_text() {
    let Some((queues, queue)) = fresh().await else {
        return;
    };
    let id = queues
        .send(&queue, OutgoingMessage::new("kept"))
        .await
        .unwrap();
    let received = queues.receive(&queue, 1, LONG).await.unwrap();
    let receipt = queues
        .update_visibility(
            &queue,
            &received[0].queue_id,
            &received[0].pop_receipt,
            Duration::ZERO,
        )
        .await
        .unwrap();
    assert_ne!(receipt, received[0].pop_receipt);
    let again = queues.receive(&queue, 1, LONG).await.unwrap();
    assert_eq!(again.len(), 1, "visible at once");
    assert_eq!(
        (again[0].message.id.as_str(), &again[0].message.body[..]),
        (id.as_str(), &b"kept"[..])
    );
    queues
        .delete(&queue, &again[0].queue_id, &again[0].pop_receipt)
        .await
        .unwrap();
    queues.delete_queue(&queue).await.unwrap();
}

#[tokio::test]
async fn a_plain_text_message_from_another_producer_is_its_own_body() {
    let Some(account) = azurite() else { return };
    let queues = StorageQueues::new(&account);
    let queue = unique("q-");
    queues.create(&queue).await.unwrap();
    let url = format!("{}/{queue}/messages", account.queue_endpoint());
    let mut put = Request::new(url.parse().unwrap(), Method::Post);
    put.insert_header(HeaderName::from_static("content-type"), "application/xml");
    put.set_body("<QueueMessage><MessageText>order 42 &amp; more</MessageText></QueueMessage>");
    let options = PipelineSendOptions {
        skip_checks: true,
        ..Default::default()
    };
    let sent = pipeline(&account, Service::Queue)
        .send(&Context::new(), &mut put, Some(options))
        .await
        .unwrap();
    assert_eq!(u16::from(sent.status()), 201);

    let received = queues.receive(&queue, 1, LONG).await.unwrap();
    let message = &received[0].message;
    assert_eq!(&message.body[..], b"order 42 & more");
    assert_eq!(
        message.id, received[0].queue_id,
        "a bare message goes by the queue's id"
    );
    assert!(message.published_at.is_some(), "its insertion time");
    queues.delete_queue(&queue).await.unwrap();
}

#[tokio::test]
async fn a_missing_queue_is_named_with_what_to_do() {
    let Some(account) = azurite() else { return };
    let queues = StorageQueues::new(&account);
    let queue = unique("never-");
    let error = queues
        .send(&queue, OutgoingMessage::new("x"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert!(error.message().contains(&format!("`{queue}`")), "{error}");
    assert!(error.message().contains("must be created"), "{error}");
    assert!(!error.is_for_caller());
    let error = queues.receive(&queue, 0, LONG).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Invalid);
}
