//! The combined view and the dashboard series: no hole just after midnight (yesterday's
//! closed hours stand in for its day row), zero days included, never-aggregated days
//! reported and not scanned, per-model and per-user numbers equal to the oracle.

use time::Duration;
use time::macros::{date, datetime};
use tollgate_stats::{BusinessCalendar, DaySource, Totals};
use tollgate_testkit::db_test;

use crate::support::{self, Data};

fn totals_of(data: &Data, start: time::OffsetDateTime, end: time::OffsetDateTime) -> Totals {
    Totals::from(&support::oracle(data, start, end).stats)
}

fn assert_totals(actual: &Totals, expected: &Totals, what: &str) {
    support::assert_fields!(actual, expected, what;
        exact: requests, success_requests, error_requests, input_tokens, output_tokens,
            cache_creation_tokens, cache_read_tokens;
        close: cost, actual_cost);
}

db_test!(async fn combined_has_no_hole_after_midnight(db) {
    let calendar = BusinessCalendar::new("America/New_York").unwrap();
    // 2025-11-01 20:00 in New York (UTC-4); the next day, 11-02, is 25 hours long.
    let support::Seeded { stats, clock, days, data, .. } =
        support::seeded(&db.conn, &calendar, datetime!(2025-11-02 00:00 UTC), 99, support::users("combined", 3, 1), &[date!(2025 - 10 - 30), date!(2025 - 10 - 31), date!(2025 - 11 - 01)], 30).await;
    // The boundary rows of 10-30 include one at start - 1 µs, in 10-29, a day this test
    // never aggregates: the summary covers aggregated days only (backfill fills the rest).
    let far = days[0].start();

    // Nightly state on 11-01: 10-30 and 10-31 aggregated, summary cut at 11-01.
    clock.set(days[2].start() + Duration::minutes(5));
    for day in &days[..2] {
        stats.aggregate_day(day).await.unwrap();
    }
    stats.refresh_summary().await.unwrap();
    // Without the summary, combined would still be whole: check both.
    let combined = stats.combined().await.unwrap();
    // Today counts its whole business day so far (no row lies in the future in production).
    assert_totals(&combined.all_time, &totals_of(&data, far, days[2].end()), "on 11-01");

    // One second after midnight of 11-02, before the nightly run: 11-01 is neither in the
    // summary nor aggregated. Without its hours closed it is reported, not scanned.
    let midnight = days[2].end();
    clock.set(midnight + Duration::seconds(1));
    let combined = stats.combined().await.unwrap();
    assert_eq!(combined.days_not_aggregated, vec![days[2]]);
    assert_eq!(combined.days_from_hours, 0);
    let mut without = totals_of(&data, far, days[2].start());
    without.add(&totals_of(&data, midnight, midnight + Duration::seconds(1)));
    assert_totals(&combined.all_time, &without, "just after midnight, hours not closed");

    // Once its hours are closed (what the closing loop does within minutes), the day is the
    // sum of its hours: no hole.
    stats.aggregate_hours(&calendar.hours_of(&days[2])).await.unwrap();
    let combined = stats.combined().await.unwrap();
    assert_eq!(combined.summary_cutoff, Some(days[2].start()));
    assert_eq!(combined.days_from_hours, 1);
    assert!(combined.days_not_aggregated.is_empty());
    let expected = totals_of(&data, far, midnight + Duration::seconds(1));
    assert_totals(&combined.all_time, &expected, "just after midnight");
    // Rows at exactly midnight belong to today.
    let today = totals_of(&data, midnight, midnight + Duration::seconds(1));
    assert!(today.requests >= 1);
    assert_totals(&Totals::from(&combined.today.stats), &today, "today");

    // After the nightly run the numbers are the same, now from the tables.
    stats.aggregate_day(&days[2]).await.unwrap();
    stats.refresh_summary().await.unwrap();
    let after = stats.combined().await.unwrap();
    assert_eq!(after.days_from_hours, 0);
    assert!(after.days_not_aggregated.is_empty());
    assert_eq!(after.summary_cutoff, Some(midnight));
    assert_totals(&after.all_time, &expected, "after the nightly run");
    assert_eq!(after.accounts.total_users, 4);
    assert_eq!(after.accounts.active_users, 3);
});

