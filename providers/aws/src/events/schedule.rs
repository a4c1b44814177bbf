//! Schedules: EventBridge `Scheduled Event`s into `ScheduledTick`s.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use cloudfn_core::{Error, ScheduledTick};
use serde_json::Value;

/// The shape a schedule function accepts, for error messages.
pub const EXPECTED: &str = "an EventBridge scheduled event ({\"detail-type\":\"Scheduled Event\",\"source\":\"aws.events\",…})";

/// Whether `event` is an EventBridge scheduled event.
pub fn is_scheduled(event: &Value) -> bool {
    event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
}

/// Reads a scheduled event; `cron` is the function's own expression, since
/// the event names only the rule.
pub fn decode(event: Value, cron: &str) -> Result<ScheduledTick, Error> {
    let event: EventBridgeEvent = serde_json::from_value(event)
        .map_err(|e| Error::bad_input(format!("malformed scheduled event: {e}")))?;
    Ok(ScheduledTick {
        scheduled_time: event.time.unwrap_or_else(chrono::Utc::now),
        schedule: cron.to_owned(),
    })
}
