//! The read path of behaviour.md 9: today's closed hours come from the rollups (deleting
//! their raw rows changes nothing), only the tail after the last closed hour is read from
//! `usage`, and the hourly series marks hours that were never closed.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use time::Duration;
use time::macros::{date, datetime};
use tollgate_stats::{BusinessCalendar, DayStats, HourSource};
use tollgate_testkit::db_test;

use crate::support;

/// Every additive number of `actual` equals `expected` (distinct counts and fallbacks are
/// per hour once hours are closed, so they are left out).
fn assert_additive(actual: &DayStats, expected: &DayStats, what: &str) {
    support::assert_fields!(actual, expected, what;
        exact: total_requests, success_requests, error_requests, input_tokens, output_tokens,
            cache_creation_tokens, cache_read_tokens, unpriced_requests, response_time_histogram;
        close: total_cost, actual_total_cost, input_cost, output_cost, cache_creation_cost,
            cache_read_cost, avg_response_time_ms);
}

db_test!(async fn today_reads_closed_hours_from_rollups_and_only_the_tail_live(db) {
    let calendar = BusinessCalendar::utc();
    let support::Seeded { stats, clock, days, data, .. } =
        support::seeded(&db.conn, &calendar, datetime!(2025-06-20 14:10 UTC), 21, support::users("today", 3, 0), &[date!(2025 - 06 - 20)], 60).await;
    let day = days[0];

    // Nothing closed: all of today is live and exact.
    let view = stats.today_view().await.unwrap();
    assert_eq!(view.hours_closed, 0);
    assert_eq!(view.live_from, day.start());
    let expected = support::oracle(&data, day.start(), day.end());
    support::assert_day_stats(&view.today.stats, &expected.stats, "nothing closed");

    // Close 00:00..14:00 at 14:10, then read at 15:30.
    let closed: Vec<_> = calendar.hours_of(&day).into_iter().take(14).collect();
    stats.aggregate_hours(&closed).await.unwrap();
    clock.set(datetime!(2025-06-20 15:30 UTC));
    let view = stats.today_view().await.unwrap();
    assert_eq!(view.hours_closed, 14);
    assert_eq!(view.hours_not_aggregated, 0);
    assert_eq!(view.live_from, datetime!(2025-06-20 14:00 UTC));
    assert_additive(&view.today.stats, &expected.stats, "closed hours and tail");
    support::assert_models(&view.today.models, &expected.models, "closed hours and tail: models");

    // The closed hours are read from the rollups: removing their raw rows changes nothing,
    // while the tail is read from usage.
    let backend = db.conn.get_database_backend();
    let cut = |sql: &str| {
        let sql = match backend {
            DbBackend::Sqlite => sql.replace("$1", "?"),
            _ => sql.to_owned(),
        };
        Statement::from_sql_and_values(backend, sql, [sea_orm::Value::from(datetime!(2025-06-20 13:00 UTC))])
    };
    let deleted = db.conn.execute_raw(cut("DELETE FROM usage WHERE created_at < $1")).await.unwrap();
    assert!(deleted.rows_affected() > 10, "raw rows of closed hours were deleted");
    let after = stats.today_view().await.unwrap();
    assert_additive(&after.today.stats, &view.today.stats, "raw rows of closed hours deleted");

    // A user's today: closed user hours plus the live tail for that user.
    for user in &data.users {
        let series = stats.user_daily_series(&user.id, 1).await.unwrap();
        let want = expected.users.iter().find(|u| u.user_id == user.id).cloned().unwrap_or_default();
        assert_eq!(series[0].stats.total_requests, want.total_requests, "user {} today", user.id);
        support::close(series[0].stats.total_cost, want.total_cost, "user today cost");
    }
});

db_test!(async fn hourly_series_marks_hours_never_closed(db) {
    let calendar = BusinessCalendar::new("Asia/Kolkata").unwrap();
    let support::Seeded { stats, days, data, .. } =
        support::seeded(&db.conn, &calendar, datetime!(2025-06-20 08:40 UTC), 5, support::users("hourly", 2, 0), &[date!(2025 - 06 - 19), date!(2025 - 06 - 20)], 80).await;
    let today = days[1];
    // Today (from 06-19 18:30 UTC) hours 0..10 closed; it is now 14:10 local (08:40 UTC).
    let closed: Vec<_> = calendar.hours_of(&today).into_iter().take(11).collect();
    stats.aggregate_hours(&closed).await.unwrap();

    let series = stats.hourly_series(24).await.unwrap();
    assert_eq!(series.len(), 24);
    assert_eq!(series[23].hour.start(), datetime!(2025-06-20 08:30 UTC), "current hour last");
    for entry in &series {
        let what = format!("hour {}", entry.hour);
        let start = entry.hour.start();
        let expected = support::oracle(&data, start, entry.hour.end());
        if start < today.start() {
            assert_eq!(entry.source, HourSource::NotAggregated, "{what}");
            assert_eq!(entry.stats, DayStats::default(), "{what}: not scanned");
        } else if start < today.start() + Duration::hours(11) {
            assert_eq!(entry.source, HourSource::Aggregated, "{what}");
            support::assert_day_stats(&entry.stats, &expected.stats, &what);
        } else {
            assert_eq!(entry.source, HourSource::Live, "{what}");
            support::assert_day_stats(&entry.stats, &expected.stats, &what);
        }
    }
    assert!(series.iter().any(|e| e.source == HourSource::Live && e.stats.total_requests > 0));
    assert!(stats.hourly_series(0).await.unwrap().is_empty());
});

