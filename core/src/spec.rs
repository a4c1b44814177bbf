//! The app as data: what deployment files are rendered from.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use serde::{Deserialize, Serialize};

use crate::{
    App, Policy, StoreAccess, Trigger, conventions,
    workflow::{Action, Workflow},
};

/// Everything a deployment needs to know about an [`App`], with no code in it.
/// Each cloud adapter renders its deployment files from this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppSpec {
    /// The app's name.
    pub name: String,
    /// Its functions.
    pub functions: Vec<FunctionSpec>,
    /// Every queue a function consumes, sends to or dead-letters into, or a
    /// workflow sends to, subscription queues and default dead-letter
    /// queues included: a provider creates exactly these.
    pub queues: Vec<QueueSpec>,
    /// Every topic a function subscribes or publishes to, or a workflow publishes to.
    pub topics: Vec<TopicSpec>,
    /// Every bucket a storage trigger watches.
    pub buckets: Vec<String>,
    /// Every store a function declared, and the idempotency store if any
    /// function is idempotent.
    #[serde(default)]
    pub stores: Vec<StoreSpec>,
    /// Its workflows, which a provider renders to its own engine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workflows: Vec<Workflow>,
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
    /// The queue that feeds it, if one does: its queue trigger's, or its
    /// subscription queue of a topic ([`crate::conventions::consumed_queue`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumes: Option<String>,
    /// Queues it sends to.
    pub sends_to: BTreeSet<String>,
    /// Topics it publishes to.
    pub publishes_to: BTreeSet<String>,
    /// Workflows it starts.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub starts: BTreeSet<String>,
    /// Stores it reads or writes: those it declared, and
    /// [`crate::conventions::IDEMPOTENCY_STORE`] if it is idempotent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stores: BTreeMap<String, StoreAccess>,
}

/// One key-value store and who uses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreSpec {
    /// The neutral name.
    pub name: String,
    /// Functions that only read it.
    pub readers: Vec<String>,
    /// Functions that read and write it.
    pub writers: Vec<String>,
}

/// One queue and who uses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSpec {
    /// The neutral name ([`crate::conventions::subscription_queue`] for the
    /// queue that carries a topic to one subscriber).
    pub name: String,
    /// Ordered per ordering key.
    pub fifo: bool,
    /// Where its consumer's failed deliveries go: the declared dead-letter
    /// queue, else [`crate::conventions::default_dead_letter_queue`].
    pub dead_letter: Option<String>,
    /// Receives before the queue's own redrive moves a message to the
    /// dead-letter queue: well above the consumer's `max_attempts`
    /// ([`crate::conventions::redrive_receive_count`]), since the consumer
    /// dead-letters in code on its last attempt and the redrive is only the
    /// last resort.
    pub max_receive_count: Option<u32>,
    /// How long a delivery stays invisible, from the consumer's timeout
    /// ([`crate::conventions::visibility_timeout`]).
    #[serde(
        default,
        with = "crate::policy::millis_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub visibility_timeout: Option<Duration>,
    /// Whether it receives some function's dead letters.
    pub is_dead_letter: bool,
    /// The topic it carries to its one consumer, if it is a subscription queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribes_to: Option<String>,
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
            visibility_timeout: None,
            is_dead_letter: false,
            subscribes_to: None,
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
        let mut stores: BTreeMap<String, StoreSpec> = BTreeMap::new();
        let mut functions = Vec::new();
        for function in app.functions() {
            let name = function.name().to_owned();
            let policy = function.policy();
            let fifo = matches!(function.trigger(), Trigger::Queue { fifo: true, .. });
            let consumes = conventions::consumed_queue(&name, function.trigger());
            let failures = conventions::failure_queue(&name, function.trigger(), policy);
            if let (Some(source), Some(dead_letter)) = (&consumes, &failures) {
                let consumed = queue_entry(&mut queues, source);
                consumed.fifo |= fifo;
                consumed.consumers.push(name.clone());
                consumed.dead_letter = Some(dead_letter.clone());
                consumed.max_receive_count = Some(conventions::redrive_receive_count(
                    policy.retry.max_attempts,
                ));
                consumed.visibility_timeout = Some(conventions::visibility_timeout(policy.timeout));
                if let Trigger::Topic { topic } = function.trigger() {
                    consumed.subscribes_to = Some(topic.clone());
                }
                let dlq = queue_entry(&mut queues, dead_letter);
                dlq.is_dead_letter = true;
                // A FIFO queue's dead letters must go to a FIFO queue too (SQS requires it).
                dlq.fifo |= fifo;
            } else if let Some(dlq) = &failures {
                // Schedules and storage changes that fail for good land here,
                // declared or not, so none is dropped after the last retry.
                queue_entry(&mut queues, dlq).is_dead_letter = true;
            }
            match function.trigger() {
                Trigger::Topic { topic } => {
                    topic_entry(&mut topics, topic)
                        .subscribers
                        .push(name.clone());
                }
                Trigger::Storage { bucket, .. } => {
                    buckets.insert(bucket.clone());
                }
                _ => {}
            }
            for q in function.sends() {
                queue_entry(&mut queues, q).producers.push(name.clone());
            }
            for t in function.publishes() {
                topic_entry(&mut topics, t).publishers.push(name.clone());
            }
            let mut used = function.stores().clone();
            if policy.idempotency.is_some() {
                used.insert(
                    conventions::IDEMPOTENCY_STORE.to_owned(),
                    StoreAccess::ReadWrite,
                );
            }
            for (store, access) in &used {
                let entry = stores.entry(store.clone()).or_insert_with(|| StoreSpec {
                    name: store.clone(),
                    readers: Vec::new(),
                    writers: Vec::new(),
                });
                match access {
                    StoreAccess::Read => entry.readers.push(name.clone()),
                    StoreAccess::ReadWrite => entry.writers.push(name.clone()),
                }
            }
            functions.push(FunctionSpec {
                name,
                trigger: function.trigger().clone(),
                policy: policy.clone(),
                consumes,
                sends_to: function.sends().clone(),
                publishes_to: function.publishes().clone(),
                starts: function.starts().clone(),
                stores: used,
            });
        }
        // What a workflow's own steps send to or publish to exists too;
        // the workflow's engine, not a function, is what reaches it.
        for step in app.workflows().iter().flat_map(Workflow::all_steps) {
            match &step.action {
                Action::Send { queue } => {
                    queue_entry(&mut queues, queue);
                }
                Action::Publish { topic } => {
                    topic_entry(&mut topics, topic);
                }
                _ => {}
            }
        }
        Self {
            name: app.name().to_owned(),
            functions,
            queues: queues.into_values().collect(),
            topics: topics.into_values().collect(),
            buckets: buckets.into_iter().collect(),
            stores: stores.into_values().collect(),
            workflows: app.workflows().to_vec(),
        }
    }

    /// This spec where every function that starts a workflow writes the
    /// app's [`crate::workflow::EXECUTIONS_STORE`], as it does where the
    /// start is recorded in the app's own store: the in-app orchestrator's
    /// record, or a claim of the id where the engine takes none of the
    /// caller's. Itself if no function starts a workflow or it is so already.
    pub fn with_recorded_starts(&self) -> Self {
        let store = crate::workflow::EXECUTIONS_STORE;
        let mut spec = self.clone();
        let mut starters = Vec::new();
        for function in spec.functions.iter_mut().filter(|f| !f.starts.is_empty()) {
            function
                .stores
                .insert(store.to_owned(), StoreAccess::ReadWrite);
            starters.push(function.name.clone());
        }
        if starters.is_empty() {
            return spec;
        }
        match spec.stores.iter_mut().find(|s| s.name == store) {
            Some(entry) => {
                for starter in starters {
                    if !entry.writers.contains(&starter) {
                        entry.writers.push(starter);
                    }
                }
            }
            None => {
                spec.stores.push(StoreSpec {
                    name: store.to_owned(),
                    readers: Vec::new(),
                    writers: starters,
                });
                spec.stores.sort_by(|a, b| a.name.cmp(&b.name));
            }
        }
        spec
    }

    /// The function called `name`.
    pub fn function(&self, name: &str) -> Option<&FunctionSpec> {
        self.functions.iter().find(|f| f.name == name)
    }

    /// The queue called `name`.
    pub fn queue(&self, name: &str) -> Option<&QueueSpec> {
        self.queues.iter().find(|q| q.name == name)
    }

    /// The store called `name`.
    pub fn store(&self, name: &str) -> Option<&StoreSpec> {
        self.stores.iter().find(|s| s.name == name)
    }
}

