//! The closing loop (behaviour.md 9): a cycle closes the last hours and the day they belong
//! to, a late row changes the day as well as its hour, the loop catches up at start, and
//! pruned hours are never rewritten.

use std::ops::ControlFlow;

use sea_orm::EntityTrait;
use time::macros::{date, datetime};
use tollgate_entities::{stats_daily, stats_hourly};
use tollgate_stats::{BusinessCalendar, ClosingConfig, DayStats, PruneOptions, StatsError};
use tollgate_testkit::db_test;

use crate::support;

db_test!(async fn a_cycle_closes_the_day_and_a_late_row_reaches_hour_and_day(db) {
    let calendar = BusinessCalendar::new("Europe/Berlin").unwrap();
    let support::Seeded { stats, clock, mut rng, days, data } =
        support::seeded(&db.conn, &calendar, datetime!(2025-06-20 22:02:30 UTC), 77, support::users("cycle", 2, 0), &[date!(2025 - 06 - 20)], 40).await;
    let day = days[0];
    let config = ClosingConfig::default();

    // 00:02:30 local on 06-21: the last three hours of 06-20 close, and 06-20 with them.
    let report = stats.closing_cycle(&config).await.unwrap();
    assert_eq!(report.hours, 3);
    assert_eq!(report.day_closed, Some(day));
    let stored = stats_daily::Entity::find().all(&db.conn).await.unwrap();
    let row = stored.iter().find(|row| row.date == day.start()).expect("day row");
    let expected = support::oracle(&data, day.start(), day.end());
    support::assert_day_stats(&DayStats::from(row), &expected.stats, "closed at 00:02");

    // A stream that began at 23:30 local ends late; the next cycle (01:02) re-aggregates
    // 23:00 and the day, so the day stays the sum of its hours.
    let late = support::usage_row(&mut rng, None, datetime!(2025-06-20 21:30 UTC));
    support::insert_usage(&db.conn, std::slice::from_ref(&late)).await;
    clock.set(datetime!(2025-06-20 23:02:30 UTC));
    stats.closing_cycle(&config).await.unwrap();
    let mut with_late = data.clone();
    with_late.usage.push(late);
    let expected = support::oracle(&with_late, day.start(), day.end());
    let stored = stats_daily::Entity::find().all(&db.conn).await.unwrap();
    let row = stored.iter().find(|row| row.date == day.start()).unwrap();
    support::assert_day_stats(&DayStats::from(row), &expected.stats, "after the late row");
    let hours = stats_hourly::Entity::find().all(&db.conn).await.unwrap();
    let sum: i32 = hours
        .iter()
        .filter(|hour| day.contains(hour.hour))
        .map(|hour| hour.total_requests)
        .sum();
    assert_eq!(i64::from(sum), expected.stats.total_requests, "day = sum of hours");
});

