//! Business days in an IANA time zone: local midnight to local midnight, DST-correct, with
//! each day identified by the UTC instant of its start (the stored `date`).

use jiff::tz::TimeZone;
use serde::Serialize;
use time::{Date, OffsetDateTime, UtcOffset};

use crate::StatsError;

/// The business calendar: which IANA zone days are counted in.
#[derive(Clone, Debug)]
pub struct BusinessCalendar {
    zone: TimeZone,
    name: String,
}

/// One business day: the local `date`, and the half-open UTC range `[start, end)` it covers
/// (23 or 25 hours long across DST changes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct BusinessDay {
    #[serde(with = "crate::types::iso_date")]
    date: time::Date,
    #[serde(with = "time::serde::rfc3339")]
    start: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    end: OffsetDateTime,
}

impl BusinessDay {
    /// The local calendar date.
    pub fn date(&self) -> time::Date {
        self.date
    }

    /// The UTC instant of the local midnight that starts the day (the stored `date`).
    pub fn start(&self) -> OffsetDateTime {
        self.start
    }

    /// The UTC instant of the next local midnight (exclusive end).
    pub fn end(&self) -> OffsetDateTime {
        self.end
    }

    /// How long the day is: 24 hours except across DST changes.
    pub fn length(&self) -> time::Duration {
        self.end - self.start
    }

    /// Whether `instant` falls in `[start, end)`.
    pub fn contains(&self, instant: OffsetDateTime) -> bool {
        self.start <= instant && instant < self.end
    }
}

impl std::fmt::Display for BusinessDay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}",
            self.date.year(),
            u8::from(self.date.month()),
            self.date.day()
        )
    }
}

impl Default for BusinessCalendar {
    fn default() -> Self {
        Self::utc()
    }
}

impl BusinessCalendar {
    /// The calendar of the IANA zone `zone` (for example `Asia/Shanghai`), from the tz
    /// database compiled into the binary.
    pub fn new(zone: &str) -> Result<Self, StatsError> {
        let name = zone.trim();
        let unknown = || StatsError::UnknownTimeZone {
            zone: zone.to_owned(),
        };
        if name.is_empty() {
            return Err(unknown());
        }
        let tz = TimeZone::get(name).map_err(|_| unknown())?;
        Ok(Self {
            zone: tz,
            name: name.to_owned(),
        })
    }

    /// The UTC calendar, the default.
    pub fn utc() -> Self {
        Self {
            zone: TimeZone::UTC,
            name: "UTC".to_owned(),
        }
    }

    /// The zone's name as configured.
    pub fn zone_name(&self) -> &str {
        &self.name
    }

    /// The business day of local date `date`.
    pub fn day(&self, date: time::Date) -> Result<BusinessDay, StatsError> {
        let civil = to_civil(date)?;
        let next = civil.tomorrow().map_err(out_of_range)?;
        Ok(BusinessDay {
            date,
            start: self.start_of(civil)?,
            end: self.start_of(next)?,
        })
    }

    /// The business day that contains `instant`.
    pub fn day_containing(&self, instant: OffsetDateTime) -> Result<BusinessDay, StatsError> {
        let civil = to_timestamp(instant)?
            .to_zoned_datetime(self.zone.clone())
            .date();
        self.day(from_civil(civil)?)
    }

    /// The business day before `day`.
    pub fn previous(&self, day: &BusinessDay) -> Result<BusinessDay, StatsError> {
        self.neighbour(
            day.date.previous_day(),
            "no day before the first representable date",
        )
    }

    /// The business day after `day`.
    pub fn next(&self, day: &BusinessDay) -> Result<BusinessDay, StatsError> {
        self.neighbour(
            day.date.next_day(),
            "no day after the last representable date",
        )
    }

    /// The business day of `date`, or the error saying there is `none`.
    fn neighbour(&self, date: Option<Date>, none: &str) -> Result<BusinessDay, StatsError> {
        self.day(date.ok_or_else(|| out_of_range(none))?)
    }

    /// Whether `instant` is the start of a business day of this calendar (a stored `date`
    /// written under another zone is not).
    pub fn is_day_start(&self, instant: OffsetDateTime) -> bool {
        self.day_containing(instant)
            .is_ok_and(|day| day.start == instant)
    }

    /// The first instant strictly after `after` at which the local wall clock shows
    /// `local_time`. On a DST change a skipped time resolves to the instant after the gap,
    /// a repeated one to its first occurrence.
    pub fn next_local_time(
        &self,
        after: OffsetDateTime,
        local_time: time::Time,
    ) -> Result<OffsetDateTime, StatsError> {
        let wall = jiff::civil::Time::new(
            to_i8(local_time.hour())?,
            to_i8(local_time.minute())?,
            to_i8(local_time.second())?,
            0,
        )
        .map_err(out_of_range)?;
        let mut date = to_timestamp(after)?
            .to_zoned_datetime(self.zone.clone())
            .date();
        // Today's occurrence may already be past; tomorrow's never is.
        for _ in 0..3 {
            let candidate = date
                .to_datetime(wall)
                .to_zoned_datetime(self.zone.clone())
                .map_err(out_of_range)?;
            let candidate = from_timestamp(candidate.timestamp())?;
            if candidate > after {
                return Ok(candidate);
            }
            date = date.tomorrow().map_err(out_of_range)?;
        }
        Err(out_of_range("no next occurrence of the local time"))
    }

