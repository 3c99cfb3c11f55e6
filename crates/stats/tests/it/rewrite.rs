//! What a re-close writes: a slice row whose numbers did not change is left as it is, a
//! changed one is rewritten, a key whose traffic is gone loses its row (by key, not by
//! `updated_at`), and the totals row is always stamped again (it says whether the hour or
//! day is closed).

use std::collections::BTreeMap;
use std::sync::Arc;

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use time::OffsetDateTime;
use time::macros::{date, datetime};
use tollgate_entities::{stats_daily, stats_hourly, stats_hourly_user, stats_user_daily, usage};
use tollgate_stats::{Aggregator, BusinessCalendar, FixedClock};
use tollgate_testkit::db_test;

use crate::support::{self, Data, Rng};

/// A stored per-user row as `(user_id, (total_requests, updated_at))`.
type UserRow = (String, (i32, OffsetDateTime));

/// Stored per-user rows: `user_id → (total_requests, updated_at)`.
type UserRows = BTreeMap<String, (i32, OffsetDateTime)>;

/// `user_id → (total_requests, updated_at)` of the stored per-user rows of entity `E` whose
/// time column `time` is `at` (`row` picks those fields).
async fn users_at<E: EntityTrait>(
    db: &DatabaseConnection,
    time: E::Column,
    at: OffsetDateTime,
    row: fn(E::Model) -> UserRow,
) -> UserRows {
    E::find()
        .filter(time.eq(at))
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(row)
        .collect()
}

/// The per-user rows of the hour at `hour`.
async fn hour_users(db: &DatabaseConnection, hour: OffsetDateTime) -> UserRows {
    use stats_hourly_user::{Column, Entity};
    users_at::<Entity>(db, Column::Hour, hour, |row| {
        (row.user_id, (row.total_requests, row.updated_at))
    })
    .await
}

/// The per-user rows of the day at `date`.
async fn day_users(db: &DatabaseConnection, date: OffsetDateTime) -> UserRows {
    use stats_user_daily::{Column, Entity};
    users_at::<Entity>(db, Column::Date, date, |row| {
        (row.user_id, (row.total_requests, row.updated_at))
    })
    .await
}

db_test!(async fn a_re_close_rewrites_only_what_changed_and_drops_vanished_keys(db) {
    let calendar = BusinessCalendar::utc();
    let first_close = datetime!(2025-06-20 12:02:30 UTC);
    let clock = Arc::new(FixedClock::new(first_close));
    let stats = Aggregator::new(db.conn.clone(), calendar.clone()).with_clock(clock.clone());
    let mut rng = Rng(5);
    let users = support::users("rewrite", 3, 0);
    let hour = datetime!(2025-06-20 11:00 UTC);
    let mut data = Data {
        users: users.clone(),
        ..Data::default()
    };
    for (index, user) in users.iter().enumerate() {
        for minute in 0..3 {
            let at = hour + time::Duration::minutes(i64::try_from(index * 10 + minute).unwrap());
            data.usage.push(support::usage_row(&mut rng, Some(user), at));
        }
    }
    data.insert(&db.conn).await;

    stats.close_hours(1).await.unwrap();
    let before = hour_users(&db.conn, hour).await;
    assert_eq!(before.len(), 3, "one row per user: {before:?}");
    assert!(before.values().all(|(_, at)| *at == first_close));

    // A late row for user 0; user 2's rows are gone (as if deleted by hand).
    clock.set(datetime!(2025-06-20 12:07:30 UTC));
    let late = support::usage_row(&mut rng, Some(&users[0]), hour + time::Duration::minutes(50));
    support::insert_usage(&db.conn, std::slice::from_ref(&late)).await;
    usage::Entity::delete_many()
        .filter(usage::Column::UserId.eq(users[2].id.clone()))
        .exec(&db.conn)
        .await
        .unwrap();
    stats.close_hours(1).await.unwrap();
    let after = hour_users(&db.conn, hour).await;

    let changed = &after[&users[0].id];
    assert_eq!(changed.0, before[&users[0].id].0 + 1, "the late row is counted");
    assert_eq!(changed.1, datetime!(2025-06-20 12:07:30 UTC), "the changed row is rewritten");
    assert_eq!(
        after[&users[1].id], before[&users[1].id],
        "an unchanged row is left as it is (and not mistaken for a leftover)"
    );
    assert!(!after.contains_key(&users[2].id), "a vanished key loses its row: {after:?}");
    let totals = stats_hourly::Entity::find()
        .filter(stats_hourly::Column::Hour.eq(hour))
        .one(&db.conn)
        .await
        .unwrap()
        .expect("hour row");
    assert_eq!(totals.updated_at, datetime!(2025-06-20 12:07:30 UTC), "totals are stamped");
    assert_eq!(totals.total_requests, 7);

    // The day, closed twice after it ended: the second close changes no per-user row but
    // stamps the day row again.
    let day = calendar.day(date!(2025 - 06 - 20)).unwrap();
    let first_day_close = datetime!(2025-06-21 00:05 UTC);
    clock.set(first_day_close);
    stats.close_day(&day).await.unwrap();
    let closed = day_users(&db.conn, day.start()).await;
    assert_eq!(closed.len(), 2, "{closed:?}");
    assert_eq!(closed[&users[0].id].0, 4);
    clock.set(datetime!(2025-06-21 00:10 UTC));
    stats.close_day(&day).await.unwrap();
    assert_eq!(day_users(&db.conn, day.start()).await, closed);
    let row = stats_daily::Entity::find()
        .filter(stats_daily::Column::Date.eq(day.start()))
        .one(&db.conn)
        .await
        .unwrap()
        .expect("day row");
    assert_eq!(row.updated_at, datetime!(2025-06-21 00:10 UTC));
    assert_eq!(row.total_requests, 7);
});
