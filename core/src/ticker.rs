//! The one scheduler: the fire times of a cron schedule, each exactly once.

use chrono::{DateTime, Utc};

use crate::{Schedule, ScheduledTick};

/// Walks a [`Schedule`]'s fire times from now on, each time once: the next
/// firing is always after the previous one, so a clock read a little early
/// after a sleep cannot fire the same minute twice, and times missed while
/// the caller was busy are skipped rather than fired late in a burst.
///
/// The local runtime and every dev emulation fire schedules through it.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use cloudfn_core::{Schedule, provider::Ticker};
///
/// let start = Utc.with_ymd_and_hms(2026, 11, 26, 10, 7, 0).unwrap();
/// let mut ticker = Ticker::starting_after("*/15 * * * *".parse::<Schedule>().unwrap(), start);
/// let first = ticker.next_fire_after(start).unwrap();
/// assert_eq!(first, Utc.with_ymd_and_hms(2026, 11, 26, 10, 15, 0).unwrap());
/// // Asked again with a clock that reads a little before the firing, it moves on.
/// let again = ticker.next_fire_after(first - chrono::Duration::milliseconds(3)).unwrap();
/// assert_eq!(again, Utc.with_ymd_and_hms(2026, 11, 26, 10, 30, 0).unwrap());
/// ```
#[derive(Debug, Clone)]
pub struct Ticker {
    schedule: Schedule,
    last: DateTime<Utc>,
}

impl Ticker {
    /// Fires `schedule` from now on.
    pub fn new(schedule: Schedule) -> Self {
        Self::starting_after(schedule, Utc::now())
    }

    /// Fires `schedule` at times strictly after `start`.
    pub fn starting_after(schedule: Schedule, start: DateTime<Utc>) -> Self {
        Self {
            schedule,
            last: start,
        }
    }

    /// The schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The next firing after both the previous one and `now`, remembered as
    /// fired; `None` when the schedule never fires again.
    pub fn next_fire_after(&mut self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let next = self.schedule.next_after(self.last.max(now))?;
        self.last = next;
        Some(next)
    }

    /// Sleeps until the next firing and returns its tick; `None` when the
    /// schedule never fires again.
    pub async fn tick(&mut self) -> Option<ScheduledTick> {
        let next = self.next_fire_after(Utc::now())?;
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
        Some(ScheduledTick {
            scheduled_time: next,
            schedule: self.schedule.expression().to_owned(),
        })
    }
}
