//! Two aggregators started at once on PostgreSQL: no error, no duplicate row, the same
//! values (the advisory lock serialises them).

use std::sync::Arc;

use sea_orm::{ConnectOptions, Database};
use time::macros::{date, datetime};
use tollgate_stats::{Aggregator, BusinessCalendar, FixedClock};
use tollgate_testkit::TestDb;

use crate::support::{self, Data, Rng};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_aggregators_at_once_on_postgres() {
    let db = TestDb::postgres().await;
    let calendar = BusinessCalendar::new("America/New_York").unwrap();
    let mut rng = Rng(42);
    let dates = [
        date!(2025 - 03 - 08),
        date!(2025 - 03 - 09),
        date!(2025 - 03 - 10),
    ];
    let days = support::days(&calendar, &dates);
    let data = Data::with_traffic(&mut rng, support::users("race", 6, 2), &days, 150);
    data.insert(&db.conn).await;

    let mut handles = Vec::new();
    for _ in 0..2 {
        // Separate pools, as two processes would have.
        let mut options = ConnectOptions::new(db.url().to_owned());
        options.max_connections(3).sqlx_logging(false);
        let conn = Database::connect(options).await.unwrap();
        let clock = Arc::new(FixedClock::new(datetime!(2025-03-12 12:00 UTC)));
        let stats = Aggregator::new(conn, calendar.clone()).with_clock(clock);
        handles.push(tokio::spawn(async move {
            for _ in 0..3 {
                stats
                    .backfill(5, |_| std::ops::ControlFlow::Continue(()))
                    .await?;
                for date in dates {
                    stats.aggregate_day(&stats.calendar().day(date)?).await?;
                }
                stats.refresh_summary().await?;
            }
            Ok::<_, tollgate_stats::StatsError>(())
        }));
    }
    for handle in handles {
        handle.await.unwrap().unwrap();
    }
    let (daily, _, _) = support::table_counts(&db.conn).await;
    assert_eq!(daily, 5, "one row per day of the window");
    for date in dates {
        support::assert_stored_matches(&db.conn, &data, &calendar.day(date).unwrap()).await;
    }
}
