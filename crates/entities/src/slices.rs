//! The rollup tables declared by macro, so tables that share columns cannot drift apart:
//! `stats_daily` and `stats_hourly` (the totals of a business day or hour), and the hourly
//! and daily "slice" tables of behaviour.md section 9: one row per time bucket and value of
//! one dimension (model, provider, user, client key), all with the same numbers.

/// Declares the entity module of a totals table: `$time` is `date` or `hour` (the UTC
/// instant of the bucket's local start), unique.
macro_rules! totals_table {
    ($(#[$doc:meta])* $module:ident = $table:literal, $time:ident) => {
        $(#[$doc])*
        pub mod $module {
            use sea_orm::entity::prelude::*;

            use crate::HistogramCounts;

            crate::table::table! {
                /// A row of the table.
                            $table with timestamps {
                    /// UTC instant of the start of the business day or local hour.
                    #[sea_orm(unique)]
                    #[serde(with = "time::serde::rfc3339")]
                    pub $time: TimeDateTimeWithTimeZone,
                    pub total_requests: i32,
                    pub success_requests: i32,
                    pub error_requests: i32,
                    pub input_tokens: i64,
                    pub output_tokens: i64,
                    pub cache_creation_tokens: i64,
                    pub cache_read_tokens: i64,
                    pub total_cost: f64,
                    pub actual_total_cost: f64,
                    pub input_cost: f64,
                    pub output_cost: f64,
                    pub cache_creation_cost: f64,
                    pub cache_read_cost: f64,
                    pub avg_response_time_ms: f64,
                    pub fallback_count: i32,
                    pub unique_models: i32,
                    pub unique_providers: i32,
                    /// Successful requests for which no price was found.
                    pub unpriced_requests: i32,
                    /// Response times per histogram bucket; null when there were none.
                    #[sea_orm(column_type = "JsonBinary", nullable)]
                    pub response_time_histogram: Option<HistogramCounts>,
                }
            }
        }
    };
}

totals_table!(
    /// `stats_daily`: one row per business day (written only by the aggregator).
    stats_daily = "stats_daily", date
);
totals_table!(
    /// `stats_hourly`: one row per local hour of the business time zone (behaviour.md 9),
    /// the columns of `stats_daily` keyed by `hour`.
    stats_hourly = "stats_hourly", hour
);

/// Declares the entity module of one slice table: `$time` is `hour` or `date` (the UTC
/// instant of the bucket's local start), `$key` the dimension column.
macro_rules! slice_table {
    ($(#[$doc:meta])* $module:ident = $table:literal, $time:ident, $key:ident: $key_type:literal) => {
        $(#[$doc])*
        pub mod $module {
            use sea_orm::entity::prelude::*;

            use crate::HistogramCounts;

            crate::table::table! {
                /// A row of the table.
                            $table with timestamps {
                    /// UTC instant of the start of the local hour or business day.
                    #[serde(with = "time::serde::rfc3339")]
                    pub $time: TimeDateTimeWithTimeZone,
                    /// The dimension's value.
                    #[sea_orm(column_type = $key_type)]
                    pub $key: String,
                    pub total_requests: i32,
                    pub success_requests: i32,
                    pub error_requests: i32,
                    pub input_tokens: i64,
                    pub output_tokens: i64,
                    pub cache_creation_tokens: i64,
                    pub cache_read_tokens: i64,
                    pub total_cost: f64,
                    pub actual_total_cost: f64,
                    pub avg_response_time_ms: f64,
                    /// Successful requests for which no price was found.
                    pub unpriced_requests: i32,
                    /// Response times per histogram bucket; null when there were none.
                    #[sea_orm(column_type = "JsonBinary", nullable)]
                    pub response_time_histogram: Option<HistogramCounts>,
                }
            }
        }
    };
}

slice_table!(
    /// `stats_hourly_model`: one row per local hour and `COALESCE(global_model, model)`.
    stats_hourly_model = "stats_hourly_model", hour, model: "String(StringLen::N(200))"
);
slice_table!(
    /// `stats_hourly_provider`: one row per local hour and provider name.
    stats_hourly_provider = "stats_hourly_provider", hour, provider: "String(StringLen::N(100))"
);
slice_table!(
    /// `stats_hourly_user`: one row per local hour and user with traffic.
    stats_hourly_user = "stats_hourly_user", hour, user_id: "String(StringLen::N(36))"
);
slice_table!(
    /// `stats_hourly_api_key`: one row per local hour and client key with traffic.
    stats_hourly_api_key = "stats_hourly_api_key", hour, api_key_id: "String(StringLen::N(36))"
);
slice_table!(
    /// `stats_daily_provider`: one row per business day and provider name.
    stats_daily_provider = "stats_daily_provider", date, provider: "String(StringLen::N(100))"
);
slice_table!(
    /// `stats_daily_api_key`: one row per business day and client key with traffic.
    stats_daily_api_key = "stats_daily_api_key", date, api_key_id: "String(StringLen::N(36))"
);
