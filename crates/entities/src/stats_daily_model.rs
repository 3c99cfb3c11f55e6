//! `stats_daily_model`: one row per business day and model.

use sea_orm::entity::prelude::*;

use crate::HistogramCounts;

crate::table::table! {
    /// A row of `stats_daily_model`.
    "stats_daily_model" with timestamps {
        /// UTC instant of the business day's local midnight.
        #[serde(with = "time::serde::rfc3339")]
        pub date: TimeDateTimeWithTimeZone,
        /// `COALESCE(global_model, model)` of the grouped usage rows.
        #[sea_orm(column_type = "String(StringLen::N(200))")]
        pub model: String,
        pub total_requests: i32,
        pub input_tokens: i64,
        pub output_tokens: i64,
        pub cache_creation_tokens: i64,
        pub cache_read_tokens: i64,
        pub total_cost: f64,
        pub avg_response_time_ms: f64,
        /// Successful requests for which no price was found.
        pub unpriced_requests: i32,
        /// Response times per histogram bucket; null when there were none.
        #[sea_orm(column_type = "JsonBinary", nullable)]
        pub response_time_histogram: Option<HistogramCounts>,
    }
}
