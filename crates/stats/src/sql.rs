//! The set-based read queries: one grouped pass over `usage` for the day and per-model
//! numbers, one for the per-user numbers, one over `request_candidates` for fallbacks, and
//! the small look-ups the summary needs. All of them are plain SELECTs, which PostgreSQL
//! may run with parallel workers (it never parallelises a writing statement).

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement, Value};
use time::{OffsetDateTime, UtcOffset};

use crate::{
    AccountCounts, BusinessDay, DayAggregate, DayStats, ModelStats, StatsError, Totals, UserStats,
};

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

const ERROR_CASE: &str =
    "CASE WHEN status_code >= 400 OR error_message IS NOT NULL THEN 1 ELSE 0 END";

fn sum_int(expr: &str) -> String {
    format!("CAST(COALESCE(SUM({expr}), 0) AS BIGINT)")
}

fn sum_float(expr: &str) -> String {
    format!("CAST(COALESCE(SUM({expr}), 0) AS DOUBLE PRECISION)")
}

/// `COUNT(*)`, the error count and the four token sums: the leading columns every usage
/// roll-up selects, in this order.
fn requests_and_tokens() -> String {
    [
        "COUNT(*)".to_owned(),
        sum_int(ERROR_CASE),
        sum_int("input_tokens"),
        sum_int("output_tokens"),
        sum_int("cache_creation_input_tokens"),
        sum_int("cache_read_input_tokens"),
    ]
    .join(", ")
}

fn get_i64(row: &QueryResult, index: usize) -> Result<i64, StatsError> {
    Ok(row.try_get_by_index::<i64>(index)?)
}

fn get_f64(row: &QueryResult, index: usize) -> Result<f64, StatsError> {
    Ok(row.try_get_by_index::<f64>(index)?)
}

