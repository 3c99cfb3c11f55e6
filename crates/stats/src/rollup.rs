//! The set-based passes that compute any run of consecutive time buckets (hours of a day,
//! a whole day, the live part of today) from `usage` and `request_candidates`: one grouped
//! pass per dimension, bucketed in SQL by a binary `CASE` over the bucket starts and over
//! the response-time histogram bounds, so the database returns groups, never raw rows.
//! All of them are plain SELECTs, which PostgreSQL may run with parallel workers.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Value};
use time::OffsetDateTime;

pub(crate) use crate::acc::Acc;
use crate::sql::{ERROR_CASE, bound, get_i64, statement, sum_float, sum_int};
use crate::{BOUNDS_MS, DayStats, StatsError};

/// 1 for a successful row priced at nothing: no token price and no per-request price.
const UNPRICED_CASE: &str = "CASE WHEN status_code >= 400 OR error_message IS NOT NULL THEN 0 \
     WHEN COALESCE(input_price_per_1m, 0) = 0 AND COALESCE(output_price_per_1m, 0) = 0 \
     AND COALESCE(price_per_request, 0) = 0 THEN 1 ELSE 0 END";

/// A binary decision tree of `CASE`s giving, for a value, how many of `bounds` (sorted) it
/// passes: `passes(lo)` renders "the value is past bound `lo`". `lo..=hi` is the range of
/// possible answers.
fn case_tree(lo: usize, hi: usize, passes: &dyn Fn(usize) -> String) -> String {
    if lo == hi {
        return lo.to_string();
    }
    let mid = (lo + hi) / 2;
    format!(
        "CASE WHEN {} THEN {} ELSE {} END",
        passes(mid),
        case_tree(mid + 1, hi, passes),
        case_tree(lo, mid, passes)
    )
}

/// The histogram bucket of `response_time_ms` (as [`crate::bucket_of`]), -1 when null.
///
/// PostgreSQL's `width_bucket` over the bounds counts the bounds `<= ms - 1`, which for
/// whole milliseconds is the count of bounds `< ms`; SQLite gets a binary tree of `CASE`s.
fn rt_bucket_expr(backend: DbBackend) -> String {
    let bucket = match backend {
        DbBackend::Postgres => {
            let bounds: Vec<String> = BOUNDS_MS.iter().map(u32::to_string).collect();
            format!(
                "width_bucket(response_time_ms - 1, ARRAY[{}])",
                bounds.join(",")
            )
        }
        _ => case_tree(0, BOUNDS_MS.len(), &|index| {
            format!("response_time_ms > {}", BOUNDS_MS[index])
        }),
    };
    format!("CAST(CASE WHEN response_time_ms IS NULL THEN -1 ELSE {bucket} END AS BIGINT)")
}

/// A run of consecutive time buckets `[starts[0], end)`, ready to bind.
pub(crate) struct Buckets {
    /// Each bucket's start, in order.
    starts: Vec<OffsetDateTime>,
    values: Vec<Value>,
    /// The bucket index of `created_at`, with `$3…` placeholders for the inner starts.
    expr: String,
}

impl Buckets {
    /// Buckets `[starts[i], starts[i + 1])`, the last one ending at `end`.
    pub(crate) fn new(
        backend: DbBackend,
        starts: Vec<OffsetDateTime>,
        end: OffsetDateTime,
    ) -> Result<Self, StatsError> {
        let first = *starts.first().unwrap_or(&end);
        let mut values = vec![bound(backend, first)?, bound(backend, end)?];
        let inner = starts.len().saturating_sub(1);
        let hourly = starts
            .iter()
            .zip(0_i64..)
            .all(|(start, index)| *start == first + time::Duration::hours(index));
        let expr = if backend == DbBackend::Postgres && hourly && inner > 0 {
            // One-hour steps from the first start (every zone but Lord Howe Island's):
            // arithmetic instead of comparisons, and no bound value per bucket (the
            // statement text, which the driver caches, then fits any bucket count).
            // `date_part` is double precision (exact for these spans); `EXTRACT` would be
            // numeric, whose division costs about as much as the scan.
            "CAST(FLOOR(date_part('epoch', created_at - $1) / 3600) AS BIGINT)".to_owned()
        } else {
            for start in starts.iter().skip(1) {
                values.push(bound(backend, *start)?);
            }
            // Placeholder `$3 + k` is the start of bucket k + 1.
            let tree = case_tree(0, inner, &|index| format!("created_at >= ${}", index + 3));
            format!("CAST({tree} AS BIGINT)")
        };
        Ok(Self {
            starts,
            values,
            expr,
        })
    }

