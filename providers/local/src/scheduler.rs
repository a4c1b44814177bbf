//! Firing schedule functions at their cron times.

use std::sync::Arc;

use cloudfn_core::{
    Function, ScheduledTick,
    provider::{ContextBuilder, Event, Invoke, Services, Ticker},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Fires `function` at every time `schedule` names until `shutdown`. A failed
/// tick is retried per the function's policy; a tick missed while the
/// previous one still runs is not skipped, since each runs on its own task.
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
        match function.invoke(Event::Tick(tick.clone()), ctx).await {
            Ok(_) => return,
            Err(e) if e.is_retryable() && retry.has_attempts_left(attempt) => {
                tokio::select! {
                    _ = shutdown.cancelled() => {
                        tracing::warn!(function = %function.name(), error = %e, "shutting down; scheduled run not retried");
                        return;
                    }
                    _ = tokio::time::sleep(retry.delay(attempt)) => {}
                }
                attempt += 1;
            }
            Err(e) => {
                tracing::error!(function = %function.name(), error = %e, attempts = attempt, "scheduled run failed for good");
                return;
            }
        }
    }
}
