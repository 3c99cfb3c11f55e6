//! Retention: prune deletes exactly the raw rows of aggregated days older than the cutoff,
//! in bounded batches, leaves every read view and the summary unchanged, and keeps pruned
//! days from being aggregated again.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use sea_orm::{DatabaseConnection, EntityTrait};
use time::macros::{date, datetime};
use time::{Date, OffsetDateTime};
use tollgate_entities::{request_candidates, stats_summary, tollgate_meta, usage};
use tollgate_stats::{
    Aggregator, BusinessCalendar, BusinessDay, FixedClock, PruneOptions, PruneReport, StatsError,
};
use tollgate_testkit::db_test;

use crate::support::{self, Data, Rng};

/// How many of `instants` fall in each business day of `calendar`.
fn per_day(
    calendar: &BusinessCalendar,
    instants: impl Iterator<Item = OffsetDateTime>,
) -> BTreeMap<Date, usize> {
    let mut counts = BTreeMap::new();
    for instant in instants {
        *counts
            .entry(calendar.day_containing(instant).unwrap().date())
            .or_default() += 1;
    }
    counts
}

/// Rows per business day of `usage` and of `request_candidates` as stored now.
async fn stored_per_day(
    db: &DatabaseConnection,
    calendar: &BusinessCalendar,
) -> (BTreeMap<Date, usize>, BTreeMap<Date, usize>) {
    let usage = usage::Entity::find().all(db).await.unwrap();
    let candidates = request_candidates::Entity::find().all(db).await.unwrap();
    (
        per_day(calendar, usage.iter().map(|row| row.created_at)),
        per_day(calendar, candidates.iter().map(|row| row.created_at)),
    )
}

/// `counts` without the days of `gone`.
fn without(counts: &BTreeMap<Date, usize>, gone: &[Date]) -> BTreeMap<Date, usize> {
    let mut kept = counts.clone();
    kept.retain(|date, _| !gone.contains(date));
    kept
}

fn dates(days: &[BusinessDay]) -> Vec<Date> {
    days.iter().map(BusinessDay::date).collect()
}

fn june(day: u8) -> Date {
    Date::from_calendar_date(2025, time::Month::June, day).unwrap()
}

async fn watermark(db: &DatabaseConnection) -> Option<String> {
    tollgate_meta::Entity::find_by_id(tollgate_meta::STATS_PRUNED_BEFORE.to_owned())
        .one(db)
        .await
        .unwrap()
        .map(|row| row.value)
}

/// A view serialised, for comparing everything it would show.
fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap()
}

async fn prune(stats: &Aggregator, options: PruneOptions) -> PruneReport {
    stats
        .prune(options, |_| ControlFlow::Continue(()))
        .await
        .unwrap()
}

