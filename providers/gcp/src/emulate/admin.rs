//! Making the app's topics and subscriptions on the emulator, with
//! Google's admin clients.

use cloudfn_core::Error;
use google_cloud_gax::error::rpc::Code;
use google_cloud_pubsub::{
    client::{SubscriptionAdmin, TopicAdmin},
    model::{self, DeadLetterPolicy, RetryPolicy},
};

use crate::{client::anonymous, deploy::Subscription, names};

/// The admin clients of one project on the emulator.
pub(crate) struct Admin {
    project: String,
    topics: TopicAdmin,
    subscriptions: SubscriptionAdmin,
}

impl Admin {
    pub(crate) async fn connect(project: &str, emulator: &str) -> Result<Self, Error> {
        let endpoint = format!("http://{emulator}");
        let unavailable = |e: google_cloud_gax::client_builder::Error| {
            Error::unavailable(format!("cannot set up the Pub/Sub admin client: {e}"))
        };
        let topics = TopicAdmin::builder()
            .with_endpoint(&endpoint)
            .with_credentials(anonymous())
            .build()
            .await
            .map_err(unavailable)?;
        let subscriptions = SubscriptionAdmin::builder()
            .with_endpoint(&endpoint)
            .with_credentials(anonymous())
            .build()
            .await
            .map_err(unavailable)?;
        Ok(Self {
            project: project.to_owned(),
            topics,
            subscriptions,
        })
    }

    /// `projects/P/subscriptions/S`.
    pub(crate) fn subscription_path(&self, subscription: &str) -> String {
        format!("projects/{}/subscriptions/{subscription}", self.project)
    }

    /// Makes topic `topic`, unless it is there.
    pub(crate) async fn create_topic(&self, topic: &str) -> Result<(), Error> {
        let made = self
            .topics
            .create_topic()
            .set_name(names::topic_path(&self.project, topic))
            .send()
            .await;
        existing_is_fine(made.map(drop), "topic", topic)
    }

    /// Makes the subscription `plan` describes, unless it is there.
    pub(crate) async fn create_subscription(&self, plan: &Subscription) -> Result<(), Error> {
        let duration = |d: std::time::Duration| {
            google_cloud_wkt::Duration::try_from(d)
                .map_err(|e| Error::invalid(format!("{d:?} is no Pub/Sub duration: {e}")))
        };
        let mut subscription = model::Subscription::new()
            .set_name(self.subscription_path(&plan.name))
            .set_topic(names::topic_path(&self.project, &plan.topic))
            .set_ack_deadline_seconds(plan.ack_deadline.as_secs() as i32)
            .set_enable_message_ordering(plan.ordering);
        if plan.consumer.is_some() {
            subscription = subscription.set_retry_policy(
                RetryPolicy::new()
                    .set_minimum_backoff(duration(plan.min_backoff)?)
                    .set_maximum_backoff(duration(plan.max_backoff)?),
            );
        }
        if let Some(topic) = &plan.dead_letter_topic {
            subscription = subscription.set_dead_letter_policy(
                DeadLetterPolicy::new()
                    .set_dead_letter_topic(names::topic_path(&self.project, topic))
                    .set_max_delivery_attempts(plan.max_delivery_attempts as i32),
            );
        }
        let made = self
            .subscriptions
            .create_subscription()
            .with_request(subscription)
            .send()
            .await;
        existing_is_fine(made.map(drop), "subscription", &plan.name)
    }

    /// Makes pull subscription `name` of topic `topic`.
    pub(crate) async fn create_pull(&self, name: &str, topic: &str) -> Result<(), Error> {
        let subscription = model::Subscription::new()
            .set_name(self.subscription_path(name))
            .set_topic(names::topic_path(&self.project, topic))
            .set_ack_deadline_seconds(60);
        let made = self
            .subscriptions
            .create_subscription()
            .with_request(subscription)
            .send()
            .await;
        existing_is_fine(made.map(drop), "subscription", name)
    }
}

fn existing_is_fine(
    made: google_cloud_pubsub::Result<()>,
    what: &str,
    name: &str,
) -> Result<(), Error> {
    match made {
        Ok(()) => Ok(()),
        Err(e)
            if e.status().is_some_and(|s| s.code == Code::AlreadyExists)
                || e.http_status_code() == Some(409) =>
        {
            Ok(())
        }
        Err(e) => Err(Error::unavailable(format!(
            "cannot make Pub/Sub {what} `{name}`: {e}"
        ))),
    }
}