db_test!(async fn the_loop_catches_up_then_closes_hours_until_stopped(db) {
    let calendar = BusinessCalendar::utc();
    let support::Seeded { stats, days, data, .. } =
        support::seeded(&db.conn, &calendar, datetime!(2025-06-20 10:05 UTC), 3, support::users("loop", 2, 0), &[date!(2025 - 06 - 17), date!(2025 - 06 - 20)], 20).await;

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let looping = {
        let stats = stats.clone();
        tokio::spawn(async move {
            stats
                .run_closing_loop(ClosingConfig::default(), async {
                    let _ = stopped.await;
                })
                .await;
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let hours = stats_hourly::Entity::find().all(&db.conn).await.unwrap();
        let closed = hours.iter().any(|hour| hour.hour == datetime!(2025-06-20 09:00 UTC));
        // The snapshot of the open hour (10:00) comes after the cycle.
        let snapshot = hours.iter().any(|hour| hour.hour == datetime!(2025-06-20 10:00 UTC));
        if closed && snapshot && stats.missing_days(4).await.unwrap().is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the loop closed no hour or day, or took no snapshot"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = stop.send(());
    tokio::time::timeout(std::time::Duration::from_secs(10), looping)
        .await
        .expect("the loop stops when told")
        .unwrap();
    // The first cycle filled every day since the first usage row (boundary rows start on
    // 06-16), and did not look further back.
    let rows = stats_daily::Entity::find().all(&db.conn).await.unwrap();
    let first = rows.iter().map(|row| row.date).min().unwrap();
    assert_eq!(first, datetime!(2025-06-16 00:00 UTC), "nothing before the first usage row");
    let series = stats.daily_series(4).await.unwrap();
    for entry in &series[..3] {
        let expected = support::oracle(&data, entry.day.start(), entry.day.end());
        support::assert_day_stats(&entry.stats, &expected.stats, &format!("{}", entry.day));
    }
    // Today: every ended hour closed by the first cycle, the open hour's snapshot taken at
    // 10:05, only the rows after it live; no hole.
    let view = stats.today_view().await.unwrap();
    assert_eq!(view.hours_closed, 10);
    assert_eq!(view.live_from, datetime!(2025-06-20 10:05 UTC));
    let expected = support::oracle(&data, days[1].start(), days[1].end());
    assert_eq!(view.today.stats.total_requests, expected.stats.total_requests);
});

db_test!(async fn hours_of_a_pruned_day_are_refused(db) {
    let calendar = BusinessCalendar::utc();
    let support::Seeded { stats, days, .. } =
        support::seeded(&db.conn, &calendar, datetime!(2025-06-20 12:00 UTC), 9, support::users("pruned", 1, 0), &[date!(2025 - 06 - 10)], 10).await;
    stats.aggregate_day(&days[0]).await.unwrap();
    let report = stats
        .prune(PruneOptions::keep_days(2), |_| ControlFlow::Continue(()))
        .await
        .unwrap();
    assert!(report.pruned.contains(&days[0]));
    let before = stats_hourly::Entity::find().all(&db.conn).await.unwrap();
    let refused = stats.aggregate_hours(&calendar.hours_of(&days[0])).await;
    assert!(matches!(refused, Err(StatsError::Pruned { .. })), "{refused:?}");
    assert_eq!(stats_hourly::Entity::find().all(&db.conn).await.unwrap(), before);
});

db_test!(async fn closing_a_day_from_closed_hours_equals_aggregating_it(db) {
    let calendar = BusinessCalendar::new("Asia/Kolkata").unwrap();
    let support::Seeded { stats, clock, days, data, .. } =
        support::seeded(&db.conn, &calendar, datetime!(2025-06-21 01:00 UTC), 31, support::users("reuse", 4, 1), &[date!(2025 - 06 - 20)], 90).await;
    let day = days[0];

    // The loop closed every hour but the last; closing the day recomputes only that one.
    let hours = calendar.hours_of(&day);
    stats.aggregate_hours(&hours[..23]).await.unwrap();
    let before = stats_hourly::Entity::find().all(&db.conn).await.unwrap();
    clock.set(datetime!(2025-06-21 02:00 UTC));
    let closed = stats.close_day(&day).await.unwrap();
    assert_eq!(closed.hours.len(), 1, "only the open hour is recomputed");
    let after = stats_hourly::Entity::find().all(&db.conn).await.unwrap();
    for row in &before {
        let same = after.iter().find(|other| other.hour == row.hour).unwrap();
        assert_eq!(same.updated_at, row.updated_at, "hour {} kept as stored", row.hour);
    }

    // The same rows as aggregating the day in full.
    clock.set(datetime!(2025-06-21 03:00 UTC));
    let full = stats.aggregate_day(&day).await.unwrap();
    support::assert_day_stats(&closed.stats, &full.stats, "day");
    support::assert_models(&closed.models, &full.models, "models");
    support::assert_users(&closed.users, &full.users, "users");
    // Summed in the same order, so equal to the bit (money included).
    assert_eq!(closed.stats, full.stats, "day, to the bit");
    assert_eq!(closed.models, full.models, "models, to the bit");
    assert_eq!(closed.users, full.users, "users, to the bit");
    assert_eq!(closed.providers, full.providers, "providers, to the bit");
    assert_eq!(closed.api_keys, full.api_keys, "keys, to the bit");
    let expected = support::oracle(&data, day.start(), day.end());
    support::assert_day_stats(&closed.stats, &expected.stats, "oracle");
});