fn mean(sum: i64, count: i64) -> f64 {
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

/// One group of the per-(bucket, model, provider) pass.
struct Group {
    bucket: String,
    model: String,
    provider: String,
    requests: i64,
    errors: i64,
    tokens: [i64; 4],
    costs: [f64; 6],
    rt_sum: i64,
    rt_count: i64,
}

/// Grouped by `(global_model, model, provider)`: few groups, and enough to derive the day
/// row (sums, distinct models and providers) and the per-model rows (bucket
/// `COALESCE(global_model, model)`) without a second scan or a `COUNT(DISTINCT)` (which
/// would keep PostgreSQL from parallelising). Plain columns, not the `COALESCE`
/// expression, let the planner estimate the group count from column statistics and pick a
/// parallel hash aggregate instead of a sort.
async fn model_groups<C: ConnectionTrait>(
    conn: &C,
    start: &Value,
    end: &Value,
) -> Result<Vec<Group>, StatsError> {
    let backend = conn.get_database_backend();
    let sql = format!(
        "SELECT global_model, model, provider, {counts}, \
         {c0}, {c1}, {c2}, {c3}, {c4}, {c5}, {rt}, COUNT(response_time_ms) \
         FROM usage WHERE created_at >= $1 AND created_at < $2 \
         GROUP BY global_model, model, provider",
        counts = requests_and_tokens(),
        c0 = sum_float("total_cost_usd"),
        c1 = sum_float("actual_total_cost_usd"),
        c2 = sum_float("input_cost_usd"),
        c3 = sum_float("output_cost_usd"),
        c4 = sum_float("cache_creation_cost_usd"),
        c5 = sum_float("cache_read_cost_usd"),
        rt = sum_int("response_time_ms"),
    );
    let rows = conn
        .query_all_raw(statement(backend, &sql, vec![start.clone(), end.clone()]))
        .await?;
    rows.iter()
        .map(|row| {
            let global: Option<String> = row.try_get_by_index(0)?;
            let model: String = row.try_get_by_index(1)?;
            Ok(Group {
                bucket: global.unwrap_or_else(|| model.clone()),
                model,
                provider: row.try_get_by_index(2)?,
                requests: get_i64(row, 3)?,
                errors: get_i64(row, 4)?,
                tokens: [
                    get_i64(row, 5)?,
                    get_i64(row, 6)?,
                    get_i64(row, 7)?,
                    get_i64(row, 8)?,
                ],
                costs: [
                    get_f64(row, 9)?,
                    get_f64(row, 10)?,
                    get_f64(row, 11)?,
                    get_f64(row, 12)?,
                    get_f64(row, 13)?,
                    get_f64(row, 14)?,
                ],
                rt_sum: get_i64(row, 15)?,
                rt_count: get_i64(row, 16)?,
            })
        })
        .collect()
}

/// Requests in the range with more than one executed (`success` or `failed`) candidate
/// row created in the range.
///
/// `(request_id, candidate_index, retry_index)` is unique, so a request with two executed
/// rows has at least one executed row other than `(0, 0)`: only those requests (a small
/// share of the day) are grouped, found with a semi-join instead of grouping every
/// request of the day.
async fn fallback_count<C: ConnectionTrait>(
    conn: &C,
    start: &Value,
    end: &Value,
) -> Result<i64, StatsError> {
    let backend = conn.get_database_backend();
    let row = conn
        .query_one_raw(statement(
            backend,
            "SELECT COUNT(*) FROM (SELECT request_id FROM request_candidates \
             WHERE created_at >= $1 AND created_at < $2 AND status IN ('success', 'failed') \
             AND request_id IN (SELECT request_id FROM request_candidates \
             WHERE created_at >= $1 AND created_at < $2 AND status IN ('success', 'failed') \
             AND (candidate_index <> 0 OR retry_index <> 0)) \
             GROUP BY request_id HAVING COUNT(*) > 1) AS executed",
            vec![start.clone(), end.clone()],
        ))
        .await?;
    row.map_or(Ok(0), |row| get_i64(&row, 0))
}

/// Per-user numbers for the range, every user with traffic in one grouped query; limited to
/// one user when `only_user` is given.
async fn user_groups<C: ConnectionTrait>(
    conn: &C,
    start: &Value,
    end: &Value,
    only_user: Option<&str>,
) -> Result<Vec<UserStats>, StatsError> {
    let backend = conn.get_database_backend();
    let mut values = vec![start.clone(), end.clone()];
    let filter = match only_user {
        Some(user_id) => {
            values.push(Value::from(user_id.to_owned()));
            "user_id = $3"
        }
        None => "user_id IS NOT NULL",
    };
    let sql = format!(
        "SELECT user_id, {counts}, {cost} \
         FROM usage WHERE created_at >= $1 AND created_at < $2 AND {filter} \
         GROUP BY user_id",
        counts = requests_and_tokens(),
        cost = sum_float("total_cost_usd"),
    );
    let rows = conn.query_all_raw(statement(backend, &sql, values)).await?;
    let mut users = rows
        .iter()
        .map(|row| {
            let total = get_i64(row, 1)?;
            let errors = get_i64(row, 2)?;
            Ok(UserStats {
                user_id: row.try_get_by_index(0)?,
                total_requests: total,
                success_requests: total - errors,
                error_requests: errors,
                input_tokens: get_i64(row, 3)?,
                output_tokens: get_i64(row, 4)?,
                cache_creation_tokens: get_i64(row, 5)?,
                cache_read_tokens: get_i64(row, 6)?,
                total_cost: get_f64(row, 7)?,
            })
        })
        .collect::<Result<Vec<_>, StatsError>>()?;
    users.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    Ok(users)
}

/// Which parts of a day to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Day, models and every user: what the aggregator stores.
    Full,
    /// Day and models only: what dashboards show.
    WithoutUsers,
}

