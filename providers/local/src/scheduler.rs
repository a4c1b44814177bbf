//! Firing schedule functions at their cron times.

use std::sync::Arc;

use cloudfn_core::{
    Error, Function, OutgoingMessage, ScheduledTick,
    conventions::{self, Settlement},
    messaging::dead_letter,
    provider::{ContextBuilder, Event, Invoke, Services, Ticker},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Fires `function` at every time `schedule` names until `shutdown`. A failed
/// tick is retried per the function's policy, and one that fails for good
/// goes to the function's failure queue, as on every provider; a tick missed
/// while the previous one still runs is not skipped, since each runs on its
/// own task.
pub(crate) async fn run(
    function: Arc<Function>,
    mut ticker: Ticker,
    services: Services,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let tick = tokio::select! {
            _ = shutdown.cancelled() => return,
            tick = ticker.tick() => tick,
        };
        let Some(tick) = tick else {
            tracing::warn!(function = %function.name(), "schedule has no future firing");
            return;
        };
        let (function, services, stop) = (function.clone(), services.clone(), shutdown.clone());
        tracker.spawn(async move { fire(&function, tick, &services, &stop).await });
    }
}

async fn fire(
    function: &Function,
    tick: ScheduledTick,
    services: &Services,
    shutdown: &CancellationToken,
) {
    let retry = function.policy().retry;
    let mut attempt = 1;
    loop {
        let ctx = ContextBuilder::new(function, services)
            .attempt(attempt)
            .build();
        let Err(e) = function.invoke(Event::Tick(tick.clone()), ctx).await else {
            return;
        };
        match conventions::settle(&e, attempt, &retry) {
            Settlement::Retry { delay } => {
                tokio::select! {
                    _ = shutdown.cancelled() => {
                        tracing::warn!(function = %function.name(), error = %e, "shutting down; scheduled run not retried");
                        return;
                    }
                    _ = tokio::time::sleep(delay) => {}
                }
                attempt += 1;
            }
            Settlement::DeadLetter => {
                dead_letter_tick(function, &tick, services, attempt, &e).await;
                return;
            }
        }
    }
}

/// Sends a tick that failed for good to the function's failure queue: the
/// tick as JSON, from the function, with the dead-letter attributes.
async fn dead_letter_tick(
    function: &Function,
    tick: &ScheduledTick,
    services: &Services,
    attempts: u32,
    error: &Error,
) {
    let name = function.name();
    let Some(queue) = conventions::failure_queue(name, function.trigger(), function.policy())
    else {
        return;
    };
    let sent = match OutgoingMessage::json(tick) {
        Ok(mut letter) => {
            dead_letter::annotate(&mut letter.attributes, name, name, attempts, error);
            services.queue(&queue).send_message(letter).await
        }
        Err(e) => Err(e),
    };
    match sent {
        Ok(_) => {
            tracing::error!(function = %name, error = %error, attempts, dead_letter_queue = %queue, "scheduled run failed for good; moved to the dead-letter queue")
        }
        Err(e) => {
            tracing::error!(function = %name, error = %error, attempts, send_error = %e, "scheduled run failed for good and could not be dead-lettered")
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cloudfn_core::{App, RetryPolicy, store::MemoryStore};

    use super::*;
    use crate::LocalBroker;

    /// A scheduled run that fails for good is kept, as on AWS: in the
    /// function's dead-letter queue (`<function>-dead-letter` when it names
    /// none), with what happened.
    #[tokio::test]
    async fn a_run_that_fails_for_good_is_dead_lettered() {
        let app = App::new("t").function(
            Function::schedule("nightly", "0 3 * * *", |_, _| async {
                Err(Error::invalid("the report's template is missing"))
            })
            .retry(RetryPolicy::new(3)),
        );
        let broker = LocalBroker::for_app(&app);
        let services = app.services(
            crate::PROVIDER,
            Arc::new(broker.clone()),
            Arc::new(broker.clone()),
            Arc::new(MemoryStore::new()),
        );
        let tick = ScheduledTick {
            scheduled_time: chrono::Utc::now(),
            schedule: "0 3 * * *".into(),
        };
        let function = app.get("nightly").unwrap();
        fire(function, tick.clone(), &services, &CancellationToken::new()).await;
        let dead = broker.peek("nightly-dead-letter");
        assert_eq!(dead.len(), 1, "kept, not only logged");
        let letter = &dead[0];
        assert_eq!(letter.attribute(dead_letter::FUNCTION), Some("nightly"));
        assert_eq!(
            letter.attribute(dead_letter::ATTEMPTS),
            Some("1"),
            "permanent: not retried"
        );
        assert!(
            letter
                .attribute(dead_letter::ERROR)
                .unwrap()
                .contains("template is missing")
        );
        let kept: ScheduledTick = serde_json::from_slice(&letter.body).unwrap();
        assert_eq!(kept, tick);
    }
}
