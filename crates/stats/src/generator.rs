//! Benchmark support (feature `generator`): a seeded generator of realistic `usage` and
//! `request_candidates` rows, and the original service's aggregation pattern as a baseline.
//!
//! The generator writes multi-row INSERTs with literal values in large batches, so it is
//! not bounded by bind-parameter limits; timestamps are rendered exactly as sqlx stores
//! them on SQLite (RFC 3339, UTC), which PostgreSQL also accepts.

use std::fmt::Write as _;

use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

use crate::sql::{bound, instant, statement};
use crate::{BusinessDay, StatsError};

/// What to generate.
#[derive(Clone, Debug)]
pub struct GeneratorConfig {
    /// The days to fill; each gets `rows_per_day` usage rows spread over `[start, end)`.
    pub days: Vec<BusinessDay>,
    /// Usage rows per day.
    pub rows_per_day: u64,
    /// Users (created when missing; ids depend only on the index, so runs share them).
    pub users: u32,
    /// Distinct global models.
    pub models: u32,
    /// Distinct providers.
    pub providers: u32,
    /// Seed of the pseudo-random sequence: the same seed gives the same rows.
    pub seed: u64,
    /// Rows per INSERT statement.
    pub batch_rows: usize,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            days: Vec::new(),
            rows_per_day: 1_000,
            users: 100,
            models: 10,
            providers: 4,
            seed: 1,
            batch_rows: 2_000,
        }
    }
}

/// How many rows a run inserted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GeneratedCounts {
    /// Users inserted (existing ones are kept).
    pub users: u64,
    /// `usage` rows.
    pub usage: u64,
    /// `request_candidates` rows.
    pub candidates: u64,
}

/// SplitMix64: small, fast and good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Uniform in `0.0..1.0`.
    fn unit(&mut self) -> f64 {
        #[expect(
            clippy::cast_precision_loss,
            reason = "53 random bits map exactly onto an f64 mantissa"
        )]
        let unit = (self.next() >> 11) as f64 / (1_u64 << 53) as f64;
        unit
    }

    fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-7{:03x}-8{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            b >> 52,
            b & 0xffff_ffff_ffff
        )
    }
}

/// The id of generated user `index`.
fn user_id(index: u64) -> String {
    format!("00000000-0000-4000-8000-{index:012x}")
}

/// The id of generated user `index`'s client key.
fn key_id(index: u64) -> String {
    format!("00000000-0000-4000-9000-{index:012x}")
}

const USERS_INSERT: &str = "INSERT INTO users (id, email, username, role, is_active, quota_usd, \
    used_usd, total_usd, created_at, updated_at) VALUES ";

const KEYS_INSERT: &str = "INSERT INTO api_keys (id, user_id, key_hash, name, is_active, \
    expires_at, total_requests, total_cost_usd, last_used_at, created_at, updated_at) VALUES ";

/// Inserts `rows` (rendered value tuples) after `header` in statements of `batch` rows,
/// skipping rows that exist; returns how many were inserted.
async fn insert_values(
    db: &DatabaseConnection,
    header: &str,
    rows: impl Iterator<Item = String>,
    batch: usize,
) -> Result<u64, StatsError> {
    let mut inserted = 0;
    let mut rows = rows.peekable();
    while rows.peek().is_some() {
        let values: Vec<String> = rows.by_ref().take(batch).collect();
        let sql = format!("{header}{} ON CONFLICT DO NOTHING", values.join(","));
        inserted += db.execute_unprepared(&sql).await?.rows_affected();
    }
    Ok(inserted)
}

fn timestamp(instant: OffsetDateTime) -> Result<String, StatsError> {
    instant
        .to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .map_err(|error| StatsError::DateOutOfRange {
            detail: error.to_string(),
        })
}

