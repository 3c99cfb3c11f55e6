//! SQL helpers shared by the passes (placeholders, range bounds, the advisory lock, the
//! error and sum expressions) and the small look-ups the summary needs.

use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement, Value};
use time::{OffsetDateTime, UtcOffset};

use crate::{AccountCounts, StatsError};

/// The advisory lock key every aggregator takes on PostgreSQL ("tollgate" in ASCII).
pub(crate) const ADVISORY_LOCK_KEY: i64 = 0x746f_6c6c_6761_7465;

/// A statement written with `$n` placeholders, rendered as `?n` on SQLite.
pub(crate) fn statement(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = match backend {
        DbBackend::Sqlite => sql.replace('$', "?"),
        _ => sql.to_owned(),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// A timestamp value exactly as the entities store it (UTC), for equality and inserts.
pub(crate) fn instant(instant: OffsetDateTime) -> Value {
    Value::from(instant.to_offset(UtcOffset::UTC))
}

/// A range bound for `column >= bound` / `column < bound`.
///
/// PostgreSQL compares `timestamptz` values. SQLite compares text: sqlx stores an
/// `OffsetDateTime` as RFC 3339 in UTC with the fraction trimmed (`…T00:00:00Z`,
/// `…T00:00:00.5Z`), which does not sort chronologically within one second (`.` sorts before
/// `Z`). A whole-second bound rendered as `YYYY-MM-DDTHH:MM:SS`, without fraction or `Z`, is
/// a strict prefix of every stored value in that second, so `>=` and `<` against it are
/// exact: the comparison is decided by the first 19 characters, the stored value's whole
/// seconds. Business-day bounds are always whole seconds.
pub(crate) fn bound(backend: DbBackend, instant: OffsetDateTime) -> Result<Value, StatsError> {
    let utc = instant.to_offset(UtcOffset::UTC);
    match backend {
        DbBackend::Sqlite => {
            if utc.nanosecond() != 0 {
                return Err(StatsError::SubsecondBound { instant });
            }
            let format =
                time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
            let text = utc
                .format(format)
                .map_err(|error| StatsError::DateOutOfRange {
                    detail: error.to_string(),
                })?;
            Ok(Value::from(text))
        }
        _ => Ok(Value::from(utc)),
    }
}

/// Memory PostgreSQL may use per sort or hash in an aggregation transaction: enough for
/// the day's groups to stay in memory (the 4 MB default spills them to disk).
const WORK_MEM: &str = "64MB";

/// A transaction on a pool connection of its own for reads that run side by side with
/// others, with the aggregation `work_mem` on PostgreSQL.
pub(crate) async fn read_transaction(
    db: &sea_orm::DatabaseConnection,
) -> Result<sea_orm::DatabaseTransaction, StatsError> {
    use sea_orm::TransactionTrait;

    let txn = db.begin().await?;
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared(&format!("SET LOCAL work_mem = '{WORK_MEM}'"))
            .await?;
    }
    Ok(txn)
}

/// Takes the aggregators' transaction-scoped advisory lock (PostgreSQL only; a no-op
/// elsewhere), released at commit or rollback, and raises `work_mem` for the rest of the
/// transaction only.
pub(crate) async fn lock<C: ConnectionTrait>(conn: &C) -> Result<(), StatsError> {
    if conn.get_database_backend() == DbBackend::Postgres {
        conn.execute_raw(statement(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            vec![Value::from(ADVISORY_LOCK_KEY)],
        ))
        .await?;
        conn.execute_unprepared(&format!("SET LOCAL work_mem = '{WORK_MEM}'"))
            .await?;
    }
    Ok(())
}

pub(crate) const ERROR_CASE: &str =
    "CASE WHEN status_code >= 400 OR error_message IS NOT NULL THEN 1 ELSE 0 END";

pub(crate) fn sum_int(expr: &str) -> String {
    format!("CAST(COALESCE(SUM({expr}), 0) AS BIGINT)")
}

pub(crate) fn sum_float(expr: &str) -> String {
    format!("CAST(COALESCE(SUM({expr}), 0) AS DOUBLE PRECISION)")
}

pub(crate) fn get_i64(row: &QueryResult, index: usize) -> Result<i64, StatsError> {
    Ok(row.try_get_by_index::<i64>(index)?)
}

pub(crate) fn get_f64(row: &QueryResult, index: usize) -> Result<f64, StatsError> {
    Ok(row.try_get_by_index::<f64>(index)?)
}

pub(crate) fn mean(sum: i64, count: i64) -> f64 {
    if count == 0 {
        0.0
    } else {
        #[expect(
            clippy::cast_precision_loss,
            reason = "a mean of millisecond counts; sums stay far below 2^53"
        )]
        let mean = sum as f64 / count as f64;
        mean
    }
}

/// User and client-key counts, in one statement.
pub(crate) async fn account_counts<C: ConnectionTrait>(
    conn: &C,
) -> Result<AccountCounts, StatsError> {
    let backend = conn.get_database_backend();
    let row = conn
        .query_one_raw(statement(
            backend,
            "SELECT (SELECT COUNT(*) FROM users), \
             (SELECT COUNT(*) FROM users WHERE is_active = $1), \
             (SELECT COUNT(*) FROM api_keys), \
             (SELECT COUNT(*) FROM api_keys WHERE is_active = $1)",
            vec![Value::from(true)],
        ))
        .await?;
    let Some(row) = row else {
        return Ok(AccountCounts::default());
    };
    Ok(AccountCounts {
        total_users: get_i64(&row, 0)?,
        active_users: get_i64(&row, 1)?,
        total_api_keys: get_i64(&row, 2)?,
        active_api_keys: get_i64(&row, 3)?,
    })
}

/// The id of the `stats_summary` row to update: the one row that exists (an adopted Aether
/// database has its own, under a random id), else tollgate's fixed id.
pub(crate) async fn summary_row_id<C: ConnectionTrait>(conn: &C) -> Result<String, StatsError> {
    let backend = conn.get_database_backend();
    let row = conn
        .query_one_raw(statement(
            backend,
            "SELECT id FROM stats_summary ORDER BY created_at, id LIMIT 1",
            vec![],
        ))
        .await?;
    match row {
        Some(row) => Ok(row.try_get_by_index::<String>(0)?),
        None => Ok(tollgate_entities::stats_summary::SINGLETON_ID.to_owned()),
    }
}

/// The earliest `created_at` of entity `E` (`usage` unless told otherwise), if any row
/// exists: an index look-up.
pub(crate) async fn first_created<E, C>(
    conn: &C,
    created_at: E::Column,
) -> Result<Option<OffsetDateTime>, StatsError>
where
    E: sea_orm::EntityTrait,
    C: ConnectionTrait,
{
    use sea_orm::{QueryOrder, QuerySelect};

    Ok(E::find()
        .select_only()
        .column(created_at)
        .order_by_asc(created_at)
        .limit(1)
        .into_tuple::<OffsetDateTime>()
        .one(conn)
        .await?)
}

/// The earliest `usage.created_at`, if any row exists.
pub(crate) async fn first_usage<C: ConnectionTrait>(
    conn: &C,
) -> Result<Option<OffsetDateTime>, StatsError> {
    use tollgate_entities::usage;

    first_created::<usage::Entity, _>(conn, usage::Column::CreatedAt).await
}