    /// Runs a pass's `sql` (first column: the bucket index) with these buckets' bounds and
    /// then `extra` values bound, each group with its bucket's start.
    async fn groups<C: ConnectionTrait>(
        &self,
        conn: &C,
        sql: &str,
        extra: Vec<Value>,
    ) -> Result<Vec<(OffsetDateTime, QueryResult)>, StatsError> {
        let mut values = self.values.clone();
        values.extend(extra);
        let rows = conn
            .query_all_raw(statement(conn.get_database_backend(), sql, values))
            .await?;
        rows.into_iter()
            .map(|row| Ok((self.start(&row)?, row)))
            .collect()
    }

    /// The start of bucket `index` as read back from a group.
    fn start(&self, row: &QueryResult) -> Result<OffsetDateTime, StatsError> {
        let index = usize::try_from(get_i64(row, 0)?).unwrap_or(usize::MAX);
        self.starts
            .get(index)
            .copied()
            .ok_or(StatsError::DateOutOfRange {
                detail: format!("bucket index {index} out of range"),
            })
    }
}

/// The sums every pass selects per group, in [`Acc::read`]'s order, with `costs` of the
/// six cost columns.
fn sums(costs: usize) -> String {
    let cost_columns = [
        "total_cost_usd",
        "actual_total_cost_usd",
        "input_cost_usd",
        "output_cost_usd",
        "cache_creation_cost_usd",
        "cache_read_cost_usd",
    ];
    let mut columns = vec![
        "COUNT(*)".to_owned(),
        sum_int(ERROR_CASE),
        sum_int("input_tokens"),
        sum_int("output_tokens"),
        sum_int("cache_creation_input_tokens"),
        sum_int("cache_read_input_tokens"),
    ];
    columns.extend(
        cost_columns
            .iter()
            .take(costs)
            .map(|column| sum_float(column)),
    );
    columns.push(sum_int("response_time_ms"));
    columns.push("COUNT(response_time_ms)".to_owned());
    columns.push(sum_int(UNPRICED_CASE));
    columns.join(", ")
}

/// Everything one bucket's rows add up to.
#[derive(Clone, Debug, Default)]
pub(crate) struct BucketParts {
    pub(crate) total: Acc,
    /// By `COALESCE(global_model, model)`.
    pub(crate) models: BTreeMap<String, Acc>,
    pub(crate) providers: BTreeMap<String, Acc>,
    /// By user or client key, when that pass ran (by user for [`Dimension::UserAndKey`]).
    pub(crate) dimension: BTreeMap<String, Acc>,
    /// By client key, for [`Dimension::UserAndKey`].
    pub(crate) keys: BTreeMap<String, Acc>,
    /// Distinct `usage.model` and `usage.provider`.
    pub(crate) model_names: BTreeSet<String>,
    pub(crate) provider_names: BTreeSet<String>,
    pub(crate) fallback_count: i64,
}

impl BucketParts {
    /// The `stats_daily` / `stats_hourly` numbers of these parts.
    pub(crate) fn stats(&self) -> DayStats {
        DayStats {
            fallback_count: self.fallback_count,
            unique_models: i64::try_from(self.model_names.len()).unwrap_or(i64::MAX),
            unique_providers: i64::try_from(self.provider_names.len()).unwrap_or(i64::MAX),
            ..self.total.day_stats()
        }
    }

