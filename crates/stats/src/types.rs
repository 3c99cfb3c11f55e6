//! The numbers the crate computes and returns: one day, one model, one user, all-time
//! totals, the combined view and the dashboard series.

use serde::Serialize;
use time::OffsetDateTime;
use tollgate_entities::{
    new_id, stats_daily, stats_daily_api_key, stats_daily_model, stats_daily_provider,
    stats_hourly, stats_hourly_api_key, stats_hourly_model, stats_hourly_provider,
    stats_hourly_user, stats_summary, stats_user_daily,
};

use crate::{BusinessDay, ResponseTimeHistogram, StatsError};

/// `YYYY-MM-DD` serde format for local business dates.
pub(crate) mod iso_date {
    time::serde::format_description!(pub(crate) format, Date, "[year]-[month]-[day]");
    pub(crate) use format::serialize;
}

/// Both directions between a statistics type and its table's row, from one list of the
/// columns, so that reading and writing cannot drift apart. `key` columns are strings
/// (`field = column`), `counts` are `integer` columns (`i32` in the row, `i64` here,
/// range-checked on the way in), `same` columns have one `Copy` type on both sides; every
/// table also has `unpriced_requests` and `response_time_histogram`, and the row's `id`, time
/// column (`date` or `hour`), `created_at` and `updated_at` are the writer's.
macro_rules! stored_as {
    ($stats:ident in $table:ident at $time:ident {
        key: $($key:ident = $column:ident),*;
        counts: $($count:ident),+;
        same: $($same:ident),+;
    }) => {
        impl From<&$table::Model> for $stats {
            fn from(row: &$table::Model) -> Self {
                let histogram = ResponseTimeHistogram::from_counts(
                    row.response_time_histogram.as_ref().map(|counts| counts.0.as_slice()),
                );
                Self {
                    $($key: row.$column.clone(),)*
                    $($count: row.$count.into(),)+
                    $($same: row.$same,)+
                    unpriced_requests: row.unpriced_requests.into(),
                    percentiles: Percentiles::of(&histogram),
                    response_time_histogram: histogram,
                }
            }
        }

        impl crate::types::StoredAs<$table::Model> for $stats {
            fn to_row(
                &self,
                $time: OffsetDateTime,
                now: OffsetDateTime,
            ) -> Result<$table::Model, StatsError> {
                Ok($table::Model {
                    id: new_id(),
                    $time,
                    $($column: self.$key.clone(),)*
                    $($count: to_i32(stringify!($count), self.$count)?,)+
                    $($same: self.$same,)+
                    unpriced_requests: to_i32("unpriced_requests", self.unpriced_requests)?,
                    response_time_histogram: self.response_time_histogram.stored(),
                    created_at: now,
                    updated_at: now,
                })
            }
        }
    };
}

/// A statistics type that is stored as rows of table `M`.
pub(crate) trait StoredAs<M> {
    /// The row of these numbers for the bucket starting at `time`, stamped `now`, with a
    /// new id.
    fn to_row(&self, time: OffsetDateTime, now: OffsetDateTime) -> Result<M, StatsError>;
}

/// p50, p90 and p99 of response times, read from a histogram: each is the upper bound of
/// the bucket holding the exact percentile (null without response times).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    /// Median, milliseconds.
    pub p50_ms: Option<u32>,
    /// 90th percentile, milliseconds.
    pub p90_ms: Option<u32>,
    /// 99th percentile, milliseconds.
    pub p99_ms: Option<u32>,
}

impl Percentiles {
    /// The percentiles of `histogram`.
    pub fn of(histogram: &ResponseTimeHistogram) -> Self {
        Self {
            p50_ms: histogram.quantile_ms(0.5),
            p90_ms: histogram.quantile_ms(0.9),
            p99_ms: histogram.quantile_ms(0.99),
        }
    }
}

/// `value` for an `integer` column, or the error naming the column.
pub(crate) fn to_i32(column: &'static str, value: i64) -> Result<i32, StatsError> {
    i32::try_from(value).map_err(|_| StatsError::ValueOutOfRange { column, value })
}