    fn start_of(&self, civil: jiff::civil::Date) -> Result<OffsetDateTime, StatsError> {
        // `to_zoned` resolves a midnight skipped by DST to the first instant after the gap
        // and a repeated midnight to its first occurrence: the day's first instant.
        let zoned = civil
            .to_zoned_datetime(self.zone.clone())
            .map_err(out_of_range)?;
        from_timestamp(zoned.timestamp())
    }
}

fn out_of_range(detail: impl std::fmt::Display) -> StatsError {
    StatsError::DateOutOfRange {
        detail: detail.to_string(),
    }
}

fn to_i8(value: u8) -> Result<i8, StatsError> {
    i8::try_from(value).map_err(out_of_range)
}

fn to_civil(date: time::Date) -> Result<jiff::civil::Date, StatsError> {
    let year = i16::try_from(date.year()).map_err(out_of_range)?;
    let month = to_i8(u8::from(date.month()))?;
    let day = to_i8(date.day())?;
    jiff::civil::Date::new(year, month, day).map_err(out_of_range)
}

fn from_civil(civil: jiff::civil::Date) -> Result<time::Date, StatsError> {
    let month = u8::try_from(civil.month())
        .map_err(out_of_range)
        .and_then(|m| time::Month::try_from(m).map_err(out_of_range))?;
    let day = u8::try_from(civil.day()).map_err(out_of_range)?;
    time::Date::from_calendar_date(i32::from(civil.year()), month, day).map_err(out_of_range)
}

fn to_timestamp(instant: OffsetDateTime) -> Result<jiff::Timestamp, StatsError> {
    jiff::Timestamp::from_nanosecond(instant.unix_timestamp_nanos()).map_err(out_of_range)
}

fn from_timestamp(timestamp: jiff::Timestamp) -> Result<OffsetDateTime, StatsError> {
    OffsetDateTime::from_unix_timestamp_nanos(timestamp.as_nanosecond())
        .map(|instant| instant.to_offset(UtcOffset::UTC))
        .map_err(out_of_range)
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime, time};

    use super::BusinessCalendar;

    #[test]
    fn utc_days_are_24_hours_from_utc_midnight() {
        let day = BusinessCalendar::utc().day(date!(2025 - 03 - 09)).unwrap();
        assert_eq!(day.start(), datetime!(2025-03-09 00:00 UTC));
        assert_eq!(day.end(), datetime!(2025-03-10 00:00 UTC));
        assert_eq!(day.to_string(), "2025-03-09");
    }

    #[test]
    fn new_york_dst_days_are_23_and_25_hours() {
        let calendar = BusinessCalendar::new("America/New_York").unwrap();
        let spring = calendar.day(date!(2025 - 03 - 09)).unwrap();
        assert_eq!(spring.start(), datetime!(2025-03-09 05:00 UTC));
        assert_eq!(spring.length(), time::Duration::hours(23));
        let autumn = calendar.day(date!(2025 - 11 - 02)).unwrap();
        assert_eq!(autumn.start(), datetime!(2025-11-02 04:00 UTC));
        assert_eq!(autumn.length(), time::Duration::hours(25));
    }

    #[test]
    fn shanghai_day_starts_at_16_utc_the_day_before() {
        let calendar = BusinessCalendar::new("Asia/Shanghai").unwrap();
        let day = calendar.day(date!(2025 - 01 - 15)).unwrap();
        assert_eq!(day.start(), datetime!(2025-01-14 16:00 UTC));
        let containing = calendar
            .day_containing(datetime!(2025-01-14 15:59:59.999999 UTC))
            .unwrap();
        assert_eq!(containing.date(), date!(2025 - 01 - 14));
        assert!(calendar.is_day_start(day.start()));
        assert!(!calendar.is_day_start(datetime!(2025-01-15 00:00 UTC)));
    }

    #[test]
    fn unknown_zone_is_an_error() {
        assert!(BusinessCalendar::new("Mars/Olympus_Mons").is_err());
        assert!(BusinessCalendar::new("").is_err());
    }

    #[test]
    fn next_local_time_is_strictly_after() {
        let calendar = BusinessCalendar::new("Asia/Shanghai").unwrap();
        let next = calendar
            .next_local_time(datetime!(2025-01-14 16:05 UTC), time!(00:05))
            .unwrap();
        assert_eq!(next, datetime!(2025-01-15 16:05 UTC));
        let next = calendar
            .next_local_time(datetime!(2025-01-14 16:04 UTC), time!(00:05))
            .unwrap();
        assert_eq!(next, datetime!(2025-01-14 16:05 UTC));
    }
}
