//! Idempotent writes: every statistics row is an `INSERT … ON CONFLICT … DO UPDATE SET col
//! = excluded.col` upsert, batched, and rows of an hour or day that the current run did not
//! write (a model, provider, user or key whose traffic has since gone) are removed.

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DbBackend, EntityTrait, IdenStatic, IntoActiveModel,
    Iterable,
};
use time::OffsetDateTime;
use tollgate_entities::{
    stats_daily, stats_daily_api_key, stats_daily_model, stats_daily_provider, stats_hourly,
    stats_hourly_model, stats_hourly_provider, stats_hourly_user, stats_summary, stats_user_daily,
};

use crate::sql::{instant, statement};
use crate::types::{StoredAs, to_i32};
use crate::{DayAggregate, HourAggregate, StatsError, SummaryReport};

/// Rows per multi-row INSERT: 13 bound values a row stays well below SQLite's 32 766 and
/// PostgreSQL's 65 535 parameters per statement.
const BATCH_ROWS: usize = 1_000;

/// `ON CONFLICT (keys) DO UPDATE SET col = excluded.col` for every other column of `E` but
/// `id` and `created_at`. The list follows the entity, so a new rollup column needs only
/// the entity and the SQL that computes it.
fn upsert_on<E: EntityTrait>(keys: &[E::Column]) -> OnConflict {
    OnConflict::columns(keys.iter().copied())
        .update_columns(updated_columns::<E>(keys))
        .to_owned()
}

/// The columns [`upsert_on`] overwrites.
fn updated_columns<E: EntityTrait>(keys: &[E::Column]) -> Vec<E::Column> {
    E::Column::iter()
        .filter(|column| {
            let name = column.as_str();
            name != "id" && name != "created_at" && !keys.iter().any(|key| key.as_str() == name)
        })
        .collect()
}

