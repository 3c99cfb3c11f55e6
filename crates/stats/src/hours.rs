//! Business hours (behaviour.md 9): the hour buckets of a business day are one-hour steps
//! from the day's start, the last one cut at the day's end. In every zone whose clock
//! changes by whole hours (all but Lord Howe Island) these are exactly the local hours, so a
//! 23- or 25-hour DST day has 23 or 25 of them and a UTC+5:30 zone's hours start at :30 UTC.

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::{BusinessCalendar, BusinessDay, StatsError};

/// One hour bucket: the half-open UTC range `[start, end)`; `start` is the stored `hour`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct BusinessHour {
    #[serde(with = "time::serde::rfc3339")]
    start: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    end: OffsetDateTime,
}

impl BusinessHour {
    /// The UTC instant the hour starts (the stored `hour`).
    pub fn start(&self) -> OffsetDateTime {
        self.start
    }

    /// The UTC instant the hour ends (exclusive).
    pub fn end(&self) -> OffsetDateTime {
        self.end
    }
}

impl std::fmt::Display for BusinessHour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.start)
    }
}

impl BusinessCalendar {
    /// The hour buckets of `day`, in order.
    pub fn hours_of(&self, day: &BusinessDay) -> Vec<BusinessHour> {
        let mut hours = Vec::with_capacity(25);
        let mut start = day.start();
        while start < day.end() {
            let end = (start + Duration::HOUR).min(day.end());
            hours.push(BusinessHour { start, end });
            start = end;
        }
        hours
    }

    /// The hour bucket containing `instant`.
    pub fn hour_containing(&self, instant: OffsetDateTime) -> Result<BusinessHour, StatsError> {
        let day = self.day_containing(instant)?;
        let whole = (instant - day.start()).whole_hours();
        let start = day.start() + Duration::hours(whole);
        Ok(BusinessHour {
            start,
            end: (start + Duration::HOUR).min(day.end()),
        })
    }

    /// The hour bucket before `hour` (in the previous day when `hour` is a day's first).
    pub fn previous_hour(&self, hour: &BusinessHour) -> Result<BusinessHour, StatsError> {
        self.hour_containing(hour.start() - Duration::SECOND)
    }

    /// The `count` hour buckets that ended last before `instant`, oldest first.
    pub fn hours_before(
        &self,
        instant: OffsetDateTime,
        count: u32,
    ) -> Result<Vec<BusinessHour>, StatsError> {
        let mut hours = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        let mut current = self.hour_containing(instant)?;
        for _ in 0..count {
            current = self.previous_hour(&current)?;
            hours.push(current);
        }
        hours.reverse();
        Ok(hours)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use crate::BusinessCalendar;

    #[test]
    fn dst_days_have_23_and_25_hours_and_half_hour_zones_start_at_half_past() {
        let berlin = BusinessCalendar::new("Europe/Berlin").unwrap();
        let spring = berlin.day(time::macros::date!(2026 - 03 - 29)).unwrap();
        let autumn = berlin.day(time::macros::date!(2026 - 10 - 25)).unwrap();
        assert_eq!(berlin.hours_of(&spring).len(), 23);
        assert_eq!(berlin.hours_of(&autumn).len(), 25);
        let kolkata = BusinessCalendar::new("Asia/Kolkata").unwrap();
        let day = kolkata.day(time::macros::date!(2026 - 06 - 01)).unwrap();
        let hours = kolkata.hours_of(&day);
        assert_eq!(hours.len(), 24);
        assert_eq!(hours[0].start(), datetime!(2026-05-31 18:30 UTC));
        assert_eq!(hours[23].end(), datetime!(2026-06-01 18:30 UTC));
        let hour = kolkata
            .hour_containing(datetime!(2026-06-01 03:29:59 UTC))
            .unwrap();
        assert_eq!(hour.start(), datetime!(2026-06-01 02:30 UTC));
        let before = kolkata
            .hours_before(datetime!(2026-06-01 03:29:59 UTC), 3)
            .unwrap();
        assert_eq!(before[2].end(), hour.start());
        assert_eq!(before[0].start(), datetime!(2026-05-31 23:30 UTC));
    }
}