/// Computes one business day from `usage` and `request_candidates`.
pub(crate) async fn compute_day<C: ConnectionTrait>(
    conn: &C,
    day: &BusinessDay,
    scope: Scope,
) -> Result<DayAggregate, StatsError> {
    let backend = conn.get_database_backend();
    let start = bound(backend, day.start())?;
    let end = bound(backend, day.end())?;
    let groups = model_groups(conn, &start, &end).await?;
    let fallback_count = fallback_count(conn, &start, &end).await?;
    let users = match scope {
        Scope::Full => user_groups(conn, &start, &end, None).await?,
        Scope::WithoutUsers => Vec::new(),
    };

    let mut stats = DayStats {
        fallback_count,
        ..DayStats::default()
    };
    let mut rt = (0_i64, 0_i64);
    let mut models_seen = BTreeSet::new();
    let mut providers_seen = BTreeSet::new();
    // Per bucket: the model row plus its response-time sum and count.
    let mut buckets: BTreeMap<String, (ModelStats, i64, i64)> = BTreeMap::new();
    for group in &groups {
        stats.total_requests += group.requests;
        stats.error_requests += group.errors;
        stats.input_tokens += group.tokens[0];
        stats.output_tokens += group.tokens[1];
        stats.cache_creation_tokens += group.tokens[2];
        stats.cache_read_tokens += group.tokens[3];
        stats.total_cost += group.costs[0];
        stats.actual_total_cost += group.costs[1];
        stats.input_cost += group.costs[2];
        stats.output_cost += group.costs[3];
        stats.cache_creation_cost += group.costs[4];
        stats.cache_read_cost += group.costs[5];
        rt.0 += group.rt_sum;
        rt.1 += group.rt_count;
        models_seen.insert(group.model.as_str());
        providers_seen.insert(group.provider.as_str());

        let entry = buckets.entry(group.bucket.clone()).or_insert_with(|| {
            (
                ModelStats {
                    model: group.bucket.clone(),
                    ..ModelStats::default()
                },
                0,
                0,
            )
        });
        entry.0.total_requests += group.requests;
        entry.0.input_tokens += group.tokens[0];
        entry.0.output_tokens += group.tokens[1];
        entry.0.cache_creation_tokens += group.tokens[2];
        entry.0.cache_read_tokens += group.tokens[3];
        entry.0.total_cost += group.costs[0];
        entry.1 += group.rt_sum;
        entry.2 += group.rt_count;
    }
    stats.success_requests = stats.total_requests - stats.error_requests;
    stats.avg_response_time_ms = mean(rt.0, rt.1);
    stats.unique_models = i64::try_from(models_seen.len()).unwrap_or(i64::MAX);
    stats.unique_providers = i64::try_from(providers_seen.len()).unwrap_or(i64::MAX);
    let models = buckets
        .into_values()
        .map(|(mut model, sum, count)| {
            model.avg_response_time_ms = mean(sum, count);
            model
        })
        .collect();
    Ok(DayAggregate {
        day: *day,
        stats,
        models,
        users,
    })
}

/// One user's numbers for one day, computed from `usage`.
pub(crate) async fn compute_user_day<C: ConnectionTrait>(
    conn: &C,
    day: &BusinessDay,
    user_id: &str,
) -> Result<UserStats, StatsError> {
    let backend = conn.get_database_backend();
    let start = bound(backend, day.start())?;
    let end = bound(backend, day.end())?;
    let found = user_groups(conn, &start, &end, Some(user_id)).await?;
    Ok(found.into_iter().next().unwrap_or_else(|| UserStats {
        user_id: user_id.to_owned(),
        ..UserStats::default()
    }))
}

/// Request, token and cost totals of `usage` rows in `[start, end)`, in one pass.
pub(crate) async fn range_totals<C: ConnectionTrait>(
    conn: &C,
    start: OffsetDateTime,
    end: OffsetDateTime,
) -> Result<Totals, StatsError> {
    let backend = conn.get_database_backend();
    let sql = format!(
        "SELECT {counts}, {c0}, {c1} \
         FROM usage WHERE created_at >= $1 AND created_at < $2",
        counts = requests_and_tokens(),
        c0 = sum_float("total_cost_usd"),
        c1 = sum_float("actual_total_cost_usd"),
    );
    let values = vec![bound(backend, start)?, bound(backend, end)?];
    let Some(row) = conn.query_one_raw(statement(backend, &sql, values)).await? else {
        return Ok(Totals::default());
    };
    let requests = get_i64(&row, 0)?;
    let errors = get_i64(&row, 1)?;
    Ok(Totals {
        requests,
        success_requests: requests - errors,
        error_requests: errors,
        input_tokens: get_i64(&row, 2)?,
        output_tokens: get_i64(&row, 3)?,
        cache_creation_tokens: get_i64(&row, 4)?,
        cache_read_tokens: get_i64(&row, 5)?,
        cost: get_f64(&row, 6)?,
        actual_cost: get_f64(&row, 7)?,
    })
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

/// The earliest `usage.created_at`, if any row exists (an index look-up).
pub(crate) async fn first_usage<C: ConnectionTrait>(
    conn: &C,
) -> Result<Option<OffsetDateTime>, StatsError> {
    use sea_orm::{EntityTrait, QueryOrder, QuerySelect};
    use tollgate_entities::usage;

    let first = usage::Entity::find()
        .select_only()
        .column(usage::Column::CreatedAt)
        .order_by_asc(usage::Column::CreatedAt)
        .limit(1)
        .into_tuple::<OffsetDateTime>()
        .one(conn)
        .await?;
    Ok(first)
}