    /// Adds `other` (the distinct sets are united; fallbacks are the caller's).
    pub(crate) fn merge(&mut self, other: &Self) {
        self.total.merge(&other.total);
        for (target, source) in [
            (&mut self.models, &other.models),
            (&mut self.providers, &other.providers),
            (&mut self.dimension, &other.dimension),
            (&mut self.keys, &other.keys),
        ] {
            for (key, acc) in source {
                target.entry(key.clone()).or_default().merge(acc);
            }
        }
        self.model_names.extend(other.model_names.iter().cloned());
        self.provider_names
            .extend(other.provider_names.iter().cloned());
    }
}

/// Which grouped-by-dimension pass to run besides the model/provider pass.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Dimension<'a> {
    /// None.
    Skip,
    /// `usage.user_id`, every user or one.
    User(Option<&'a str>),
    /// `usage.api_key_id`, every key or one.
    ApiKey(Option<&'a str>),
    /// Every user and every client key, in one pass grouped by both (a key belongs to one
    /// user, so there are about as many groups as keys).
    UserAndKey,
}

/// Which passes [`compute`] runs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Passes<'a> {
    /// The bucket rows, per model and per provider, and the distinct counts.
    pub(crate) models: bool,
    /// Only the distinct `usage.model` and `usage.provider` names (implied by `models`).
    pub(crate) names: bool,
    /// A grouped-by-dimension pass.
    pub(crate) dimension: Dimension<'a>,
    /// The fallback count per bucket.
    pub(crate) fallbacks: bool,
}

/// Computes each bucket of `buckets`, keyed by its start; buckets without rows are absent.
pub(crate) async fn compute<C: ConnectionTrait>(
    conn: &C,
    buckets: &Buckets,
    passes: Passes<'_>,
) -> Result<BTreeMap<OffsetDateTime, BucketParts>, StatsError> {
    let mut parts: BTreeMap<OffsetDateTime, BucketParts> = BTreeMap::new();
    if passes.models {
        model_pass(conn, buckets, &mut parts).await?;
    } else if passes.names {
        names_pass(conn, buckets, &mut parts).await?;
    }
    match passes.dimension {
        Dimension::Skip => {}
        Dimension::User(only) | Dimension::ApiKey(only) => {
            let column = match passes.dimension {
                Dimension::User(_) => "user_id",
                _ => "api_key_id",
            };
            let filter = only.map_or(Filter::NotNull, |value| Filter::Equals { column, value });
            dimension_pass(conn, buckets, &[column], filter, &mut parts).await?;
        }
        Dimension::UserAndKey => {
            let columns = ["user_id", "api_key_id"];
            dimension_pass(conn, buckets, &columns, Filter::NotNull, &mut parts).await?;
        }
    }
    if passes.fallbacks {
        fallback_pass(conn, buckets, &mut parts).await?;
    }
    Ok(parts)
}

