//! The app's queues and topics as Pub/Sub resources.
//!
//! A neutral topic is a Pub/Sub topic with one subscription per
//! subscribing function (its subscription queue). A neutral queue is a
//! topic with one subscription: pushed to its consumer, or, for a queue
//! nothing consumes (a dead-letter queue), pulled, so that it holds what
//! is sent to it: Pub/Sub drops what is published to a topic without
//! subscriptions.

use std::{collections::BTreeSet, time::Duration};

use cloudfn_core::{AppSpec, QueueSpec, conventions};

/// The fewest and most deliveries a dead-letter policy allows.
const DELIVERY_ATTEMPTS: (u32, u32) = (5, 100);

/// The longest backoff and ack deadline Pub/Sub allows.
const MAX_SECONDS: u64 = 600;

/// The shortest ack deadline Pub/Sub allows, and its default.
const MIN_ACK_DEADLINE: Duration = Duration::from_secs(10);

/// How long a pulled message stays leased before it is handed out again.
const PULL_ACK_DEADLINE: Duration = Duration::from_secs(60);

/// Every topic and subscription of an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Messaging {
    /// Topic ids, each once.
    pub topics: Vec<String>,
    /// One per queue, subscription queues included.
    pub subscriptions: Vec<Subscription>,
}

/// One Pub/Sub subscription: a neutral queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The neutral queue it is.
    pub queue: String,
    /// Its id.
    pub name: String,
    /// The id of the topic it takes messages from.
    pub topic: String,
    /// The function its messages are pushed to; `None`: a pull
    /// subscription, which holds them.
    pub consumer: Option<String>,
    /// The topic Pub/Sub moves a message to after
    /// [`Subscription::max_delivery_attempts`]. The consumer dead-letters
    /// there in code on its last attempt (Pub/Sub sends the attempt with
    /// every push once this is set); Pub/Sub's move is the last resort.
    pub dead_letter_topic: Option<String>,
    /// Deliveries before Pub/Sub's move: the redrive count of
    /// [`conventions::redrive_receive_count`], within Pub/Sub's 5..=100.
    pub max_delivery_attempts: u32,
    /// The retry policy's backoff, from the consumer's first delay...
    pub min_backoff: Duration,
    /// ...to its largest, both within Pub/Sub's 600 s.
    pub max_backoff: Duration,
    /// How long a push may take before Pub/Sub counts it failed: the
    /// consumer's timeout and 10 s to report, within 10..=600 s.
    pub ack_deadline: Duration,
    /// Messages with one ordering key are delivered in order (FIFO).
    pub ordering: bool,
}

/// The topics and subscriptions of `spec`, each named by its neutral name
/// behind `prefix` ([`conventions::physical_name`]).
pub fn messaging(spec: &AppSpec, prefix: &str) -> Messaging {
    let physical = |name: &str| conventions::physical_name(prefix, name);
    let mut topics = BTreeSet::new();
    topics.extend(spec.topics.iter().map(|t| physical(&t.name)));
    let mut subscriptions = Vec::new();
    for queue in &spec.queues {
        let topic = match &queue.subscribes_to {
            Some(topic) => physical(topic),
            None => {
                topics.insert(physical(&queue.name));
                physical(&queue.name)
            }
        };
        subscriptions.push(subscription(spec, queue, topic, &physical));
    }
    Messaging {
        topics: topics.into_iter().collect(),
        subscriptions,
    }
}