db_test!(async fn prune_deletes_exactly_the_old_aggregated_days(db) {
    let calendar = BusinessCalendar::new("Asia/Shanghai").unwrap();
    // 2025-06-20 10:00 in Shanghai: today is 06-20.
    // Boundary rows spill into 06-11 (never aggregated) and 06-21 (the future).
    let support::Seeded { stats, clock, data, .. } =
        support::seeded(&db.conn, &calendar, datetime!(2025-06-20 02:00 UTC), 13, support::users("prune", 3, 1), &(12..=20).map(june).collect::<Vec<_>>(), 20).await;

    // Aggregated after their end: 06-12, 06-13, 06-15, 06-17, 06-18, 06-19. Never
    // aggregated: 06-11, 06-14. Aggregated before its end only (incomplete): 06-16.
    for d in [12, 13, 15, 17, 18, 19] {
        stats.aggregate_day(&calendar.day(june(d)).unwrap()).await.unwrap();
    }
    clock.set(datetime!(2025-06-16 06:00 UTC));
    stats.aggregate_day(&calendar.day(june(16)).unwrap()).await.unwrap();
    clock.set(datetime!(2025-06-20 02:00 UTC));

    let (usage_before, candidates_before) = stored_per_day(&db.conn, &calendar).await;
    let expected_usage = per_day(&calendar, data.usage.iter().map(|row| row.created_at));
    assert_eq!(usage_before, expected_usage, "the data as inserted");
    for d in [11, 12, 13, 14, 15, 16, 17, 18, 19, 20] {
        assert!(usage_before[&june(d)] > 0 && candidates_before[&june(d)] > 0, "06-{d} has rows");
    }

    // keep_days = 3 keeps today (06-20) and 06-17..=06-19: the cutoff is 06-17's start.
    let report = prune(&stats, PruneOptions::keep_days(3)).await;
    let cutoff = calendar.day(june(17)).unwrap().start();
    assert_eq!(report.cutoff, cutoff);
    assert_eq!(report.cutoff, datetime!(2025-06-16 16:00 UTC));
    assert_eq!(dates(&report.pruned), [june(12), june(13), june(15)]);
    assert_eq!(dates(&report.skipped), [june(11), june(14), june(16)], "never or not completely aggregated");
    assert!(!report.stopped);

    let gone = [june(12), june(13), june(15)];
    let (usage_after, candidates_after) = stored_per_day(&db.conn, &calendar).await;
    assert_eq!(usage_after, without(&usage_before, &gone), "usage rows per day");
    assert_eq!(candidates_after, without(&candidates_before, &gone), "candidate rows per day");
    let deleted = |before: &BTreeMap<Date, usize>| gone.iter().map(|d| before[d]).sum::<usize>() as u64;
    assert_eq!(report.usage_rows_deleted, deleted(&usage_before));
    assert_eq!(report.candidate_rows_deleted, deleted(&candidates_before));
    assert_eq!(watermark(&db.conn).await.as_deref(), Some("2025-06-16T16:00:00Z"));

    // Running it again deletes nothing more; a longer retention never moves the watermark
    // back (the days it protects have lost their rows).
    let again = prune(&stats, PruneOptions::keep_days(3)).await;
    assert_eq!((again.usage_rows_deleted, again.candidate_rows_deleted), (0, 0));
    let longer = prune(&stats, PruneOptions::keep_days(5)).await;
    assert_eq!(longer.cutoff, calendar.day(june(15)).unwrap().start());
    assert_eq!((longer.usage_rows_deleted, longer.candidate_rows_deleted), (0, 0));
    assert_eq!(watermark(&db.conn).await.as_deref(), Some("2025-06-16T16:00:00Z"));
    assert_eq!(stored_per_day(&db.conn, &calendar).await, (usage_after.clone(), candidates_after.clone()));

    // A day later with keep_days = 1: stopped after one day, then resumed.
    clock.set(datetime!(2025-06-21 02:00 UTC));
    let mut calls = 0;
    let stopped = stats
        .prune(PruneOptions::keep_days(1), |progress| {
            calls += 1;
            if progress.done >= 1 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        })
        .await
        .unwrap();
    assert_eq!(calls, 2, "before the first day and after it");
    assert!(stopped.stopped);
    // The cutoff is now 06-20's start. 06-12, 06-13 and 06-15 are walked again (nothing is
    // left in them), then 06-17, 06-18 and 06-19.
    assert_eq!(dates(&stopped.pruned), [june(12)]);
    let resumed = prune(&stats, PruneOptions::keep_days(1)).await;
    let gone = [june(12), june(13), june(15), june(17), june(18), june(19)];
    assert_eq!(dates(&resumed.pruned), gone);
    assert_eq!(dates(&resumed.skipped), [june(11), june(14), june(16)]);
    let (usage_last, candidates_last) = stored_per_day(&db.conn, &calendar).await;
    assert_eq!(usage_last, without(&usage_before, &gone));
    assert_eq!(candidates_last, without(&candidates_before, &gone));
    assert_eq!(watermark(&db.conn).await.as_deref(), Some("2025-06-19T16:00:00Z"));
});