/// Grouped by bucket, `(global_model, model, provider)` and response-time bucket: few
/// groups, enough for the bucket row, the per-model and per-provider rows and the distinct
/// counts without a `COUNT(DISTINCT)`.
async fn model_pass<C: ConnectionTrait>(
    conn: &C,
    buckets: &Buckets,
    parts: &mut BTreeMap<OffsetDateTime, BucketParts>,
) -> Result<(), StatsError> {
    let backend = conn.get_database_backend();
    let sql = format!(
        "SELECT {hb}, global_model, model, provider, {rb}, {sums} \
         FROM usage WHERE created_at >= $1 AND created_at < $2 \
         GROUP BY 1, 2, 3, 4, 5",
        hb = buckets.expr,
        rb = rt_bucket_expr(backend),
        sums = sums(6),
    );
    for (start, row) in &buckets.groups(conn, &sql, Vec::new()).await? {
        let part = parts.entry(*start).or_default();
        let global: Option<String> = row.try_get_by_index(1)?;
        let model: String = row.try_get_by_index(2)?;
        let provider: String = row.try_get_by_index(3)?;
        let rt_bucket = get_i64(row, 4)?;
        let mut acc = Acc::read(row, 5, 6)?;
        if let Ok(bucket) = usize::try_from(rt_bucket) {
            acc.histogram
                .add(bucket, u64::try_from(acc.rt_count).unwrap_or(0));
        }
        part.total.merge(&acc);
        let key = global.unwrap_or_else(|| model.clone());
        // Like Aether, no per-model row for an empty model name (only an Aether database
        // has such rows: the gateway refuses empty names); the totals count them.
        if !key.is_empty() {
            part.models.entry(key).or_default().merge(&acc);
        }
        part.providers
            .entry(provider.clone())
            .or_default()
            .merge(&acc);
        part.model_names.insert(model);
        part.provider_names.insert(provider);
    }
    Ok(())
}

/// The distinct `usage.model` and `usage.provider` names of each bucket, grouped by plain
/// columns only (a hash aggregate over few groups).
async fn names_pass<C: ConnectionTrait>(
    conn: &C,
    buckets: &Buckets,
    parts: &mut BTreeMap<OffsetDateTime, BucketParts>,
) -> Result<(), StatsError> {
    let sql = format!(
        "SELECT {hb}, model, provider FROM usage WHERE created_at >= $1 AND created_at < $2 \
         GROUP BY 1, 2, 3",
        hb = buckets.expr,
    );
    for (start, row) in &buckets.groups(conn, &sql, Vec::new()).await? {
        let part = parts.entry(*start).or_default();
        part.model_names.insert(row.try_get_by_index(1)?);
        part.provider_names.insert(row.try_get_by_index(2)?);
    }
    Ok(())
}

/// Which rows a dimension pass reads.
#[derive(Clone, Copy)]
enum Filter<'a> {
    /// Rows where some grouping column is not null.
    NotNull,
    /// Rows whose `column` has `value`.
    Equals { column: &'a str, value: &'a str },
}

