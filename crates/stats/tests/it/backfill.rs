//! Backfill fills exactly the missing days, oldest first, writes zero rows for empty days,
//! converges, and resumes after being stopped half-way.

use std::ops::ControlFlow;

use time::macros::{date, datetime};
use tollgate_stats::BusinessCalendar;
use tollgate_testkit::db_test;

use crate::support;

db_test!(async fn backfill_fills_gaps_and_resumes(db) {
    let calendar = BusinessCalendar::new("Asia/Shanghai").unwrap();
    // 2025-06-20 10:00 in Shanghai: today is 06-20, the window of 10 days is 06-10..=06-19.
    // Traffic on some days only; the rest are empty days.
    let support::Seeded { stats, clock, data, .. } =
        support::seeded(&db.conn, &calendar, datetime!(2025-06-20 02:00 UTC), 21, support::users("backfill", 3, 1), &[date!(2025 - 06 - 11), date!(2025 - 06 - 14), date!(2025 - 06 - 19), date!(2025 - 06 - 20)], 25).await;

    // One day already aggregated: not missing.
    stats.aggregate_day(&calendar.day(date!(2025 - 06 - 14)).unwrap()).await.unwrap();
    // One day aggregated before it ended (a "today" refresh): still missing.
    clock.set(datetime!(2025-06-16 12:00 UTC));
    stats.aggregate_day(&calendar.day(date!(2025 - 06 - 16)).unwrap()).await.unwrap();
    clock.set(datetime!(2025-06-20 02:00 UTC));

    let missing = stats.missing_days(10).await.unwrap();
    let dates: Vec<_> = missing.iter().map(|d| d.date()).collect();
    let mut expected: Vec<_> = (10..=19)
        .map(|d| time::Date::from_calendar_date(2025, time::Month::June, d).unwrap())
        .collect();
    expected.retain(|d| *d != date!(2025 - 06 - 14));
    assert_eq!(dates, expected, "missing days, oldest first");

    // A run that is "killed" after three days.
    let report = stats
        .backfill(10, |progress| {
            if progress.done >= 3 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        })
        .await
        .unwrap();
    assert!(report.stopped);
    assert_eq!(report.filled.len(), 3);
    assert_eq!(report.filled[0].date(), date!(2025 - 06 - 10));
    assert_eq!(stats.missing_days(10).await.unwrap().len(), 9 - 3);

    // The rerun completes the rest without duplicates.
    let report = stats.backfill(10, |_| ControlFlow::Continue(())).await.unwrap();
    assert!(!report.stopped);
    assert_eq!(report.missing, 6);
    assert_eq!(report.filled.len(), 6);
    assert!(stats.missing_days(10).await.unwrap().is_empty());
    let (daily, _, _) = support::table_counts(&db.conn).await;
    assert_eq!(daily, 10, "one row per day, zero days included, no duplicates");

    // A second backfill finds nothing to do.
    let report = stats.backfill(10, |_| ControlFlow::Continue(())).await.unwrap();
    assert_eq!((report.missing, report.filled.len()), (0, 0));

    for d in 10..=19 {
        let date = time::Date::from_calendar_date(2025, time::Month::June, d).unwrap();
        support::assert_stored_matches(&db.conn, &data, &calendar.day(date).unwrap()).await;
    }
});
