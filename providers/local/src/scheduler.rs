//! Firing schedule functions at their cron times.

use std::sync::Arc;

use chrono::Utc;
use cloudfn_core::{Context, Event, Function, Schedule, ScheduledTick, Services};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Fires `function` at every time `schedule` names until `shutdown`. A failed
/// tick is retried per the function's policy; a tick missed while the
/// previous one still runs is not skipped, since each runs on its own task.
pub(crate) async fn run(
    function: Arc<Function>,
    schedule: Schedule,
    services: Services,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let mut last = Utc::now();
    loop {
        // From the previous firing, not from now: a clock read a little
        // early after the sleep must not fire the same time twice.
        let Some(next) = schedule.next_after(last.max(Utc::now())) else {
            tracing::warn!(function = %function.name(), "schedule has no future firing");
            return;
        };
        last = next;
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let tick = ScheduledTick {
            scheduled_time: next,
            schedule: schedule.expression().to_owned(),
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
        let ctx = Context::builder(function, services)
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