/// Grouped by bucket and `columns` (user, client key, or both), one row per group: the
/// response-time buckets are grouped inside the database and come back as one
/// `bucket:count,…` text. With two columns, each group is added to its user (`dimension`)
/// and to its key (`keys`), in a fixed order so float sums do not depend on the plan.
async fn dimension_pass<C: ConnectionTrait>(
    conn: &C,
    buckets: &Buckets,
    columns: &[&str],
    filter: Filter<'_>,
    parts: &mut BTreeMap<OffsetDateTime, BucketParts>,
) -> Result<(), StatsError> {
    let backend = conn.get_database_backend();
    let mut extra = Vec::new();
    let filter = match filter {
        Filter::Equals { column, value } => {
            extra.push(Value::from(value.to_owned()));
            format!("{column} = ${}", buckets.values.len() + 1)
        }
        Filter::NotNull => columns
            .iter()
            .map(|column| format!("{column} IS NOT NULL"))
            .collect::<Vec<_>>()
            .join(" OR "),
    };
    let concat = match backend {
        DbBackend::Postgres => "string_agg",
        _ => "group_concat",
    };
    let dims: Vec<String> = (0..columns.len())
        .map(|index| format!("d{index}"))
        .collect();
    let selected = columns
        .iter()
        .zip(&dims)
        .map(|(column, dim)| format!("{column} AS {dim}"))
        .collect::<Vec<_>>()
        .join(", ");
    let inner_group = (1..=columns.len() + 2)
        .map(|index| index.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT hb, {dims}, {outer}, \
         {concat}(CASE WHEN rtn > 0 THEN CAST(rb AS TEXT) || ':' || CAST(rtn AS TEXT) END, ',') \
         FROM (SELECT {hb} AS hb, {selected}, {rb} AS rb, {inner} \
         FROM usage WHERE created_at >= $1 AND created_at < $2 AND ({filter}) \
         GROUP BY {inner_group}) AS grouped GROUP BY hb, {dims} ORDER BY hb, {dims}",
        dims = dims.join(", "),
        hb = buckets.expr,
        rb = rt_bucket_expr(backend),
        inner = "COUNT(*) AS n, ".to_owned()
            + &format!("{} AS e, ", sum_int(ERROR_CASE))
            + &format!("{} AS t0, ", sum_int("input_tokens"))
            + &format!("{} AS t1, ", sum_int("output_tokens"))
            + &format!("{} AS t2, ", sum_int("cache_creation_input_tokens"))
            + &format!("{} AS t3, ", sum_int("cache_read_input_tokens"))
            + &format!("{} AS c0, ", sum_float("total_cost_usd"))
            + &format!("{} AS c1, ", sum_float("actual_total_cost_usd"))
            + &format!("{} AS rts, ", sum_int("response_time_ms"))
            + "COUNT(response_time_ms) AS rtn, "
            + &format!("{} AS u", sum_int(UNPRICED_CASE)),
        outer = ["n", "e", "t0", "t1", "t2", "t3"]
            .iter()
            .map(|column| sum_int(column))
            .chain(["c0", "c1"].iter().map(|column| sum_float(column)))
            .chain(["rts", "rtn", "u"].iter().map(|column| sum_int(column)))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let first = 1 + columns.len();
    for (start, row) in &buckets.groups(conn, &sql, extra).await? {
        let part = parts.entry(*start).or_default();
        let mut acc = Acc::read(row, first, 2)?;
        let histogram: Option<String> = row.try_get_by_index(first + 11)?;
        for pair in histogram.as_deref().unwrap_or("").split(',') {
            if let Some((bucket, count)) = pair.split_once(':')
                && let (Ok(bucket), Ok(count)) = (bucket.parse::<usize>(), count.parse::<u64>())
            {
                acc.histogram.add(bucket, count);
            }
        }
        let first_key: Option<String> = row.try_get_by_index(1)?;
        if let Some(key) = first_key {
            part.dimension.entry(key).or_default().merge(&acc);
        }
        if columns.len() > 1 {
            let key: Option<String> = row.try_get_by_index(2)?;
            if let Some(key) = key {
                part.keys.entry(key).or_default().merge(&acc);
            }
        }
    }
    Ok(())
}

/// Per bucket: requests with more than one executed (`success` or `failed`) candidate row
/// created in the bucket.
///
/// `(request_id, candidate_index, retry_index)` is unique, so a request with two executed
/// rows has at least one executed row other than `(0, 0)`: only those requests (a small
/// share) are grouped, found with a semi-join instead of grouping every request.
async fn fallback_pass<C: ConnectionTrait>(
    conn: &C,
    buckets: &Buckets,
    parts: &mut BTreeMap<OffsetDateTime, BucketParts>,
) -> Result<(), StatsError> {
    let sql = format!(
        "SELECT hb, COUNT(*) FROM (SELECT {hb} AS hb, request_id FROM request_candidates \
         WHERE created_at >= $1 AND created_at < $2 AND status IN ('success', 'failed') \
         AND request_id IN (SELECT request_id FROM request_candidates \
         WHERE created_at >= $1 AND created_at < $2 AND status IN ('success', 'failed') \
         AND (candidate_index <> 0 OR retry_index <> 0)) \
         GROUP BY 1, 2 HAVING COUNT(*) > 1) AS executed GROUP BY hb",
        hb = buckets.expr,
    );
    for (start, row) in &buckets.groups(conn, &sql, Vec::new()).await? {
        parts.entry(*start).or_default().fallback_count = get_i64(row, 1)?;
    }
    Ok(())
}
