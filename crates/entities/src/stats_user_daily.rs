//! `stats_user_daily`: one row per user and business day with traffic.

use sea_orm::entity::prelude::*;

use crate::HistogramCounts;

crate::table::table! {
    /// A row of `stats_user_daily`.
    "stats_user_daily" with timestamps {
        #[sea_orm(column_type = "String(StringLen::N(36))")]
        pub user_id: String,
        /// UTC instant of the business day's local midnight.
        #[serde(with = "time::serde::rfc3339")]
        pub date: TimeDateTimeWithTimeZone,
        pub total_requests: i32,
        pub success_requests: i32,
        pub error_requests: i32,
        pub input_tokens: i64,
        pub output_tokens: i64,
        pub cache_creation_tokens: i64,
        pub cache_read_tokens: i64,
        pub total_cost: f64,
        /// Successful requests for which no price was found.
        pub unpriced_requests: i32,
        /// Response times per histogram bucket; null when there were none.
        #[sea_orm(column_type = "JsonBinary", nullable)]
        pub response_time_histogram: Option<HistogramCounts>,
        /// The user.
        #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "Cascade")]
        pub user: BelongsTo<super::users::Entity>,
    }
}
