//! Business days in UTC, Asia/Shanghai and America/New_York, across both DST changes, with
//! rows at start − 1 µs, start, start + 1 µs, end − 1 µs and end.

use std::sync::Arc;

use time::Duration;
use time::macros::{date, datetime};
use tollgate_stats::{Aggregator, BusinessCalendar, FixedClock};
use tollgate_testkit::{TestDb, db_test};

use crate::support::{self, Data, Rng};

db_test!(async fn days_follow_the_zone_and_dst(db) {
    let cases = [
        ("UTC", date!(2025 - 03 - 09), 24),
        ("Asia/Shanghai", date!(2025 - 03 - 09), 24),
        ("America/New_York", date!(2025 - 03 - 08), 24),
        ("America/New_York", date!(2025 - 03 - 09), 23),
        ("America/New_York", date!(2025 - 11 - 02), 25),
    ];
    for (zone, date, hours) in cases {
        // A fresh database per zone, on the same backend.
        let fresh = TestDb::new(db.backend()).await;
        let calendar = BusinessCalendar::new(zone).unwrap();
        let clock = Arc::new(FixedClock::new(datetime!(2025-12-01 00:00 UTC)));
        let stats = Aggregator::new(fresh.conn.clone(), calendar.clone()).with_clock(clock);
        let day = calendar.day(date).unwrap();
        assert_eq!(day.length(), Duration::hours(hours), "{zone} {date}");
        let (previous, next) = (calendar.previous(&day).unwrap(), calendar.next(&day).unwrap());
        assert_eq!(previous.end(), day.start());
        assert_eq!(next.start(), day.end());

        let mut rng = Rng(3);
        let data = Data::with_traffic(&mut rng, support::users("zone", 2, 0), &[day], 30);
        data.insert(&fresh.conn).await;

        for each in [previous, day, next] {
            stats.aggregate_day(&each).await.unwrap();
            support::assert_stored_matches(&fresh.conn, &data, &each).await;
        }
        // The boundary rows land where they must: start - 1 µs in the previous day, end in
        // the next day, start, start + 1 µs, start + 0.5 s and end - 1 µs in the day.
        let count = |from: time::OffsetDateTime, to: time::OffsetDateTime| {
            data.usage.iter().filter(|r| from <= r.created_at && r.created_at < to).count() as i64
        };
        let day_stats = stats.compute_day(&day).await.unwrap().stats;
        assert_eq!(day_stats.total_requests, count(day.start(), day.end()), "{zone}");
        assert_eq!(day_stats.total_requests, 30 + 5, "{zone}: 30 random rows and 5 boundary rows");
        assert_eq!(stats.compute_day(&previous).await.unwrap().stats.total_requests, 1, "{zone}");
        assert_eq!(stats.compute_day(&next).await.unwrap().stats.total_requests, 2, "{zone}");
    }
});