db_test!(async fn prune_leaves_every_view_and_the_summary_unchanged(db) {
    let calendar = BusinessCalendar::new("America/New_York").unwrap();
    // 2025-11-05 08:00 in New York; 11-02 is a 25-hour day.
    let clock = Arc::new(FixedClock::new(datetime!(2025-11-05 13:00 UTC)));
    let stats = Aggregator::new(db.conn.clone(), calendar.clone()).with_clock(clock);
    let mut rng = Rng(31);
    let dates: Vec<Date> = (28..=31)
        .map(|d| Date::from_calendar_date(2025, time::Month::October, d).unwrap())
        .chain((1..=5).map(|d| Date::from_calendar_date(2025, time::Month::November, d).unwrap()))
        .collect();
    let days = support::days(&calendar, &dates);
    let data = Data::with_traffic(&mut rng, support::users("views", 3, 1), &days, 30);
    data.insert(&db.conn).await;
    // Every past day aggregated except 10-30 (computed live by the views).
    for day in &days[..days.len() - 1] {
        if day.date() != dates[2] {
            stats.aggregate_day(day).await.unwrap();
        }
    }
    let combined_without_summary = json(&stats.combined().await.unwrap());
    let summary = json(&stats.refresh_summary().await.unwrap());
    let combined = json(&stats.combined().await.unwrap());
    let series = json(&stats.daily_series(12).await.unwrap());
    let user = data.users[0].id.clone();
    let user_series = json(&stats.user_daily_series(&user, 12).await.unwrap());

    let report = prune(&stats, PruneOptions::keep_days(2)).await;
    assert!(report.usage_rows_deleted > 100, "the test prunes real rows: {report:?}");
    assert!(report.candidate_rows_deleted > 100);
    assert_eq!(report.pruned.len(), 5, "10-28, 10-29, 10-31, 11-01, 11-02: {report:?}");
    assert!(report.skipped.iter().any(|day| day.date() == dates[2]));

    assert_eq!(json(&stats.combined().await.unwrap()), combined, "combined");
    assert_eq!(json(&stats.daily_series(12).await.unwrap()), series, "daily series");
    assert_eq!(json(&stats.user_daily_series(&user, 12).await.unwrap()), user_series, "user series");
    assert_eq!(json(&stats.refresh_summary().await.unwrap()), summary, "summary");
    stats_summary::Entity::delete_by_id(stats_summary::SINGLETON_ID.to_owned())
        .exec(&db.conn)
        .await
        .unwrap();
    assert_eq!(json(&stats.combined().await.unwrap()), combined_without_summary, "combined without a summary row");
});

db_test!(async fn prune_deletes_in_bounded_batches(db) {
    let calendar = BusinessCalendar::utc();
    let support::Seeded { stats, .. } =
        support::seeded(&db.conn, &calendar, datetime!(2025-06-20 12:00 UTC), 5, support::users("batches", 2, 0), &[date!(2025 - 06 - 15), date!(2025 - 06 - 16), date!(2025 - 06 - 17)], 40).await;
    for d in 14..=19 {
        stats.aggregate_day(&calendar.day(june(d)).unwrap()).await.unwrap();
    }
    let (usage_before, candidates_before) = stored_per_day(&db.conn, &calendar).await;

    // keep_days = 2: the cutoff is 06-18; 06-14..=06-17 are pruned.
    let report = prune(&stats, PruneOptions::keep_days(2).with_batch_rows(7)).await;
    let gone = [june(14), june(15), june(16), june(17)];
    assert_eq!(dates(&report.pruned), gone);
    let (usage_after, candidates_after) = stored_per_day(&db.conn, &calendar).await;
    assert_eq!(usage_after, without(&usage_before, &gone));
    assert_eq!(candidates_after, without(&candidates_before, &gone));
    assert!(usage_before[&june(16)] > 7 * 5, "several batches a day");

    // Each day and table takes full batches of 7 and one short (possibly empty) batch: a
    // statement that deleted more than 7 rows would end the loop early.
    let statements = |before: &BTreeMap<Date, usize>| {
        gone.iter().map(|d| before.get(d).copied().unwrap_or(0) / 7 + 1).sum::<usize>() as u64
    };
    assert_eq!(report.batches, statements(&usage_before) + statements(&candidates_before));
    let total = |before: &BTreeMap<Date, usize>| gone.iter().filter_map(|d| before.get(d)).sum::<usize>() as u64;
    assert_eq!(report.usage_rows_deleted, total(&usage_before));
    assert_eq!(report.candidate_rows_deleted, total(&candidates_before));
});