/// Upserts `items` as rows of `E` for the bucket starting at `time`, stamped `now`, in
/// batches, overwriting on the `keys` conflict.
async fn upsert_all<E, T, C>(
    conn: &C,
    items: &[T],
    time: OffsetDateTime,
    now: OffsetDateTime,
    keys: &[E::Column],
) -> Result<(), StatsError>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel>,
    T: StoredAs<E::Model>,
    C: ConnectionTrait,
{
    for chunk in items.chunks(BATCH_ROWS) {
        let rows = chunk
            .iter()
            .map(|item| Ok(item.to_row(time, now)?.into_active_model()))
            .collect::<Result<Vec<E::ActiveModel>, StatsError>>()?;
        E::insert_many(rows)
            .on_conflict(upsert_on::<E>(keys))
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// Deletes the rows of `tables` whose `column` lies in `[from, to)` and that this run (all
/// of whose rows carry `updated_at = now`) did not write: left over from traffic that no
/// longer exists.
async fn delete_leftovers<C: ConnectionTrait>(
    conn: &C,
    tables: &[&str],
    column: &str,
    (from, to): (OffsetDateTime, OffsetDateTime),
    now: OffsetDateTime,
) -> Result<(), StatsError> {
    let backend = conn.get_database_backend();
    for table in tables {
        conn.execute_raw(statement(
            backend,
            &format!(
                "DELETE FROM {table} WHERE {column} >= $1 AND {column} < $2 AND updated_at <> $3"
            ),
            vec![instant(from), instant(to), instant(now)],
        ))
        .await?;
    }
    Ok(())
}

/// [`upsert_all`] of `items` into the entity module `table`, keyed by its `keys` columns.
macro_rules! upsert {
    ($conn:expr, $table:ident, $items:expr, $time:expr, $now:expr, [$($key:ident),+]) => {
        upsert_all::<$table::Entity, _, _>(
            $conn,
            $items,
            $time,
            $now,
            &[$($table::Column::$key),+],
        )
        .await?
    };
}

/// Upserts an hour's `stats_hourly`, per-model and per-provider rows, stamped `now`.
async fn upsert_hour_totals<C: ConnectionTrait>(
    conn: &C,
    aggregate: &HourAggregate,
    now: OffsetDateTime,
) -> Result<(), StatsError> {
    let hour = aggregate.hour.start();
    let stats = std::slice::from_ref(&aggregate.stats);
    upsert!(conn, stats_hourly, stats, hour, now, [Hour]);
    upsert!(
        conn,
        stats_hourly_model,
        &aggregate.models,
        hour,
        now,
        [Hour, Model]
    );
    upsert!(
        conn,
        stats_hourly_provider,
        &aggregate.providers,
        hour,
        now,
        [Hour, Provider]
    );
    Ok(())
}

/// Upserts the rows of every hour of `hours` (consecutive), stamped `now`, and deletes
/// their per-model, per-provider and per-user rows this run did not write.
pub(crate) async fn write_hours<C: ConnectionTrait>(
    conn: &C,
    hours: &[HourAggregate],
    now: OffsetDateTime,
) -> Result<(), StatsError> {
    let (Some(first), Some(last)) = (hours.first(), hours.last()) else {
        return Ok(());
    };
    for aggregate in hours {
        upsert_hour_totals(conn, aggregate, now).await?;
        let hour = aggregate.hour.start();
        upsert!(
            conn,
            stats_hourly_user,
            &aggregate.users,
            hour,
            now,
            [Hour, UserId]
        );
    }
    let tables = [
        "stats_hourly_model",
        "stats_hourly_provider",
        "stats_hourly_user",
    ];
    let range = (first.hour.start(), last.hour.end());
    delete_leftovers(conn, &tables, "hour", range, now).await
}

/// Upserts the snapshot of an open hour (its `stats_hourly`, per-model and per-provider
/// rows), stamped `now`, and deletes the hour's per-model and per-provider rows this run did
/// not write; per-user rows are written when the hour closes.
pub(crate) async fn write_open_hour<C: ConnectionTrait>(
    conn: &C,
    aggregate: &HourAggregate,
    now: OffsetDateTime,
) -> Result<(), StatsError> {
    upsert_hour_totals(conn, aggregate, now).await?;
    let hour = aggregate.hour.start();
    let tables = ["stats_hourly_model", "stats_hourly_provider"];
    let range = (hour, aggregate.hour.end());
    delete_leftovers(conn, &tables, "hour", range, now).await
}

/// Upserts the day's hours, then the day row and its per-model, per-user, per-provider and
/// per-client-key rows, stamped `now`, and deletes the day's dimension rows this run did
/// not write.
pub(crate) async fn write_day<C: ConnectionTrait>(
    conn: &C,
    aggregate: &DayAggregate,
    now: OffsetDateTime,
) -> Result<(), StatsError> {
    write_hours(conn, &aggregate.hours, now).await?;
    let date = aggregate.day.start();
    let stats = std::slice::from_ref(&aggregate.stats);
    upsert!(conn, stats_daily, stats, date, now, [Date]);
    upsert!(
        conn,
        stats_daily_model,
        &aggregate.models,
        date,
        now,
        [Date, Model]
    );
    upsert!(
        conn,
        stats_user_daily,
        &aggregate.users,
        date,
        now,
        [UserId, Date]
    );
    upsert!(
        conn,
        stats_daily_provider,
        &aggregate.providers,
        date,
        now,
        [Date, Provider]
    );
    upsert!(
        conn,
        stats_daily_api_key,
        &aggregate.api_keys,
        date,
        now,
        [Date, ApiKeyId]
    );
    let tables = [
        "stats_daily_model",
        "stats_user_daily",
        "stats_daily_provider",
        "stats_daily_api_key",
    ];
    let range = (date, aggregate.day.end());
    delete_leftovers(conn, &tables, "date", range, now).await
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

#[cfg(test)]
mod tests {
    use sea_orm::IdenStatic;
    use tollgate_entities::{
        stats_daily, stats_daily_api_key, stats_daily_model, stats_daily_provider, stats_hourly,
        stats_hourly_model, stats_hourly_provider, stats_hourly_user, stats_summary,
        stats_user_daily,
    };

    use super::updated_columns;

    fn names<C: IdenStatic>(columns: Vec<C>) -> Vec<&'static str> {
        columns.iter().map(IdenStatic::as_str).collect()
    }

    /// The derived lists equal the ones the upserts spelled out by hand before.
    #[test]
    fn upserts_overwrite_every_column_but_the_key_id_and_created_at() {
        assert_eq!(
            names(updated_columns::<stats_daily::Entity>(&[
                stats_daily::Column::Date
            ])),
            [
                "total_requests",
                "success_requests",
                "error_requests",
                "input_tokens",
                "output_tokens",
                "cache_creation_tokens",
                "cache_read_tokens",
                "total_cost",
                "actual_total_cost",
                "input_cost",
                "output_cost",
                "cache_creation_cost",
                "cache_read_cost",
                "avg_response_time_ms",
                "fallback_count",
                "unique_models",
                "unique_providers",
                "unpriced_requests",
                "response_time_histogram",
                "updated_at",
            ]
        );
        assert_eq!(
            names(updated_columns::<stats_daily_model::Entity>(&[
                stats_daily_model::Column::Date,
                stats_daily_model::Column::Model,
            ])),
            [
                "total_requests",
                "input_tokens",
                "output_tokens",
                "cache_creation_tokens",
                "cache_read_tokens",
                "total_cost",
                "avg_response_time_ms",
                "unpriced_requests",
                "response_time_histogram",
                "updated_at",
            ]
        );
        assert_eq!(
            names(updated_columns::<stats_user_daily::Entity>(&[
                stats_user_daily::Column::UserId,
                stats_user_daily::Column::Date,
            ])),
            [
                "total_requests",
                "success_requests",
                "error_requests",
                "input_tokens",
                "output_tokens",
                "cache_creation_tokens",
                "cache_read_tokens",
                "total_cost",
                "unpriced_requests",
                "response_time_histogram",
                "updated_at",
            ]
        );
        let slice = [
            "total_requests",
            "success_requests",
            "error_requests",
            "input_tokens",
            "output_tokens",
            "cache_creation_tokens",
            "cache_read_tokens",
            "total_cost",
            "actual_total_cost",
            "avg_response_time_ms",
            "unpriced_requests",
            "response_time_histogram",
            "updated_at",
        ];
        {
            use stats_hourly_model::Column as C;
            let columns = updated_columns::<stats_hourly_model::Entity>(&[C::Hour, C::Model]);
            assert_eq!(names(columns), slice);
        }
        {
            use stats_hourly_provider::Column as C;
            let columns = updated_columns::<stats_hourly_provider::Entity>(&[C::Hour, C::Provider]);
            assert_eq!(names(columns), slice);
        }
        {
            use stats_hourly_user::Column as C;
            let columns = updated_columns::<stats_hourly_user::Entity>(&[C::Hour, C::UserId]);
            assert_eq!(names(columns), slice);
        }
        {
            use stats_daily_provider::Column as C;
            let columns = updated_columns::<stats_daily_provider::Entity>(&[C::Date, C::Provider]);
            assert_eq!(names(columns), slice);
        }
        {
            use stats_daily_api_key::Column as C;
            let columns = updated_columns::<stats_daily_api_key::Entity>(&[C::Date, C::ApiKeyId]);
            assert_eq!(names(columns), slice);
        }
        assert_eq!(
            names(updated_columns::<stats_hourly::Entity>(&[
                stats_hourly::Column::Hour
            ])),
            names(updated_columns::<stats_daily::Entity>(&[
                stats_daily::Column::Date
            ])),
        );
        assert_eq!(
            names(updated_columns::<stats_summary::Entity>(&[
                stats_summary::Column::Id
            ])),
            [
                "cutoff_date",
                "all_time_requests",
                "all_time_success_requests",
                "all_time_error_requests",
                "all_time_input_tokens",
                "all_time_output_tokens",
                "all_time_cache_creation_tokens",
                "all_time_cache_read_tokens",
                "all_time_cost",
                "all_time_actual_cost",
                "total_users",
                "active_users",
                "total_api_keys",
                "active_api_keys",
                "updated_at",
            ]
        );
    }
}
