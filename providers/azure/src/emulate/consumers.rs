//! The host's triggers that pull: Storage queues, Service Bus
//! subscriptions (Storage queues here, see [`super::bus`]) and timers.

use std::{str::FromStr, sync::Arc, time::Duration};

use chrono::Utc;
use cloudfn_core::{AppSpec, Error, Schedule, conventions, provider::Ticker};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{
    Declared, HostSettings,
    payload::{self, BusDelivery, QueueDelivery},
};
use crate::{
    client::{Received, StorageQueues},
    events::queue::Envelope,
};

/// How long a received message stays invisible while its invocation runs.
const LEASE: Duration = Duration::from_secs(300);

/// How long a consumer waits when its queue was empty.
const IDLE_POLL: Duration = Duration::from_millis(150);

/// What every trigger of the simulated host shares.
pub(crate) struct Host {
    pub(crate) http: reqwest::Client,
    pub(crate) handler: String,
    pub(crate) queues: StorageQueues,
    pub(crate) settings: HostSettings,
    pub(crate) spec: AppSpec,
}

impl Host {
    /// POSTs `payload` to the handler's `/<function>`; the answer's status
    /// and JSON body.
    pub(crate) async fn invoke(
        &self,
        function: &str,
        payload: &Value,
    ) -> Result<(u16, Value), Error> {
        let response = self
            .http
            .post(format!("{}/{function}", self.handler))
            .header(
                "x-azure-functions-invocationid",
                uuid::Uuid::new_v4().to_string(),
            )
            .json(payload)
            .send()
            .await
            .map_err(|e| Error::unavailable(format!("the handler is unreachable: {e}")))?;
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        for line in body["Logs"].as_array().into_iter().flatten() {
            tracing::debug!(function, "{}", line.as_str().unwrap_or_default());
        }
        Ok((status, body))
    }

    /// Receives from `queue` and posts each message as `build` makes it
    /// until `stop`; a 2xx answer deletes it, any other makes it visible
    /// again after `retry_after` until `give_up_after` deliveries, then it
    /// goes to `<queue>-poison`.
    async fn consume(
        self: Arc<Self>,
        function: &str,
        queue: &str,
        batch: u8,
        (retry_after, give_up_after): (Duration, u32),
        build: impl Fn(&Received) -> Result<Value, Error> + Send + Sync,
        stop: CancellationToken,
    ) {
        while !stop.is_cancelled() {
            let received = tokio::select! {
                _ = stop.cancelled() => return,
                received = self.queues.receive(queue, batch, LEASE) => received,
            };
            let received = match received {
                Ok(received) => received,
                Err(error) => {
                    tracing::warn!(queue, error = %error, "receiving failed");
                    Vec::new()
                }
            };
            if received.is_empty() {
                tokio::time::sleep(IDLE_POLL).await;
                continue;
            }
            let runs = received.iter().map(|message| async {
                let answer = match build(message) {
                    Ok(payload) => self.invoke(function, &payload).await,
                    Err(error) => Err(error),
                };
                let done = matches!(answer, Ok((200..=299, _)));
                let result = if done {
                    self.queues
                        .delete(queue, &message.queue_id, &message.pop_receipt)
                        .await
                } else if message.dequeue_count >= give_up_after {
                    tracing::warn!(
                        function,
                        queue,
                        "delivered {} times: moved to the poison queue",
                        message.dequeue_count
                    );
                    self.poison(queue, message).await
                } else {
                    self.queues
                        .update_visibility(
                            queue,
                            &message.queue_id,
                            &message.pop_receipt,
                            retry_after,
                        )
                        .await
                        .map(|_| ())
                };
                if let Err(error) = result {
                    tracing::warn!(function, queue, error = %error, "settling a delivery failed");
                }
            });
            futures::future::join_all(runs).await;
        }
    }