db_test!(async fn a_pruned_day_is_not_aggregated_again(db) {
    let calendar = BusinessCalendar::utc();
    let support::Seeded { stats, clock, data, .. } =
        support::seeded(&db.conn, &calendar, datetime!(2025-06-20 12:00 UTC), 17, support::users("final", 2, 0), &[june(15), june(16), june(17), june(19)], 20).await;
    // 06-16 is never aggregated; the others are.
    for d in [15, 17, 19] {
        stats.aggregate_day(&calendar.day(june(d)).unwrap()).await.unwrap();
    }
    let pruned_day = calendar.day(june(15)).unwrap();
    let before = support::stored(&db.conn, &pruned_day).await;
    let report = prune(&stats, PruneOptions::keep_days(2)).await;
    assert_eq!(dates(&report.pruned), [june(15), june(17)]);
    assert!(report.usage_rows_deleted > 0);

    clock.set(datetime!(2025-06-20 13:00 UTC));
    let error = stats.aggregate_day(&pruned_day).await.unwrap_err();
    assert!(matches!(&error, StatsError::Pruned { day } if day == "2025-06-15"), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("2025-06-15") && message.contains("final"), "{message}");
    let after = support::stored(&db.conn, &pruned_day).await;
    assert_eq!(after.daily, before.daily, "the stored day row is unchanged");
    assert_eq!(after.models, before.models);
    assert_eq!(after.users, before.users);
    support::assert_stored_matches(&db.conn, &data, &pruned_day).await;

    // A day before the cutoff that was never aggregated kept its rows and can still be
    // aggregated, once: then its rollups are final too (the next prune may delete its rows).
    let skipped = calendar.day(june(16)).unwrap();
    stats.aggregate_day(&skipped).await.unwrap();
    support::assert_stored_matches(&db.conn, &data, &skipped).await;
    let error = stats.aggregate_day(&skipped).await.unwrap_err();
    assert!(matches!(&error, StatsError::Pruned { day } if day == "2025-06-16"), "{error:?}");
    // A day after the cutoff can be aggregated again at will.
    stats.aggregate_day(&calendar.day(june(19)).unwrap()).await.unwrap();
    support::assert_stored_matches(&db.conn, &data, &calendar.day(june(19)).unwrap()).await;
    let day_18 = calendar.day(june(18)).unwrap();
    stats.aggregate_day(&day_18).await.unwrap();
    stats.aggregate_day(&day_18).await.unwrap();
});

db_test!(async fn prune_rejects_zero_settings(db) {
    let calendar = BusinessCalendar::utc();
    let clock = Arc::new(FixedClock::new(datetime!(2025-06-20 12:00 UTC)));
    let stats = Aggregator::new(db.conn.clone(), calendar.clone()).with_clock(clock);
    let mut rng = Rng(3);
    let days = support::days(&calendar, &[june(10)]);
    let data = Data::with_traffic(&mut rng, Vec::new(), &days, 5);
    data.insert(&db.conn).await;
    stats.aggregate_day(&days[0]).await.unwrap();

    for (options, option) in [
        (PruneOptions::keep_days(0), "keep_days"),
        (PruneOptions::keep_days(3).with_batch_rows(0), "batch_rows"),
    ] {
        let error = stats.prune(options, |_| ControlFlow::Continue(())).await.unwrap_err();
        assert!(
            matches!(error, StatsError::InvalidPruneOption { option: o, value: 0 } if o == option),
            "{error:?}"
        );
        assert_eq!(error.to_string(), format!("{option} must be at least 1, got 0"));
    }
    assert_eq!(watermark(&db.conn).await, None, "nothing recorded");
    let (usage, _) = stored_per_day(&db.conn, &calendar).await;
    assert_eq!(usage.values().sum::<usize>(), data.usage.len(), "nothing deleted");
});
