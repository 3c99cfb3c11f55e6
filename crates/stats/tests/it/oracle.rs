//! The stored day, model and user rows equal an independent row-by-row computation, and
//! aggregating a day again changes nothing.

use std::sync::Arc;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use time::macros::{date, datetime};
use tollgate_entities::{api_keys, stats_daily, stats_summary, stats_user_daily, usage};
use tollgate_stats::{Aggregator, BusinessCalendar, FixedClock};
use tollgate_testkit::{db_test, fixtures};

use crate::support::{self, Data, Rng};

db_test!(async fn stored_rows_match_the_oracle(db) {
    let calendar = BusinessCalendar::utc();
    let clock = Arc::new(FixedClock::new(datetime!(2025-06-20 08:00 UTC)));
    let stats = Aggregator::new(db.conn.clone(), calendar.clone()).with_clock(clock);
    let mut rng = Rng(7);
    let mut data = Data {
        // Five active, three inactive (their traffic counts), and two without traffic.
        users: support::users("oracle", 7, 3),
        ..Data::default()
    };
    let with_traffic = data.users[..8].to_vec();
    let days = [date!(2025 - 06 - 17), date!(2025 - 06 - 18), date!(2025 - 06 - 19)];
    for date in days {
        let day = calendar.day(date).unwrap();
        data.extend(support::traffic_for_day(&mut rng, &day, &with_traffic, 120));
    }
    data.insert(&db.conn).await;

    for date in days {
        let day = calendar.day(date).unwrap();
        let aggregate = stats.aggregate_day(&day).await.unwrap();
        let expected = support::oracle(&data, day.start(), day.end());
        support::assert_day_stats(&aggregate.stats, &expected.stats, "returned");
        support::assert_stored_matches(&db.conn, &data, &day).await;
        // The data really exercises the definitions.
        assert!(expected.stats.error_requests > 0 && expected.stats.fallback_count > 0);
        assert!(expected.users.len() >= 8, "inactive users' traffic is counted");
    }
    // An empty day still gets a zero row.
    let empty = calendar.day(date!(2025 - 06 - 10)).unwrap();
    let aggregate = stats.aggregate_day(&empty).await.unwrap();
    assert_eq!(aggregate.stats.total_requests, 0);
    support::assert_stored_matches(&db.conn, &data, &empty).await;
});

db_test!(async fn aggregating_twice_gives_identical_rows(db) {
    let calendar = BusinessCalendar::utc();
    let clock = Arc::new(FixedClock::new(datetime!(2025-06-20 08:00 UTC)));
    let stats = Aggregator::new(db.conn.clone(), calendar.clone()).with_clock(clock.clone());
    let mut rng = Rng(11);
    let day = calendar.day(date!(2025 - 06 - 19)).unwrap();
    let mut data = Data::with_traffic(&mut rng, support::users("twice", 4, 1), &[day], 80);
    data.insert(&db.conn).await;

    stats.aggregate_day(&day).await.unwrap();
    let first = support::stored(&db.conn, &day).await;
    let counts = support::table_counts(&db.conn).await;
    clock.set(datetime!(2025-06-20 09:00 UTC));
    stats.aggregate_day(&day).await.unwrap();
    let second = support::stored(&db.conn, &day).await;
    assert_eq!(support::table_counts(&db.conn).await, counts, "no duplicate rows");
    // Same ids (updated in place), same values; only updated_at moves.
    let strip_daily = |rows: &[stats_daily::Model]| {
        rows.iter()
            .map(|r| stats_daily::Model { updated_at: r.created_at, ..r.clone() })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip_daily(&first.daily), strip_daily(&second.daily));
    let strip_users = |rows: &[stats_user_daily::Model]| {
        rows.iter()
            .map(|r| stats_user_daily::Model { updated_at: r.created_at, ..r.clone() })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip_users(&first.users), strip_users(&second.users));
    assert_eq!(first.models.len(), second.models.len());
    for (a, b) in first.models.iter().zip(&second.models) {
        assert_eq!((&a.id, &a.model, a.total_requests), (&b.id, &b.model, b.total_requests));
        assert_eq!(a.total_cost.to_bits(), b.total_cost.to_bits());
    }

    // Traffic that disappears (a user's rows deleted) disappears from the day on a rerun.
    let gone = first.users[0].user_id.clone();
    let remaining: Vec<usage::Model> =
        data.usage.iter().filter(|r| r.user_id.as_deref() != Some(&gone)).cloned().collect();
    usage::Entity::delete_many()
        .filter(usage::Column::UserId.eq(gone.clone()))
        .exec(&db.conn)
        .await
        .unwrap();
    data.usage = remaining;
    clock.set(datetime!(2025-06-20 10:00 UTC));
    stats.aggregate_day(&day).await.unwrap();
    support::assert_stored_matches(&db.conn, &data, &day).await;
});

db_test!(async fn summary_is_one_row_with_sums_and_counts(db) {
    let calendar = BusinessCalendar::utc();
    let support::Seeded { stats, data, .. } =
        support::seeded(&db.conn, &calendar, datetime!(2025-06-20 08:00 UTC), 5, support::users("summary", 3, 2), &[date!(2025 - 06 - 18), date!(2025 - 06 - 19), date!(2025 - 06 - 20)], 40).await;
    let mut key = fixtures::api_key(&data.users[0].id, &"a".repeat(64));
    fixtures::insert(&db.conn, key.clone()).await;
    key.id = tollgate_entities::new_id();
    key.key_hash = "b".repeat(64);
    key.is_active = false;
    fixtures::insert(&db.conn, key).await;

    for date in [date!(2025 - 06 - 18), date!(2025 - 06 - 19)] {
        stats.aggregate_day(&calendar.day(date).unwrap()).await.unwrap();
    }
    for _ in 0..2 {
        let report = stats.refresh_summary().await.unwrap();
        assert_eq!(report.cutoff, datetime!(2025-06-20 00:00 UTC));
    }
    let rows = stats_summary::Entity::find().all(&db.conn).await.unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.id, stats_summary::SINGLETON_ID);
    let expected = support::oracle(&data, datetime!(2025-06-18 00:00 UTC), datetime!(2025-06-20 00:00 UTC));
    assert_eq!(row.all_time_requests, expected.stats.total_requests);
    assert_eq!(row.all_time_error_requests, expected.stats.error_requests);
    assert_eq!(row.all_time_success_requests, expected.stats.success_requests);
    assert_eq!(row.all_time_input_tokens, expected.stats.input_tokens);
    assert_eq!(row.all_time_output_tokens, expected.stats.output_tokens);
    assert_eq!(row.all_time_cache_creation_tokens, expected.stats.cache_creation_tokens);
    assert_eq!(row.all_time_cache_read_tokens, expected.stats.cache_read_tokens);
    support::close(row.all_time_cost, expected.stats.total_cost, "all_time_cost");
    support::close(row.all_time_actual_cost, expected.stats.actual_total_cost, "all_time_actual_cost");
    assert_eq!((row.total_users, row.active_users), (5, 3));
    assert_eq!((row.total_api_keys, row.active_api_keys), (2, 1));
    assert_eq!(api_keys::Entity::find().all(&db.conn).await.unwrap().len(), 2);
});
