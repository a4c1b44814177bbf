//! Schedules: EventBridge `Scheduled Event`s into `ScheduledTick`s.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use cloudfn_core::{Error, ScheduledTick};

/// The shape a schedule function accepts, for error messages.
pub const EXPECTED: &str = "an EventBridge scheduled event ({\"detail-type\":\"Scheduled Event\",\"source\":\"aws.events\",…})";

/// Whether `event` (JSON) is an EventBridge scheduled event.
pub fn is_scheduled(event: &[u8]) -> bool {
    super::shape::Shape::of(event).is_ok_and(|shape| shape.is_scheduled())
}

/// Reads a scheduled event (JSON); `cron` is the function's own expression,
/// since the event names only the rule.
pub fn decode(event: &[u8], cron: &str) -> Result<ScheduledTick, Error> {
    let event: EventBridgeEvent = serde_json::from_slice(event)
        .map_err(|e| Error::bad_input(format!("malformed scheduled event: {e}")))?;
    Ok(ScheduledTick {
        scheduled_time: event.time.unwrap_or_else(chrono::Utc::now),
        schedule: cron.to_owned(),
    })
}
