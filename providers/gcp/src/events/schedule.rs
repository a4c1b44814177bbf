//! Cloud Scheduler runs: a job with an HTTP target calls the function
//! (`POST /` by default) with the body it was created with, and says
//! which run this is in its headers: `X-CloudScheduler: true`,
//! `X-CloudScheduler-JobName`, and, for jobs on a unix-cron schedule,
//! `X-CloudScheduler-ScheduleTime` in RFC 3339.
//!
//! Only the schedule time is read. Google documents the header for cron
//! jobs without saying it is sent on a run forced from the console or
//! `gcloud scheduler jobs run`; so a request without it is still a run, at
//! the time it arrived, rather than an error that Scheduler would retry.

use chrono::Utc;
use cloudfn_core::{Error, ScheduledTick};
use http::HeaderMap;

use super::{header, rfc3339};

/// The header holding the time the schedule named for this run.
pub const SCHEDULE_TIME: &str = "x-cloudscheduler-scheduletime";

/// The tick of the run `headers` announce, for the function's `cron`.
pub(crate) fn decode(headers: &HeaderMap, cron: &str) -> Result<ScheduledTick, Error> {
    let scheduled_time = match header(headers, SCHEDULE_TIME)? {
        Some(text) => rfc3339(text, SCHEDULE_TIME)?,
        None => {
            tracing::debug!(
                "no X-CloudScheduler-ScheduleTime header (a forced run, or not Cloud \
                 Scheduler): the tick is now"
            );
            Utc::now()
        }
    };
    Ok(ScheduledTick {
        scheduled_time,
        schedule: cron.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Delivery, Expect, decode as decode_request};
    use cloudfn_core::ErrorKind;
    use http::HeaderValue;

    fn scheduler(time: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("user-agent", "Google-Cloud-Scheduler"),
            ("x-cloudscheduler", "true"),
            (
                "x-cloudscheduler-jobname",
                "projects/shop-dev/locations/europe-west1/jobs/nightly-report",
            ),
            ("X-CloudScheduler-ScheduleTime", time),
            ("content-type", "application/json"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn a_scheduler_request_is_a_tick_at_its_schedule_time() {
        let delivery = decode_request(
            &scheduler("2026-11-27T02:00:00Z"),
            br#"{"cloudfn":"nightly-report"}"#,
            Expect::Schedule { cron: "0 2 * * *" },
        )
        .unwrap();
        let Delivery::Tick(tick) = delivery else {
            panic!("not a tick: {delivery:?}");
        };
        assert_eq!(
            tick.scheduled_time.to_rfc3339(),
            "2026-11-27T02:00:00+00:00"
        );
        assert_eq!(tick.schedule, "0 2 * * *");
        // An offset is read as the same instant in UTC; the body is ignored.
        let tick = decode(&scheduler("2026-11-27T03:00:00+01:00"), "0 2 * * *").unwrap();
        assert_eq!(
            tick.scheduled_time.to_rfc3339(),
            "2026-11-27T02:00:00+00:00"
        );
    }

    #[test]
    fn without_the_header_the_tick_is_now() {
        let before = Utc::now();
        let tick = decode(&HeaderMap::new(), "*/5 * * * *").unwrap();
        assert!(tick.scheduled_time >= before && tick.scheduled_time <= Utc::now());
    }

    #[test]
    fn a_malformed_schedule_time_is_named() {
        let err = decode(&scheduler("tomorrow at two"), "0 2 * * *").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadInput);
        assert_eq!(err.field(), Some(SCHEDULE_TIME));
        assert!(err.message().contains("tomorrow at two"), "{err}");
    }
}
