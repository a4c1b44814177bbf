//! [`PubSub`] on Google's Pub/Sub emulator: what is sent arrives as it was
//! sent; and a push subscription from the emulator to the real server,
//! whose outcomes are Pub/Sub's acks, redeliveries and the function's
//! dead-letter topic.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use cloudfn_core::{
    App, Error, ErrorKind, Function, Message, OutgoingMessage,
    messaging::dead_letter,
    provider::{QueueClient, TopicClient},
    store::NoStore,
};
use cloudfn_gcp::client::PubSub;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::{Emulator, PROJECT, pubsub_emulator, unique};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn sent_messages_arrive_byte_exact_with_attributes_and_ordering_keys() {
    let Some(host) = pubsub_emulator() else {
        return;
    };
    let emulator = Emulator::new(&host);
    let topic = unique("orders-");
    emulator.create_topic(&topic).await;
    emulator.create_pull(&format!("{topic}-all"), &topic).await;
    let pubsub = PubSub::connect(PROJECT, Some(&host))
        .await
        .unwrap()
        .as_given();

    let json = OutgoingMessage::new(r#"{ "id": "o-1",  "qty": 2 }"#)
        .with_attribute("tenant", "t-1")
        .with_ordering_key("customer-1");
    let binary = OutgoingMessage::new(vec![0xff, 0x00, b'a', b'\n']);
    let sent = QueueClient::send(&pubsub, &topic, json).await.unwrap();
    let published = TopicClient::publish(&pubsub, &topic, binary).await.unwrap();
    assert_ne!(sent, published, "each message gets its own id");

    let mut pulled = emulator.pull(&format!("{topic}-all"), 2, WAIT).await;
    assert_eq!(pulled.len(), 2, "{pulled:?}");
    pulled.sort_by_key(|p| p.data.len());
    assert_eq!(pulled[0].data, vec![0xff, 0x00, b'a', b'\n']);
    assert_eq!(pulled[0].ordering_key, None);
    assert_eq!(pulled[1].data, br#"{ "id": "o-1",  "qty": 2 }"#);
    assert_eq!(pulled[1].attributes["tenant"], "t-1");
    assert_eq!(pulled[1].ordering_key.as_deref(), Some("customer-1"));
}

#[tokio::test]
async fn a_delayed_send_is_refused_not_sent_at_once() {
    let Some(host) = pubsub_emulator() else {
        return;
    };
    let pubsub = PubSub::connect(PROJECT, Some(&host)).await.unwrap();
    let delayed = OutgoingMessage::new("later").with_delay(Duration::from_secs(30));
    let error = QueueClient::send(&pubsub, "orders", delayed)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Invalid);
    assert!(error.message().contains("delay"), "{error}");
}

#[tokio::test]
async fn a_sent_to_topic_that_does_not_exist_is_not_found() {
    let Some(host) = pubsub_emulator() else {
        return;
    };
    let pubsub = PubSub::connect(PROJECT, Some(&host))
        .await
        .unwrap()
        .as_given();
    let error = QueueClient::send(&pubsub, &unique("nowhere-"), OutgoingMessage::new("x"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
}

/// How often `charge` saw each body.
type Seen = Arc<Mutex<HashMap<String, u32>>>;

/// A queue function on `queue` that succeeds, fails for good, or fails
/// once and then succeeds, as the body's `outcome` says.
fn app(queue: &str, seen: Seen) -> App {
    App::new("shop").function(Function::queue(
        "charge",
        queue,
        move |m: Message<Value>, _| {
            let seen = seen.clone();
            async move {
                let outcome = m.body["outcome"].as_str().unwrap_or_default().to_owned();
                let times = {
                    let mut seen = seen.lock().unwrap();
                    let times = seen.entry(outcome.clone()).or_default();
                    *times += 1;
                    *times
                };
                match outcome.as_str() {
                    "declined" => Err(Error::bad_input("card declined")),
                    "flaky" if times == 1 => Err(Error::unavailable("the bank timed out")),
                    _ => Ok(()),
                }
            }
        },
    ))
}

#[tokio::test]
async fn pushed_messages_are_acked_retried_or_dead_lettered_by_the_functions_policy() {
    let Some(host) = pubsub_emulator() else {
        return;
    };
    let emulator = Emulator::new(&host);
    let queue = unique("orders-");
    let dead = cloudfn_core::conventions::default_dead_letter_queue(&queue);
    emulator.create_topic(&queue).await;
    emulator.create_topic(&dead).await;
    emulator.create_pull(&format!("{dead}-read"), &dead).await;

    let pubsub = Arc::new(PubSub::connect(PROJECT, Some(&host)).await.unwrap());
    let seen = Seen::default();
    let app = app(&queue, seen.clone());
    let services = app.services(
        cloudfn_gcp::PROVIDER,
        pubsub.clone(),
        pubsub.clone(),
        Arc::new(NoStore),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let endpoint = format!("http://{}/", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let server = tokio::spawn(cloudfn_gcp::serve_on(
        app,
        Some("charge"),
        services,
        listener,
        stop.clone(),
    ));
    emulator
        .create_push(&format!("{queue}-charge"), &queue, &endpoint)
        .await;

    for outcome in ["paid", "declined", "flaky"] {
        let message = OutgoingMessage::new(json!({ "outcome": outcome }).to_string())
            .with_attribute("order", outcome);
        QueueClient::send(&*pubsub, &queue, message).await.unwrap();
    }

    // The declined order, and only it, reaches the dead-letter topic, with
    // what cloudfn says of every dead letter.
    let letters = emulator.pull(&format!("{dead}-read"), 1, WAIT).await;
    assert_eq!(
        letters.len(),
        1,
        "{letters:?}; seen {:?}",
        seen.lock().unwrap()
    );
    let letter = &letters[0];
    assert_eq!(
        serde_json::from_slice::<Value>(&letter.data).unwrap(),
        json!({"outcome": "declined"})
    );
    assert_eq!(letter.attributes["order"], "declined");
    assert_eq!(letter.attributes[dead_letter::FUNCTION], "charge");
    assert_eq!(letter.attributes[dead_letter::SOURCE], queue);
    assert!(
        letter.attributes[dead_letter::ERROR]
            .as_str()
            .unwrap()
            .contains("card declined")
    );

    // The flaky one was nacked once and redelivered a second later.
    let deadline = std::time::Instant::now() + WAIT;
    while seen.lock().unwrap().get("flaky").copied().unwrap_or(0) < 2
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Long enough for a wrong ack to show as a redelivery.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.get("paid"), Some(&1), "{seen:?}");
    assert_eq!(seen.get("declined"), Some(&1), "{seen:?}");
    assert_eq!(seen.get("flaky"), Some(&2), "{seen:?}");
    assert!(
        emulator
            .pull(&format!("{dead}-read"), 1, Duration::from_millis(500))
            .await
            .is_empty(),
        "nothing else was dead-lettered"
    );
    stop.cancel();
    server.await.unwrap().unwrap();
}