/// The statistics of one business day (the columns of `stats_daily`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DayStats {
    /// All usage rows.
    pub total_requests: i64,
    /// `total_requests - error_requests`.
    pub success_requests: i64,
    /// Rows with `status_code >= 400` or a non-null `error_message`.
    pub error_requests: i64,
    /// Sum of `input_tokens`.
    pub input_tokens: i64,
    /// Sum of `output_tokens`.
    pub output_tokens: i64,
    /// Sum of `cache_creation_input_tokens`.
    pub cache_creation_tokens: i64,
    /// Sum of `cache_read_input_tokens`.
    pub cache_read_tokens: i64,
    /// Sum of `total_cost_usd` (list price).
    pub total_cost: f64,
    /// Sum of `actual_total_cost_usd`.
    pub actual_total_cost: f64,
    /// Sum of `input_cost_usd`.
    pub input_cost: f64,
    /// Sum of `output_cost_usd`.
    pub output_cost: f64,
    /// Sum of `cache_creation_cost_usd`.
    pub cache_creation_cost: f64,
    /// Sum of `cache_read_cost_usd`.
    pub cache_read_cost: f64,
    /// Mean of non-null `response_time_ms`, 0 when there is none.
    pub avg_response_time_ms: f64,
    /// Requests with more than one executed (`success` or `failed`) candidate row.
    pub fallback_count: i64,
    /// Distinct `usage.model`.
    pub unique_models: i64,
    /// Distinct `usage.provider`.
    pub unique_providers: i64,
    /// Successful requests for which no price was found.
    pub unpriced_requests: i64,
    /// Counts of response times per bucket of [`BOUNDS_MS`](crate::BOUNDS_MS).
    pub response_time_histogram: ResponseTimeHistogram,
    /// p50/p90/p99 read from the histogram.
    pub percentiles: Percentiles,
}

/// `stats_daily` and `stats_hourly` both store [`DayStats`], by `date` and by `hour`.
macro_rules! totals_stored_as {
    ($($table:ident at $time:ident;)+) => {$(
        stored_as!(DayStats in $table at $time {
            key: ;
            counts: total_requests, success_requests, error_requests, fallback_count,
                unique_models, unique_providers;
            same: input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens,
                total_cost, actual_total_cost, input_cost, output_cost, cache_creation_cost,
                cache_read_cost, avg_response_time_ms;
        });
    )+};
}

totals_stored_as! {
    stats_hourly at hour;
    stats_daily at date;
}

/// One model's statistics for a day (the columns of `stats_daily_model`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ModelStats {
    /// `COALESCE(global_model, model)`.
    pub model: String,
    /// Rows of the model.
    pub total_requests: i64,
    /// Sum of `input_tokens`.
    pub input_tokens: i64,
    /// Sum of `output_tokens`.
    pub output_tokens: i64,
    /// Sum of `cache_creation_input_tokens`.
    pub cache_creation_tokens: i64,
    /// Sum of `cache_read_input_tokens`.
    pub cache_read_tokens: i64,
    /// Sum of `total_cost_usd`.
    pub total_cost: f64,
    /// Mean of non-null `response_time_ms`, 0 when there is none.
    pub avg_response_time_ms: f64,
    /// Successful requests for which no price was found.
    pub unpriced_requests: i64,
    /// Counts of response times per bucket of [`BOUNDS_MS`](crate::BOUNDS_MS).
    pub response_time_histogram: ResponseTimeHistogram,
    /// p50/p90/p99 read from the histogram.
    pub percentiles: Percentiles,
}

stored_as!(ModelStats in stats_daily_model at date {
    key: model = model;
    counts: total_requests;
    same: input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, total_cost,
        avg_response_time_ms;
});

/// One user's statistics for a day (the columns of `stats_user_daily`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UserStats {
    /// The user.
    pub user_id: String,
    /// All the user's rows.
    pub total_requests: i64,
    /// `total_requests - error_requests`.
    pub success_requests: i64,
    /// Rows with `status_code >= 400` or a non-null `error_message`.
    pub error_requests: i64,
    /// Sum of `input_tokens`.
    pub input_tokens: i64,
    /// Sum of `output_tokens`.
    pub output_tokens: i64,
    /// Sum of `cache_creation_input_tokens`.
    pub cache_creation_tokens: i64,
    /// Sum of `cache_read_input_tokens`.
    pub cache_read_tokens: i64,
    /// Sum of `total_cost_usd`.
    pub total_cost: f64,
    /// Successful requests for which no price was found.
    pub unpriced_requests: i64,
    /// Counts of response times per bucket of [`BOUNDS_MS`](crate::BOUNDS_MS).
    pub response_time_histogram: ResponseTimeHistogram,
    /// p50/p90/p99 read from the histogram.
    pub percentiles: Percentiles,
}

stored_as!(UserStats in stats_user_daily at date {
    key: user_id = user_id;
    counts: total_requests, success_requests, error_requests;
    same: input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, total_cost;
});