/// Fills the database with users and, for every configured day, usage rows and their
/// routing candidates: every usage status, 4xx and 5xx codes, error messages on 200 rows,
/// null response times, fallbacks across providers, retries on the same key, skipped
/// candidates, rows without a user and rows without a global model.
pub async fn generate(
    db: &DatabaseConnection,
    config: &GeneratorConfig,
) -> Result<GeneratedCounts, StatsError> {
    let mut counts = GeneratedCounts::default();
    let mut rng = Rng(config.seed);
    let now = timestamp(tollgate_entities::now_utc())?;
    let batch = config.batch_rows.max(1);

    let users = u64::from(config.users.max(1));
    // One user in twenty is inactive: their traffic must still be counted.
    let user_rows = (0..users).map(|index| {
        let active = if index % 20 == 19 { "FALSE" } else { "TRUE" };
        format!(
            "('{id}', 'gen{index}@example.test', 'gen{index}', 'user', {active}, NULL, 0, 0, \
             '{now}', '{now}')",
            id = user_id(index)
        )
    });
    counts.users += insert_values(db, USERS_INSERT, user_rows, batch).await?;
    // One client key per user: the per-key rollups get as many groups as the per-user ones.
    let key_rows = (0..users).map(|index| {
        format!(
            "('{id}', '{user}', '{index:064x}', 'gen{index}', TRUE, NULL, 0, 0, NULL, '{now}', \
             '{now}')",
            id = key_id(index),
            user = user_id(index)
        )
    });
    insert_values(db, KEYS_INSERT, key_rows, batch).await?;

    // Batches are built in order (so a seed always gives the same rows) and inserted two
    // at a time on two connections: one PostgreSQL backend per core.
    let mut ready: Vec<(String, String, u64)> = Vec::with_capacity(2);
    for day in &config.days {
        let span = (day.end() - day.start()).whole_microseconds();
        let span = u64::try_from(span).unwrap_or(1).max(1);
        let mut index = 0;
        while index < config.rows_per_day {
            let rows = (config.rows_per_day - index).min(batch as u64);
            let mut usage_sql = String::from(USAGE_INSERT);
            let mut candidate_sql = String::from(CANDIDATE_INSERT);
            for row in 0..rows {
                if row > 0 {
                    usage_sql.push(',');
                }
                let offset = i64::try_from(rng.below(span)).unwrap_or(0);
                let created = day.start() + Duration::microseconds(offset);
                counts.candidates += push_request(
                    &mut rng,
                    config,
                    users,
                    created,
                    &mut usage_sql,
                    &mut candidate_sql,
                )?;
            }
            index += rows;
            ready.push((usage_sql, candidate_sql, rows));
            if ready.len() == 2 {
                counts.usage += insert_batches(db, std::mem::take(&mut ready)).await?;
            }
        }
        tracing::info!(day = %day, rows = config.rows_per_day, "generated usage for day");
    }
    counts.usage += insert_batches(db, ready).await?;
    Ok(counts)
}

/// Inserts each batch (usage rows, then their candidates) in its own transaction, all
/// batches concurrently; returns the usage rows inserted.
async fn insert_batches(
    db: &DatabaseConnection,
    batches: Vec<(String, String, u64)>,
) -> Result<u64, StatsError> {
    let inserts = batches
        .into_iter()
        .map(|(usage, candidates, rows)| async move {
            let txn = db.begin().await?;
            txn.execute_unprepared(&usage).await?;
            txn.execute_unprepared(&candidates).await?;
            txn.commit().await?;
            Ok::<u64, StatsError>(rows)
        });
    let inserted = futures_util::future::try_join_all(inserts).await?;
    Ok(inserted.into_iter().sum())
}