db_test!(async fn combined_without_summary_counts_everything(db) {
    let calendar = BusinessCalendar::utc();
    let support::Seeded { stats, data, .. } =
        support::seeded(&db.conn, &calendar, datetime!(2025-06-20 12:00 UTC), 4, support::users("nosummary", 2, 0), &[date!(2025 - 06 - 15), date!(2025 - 06 - 18), date!(2025 - 06 - 20)], 20).await;
    stats.aggregate_day(&calendar.day(date!(2025 - 06 - 18)).unwrap()).await.unwrap();
    let combined = stats.combined().await.unwrap();
    assert_eq!(combined.summary_cutoff, None);
    // Boundary rows spill into 06-14, 06-16, 06-17 and 06-19: those days and 06-15 were
    // never aggregated, so they are listed and left out, not scanned.
    let listed: Vec<_> = combined.days_not_aggregated.iter().map(|day| day.date().day()).collect();
    assert_eq!(listed, [14, 15, 16, 17, 19]);
    let mut expected = totals_of(&data, datetime!(2025-06-18 00:00 UTC), datetime!(2025-06-19 00:00 UTC));
    expected.add(&totals_of(&data, datetime!(2025-06-20 00:00 UTC), datetime!(2025-06-21 00:00 UTC)));
    assert_totals(&combined.all_time, &expected, "no summary");
});

db_test!(async fn daily_series_covers_every_day(db) {
    let calendar = BusinessCalendar::new("Asia/Shanghai").unwrap();
    // Traffic on 06-16, 06-18 and 06-20 (spilling a few boundary rows into the days next to
    // them); 06-13 and 06-14 have none. Aggregated: 06-13, 06-16, 06-17. Never aggregated:
    // 06-14 (empty), 06-15, 06-18, 06-19. Today: 06-20.
    let support::Seeded { stats, data, .. } =
        support::seeded(&db.conn, &calendar, datetime!(2025-06-20 03:00 UTC), 8, support::users("series", 3, 1), &[date!(2025 - 06 - 16), date!(2025 - 06 - 18), date!(2025 - 06 - 20)], 25).await;
    for date in [date!(2025 - 06 - 13), date!(2025 - 06 - 16), date!(2025 - 06 - 17)] {
        stats.aggregate_day(&calendar.day(date).unwrap()).await.unwrap();
    }

    // 06-18's hours are closed, its day row not yet written.
    let june18 = calendar.day(date!(2025 - 06 - 18)).unwrap();
    stats.aggregate_hours(&calendar.hours_of(&june18)).await.unwrap();

    let series = stats.daily_series(8).await.unwrap();
    let dates: Vec<_> = series.iter().map(|e| e.day.date()).collect();
    let june = |d| time::Date::from_calendar_date(2025, time::Month::June, d).unwrap();
    assert_eq!(dates, (13..=20).map(june).collect::<Vec<_>>());
    let sources: Vec<_> = series.iter().map(|e| e.source).collect();
    use DaySource::{Aggregated, Hours, NotAggregated, Today};
    assert_eq!(
        sources,
        [Aggregated, NotAggregated, NotAggregated, Aggregated, Aggregated, Hours, NotAggregated, Today]
    );
    for entry in &series {
        let expected = support::oracle(&data, entry.day.start(), entry.day.end());
        let what = format!("series {}", entry.day);
        match entry.source {
            // Never aggregated: zeros, never scanned from usage.
            NotAggregated => {
                assert_eq!(entry.stats, tollgate_stats::DayStats::default(), "{what}");
                assert!(entry.models.is_empty(), "{what}");
            }
            // The sum of the closed hours: every additive number equals the oracle.
            Hours => {
                support::assert_fields!(entry.stats, expected.stats, what;
                    exact: total_requests, success_requests, error_requests, input_tokens,
                        output_tokens, cache_creation_tokens, cache_read_tokens,
                        unpriced_requests, response_time_histogram;
                    close: total_cost, actual_total_cost, input_cost, output_cost,
                        cache_creation_cost, cache_read_cost, avg_response_time_ms);
                support::assert_models(&entry.models, &expected.models, &what);
            }
            Aggregated | Today => {
                support::assert_day_stats(&entry.stats, &expected.stats, &what);
                support::assert_models(&entry.models, &expected.models, &what);
            }
        }
    }
    assert!(series[5].stats.total_requests > 0, "06-18 has traffic");
    assert_eq!(series[0].stats.total_requests, 0, "an aggregated zero day");

    // A user's series, the same way, for a user with traffic and one without.
    for user in &data.users {
        let entries = stats.user_daily_series(&user.id, 8).await.unwrap();
        assert_eq!(entries.len(), 8);
        for entry in &entries {
            let mut expected = support::oracle(&data, entry.day.start(), entry.day.end());
            if entry.source == NotAggregated {
                expected.users.clear();
            }
            let want = expected
                .users
                .iter()
                .find(|u| u.user_id == user.id)
                .cloned()
                .unwrap_or_else(|| tollgate_stats::UserStats { user_id: user.id.clone(), ..Default::default() });
            support::assert_users(std::slice::from_ref(&entry.stats), &[want], &format!("user series {}", entry.day));
        }
    }
    assert!(stats.daily_series(0).await.unwrap().is_empty());
});
