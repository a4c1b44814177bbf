//! The timer trigger: `{"Schedule": …, "ScheduleStatus": {"Last", "Next",
//! "LastUpdated"}, "IsPastDue": …}` into a [`ScheduledTick`].

use chrono::Utc;
use cloudfn_core::{Error, ScheduledTick};
use serde::Deserialize;

use super::{InvocationRequest, binding};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Timer {
    #[serde(default)]
    schedule_status: Option<Status>,
    #[serde(default)]
    is_past_due: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Status {
    #[serde(default)]
    last: Option<String>,
}

/// The tick of a timer invocation for the function's `cron` (the neutral,
/// five-field expression; the host's six-field one adds the seconds). The
/// time is the occurrence the host records as the last one, else the
/// invocation's `sys.UtcNow`.
pub fn decode(request: &InvocationRequest, cron: &str) -> Result<ScheduledTick, Error> {
    let timer: Timer = if request.has_binding(binding::TIMER) {
        request.binding(binding::TIMER, "a timer")?
    } else {
        Timer::default()
    };
    if timer.is_past_due {
        tracing::info!("the timer is past due: the function ran late");
    }
    let now = request
        .metadata("sys")
        .as_ref()
        .and_then(super::object)
        .and_then(|sys| sys.get("UtcNow").and_then(super::text))
        .and_then(|t| super::time(&t));
    let scheduled_time = timer
        .schedule_status
        .and_then(|status| status.last)
        .and_then(|t| super::time(&t))
        .or(now)
        .unwrap_or_else(Utc::now);
    Ok(ScheduledTick {
        scheduled_time,
        schedule: cron.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_timer_invocation_reads_as_a_tick() {
        let request = InvocationRequest::of(json!({
            "Data": {"timer": {
                "Schedule": {"AdjustForDST": true},
                "ScheduleStatus": {
                    "Last": "2026-11-27T10:15:00",
                    "Next": "2026-11-27T10:20:00+00:00",
                    "LastUpdated": "2026-11-27T10:15:00+00:00"
                },
                "IsPastDue": false
            }},
            "Metadata": {"sys": {"MethodName": "nightly", "UtcNow": "2026-11-27T10:15:00.12Z", "RandGuid": "x"}}
        }));
        let tick = decode(&request, "*/5 * * * *").unwrap();
        assert_eq!(
            tick.scheduled_time.to_rfc3339(),
            "2026-11-27T10:15:00+00:00"
        );
        assert_eq!(tick.schedule, "*/5 * * * *");
    }

    #[test]
    fn without_a_status_the_invocation_time_is_used() {
        let request = InvocationRequest::of(json!({
            "Data": {"timer": {"Schedule": {}, "ScheduleStatus": null, "IsPastDue": false}},
            "Metadata": {"sys": {"UtcNow": "2026-11-27T10:15:00Z"}}
        }));
        let tick = decode(&request, "* * * * *").unwrap();
        assert_eq!(
            tick.scheduled_time.to_rfc3339(),
            "2026-11-27T10:15:00+00:00"
        );
        let bad = InvocationRequest::of(json!({"Data": {"timer": {"IsPastDue": "maybe"}}}));
        assert_eq!(
            decode(&bad, "* * * * *").unwrap_err().field(),
            Some("Data.timer")
        );
    }
}
