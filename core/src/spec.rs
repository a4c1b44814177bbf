//! The app as data: what deployment files are rendered from.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::{App, Policy, Trigger};

/// Everything a deployment needs to know about an [`App`], with no code in it.
/// Each cloud adapter renders its deployment files from this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppSpec {
    /// The app's name.
    pub name: String,
    /// Its functions.
    pub functions: Vec<FunctionSpec>,
    /// Every queue a function consumes, sends to or dead-letters into.
    pub queues: Vec<QueueSpec>,
    /// Every topic a function subscribes or publishes to.
    pub topics: Vec<TopicSpec>,
    /// Every bucket a storage trigger watches.
    pub buckets: Vec<String>,
}

/// One function: trigger, policies and what it may reach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionSpec {
    /// The name.
    pub name: String,
    /// What fires it.
    pub trigger: Trigger,
    /// Its policies.
    #[serde(flatten)]
    pub policy: Policy,
    /// Queues it sends to.
    pub sends_to: BTreeSet<String>,
    /// Topics it publishes to.
    pub publishes_to: BTreeSet<String>,
}

/// One queue and who uses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSpec {
    /// The name.
    pub name: String,
    /// Ordered per ordering key.
    pub fifo: bool,
    /// Its dead-letter queue, from the consuming function's policy.
    pub dead_letter: Option<String>,
    /// Deliveries before a message is dead-lettered: the consumer's `max_attempts`.
    pub max_receive_count: Option<u32>,
    /// Whether it receives some function's dead letters.
    pub is_dead_letter: bool,
    /// Functions triggered by it.
    pub consumers: Vec<String>,
    /// Functions that send to it.
    pub producers: Vec<String>,
}

/// One topic and who uses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicSpec {
    /// The name.
    pub name: String,
    /// Functions subscribed to it.
    pub subscribers: Vec<String>,
    /// Functions that publish to it.
    pub publishers: Vec<String>,
}

impl QueueSpec {
    fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            fifo: false,
            dead_letter: None,
            max_receive_count: None,
            is_dead_letter: false,
            consumers: Vec::new(),
            producers: Vec::new(),
        }
    }
}

impl AppSpec {
    pub(crate) fn of(app: &App) -> Self {
        let mut queues: BTreeMap<String, QueueSpec> = BTreeMap::new();
        let mut topics: BTreeMap<String, TopicSpec> = BTreeMap::new();
        let mut buckets = BTreeSet::new();
        let mut functions = Vec::new();
        for function in app.functions() {
            let name = function.name().to_owned();
            let policy = function.policy();
            match function.trigger() {
                Trigger::Queue { queue: q, fifo } => {
                    let spec = queues
                        .entry(q.clone())
                        .or_insert_with(|| QueueSpec::named(q));
                    spec.fifo |= *fifo;
                    spec.consumers.push(name.clone());
                    spec.dead_letter = policy.dead_letter.clone();
                    spec.max_receive_count = Some(policy.retry.max_attempts);
                }
                Trigger::Topic { topic } => {
                    topic_entry(&mut topics, topic)
                        .subscribers
                        .push(name.clone());
                }
                Trigger::Storage { bucket, .. } => {
                    buckets.insert(bucket.clone());
                }
                Trigger::Http { .. } | Trigger::Schedule { .. } => {}
            }
            if let Some(dlq) = &policy.dead_letter {
                let spec = queues
                    .entry(dlq.clone())
                    .or_insert_with(|| QueueSpec::named(dlq));
                spec.is_dead_letter = true;
                // A FIFO queue's dead letters must go to a FIFO queue too (SQS requires it).
                spec.fifo |= matches!(function.trigger(), Trigger::Queue { fifo: true, .. });
            }
            for q in function.sends() {
                queues
                    .entry(q.clone())
                    .or_insert_with(|| QueueSpec::named(q))
                    .producers
                    .push(name.clone());
            }
            for t in function.publishes() {
                topic_entry(&mut topics, t).publishers.push(name.clone());
            }
            functions.push(FunctionSpec {
                name,
                trigger: function.trigger().clone(),
                policy: policy.clone(),
                sends_to: function.sends().clone(),
                publishes_to: function.publishes().clone(),
            });
        }
        Self {
            name: app.name().to_owned(),
            functions,
            queues: queues.into_values().collect(),
            topics: topics.into_values().collect(),
            buckets: buckets.into_iter().collect(),
        }
    }
}