const USAGE_INSERT: &str = "INSERT INTO usage (id, user_id, api_key_id, request_id, provider, \
    model, global_model, target_model, input_tokens, output_tokens, total_tokens, \
    cache_creation_input_tokens, cache_read_input_tokens, input_cost_usd, output_cost_usd, \
    cache_creation_cost_usd, cache_read_cost_usd, cache_cost_usd, request_cost_usd, \
    total_cost_usd, actual_input_cost_usd, actual_output_cost_usd, \
    actual_cache_creation_cost_usd, actual_cache_read_cost_usd, actual_request_cost_usd, \
    actual_total_cost_usd, rate_multiplier, input_price_per_1m, output_price_per_1m, \
    cache_creation_price_per_1m, cache_read_price_per_1m, request_type, api_format, is_stream, \
    status_code, error_message, response_time_ms, first_byte_time_ms, status, created_at) VALUES ";

const CANDIDATE_INSERT: &str = "INSERT INTO request_candidates (id, request_id, user_id, \
    candidate_index, retry_index, provider_id, endpoint_id, key_id, status, skip_reason, \
    is_cached, status_code, error_type, error_message, latency_ms, created_at, started_at, \
    finished_at) VALUES ";

/// Appends one usage row (and its candidates) to the two statements; returns how many
/// candidate rows it added.
fn push_request(
    rng: &mut Rng,
    config: &GeneratorConfig,
    users: u64,
    created: OffsetDateTime,
    usage_sql: &mut String,
    candidate_sql: &mut String,
) -> Result<u64, StatsError> {
    let request_id = rng.uuid();
    // About 1 % of rows lost their user (deleted: the foreign key sets it null).
    let owner = if rng.below(100) == 0 {
        None
    } else {
        Some(rng.below(users))
    };
    let user = owner.map(user_id);
    let key = owner.map(key_id);
    // Skewed model popularity: the square of a uniform draw favours low indices.
    let models = f64::from(config.models.max(1));
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "the product is in 0..models"
    )]
    let model_index = (rng.unit() * rng.unit() * models) as u32;
    let provider_index =
        (model_index + u32::try_from(rng.below(2)).unwrap_or(0)) % config.providers.max(1);
    let provider = format!("provider-{provider_index}");
    let (model, global) = match rng.below(10) {
        0 => (format!("unmapped-{model_index}"), None),
        1 => (
            format!("alias-{model_index}"),
            Some(format!("global-{model_index}")),
        ),
        _ => (
            format!("global-{model_index}"),
            Some(format!("global-{model_index}")),
        ),
    };

    // Status mix: completed, 5xx, 4xx, 200 with an error message, pending, streaming.
    let roll = rng.below(100);
    let (status, code, message, timed): (&str, Option<i32>, Option<&str>, bool) = match roll {
        0..=88 => ("completed", Some(200), None, true),
        89..=92 => (
            "failed",
            Some([500, 502, 503][usize::try_from(rng.below(3)).unwrap_or(0)]),
            Some("upstream error"),
            true,
        ),
        93..=95 => (
            "failed",
            Some([400, 401, 429][usize::try_from(rng.below(3)).unwrap_or(0)]),
            Some("client error"),
            true,
        ),
        96 => ("completed", Some(200), Some("stream interrupted"), true),
        97 => ("failed", None, Some("connect timeout"), false),
        98 => ("pending", None, None, false),
        _ => ("streaming", Some(200), None, false),
    };
    let succeeded = status == "completed" || status == "streaming";
    let input = if succeeded { 100 + rng.below(4_000) } else { 0 };
    let output = if succeeded { 10 + rng.below(1_000) } else { 0 };
    let cache_creation = if succeeded && rng.below(10) == 0 {
        rng.below(2_000)
    } else {
        0
    };
    let cache_read = if succeeded && rng.below(4) == 0 {
        rng.below(8_000)
    } else {
        0
    };
    let input_price = 1.0 + f64::from(model_index % 7);
    let output_price = input_price * 4.0;
    let cc_price = input_price * 1.25;
    let cr_price = input_price * 0.1;
    #[expect(
        clippy::cast_precision_loss,
        reason = "token counts are far below 2^53"
    )]
    let costs = [
        input as f64 / 1e6 * input_price,
        output as f64 / 1e6 * output_price,
        cache_creation as f64 / 1e6 * cc_price,
        cache_read as f64 / 1e6 * cr_price,
    ];
    let rate = if provider_index % 3 == 2 { 0.8 } else { 1.0 };
    let cache_cost = costs[2] + costs[3];
    let total = costs[0] + costs[1] + cache_cost;
    let response = if timed {
        (200 + rng.below(20_000)).to_string()
    } else {
        "NULL".to_owned()
    };
    let first_byte = if timed {
        (50 + rng.below(2_000)).to_string()
    } else {
        "NULL".to_owned()
    };
    let quote = |value: Option<&str>| value.map_or_else(|| "NULL".to_owned(), |v| format!("'{v}'"));
    let user_sql = quote(user.as_deref());
    let key_sql = quote(key.as_deref());
    let code_sql = code.map_or_else(|| "NULL".to_owned(), |c| c.to_string());
    let stream = if rng.below(2) == 0 { "TRUE" } else { "FALSE" };
    let created_sql = timestamp(created)?;
    let _ = write!(
        usage_sql,
        "('{id}', {user_sql}, {key_sql}, '{request_id}', '{provider}', '{model}', {global}, '{model}', \
         {input}, {output}, {total_tokens}, {cache_creation}, {cache_read}, \
         {c0}, {c1}, {c2}, {c3}, {cache_cost}, 0, {total}, \
         {a0}, {a1}, {a2}, {a3}, 0, {atotal}, {rate}, {input_price}, {output_price}, {cc_price}, \
         {cr_price}, 'chat', 'OPENAI', {stream}, {code_sql}, {message}, {response}, {first_byte}, \
         '{status}', '{created_sql}')",
        id = rng.uuid(),
        global = quote(global.as_deref()),
        total_tokens = input + output,
        c0 = costs[0],
        c1 = costs[1],
        c2 = costs[2],
        c3 = costs[3],
        a0 = costs[0] * rate,
        a1 = costs[1] * rate,
        a2 = costs[2] * rate,
        a3 = costs[3] * rate,
        atotal = total * rate,
        message = quote(message),
    );

    // Candidates: mostly one attempt; some fall back to a second provider, some retry the
    // same key, some skip the first candidate; pending requests have a pending attempt.
    let final_status = match status {
        "pending" => "pending",
        "streaming" => "streaming",
        "completed" => "success",
        _ => "failed",
    };
    let attempts: Vec<(i32, i32, &str, Option<&str>)> = match rng.below(100) {
        0..=74 => vec![(0, 0, final_status, None)],
        75..=84 => vec![(0, 0, "failed", None), (1, 0, final_status, None)],
        85..=89 => vec![(0, 0, "failed", None), (0, 1, final_status, None)],
        _ => vec![
            (0, 0, "skipped", Some("circuit_open")),
            (1, 0, final_status, None),
        ],
    };
    let mut added = 0;
    for (position, (candidate, retry, state, skip)) in attempts.iter().enumerate() {
        if !candidate_sql.ends_with("VALUES ") {
            candidate_sql.push(',');
        }
        let at = created + Duration::milliseconds(i64::try_from(position).unwrap_or(0) * 150);
        let at_sql = timestamp(at)?;
        let (started, finished) = if *state == "skipped" {
            ("NULL".to_owned(), "NULL".to_owned())
        } else {
            (
                format!("'{at_sql}'"),
                format!("'{}'", timestamp(at + Duration::milliseconds(120))?),
            )
        };
        let (code, error_type) = match *state {
            "failed" => ("503", "'upstream_error'"),
            "success" | "streaming" => ("200", "NULL"),
            _ => ("NULL", "NULL"),
        };
        let _ = write!(
            candidate_sql,
            "('{id}', '{request_id}', {user_sql}, {candidate}, {retry}, NULL, NULL, NULL, \
             '{state}', {skip}, FALSE, {code}, {error_type}, NULL, 120, '{at_sql}', {started}, \
             {finished})",
            id = rng.uuid(),
            skip = quote(*skip),
        );
        added += 1;
    }
    Ok(added)
}