fn queue_entry<'a>(queues: &'a mut BTreeMap<String, QueueSpec>, name: &str) -> &'a mut QueueSpec {
    queues
        .entry(name.to_owned())
        .or_insert_with(|| QueueSpec::named(name))
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
        assert_eq!(
            orders.max_receive_count,
            Some(conventions::redrive_receive_count(4)),
            "the redrive is the last resort, well past the four attempts"
        );
        let dlq = spec.queues.iter().find(|q| q.name == "orders-dlq").unwrap();
        assert!(dlq.is_dead_letter);
        assert_eq!(spec.topics[0].subscribers, ["notify"]);
        assert_eq!(spec.topics[0].publishers, ["charge"]);
    }

    #[test]
    fn schedules_and_storage_changes_get_a_failure_queue_too() {
        let app = App::new("a")
            .function(Function::schedule("nightly", "0 3 * * *", |_, _| async {
                Ok(())
            }))
            .function(
                Function::schedule("hourly", "0 * * * *", |_, _| async { Ok(()) })
                    .dead_letter("hourly-failures"),
            )
            .function(Function::storage(
                "thumbs",
                "uploads",
                [crate::StorageEventKind::Created],
                |_, _| async { Ok(()) },
            ));
        let spec = app.spec();
        for name in [
            "nightly-dead-letter",
            "hourly-failures",
            "thumbs-dead-letter",
        ] {
            let queue = spec
                .queue(name)
                .unwrap_or_else(|| panic!("{name} is missing"));
            assert!(queue.is_dead_letter, "{name}");
        }
        assert_eq!(spec.queues.len(), 3, "{:?}", spec.queues);
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
        let public_queue = App::new("a").function(Function::queue("q", "jobs", msg).public());
        let err = public_queue.validate().unwrap_err();
        assert!(err.message().contains("HTTP functions only"), "{err}");
        let plain_issuer = App::new("a")
            .function(Function::http("h", Method::Get, "/", http).jwt("http://auth", ["api"]));
        let err = plain_issuer.validate().unwrap_err();
        assert!(err.message().contains("https://"), "{err}");
    }
}
