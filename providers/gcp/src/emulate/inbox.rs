//! What a pull subscription holds, taken for tools and tests: every
//! message is acked as it arrives and kept until taken.

use std::sync::{Arc, Mutex};

use cloudfn_core::Message;
use google_cloud_pubsub::client::Subscriber;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::client::received;

/// One subscription, pulled in the background.
pub(crate) struct Inbox {
    held: Arc<Mutex<Vec<Message>>>,
    _task: JoinHandle<()>,
}

impl Inbox {
    /// Pulls `subscription` (`projects/P/subscriptions/S`), naming each
    /// message's source `source`, until `stop`.
    pub(crate) fn open(
        subscriber: &Subscriber,
        subscription: &str,
        source: &str,
        stop: CancellationToken,
    ) -> Self {
        let held = Arc::new(Mutex::new(Vec::new()));
        let mut stream = subscriber.subscribe(subscription).build();
        let (into, source, subscription) =
            (held.clone(), source.to_owned(), subscription.to_owned());
        let task = tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    _ = stop.cancelled() => return,
                    next = stream.next() => next,
                };
                match next {
                    Some(Ok((message, handler))) => {
                        let message = received(message, &source, handler.delivery_attempt());
                        handler.ack();
                        into.lock().unwrap_or_else(|p| p.into_inner()).push(message);
                    }
                    Some(Err(error)) => {
                        tracing::warn!(%subscription, error = %error, "pulling from the emulator failed");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                    None => return,
                }
            }
        });
        Self { held, _task: task }
    }

    /// What arrived since the last take.
    pub(crate) fn take(&self) -> Vec<Message> {
        std::mem::take(&mut *self.held.lock().unwrap_or_else(|p| p.into_inner()))
    }
}
