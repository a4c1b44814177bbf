//! An in-memory queue with at-least-once delivery, visibility timeouts,
//! delayed retries and FIFO ordering groups, the way SQS behaves.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque},
    sync::{Mutex, MutexGuard},
    time::Duration,
};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use cloudfn_core::{Message, OutgoingMessage};
use serde::Serialize;
use tokio::{sync::Notify, time::Instant};

/// A message as the queue keeps it.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub id: String,
    pub body: Bytes,
    pub attributes: BTreeMap<String, String>,
    pub published_at: DateTime<Utc>,
    pub ordering_key: Option<String>,
    pub receive_count: u32,
    pub last_error: Option<String>,
    /// Arrival order in its queue; FIFO delivery follows it.
    seq: u64,
}

impl Stored {
    pub(crate) fn new(id: String, message: OutgoingMessage) -> Self {
        Self {
            id,
            body: message.body,
            attributes: message.attributes,
            published_at: Utc::now(),
            ordering_key: message.ordering_key,
            receive_count: 0,
            last_error: None,
            seq: 0,
        }
    }

    fn to_message(&self, source: &str) -> Message {
        Message {
            id: self.id.clone(),
            body: self.body.clone(),
            attributes: self.attributes.clone(),
            attempt: self.receive_count.max(1),
            published_at: Some(self.published_at),
            ordering_key: self.ordering_key.clone(),
            source: source.to_owned(),
        }
    }
}

/// A message handed to a consumer, until it is acknowledged, retried or
/// dead-lettered, or its visibility timeout runs out.
#[derive(Debug)]
pub(crate) struct Leased {
    pub receipt: u64,
    pub message: Message,
}

/// How many messages a queue holds, by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueDepth {
    /// Waiting to be delivered now.
    pub ready: usize,
    /// Delivered and not yet acknowledged.
    pub in_flight: usize,
    /// Waiting for a retry delay or a send delay.
    pub delayed: usize,
}

impl QueueDepth {
    /// Every message the queue still holds.
    pub fn total(&self) -> usize {
        self.ready + self.in_flight + self.delayed
    }
}

struct Pending {
    message: Stored,
    visible_at: Instant,
    leased: bool,
}

#[derive(Default)]
struct State {
    ready: VecDeque<Stored>,
    /// Leased or delayed messages, by receipt.
    pending: HashMap<u64, Pending>,
    /// When each pending message becomes visible, in time order; an entry
    /// leaves with its message, so nothing stale piles up.
    timers: BTreeSet<(Instant, u64)>,
    /// FIFO groups whose message is pending (delivered, or waiting to be
    /// retried): their other messages wait.
    held_groups: HashSet<String>,
    next_receipt: u64,
    next_seq: u64,
}

impl State {
    fn group_settled(&mut self, group: Option<String>) {
        if let Some(group) = group {
            self.held_groups.remove(&group);
        }
    }
}

/// One local queue.
pub(crate) struct LocalQueue {
    name: String,
    fifo: bool,
    state: Mutex<State>,
    notify: Notify,
}

