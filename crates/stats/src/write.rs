//! Idempotent writes: every statistics row is an `INSERT … ON CONFLICT … DO UPDATE SET col
//! = excluded.col` upsert, batched, and rows of a day that the current run did not write
//! (a model or user whose traffic has since gone) are removed.

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ConnectionTrait, DbBackend, EntityTrait, IdenStatic,
    IntoActiveModel, Iterable,
};
use time::OffsetDateTime;
use tollgate_entities::{stats_daily, stats_daily_model, stats_summary, stats_user_daily};

use crate::sql::{instant, statement};
use crate::types::to_i32;
use crate::{DayAggregate, ModelStats, StatsError, SummaryReport, UserStats};

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

/// The rows of `items` dated `date`, stamped `now`, ready to insert.
fn rows<T, M, A>(
    items: &[T],
    date: OffsetDateTime,
    now: OffsetDateTime,
    to_row: fn(&T, OffsetDateTime, OffsetDateTime) -> Result<M, StatsError>,
) -> Result<Vec<A>, StatsError>
where
    M: IntoActiveModel<A>,
    A: ActiveModelTrait,
{
    items
        .iter()
        .map(|item| Ok(to_row(item, date, now)?.into_active_model()))
        .collect()
}

/// Upserts the day row, the per-model rows and the per-user rows of `aggregate`, stamped
/// `now`, and deletes the day's per-model and per-user rows this run did not write.
pub(crate) async fn write_day<C: ConnectionTrait>(
    conn: &C,
    aggregate: &DayAggregate,
    now: OffsetDateTime,
) -> Result<(), StatsError> {
    let date = aggregate.day.start();
    {
        use stats_daily::Column as C;
        stats_daily::Entity::insert(aggregate.stats.to_row(date, now)?.into_active_model())
            .on_conflict(upsert_on::<stats_daily::Entity>(&[C::Date]))
            .exec_without_returning(conn)
            .await?;
    }
    for chunk in aggregate.models.chunks(BATCH_ROWS) {
        use stats_daily_model::Column as C;
        stats_daily_model::Entity::insert_many(rows(chunk, date, now, ModelStats::to_row)?)
            .on_conflict(upsert_on::<stats_daily_model::Entity>(&[C::Date, C::Model]))
            .exec_without_returning(conn)
            .await?;
    }
    for chunk in aggregate.users.chunks(BATCH_ROWS) {
        use stats_user_daily::Column as C;
        stats_user_daily::Entity::insert_many(rows(chunk, date, now, UserStats::to_row)?)
            .on_conflict(upsert_on::<stats_user_daily::Entity>(&[C::UserId, C::Date]))
            .exec_without_returning(conn)
            .await?;
    }

    // Every row of the day this run wrote carries `updated_at = now`; any other row of the
    // day is left over from traffic that no longer exists.
    let backend = conn.get_database_backend();
    for table in ["stats_daily_model", "stats_user_daily"] {
        conn.execute_raw(statement(
            backend,
            &format!("DELETE FROM {table} WHERE date = $1 AND updated_at <> $2"),
            vec![instant(date), instant(now)],
        ))
        .await?;
    }
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
        id: Set(stats_summary::SINGLETON_ID.to_owned()),
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
    use tollgate_entities::{stats_daily, stats_daily_model, stats_summary, stats_user_daily};

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
                "updated_at",
            ]
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