db_test!(async fn the_open_hour_snapshot_leaves_only_the_last_minutes_live(db) {
    let calendar = BusinessCalendar::utc();
    let support::Seeded { stats, clock, mut rng, days, data } =
        support::seeded(&db.conn, &calendar, datetime!(2025-06-20 14:10 UTC), 44, support::users("open", 3, 0), &[date!(2025 - 06 - 20)], 200).await;
    let day = days[0];
    let closed: Vec<_> = calendar.hours_of(&day).into_iter().take(14).collect();
    stats.aggregate_hours(&closed).await.unwrap();

    // The loop's snapshot at 14:30:00.5 covers the rows dated before 14:30:00.
    clock.set(datetime!(2025-06-20 14:30:00.5 UTC));
    let until = stats.refresh_open_hour().await.unwrap();
    assert_eq!(until, Some(datetime!(2025-06-20 14:30 UTC)));
    clock.set(datetime!(2025-06-20 14:50 UTC));
    let view = stats.today_view().await.unwrap();
    assert_eq!(view.live_from, datetime!(2025-06-20 14:30 UTC), "live only after the snapshot");
    assert_eq!(view.hours_closed, 14, "the snapshot is not a closed hour");
    let expected = support::oracle(&data, day.start(), day.end());
    assert_additive(&view.today.stats, &expected.stats, "closed hours, snapshot and tail");
    let series = stats.hourly_series(2).await.unwrap();
    let hour = support::oracle(&data, datetime!(2025-06-20 14:00 UTC), datetime!(2025-06-20 15:00 UTC));
    assert_eq!(series[1].source, HourSource::Live);
    assert_additive(&series[1].stats, &hour.stats, "current hour from snapshot and tail");

    // The snapshot is read, not usage: deleting the rows it covers changes nothing.
    let backend = db.conn.get_database_backend();
    let (from, to) = match backend {
        DbBackend::Sqlite => ("2025-06-20T14:00:00", "2025-06-20T14:30:00"),
        _ => ("2025-06-20 14:00:00+00", "2025-06-20 14:30:00+00"),
    };
    let sql = match backend {
        DbBackend::Sqlite => "DELETE FROM usage WHERE created_at >= ? AND created_at < ?",
        _ => "DELETE FROM usage WHERE created_at >= $1::timestamptz AND created_at < $2::timestamptz",
    };
    let deleted = db
        .conn
        .execute_raw(Statement::from_sql_and_values(backend, sql, [from.into(), to.into()]))
        .await
        .unwrap();
    assert!(deleted.rows_affected() > 0);
    let after = stats.today_view().await.unwrap();
    assert_additive(&after.today.stats, &view.today.stats, "rows under the snapshot deleted");

    // A request dated 14:10 but recorded after the snapshot waits for the next one.
    let late = support::usage_row(&mut rng, None, datetime!(2025-06-20 14:10 UTC));
    support::insert_usage(&db.conn, std::slice::from_ref(&late)).await;
    let waiting = stats.today_view().await.unwrap();
    assert_eq!(waiting.today.stats.total_requests, after.today.stats.total_requests);
    clock.set(datetime!(2025-06-20 14:55 UTC));
    stats.refresh_open_hour().await.unwrap();
    let counted = stats.today_view().await.unwrap();
    assert_eq!(
        counted.today.stats.total_requests,
        expected.stats.total_requests - i64::try_from(deleted.rows_affected()).unwrap() + 1,
        "the next snapshot counts it (and no longer the deleted rows)"
    );
});

db_test!(async fn memoised_reads_follow_every_rewrite(db) {
    let calendar = BusinessCalendar::utc();
    let support::Seeded { stats, mut rng, days, .. } =
        support::seeded(&db.conn, &calendar, datetime!(2025-06-20 14:10 UTC), 12, support::users("memo", 2, 0), &[date!(2025 - 06 - 18), date!(2025 - 06 - 20)], 30).await;
    let hours: Vec<_> = calendar.hours_of(&days[1]).into_iter().take(14).collect();
    stats.aggregate_hours(&hours).await.unwrap();
    stats.aggregate_day(&days[0]).await.unwrap();
    let view = stats.today_view().await.unwrap();
    let series = stats.daily_series(3).await.unwrap();

    // A late row in a closed hour of today and one in the aggregated day, both re-aggregated
    // under the same (fixed) clock reading: the memoised reads see them.
    for at in [datetime!(2025-06-20 09:30 UTC), datetime!(2025-06-18 09:30 UTC)] {
        let late = support::usage_row(&mut rng, None, at);
        support::insert_usage(&db.conn, std::slice::from_ref(&late)).await;
    }
    stats.aggregate_hours(&hours).await.unwrap();
    stats.aggregate_day(&days[0]).await.unwrap();
    let again = stats.today_view().await.unwrap();
    assert_eq!(again.today.stats.total_requests, view.today.stats.total_requests + 1);
    let later = stats.daily_series(3).await.unwrap();
    assert_eq!(later[0].stats.total_requests, series[0].stats.total_requests + 1);
    let models = |entries: &[tollgate_stats::DailyEntry]| -> i64 {
        entries[0].models.iter().map(|m| m.total_requests).sum()
    };
    assert_eq!(models(&later), models(&series) + 1, "per-model rows re-read");
});
