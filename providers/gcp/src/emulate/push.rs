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

use std::{
    collections::{HashMap, VecDeque},
    time::Duration,
};

use google_cloud_pubsub::{client::Subscriber, subscriber::handler::Handler};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{client::received, events::push_envelope};

/// The statuses Pub/Sub takes as an ack.
const ACKS: [u16; 5] = [102, 200, 201, 202, 204];

/// How long a lane waits for a nacked message to come back: past Pub/Sub's
/// longest retry backoff (600 s), it went to the dead-letter topic.
const REDELIVERY_WAIT: Duration = Duration::from_secs(660);

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

/// The nacked message an ordering key's lane waits for.
struct Failed {
    id: String,
    given_up_at: tokio::time::Instant,
}

impl Endpoint {
    /// Pushes the subscription's messages until `stop`.
    pub(crate) async fn run(self, subscriber: Subscriber, stop: CancellationToken) {
        let mut stream = subscriber.subscribe(&self.subscription).build();
        // One lane per ordering key: a key's messages go one at a time. A
        // lane lives as long as the dev project: keys are few there.
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

    /// One ordering key's messages, in order. After a nack the key's later
    /// messages are held here, unpushed, until the failed one comes back
    /// and is pushed again, as Pub/Sub holds them back. (Nacking them
    /// instead would let the emulator redeliver them out of order.)
    async fn lane(self, mut deliveries: mpsc::UnboundedReceiver<Delivery>) {
        let mut held: VecDeque<Delivery> = VecDeque::new();
        let mut failed: Option<Failed> = None;
        loop {
            let delivery = if let Some(failed_one) = &failed {
                // A message that exhausted its attempts went to the
                // dead-letter topic and will not come back.
                match tokio::time::timeout_at(failed_one.given_up_at, deliveries.recv()).await {
                    Ok(delivery) => delivery,
                    Err(_) => {
                        failed = None;
                        self.push_held(&mut held, &mut failed).await;
                        continue;
                    }
                }
            } else {
                deliveries.recv().await
            };
            let Some(delivery) = delivery else { return };
            match &failed {
                Some(failed_one) if failed_one.id == delivery.id => {
                    failed = None;
                    held.push_front(delivery);
                }
                // A held message's lease ran out and it came again: the new
                // copy takes its place (dropping the old one nacks it).
                _ => match held.iter_mut().find(|h| h.id == delivery.id) {
                    Some(stale) => *stale = delivery,
                    None => held.push_back(delivery),
                },
            }
            self.push_held(&mut held, &mut failed).await;
        }
    }

    /// Pushes `held` in order until one is nacked; `failed` names that one.
    async fn push_held(&self, held: &mut VecDeque<Delivery>, failed: &mut Option<Failed>) {
        while failed.is_none() {
            let Some(next) = held.pop_front() else { return };
            let acked = self.push(&next.envelope).await;
            if !acked {
                *failed = Some(Failed {
                    id: next.id.clone(),
                    given_up_at: tokio::time::Instant::now() + REDELIVERY_WAIT,
                });
            }
            settle(next.handler, acked);
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