impl LocalQueue {
    pub(crate) fn new(name: &str, fifo: bool) -> Self {
        Self {
            name: name.to_owned(),
            fifo,
            state: Mutex::default(),
            notify: Notify::new(),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn is_fifo(&self) -> bool {
        self.fifo
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; recover rather than cascade if something did.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn group(&self, message: &Stored) -> Option<String> {
        self.fifo
            .then(|| message.ordering_key.clone().unwrap_or_default())
    }

    /// Enqueues `message`, visible after `delay`.
    pub(crate) fn push(&self, mut message: Stored, delay: Option<Duration>) {
        {
            let mut state = self.lock();
            message.seq = state.next_seq;
            state.next_seq += 1;
            match delay.filter(|d| !d.is_zero()) {
                Some(delay) => {
                    let receipt = state.next_receipt;
                    state.next_receipt += 1;
                    let visible_at = Instant::now() + delay;
                    state.pending.insert(
                        receipt,
                        Pending {
                            message,
                            visible_at,
                            leased: false,
                        },
                    );
                    state.timers.insert((visible_at, receipt));
                }
                None => state.ready.push_back(message),
            }
        }
        self.notify.notify_one();
    }

    /// Moves pending messages whose time has come back to the ready list.
    fn promote_due(&self, state: &mut State, now: Instant) {
        while let Some(&(at, receipt)) = state.timers.first() {
            if at > now {
                break;
            }
            state.timers.pop_first();
            let Some(pending) = state.pending.remove(&receipt) else {
                continue;
            };
            if pending.leased {
                tracing::warn!(queue = %self.name, message_id = ?pending.message.id, "visibility timeout expired; redelivering");
            }
            // A delivered message holds its group until it leaves `pending`.
            if pending.message.receive_count > 0 {
                state.group_settled(self.group(&pending.message));
            }
            if self.fifo {
                // Back into arrival order, so a group keeps its order across retries.
                let seq = pending.message.seq;
                let at = state.ready.partition_point(|m| m.seq < seq);
                state.ready.insert(at, pending.message);
            } else {
                state.ready.push_back(pending.message);
            }
        }
    }

    /// Leases up to `max` ready messages for `visibility`; if none is ready,
    /// says when the next one will be (if any is pending).
    fn try_lease(&self, max: usize, visibility: Duration) -> Result<Vec<Leased>, Option<Instant>> {
        let now = Instant::now();
        let mut state = self.lock();
        self.promote_due(&mut state, now);
        let mut taken = Vec::new();
        if self.fifo {
            // One message per group per batch: a group's next message waits
            // until this one is settled, so it never spends an attempt
            // queued behind a failure.
            let mut i = 0;
            while i < state.ready.len() && taken.len() < max {
                let group = self.group(&state.ready[i]).unwrap_or_default();
                if state.held_groups.contains(&group) {
                    i += 1;
                    continue;
                }
                let message = state.ready.remove(i).expect("index checked");
                state.held_groups.insert(group);
                taken.push(message);
            }
        } else {
            let n = max.min(state.ready.len());
            taken.extend(state.ready.drain(..n));
        }
        if taken.is_empty() {
            return Err(state.timers.first().map(|(at, _)| *at));
        }
        let visible_at = now + visibility;
        let mut leased = Vec::with_capacity(taken.len());
        for mut message in taken {
            message.receive_count += 1;
            let receipt = state.next_receipt;
            state.next_receipt += 1;
            leased.push(Leased {
                receipt,
                message: message.to_message(&self.name),
            });
            state.pending.insert(
                receipt,
                Pending {
                    message,
                    visible_at,
                    leased: true,
                },
            );
            state.timers.insert((visible_at, receipt));
        }
        Ok(leased)
    }

    /// Waits for up to `max` messages and leases them for `visibility`.
    pub(crate) async fn lease(&self, max: usize, visibility: Duration) -> Vec<Leased> {
        loop {
            let notified = self.notify.notified();
            match self.try_lease(max, visibility) {
                Ok(leased) => return leased,
                Err(Some(at)) => {
                    tokio::select! {
                        _ = notified => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                Err(None) => notified.await,
            }
        }
    }

    /// Deletes a delivered message; a stale receipt (the visibility timeout
    /// already gave the message to someone else) is ignored.
    pub(crate) fn ack(&self, receipt: u64) {
        self.remove(receipt);
    }

    fn remove(&self, receipt: u64) -> Option<Stored> {
        let mut state = self.lock();
        let pending = state.pending.remove(&receipt)?;
        state.timers.remove(&(pending.visible_at, receipt));
        if let Some(group) = self.group(&pending.message) {
            state.group_settled(Some(group));
            // The group's next message may be deliverable now.
            self.notify.notify_one();
        }
        Some(pending.message)
    }

    /// Makes a delivered message visible again after `delay`, remembering why it failed.
    pub(crate) fn retry_later(&self, receipt: u64, delay: Duration, error: String) {
        {
            let mut state = self.lock();
            let visible_at = Instant::now() + delay;
            let Some(pending) = state.pending.get_mut(&receipt) else {
                return;
            };
            pending.leased = false;
            pending.visible_at = visible_at;
            pending.message.last_error = Some(error);
            state.timers.insert((visible_at, receipt));
        }
        // The consumer may be asleep until a later timer.
        self.notify.notify_one();
    }

    /// Removes a delivered message to move it elsewhere (the dead-letter queue).
    pub(crate) fn take(&self, receipt: u64) -> Option<Stored> {
        self.remove(receipt)
    }

    /// How many messages it holds, by state.
    pub(crate) fn depth(&self) -> QueueDepth {
        let state = self.lock();
        let in_flight = state.pending.values().filter(|p| p.leased).count();
        QueueDepth {
            ready: state.ready.len(),
            in_flight,
            delayed: state.pending.len() - in_flight,
        }
    }

    /// Copies of every message it holds, ready ones first, without delivering them.
    pub(crate) fn peek(&self) -> Vec<Message> {
        let state = self.lock();
        state
            .ready
            .iter()
            .chain(state.pending.values().map(|p| &p.message))
            .map(|m| m.to_message(&self.name))
            .collect()
    }

    /// Removes and returns the messages ready now, as a consumer outside any
    /// function would receive and delete them.
    pub(crate) fn take_ready(&self) -> Vec<Message> {
        let mut state = self.lock();
        state
            .ready
            .drain(..)
            .map(|m| m.to_message(&self.name))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(id: &str, group: Option<&str>) -> Stored {
        let mut m = OutgoingMessage::new(id.to_owned());
        m.ordering_key = group.map(str::to_owned);
        Stored::new(id.to_owned(), m)
    }

    const VIS: Duration = Duration::from_secs(30);

    #[tokio::test(start_paused = true)]
    async fn unacked_message_reappears_after_visibility_timeout() {
        let q = LocalQueue::new("q", false);
        q.push(stored("a", None), None);
        let first = q.try_lease(10, Duration::from_secs(5)).unwrap();
        assert_eq!(first[0].message.attempt, 1);
        assert!(q.try_lease(10, VIS).is_err(), "leased message is invisible");
        tokio::time::advance(Duration::from_secs(6)).await;
        let again = q.try_lease(10, VIS).unwrap();
        assert_eq!(again[0].message.id, "a");
        assert_eq!(again[0].message.attempt, 2);
        q.ack(first[0].receipt); // stale receipt: ignored
        assert_eq!(q.depth().in_flight, 1);
        q.ack(again[0].receipt);
        assert_eq!(q.depth().total(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_waits_for_its_delay_and_keeps_the_error() {
        let q = LocalQueue::new("q", false);
        q.push(stored("a", None), None);
        let leased = q.try_lease(1, VIS).unwrap();
        q.retry_later(leased[0].receipt, Duration::from_millis(500), "boom".into());
        assert_eq!(q.depth().delayed, 1);
        assert_eq!(
            q.try_lease(1, VIS).unwrap_err(),
            Some(Instant::now() + Duration::from_millis(500))
        );
        tokio::time::advance(Duration::from_millis(500)).await;
        let again = q.lease(1, VIS).await;
        assert_eq!(again[0].message.attempt, 2);
        let dead = q.take(again[0].receipt).unwrap();
        assert_eq!(dead.last_error.as_deref(), Some("boom"));
    }

    #[tokio::test(start_paused = true)]
    async fn fifo_group_waits_for_its_head_and_keeps_order_across_retries() {
        let q = LocalQueue::new("q.fifo", true);
        for (id, group) in [("a1", "a"), ("a2", "a"), ("b1", "b")] {
            q.push(stored(id, Some(group)), None);
        }
        let first = q.try_lease(1, VIS).unwrap();
        assert_eq!(first[0].message.id, "a1");
        let second = q.try_lease(10, VIS).unwrap();
        let ids: Vec<_> = second.iter().map(|l| l.message.id.as_str()).collect();
        assert_eq!(ids, ["b1"], "a2 must wait while a1 is in flight");
        q.retry_later(first[0].receipt, Duration::from_millis(10), "x".into());
        assert!(
            q.try_lease(10, VIS).is_err(),
            "a2 must wait while a1 waits to retry"
        );
        tokio::time::advance(Duration::from_millis(10)).await;
        let third = q.try_lease(10, VIS).unwrap();
        let ids: Vec<_> = third.iter().map(|l| l.message.id.as_str()).collect();
        assert_eq!(
            ids,
            ["a1"],
            "the retried head comes back first, alone in its group"
        );
        q.ack(third[0].receipt);
        let fourth = q.try_lease(10, VIS).unwrap();
        assert_eq!(fourth[0].message.id, "a2");
        assert_eq!(fourth[0].message.attempt, 1, "a2 spent no attempt waiting");
    }
}