    async fn poison(&self, queue: &str, message: &Received) -> Result<(), Error> {
        let poison = format!("{queue}-poison");
        self.queues.create(&poison).await?;
        let envelope = Envelope::retry_of(&message.message);
        self.queues.put(&poison, &envelope, Duration::ZERO).await?;
        self.queues
            .delete(queue, &message.queue_id, &message.pop_receipt)
            .await
    }

    /// Runs a `queueTrigger` function: the host's retry on any failed
    /// answer is its `visibilityTimeout`, up to `maxDequeueCount`.
    pub(crate) async fn consume_queue(
        self: Arc<Self>,
        function: Declared,
        stop: CancellationToken,
    ) {
        let queue = function.field("queueName").to_owned();
        let settings = (
            self.settings.visibility_timeout,
            self.settings.max_dequeue_count,
        );
        let batch = self.settings.batch_size;
        let name = function.name.clone();
        self.consume(
            &name,
            &queue,
            batch,
            settings,
            |message| {
                Ok(payload::queue(
                    &name,
                    &QueueDelivery {
                        text: &message.text,
                        id: &message.queue_id,
                        pop_receipt: &message.pop_receipt,
                        dequeue_count: message.dequeue_count,
                        inserted: message.inserted.unwrap_or_else(Utc::now),
                        next_visible: Utc::now() + LEASE,
                    },
                ))
            },
            stop,
        )
        .await
    }

    /// Runs a `serviceBusTrigger` function from its subscription's queue:
    /// a failed answer abandons the message, which Service Bus hands out
    /// again at once, up to the subscription's `maxDeliveryCount`.
    pub(crate) async fn consume_subscription(
        self: Arc<Self>,
        function: Declared,
        stop: CancellationToken,
    ) {
        let queue = conventions::subscription_queue(
            function.field("topicName"),
            function.field("subscriptionName"),
        );
        let max_attempts = self
            .spec
            .function(&function.name)
            .map_or(1, |f| f.policy.retry.max_attempts);
        let settings = (
            Duration::ZERO,
            conventions::redrive_receive_count(max_attempts),
        );
        let name = function.name.clone();
        self.consume(
            &name,
            &queue,
            16,
            settings,
            |message| {
                let envelope = Envelope::from_text(&message.text).ok_or_else(|| {
                    Error::bad_input("a subscription queue holds a message that is no envelope")
                })?;
                let body = envelope.body()?;
                Ok(payload::service_bus(
                    &name,
                    &BusDelivery {
                        body: &body,
                        message_id: &envelope.id,
                        session_id: envelope.ordering_key.as_deref(),
                        delivery_count: message.dequeue_count,
                        enqueued: envelope.published_at,
                        properties: &envelope.attributes,
                    },
                ))
            },
            stop,
        )
        .await
    }

    /// Runs a `timerTrigger` function on its schedule (the NCRONTAB's
    /// seconds field is `0`: the rest is the neutral cron).
    pub(crate) async fn run_timer(self: Arc<Self>, function: Declared, stop: CancellationToken) {
        let ncrontab = function.field("schedule");
        let cron = ncrontab.split_once(' ').map_or("", |(_, rest)| rest);
        let schedule = match Schedule::from_str(cron) {
            Ok(schedule) => schedule,
            Err(error) => {
                tracing::error!(function = %function.name, schedule = ncrontab, error = %error, "the timer's schedule does not read");
                return;
            }
        };
        let mut ticker = Ticker::new(schedule);
        loop {
            let Some(next) = ticker.next_fire_after(Utc::now()) else {
                return;
            };
            let wait = (next - Utc::now()).to_std().unwrap_or_default();
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            let following = ticker.schedule().next_after(next);
            let payload = payload::timer(&function.name, next, following);
            match self.invoke(&function.name, &payload).await {
                Ok((200..=299, _)) => {}
                Ok((status, body)) => {
                    tracing::warn!(function = %function.name, status, logs = %body["Logs"], "the timer invocation failed")
                }
                Err(error) => {
                    tracing::warn!(function = %function.name, error = %error, "the timer invocation failed")
                }
            }
        }
    }
}