/// The original service's nightly pattern, for comparison only: six separate scans of the
/// day, one upsert and commit, then for every active user three queries (sums, errors,
/// existing row) and a commit. Returns the number of users visited.
pub async fn baseline_aggregate_day(
    db: &DatabaseConnection,
    day: &BusinessDay,
) -> Result<u64, StatsError> {
    let backend = db.get_database_backend();
    let start = bound(backend, day.start())?;
    let end = bound(backend, day.end())?;
    let range = || vec![start.clone(), end.clone()];
    let scans = [
        "SELECT COUNT(*) FROM usage WHERE created_at >= $1 AND created_at < $2",
        "SELECT COUNT(*) FROM usage WHERE created_at >= $1 AND created_at < $2 \
         AND (status_code >= 400 OR error_message IS NOT NULL)",
        "SELECT SUM(input_tokens), SUM(output_tokens), SUM(cache_creation_input_tokens), \
         SUM(cache_read_input_tokens), SUM(total_cost_usd), SUM(actual_total_cost_usd), \
         SUM(input_cost_usd), SUM(output_cost_usd), SUM(cache_creation_cost_usd), \
         SUM(cache_read_cost_usd), AVG(response_time_ms) \
         FROM usage WHERE created_at >= $1 AND created_at < $2",
        "SELECT COUNT(*) FROM (SELECT request_id FROM request_candidates \
         WHERE created_at >= $1 AND created_at < $2 AND status IN ('success', 'failed') \
         GROUP BY request_id HAVING COUNT(*) > 1) AS executed",
        "SELECT COUNT(DISTINCT model) FROM usage WHERE created_at >= $1 AND created_at < $2",
        "SELECT COUNT(DISTINCT provider) FROM usage WHERE created_at >= $1 AND created_at < $2",
    ];
    for scan in scans {
        db.query_one_raw(statement(backend, scan, range())).await?;
    }
    // The day row itself is the aggregator's business; the baseline only pays for a commit.
    let txn = db.begin().await?;
    txn.commit().await?;

    let users = db
        .query_all_raw(statement(
            backend,
            "SELECT id FROM users WHERE is_active = $1",
            vec![Value::from(true)],
        ))
        .await?;
    let now = tollgate_entities::now_utc();
    let mut visited = 0;
    for user in users {
        let id: String = user.try_get_by_index(0)?;
        let mut values = range();
        values.push(Value::from(id.clone()));
        let txn = db.begin().await?;
        let sums = txn
            .query_one_raw(statement(
                backend,
                "SELECT COUNT(*), SUM(input_tokens), SUM(output_tokens), \
                 SUM(cache_creation_input_tokens), SUM(cache_read_input_tokens), \
                 SUM(total_cost_usd) FROM usage \
                 WHERE created_at >= $1 AND created_at < $2 AND user_id = $3",
                values.clone(),
            ))
            .await?;
        txn.query_one_raw(statement(
            backend,
            "SELECT COUNT(*) FROM usage WHERE created_at >= $1 AND created_at < $2 \
             AND user_id = $3 AND (status_code >= 400 OR error_message IS NOT NULL)",
            values,
        ))
        .await?;
        txn.query_one_raw(statement(
            backend,
            "SELECT id FROM stats_user_daily WHERE user_id = $1 AND date = $2",
            vec![Value::from(id.clone()), instant(day.start())],
        ))
        .await?;
        let requests = match sums {
            Some(row) => row.try_get_by_index::<i64>(0)?,
            None => 0,
        };
        if requests > 0 {
            txn.execute_raw(statement(
                backend,
                "UPDATE stats_user_daily SET updated_at = $1 WHERE user_id = $2 AND date = $3",
                vec![instant(now), Value::from(id), instant(day.start())],
            ))
            .await?;
        }
        txn.commit().await?;
        visited += 1;
    }
    Ok(visited)
}
