//! Push delivery, as Pub/Sub makes it to a Cloud Run URL.
//!
//! The emulator pushes too, but leaves out of its push bodies the two
//! fields cloudfn's contract rests on: `deliveryAttempt` (which Pub/Sub
//! sends once a subscription has a dead-letter policy) and `orderingKey`
//! (PROTOCOL.md §6.1). Its pulls carry both. So each push subscription is
//! pulled here from the emulator, which keeps the subscription's state
//! (leases, the retry policy's backoff, ordering, the dead-letter move),
//! and every message is pushed to the function in the envelope Pub/Sub
//! sends; the answer acks (102, 200, 201, 202, 204) or nacks it.

use std::{collections::HashMap, time::Duration};

use google_cloud_pubsub::{client::Subscriber, subscriber::handler::Handler};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{client::received, events::push_envelope};

/// The statuses Pub/Sub takes as an ack.
const ACKS: [u16; 5] = [102, 200, 201, 202, 204];

/// Where one subscription's messages go.
#[derive(Clone)]
pub(crate) struct Endpoint {
    /// `projects/P/subscriptions/S`, as the envelope names it.
    pub(crate) subscription: String,
    /// The function's URL.
    pub(crate) url: String,
    /// How long a push may take: the subscription's ack deadline.
    pub(crate) deadline: Duration,
    pub(crate) http: reqwest::Client,
}

/// One pulled message, on its way.
struct Delivery {
    id: String,
    envelope: serde_json::Value,
    handler: Handler,
}

impl Endpoint {
    /// Pushes the subscription's messages until `stop`.
    pub(crate) async fn run(self, subscriber: Subscriber, stop: CancellationToken) {
        let mut stream = subscriber.subscribe(&self.subscription).build();
        // One lane per ordering key: a key's messages go one at a time.
        let mut lanes: HashMap<String, mpsc::UnboundedSender<Delivery>> = HashMap::new();
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => return,
                next = stream.next() => next,
            };
            let (message, handler) = match next {
                Some(Ok(pulled)) => pulled,
                Some(Err(error)) => {
                    tracing::warn!(subscription = %self.subscription, error = %error, "pulling from the emulator failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                None => return,
            };
            let attempt = handler.delivery_attempt();
            let key = message.ordering_key.clone();
            let message = received(message, "", attempt);
            let delivery = Delivery {
                id: message.id.clone(),
                envelope: push_envelope(&message, &self.subscription, attempt.map(|a| a as u32)),
                handler,
            };
            if key.is_empty() {
                let endpoint = self.clone();
                tokio::spawn(async move {
                    let acked = endpoint.push(&delivery.envelope).await;
                    settle(delivery.handler, acked);
                });
                continue;
            }
            let lane = lanes.entry(key).or_insert_with(|| {
                let (sender, receiver) = mpsc::unbounded_channel();
                tokio::spawn(self.clone().lane(receiver));
                sender
            });
            if let Err(returned) = lane.send(delivery) {
                returned.0.handler.nack();
            }
        }
    }

    /// One ordering key's messages, in order. After a nack, the key's
    /// later messages are nacked unpushed until the failed one comes
    /// back, as Pub/Sub holds them back.
    async fn lane(self, mut deliveries: mpsc::UnboundedReceiver<Delivery>) {
        let mut waiting_for: Option<String> = None;
        while let Some(delivery) = deliveries.recv().await {
            if waiting_for.as_ref().is_some_and(|id| *id != delivery.id) {
                delivery.handler.nack();
                continue;
            }
            let acked = self.push(&delivery.envelope).await;
            waiting_for = (!acked).then(|| delivery.id.clone());
            settle(delivery.handler, acked);
        }
    }

    /// Posts one envelope; whether the answer acks it.
    async fn push(&self, envelope: &serde_json::Value) -> bool {
        let sent = self
            .http
            .post(&self.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, "APIs-Google")
            .timeout(self.deadline)
            .json(envelope)
            .send()
            .await;
        match sent {
            Ok(response) => ACKS.contains(&response.status().as_u16()),
            Err(error) => {
                tracing::warn!(url = %self.url, error = %error, "the push did not get an answer");
                false
            }
        }
    }
}

fn settle(handler: Handler, acked: bool) {
    if acked {
        handler.ack();
    } else {
        handler.nack();
    }
}