fn subscription(
    spec: &AppSpec,
    queue: &QueueSpec,
    topic: String,
    physical: &dyn Fn(&str) -> String,
) -> Subscription {
    let consumer = queue.consumers.first().and_then(|name| spec.function(name));
    let seconds = |d: Duration| Duration::from_secs(d.as_secs_f64().ceil() as u64);
    let within = |d: Duration| d.min(Duration::from_secs(MAX_SECONDS));
    let mut subscription = Subscription {
        queue: queue.name.clone(),
        name: physical(&queue.name),
        topic,
        consumer: None,
        dead_letter_topic: None,
        max_delivery_attempts: 0,
        // Pub/Sub's own defaults.
        min_backoff: Duration::from_secs(10),
        max_backoff: Duration::from_secs(MAX_SECONDS),
        ack_deadline: PULL_ACK_DEADLINE,
        ordering: queue.fifo,
    };
    if let Some(function) = consumer {
        let retry = &function.policy.retry;
        let attempts = queue
            .max_receive_count
            .unwrap_or_else(|| conventions::redrive_receive_count(retry.max_attempts));
        subscription.consumer = Some(function.name.clone());
        subscription.dead_letter_topic = queue.dead_letter.as_deref().map(physical);
        subscription.max_delivery_attempts =
            attempts.clamp(DELIVERY_ATTEMPTS.0, DELIVERY_ATTEMPTS.1);
        subscription.min_backoff = within(seconds(retry.initial_delay));
        subscription.max_backoff = within(seconds(retry.max_delay)).max(subscription.min_backoff);
        subscription.ack_deadline =
            within(seconds(function.policy.timeout) + MIN_ACK_DEADLINE).max(MIN_ACK_DEADLINE);
    }
    subscription
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::tests::every_trigger;

    fn find<'a>(messaging: &'a Messaging, queue: &str) -> &'a Subscription {
        messaging
            .subscriptions
            .iter()
            .find(|s| s.queue == queue)
            .unwrap_or_else(|| panic!("no subscription for `{queue}`"))
    }

    #[test]
    fn a_queue_is_a_topic_pushed_to_its_consumer_with_its_retry_policy() {
        let messaging = messaging(&every_trigger().spec(), "shop");
        let orders = find(&messaging, "orders");
        assert_eq!(orders.name, "shop-orders");
        assert_eq!(orders.topic, "shop-orders");
        assert_eq!(orders.consumer.as_deref(), Some("charge"));
        assert_eq!(orders.dead_letter_topic.as_deref(), Some("shop-orders-dlq"));
        // Four attempts in code; Pub/Sub's move only well after them.
        assert_eq!(orders.max_delivery_attempts, 20);
        assert_eq!(orders.min_backoff, Duration::from_secs(1));
        assert_eq!(orders.max_backoff, Duration::from_secs(60));
        assert_eq!(orders.ack_deadline, Duration::from_secs(40));
        assert!(!orders.ordering);
        assert!(find(&messaging, "entries").ordering);
    }

    #[test]
    fn a_topic_has_one_subscription_per_subscriber_and_dead_letters_are_held() {
        let messaging = messaging(&every_trigger().spec(), "");
        let notify = find(&messaging, "order-paid-notify");
        assert_eq!(notify.topic, "order-paid");
        assert_eq!(notify.consumer.as_deref(), Some("notify"));
        assert_eq!(
            notify.dead_letter_topic.as_deref(),
            Some("order-paid-notify-dead-letter")
        );
        let held = find(&messaging, "orders-dlq");
        assert_eq!(held.topic, "orders-dlq");
        assert_eq!(held.consumer, None);
        assert_eq!(held.dead_letter_topic, None);
        // Every topic once: subscription queues have none of their own.
        assert!(messaging.topics.contains(&"order-paid".to_owned()));
        assert!(!messaging.topics.contains(&"order-paid-notify".to_owned()));
        let mut sorted = messaging.topics.clone();
        sorted.dedup();
        assert_eq!(sorted, messaging.topics);
        // Schedules dead-letter too, into a queue of their own.
        assert!(messaging.topics.contains(&"report-dead-letter".to_owned()));
    }

    #[test]
    fn policies_beyond_pub_sub_are_brought_within_its_limits() {
        let mut spec = every_trigger().spec();
        let charge = spec
            .functions
            .iter_mut()
            .find(|f| f.name == "charge")
            .unwrap();
        charge.policy.timeout = Duration::from_secs(3000);
        charge.policy.retry.initial_delay = Duration::from_millis(1500);
        charge.policy.retry.max_delay = Duration::from_secs(3600);
        spec.queues
            .iter_mut()
            .find(|q| q.name == "orders")
            .unwrap()
            .max_receive_count = Some(1000);
        let orders = find(&messaging(&spec, ""), "orders").clone();
        assert_eq!(orders.ack_deadline, Duration::from_secs(600));
        assert_eq!(orders.min_backoff, Duration::from_secs(2));
        assert_eq!(orders.max_backoff, Duration::from_secs(600));
        assert_eq!(orders.max_delivery_attempts, 100);
    }
}
