//! What each run writes: an hour's, a day's and the summary's rows, table by table, each
//! bucket through [`crate::upsert`].

use sea_orm::{ActiveValue::Set, ConnectionTrait, DbBackend, EntityTrait};
use time::OffsetDateTime;
use tollgate_entities::{
    stats_daily, stats_daily_api_key, stats_daily_model, stats_daily_provider, stats_hourly,
    stats_hourly_api_key, stats_hourly_model, stats_hourly_provider, stats_hourly_user,
    stats_summary, stats_user_daily,
};

use crate::types::to_i32;
use crate::upsert::{Bucket, upsert_on, write_bucket};
use crate::{
    BusinessDay, DayAggregate, HourAggregate, SliceStats, StatsError, SummaryReport, UserStats,
};

/// Writes the rows of one bucket of the entity module `table` (time column `$time`, slice
/// key column `$key` when it has one): see [`write_bucket`].
macro_rules! write_rows {
    ($conn:expr, $table:ident, $items:expr, $range:expr, $now:expr, $time:ident $(, $key:ident)?) => {
        write_bucket::<$table::Entity, _, _>(
            $conn,
            $items,
            &Bucket {
                start: $range.0,
                end: $range.1,
                time: $table::Column::$time,
                key: None$(.or(Some($table::Column::$key)))?,
            },
            $now,
        )
        .await?
    };
}

/// Writes a bucket's totals row and its per-model and per-provider rows (the tables an hour
/// and a day both have), with time column `$time`.
macro_rules! write_totals {
    ($conn:expr, $aggregate:expr, $range:expr, $now:expr, $time:ident: $totals:ident, $models:ident, $providers:ident) => {{
        let stats = std::slice::from_ref(&$aggregate.stats);
        write_rows!($conn, $totals, stats, $range, $now, $time);
        write_rows!(
            $conn,
            $models,
            &$aggregate.models,
            $range,
            $now,
            $time,
            Model
        );
        write_rows!(
            $conn,
            $providers,
            &$aggregate.providers,
            $range,
            $now,
            $time,
            Provider
        );
    }};
}

/// Writes an hour's `stats_hourly`, per-model and per-provider rows, stamped `now`.
async fn write_hour_totals<C: ConnectionTrait>(
    conn: &C,
    aggregate: &HourAggregate,
    now: OffsetDateTime,
) -> Result<(), StatsError> {
    let range = (aggregate.hour.start(), aggregate.hour.end());
    write_totals!(conn, aggregate, range, now, Hour: stats_hourly, stats_hourly_model, stats_hourly_provider);
    Ok(())
}

/// Writes the rows of every hour of `hours`, stamped `now`.
pub(crate) async fn write_hours<C: ConnectionTrait>(
    conn: &C,
    hours: &[HourAggregate],
    now: OffsetDateTime,
) -> Result<(), StatsError> {
    for aggregate in hours {
        write_hour_totals(conn, aggregate, now).await?;
        let range = (aggregate.hour.start(), aggregate.hour.end());
        write_rows!(
            conn,
            stats_hourly_user,
            &aggregate.users,
            range,
            now,
            Hour,
            UserId
        );
        write_rows!(
            conn,
            stats_hourly_api_key,
            &aggregate.api_keys,
            range,
            now,
            Hour,
            ApiKeyId
        );
    }
    Ok(())
}

/// Writes the snapshot of an open hour (its `stats_hourly`, per-model and per-provider
/// rows), stamped `now`; per-user rows are written when the hour closes.
pub(crate) async fn write_open_hour<C: ConnectionTrait>(
    conn: &C,
    aggregate: &HourAggregate,
    now: OffsetDateTime,
) -> Result<(), StatsError> {
    write_hour_totals(conn, aggregate, now).await
}

/// Writes the day's recomputed hours, then the day row and its per-model and per-provider
/// rows and, unless `dimensions_written`, its per-user and per-client-key rows, stamped
/// `now`.
pub(crate) async fn write_day<C: ConnectionTrait>(
    conn: &C,
    aggregate: &DayAggregate,
    now: OffsetDateTime,
    dimensions_written: bool,
) -> Result<(), StatsError> {
    write_hours(conn, &aggregate.hours, now).await?;
    let range = (aggregate.day.start(), aggregate.day.end());
    write_totals!(conn, aggregate, range, now, Date: stats_daily, stats_daily_model, stats_daily_provider);
    if !dimensions_written {
        let day = &aggregate.day;
        write_day_dimensions(conn, day, &aggregate.users, &aggregate.api_keys, now).await?;
    }
    Ok(())
}

/// Writes a day's per-user and per-client-key rows, stamped `now`.
pub(crate) async fn write_day_dimensions<C: ConnectionTrait>(
    conn: &C,
    day: &BusinessDay,
    users: &[UserStats],
    api_keys: &[SliceStats],
    now: OffsetDateTime,
) -> Result<(), StatsError> {
    let range = (day.start(), day.end());
    write_rows!(conn, stats_user_daily, users, range, now, Date, UserId);
    write_rows!(
        conn,
        stats_daily_api_key,
        api_keys,
        range,
        now,
        Date,
        ApiKeyId
    );
    Ok(())
}

/// Upserts the single summary row.
pub(crate) async fn write_summary<C: ConnectionTrait>(
    conn: &C,
    report: &SummaryReport,
    now: OffsetDateTime,
) -> Result<(), StatsError> {
    use stats_summary::Column as C;
    let SummaryReport {
        cutoff,
        totals,
        accounts,
    } = report;
    let row = stats_summary::ActiveModel {
        id: Set(crate::sql::summary_row_id(conn).await?),
        cutoff_date: Set(*cutoff),
        all_time_requests: Set(totals.requests),
        all_time_success_requests: Set(totals.success_requests),
        all_time_error_requests: Set(totals.error_requests),
        all_time_input_tokens: Set(totals.input_tokens),
        all_time_output_tokens: Set(totals.output_tokens),
        all_time_cache_creation_tokens: Set(totals.cache_creation_tokens),
        all_time_cache_read_tokens: Set(totals.cache_read_tokens),
        all_time_cost: Set(totals.cost),
        all_time_actual_cost: Set(totals.actual_cost),
        total_users: Set(to_i32("total_users", accounts.total_users)?),
        active_users: Set(to_i32("active_users", accounts.active_users)?),
        total_api_keys: Set(to_i32("total_api_keys", accounts.total_api_keys)?),
        active_api_keys: Set(to_i32("active_api_keys", accounts.active_api_keys)?),
        created_at: Set(now),
        updated_at: Set(now),
    };
    stats_summary::Entity::insert(row)
        .on_conflict(upsert_on::<stats_summary::Entity>(&[C::Id]))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Whether writes on `backend` run their reads inside the write transaction. PostgreSQL
/// does (after taking the advisory lock); SQLite reads first and then opens a transaction
/// whose first statement writes, so a concurrent writer (the gateway) cannot make the
/// upgrade from a read to a write lock fail.
pub(crate) fn reads_inside_transaction(backend: DbBackend) -> bool {
    backend == DbBackend::Postgres
}
