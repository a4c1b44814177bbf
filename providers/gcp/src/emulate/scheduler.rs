//! Cloud Scheduler's HTTP target: on each run of the job's schedule, a
//! POST to the function with the headers Scheduler sets. A failed run is
//! not retried (a job's default `retryCount` is 0): the function retries
//! within the invocation by its own policy.

use chrono::SecondsFormat;
use cloudfn_core::{Schedule, provider::Ticker};
use tokio_util::sync::CancellationToken;

/// One job.
pub(crate) struct Job {
    /// `projects/P/locations/L/jobs/J`.
    pub(crate) name: String,
    pub(crate) schedule: Schedule,
    pub(crate) url: String,
    pub(crate) http: reqwest::Client,
}

impl Job {
    /// Runs the job until `stop`.
    pub(crate) async fn run(self, stop: CancellationToken) {
        let mut ticker = Ticker::new(self.schedule.clone());
        loop {
            let tick = tokio::select! {
                _ = stop.cancelled() => return,
                tick = ticker.tick() => tick,
            };
            let Some(tick) = tick else {
                return;
            };
            let sent = self
                .http
                .post(&self.url)
                .header(http::header::USER_AGENT, "Google-Cloud-Scheduler")
                .header("X-CloudScheduler", "true")
                .header("X-CloudScheduler-JobName", &self.name)
                .header(
                    crate::events::SCHEDULE_TIME,
                    tick.scheduled_time
                        .to_rfc3339_opts(SecondsFormat::Secs, true),
                )
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => {}
                Ok(response) => {
                    tracing::warn!(job = %self.name, status = %response.status(), "the scheduled run failed")
                }
                Err(error) => {
                    tracing::warn!(job = %self.name, error = %error, "the scheduled run got no answer")
                }
            }
        }
    }
}