/// One value of one dimension (model, provider, user or client key) in one hour or day: the
/// columns of the slice tables (`stats_hourly_model`, `stats_hourly_provider`,
/// `stats_hourly_user`, `stats_daily_provider`, `stats_daily_api_key`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SliceStats {
    /// The dimension's value: model (`COALESCE(global_model, model)`), provider name, user
    /// id or client key id.
    pub key: String,
    /// All rows.
    pub total_requests: i64,
    /// `total_requests - error_requests`.
    pub success_requests: i64,
    /// Rows with `status_code >= 400` or a non-null `error_message`.
    pub error_requests: i64,
    /// Sum of `input_tokens`.
    pub input_tokens: i64,
    /// Sum of `output_tokens`.
    pub output_tokens: i64,
    /// Sum of `cache_creation_input_tokens`.
    pub cache_creation_tokens: i64,
    /// Sum of `cache_read_input_tokens`.
    pub cache_read_tokens: i64,
    /// Sum of `total_cost_usd`.
    pub total_cost: f64,
    /// Sum of `actual_total_cost_usd`.
    pub actual_total_cost: f64,
    /// Mean of non-null `response_time_ms`, 0 when there is none.
    pub avg_response_time_ms: f64,
    /// Successful requests for which no price was found.
    pub unpriced_requests: i64,
    /// Counts of response times per bucket of [`BOUNDS_MS`](crate::BOUNDS_MS).
    pub response_time_histogram: ResponseTimeHistogram,
    /// p50/p90/p99 read from the histogram.
    pub percentiles: Percentiles,
}

/// Every slice table stores [`SliceStats`]: `table at time column by key column`.
macro_rules! slices_stored_as {
    ($($table:ident at $time:ident by $column:ident;)+) => {$(
        stored_as!(SliceStats in $table at $time {
            key: key = $column;
            counts: total_requests, success_requests, error_requests;
            same: input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens,
                total_cost, actual_total_cost, avg_response_time_ms;
        });
    )+};
}

slices_stored_as! {
    stats_hourly_model at hour by model;
    stats_hourly_provider at hour by provider;
    stats_hourly_user at hour by user_id;
    stats_hourly_api_key at hour by api_key_id;
    stats_daily_provider at date by provider;
    stats_daily_api_key at date by api_key_id;
}

/// Everything computed for one business day: the day row, one row per model, user,
/// provider and client key with traffic (each sorted by key; users and keys empty when not
/// requested), and the day's hours when it was aggregated from them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DayAggregate {
    /// The day.
    pub day: BusinessDay,
    /// The `stats_daily` numbers.
    pub stats: DayStats,
    /// The `stats_daily_model` rows.
    pub models: Vec<ModelStats>,
    /// The `stats_user_daily` rows.
    pub users: Vec<UserStats>,
    /// The `stats_daily_provider` rows.
    pub providers: Vec<SliceStats>,
    /// The `stats_daily_api_key` rows.
    pub api_keys: Vec<SliceStats>,
    /// The hours the day was summed from (empty for a live computation).
    #[serde(skip)]
    pub hours: Vec<crate::HourAggregate>,
}

/// Request, token and cost totals over a period.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Totals {
    /// All requests.
    pub requests: i64,
    /// Successful requests.
    pub success_requests: i64,
    /// Failed requests.
    pub error_requests: i64,
    /// Input tokens.
    pub input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Cache creation tokens.
    pub cache_creation_tokens: i64,
    /// Cache read tokens.
    pub cache_read_tokens: i64,
    /// List cost in USD.
    pub cost: f64,
    /// Actual cost in USD.
    pub actual_cost: f64,
}

impl Totals {
    /// Adds `other` to `self`.
    pub fn add(&mut self, other: &Self) {
        self.requests += other.requests;
        self.success_requests += other.success_requests;
        self.error_requests += other.error_requests;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_creation_tokens += other.cache_creation_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cost += other.cost;
        self.actual_cost += other.actual_cost;
    }
}

impl From<&DayStats> for Totals {
    fn from(day: &DayStats) -> Self {
        Self {
            requests: day.total_requests,
            success_requests: day.success_requests,
            error_requests: day.error_requests,
            input_tokens: day.input_tokens,
            output_tokens: day.output_tokens,
            cache_creation_tokens: day.cache_creation_tokens,
            cache_read_tokens: day.cache_read_tokens,
            cost: day.total_cost,
            actual_cost: day.actual_total_cost,
        }
    }
}

impl From<&stats_summary::Model> for Totals {
    fn from(row: &stats_summary::Model) -> Self {
        Self {
            requests: row.all_time_requests,
            success_requests: row.all_time_success_requests,
            error_requests: row.all_time_error_requests,
            input_tokens: row.all_time_input_tokens,
            output_tokens: row.all_time_output_tokens,
            cache_creation_tokens: row.all_time_cache_creation_tokens,
            cache_read_tokens: row.all_time_cache_read_tokens,
            cost: row.all_time_cost,
            actual_cost: row.all_time_actual_cost,
        }
    }
}