fn topic_entry<'a>(topics: &'a mut BTreeMap<String, TopicSpec>, name: &str) -> &'a mut TopicSpec {
    topics.entry(name.to_owned()).or_insert_with(|| TopicSpec {
        name: name.to_owned(),
        subscribers: Vec::new(),
        publishers: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{
        Context, Error, Function, HttpRequest, HttpResponse, Message, Method, RetryPolicy,
    };

    async fn http(_: HttpRequest, _: Context) -> Result<HttpResponse, Error> {
        Ok(HttpResponse::new(200))
    }
    async fn msg(_: Message<serde_json::Value>, _: Context) -> Result<(), Error> {
        Ok(())
    }

    fn shop() -> App {
        App::new("shop")
            .function(Function::http("checkout", Method::Post, "/orders", http).sends_to("orders"))
            .function(
                Function::queue("charge", "orders", msg)
                    .retry(RetryPolicy::new(4))
                    .dead_letter("orders-dlq")
                    .timeout(Duration::from_secs(10))
                    .publishes_to("order-paid"),
            )
            .function(Function::topic("notify", "order-paid", msg))
    }

    #[test]
    fn spec_collects_queues_topics_and_policies() {
        let spec = shop().spec();
        assert_eq!(spec.functions.len(), 3);
        let orders = spec.queues.iter().find(|q| q.name == "orders").unwrap();
        assert_eq!(orders.consumers, ["charge"]);
        assert_eq!(orders.producers, ["checkout"]);
        assert_eq!(orders.dead_letter.as_deref(), Some("orders-dlq"));
        assert_eq!(orders.max_receive_count, Some(4));
        let dlq = spec.queues.iter().find(|q| q.name == "orders-dlq").unwrap();
        assert!(dlq.is_dead_letter);
        assert_eq!(spec.topics[0].subscribers, ["notify"]);
        assert_eq!(spec.topics[0].publishers, ["charge"]);
    }

    #[test]
    fn spec_round_trips_through_json() {
        let spec = shop().spec();
        let json = serde_json::to_value(&spec).unwrap();
        let charge = &json["functions"][1];
        assert_eq!(
            charge["trigger"],
            serde_json::json!({"kind": "queue", "queue": "orders"})
        );
        assert_eq!(charge["timeout"], 10_000);
        assert_eq!(charge["retry"]["max_attempts"], 4);
        assert_eq!(charge["dead_letter"], "orders-dlq");
        assert_eq!(serde_json::from_value::<AppSpec>(json).unwrap(), spec);
    }

    #[test]
    fn validate_names_the_mistake() {
        let bad_cron =
            App::new("a").function(Function::schedule("tick", "every minute", |_, _| async {
                Ok(())
            }));
        let err = bad_cron.validate().unwrap_err();
        assert!(
            err.message().contains("`tick`") && err.message().contains("cron"),
            "{err}"
        );
        let twice = shop().function(Function::topic("notify", "x", msg));
        assert!(
            twice
                .validate()
                .unwrap_err()
                .message()
                .contains("used twice")
        );
        let self_dlq =
            App::new("a").function(Function::queue("q", "jobs", msg).dead_letter("jobs"));
        assert!(
            self_dlq
                .validate()
                .unwrap_err()
                .message()
                .contains("own dead-letter")
        );
        shop().validate().unwrap();
    }
}