/// User and client-key counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AccountCounts {
    /// All users.
    pub total_users: i64,
    /// Users with `is_active`.
    pub active_users: i64,
    /// All client keys.
    pub total_api_keys: i64,
    /// Client keys with `is_active`.
    pub active_api_keys: i64,
}

/// What [`refresh_summary`](crate::Aggregator::refresh_summary) stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SummaryReport {
    /// Totals cover complete aggregated days starting before this instant.
    #[serde(with = "time::serde::rfc3339")]
    pub cutoff: OffsetDateTime,
    /// The summed totals.
    pub totals: Totals,
    /// The account counts.
    pub accounts: AccountCounts,
}

/// The dashboard's headline numbers: all time up to now, with no hole between the summary,
/// the aggregated days and today.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CombinedStats {
    /// All-time totals including today so far.
    pub all_time: Totals,
    /// Today so far (see [`Aggregator::today_view`](crate::Aggregator::today_view)).
    pub today: DayAggregate,
    /// Closed hours of today read from `stats_hourly`.
    pub today_hours_closed: usize,
    /// Ended hours of today before `today_live_from` that were never closed: not counted
    /// until the closing loop (or `tollgate-aggregator hourly`) closes them.
    pub today_hours_not_aggregated: usize,
    /// Today's rows from this instant on were computed from `usage`.
    #[serde(with = "time::serde::rfc3339")]
    pub today_live_from: OffsetDateTime,
    /// Current user and key counts.
    pub accounts: AccountCounts,
    /// The summary row's cutoff, when a usable summary row exists.
    #[serde(with = "time::serde::rfc3339::option")]
    pub summary_cutoff: Option<OffsetDateTime>,
    /// Past days without a complete day row, counted as the sum of their closed hours.
    pub days_from_hours: u32,
    /// Past days with neither a complete day row nor all hours closed: counted only with
    /// the hours they have, never scanned; the aggregator fills them.
    pub days_not_aggregated: Vec<BusinessDay>,
    /// The instant the view was computed for.
    #[serde(with = "time::serde::rfc3339")]
    pub as_of: OffsetDateTime,
}

/// Today so far, from closed hours and a live tail.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TodayView {
    /// Today's numbers (no per-user or per-key rows).
    pub today: DayAggregate,
    /// Closed hours of today read from `stats_hourly`.
    pub hours_closed: usize,
    /// Hours of today before `live_from` that were never closed (not counted).
    pub hours_not_aggregated: usize,
    /// From this instant on, today was computed from `usage`.
    #[serde(with = "time::serde::rfc3339")]
    pub live_from: OffsetDateTime,
}

/// Where a day's numbers in a series came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DaySource {
    /// A complete row of the daily tables.
    Aggregated,
    /// The sum of the day's closed hours (the day itself not aggregated yet).
    Hours,
    /// Neither: the numbers are those of the hours that were closed (often none). Never
    /// scanned from `usage` on a read.
    NotAggregated,
    /// Today: closed hours and a live tail.
    Today,
}

/// Where an hour's numbers in a series came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HourSource {
    /// A closed row of `stats_hourly`.
    Aggregated,
    /// Computed from `usage`: the current hour and today's hours after the last closed one.
    Live,
    /// Never closed and older than today's live tail: zeros, not scanned.
    NotAggregated,
}

/// One hour of the dashboard's hourly series.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HourEntry {
    /// The hour.
    pub hour: crate::BusinessHour,
    /// Where the numbers came from.
    pub source: HourSource,
    /// The hour's numbers.
    pub stats: DayStats,
}

/// One day of the dashboard's daily series.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DailyEntry {
    /// The day.
    pub day: BusinessDay,
    /// Where the numbers came from.
    pub source: DaySource,
    /// The day's numbers (zeros for a day without traffic).
    pub stats: DayStats,
    /// Per-model breakdown, sorted by model name.
    pub models: Vec<ModelStats>,
}

/// One day of a user's daily series.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UserDailyEntry {
    /// The day.
    pub day: BusinessDay,
    /// Where the numbers came from.
    pub source: DaySource,
    /// The user's numbers for the day (zeros without traffic).
    pub stats: UserStats,
}

/// Progress of a backfill, reported before the first day and after each filled day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackfillProgress {
    /// Days filled so far.
    pub done: usize,
    /// Days missing when the backfill started.
    pub total: usize,
    /// The day just filled (`None` in the first report).
    pub last: Option<BusinessDay>,
}

/// What a backfill did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BackfillReport {
    /// Days that were missing in the window.
    pub missing: usize,
    /// Days filled, oldest first.
    pub filled: Vec<BusinessDay>,
    /// Whether the caller stopped it before every missing day was filled.
    pub stopped: bool,
}
